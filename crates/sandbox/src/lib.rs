//! `provider-sandbox`: a local stand-in for the INCS and InnoPaaS APIs (DESIGN.md §8).
//!
//! One HTTP listener serves three things:
//! - the providers' own paths, as the providers have them: INCS at the root (`/external/messages/...`),
//!   InnoPaaS under `/api/whatsapp/v3/...`;
//! - the control plane under `/_sandbox/...`: recorded requests, fault injection, a webhook consumer
//!   for the gateway's internal events, and a health check;
//! - outgoing status callbacks to configured URLs: INCS `message_status_update` (`sent`,
//!   `delivered`, `read`) and `template_status_update` (`APPROVED` or `REJECTED`), and InnoPaaS
//!   `whatsapp_message_status_updated` (`delivered`, `read`).
//!
//! Endpoints:
//! - `POST /external/messages/{whatsapp,viber,rcs}`, `GET /external/messages/status?message_ids=a,b`,
//!   `GET|POST /external/templates[/rcs]` (`?last_id=&count=` paging),
//!   `GET|DELETE /external/templates[/rcs]/{id}` and `GET /external/account` (INCS, header
//!   `certification-code`; templates are reviewed after `incs_template_review_delay`, see
//!   `incs/templates.rs`);
//! - `POST /api/whatsapp/v3/msg/submit`, `POST /api/whatsapp/v3/account/phoneInfo`,
//!   `POST /api/whatsapp/v3/template/submit`, and the sandbox's MMLite stand-in
//!   `POST /api/whatsapp/v3/mmlite/msg/submit` (InnoPaaS, headers `AppKey` and `Authorization`);
//! - `GET|DELETE /_sandbox/requests[?provider=incs|innopaas]`: recorded provider requests;
//! - `GET|POST|DELETE /_sandbox/faults`: fault injection (see `faults.rs` for the fields);
//! - `GET|POST|DELETE /_sandbox/recipients`: per-recipient behaviour (`normal`, `undeliverable`,
//!   `no_receipts`; see `recipients.rs`);
//! - `GET|POST|DELETE /_sandbox/webhooks`: the internal event consumer (POST answers 204);
//! - `GET /_sandbox/health`.
//!
//! Every request to a provider path goes through the same intake: it is recorded first (so requests
//! answered by a fault or an auth error are recorded too), then the fault book is consulted, and only
//! then the provider's handler runs. A second provider plugs in as one more [`Provider`] variant, one
//! more path prefix in [`Provider::for_path`] and one more module with a `handle` function.
//!
//! # Decisions where the provider documents are silent
//! - **HTTP status vs envelope `code` (INCS).** INCS documents only the envelope. The sandbox answers
//!   HTTP 200 for the provider codes 10001–10004 (so a client must treat "HTTP 200 with an error body"
//!   as an error) and the HTTP status equal to the code for 400/404/405/422/429/500.
//! - **Routing before auth.** An unknown INCS path answers 404 and a wrong method 405 before the
//!   certification code is checked, as a framework router in front of auth middleware would.
//! - **Validation messages** follow the Laravel style INCS shows ("The phone number is invalid.",
//!   "Too Many Attempts.", "Server Error"); all body problems are code 422.
//! - **Ids.** WhatsApp ids are built like real wamids: base64 of `1C 18 <len> <recipient digits> 15 02 00
//!   11 18 12 <18 random upper-case hex> 00`, which is exactly how the documents' own wamids decode.
//!   Viber ids are UUID v4, RCS ids UUID v7.
//! - **Simulated status.** A message's status is a pure function of the time since it was accepted
//!   and the three callback offsets: `accepted` (Meta's word for "taken, not yet sent"), then `sent`,
//!   `delivered`, `read`. The status poll and the callbacks therefore always agree, whether or not a
//!   callback URL is configured or reachable. `delivered_at` stays set once read (the documents show
//!   both variants); it is 0 until delivered, and `read_at` is 0 until read.
//! - **Status poll scope.** Any configured certification code may poll any message this sandbox
//!   issued: the documents use different codes per host family, and RCS sends may use either.
//! - **Callback identity.** `channel_id` is 30058 + the index of the certification code that sent the
//!   message, `business_phone` is 6281519236680 + that index (the documents' own example values).
//!   `received_at` is the Unix second of the simulated status change. Callbacks are not retried
//!   (INCS documents no retry policy); a failed delivery is logged as a warning.
//! - **InnoPaaS envelopes.** Every InnoPaaS error is `{"code": "<string>", "success": false,
//!   "message", "data": null}` with HTTP 200 (as its auth failure, 102, is documented), except an
//!   unknown path (HTTP 404, code "404") and a wrong method (HTTP 405, code "405"), which a router
//!   answers before auth. Codes: 102 for an unknown `AppKey` or a token that is not that key's
//!   (`Authorization` compared as it is: `Bearer <token>` fails); 105 `uid` over 32 characters;
//!   106 a text `body` over 3000 characters; 108 a `sendNumber` or `recipientNumber` that is not 8
//!   to 15 digits; 109 more than 1000 recipients; "400" (not in InnoPaaS's table, which is only
//!   partly public) for a missing, empty or ill-typed field, its message naming the field's path.
//!   Success is `{"code": "0", "success": true, "message": "Success", "data": <id>}`, the id a
//!   string: an 18-digit snowflake for messages (one per request, whatever the recipient count)
//!   and templates; phoneInfo answers one CONNECTED, GREEN, `TIER_250` number per credential.
//! - **InnoPaaS templates** (strict): a template send must name a template `template/submit`
//!   accepted here (usable at once: no review is simulated), else 143 "WhatsApp Tempalte Not Found"
//!   (the v2 answer), and fit its parameter counts, else "400" with Meta's `(#132000)` message
//!   (InnoPaaS documents no answer, so the INCS rule is mirrored); see `innopaas/templates.rs`.
//! - **InnoPaaS MMLite.** InnoPaaS publishes no MMLite URL; the sandbox takes MMLite sends at
//!   `/api/whatsapp/v3/mmlite/msg/submit`, like msg/submit but for `messageType: template` only.
//! - **InnoPaaS webhooks** (shape from PROVIDERS.md §2.6 and a public copy of InnoPaaS's webhook
//!   page): per recipient, `{id: UUID, type: "whatsapp_message_status_updated", eventTime:
//!   RFC 3339 UTC with milliseconds, body: {id: the message id, accountName: "IW100001" + the
//!   credential's index, wabaId, status, wamid, sendPhone: the recipient, uid (when the send had
//!   one), conversation}}`, `delivered` then `read`; `conversation` (`delivered` only) is `{id: 32
//!   hex, initiateType: "business_initiated", expireAt: "yyyy-MM-dd HH:mm:ss"}` 24 h after
//!   delivery, in UTC. Each carries the configured static headers (default `Authorization:
//!   sandbox-innopaas-callback`). No `sent` (InnoPaaS never sends one), no retries.
//! - **Faults.** `status` is an HTTP status (100–599) or a provider code answered as HTTP 200 with
//!   the matching envelope: for INCS 10001–10004, for InnoPaaS 100–199 (its custom codes, e.g. 110,
//!   which as HTTP statuses would be interim answers). The default InnoPaaS fault body is
//!   `{"code": "<status>", "success": false, "message": <reason>, "data": null}`. A fault with a
//!   `status` answers before authentication, like a rate limiter in front of the API; a delay-only
//!   fault delays the normal answer, auth check included.
//! - **Recording** keeps everything until `DELETE /_sandbox/requests`; header values that are not
//!   UTF-8 are recorded lossily, and repeated headers are joined with `", "`.

