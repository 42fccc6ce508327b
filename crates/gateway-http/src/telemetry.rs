//! Logging and tracing.
//!
//! Logs: JSON lines when `LOG_FORMAT=json`, human-readable otherwise; level from `RUST_LOG`.
//! Every HTTP request runs in a `request` span holding its request id, method and route template
//! (never the raw path: callback URLs carry a secret), so each line it logs can be traced back to
//! it; the id is the caller's `X-Request-Id` when sane, otherwise a fresh UUIDv7, and is echoed in
//! the response.
//!
//! Traces (OpenTelemetry): a request continues the caller's W3C `traceparent`, or starts a trace.
//! A message keeps the `traceparent` of the request that accepted it, so each send of it, each
//! provider call and each event delivery about it are spans of that same trace, whichever
//! instance does them and however long after. Event webhooks carry the delivery span's
//! `traceparent`. Only the spans named in [`TRACED_SPANS`] become OpenTelemetry spans, with the
//! fields they declare: ids, routes, providers, outcomes, never a secret, a URL or a body. The
//! log level does not change what is traced. Spans are exported over OTLP/HTTP (protobuf) when
//! `[tracing] otlp_endpoint` or the standard `OTEL_EXPORTER_OTLP_ENDPOINT` is set; otherwise
//! context still crosses the gateway, and nothing is exported.

use std::collections::HashMap;

use actix_web::http::header::{HeaderMap, HeaderName};
use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{TraceContextExt, TracerProvider as _};
use opentelemetry_otlp::WithExportConfig;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use serde::Deserialize;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");
pub const TRACEPARENT: &str = "traceparent";

/// The longest caller-supplied request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 64;

/// The spans exported as OpenTelemetry spans: an API request, one send of a message, its
/// provider call, one event delivery. The engine's long-lived loops and the libraries' own spans
/// are not, so no trace hangs on a span that never ends.
pub const TRACED_SPANS: [&str; 4] = ["request", "attempt", "provider_call", "event_delivery"];

/// `[tracing]`: OpenTelemetry export.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct TracingConfig {
    /// The OTLP/HTTP base URL of a collector (`http://collector:4318`); spans are posted to
    /// `<it>/v1/traces` as protobuf. Unset: the standard `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or
    /// `OTEL_EXPORTER_OTLP_ENDPOINT` variable if one is set, else no export. Credentials belong
    /// in `OTEL_EXPORTER_OTLP_HEADERS`, not in the URL.
    pub otlp_endpoint: Option<String>,
    /// `service.name` of the exported spans.
    pub service_name: String,
}

impl Default for TracingConfig {
    fn default() -> Self {
        Self { otlp_endpoint: None, service_name: "messaging-gateway".into() }
    }
}

impl TracingConfig {
    /// # Errors
    /// A `(key, reason)` for the first bad setting.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if let Some(endpoint) = &self.otlp_endpoint {
            match url::Url::parse(endpoint) {
                Ok(u) if !matches!(u.scheme(), "http" | "https") => {
                    return Err(("otlp_endpoint", "an http(s) URL"));
                }
                Ok(u) if !u.username().is_empty() || u.password().is_some() => {
                    return Err(("otlp_endpoint", "no credentials in the URL: use OTEL_EXPORTER_OTLP_HEADERS"));
                }
                Ok(u) if u.query().is_some() || u.fragment().is_some() => {
                    return Err(("otlp_endpoint", "a base URL without query or fragment"));
                }
                Ok(_) => {}
                Err(_) => return Err(("otlp_endpoint", "an http(s) URL")),
            }
        }
        if self.service_name.trim().is_empty() {
            return Err(("service_name", "not empty"));
        }
        Ok(())
    }

    /// Where spans go: the configured endpoint, else the standard variables' (resolved by the
    /// exporter), else nowhere.
    fn export(&self) -> Option<Option<String>> {
        match &self.otlp_endpoint {
            Some(base) => Some(Some(format!("{}/v1/traces", base.trim_end_matches('/')))),
            None => ["OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"]
                .iter()
                .any(|v| std::env::var(v).is_ok_and(|v| !v.is_empty()))
                .then_some(None),
        }
    }
}

