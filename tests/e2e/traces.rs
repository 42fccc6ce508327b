//! OpenTelemetry: a gateway process exports its spans over OTLP/HTTP (protobuf) to a receiver
//! this test runs, and one message's request, send, provider call and event deliveries are one
//! trace with the right parents, continued from the caller's `traceparent` or started anew.

use std::collections::HashMap;
use std::time::Duration;

use gateway_tests::*;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message as _;
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

const CALLBACK_TOKEN: &str = "sandbox-incs-callback";
use gateway_tests::WEBHOOK_SECRET;

#[derive(Debug, Clone)]
struct Exported {
    service: String,
    trace_id: String,
    span_id: String,
    parent: String,
    name: String,
    kind: i32,
    attributes: HashMap<String, String>,
}

/// Every span the receiver has been sent so far, decoded from the OTLP protobuf bodies.
async fn exported(receiver: &MockServer) -> Vec<Exported> {
    let mut spans = Vec::new();
    for request in receiver.received_requests().await.unwrap_or_default() {
        assert_eq!(
            request.headers.get("content-type").and_then(|v| v.to_str().ok()),
            Some("application/x-protobuf"),
            "OTLP/HTTP with protobuf bodies"
        );
        let export = ExportTraceServiceRequest::decode(request.body.as_slice()).expect("an OTLP trace export");
        for resource in export.resource_spans {
            let service = resource
                .resource
                .iter()
                .flat_map(|r| &r.attributes)
                .find(|a| a.key == "service.name")
                .map(|a| text(a.value.as_ref().and_then(|v| v.value.as_ref())))
                .unwrap_or_default();
            for span in resource.scope_spans.into_iter().flat_map(|s| s.spans) {
                let attributes = span
                    .attributes
                    .iter()
                    .map(|a| (a.key.clone(), text(a.value.as_ref().and_then(|v| v.value.as_ref()))))
                    .collect();
                spans.push(Exported {
                    service: service.clone(),
                    trace_id: hex::encode(&span.trace_id),
                    span_id: hex::encode(&span.span_id),
                    parent: hex::encode(&span.parent_span_id),
                    name: span.name,
                    kind: span.kind,
                    attributes,
                });
            }
        }
    }
    spans
}

fn text(v: Option<&AnyValue>) -> String {
    match v {
        Some(AnyValue::StringValue(s)) => s.clone(),
        Some(AnyValue::IntValue(i)) => i.to_string(),
        Some(AnyValue::BoolValue(b)) => b.to_string(),
        Some(AnyValue::DoubleValue(d)) => d.to_string(),
        other => format!("{other:?}"),
    }
}

async fn webhooks(sandbox: &TestSandbox) -> Vec<Value> {
    sandbox.client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.unwrap().json().await.unwrap()
}

/// The `message.status` webhooks about `id`, by status.
async fn status_webhooks(sandbox: &TestSandbox, id: &str) -> HashMap<String, Value> {
    webhooks(sandbox)
        .await
        .into_iter()
        .filter_map(|w| {
            let body: Value = serde_json::from_str(w["raw_body"].as_str()?).ok()?;
            (body["type"] == "message.status" && body["data"]["message_id"] == id)
                .then(|| (body["data"]["status"].as_str().unwrap_or_default().to_owned(), w))
        })
        .collect()
}

/// The spans of one message once all of them are exported: the accepting request, its send,
/// the provider call and the four `message.status` deliveries (submitted, sent, delivered, read).
struct MessageTrace {
    request: Exported,
    send: Exported,
    call: Exported,
    deliveries: Vec<Exported>,
}

async fn trace_of(receiver: &MockServer, message_id: &str) -> MessageTrace {
    let found = eventually(Duration::from_secs(30), || async {
        let spans = exported(receiver).await;
        let send = spans
            .iter()
            .find(|s| s.name == "send" && s.attributes.get("message_id").map(String::as_str) == Some(message_id))?;
        let in_trace: Vec<_> = spans.iter().filter(|s| s.trace_id == send.trace_id).cloned().collect();
        let request = in_trace.iter().find(|s| s.name == "POST /v1/messages")?.clone();
        let call = in_trace.iter().find(|s| s.name == "incs send")?.clone();
        let deliveries: Vec<_> = in_trace.iter().filter(|s| s.name == "deliver message.status").cloned().collect();
        (deliveries.len() >= 4).then(|| MessageTrace { request, send: send.clone(), call, deliveries })
    })
    .await;
    found.unwrap_or_else(|| panic!("the spans of message {message_id} never all arrived"))
}

fn assert_parents(t: &MessageTrace, trace_id: &str) {
    for s in [&t.request, &t.send, &t.call].into_iter().chain(&t.deliveries) {
        assert_eq!(s.trace_id, trace_id, "{} is in the message's trace", s.name);
        assert_eq!(s.service, "gateway-under-test", "{}: service.name from [tracing]", s.name);
    }
    assert_eq!(t.request.kind, SpanKind::Server as i32);
    assert_eq!(t.request.attributes.get("route").map(String::as_str), Some("/v1/messages"));
    assert_eq!(t.request.attributes.get("http.response.status_code").map(String::as_str), Some("202"));
    assert_eq!(t.send.parent, t.request.span_id, "the send is a child of the accepting request");
    assert_eq!(t.send.attributes.get("outcome").map(String::as_str), Some("submitted"));
    assert_eq!(t.call.parent, t.send.span_id, "the provider call is a child of the send");
    assert_eq!(t.call.kind, SpanKind::Client as i32);
    for d in &t.deliveries {
        assert_eq!(d.parent, t.request.span_id, "an event delivery is a child of the accepting request");
        assert_eq!(d.kind, SpanKind::Client as i32);
        assert_eq!(d.attributes.get("http.response.status_code").map(String::as_str), Some("204"), "{d:?}");
    }
}

