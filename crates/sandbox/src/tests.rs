//! End-to-end tests of the sandbox over real HTTP: each test spawns its own sandbox on port 0.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use base64::Engine as _;
use reqwest::StatusCode;
use serde_json::{json, Value};

use super::*;

const CODE_A: &str = DEFAULT_INCS_CERTIFICATION_CODES[0];
const CODE_B: &str = DEFAULT_INCS_CERTIFICATION_CODES[1];

struct Running {
    sandbox: SandboxHandle,
    http: reqwest::Client,
}

impl Running {
    async fn start(config: SandboxConfig) -> Running {
        let sandbox =
            spawn(SandboxConfig { listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)), ..config }).await.unwrap();
        let http = reqwest::Client::builder().no_proxy().build().unwrap();
        Running { sandbox, http }
    }

    async fn default() -> Running {
        Running::start(SandboxConfig::default()).await
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.sandbox.base_url())
    }

    /// Sends a raw body to an INCS send path with a certification code.
    async fn send_raw(&self, channel: &str, code: Option<&str>, body: &str) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(&format!("/external/messages/{channel}")))
            .header("content-type", "application/json")
            .body(body.to_owned());
        if let Some(code) = code {
            request = request.header("certification-code", code);
        }
        request.send().await.unwrap()
    }

    async fn send(&self, channel: &str, body: Value) -> (StatusCode, Value) {
        let response = self.send_raw(channel, Some(CODE_A), &body.to_string()).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn get_json(&self, path: &str) -> Value {
        let response = self.http.get(self.url(path)).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::OK, "GET {path}");
        response.json().await.unwrap()
    }

    async fn add_fault(&self, fault: Value) {
        let response = self.http.post(self.url("/_sandbox/faults")).json(&fault).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::CREATED, "{fault}");
    }

    async fn poll_status(&self, code: &str, ids: &str) -> (StatusCode, Value) {
        let response = self
            .http
            .get(self.url("/external/messages/status"))
            .query(&[("message_ids", ids)])
            .header("certification-code", code)
            .send()
            .await
            .unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

fn text_message() -> Value {
    json!({"to": "85268411234", "type": "text", "text": "Hello"})
}

fn error_envelope(code: u64, message: &str) -> Value {
    json!({"status": "error", "code": code, "message": message, "data": {}, "error": {}})
}

fn msg_id(envelope: &Value) -> String {
    assert_eq!(envelope["status"], "success", "{envelope}");
    assert_eq!(envelope["code"], 200, "{envelope}");
    assert_eq!(envelope["message"], "", "{envelope}");
    assert_eq!(envelope["error"], json!({}), "{envelope}");
    envelope["data"]["msg_id"].as_str().expect("msg_id").to_owned()
}

#[tokio::test]
async fn certification_code_is_required_and_checked() {
    let sandbox = Running::default().await;
    let body = text_message().to_string();

    for code in [None, Some("af92196e-0d07-3c1d-a631-a71c00000000"), Some("")] {
        let response = sandbox.send_raw("whatsapp", code, &body).await;
        // INCS's own codes come with HTTP 200: only the body says it failed.
        assert_eq!(response.status(), StatusCode::OK, "{code:?}");
        let envelope: Value = response.json().await.unwrap();
        assert_eq!(envelope, error_envelope(10001, "Certification code invalid"), "{code:?}");
    }

    for code in [CODE_A, CODE_B] {
        let response = sandbox.send_raw("whatsapp", Some(code), &body).await;
        assert_eq!(response.status(), StatusCode::OK);
        let envelope: Value = response.json().await.unwrap();
        assert!(msg_id(&envelope).starts_with("wamid."));
    }

    let (status, envelope) = sandbox.poll_status("nope", "x").await;
    assert_eq!((status, envelope), (StatusCode::OK, error_envelope(10001, "Certification code invalid")));
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn configured_certification_codes_replace_the_defaults() {
    let sandbox = Running::start(SandboxConfig {
        incs_certification_codes: vec!["lane-1".into(), "lane-2".into()],
        ..SandboxConfig::default()
    })
    .await;
    let body = text_message().to_string();
    let refused: Value = sandbox.send_raw("viber", Some(CODE_A), &body).await.json().await.unwrap();
    assert_eq!(refused["code"], 10001);
    let accepted: Value = sandbox.send_raw("viber", Some("lane-2"), &body).await.json().await.unwrap();
    msg_id(&accepted);
    sandbox.sandbox.stop().await;
}

/// The request examples of seeds/000 (and the interactive ones of seeds/001), verbatim except for
/// their `//` comments.
const WHATSAPP_EXAMPLES: &[&str] = &[
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_button_reply_1"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_header_image_5",
 "components": [
 {
 "type": "header",
 "parameters": [
 {
 "type": "image",
 "image": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"
 }
 }
 ]
 }
 ]
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_header_text_2",
 "components": [
 {
 "type": "header",
 "parameters": [
 {
 "type": "text",
 "text": "2025-10-01"
 }
 ]
 },
 {
 "type": "body",
 "parameters":[
 {
 "type": "text",
 "text": "the end of 2025"
 },
 {
 "type": "text",
 "text": "25OFF"
 },
 {
 "type": "text",
 "text": "25%"
 }
 ]
 }
 ]
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_button_code_1",
 "components": [
 {
 "type": "button",
 "sub_type": "COPY_CODE",
 "index": "0",
 "parameters": [
 {
 "type": "coupon_code",
 "coupon_code": "843924"
 }
 ]
 }
 ]
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "text",
 "text": "Hello"
}"#,
    r#"{
 "to": "85268411234",
 "type": "image",
 "image": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "video",
 "video": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/687710788353f.mp4"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "audio",
 "audio": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/68771078812f353f.mp3"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "document",
 "document": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/files/template.xls"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "authentication_ca",
 "code": "123456"
 }
}"#,
    r#"{
 "to": "16505551234",
 "type": "interactive",
 "interactive": {
 "type": "cta_url",
 "header": {
 "type": "image",
 "image": {
 "link": "https://www.luckyshrub.com/assets/lucky-shrub-banner-logo-v1.png"
 }
 },
 "body": {
 "text": "Tap the button below to see available dates."
 },
 "action": {
 "name": "cta_url",
 "parameters": {
 "display_text": "See Dates",
 "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"
 }
 },
 "footer": {
 "text": "Dates subject to change."
 }
 }
}"#,
    r#"{
 "to": "16505551234",
 "type": "interactive",
 "interactive": {
 "type": "list",
 "header": {
 "type": "text",
 "text": "Choose Shipping Option"
 },
 "body": {
 "text": "Which shipping option do you prefer?"
 },
 "footer": {
 "text": "Lucky Shrub: Your gateway to succulents™"
 },
 "action": {
 "button": "Shipping Options",
 "sections": [
 {
 "title": "I want it ASAP!",
 "rows": [
 {
 "id": "priority_express",
 "title": "Priority Mail Express",
 "description": "Next Day to 2 Days"
 },
 {
 "id": "priority_mail",
 "title": "Priority Mail",
 "description": "1–3 Days"
 }
 ]
 },
 {
 "title": "I can wait a bit",
 "rows": [
 {
 "id": "usps_ground_advantage",
 "title": "USPS Ground Advantage",
 "description": "2–5 Days"
 },
 {
 "id": "media_mail",
 "title": "Media Mail",
 "description": "2–8 Days"
 }
 ]
 }
 ]
 }
 }
}"#,
    r#"{
 "to": "16505551234",
 "type": "interactive",
 "interactive": {
 "type": "button",
 "header": {
 "type": "image",
 "image": {
 "link": "https://static.incsapp.com/chat/images/123456.jpg"
 }
 },
 "body": {
 "text": "Hi Pablo! Your gardening workshop is scheduled for 9am tomorrow. Use the buttons if you need to reschedule. Thank you!"
 },
 "footer": {
 "text": "Lucky Shrub: Your gateway to succulents!™"
 },
 "action": {
 "buttons": [
 {
 "type": "reply",
 "reply": {
 "id": "change-button",
 "title": "Change"
 }
 },
 {
 "type": "reply",
 "reply": {
 "id": "cancel-button",
 "title": "Cancel"
 }
 }
 ]
 }
 }
}"#,
];

const VIBER_EXAMPLES: &[&str] = &[
    r#"{
 "to": "85268411234",
 "type": "otp",
 "otp": {
 "code": "123456",
 "language": "en",
 "code_expiration_minutes": 3
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "text",
 "text": "Hello"
}"#,
    r#"{
 "to": "85268411234",
 "type": "image",
 "image": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "video",
 "video": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/687710788353f.mp4"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "document",
 "document": {
 "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/files/template.xls"
 }
}"#,
];

const RCS_EXAMPLES: &[&str] = &[
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_button_reply_1"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "template",
 "template": {
 "name": "test_button_reply_1",
 "parameters": {
 "username": "jack",
 "service_name": "promotion"
 }
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "text",
 "text": "Hello"
}"#,
    r#"{
 "to": "85268411234",
 "type": "image",
 "image": {
 "link": "https://static.incsapp.com/chat/images/header-98403274893.png"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "video",
 "video": {
 "link": "https://static.incsapp.com/chat/videos/abc.mp4"
 }
}"#,
    r#"{
 "to": "85268411234",
 "type": "document",
 "document": {
 "link": "https://static.incsapp.com/chat/files/template.pdf"
 }
}"#,
];