/// The tracer provider, kept to flush the last spans at shutdown.
pub struct Tracing(Option<SdkTracerProvider>);

impl Tracing {
    /// Exports what is still buffered and stops the exporter.
    pub fn shutdown(self) {
        if let Some(provider) = self.0 {
            if let Err(e) = provider.shutdown() {
                tracing::warn!(error = %e, "the last spans could not be exported");
            }
        }
    }
}

/// Installs logging and tracing for this process. A second call (tests) keeps the first.
///
/// # Errors
/// The exporter cannot be built (a malformed endpoint in the standard variables).
pub fn init(config: &TracingConfig) -> Result<Tracing, String> {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let fmt = tracing_subscriber::fmt::layer().with_target(false);
    let logs = if json {
        fmt.json().flatten_event(true).with_current_span(true).with_filter(filter).boxed()
    } else {
        fmt.with_filter(filter).boxed()
    };
    let mut builder = SdkTracerProvider::builder()
        .with_resource(opentelemetry_sdk::Resource::builder().with_service_name(config.service_name.clone()).build());
    let exporting = config.export();
    if let Some(endpoint) = &exporting {
        let mut exporter = opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(opentelemetry_otlp::Protocol::HttpBinary);
        if let Some(endpoint) = endpoint {
            exporter = exporter.with_endpoint(endpoint);
        }
        let exporter = exporter.build().map_err(|e| format!("tracing: the OTLP exporter: {e}"))?;
        builder = builder.with_batch_exporter(exporter);
    }
    let provider = builder.build();
    let spans = tracing_opentelemetry::layer()
        .with_tracer(provider.tracer("gateway"))
        .with_location(false)
        .with_threads(false)
        .with_tracked_inactivity(false)
        // Nothing here reads the ambient OpenTelemetry context (children find their parent
        // through the tracing span, and `traceparent` reads the span's own): attaching it on every
        // poll of an instrumented future would cost each message a few microseconds for nothing.
        .with_context_activation(false)
        .with_filter(tracing_subscriber::filter::filter_fn(|m| {
            m.is_span() && m.target().starts_with("gateway_http") && TRACED_SPANS.contains(&m.name())
        }));
    if tracing_subscriber::registry().with(logs).with(spans).try_init().is_err() {
        return Ok(Tracing(None));
    }
    if exporting.is_some() {
        tracing::info!("exporting traces over OTLP/HTTP");
    }
    Ok(Tracing(Some(provider)))
}

struct Headers<'a>(&'a HeaderMap);

impl Extractor for Headers<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }
    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(HeaderName::as_str).collect()
    }
}