/// Each webhook about the message carries the `traceparent` of the delivery span that sent it.
fn assert_webhooks_carry_their_spans(hooks: &HashMap<String, Value>, t: &MessageTrace, trace_id: &str) {
    for status in ["submitted", "sent", "delivered", "read"] {
        let hook = hooks.get(status).unwrap_or_else(|| panic!("no `{status}` webhook"));
        let tp =
            hook["headers"]["traceparent"].as_str().unwrap_or_else(|| panic!("`{status}` webhook: no traceparent"));
        let parts: Vec<&str> = tp.split('-').collect();
        assert_eq!(parts.len(), 4, "{tp}");
        assert_eq!((parts[0], parts[1], parts[3]), ("00", trace_id, "01"), "{status}: {tp}");
        assert!(t.deliveries.iter().any(|d| d.span_id == parts[2]), "{status}: {tp} names a delivery span");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_message_is_one_trace_from_request_to_provider_to_webhooks() {
    let receiver = MockServer::start().await;
    Mock::given(method("POST")).and(path("/v1/traces")).respond_with(ResponseTemplate::new(200)).mount(&receiver).await;
    let redis = RedisServer::start();
    let port = free_port();
    let sandbox = sandbox_calling_back(port).await;
    let extra = format!(
        "\n[tracing]\notlp_endpoint = \"{}\"\nservice_name = \"gateway-under-test\"\n{}",
        receiver.uri(),
        gateway_tests::sink_subscription(&sandbox.url(), &["message.status"], "")
    );
    let toml = gateway_toml(&redis.url(), &sandbox.url(), &extra);
    // Export every 100 ms rather than the default 5 s, so the test does not wait on batching.
    let gw = GatewayProcess::spawn_with(&toml, port, &[("OTEL_BSP_SCHEDULE_DELAY", "100")]).await;

    // A caller in a trace of its own.
    let caller_trace = uuid::Uuid::new_v4().simple().to_string();
    let caller_span = &uuid::Uuid::new_v4().simple().to_string()[..16];
    let res = gw
        .client
        .post(format!("{}/v1/messages", gw.base_url))
        .bearer_auth(API_KEY)
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "traced"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let continued: Value = res.json().await.unwrap();
    let continued = continued["id"].as_str().unwrap().to_owned();

    // A caller with no trace (and one whose traceparent is malformed): the gateway starts one.
    let mut started = Vec::new();
    for traceparent in [None, Some("00-not-a-trace-01")] {
        let mut req = gw.client.post(format!("{}/v1/messages", gw.base_url)).bearer_auth(API_KEY);
        if let Some(tp) = traceparent {
            req = req.header("traceparent", tp);
        }
        let res = req
            .json(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "untraced"}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 202);
        let body: Value = res.json().await.unwrap();
        started.push(body["id"].as_str().unwrap().to_owned());
    }

    for id in std::iter::once(&continued).chain(&started) {
        let read = eventually(Duration::from_secs(20), || async {
            let hooks = status_webhooks(&sandbox, id).await;
            (hooks.len() >= 4).then_some(hooks)
        })
        .await;
        assert!(read.is_some(), "message {id}: the four status webhooks never arrived");
    }

    let t = trace_of(&receiver, &continued).await;
    assert_eq!(t.request.parent, caller_span, "the request continues the caller's span");
    assert_parents(&t, &caller_trace);
    assert_webhooks_carry_their_spans(&status_webhooks(&sandbox, &continued).await, &t, &caller_trace);

    let mut new_traces = Vec::new();
    for id in &started {
        let t = trace_of(&receiver, id).await;
        assert!(t.request.parent.is_empty(), "with no valid traceparent the request starts the trace");
        assert_ne!(t.send.trace_id, caller_trace);
        let trace_id = t.request.trace_id.clone();
        assert_parents(&t, &trace_id);
        assert_webhooks_carry_their_spans(&status_webhooks(&sandbox, id).await, &t, &trace_id);
        new_traces.push(trace_id);
    }
    assert_ne!(new_traces[0], new_traces[1], "each new request starts its own trace");

    // The callbacks that brought the statuses are spans too, named by route, never by token.
    let spans = exported(&receiver).await;
    assert!(
        spans.iter().any(|s| s.name == "POST /callbacks/incs/{token}"),
        "callback requests are traced under their route template"
    );
    for s in &spans {
        let text = format!("{} {:?}", s.name, s.attributes);
        for secret in [API_KEY, INCS_CODE, CALLBACK_TOKEN, WEBHOOK_SECRET, "c2FuZGJveC13ZWJob29rLXNlY3JldA"] {
            assert!(!text.contains(secret), "a secret in span {text}");
        }
        assert!(!text.contains("_sandbox/webhooks"), "a subscription URL in span {text}");
    }
}