mod callbacks;
mod control;
mod emit;
mod faults;
mod incs;
mod innopaas;
mod recipients;
mod recording;

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::str::FromStr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::{dev::ServerHandle, web, App, HttpRequest, HttpResponse, HttpServer};
use serde::{Deserialize, Serialize};
use tokio::task::JoinHandle;

use crate::faults::FaultBook;
use crate::recording::{RequestBody, RequestLog, WebhookLog};

/// The default INCS certification codes: one for the chat-api host family, one for the api host
/// family, shaped like the truncated codes in the INCS documents.
pub const DEFAULT_INCS_CERTIFICATION_CODES: [&str; 2] =
    ["af92196e-0d07-3c1d-a631-a71c5a1b0001", "f484bd42-5c2e-3d7a-9b1e-2f3c4d5e0001"];

/// The default code of the api host family: the documents' `f484bd42-…`. It is also the second
/// default chat-api code, standing for a second number in tests of per-number lanes.
pub const DEFAULT_INCS_API_CERTIFICATION_CODE: &str = DEFAULT_INCS_CERTIFICATION_CODES[1];

/// Offsets after acceptance of the `sent`, `delivered` and `read` callbacks.
pub const DEFAULT_INCS_CALLBACK_DELAYS: [Duration; 3] =
    [Duration::from_millis(100), Duration::from_millis(300), Duration::from_millis(600)];

