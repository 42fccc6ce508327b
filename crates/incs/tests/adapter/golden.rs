//! Every request example in the INCS documents (seeds 000 and 001), sent through the adapter: the
//! body INCS receives must be the example itself.

use std::path::{Path, PathBuf};

use gateway_core::{Channel, MessageId, Provider};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request};

use crate::support::{account, message, success, whatsapp_text, CODE};

/// 15 WhatsApp, 5 Viber, 6 RCS examples.
const EXAMPLES: usize = 26;

fn golden_files() -> Vec<(Channel, PathBuf)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let mut files = Vec::new();
    for channel in Channel::ALL {
        let dir = root.join(channel.as_str());
        let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
        for entry in entries {
            let path = entry.expect("directory entry").path();
            if path.extension().is_some_and(|x| x == "json") {
                files.push((channel, path));
            }
        }
    }
    files.sort();
    files
}

/// Sends the example and returns the request INCS received, or why that failed.
async fn send_example(server: &MockServer, channel: Channel, example: &Value) -> Result<Request, String> {
    let msg = message(channel, example)?;
    let before = server.received_requests().await.unwrap_or_default().len();
    let receipt = account(server).send(&MessageId::new(), &msg).await.map_err(|e| format!("send failed: {e:?}"))?;
    if receipt.provider_message_id != "wamid.golden" {
        return Err(format!("unexpected receipt {receipt:?}"));
    }
    let received = server.received_requests().await.unwrap_or_default();
    if received.len() != before + 1 {
        return Err(format!("expected one request, INCS received {}", received.len() - before));
    }
    received.into_iter().last().ok_or_else(|| "no request".into())
}

fn check_request(req: &Request, channel: Channel, example: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    if req.method.as_str() != "POST" {
        problems.push(format!("method {}", req.method));
    }
    let want_path = format!("/external/messages/{}", channel.as_str());
    if req.url.path() != want_path {
        problems.push(format!("path {} (want {want_path})", req.url.path()));
    }
    if req.url.query().is_some() {
        problems.push(format!("unexpected query {:?}", req.url.query()));
    }
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("certification-code").as_deref() != Some(CODE) {
        problems.push(format!("certification-code header {:?}", header("certification-code").map(|_| "<wrong>")));
    }
    if header("content-type").as_deref() != Some("application/json") {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(body) if body == *example => {}
        Ok(body) => problems.push(format!(
            "body differs\n  sent:    {}\n  example: {}",
            serde_json::to_string(&body).unwrap_or_default(),
            serde_json::to_string(example).unwrap_or_default()
        )),
        Err(e) => problems.push(format!("body is not JSON: {e}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

#[tokio::test]
async fn every_documented_example_goes_out_as_documented() {
    let files = golden_files();
    assert_eq!(
        files.len(),
        EXAMPLES,
        "golden examples found: {:#?}",
        files.iter().map(|(_, p)| p.display().to_string()).collect::<Vec<_>>()
    );

    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("wamid.golden")).mount(&server).await;

    let mut failures = Vec::new();
    for (channel, path) in &files {
        let name = path.strip_prefix(env!("CARGO_MANIFEST_DIR")).unwrap_or(path).display().to_string();
        let example: Value = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        let result = match send_example(&server, *channel, &example).await {
            Ok(req) => check_request(&req, *channel, &example),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} of {EXAMPLES} golden examples failed:\n{}", failures.len(), failures.join("\n"));
}

/// Where the API takes more than INCS documents: what the adapter sends instead.
#[tokio::test]
async fn what_incs_does_not_take_is_left_out_or_reshaped() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("wamid.golden")).mount(&server).await;
    let wa = Channel::Whatsapp;
    let cases: &[(&str, Channel, Value, Value)] = &[
        (
            "text object becomes a plain string, preview_url dropped",
            wa,
            json!({"to": "85268411234", "type": "text", "text": {"body": "Hi https://x.io", "preview_url": true}}),
            json!({"to": "85268411234", "type": "text", "text": "Hi https://x.io"}),
        ),
        (
            "template language dropped",
            wa,
            json!({"to": "85268411234", "type": "template", "template": {"name": "hello_world", "language": "en_US"}}),
            json!({"to": "85268411234", "type": "template", "template": {"name": "hello_world"}}),
        ),
        (
            "authentication template language dropped",
            wa,
            json!({"to": "85268411234", "type": "template", "template": {"name": "auth", "code": "123456", "language": "en"}}),
            json!({"to": "85268411234", "type": "template", "template": {"name": "auth", "code": "123456"}}),
        ),
        (
            "WhatsApp document caption and filename pass through",
            wa,
            json!({"to": "85268411234", "type": "document", "document": {"link": "https://a.io/f.pdf", "caption": "Invoice", "filename": "invoice.pdf"}}),
            json!({"to": "85268411234", "type": "document", "document": {"link": "https://a.io/f.pdf", "caption": "Invoice", "filename": "invoice.pdf"}}),
        ),
        (
            "a leading + is dropped from the recipient",
            Channel::Viber,
            json!({"to": "+85268411234", "type": "text", "text": {"body": "Hello"}}),
            json!({"to": "85268411234", "type": "text", "text": "Hello"}),
        ),
        (
            "template button index given as a number goes out as a string",
            wa,
            json!({"to": "85268411234", "type": "template", "template": {"name": "c", "components": [
                {"type": "button", "sub_type": "COPY_CODE", "index": 0, "parameters": [{"type": "coupon_code", "coupon_code": "1"}]}]}}),
            json!({"to": "85268411234", "type": "template", "template": {"name": "c", "components": [
                {"type": "button", "sub_type": "COPY_CODE", "index": "0", "parameters": [{"type": "coupon_code", "coupon_code": "1"}]}]}}),
        ),
    ];
    let mut failures = Vec::new();
    for (name, channel, request, want) in cases {
        let result = match send_example(&server, *channel, request).await {
            Ok(req) => check_request(&req, *channel, want),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[tokio::test]
async fn a_path_prefix_on_the_base_url_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("wamid.golden")).expect(1).mount(&server).await;
    let account = crate::support::account_with(crate::support::config(&format!("{}/incs/", server.uri())));
    account.send(&MessageId::new(), &whatsapp_text()).await.expect("sent");
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received[0].url.path(), "/incs/external/messages/whatsapp");
}