#[tokio::test]
async fn every_documented_example_is_accepted_with_a_realistic_id() {
    let sandbox = Running::default().await;
    let mut ids = std::collections::HashSet::new();
    for (channel, examples) in [("whatsapp", WHATSAPP_EXAMPLES), ("viber", VIBER_EXAMPLES), ("rcs", RCS_EXAMPLES)] {
        for example in examples {
            let response = sandbox.send_raw(channel, Some(CODE_A), example).await;
            assert_eq!(response.status(), StatusCode::OK, "{channel}: {example}");
            let envelope: Value = response.json().await.unwrap();
            let id = msg_id(&envelope);
            match channel {
                "whatsapp" => {
                    let encoded = id.strip_prefix("wamid.").expect("wamid. prefix");
                    let raw = base64::engine::general_purpose::STANDARD.decode(encoded).unwrap();
                    let to = serde_json::from_str::<Value>(example).unwrap()["to"].as_str().unwrap().to_owned();
                    assert_eq!(&raw[3..3 + to.len()], to.as_bytes(), "{id}");
                }
                "viber" => assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 4),
                _ => assert_eq!(uuid::Uuid::parse_str(&id).unwrap().get_version_num(), 7),
            }
            assert!(ids.insert(id), "ids are unique");
        }
    }
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn invalid_phone_numbers_get_a_422_envelope() {
    let sandbox = Running::default().await;
    for to in ["+85268411234", "8526841", "85268411234567890", "852-6841-1234"] {
        let (status, envelope) = sandbox.send("whatsapp", json!({"to": to, "type": "text", "text": "Hello"})).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{to}");
        assert_eq!(envelope, error_envelope(422, "The phone number is invalid."), "{to}");
    }
    let (status, envelope) =
        sandbox.send("rcs", json!({"to": "85268411234", "type": "audio", "audio": {"link": "https://x/a.mp3"}})).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(envelope["code"], 422);
    assert!(envelope["message"].as_str().unwrap().contains("rcs messages can be"), "{envelope}");

    let response = sandbox.send_raw("viber", Some(CODE_A), "not json").await;
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_in_the_envelope() {
    let sandbox = Running::default().await;
    let response = sandbox.send_raw("sms", Some(CODE_A), &text_message().to_string()).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap(), error_envelope(404, "Not Found"));

    let response = sandbox
        .http
        .get(sandbox.url("/external/messages/whatsapp"))
        .header("certification-code", CODE_A)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 405);

    // Unknown control paths are not provider requests.
    let response = sandbox.http.get(sandbox.url("/_sandbox/nope")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let recorded = sandbox.get_json("/_sandbox/requests").await;
    let paths: Vec<&str> = recorded.as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
    assert_eq!(paths, ["/external/messages/sms", "/external/messages/whatsapp"]);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn a_counted_fault_answers_that_many_requests_then_service_resumes() {
    let sandbox = Running::default().await;
    sandbox.add_fault(json!({"provider": "incs", "status": 429, "retry_after": 2, "count": 2})).await;

    for _ in 0..2 {
        let response = sandbox.send_raw("whatsapp", Some(CODE_A), &text_message().to_string()).await;
        assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
        let retry_after = response.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned());
        assert_eq!(retry_after.as_deref(), Some("2"));
        assert_eq!(response.json::<Value>().await.unwrap(), error_envelope(429, "Too Many Attempts."));
    }
    let (status, envelope) = sandbox.send("whatsapp", text_message()).await;
    assert_eq!(status, StatusCode::OK);
    msg_id(&envelope);
    assert_eq!(sandbox.get_json("/_sandbox/faults").await, json!([]));

    // Faulted requests are recorded like any other.
    let recorded = sandbox.get_json("/_sandbox/requests?provider=incs").await;
    assert_eq!(recorded.as_array().unwrap().len(), 3);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn a_fault_matched_on_one_certification_code_leaves_other_lanes_alone() {
    let sandbox = Running::default().await;
    sandbox
        .add_fault(json!({
            "provider": "incs",
            "status": 500,
            "match": {"path": "/external/messages/whatsapp", "headers": {"certification-code": CODE_B}}
        }))
        .await;
    let body = text_message().to_string();

    for _ in 0..3 {
        let faulted = sandbox.send_raw("whatsapp", Some(CODE_B), &body).await;
        assert_eq!(faulted.status(), StatusCode::INTERNAL_SERVER_ERROR);
        assert!(faulted.headers().get("retry-after").is_none());
        assert_eq!(faulted.json::<Value>().await.unwrap(), error_envelope(500, "Server Error"));

        let healthy = sandbox.send_raw("whatsapp", Some(CODE_A), &body).await;
        assert_eq!(healthy.status(), StatusCode::OK);
        msg_id(&healthy.json().await.unwrap());
    }
    // Another path on the faulted lane is unaffected too.
    let viber = sandbox.send_raw("viber", Some(CODE_B), &body).await;
    assert_eq!(viber.status(), StatusCode::OK);

    let listed = sandbox.get_json("/_sandbox/faults").await;
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert_eq!(listed[0]["count"], Value::Null);
    let cleared = sandbox.http.delete(sandbox.url("/_sandbox/faults")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(sandbox.send_raw("whatsapp", Some(CODE_B), &body).await.status(), StatusCode::OK);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn faults_can_carry_provider_codes_custom_bodies_and_target_innopaas() {
    let sandbox = Running::default().await;
    sandbox.add_fault(json!({"provider": "innopaas", "status": 503})).await;
    sandbox
        .add_fault(json!({"provider": "incs", "status": 10002, "count": 1,
                          "match": {"path": "/external/messages/whatsapp"}}))
        .await;
    let custom = json!({"status": "error", "code": 10003, "message": "Message failed", "data": {}, "error": {}});
    sandbox.add_fault(json!({"provider": "incs", "status": 200, "body": custom, "count": 1})).await;

    let (status, envelope) = sandbox.send("whatsapp", text_message()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(envelope, error_envelope(10002, "(#131000) Something went wrong"));
    let (status, envelope) = sandbox.send("viber", text_message()).await;
    assert_eq!((status, envelope), (StatusCode::OK, custom));
    let (status, envelope) = sandbox.send("viber", text_message()).await;
    assert_eq!(status, StatusCode::OK);
    msg_id(&envelope);

    let innopaas = sandbox
        .http
        .post(sandbox.url("/api/whatsapp/v3/msg/submit"))
        .json(&json!({"wabaId": "1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(innopaas.status(), StatusCode::SERVICE_UNAVAILABLE);
    let recorded = sandbox.get_json("/_sandbox/requests?provider=innopaas").await;
    assert_eq!(recorded.as_array().unwrap().len(), 1);
    assert_eq!(recorded[0]["provider"], "innopaas");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn malformed_faults_get_400_with_a_message() {
    let sandbox = Running::default().await;
    for fault in [
        json!({"status": 429}),
        json!({"provider": "incs", "status": 42}),
        json!({"provider": "incs", "status": 429, "count": 0}),
        json!({"provider": "incs", "status": 429, "retry-after": 2}),
    ] {
        let response = sandbox.http.post(sandbox.url("/_sandbox/faults")).json(&fault).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{fault}");
        let problem: Value = response.json().await.unwrap();
        assert!(problem["error"].as_str().unwrap().starts_with("invalid fault"), "{problem}");
    }
    let response = sandbox.http.post(sandbox.url("/_sandbox/faults")).body("{").send().await.unwrap();
    assert_eq!(response.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.get_json("/_sandbox/faults").await, json!([]));
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn a_delay_only_fault_slows_the_normal_answer() {
    let sandbox = Running::default().await;
    sandbox.add_fault(json!({"provider": "incs", "delay_ms": 400, "count": 1})).await;

    let started = Instant::now();
    let (status, envelope) = sandbox.send("whatsapp", text_message()).await;
    let slow = started.elapsed();
    assert_eq!(status, StatusCode::OK);
    msg_id(&envelope);
    assert!(slow >= Duration::from_millis(400), "answered after {slow:?}");

    let started = Instant::now();
    sandbox.send("whatsapp", text_message()).await;
    let fast = started.elapsed();
    assert!(fast < Duration::from_millis(400), "second answer took {fast:?}");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn requests_are_recorded_in_the_documented_shape() {
    let sandbox = Running::default().await;
    let body = json!({"to": "85268411234", "type": "text", "text": "Hello"});
    let response = sandbox
        .http
        .post(sandbox.url("/external/messages/whatsapp?trace=1&x=a%2Cb"))
        .header("Content-Type", "application/json")
        .header("Certification-Code", CODE_A)
        .header("X-Request-ID", "req-42")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    // Recorded even though auth fails; bodies that are not JSON are kept as text, empty as null.
    sandbox.send_raw("viber", None, "hello there").await;
    sandbox.poll_status(CODE_A, "a,b").await;

    let recorded = sandbox.get_json("/_sandbox/requests").await;
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 3);

    let first = recorded[0].as_object().unwrap();
    let mut keys: Vec<&str> = first.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(keys, ["body", "headers", "method", "path", "provider", "query", "received_at"]);
    assert_eq!(first["provider"], "incs");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["path"], "/external/messages/whatsapp");
    assert_eq!(first["query"], "trace=1&x=a%2Cb");
    assert_eq!(first["body"], body);
    let headers = first["headers"].as_object().unwrap();
    assert_eq!(headers["certification-code"], CODE_A);
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers["x-request-id"], "req-42");
    assert!(headers.keys().all(|name| name == &name.to_lowercase()), "{headers:?}");

    let received_at = first["received_at"].as_str().unwrap();
    assert_eq!(received_at.len(), "2026-11-21T10:00:00.123Z".len(), "{received_at}");
    assert_eq!((&received_at[19..20], &received_at[23..]), (".", "Z"), "{received_at}");
    let parsed = chrono::DateTime::parse_from_rfc3339(received_at).unwrap();
    assert!((chrono::Utc::now() - parsed.with_timezone(&chrono::Utc)).num_seconds().abs() < 60);

    assert_eq!(recorded[1]["body"], "hello there");
    assert_eq!(recorded[2]["method"], "GET");
    assert_eq!(recorded[2]["query"], "message_ids=a%2Cb");
    assert_eq!(recorded[2]["body"], Value::Null);

    assert_eq!(sandbox.get_json("/_sandbox/requests?provider=innopaas").await, json!([]));
    let bad = sandbox.http.get(sandbox.url("/_sandbox/requests?provider=sms")).send().await.unwrap();
    assert_eq!(bad.status(), StatusCode::BAD_REQUEST);

    let cleared = sandbox.http.delete(sandbox.url("/_sandbox/requests")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(sandbox.get_json("/_sandbox/requests").await, json!([]));
    // The totals outlive the cleared log.
    let counts = sandbox.get_json("/_sandbox/counts").await;
    let total: u64 = counts["requests"].as_object().unwrap().values().map(|n| n.as_u64().unwrap()).sum();
    assert_eq!(total, 3, "{counts}");
    assert_eq!(counts["requests"]["GET /external/messages/status"], 1, "{counts}");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn the_status_poll_reports_what_the_sandbox_issued() {
    // No delays: a message is read as soon as it is accepted.
    let instant =
        Running::start(SandboxConfig { incs_callback_delays: [Duration::ZERO; 3], ..SandboxConfig::default() }).await;
    let (_, whatsapp) = instant.send("whatsapp", text_message()).await;
    let (_, rcs) = instant.send("rcs", text_message()).await;
    let (whatsapp, rcs) = (msg_id(&whatsapp), msg_id(&rcs));

    let ids = format!("{whatsapp},unknown-id,{rcs}");
    // Any configured code may poll; the other family's code sees the same messages.
    let (status, envelope) = instant.poll_status(CODE_B, &ids).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(envelope["status"], "success");
    assert_eq!(envelope["code"], 200);
    let rows = envelope["data"]["data"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "unknown ids are left out: {envelope}");
    let now = chrono::Utc::now().timestamp();
    for (row, id) in rows.iter().zip([&whatsapp, &rcs]) {
        assert_eq!(row["message_id"], id.as_str());
        assert_eq!(row["message_status"], "read");
        let created_at = row["created_at"].as_i64().unwrap();
        assert!((now - created_at).abs() <= 2, "{row}");
        assert_eq!(row["delivered_at"].as_i64(), Some(created_at));
        assert_eq!(row["read_at"].as_i64(), Some(created_at));
    }

    let too_many = vec!["id"; 101].join(",");
    let (status, envelope) = instant.poll_status(CODE_A, &too_many).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(envelope, error_envelope(422, "The message ids may not have more than 100 items."));
    let (status, _) = instant.poll_status(CODE_A, "").await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    instant.sandbox.stop().await;

    // Long delays: still only accepted, nothing delivered or read.
    let slow = Running::start(SandboxConfig {
        incs_callback_delays: [Duration::from_secs(3600); 3],
        ..SandboxConfig::default()
    })
    .await;
    let (_, viber) = slow.send("viber", text_message()).await;
    let viber = msg_id(&viber);
    let (_, envelope) = slow.poll_status(CODE_A, &viber).await;
    let row = &envelope["data"]["data"][0];
    assert_eq!(row["message_status"], "accepted");
    assert_eq!((row["delivered_at"].as_i64(), row["read_at"].as_i64()), (Some(0), Some(0)));
    slow.sandbox.stop().await;
}

#[tokio::test]
async fn callbacks_arrive_in_order_sent_delivered_read() {
    // A second sandbox's webhook consumer stands in for the gateway's callback endpoint.
    let receiver = Running::default().await;
    let callback_url = receiver.url("/_sandbox/webhooks");
    let delays = [Duration::from_millis(50), Duration::from_millis(150), Duration::from_millis(250)];
    let sandbox = Running::start(SandboxConfig {
        incs_callback_url: Some(callback_url),
        incs_callback_delays: delays,
        ..SandboxConfig::default()
    })
    .await;

    let accepted_at = chrono::Utc::now().timestamp();
    let response = sandbox.send_raw("whatsapp", Some(CODE_B), &text_message().to_string()).await;
    let id = msg_id(&response.json().await.unwrap());

    let deadline = Instant::now() + Duration::from_secs(10);
    let webhooks = loop {
        let webhooks = receiver.get_json("/_sandbox/webhooks").await;
        if webhooks.as_array().unwrap().len() >= 3 || Instant::now() > deadline {
            break webhooks;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let webhooks = webhooks.as_array().unwrap();
    assert_eq!(webhooks.len(), 3, "{webhooks:?}");

    let statuses: Vec<String> = webhooks
        .iter()
        .map(|webhook| {
            assert_eq!(webhook["headers"]["content-type"], "application/json");
            let body: Value = serde_json::from_str(webhook["raw_body"].as_str().unwrap()).unwrap();
            let object = body.as_object().unwrap();
            assert_eq!(object.len(), 7, "{body}");
            assert_eq!(body["event"], "message_status_update");
            // The second certification code is the second INCS channel.
            assert_eq!(body["channel_id"], 30059);
            assert_eq!(body["business_phone"], "6281519236681");
            assert_eq!(body["message_id"], id.as_str());
            assert_eq!(body["error"], Value::Null);
            let received_at = body["received_at"].as_i64().unwrap();
            assert!((received_at - accepted_at).abs() <= 2, "{body}");
            body["message_status"].as_str().unwrap().to_owned()
        })
        .collect();
    assert_eq!(statuses, ["sent", "delivered", "read"]);

    let (_, envelope) = sandbox.poll_status(CODE_A, &id).await;
    assert_eq!(envelope["data"]["data"][0]["message_status"], "read");

    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn an_unreachable_callback_url_does_not_disturb_sending() {
    let sandbox = Running::start(SandboxConfig {
        incs_callback_url: Some("http://127.0.0.1:9/callbacks".into()),
        incs_callback_delays: [Duration::ZERO; 3],
        ..SandboxConfig::default()
    })
    .await;
    for _ in 0..3 {
        let (status, envelope) = sandbox.send("viber", text_message()).await;
        assert_eq!(status, StatusCode::OK);
        msg_id(&envelope);
    }
    let health = sandbox.http.get(sandbox.url("/_sandbox/health")).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::OK);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn webhooks_are_recorded_byte_for_byte() {
    let sandbox = Running::default().await;
    // Key order, spacing and non-ASCII must survive: signatures are computed over these bytes.
    let raw = "{\"type\":\"message.status\",  \"z\":1,\"a\":\"caf\u{e9} \u{2713}\"}\n";
    let response = sandbox
        .http
        .post(sandbox.url("/_sandbox/webhooks"))
        .header("Webhook-Id", "msg_1")
        .header("webhook-signature", "v1,abc=")
        .body(raw)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    sandbox.http.post(sandbox.url("/_sandbox/webhooks")).body("second").send().await.unwrap();

    let webhooks = sandbox.get_json("/_sandbox/webhooks").await;
    let webhooks = webhooks.as_array().unwrap();
    assert_eq!(webhooks.len(), 2);
    assert_eq!(webhooks[0]["raw_body"], raw);
    assert_eq!(webhooks[0]["headers"]["webhook-id"], "msg_1");
    assert_eq!(webhooks[0]["headers"]["webhook-signature"], "v1,abc=");
    assert!(webhooks[0]["received_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(webhooks[1]["raw_body"], "second");
    // Webhook deliveries are not provider requests.
    assert_eq!(sandbox.get_json("/_sandbox/requests").await, json!([]));

    let cleared = sandbox.http.delete(sandbox.url("/_sandbox/webhooks")).send().await.unwrap();
    assert_eq!(cleared.status(), StatusCode::NO_CONTENT);
    assert_eq!(sandbox.get_json("/_sandbox/webhooks").await, json!([]));
    assert_eq!(sandbox.get_json("/_sandbox/counts").await["webhooks"], 2);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn health_answers_and_bad_configs_are_refused() {
    let sandbox = Running::default().await;
    assert_eq!(sandbox.get_json("/_sandbox/health").await["status"], "ok");
    assert!(sandbox.sandbox.base_url().starts_with("http://127.0.0.1:"));
    assert_ne!(sandbox.sandbox.addr().port(), 0);
    sandbox.sandbox.stop().await;

    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    for config in [
        SandboxConfig { listen, incs_certification_codes: vec![], ..SandboxConfig::default() },
        SandboxConfig { listen, incs_callback_url: Some("not a url".into()), ..SandboxConfig::default() },
        SandboxConfig {
            listen,
            incs_callback_delays: [Duration::from_millis(300), Duration::from_millis(100), Duration::from_millis(600)],
            ..SandboxConfig::default()
        },
        SandboxConfig { listen, workers: 0, ..SandboxConfig::default() },
    ] {
        let error = spawn(config).await.err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
    }
}

#[test]
fn debug_output_hides_certification_codes() {
    let shown = format!("{:?}", SandboxConfig::default());
    assert!(!shown.contains(CODE_A), "{shown}");
    assert!(shown.contains("2 redacted"), "{shown}");
}

#[test]
fn paths_map_to_providers() {
    assert_eq!(Provider::for_path("/external/messages/whatsapp"), Provider::Incs);
    assert_eq!(Provider::for_path("/api/whatsapp/v3/msg/submit"), Provider::Innopaas);
    assert_eq!("innopaas".parse::<Provider>(), Ok(Provider::Innopaas));
    assert!("sms".parse::<Provider>().is_err());
}

// ---------------------------------------------------------------------------------------------
// InnoPaaS (PROVIDERS.md §2, seeds/004).

const INNO_KEY: &str = DEFAULT_INNOPAAS_APP_KEY;
const INNO_TOKEN: &str = DEFAULT_INNOPAAS_TOKEN;

impl Running {
    /// POSTs a body to an InnoPaaS path with the given credentials (`None`: header left out).
    async fn innopaas_raw(
        &self,
        path: &str,
        app_key: Option<&str>,
        token: Option<&str>,
        body: &str,
    ) -> reqwest::Response {
        let mut request = self
            .http
            .post(self.url(path))
            .header("content-type", "application/json;charset=utf-8")
            .body(body.to_owned());
        if let Some(app_key) = app_key {
            request = request.header("AppKey", app_key);
        }
        if let Some(token) = token {
            request = request.header("Authorization", token);
        }
        request.send().await.unwrap()
    }

    async fn innopaas(&self, path: &str, body: Value) -> (StatusCode, Value) {
        let response = self.innopaas_raw(path, Some(INNO_KEY), Some(INNO_TOKEN), &body.to_string()).await;
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn webhooks_when(&self, count: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let webhooks = self.get_json("/_sandbox/webhooks").await;
            let webhooks = webhooks.as_array().unwrap().clone();
            if webhooks.len() >= count || Instant::now() > deadline {
                return webhooks;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

fn inno_text() -> Value {
    json!({"wabaId": "104417182520443", "messageType": "text", "uid": "01936f3e8c4a7b219d3e5a1f2b3c4d5e",
           "sendNumber": "85230012345", "recipientNumber": "85268411234", "body": "Hello"})
}

fn inno_error(code: &str, message: &str) -> Value {
    json!({"code": code, "success": false, "message": message, "data": null})
}

/// The id of a success envelope: a string of digits.
fn inno_id(envelope: &Value) -> String {
    assert_eq!(envelope["code"], "0", "{envelope}");
    assert_eq!(envelope["success"], true, "{envelope}");
    assert_eq!(envelope["message"], "Success", "{envelope}");
    let id = envelope["data"].as_str().expect("data is a string id").to_owned();
    assert!(id.len() >= 18 && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
    id
}

#[tokio::test]
async fn innopaas_checks_app_key_and_token() {
    let sandbox = Running::default().await;
    let body = inno_text().to_string();
    let refused = [
        (None, Some(INNO_TOKEN), "Authentication failed: the AppKey header is missing"),
        (Some("nope"), Some(INNO_TOKEN), "Authentication failed: unknown AppKey"),
        (Some(INNO_KEY), None, "Authentication failed: the Authorization token does not match the AppKey"),
        (Some(INNO_KEY), Some("wrong"), "Authentication failed: the Authorization token does not match the AppKey"),
    ];
    for (key, token, message) in refused {
        let response = sandbox.innopaas_raw(INNOPAAS_SUBMIT_PATH, key, token, &body).await;
        // InnoPaaS's own codes come with HTTP 200: only the body says it failed.
        assert_eq!(response.status(), StatusCode::OK, "{key:?} {token:?}");
        assert_eq!(response.json::<Value>().await.unwrap(), inno_error("102", message));
    }
    // The token goes as it is: InnoPaaS uses no `Bearer` prefix.
    let bearer = format!("Bearer {INNO_TOKEN}");
    let response = sandbox.innopaas_raw(INNOPAAS_SUBMIT_PATH, Some(INNO_KEY), Some(&bearer), &body).await;
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "102");

    let (status, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_eq!(status, StatusCode::OK);
    let first = inno_id(&envelope);
    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_ne!(inno_id(&envelope), first, "ids are unique");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn configured_innopaas_credentials_are_pairs() {
    let sandbox = Running::start(SandboxConfig {
        innopaas_app_keys: vec!["key-a".into(), "key-b".into()],
        innopaas_tokens: vec!["token-a".into(), "token-b".into()],
        ..SandboxConfig::default()
    })
    .await;
    let body = inno_text().to_string();
    for (key, token, accepted) in [
        ("key-a", "token-a", true),
        ("key-b", "token-b", true),
        ("key-a", "token-b", false),
        (INNO_KEY, INNO_TOKEN, false),
    ] {
        let envelope: Value =
            sandbox.innopaas_raw(INNOPAAS_SUBMIT_PATH, Some(key), Some(token), &body).await.json().await.unwrap();
        assert_eq!(envelope["code"] == "0", accepted, "{key} {token}: {envelope}");
    }
    sandbox.sandbox.stop().await;
}

/// An InnoPaaS `template/submit` body for a template that a send's parameters fit: its header
/// type, a body variable per `bodyParams` entry, a website button with a variable per
/// `buttonParams` entry.
fn template_for(send: &Value) -> Value {
    let header_type = match send["header"]["type"].as_str() {
        Some("text") => 2,
        Some("image") => 3,
        Some("video") => 4,
        Some("document") => 5,
        _ => 1,
    };
    let count = |key: &str| send[key].as_array().map_or(0, Vec::len);
    let body: Vec<String> = (1..=count("bodyParams")).map(|n| format!("{{{{{n}}}}}")).collect();
    let buttons: Vec<Value> = (0..count("buttonParams"))
        .map(|i| {
            json!({"actionType": 2, "label": format!("Go {i}"), "targetUrl": "https://x.example.com/{{1}}",
            "buttonExample": ["https://x.example.com/a"]})
        })
        .collect();
    json!({"wabaId": send["wabaId"], "name": send["templateName"], "category": 3, "messageLanguage": send["language"],
        "headerType": header_type, "caption": if header_type == 2 { "{{1}}" } else { "" },
        "messageBody": format!("Template {}", body.join(" ")), "buttons": buttons})
}

/// Every body the InnoPaaS adapter's golden tests pin is one the sandbox accepts, on the endpoint
/// the fixture names.
#[tokio::test]
async fn innopaas_accepts_every_adapter_golden_body() {
    let sandbox = Running::default().await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../innopaas/tests/golden");
    let mut checked = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|x| x != "json") {
            continue;
        }
        let fixture: Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let endpoint = match fixture["endpoint"].as_str() {
            Some("mmlite") => INNOPAAS_MMLITE_PATH,
            _ => INNOPAAS_SUBMIT_PATH,
        };
        if fixture["body"]["messageType"] == "template" {
            // Template sends need their template at InnoPaaS first: one of the shape the send gives.
            let (_, created) =
                sandbox.innopaas("/api/whatsapp/v3/template/submit", template_for(&fixture["body"])).await;
            assert_eq!(created["code"], "0", "{}: {created}", path.display());
        }
        let (status, envelope) = sandbox.innopaas(endpoint, fixture["body"].clone()).await;
        assert_eq!((status, envelope["code"].as_str()), (StatusCode::OK, Some("0")), "{}: {envelope}", path.display());
        checked += 1;
    }
    assert!(checked >= 18, "only {checked} golden bodies found in {}", dir.display());
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_send_bodies_are_validated() {
    let sandbox = Running::default().await;
    let with = |edit: Value| {
        let mut body = inno_text();
        for (k, v) in edit.as_object().unwrap() {
            if v.is_null() {
                body.as_object_mut().unwrap().remove(k);
            } else {
                body[k] = v.clone();
            }
        }
        body
    };
    let cases = [
        (with(json!({"wabaId": null})), "400", "wabaId is required"),
        (with(json!({"messageType": null})), "400", "messageType is required"),
        (with(json!({"messageType": "fax"})), "400", "messageType must be one of"),
        (with(json!({"sendNumber": null})), "400", "sendNumber is required"),
        (with(json!({"recipientNumber": null})), "400", "recipientNumber is required"),
        (with(json!({"recipientNumber": "+85268411234"})), "108", "Phone number format error"),
        (with(json!({"sendNumber": "8523001"})), "108", "Phone number format error: sendNumber"),
        (with(json!({"recipientNumber": vec!["85268411234"; 1001].join(",")})), "109", "at most 1000"),
        (with(json!({"uid": "x".repeat(33)})), "105", "uid exceeds 32 characters"),
        (with(json!({"body": "x".repeat(3001)})), "106", "Content exceeds 3000 characters"),
        (with(json!({"body": null})), "400", "body is required"),
        (with(json!({"messageType": "template", "body": null, "templateName": "t"})), "400", "language is required"),
        (with(json!({"messageType": "image", "body": null})), "400", "media is required"),
        (
            with(json!({"messageType": "document", "body": null, "media": {"link": "https://a.io/f.pdf"}})),
            "400",
            "media.filename is required",
        ),
    ];
    for (body, code, reason) in cases {
        let (status, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, body.clone()).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        assert_eq!(envelope["code"], code, "{body}: {envelope}");
        assert_eq!((envelope["success"].as_bool(), &envelope["data"]), (Some(false), &Value::Null));
        assert!(envelope["message"].as_str().unwrap().contains(reason), "{body}: {envelope}");
    }
    let response = sandbox.innopaas_raw(INNOPAAS_SUBMIT_PATH, Some(INNO_KEY), Some(INNO_TOKEN), "wabaId=1").await;
    assert_eq!(response.json::<Value>().await.unwrap(), inno_error("400", "The request body must be a JSON object"));

    // MMLite carries templates only.
    let (_, envelope) = sandbox.innopaas(INNOPAAS_MMLITE_PATH, inno_text()).await;
    assert_eq!(envelope["code"], "400");
    assert!(envelope["message"].as_str().unwrap().contains("MMLite"), "{envelope}");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_unknown_paths_and_methods_answer_in_its_envelope() {
    let sandbox = Running::default().await;
    let response = sandbox.innopaas_raw("/api/whatsapp/v3/msg/send", Some(INNO_KEY), Some(INNO_TOKEN), "{}").await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    assert_eq!(response.json::<Value>().await.unwrap(), inno_error("404", "Not Found"));

    let response = sandbox
        .http
        .get(sandbox.url(INNOPAAS_SUBMIT_PATH))
        .header("AppKey", INNO_KEY)
        .header("Authorization", INNO_TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(response.json::<Value>().await.unwrap()["code"], "405");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_phone_info_and_template_submit() {
    let sandbox = Running::default().await;
    let (status, envelope) =
        sandbox.innopaas("/api/whatsapp/v3/account/phoneInfo", json!({"wabaId": "104417182520443"})).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!((&envelope["code"], &envelope["success"]), (&json!("0"), &json!(true)), "{envelope}");
    assert_eq!(
        envelope["data"],
        json!([{"id": "110200345501442", "displayPhoneNumber": "+852 3001 2345", "verifiedName": "Sandbox Business",
                "status": "CONNECTED", "qualityRating": "GREEN", "messageLimit": "TIER_250"}])
    );
    let (_, envelope) = sandbox.innopaas("/api/whatsapp/v3/account/phoneInfo", json!({})).await;
    assert_eq!(envelope, inno_error("400", "wabaId is required"));

    let template = json!({
        "wabaId": "104417182520443", "name": "login_code_1", "category": 2, "messageLanguage": "en_US",
        "headerType": 1, "messageBody": "{{1}} is your verification code.", "footer": "Expires in 10 minutes.",
        "safetyAdvice": 1, "buttons": [{"actionType": 5, "label": "Copy code", "autoFill": "Autofill"}]
    });
    let (status, envelope) = sandbox.innopaas("/api/whatsapp/v3/template/submit", template.clone()).await;
    assert_eq!(status, StatusCode::OK);
    inno_id(&envelope);
    // Website buttons and examples as PROVIDERS.md §2.7 shows them.
    let mut links = template.clone();
    links["category"] = json!(3);
    links["bodyExample"] = json!({"body_text": [["123456"]]});
    links["headerExample"] = json!({"header_text": ["A-1001"]});
    links["buttons"] = json!([{"actionType": 2, "label": "Track", "targetUrl": "https://x.example.com/t/{{1}}",
        "buttonExample": ["https://x.example.com/t/A-1001"]}, {"actionType": 2, "label": "Shop",
        "targetUrl": "https://x.example.com"}]);
    let (_, envelope) = sandbox.innopaas("/api/whatsapp/v3/template/submit", links).await;
    inno_id(&envelope);
    let mut call = template.clone();
    call["category"] = json!(3);
    call["name"] = json!("call_us_1");
    call["buttons"] = json!([{"actionType": 3, "label": "Call us", "phoneArea": "852", "phone": "30012345"}]);
    let (_, envelope) = sandbox.innopaas("/api/whatsapp/v3/template/submit", call).await;
    inno_id(&envelope);
    for (edit, reason) in [
        (json!({"name": "Login Code"}), "name may have at most 512 lowercase"),
        (json!({"category": 4}), "category must be an integer from 1 to 3"),
        (json!({"messageBody": "x".repeat(1025)}), "messageBody may have at most 1024"),
        (json!({"footer": "x".repeat(61)}), "footer may have at most 60"),
        (json!({"buttons": [{"actionType": 9, "label": "x"}]}), "buttons[0].actionType"),
        (json!({"buttons": [{"actionType": 2, "label": "Go"}]}), "buttons[0].targetUrl is required"),
        (json!({"buttons": [{"actionType": 2, "label": "Go", "targetUrl": "shop/{{1}}"}]}), "http(s) URL"),
        (
            json!({"buttons": [{"actionType": 2, "label": "Go", "targetUrl": "https://x.example.com/{{1}}"}]}),
            "buttons[0].buttonExample",
        ),
        (
            json!({"buttons": [{"actionType": 1, "label": "Go", "targetUrl": "https://x.example.com"}]}),
            "website buttons",
        ),
        (
            json!({"buttons": [{"actionType": 3, "label": "Call", "phone": "85230012345"}]}),
            "buttons[0].phoneArea is required",
        ),
        (
            json!({"buttons": [{"actionType": 3, "label": "Call", "phoneArea": "+852", "phone": "30012345"}]}),
            "buttons[0].phoneArea must be 1 to 3 digits",
        ),
        (json!({"buttons": [{"actionType": 3, "label": "Call", "phoneArea": "852"}]}), "buttons[0].phone is required"),
        (json!({"headerExample": {"text": ["x"]}}), "header_text or header_handle"),
        (json!({"bodyExample": {"body_text": ["x"]}}), "list of rows"),
    ] {
        let mut body = template.clone();
        for (k, v) in edit.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (_, envelope) = sandbox.innopaas("/api/whatsapp/v3/template/submit", body).await;
        assert_eq!(envelope["code"], "400", "{edit}: {envelope}");
        assert!(envelope["message"].as_str().unwrap().contains(reason), "{edit}: {envelope}");
    }
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_webhooks_report_delivered_then_read() {
    let receiver = Running::default().await;
    let sandbox = Running::start(SandboxConfig {
        innopaas_webhook_url: Some(receiver.url("/_sandbox/webhooks")),
        innopaas_webhook_delays: [Duration::from_millis(50), Duration::from_millis(150)],
        innopaas_webhook_headers: vec![
            ("UserName".into(), "gateway".into()),
            ("Authorization".into(), DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION.into()),
        ],
        ..SandboxConfig::default()
    })
    .await;

    let accepted_at = chrono::Utc::now();
    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    let id = inno_id(&envelope);

    let webhooks = receiver.webhooks_when(2).await;
    assert_eq!(webhooks.len(), 2, "{webhooks:?}");
    let mut statuses = Vec::new();
    let mut wamids = Vec::new();
    for webhook in &webhooks {
        let headers = &webhook["headers"];
        assert_eq!(headers["content-type"], "application/json");
        assert_eq!(headers["authorization"], "sandbox-innopaas-callback");
        assert_eq!(headers["username"], "gateway");
        let event: Value = serde_json::from_str(webhook["raw_body"].as_str().unwrap()).unwrap();
        let mut keys: Vec<&str> = event.as_object().unwrap().keys().map(String::as_str).collect();
        keys.sort_unstable();
        assert_eq!(keys, ["body", "eventTime", "id", "type"], "{event}");
        assert_eq!(event["type"], "whatsapp_message_status_updated");
        assert_eq!(uuid::Uuid::parse_str(event["id"].as_str().unwrap()).unwrap().get_version_num(), 4);
        let event_time = chrono::DateTime::parse_from_rfc3339(event["eventTime"].as_str().unwrap()).unwrap();
        assert!((event_time.with_timezone(&chrono::Utc) - accepted_at).num_seconds().abs() <= 2, "{event}");
        assert!(event["eventTime"].as_str().unwrap().ends_with('Z'), "{event}");

        let body = &event["body"];
        assert_eq!(body["id"], id.as_str());
        assert_eq!(body["accountName"], "IW100001");
        assert_eq!(body["wabaId"], "104417182520443");
        assert_eq!(body["sendPhone"], "85268411234");
        assert_eq!(body["uid"], "01936f3e8c4a7b219d3e5a1f2b3c4d5e");
        let wamid = body["wamid"].as_str().unwrap();
        let raw = base64::engine::general_purpose::STANDARD.decode(wamid.strip_prefix("wamid.").unwrap()).unwrap();
        assert_eq!(&raw[3..14], b"85268411234", "{wamid}");
        wamids.push(wamid.to_owned());
        let status = body["status"].as_str().unwrap().to_owned();
        if status == "delivered" {
            let conversation = &body["conversation"];
            assert_eq!(conversation["initiateType"], "business_initiated");
            assert_eq!(conversation["id"].as_str().unwrap().len(), 32);
            let expire_at = conversation["expireAt"].as_str().unwrap();
            let expire_at = chrono::NaiveDateTime::parse_from_str(expire_at, "%Y-%m-%d %H:%M:%S").unwrap().and_utc();
            let window = expire_at - accepted_at;
            assert!((window - chrono::TimeDelta::hours(24)).num_seconds().abs() <= 2, "{conversation}");
        } else {
            assert!(body.get("conversation").is_none(), "{body}");
        }
        statuses.push(status);
    }
    // InnoPaaS never reports `sent`.
    assert_eq!(statuses, ["delivered", "read"]);
    assert_eq!(wamids[0], wamids[1], "both events are about the same WhatsApp message");

    // A send without a uid gets webhooks without one.
    receiver.http.delete(receiver.url("/_sandbox/webhooks")).send().await.unwrap();
    let mut no_uid = inno_text();
    no_uid.as_object_mut().unwrap().remove("uid");
    sandbox.innopaas(INNOPAAS_SUBMIT_PATH, no_uid).await;
    for webhook in receiver.webhooks_when(2).await {
        let event: Value = serde_json::from_str(webhook["raw_body"].as_str().unwrap()).unwrap();
        assert!(event["body"].get("uid").is_none(), "{event}");
    }

    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_refused_sends_get_no_webhooks() {
    let receiver = Running::default().await;
    let sandbox = Running::start(SandboxConfig {
        innopaas_webhook_url: Some(receiver.url("/_sandbox/webhooks")),
        innopaas_webhook_delays: [Duration::ZERO; 2],
        ..SandboxConfig::default()
    })
    .await;
    let mut bad = inno_text();
    bad["recipientNumber"] = json!("123");
    sandbox.innopaas(INNOPAAS_SUBMIT_PATH, bad).await;
    sandbox.add_fault(json!({"provider": "innopaas", "status": 500, "count": 1})).await;
    sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    // One accepted send afterwards: its two webhooks are all that arrive.
    sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_eq!(receiver.webhooks_when(2).await.len(), 2);
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(receiver.get_json("/_sandbox/webhooks").await.as_array().unwrap().len(), 2);
    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn innopaas_faults_answer_in_its_envelope() {
    let sandbox = Running::default().await;
    sandbox.add_fault(json!({"provider": "innopaas", "status": 500, "count": 1})).await;
    sandbox.add_fault(json!({"provider": "innopaas", "status": 429, "retry_after": 3, "count": 1})).await;
    sandbox.add_fault(json!({"provider": "innopaas", "status": 110, "count": 1})).await;
    let custom = json!({"code": "999", "success": false, "message": "(#131056) pair rate limit hit", "data": null});
    sandbox
        .add_fault(json!({"provider": "innopaas", "status": 200, "body": custom, "count": 1,
                             "match": {"path": INNOPAAS_SUBMIT_PATH, "headers": {"appkey": INNO_KEY}}}))
        .await;
    // INCS is untouched by InnoPaaS faults.
    let (status, envelope) = sandbox.send("whatsapp", text_message()).await;
    assert_eq!(status, StatusCode::OK);
    msg_id(&envelope);

    let (status, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_eq!((status, envelope), (StatusCode::INTERNAL_SERVER_ERROR, inno_error("500", "Internal Server Error")));

    let response =
        sandbox.innopaas_raw(INNOPAAS_SUBMIT_PATH, Some(INNO_KEY), Some(INNO_TOKEN), &inno_text().to_string()).await;
    assert_eq!(response.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(response.headers().get("retry-after").unwrap(), "3");
    assert_eq!(response.json::<Value>().await.unwrap(), inno_error("429", "Too Many Requests"));

    // InnoPaaS's own codes come with HTTP 200, like its real error answers.
    let (status, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_eq!((status, envelope), (StatusCode::OK, inno_error("110", "Insufficient balance")));

    let (status, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    assert_eq!((status, envelope), (StatusCode::OK, custom));

    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    inno_id(&envelope);
    assert_eq!(sandbox.get_json("/_sandbox/faults").await, json!([]));

    // Every one of them was recorded, with the InnoPaaS headers.
    let recorded = sandbox.get_json("/_sandbox/requests?provider=innopaas").await;
    let recorded = recorded.as_array().unwrap();
    assert_eq!(recorded.len(), 5);
    for request in recorded {
        assert_eq!(request["path"], INNOPAAS_SUBMIT_PATH);
        assert_eq!(request["headers"]["appkey"], INNO_KEY);
        assert_eq!(request["headers"]["authorization"], INNO_TOKEN);
        assert_eq!(request["headers"]["content-type"], "application/json;charset=utf-8");
        assert_eq!(request["body"], inno_text());
    }
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn bad_innopaas_configs_are_refused() {
    let listen = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
    for config in [
        SandboxConfig { listen, innopaas_app_keys: vec![], ..SandboxConfig::default() },
        SandboxConfig { listen, innopaas_tokens: vec![" ".into()], ..SandboxConfig::default() },
        SandboxConfig { listen, innopaas_tokens: vec!["a".into(), "b".into()], ..SandboxConfig::default() },
        SandboxConfig { listen, innopaas_webhook_url: Some("not a url".into()), ..SandboxConfig::default() },
        SandboxConfig {
            listen,
            innopaas_webhook_delays: [Duration::from_millis(600), Duration::from_millis(300)],
            ..SandboxConfig::default()
        },
        SandboxConfig {
            listen,
            innopaas_webhook_headers: vec![("Bad Name".into(), "x".into())],
            ..SandboxConfig::default()
        },
        SandboxConfig {
            listen,
            innopaas_webhook_headers: vec![("Authorization".into(), "line\nbreak".into())],
            ..SandboxConfig::default()
        },
    ] {
        let error = spawn(config).await.err().expect("refused");
        assert_eq!(error.kind(), io::ErrorKind::InvalidInput);
        assert!(!error.to_string().contains("line\nbreak"), "{error}");
    }
}

#[test]
fn debug_output_hides_innopaas_credentials() {
    let config = SandboxConfig {
        innopaas_webhook_headers: vec![("UserName".into(), "webhook-user-secret".into())],
        ..SandboxConfig::default()
    };
    let shown = format!("{config:?}");
    for secret in [INNO_KEY, INNO_TOKEN, "webhook-user-secret"] {
        assert!(!shown.contains(secret), "{shown}");
    }
    assert!(shown.contains("UserName"), "{shown}");
    let shown = format!("{:?}", SandboxConfig::default());
    assert!(!shown.contains(DEFAULT_INNOPAAS_WEBHOOK_AUTHORIZATION), "{shown}");
}

// ---------------------------------------------------------------------------------------------
// INCS templates and account (PROVIDERS.md §1.6–§1.8, seeds/002, seeds/003).

impl Running {
    /// A call on INCS's api family with the api code (`None` body: none sent).
    async fn incs_api(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (StatusCode, Value) {
        let mut request = self.http.request(method, self.url(path)).header("certification-code", CODE_B);
        if let Some(body) = body {
            request = request.json(&body);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }

    async fn create_template(&self, body: Value) -> Value {
        let (status, envelope) = self.incs_api(reqwest::Method::POST, "/external/templates", Some(body)).await;
        assert_eq!(status, StatusCode::OK, "{envelope}");
        assert_eq!(envelope["code"], 200, "{envelope}");
        envelope["data"].clone()
    }
}

fn waba_template(name: &str) -> Value {
    json!({
        "name": name,
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
             "example": {"body_text": [[1, 2]]}},
            {"type": "FOOTER", "text": "Good night"}
        ]
    })
}

fn template_not_found() -> Value {
    error_envelope(400, "The template is not found.")
}

#[tokio::test]
async fn templates_are_created_pending_and_reviewed_with_a_callback() {
    let receiver = Running::default().await;
    let sandbox = Running::start(SandboxConfig {
        incs_callback_url: Some(receiver.url("/_sandbox/webhooks")),
        incs_template_review_delay: Duration::from_millis(150),
        ..SandboxConfig::default()
    })
    .await;
    let created_at = chrono::Utc::now().timestamp();
    let created = sandbox.create_template(waba_template("test_api_2")).await;
    let id = created["template_id"].as_str().unwrap().to_owned();
    assert_eq!(id.len(), 16, "{created}");
    assert!(id.bytes().all(|b| b.is_ascii_digit()), "{created}");
    assert_eq!(created["status"], "PENDING");
    assert_eq!(created["quality"], "");
    assert_eq!(created["components"], waba_template("x")["components"]);
    assert!((created["created_time"].as_i64().unwrap() - created_at).abs() <= 2, "{created}");
    for key in ["name", "language", "category"] {
        assert_eq!(created[key], waba_template("test_api_2")[key], "{key}");
    }
    for key in ["updated_time", "status_updated_time", "quality_updated_time", "category_updated_time"] {
        assert!(created[key].is_i64(), "{key}: {created}");
    }

    let webhooks = receiver.webhooks_when(1).await;
    assert_eq!(webhooks.len(), 1, "{webhooks:?}");
    let body: Value = serde_json::from_str(webhooks[0]["raw_body"].as_str().unwrap()).unwrap();
    assert_eq!(body.as_object().unwrap().len(), 8, "{body}");
    assert_eq!(body["event"], "template_status_update");
    assert_eq!(body["channel_id"], 30058, "the api code of the first number");
    assert_eq!(body["business_phone"], "6281519236680");
    assert_eq!(body["template_id"], id.as_str());
    assert_eq!(body["template_name"], "test_api_2");
    assert_eq!(body["new_value"], "APPROVED");
    assert_eq!(body["reason"], "");
    assert!((body["received_at"].as_i64().unwrap() - created_at).abs() <= 2, "{body}");
    // The seeds/003 field order.
    let raw = webhooks[0]["raw_body"].as_str().unwrap();
    let order: Vec<usize> =
        ["event", "channel_id", "business_phone", "template_id", "template_name", "new_value", "reason", "received_at"]
            .iter()
            .map(|k| raw.find(&format!("\"{k}\"")).unwrap())
            .collect();
    assert!(order.windows(2).all(|w| w[0] < w[1]), "{raw}");

    let (_, envelope) = sandbox.incs_api(reqwest::Method::GET, &format!("/external/templates/{id}"), None).await;
    assert_eq!(envelope["data"]["status"], "APPROVED", "{envelope}");
    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn a_template_named_reject_is_rejected() {
    let sandbox =
        Running::start(SandboxConfig { incs_template_review_delay: Duration::ZERO, ..SandboxConfig::default() }).await;
    let created = sandbox.create_template(waba_template("reject_me")).await;
    let id = created["template_id"].as_str().unwrap();
    let (_, envelope) = sandbox.incs_api(reqwest::Method::GET, &format!("/external/templates/{id}"), None).await;
    assert_eq!(envelope["data"]["status"], "REJECTED", "{envelope}");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn template_bodies_are_checked() {
    let sandbox = Running::default().await;
    let post = |body: Value| sandbox.incs_api(reqwest::Method::POST, "/external/templates", Some(body));
    let without = |key: &str| {
        let mut t = waba_template("t1");
        t.as_object_mut().unwrap().remove(key);
        t
    };
    let (status, envelope) = post(without("category")).await;
    assert_eq!((status, envelope), (StatusCode::BAD_REQUEST, error_envelope(400, "category require")));
    assert_eq!(post(without("name")).await.1, error_envelope(400, "name require"));
    assert_eq!(post(without("language")).await.1, error_envelope(400, "language require"));
    let mut t = waba_template("Bad Name");
    assert_eq!(post(t.clone()).await.1, error_envelope(400, "name is invalid"));
    t["name"] = json!("a".repeat(101));
    assert_eq!(post(t.clone()).await.1, error_envelope(400, "name is invalid"));
    t["name"] = json!("a".repeat(100));
    t["category"] = json!("PROMOTION");
    assert_eq!(post(t.clone()).await.1, error_envelope(400, "category is invalid"));
    t["category"] = json!("UTILITY");
    t["components"] = json!({});
    assert_eq!(post(t.clone()).await.1, error_envelope(400, "components must be an array"));
    t.as_object_mut().unwrap().remove("components");
    sandbox.create_template(t.clone()).await;
    assert_eq!(post(t).await.1, error_envelope(400, "template name already exists"));
    let (_, envelope) = post(json!([1])).await;
    assert_eq!(envelope["code"], 422);
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn templates_page_by_last_id_and_count() {
    let sandbox = Running::default().await;
    let mut ids = Vec::new();
    for i in 0..12 {
        ids.push(
            sandbox.create_template(waba_template(&format!("t_{i}"))).await["template_id"].as_str().unwrap().to_owned(),
        );
    }
    let sandbox = &sandbox;
    let page = |query: String| {
        let path = format!("/external/templates{query}");
        async move { sandbox.incs_api(reqwest::Method::GET, &path, None).await }
    };
    let names = |envelope: &Value| -> Vec<String> {
        envelope["data"].as_array().unwrap().iter().map(|t| t["template_id"].as_str().unwrap().to_owned()).collect()
    };
    let (status, first) = page(String::new()).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(names(&first), ids[..10], "the default count is 10");
    let (_, second) = page(format!("?last_id={}&count=5", ids[9])).await;
    assert_eq!(names(&second), ids[10..]);
    let (_, all) = page("?count=100".into()).await;
    assert_eq!(names(&all), ids);
    assert_eq!(page("?count=101".into()).await.1, error_envelope(400, "count may not be greater than 100"));
    assert_eq!(page("?count=0".into()).await.1, error_envelope(400, "count is invalid"));
    assert_eq!(page("?last_id=abc".into()).await.1, error_envelope(400, "last_id is invalid"));
    // RCS templates are listed apart.
    let (_, rcs) = sandbox.incs_api(reqwest::Method::GET, "/external/templates/rcs", None).await;
    assert_eq!(rcs["data"], json!([]));
}

#[tokio::test]
async fn templates_are_read_and_deleted() {
    let sandbox = Running::default().await;
    let created = sandbox.create_template(waba_template("to_delete")).await;
    let path = format!("/external/templates/{}", created["template_id"].as_str().unwrap());
    let (status, envelope) = sandbox.incs_api(reqwest::Method::GET, &path, None).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(envelope["data"]["name"], "to_delete");
    let (status, envelope) = sandbox.incs_api(reqwest::Method::DELETE, &path, None).await;
    assert_eq!(
        (status, envelope),
        (StatusCode::OK, json!({"status": "success", "code": 200, "message": "", "data": {}, "error": {}}))
    );
    for method in [reqwest::Method::GET, reqwest::Method::DELETE] {
        let (status, envelope) = sandbox.incs_api(method, &path, None).await;
        assert_eq!((status, envelope), (StatusCode::BAD_REQUEST, template_not_found()));
    }
    let (_, envelope) = sandbox.incs_api(reqwest::Method::GET, "/external/templates/nope", None).await;
    assert_eq!(envelope, template_not_found());
    // The same name can be created again once deleted.
    sandbox.create_template(waba_template("to_delete")).await;
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn template_paths_check_auth_methods_and_routes() {
    let sandbox = Running::default().await;
    let response = sandbox.http.get(sandbox.url("/external/templates")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    assert_eq!(response.json::<Value>().await.unwrap(), error_envelope(10001, "Certification code invalid"));
    let response =
        sandbox.http.get(sandbox.url("/external/account")).header("certification-code", "x").send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 10001);
    let (status, envelope) = sandbox.incs_api(reqwest::Method::PUT, "/external/templates", None).await;
    assert_eq!((status, envelope["code"].as_u64()), (StatusCode::METHOD_NOT_ALLOWED, Some(405)));
    let (status, _) = sandbox.incs_api(reqwest::Method::POST, "/external/templates/1", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, _) = sandbox.incs_api(reqwest::Method::POST, "/external/account", None).await;
    assert_eq!(status, StatusCode::METHOD_NOT_ALLOWED);
    let (status, envelope) = sandbox.incs_api(reqwest::Method::GET, "/external/templates/1/x", None).await;
    assert_eq!((status, envelope["code"].as_u64()), (StatusCode::NOT_FOUND, Some(404)));
    let requests = sandbox.get_json("/_sandbox/requests?provider=incs").await;
    assert_eq!(requests.as_array().unwrap().len(), 6, "every template request is recorded");
    sandbox.sandbox.stop().await;
}

#[tokio::test]
async fn rcs_templates_of_every_type() {
    let receiver = Running::default().await;
    let sandbox = Running::start(SandboxConfig {
        incs_callback_url: Some(receiver.url("/_sandbox/webhooks")),
        incs_template_review_delay: Duration::from_millis(100),
        ..SandboxConfig::default()
    })
    .await;
    let card = json!({"cardTitle": "Sale", "mediaUrl": "https://brand.com/a.jpg",
                      "suggestions": [{"suggestionType": "reply", "text": "More", "postbackData": "more"}]});
    let drafts = [
        json!({"name": "test_template", "type": "text", "category": "TRANSACTION",
               "content": {"textMessage": "Dear [name], your order [order_id] has been shipped."}}),
        json!({"name": "spring_sale", "type": "richcard",
               "content": {"orientation": "VERTICAL", "height": "MEDIUM", "standaloneCard": card}}),
        json!({"name": "spring_range", "type": "carousel", "category": "PROMOTION",
               "content": {"height": "SHORT", "width": "MEDIUM", "carouselCard": [card, card]}}),
    ];
    let mut ids = Vec::new();
    for draft in &drafts {
        let (status, envelope) =
            sandbox.incs_api(reqwest::Method::POST, "/external/templates/rcs", Some(draft.clone())).await;
        assert_eq!(status, StatusCode::OK, "{envelope}");
        let t = &envelope["data"];
        assert_eq!((&t["name"], &t["type"], &t["content"]), (&draft["name"], &draft["type"], &draft["content"]));
        assert_eq!(t["status"], "PENDING");
        assert_eq!(t.get("category"), draft.get("category"));
        ids.push(t["template_id"].as_str().unwrap().to_owned());
    }
    let (_, listed) =
        sandbox.incs_api(reqwest::Method::GET, &format!("/external/templates/rcs?last_id={}", ids[0]), None).await;
    let listed: Vec<&str> =
        listed["data"].as_array().unwrap().iter().map(|t| t["template_id"].as_str().unwrap()).collect();
    assert_eq!(listed, ids[1..]);
    let path = format!("/external/templates/rcs/{}", ids[1]);
    let deadline = Instant::now() + Duration::from_secs(10);
    let got = loop {
        let (_, got) = sandbox.incs_api(reqwest::Method::GET, &path, None).await;
        if got["data"]["status"] != "PENDING" || Instant::now() > deadline {
            break got;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(got["data"]["status"], "APPROVED");
    let reviewed_at = Instant::now();
    // An RCS id is not a WABA template.
    let (_, waba) = sandbox.incs_api(reqwest::Method::GET, &format!("/external/templates/{}", ids[1]), None).await;
    assert_eq!(waba, template_not_found());
    assert_eq!(sandbox.incs_api(reqwest::Method::DELETE, &path, None).await.1["code"], 200);
    assert_eq!(sandbox.incs_api(reqwest::Method::GET, &path, None).await.1, template_not_found());

    let bad = [
        (json!({"type": "text", "content": {"textMessage": "x"}}), "name require"),
        (json!({"name": "a".repeat(26), "type": "text", "content": {"textMessage": "x"}}), "name is invalid"),
        (json!({"name": "t", "content": {"textMessage": "x"}}), "type require"),
        (json!({"name": "t", "type": "video", "content": {}}), "type is invalid"),
        (
            json!({"name": "t", "type": "text", "category": "MARKETING", "content": {"textMessage": "x"}}),
            "category is invalid",
        ),
        (json!({"name": "t", "type": "text"}), "content require"),
        (json!({"name": "t", "type": "text", "content": {}}), "content.textMessage require"),
        (json!({"name": "t", "type": "richcard", "content": {}}), "content.standaloneCard require"),
        (
            json!({"name": "t", "type": "carousel", "content": {"carouselCard": [{}]}}),
            "content.carouselCard must have 2 to 10 cards",
        ),
    ];
    for (body, message) in bad {
        let (status, envelope) = sandbox.incs_api(reqwest::Method::POST, "/external/templates/rcs", Some(body)).await;
        assert_eq!((status, envelope), (StatusCode::BAD_REQUEST, error_envelope(400, message)));
    }
    // INCS documents template callbacks for WhatsApp only: none came when the review did (a
    // callback would have been due at the same instant).
    tokio::time::sleep_until((reviewed_at + Duration::from_millis(100)).into()).await;
    assert_eq!(receiver.get_json("/_sandbox/webhooks").await, json!([]));
    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn the_account_reports_the_number_of_the_code() {
    let sandbox = Running::default().await;
    let (status, envelope) = sandbox.incs_api(reqwest::Method::GET, "/external/account", None).await;
    assert_eq!(status, StatusCode::OK);
    let data = &envelope["data"];
    assert_eq!(data["display_phone_number"], "+6281519236680", "the api code of the first number");
    assert_eq!(data["messaging_limit_tier"], "TIER_1K");
    assert_eq!(data["quality_rating"], "GREEN");
    assert_eq!(data["verified_name"], "Sandbox Business");
    // The first number's chat-api code is not an api-family code: strict, it is refused there.
    let response =
        sandbox.http.get(sandbox.url("/external/account")).header("certification-code", CODE_A).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["code"], 10001);
    sandbox.sandbox.stop().await;

    let lenient = Running::start(SandboxConfig { strict: false, ..SandboxConfig::default() }).await;
    let response =
        lenient.http.get(lenient.url("/external/account")).header("certification-code", CODE_A).send().await.unwrap();
    assert_eq!(response.json::<Value>().await.unwrap()["data"]["display_phone_number"], "+6281519236680");
    lenient.sandbox.stop().await;
}

#[test]
fn the_default_review_delay_is_half_a_second() {
    assert_eq!(SandboxConfig::default().incs_template_review_delay, Duration::from_millis(500));
    assert!(format!("{:?}", SandboxConfig::default()).contains("incs_template_review_delay"));
}

/// The per-recipient behaviours: each provider's own "not on this channel" failure, or silence.
#[tokio::test]
async fn recipient_behaviours_drive_failed_and_silent_deliveries() {
    let receiver = Running::default().await;
    let fast = [Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(150)];
    let sandbox = Running::start(SandboxConfig {
        incs_callback_url: Some(receiver.url("/_sandbox/webhooks")),
        incs_callback_delays: fast,
        innopaas_webhook_url: Some(receiver.url("/_sandbox/webhooks")),
        innopaas_webhook_delays: [Duration::from_millis(50), Duration::from_millis(100)],
        ..SandboxConfig::default()
    })
    .await;
    let set = |to: &str, channel: &str, behaviour: &str| {
        let body = json!({"to": to, "channel": channel, "behaviour": behaviour});
        let request = sandbox.http.post(sandbox.url("/_sandbox/recipients")).json(&body);
        async move { request.send().await.unwrap().status() }
    };
    for channel in ["whatsapp", "viber", "rcs"] {
        assert_eq!(set("85268411234", channel, "undeliverable").await, StatusCode::CREATED);
    }
    assert_eq!(set("+85268419999", "whatsapp", "no_receipts").await, StatusCode::CREATED);
    for (bad, why) in [
        (json!({"to": "123", "channel": "whatsapp", "behaviour": "undeliverable"}), "to"),
        (json!({"to": "85268411234", "channel": "sms", "behaviour": "undeliverable"}), "channel"),
        (json!({"to": "85268411234", "channel": "viber", "behaviour": "lost"}), "behaviour"),
        (json!({"to": "85268411234", "channel": "viber", "behaviour": "normal", "x": 1}), "unknown field"),
        (json!({"to": "85268411234", "channel": "viber", "behaviour": "outside_window"}), "WhatsApp rule"),
    ] {
        let response = sandbox.http.post(sandbox.url("/_sandbox/recipients")).json(&bad).send().await.unwrap();
        assert_eq!(response.status(), StatusCode::BAD_REQUEST, "{bad}");
        let error = response.json::<Value>().await.unwrap()["error"].as_str().unwrap().to_owned();
        assert!(error.contains(why), "{error}");
    }
    let listed = sandbox.get_json("/_sandbox/recipients").await;
    assert_eq!(listed.as_array().unwrap().len(), 4, "{listed}");

    // INCS: one `failed` callback per channel, with that channel's error.
    let mut ids = Vec::new();
    for (channel, body) in [
        ("whatsapp", text_message()),
        ("viber", json!({"to": "85268411234", "type": "text", "text": "Hello"})),
        ("rcs", json!({"to": "85268411234", "type": "text", "text": "Hello"})),
    ] {
        let (status, envelope) = sandbox.send(channel, body).await;
        assert_eq!(status, StatusCode::OK, "{envelope}");
        ids.push(msg_id(&envelope));
    }
    let (_, silent) = sandbox.send("whatsapp", json!({"to": "85268419999", "type": "text", "text": "Hi"})).await;
    let silent = msg_id(&silent);
    let webhooks = receiver.webhooks_when(3).await;
    let bodies: Vec<Value> =
        webhooks.iter().map(|w| serde_json::from_str(w["raw_body"].as_str().unwrap()).unwrap()).collect();
    let error_of = |id: &str| {
        let body = bodies.iter().find(|b| b["message_id"] == id).unwrap_or_else(|| panic!("no callback for {id}"));
        assert_eq!(body["message_status"], "failed", "{body}");
        body["error"].clone()
    };
    assert_eq!(error_of(&ids[0]), json!({"code": 131026, "title": "Message undeliverable"}));
    assert_eq!(error_of(&ids[1])["code"], "SRVC_NOT_VIBER_USER");
    assert_eq!(error_of(&ids[2])["code"], 404);
    assert_eq!(bodies.len(), 3, "one failed callback each, nothing for the silent recipient: {bodies:?}");
    let (_, polled) = sandbox.poll_status(CODE_A, &format!("{},{silent}", ids[0])).await;
    let rows = polled["data"]["data"].as_array().unwrap();
    assert_eq!(
        (rows[0]["message_status"].as_str(), rows[1]["message_status"].as_str()),
        (Some("failed"), Some("accepted"))
    );

    // InnoPaaS: `failed` with Meta's code in errorData.
    receiver.http.delete(receiver.url("/_sandbox/webhooks")).send().await.unwrap();
    sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    let webhooks = receiver.webhooks_when(1).await;
    assert_eq!(webhooks.len(), 1);
    let event: Value = serde_json::from_str(webhooks[0]["raw_body"].as_str().unwrap()).unwrap();
    assert_eq!(event["body"]["status"], "failed");
    assert_eq!(event["body"]["errorData"], json!({"errorCode": "131026", "errorMessage": "Message undeliverable"}));

    // Cleared: normal again.
    sandbox.http.delete(sandbox.url("/_sandbox/recipients")).send().await.unwrap();
    assert_eq!(sandbox.get_json("/_sandbox/recipients").await, json!([]));
    sandbox.sandbox.stop().await;
    receiver.sandbox.stop().await;
}

#[tokio::test]
async fn template_sends_must_name_an_approved_template_with_the_right_parameter_count() {
    let sandbox = Running::start(SandboxConfig {
        incs_template_review_delay: Duration::from_millis(300),
        ..SandboxConfig::default()
    })
    .await;
    let send = |name: &str, components: Value| json!({"to": "85268411234", "type": "template", "template": {"name": name, "components": components}});
    let text = |t: &str| json!({"type": "text", "text": t});
    let unknown = error_envelope(10002, "(#132001) Template name does not exist in the translation");
    let miscounted =
        error_envelope(10002, "(#132000) Number of parameters does not match the expected number of params");

    // A name INCS does not know.
    let (status, envelope) = sandbox.send("whatsapp", send("no_such_template", json!([]))).await;
    assert_eq!((status, envelope), (StatusCode::OK, unknown.clone()));

    // The documents' example takes 1 header and 3 body parameters: 2 in the body is wrong, and so
    // is a component the template does not have.
    let body3 = json!({"type": "body", "parameters": [text("a"), text("b"), text("c")]});
    let header = json!({"type": "header", "parameters": [text("2025-10-01")]});
    let (_, envelope) = sandbox.send("whatsapp", send("test_header_text_2", json!([header, body3]))).await;
    msg_id(&envelope);
    let body2 = json!({"type": "body", "parameters": [text("a"), text("b")]});
    let (_, envelope) = sandbox.send("whatsapp", send("test_header_text_2", json!([header, body2]))).await;
    assert_eq!(envelope, miscounted);
    let (_, envelope) = sandbox.send("whatsapp", send("test_header_text_2", json!([body3]))).await;
    assert_eq!(envelope, miscounted, "the header's variable is missing");
    let button = json!({"type": "button", "sub_type": "COPY_CODE", "index": "0",
        "parameters": [{"type": "coupon_code", "coupon_code": "843924"}]});
    let (_, envelope) = sandbox.send("whatsapp", send("test_button_reply_1", json!([button]))).await;
    assert_eq!(envelope, miscounted, "a parameter for a button without a variable");
    let (_, envelope) = sandbox.send("whatsapp", send("test_button_code_1", json!([button]))).await;
    msg_id(&envelope);

    // A created template is unknown until approved, then checked against its own variables.
    sandbox.create_template(waba_template("test_api_2")).await;
    let (_, envelope) = sandbox.send("whatsapp", send("test_api_2", json!([body2]))).await;
    assert_eq!(envelope, unknown, "pending is not approved");
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let (_, envelope) = sandbox.send("whatsapp", send("test_api_2", json!([body2.clone()]))).await;
        if envelope["status"] == "success" {
            break;
        }
        assert!(Instant::now() < deadline, "never approved: {envelope}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let (_, envelope) = sandbox.send("whatsapp", send("test_api_2", json!([body3]))).await;
    assert_eq!(envelope, miscounted);
    sandbox.sandbox.stop().await;

    // Lenient, the old sandbox took them all.
    let lenient = Running::start(SandboxConfig { strict: false, ..SandboxConfig::default() }).await;
    let (_, envelope) = lenient.send("whatsapp", send("no_such_template", json!([]))).await;
    msg_id(&envelope);
    lenient.sandbox.stop().await;
}

/// InnoPaaS template sends (strict) name a template created here, with parameters that fit it.
#[tokio::test]
async fn innopaas_template_sends_must_name_a_created_template_with_the_right_parameter_count() {
    let sandbox = Running::default().await;
    let send = |name: &str, body_params: Value| {
        let mut body = inno_text();
        body["messageType"] = json!("template");
        body["templateName"] = json!(name);
        body["language"] = json!("en_US");
        body["bodyParams"] = body_params;
        body
    };
    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, send("order_update", json!(["Ada", "A-1"]))).await;
    assert_eq!(envelope, inno_error("143", "WhatsApp Tempalte Not Found"));
    let template = json!({"wabaId": "104417182520443", "name": "order_update", "category": 3,
        "messageLanguage": "en_US", "headerType": 1, "messageBody": "Hi {{1}}, order {{2}} has shipped."});
    inno_id(&sandbox.innopaas("/api/whatsapp/v3/template/submit", template).await.1);
    inno_id(&sandbox.innopaas(INNOPAAS_SUBMIT_PATH, send("order_update", json!(["Ada", "A-1"]))).await.1);
    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, send("order_update", json!(["Ada"]))).await;
    assert_eq!(
        envelope,
        inno_error("400", "(#132000) Number of parameters does not match the expected number of params")
    );
    sandbox.sandbox.stop().await;

    // Lenient, the old sandbox took them all.
    let lenient = Running::start(SandboxConfig { strict: false, ..SandboxConfig::default() }).await;
    inno_id(&lenient.innopaas(INNOPAAS_SUBMIT_PATH, send("no_such_template", json!([]))).await.1);
    lenient.sandbox.stop().await;
}

impl Running {
    async fn emit(&self, request: Value) -> (StatusCode, Value) {
        let response = self.http.post(self.url("/_sandbox/callbacks")).json(&request).send().await.unwrap();
        let status = response.status();
        (status, response.json().await.unwrap())
    }
}

#[tokio::test]
async fn callbacks_are_emitted_on_request_in_the_providers_shapes() {
    let receiver = Running::default().await;
    let sandbox = Running::start(SandboxConfig {
        innopaas_webhook_url: Some(receiver.url("/_sandbox/webhooks")),
        incs_callback_url: Some(receiver.url("/_sandbox/webhooks")),
        // Only what is asked for arrives.
        incs_callback_delays: [Duration::from_secs(3600); 3],
        innopaas_webhook_delays: [Duration::from_secs(3600); 2],
        ..SandboxConfig::default()
    })
    .await;
    let (_, envelope) = sandbox.send("whatsapp", text_message()).await;
    let wamid = msg_id(&envelope);
    let (_, envelope) = sandbox.innopaas(INNOPAAS_SUBMIT_PATH, inno_text()).await;
    let inno = inno_id(&envelope);

    // Bad requests are named; unknown messages are 404.
    for (request, status, names) in [
        (json!({"event": "bounced", "provider": "incs"}), 400, "bounced"),
        (json!({"event": "failed", "provider": "incs", "message_id": wamid}), 400, "code"),
        (json!({"event": "failed", "provider": "incs", "message_id": wamid, "code": [1]}), 400, "code"),
        (json!({"event": "failed", "provider": "sms", "message_id": wamid, "code": 1}), 400, "`incs` or `innopaas`"),
        (json!({"event": "failed", "provider": "incs", "message_id": wamid, "code": 1, "colour": 1}), 400, "colour"),
        (json!({"event": "inbound", "provider": "incs", "from": "12ab"}), 400, "from"),
        (
            json!({"event": "inbound", "provider": "incs", "from": "85268411234", "message": {"type": "image"}}),
            400,
            "message.image",
        ),
        (json!({"event": "inbound", "provider": "innopaas", "from": "85268411234"}), 400, "waba_id"),
        (json!({"event": "message_status_updated", "message_id": wamid, "channel_status": 5}), 400, "channel_status"),
        (json!({"event": "failed", "provider": "incs", "message_id": "wamid.nope", "code": 1}), 404, "wamid.nope"),
        (
            json!({"event": "template_update", "template_id": "1", "change": "quality", "new_value": "RED"}),
            404,
            "template",
        ),
    ] {
        let (got, body) = sandbox.emit(request.clone()).await;
        assert_eq!(got.as_u16(), status, "{request}: {body}");
        assert!(body["error"].as_str().unwrap().contains(names), "{request}: {body}");
    }

    // INCS: failed with the code, as seeds/003's message_status_update.
    let (status, posted) =
        sandbox.emit(json!({"event": "failed", "provider": "incs", "message_id": wamid, "code": 131000})).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let posted = &posted["posted"];
    assert_eq!(posted["message_status"], "failed");
    assert_eq!(posted["error"]["code"], 131000);
    assert_eq!(posted["business_phone"], "6281519236680");
    // InnoPaaS: errorData with Meta's code as a string, and the send's uid.
    let (_, posted) = sandbox
        .emit(json!({"event": "failed", "provider": "innopaas", "message_id": inno, "code": 131049, "title": "ecosystem"}))
        .await;
    let body = &posted["posted"]["body"];
    assert_eq!(posted["posted"]["type"], "whatsapp_message_status_updated");
    assert_eq!(body["id"], inno.as_str());
    assert_eq!(body["errorData"], json!({"errorCode": "131049", "errorMessage": "ecosystem"}));
    assert_eq!(body["uid"], inno_text()["uid"]);
    // InnoPaaS inbound: its own envelope, the message object as given.
    let (_, posted) = sandbox
        .emit(json!({"event": "inbound", "provider": "innopaas", "from": "85268411234", "waba_id": "102290129340398",
            "to": "85230001234", "message": {"type": "interactive", "interactive": {"type": "buttonReply",
            "buttonReply": {"id": "yes", "title": "Yes"}}}}))
        .await;
    assert_eq!(posted["posted"]["type"], "whatsapp_mo_message_received");
    assert_eq!(posted["posted"]["body"]["interactive"]["buttonReply"]["id"], "yes");
    assert_eq!(posted["posted"]["body"]["to"], "85230001234");
    // INCS chat events share one chat id per message; RCS/Viber/WhatsApp alike.
    let (_, a) = sandbox.emit(json!({"event": "message_created", "message_id": wamid, "channel_status": 1})).await;
    let (_, b) =
        sandbox.emit(json!({"event": "message_status_updated", "message_id": wamid, "channel_status": 4})).await;
    assert_eq!(a["posted"]["message"]["id"], b["posted"]["message_id"]);
    assert_eq!(a["posted"]["message"]["channel_msg_id"], wamid.as_str());

    // What was asked for is what arrived, in order.
    let webhooks = receiver.webhooks_when(5).await;
    let events: Vec<Value> =
        webhooks.iter().map(|w| serde_json::from_str(w["raw_body"].as_str().unwrap()).unwrap()).collect();
    let kinds: Vec<&str> =
        events.iter().map(|e| e["event"].as_str().or_else(|| e["type"].as_str()).unwrap_or("")).collect();
    assert_eq!(kinds.len(), 5, "{kinds:?}");
    for kind in [
        "message_status_update",
        "whatsapp_message_status_updated",
        "whatsapp_mo_message_received",
        "message_created",
        "message_status_updated",
    ] {
        assert!(kinds.contains(&kind), "{kind}: {kinds:?}");
    }
    sandbox.sandbox.stop().await;

    // Without a callback URL there is nowhere to post.
    let quiet = Running::default().await;
    let (_, envelope) = quiet.send("whatsapp", text_message()).await;
    let (status, _) =
        quiet.emit(json!({"event": "failed", "provider": "incs", "message_id": msg_id(&envelope), "code": 1})).await;
    assert_eq!(status, StatusCode::CONFLICT);
    quiet.sandbox.stop().await;
    receiver.sandbox.stop().await;
}