/// How long a new INCS template stays `PENDING` before it is reviewed (and its
/// `template_status_update` callback sent).
pub const DEFAULT_INCS_TEMPLATE_REVIEW_DELAY: Duration = Duration::from_millis(500);

/// The default InnoPaaS credential: `AppKey` and its `Authorization` token.
pub const DEFAULT_INNOPAAS_APP_KEY: &str = "sandbox-innopaas-appkey";
pub const DEFAULT_INNOPAAS_TOKEN: &str = "sandbox-innopaas-token";

/// Offsets after acceptance of the InnoPaaS `delivered` and `read` webhooks.
pub const DEFAULT_INNOPAAS_WEBHOOK_DELAYS: [Duration; 2] = [Duration::from_millis(300), Duration::from_millis(600)];

/// The static `Authorization` header on InnoPaaS webhooks: the gateway's dev InnoPaaS callback secret.
pub const DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION: &str = "sandbox-innopaas-callback";

pub use innopaas::{MMLITE_SUBMIT_PATH as INNOPAAS_MMLITE_PATH, SUBMIT_PATH as INNOPAAS_SUBMIT_PATH};

/// Largest request body a provider path accepts; INCS carousels with many cards stay far below it.
const MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// A provider the sandbox stands in for. Recording and faults are keyed by it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Provider {
    Incs,
    Innopaas,
}

impl Provider {
    /// Which provider a request path belongs to. InnoPaaS lives under its own prefix; everything
    /// else outside `/_sandbox` is INCS, whose paths sit at the root.
    pub fn for_path(path: &str) -> Provider {
        if path.starts_with(innopaas::PATH_PREFIX) {
            Provider::Innopaas
        } else {
            Provider::Incs
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Provider::Incs => "incs",
            Provider::Innopaas => "innopaas",
        }
    }
}

impl fmt::Display for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Provider {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "incs" => Ok(Provider::Incs),
            "innopaas" => Ok(Provider::Innopaas),
            other => Err(format!("unknown provider `{other}`, expected `incs` or `innopaas`")),
        }
    }
}