/// Makes `span` continue the caller's trace when the request carries a valid W3C
/// `traceparent` (and `tracestate`); otherwise it starts a trace of its own.
pub fn continue_request_trace(span: &tracing::Span, headers: &HeaderMap) {
    let cx = TraceContextPropagator::new().extract(&Headers(headers));
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// Makes `span` a child of the span a stored `traceparent` names (a message's accepting
/// request); without one (older records, an unreadable value) it starts a trace of its own.
pub fn continue_stored_trace(span: &tracing::Span, traceparent: Option<&str>) {
    let Some(traceparent) = traceparent else { return };
    let carrier = HashMap::from([(TRACEPARENT.to_owned(), traceparent.to_owned())]);
    let cx = TraceContextPropagator::new().extract(&carrier);
    if cx.span().span_context().is_valid() {
        let _ = span.set_parent(cx);
    }
}

/// The W3C `traceparent` naming `span`, to store or send on; `None` when tracing is not
/// installed in this process.
pub fn traceparent(span: &tracing::Span) -> Option<String> {
    let cx = span.context();
    if !cx.span().span_context().is_valid() {
        return None;
    }
    let mut carrier = HashMap::new();
    TraceContextPropagator::new().inject_context(&cx, &mut carrier);
    carrier.remove(TRACEPARENT)
}

/// The request's id: its `X-Request-Id` when that is 1 to 64 visible ASCII characters (so it is
/// safe in a log line and a header), otherwise a new UUIDv7.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(REQUEST_ID, v);
        }
        headers
    }

    fn generated(id: &str) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
    }

    fn traced<T>(f: impl FnOnce() -> T) -> T {
        let provider = SdkTracerProvider::builder().build();
        let layer = tracing_opentelemetry::layer().with_tracer(provider.tracer("test"));
        tracing::subscriber::with_default(tracing_subscriber::registry().with(layer), f)
    }

    const CALLER: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

    #[test]
    fn a_span_continues_a_stored_traceparent_as_its_child() {
        let child = traced(|| {
            let span = tracing::info_span!("attempt");
            continue_stored_trace(&span, Some(CALLER));
            traceparent(&span)
        });
        let child = child.unwrap_or_default();
        let parts: Vec<&str> = child.split('-').collect();
        assert_eq!(parts.len(), 4, "{child}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", "0af7651916cd43dd8448eb211c80319c", "01"));
        assert_ne!(parts[2], "b7ad6b7169203331", "a span of its own");
    }

    #[test]
    fn a_request_continues_a_valid_traceparent_and_otherwise_starts_a_trace() {
        let of = |value: &str| {
            let mut headers = HeaderMap::new();
            if let Ok(v) = actix_web::http::header::HeaderValue::from_str(value) {
                headers.insert(HeaderName::from_static(TRACEPARENT), v);
            }
            traced(|| {
                let span = tracing::info_span!("request");
                continue_request_trace(&span, &headers);
                traceparent(&span).unwrap_or_default()
            })
        };
        assert!(of(CALLER).starts_with("00-0af7651916cd43dd8448eb211c80319c-"));
        for bad in ["", "00-not-a-trace-01", "00-00000000000000000000000000000000-b7ad6b7169203331-01"] {
            let tp = of(bad);
            assert_eq!(tp.len(), 55, "{bad:?} gives a fresh traceparent: {tp}");
            assert!(!tp.contains("0af7651916cd43dd8448eb211c80319c"));
        }
    }

    #[test]
    fn without_tracing_installed_there_is_no_traceparent() {
        let span = tracing::info_span!("request");
        continue_stored_trace(&span, Some(CALLER));
        assert_eq!(traceparent(&span), None);
    }

    #[test]
    fn the_otlp_endpoint_is_a_base_url_without_credentials() {
        let with = |e: &str| TracingConfig { otlp_endpoint: Some(e.into()), ..TracingConfig::default() };
        assert_eq!(with("http://collector:4318").validate(), Ok(()));
        assert_eq!(with("http://collector:4318/").export(), Some(Some("http://collector:4318/v1/traces".into())));
        assert_eq!(
            with("https://otel.example/base").export(),
            Some(Some("https://otel.example/base/v1/traces".into()))
        );
        for bad in ["collector:4318", "ftp://collector", "http://user:pw@collector:4318", "http://c:4318/?token=x"] {
            assert_eq!(with(bad).validate().map_err(|e| e.0), Err("otlp_endpoint"), "{bad}");
        }
        let unnamed = TracingConfig { service_name: " ".into(), ..TracingConfig::default() };
        assert_eq!(unnamed.validate().map_err(|e| e.0), Err("service_name"));
    }

    #[test]
    fn a_sane_caller_id_is_kept() {
        assert_eq!(request_id(&with(b"test-123")), "test-123");
        let longest = "a".repeat(64);
        assert_eq!(request_id(&with(longest.as_bytes())), longest);
    }

    #[test]
    fn a_missing_empty_long_or_unprintable_id_is_replaced_by_a_uuidv7() {
        assert!(generated(&request_id(&HeaderMap::new())));
        assert!(generated(&request_id(&with(b""))));
        assert!(generated(&request_id(&with("a".repeat(65).as_bytes()))));
        assert!(generated(&request_id(&with(b"two words"))));
        assert!(generated(&request_id(&with(b"tab\there"))));
        assert!(generated(&request_id(&with("caf\u{e9}".as_bytes()))));
    }
}