/// How to run a sandbox. `Default` gives the documented defaults on 127.0.0.1:8090.
#[derive(Clone)]
pub struct SandboxConfig {
    /// Listen address; port 0 picks a free port (see [`SandboxHandle::addr`]).
    pub listen: SocketAddr,
    /// Accepted values of the INCS `certification-code` header on the chat-api family (sends,
    /// status poll), one per business number: the position is the number's lane.
    pub incs_certification_codes: Vec<String>,
    /// Codes accepted on the api family (templates, account). Strict, a code is valid only on its
    /// family (RCS sends take either, the documents placing them on both hosts).
    pub incs_api_certification_codes: Vec<String>,
    /// Refuse what the real providers would (the default): certification codes off their host
    /// family, bodies not sent as JSON, fields the providers do not know. `false` is the old,
    /// lenient sandbox.
    pub strict: bool,
    /// Where INCS `message_status_update` callbacks go; `None` sends none.
    pub incs_callback_url: Option<String>,
    /// Offsets after acceptance of the `sent`, `delivered` and `read` statuses (non-decreasing).
    pub incs_callback_delays: [Duration; 3],
    /// How long a new INCS template stays `PENDING`; then it is reviewed and, for WhatsApp
    /// templates, a `template_status_update` callback goes to [`Self::incs_callback_url`].
    pub incs_template_review_delay: Duration,
    /// actix-web worker threads.
    pub workers: usize,
    /// Accepted InnoPaaS `AppKey` values; the token at the same position in
    /// [`Self::innopaas_tokens`] belongs to each.
    pub innopaas_app_keys: Vec<String>,
    /// Accepted InnoPaaS `Authorization` tokens (sent as they are, without `Bearer`).
    pub innopaas_tokens: Vec<String>,
    /// Where InnoPaaS `whatsapp_message_status_updated` webhooks go; `None` sends none.
    pub innopaas_webhook_url: Option<String>,
    /// Offsets after acceptance of the `delivered` and `read` webhooks (non-decreasing).
    pub innopaas_webhook_delays: [Duration; 2],
    /// Static headers on every InnoPaaS webhook, as the console's optional `UserName` and
    /// `Authorization` push headers.
    pub innopaas_webhook_headers: Vec<(String, String)>,
}

impl Default for SandboxConfig {
    fn default() -> Self {
        SandboxConfig {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 8090)),
            incs_certification_codes: DEFAULT_INCS_CERTIFICATION_CODES.iter().map(|code| code.to_string()).collect(),
            incs_api_certification_codes: vec![DEFAULT_INCS_API_CERTIFICATION_CODE.to_owned()],
            strict: true,
            incs_callback_url: None,
            incs_callback_delays: DEFAULT_INCS_CALLBACK_DELAYS,
            incs_template_review_delay: DEFAULT_INCS_TEMPLATE_REVIEW_DELAY,
            workers: 2,
            innopaas_app_keys: vec![DEFAULT_INNOPAAS_APP_KEY.to_owned()],
            innopaas_tokens: vec![DEFAULT_INNOPAAS_TOKEN.to_owned()],
            innopaas_webhook_url: None,
            innopaas_webhook_delays: DEFAULT_INNOPAAS_WEBHOOK_DELAYS,
            innopaas_webhook_headers: vec![(
                "Authorization".to_owned(),
                DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION.to_owned(),
            )],
        }
    }
}

// Certification codes are credentials in the real world; keep them out of logs even here.
impl fmt::Debug for SandboxConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SandboxConfig")
            .field("listen", &self.listen)
            .field("incs_certification_codes", &format_args!("[{} redacted]", self.incs_certification_codes.len()))
            .field(
                "incs_api_certification_codes",
                &format_args!("[{} redacted]", self.incs_api_certification_codes.len()),
            )
            .field("strict", &self.strict)
            .field("incs_callback_url", &self.incs_callback_url)
            .field("incs_callback_delays", &self.incs_callback_delays)
            .field("incs_template_review_delay", &self.incs_template_review_delay)
            .field("workers", &self.workers)
            .field("innopaas_app_keys", &format_args!("[{} redacted]", self.innopaas_app_keys.len()))
            .field("innopaas_tokens", &format_args!("[{} redacted]", self.innopaas_tokens.len()))
            .field("innopaas_webhook_url", &self.innopaas_webhook_url)
            .field("innopaas_webhook_delays", &self.innopaas_webhook_delays)
            .field(
                "innopaas_webhook_headers",
                &self.innopaas_webhook_headers.iter().map(|(name, _)| (name, "[redacted]")).collect::<Vec<_>>(),
            )
            .finish()
    }
}

impl SandboxConfig {
    fn validate(&self) -> io::Result<()> {
        let invalid = |message: String| Err(io::Error::new(io::ErrorKind::InvalidInput, message));
        if self.incs_certification_codes.is_empty()
            || self.incs_certification_codes.iter().any(|code| code.trim().is_empty())
        {
            return invalid("incs_certification_codes: at least one non-empty code is needed".into());
        }
        if let Some(url) = &self.incs_callback_url {
            if let Err(error) = reqwest::Url::parse(url) {
                return invalid(format!("incs_callback_url `{url}` is not a URL: {error}"));
            }
        }
        let [sent, delivered, read] = self.incs_callback_delays;
        if sent > delivered || delivered > read {
            return invalid("incs_callback_delays: the sent, delivered and read offsets must not decrease".into());
        }
        if self.workers == 0 {
            return invalid("workers: at least one worker is needed".into());
        }
        let blank = |values: &[String]| values.is_empty() || values.iter().any(|value| value.trim().is_empty());
        if blank(&self.innopaas_app_keys) || blank(&self.innopaas_tokens) {
            return invalid(
                "innopaas_app_keys, innopaas_tokens: at least one non-empty AppKey and token are needed".into(),
            );
        }
        if self.innopaas_app_keys.len() != self.innopaas_tokens.len() {
            return invalid(format!(
                "innopaas_tokens: one token per AppKey is needed ({} AppKeys, {} tokens)",
                self.innopaas_app_keys.len(),
                self.innopaas_tokens.len()
            ));
        }
        if let Some(url) = &self.innopaas_webhook_url {
            if let Err(error) = reqwest::Url::parse(url) {
                return invalid(format!("innopaas_webhook_url `{url}` is not a URL: {error}"));
            }
        }
        let [delivered, read] = self.innopaas_webhook_delays;
        if delivered > read {
            return invalid("innopaas_webhook_delays: the delivered and read offsets must not decrease".into());
        }
        self.innopaas_webhook_header_map()?;
        Ok(())
    }

    fn innopaas_webhook_header_map(&self) -> io::Result<reqwest::header::HeaderMap> {
        use reqwest::header::{HeaderName, HeaderValue};
        let mut headers = reqwest::header::HeaderMap::new();
        for (name, value) in &self.innopaas_webhook_headers {
            let invalid = |what: &str| {
                // The value may be a secret: name the header only.
                io::Error::new(io::ErrorKind::InvalidInput, format!("innopaas_webhook_headers: `{name}` {what}"))
            };
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| invalid("is not a header name"))?;
            let mut value = HeaderValue::from_str(value).map_err(|_| invalid("has a value unusable in a header"))?;
            value.set_sensitive(true);
            headers.append(name, value);
        }
        Ok(headers)
    }
}

/// A running sandbox. Dropping it without [`SandboxHandle::stop`] still asks the server to stop.
pub struct SandboxHandle {
    addr: SocketAddr,
    server: ServerHandle,
    server_task: Option<JoinHandle<io::Result<()>>>,
    /// One callback dispatcher per provider with a callback URL.
    callback_tasks: Vec<JoinHandle<()>>,
}

impl SandboxHandle {
    /// The address actually bound (the real port when the config asked for port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ip:port`, without a trailing slash.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops accepting, lets in-flight requests finish (briefly) and drops pending callbacks.
    pub async fn stop(mut self) {
        self.server.stop(true).await;
        if let Some(task) = self.server_task.take() {
            match task.await {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::warn!(%error, "sandbox server ended with an error"),
                Err(error) => tracing::warn!(%error, "sandbox server task failed"),
            }
        }
        for task in self.callback_tasks.drain(..) {
            task.abort();
        }
    }
}

impl Drop for SandboxHandle {
    fn drop(&mut self) {
        if self.server_task.is_some() {
            // The stop command is sent when `stop` is called; the returned future only waits.
            drop(self.server.stop(false));
        }
        for task in self.callback_tasks.drain(..) {
            task.abort();
        }
    }
}

/// Everything the handlers share, across all workers.
pub(crate) struct Sandbox {
    pub(crate) strict: bool,
    pub(crate) requests: RequestLog,
    pub(crate) webhooks: WebhookLog,
    pub(crate) faults: FaultBook,
    pub(crate) recipients: recipients::Recipients,
    pub(crate) incs: incs::Incs,
    pub(crate) innopaas: innopaas::Innopaas,
}

/// Binds and starts a sandbox on the current Tokio runtime (a `#[tokio::main]` or `#[tokio::test]`
/// runtime is fine); the HTTP workers run on their own threads.
///
/// # Errors
/// `InvalidInput` for an unusable configuration, or the bind error.
pub async fn spawn(config: SandboxConfig) -> io::Result<SandboxHandle> {
    config.validate()?;

    let mut callback_tasks = Vec::new();
    let mut dispatcher = |url: &Option<String>, headers| -> io::Result<Option<callbacks::CallbackQueue>> {
        let Some(url) = url else { return Ok(None) };
        let (queue, task) = callbacks::start(url.clone(), headers)?;
        callback_tasks.push(task);
        Ok(Some(queue))
    };
    let incs_callbacks = dispatcher(&config.incs_callback_url, reqwest::header::HeaderMap::new())?;
    let innopaas_webhooks = dispatcher(&config.innopaas_webhook_url, config.innopaas_webhook_header_map()?)?;
    let innopaas_credentials =
        config.innopaas_app_keys.iter().cloned().zip(config.innopaas_tokens.iter().cloned()).collect();

    let sandbox = web::Data::new(Sandbox {
        strict: config.strict,
        requests: RequestLog::default(),
        webhooks: WebhookLog::default(),
        faults: FaultBook::default(),
        recipients: recipients::Recipients::default(),
        incs: incs::Incs::new(config.incs_certification_codes.clone(), config.incs_callback_delays, incs_callbacks)
            .with_template_review_delay(config.incs_template_review_delay)
            .with_api_codes(config.incs_api_certification_codes.clone(), config.strict),
        innopaas: innopaas::Innopaas::new(innopaas_credentials, config.innopaas_webhook_delays, innopaas_webhooks)
            .with_strict(config.strict),
    });

    let app_state = sandbox.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .app_data(web::PayloadConfig::new(MAX_BODY_BYTES))
            .configure(control::routes)
            .default_service(web::to(provider_request))
    })
    .workers(config.workers)
    // The embedding process owns signals; `main` turns Ctrl-C/SIGTERM into `stop`.
    .disable_signals()
    .shutdown_timeout(2)
    .bind(config.listen)?;

    let addr = server.addrs().first().copied().ok_or_else(|| io::Error::other("the server bound no address"))?;
    let server = server.run();
    let handle = server.handle();
    let server_task = tokio::spawn(server);

    Ok(SandboxHandle { addr, server: handle, server_task: Some(server_task), callback_tasks })
}

/// The single entry point of every provider path: record, consult the fault book, then answer as
/// the provider would.
async fn provider_request(req: HttpRequest, body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let provider = Provider::for_path(req.path());
    let body = Arc::new(RequestBody::parse(&body));
    sandbox.requests.record(provider, &req, Arc::clone(&body));
    tracing::debug!(%provider, method = %req.method(), path = req.path(), "provider request");

    if let Some(fault) = sandbox.faults.take_matching(provider, &req) {
        if !fault.delay.is_zero() {
            tokio::time::sleep(fault.delay).await;
        }
        if let Some(response) = fault.response(provider) {
            return response;
        }
    }

    if sandbox.strict && !matches!(*body, RequestBody::Empty) {
        if let Some(refusal) = not_json(provider, &req) {
            return refusal;
        }
    }
    match provider {
        Provider::Incs => sandbox.incs.handle(&req, &body, &sandbox.recipients),
        Provider::Innopaas => sandbox.innopaas.handle(&req, &body, &sandbox.recipients),
    }
}

/// Strict: a POST whose `Content-Type` is not JSON gets the provider's validation answer, as a
/// framework that reads only JSON bodies would give it.
fn not_json(provider: Provider, req: &HttpRequest) -> Option<HttpResponse> {
    if req.method() != actix_web::http::Method::POST {
        return None;
    }
    let content_type = req.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("");
    if content_type.trim().to_ascii_lowercase().starts_with("application/json") {
        return None;
    }
    Some(match provider {
        Provider::Incs => incs::not_json_answer(),
        Provider::Innopaas => innopaas::not_json_answer(),
    })
}

#[cfg(test)]
mod tests;
