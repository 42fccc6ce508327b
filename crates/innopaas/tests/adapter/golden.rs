//! One golden case per content type InnoPaaS carries (`tests/golden/*.json`): a unified API request
//! and the exact v3 body InnoPaaS must receive for it, with the endpoint and all three headers.
//!
//! seeds/004 announces request examples ("验证码模板示例", "营销模板示例", "请求示例") but the export
//! holds no JSON for them, so every body here is built from the document's field tables and the
//! PROVIDERS.md §2.2 assumptions, each fixture saying which.

use std::path::{Path, PathBuf};

use gateway_core::{MessageId, Provider};
use gateway_innopaas::{InnopaasAccount, SUBMIT_PATH};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer, Request};

use crate::support::{
    account_with, config, message, message_id, mmlite_config, success, text, whatsapp, APP_KEY, MMLITE_PATH, TOKEN, UID,
};

/// Every content type InnoPaaS carries, MMLite included.
const FIXTURES: usize = 18;

fn golden_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let entries = std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display()));
    let mut files: Vec<PathBuf> = entries
        .map(|e| e.expect("directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    files.sort();
    files
}

/// Sends the request with the golden message id and returns what InnoPaaS received.
async fn send(server: &MockServer, account: &InnopaasAccount, request: &Value) -> Result<Request, String> {
    send_as(server, account, request, &message_id()).await
}

async fn send_as(
    server: &MockServer,
    account: &InnopaasAccount,
    request: &Value,
    id: &MessageId,
) -> Result<Request, String> {
    let msg = message(request)?;
    account.can_carry(&msg).map_err(|e| format!("can_carry refused: {e}"))?;
    let before = server.received_requests().await.unwrap_or_default().len();
    let receipt = account.send(id, &msg).await.map_err(|e| format!("send failed: {e:?}"))?;
    if receipt.provider_message_id != "1778123456789012" {
        return Err(format!("unexpected receipt {receipt:?}"));
    }
    let received = server.received_requests().await.unwrap_or_default();
    if received.len() != before + 1 {
        return Err(format!("expected one request, InnoPaaS received {}", received.len() - before));
    }
    received.into_iter().last().ok_or_else(|| "no request".into())
}

fn check(req: &Request, want_path: &str, want_body: &Value) -> Result<(), String> {
    let mut problems = Vec::new();
    if req.method.as_str() != "POST" {
        problems.push(format!("method {}", req.method));
    }
    if req.url.path() != want_path {
        problems.push(format!("path {} (want {want_path})", req.url.path()));
    }
    if req.url.query().is_some() {
        problems.push(format!("unexpected query {:?}", req.url.query()));
    }
    let header = |name: &str| req.headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    if header("content-type").as_deref() != Some("application/json;charset=utf-8") {
        problems.push(format!("content-type {:?}", header("content-type")));
    }
    if header("appkey").as_deref() != Some(APP_KEY) {
        problems.push(format!("AppKey header {}", if header("appkey").is_some() { "wrong" } else { "missing" }));
    }
    // As it is: InnoPaaS takes the token without a `Bearer` prefix.
    if header("authorization").as_deref() != Some(TOKEN) {
        problems.push(format!(
            "Authorization header {}",
            if header("authorization").is_some() { "wrong" } else { "missing" }
        ));
    }
    match serde_json::from_slice::<Value>(&req.body) {
        Ok(body) if body == *want_body => {}
        Ok(body) => problems.push(format!(
            "body differs\n  sent: {}\n  want: {}",
            serde_json::to_string(&body).unwrap_or_default(),
            serde_json::to_string(want_body).unwrap_or_default()
        )),
        Err(e) => problems.push(format!("body is not JSON: {e}")),
    }
    if problems.is_empty() {
        Ok(())
    } else {
        Err(problems.join("; "))
    }
}

async fn mock_server() -> MockServer {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("1778123456789012")).mount(&server).await;
    server
}

#[tokio::test]
async fn every_content_type_goes_out_as_the_golden_body() {
    let files = golden_files();
    assert_eq!(
        files.len(),
        FIXTURES,
        "golden fixtures found: {:#?}",
        files.iter().map(|p| p.display().to_string()).collect::<Vec<_>>()
    );
    let server = mock_server().await;
    // MMLite on: only marketing templates may take it, so every other fixture proves they don't.
    let account = account_with(mmlite_config(&server.uri()));

    let mut failures = Vec::new();
    for path in &files {
        let name = path.file_name().unwrap_or_default().to_string_lossy().into_owned();
        let fixture: Value = match std::fs::read(path)
            .map_err(|e| e.to_string())
            .and_then(|b| serde_json::from_slice(&b).map_err(|e| e.to_string()))
        {
            Ok(v) => v,
            Err(e) => {
                failures.push(format!("{name}: unreadable: {e}"));
                continue;
            }
        };
        if fixture["about"].as_str().is_none_or(str::is_empty) {
            failures.push(format!("{name}: says nothing `about` its source"));
        }
        let want_path = match fixture["endpoint"].as_str() {
            Some("msg/submit") => SUBMIT_PATH,
            Some("mmlite") => MMLITE_PATH,
            other => {
                failures.push(format!("{name}: unknown endpoint {other:?}"));
                continue;
            }
        };
        let result = match send(&server, &account, &fixture["request"]).await {
            Ok(req) => check(&req, want_path, &fixture["body"]),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} of {FIXTURES} golden cases failed:\n{}", failures.len(), failures.join("\n"));
}

fn submit_body(message_type: &str, fields: Value) -> Value {
    let mut body = json!({
        "wabaId": "104417182520443", "messageType": message_type, "uid": UID,
        "sendNumber": "85230012345", "recipientNumber": "85268411234"
    });
    for (k, v) in fields.as_object().expect("object") {
        body[k] = v.clone();
    }
    body
}

/// Where the API takes more, or less, than InnoPaaS: what the adapter sends instead.
#[tokio::test]
async fn what_innopaas_does_not_take_is_left_out_or_filled_in() {
    let server = mock_server().await;
    let plain = account_with(config(&server.uri()));
    let mut with_default = config(&server.uri());
    with_default.default_language = Some("zh_HK".into());
    let with_default = account_with(with_default);
    let mmlite = account_with(mmlite_config(&server.uri()));
    let mut mmlite_off = mmlite_config(&server.uri());
    mmlite_off.marketing_via_mmlite = false;
    let mmlite_off = account_with(mmlite_off);

    let template = |extra: Value| {
        let mut t = json!({"name": "spring_sale", "language": "en"});
        for (k, v) in extra.as_object().expect("object") {
            t[k] = v.clone();
        }
        whatsapp("template", t)
    };
    let cases: Vec<(&str, &InnopaasAccount, Value, &str, Value)> = vec![
        (
            "a plain-string text, preview_url dropped",
            &plain,
            whatsapp("text", json!({"body": "See https://x.io", "preview_url": true})),
            SUBMIT_PATH,
            submit_body("text", json!({"body": "See https://x.io"})),
        ),
        (
            "a leading + is dropped from the recipient",
            &plain,
            json!({"channel": "whatsapp", "to": "+85268411234", "type": "text", "text": "Hi"}),
            SUBMIT_PATH,
            submit_body("text", json!({"body": "Hi"})),
        ),
        (
            "a document without filename is named after its link",
            &plain,
            whatsapp("document", json!({"link": "https://cdn.example.com/files/template.xls"})),
            SUBMIT_PATH,
            submit_body(
                "document",
                json!({"media": {"link": "https://cdn.example.com/files/template.xls", "filename": "template.xls"}}),
            ),
        ),
        (
            "the account's default language fills in",
            &with_default,
            whatsapp("template", json!({"name": "hello_world"})),
            SUBMIT_PATH,
            submit_body("template", json!({"language": "zh_HK", "templateName": "hello_world"})),
        ),
        (
            "the template's own language wins over the default",
            &with_default,
            whatsapp("template", json!({"name": "hello_world", "language": "en_US"})),
            SUBMIT_PATH,
            submit_body("template", json!({"language": "en_US", "templateName": "hello_world"})),
        ),
        (
            "an authentication template takes the default language too",
            &with_default,
            whatsapp("template", json!({"name": "auth", "code": "8812"})),
            SUBMIT_PATH,
            submit_body(
                "template",
                json!({"language": "zh_HK", "templateName": "auth", "bodyParams": ["8812"],
                "buttonParams": [{"type": "text", "value": "8812"}]}),
            ),
        ),
        (
            "currency and date-time parameters go as their fallback text",
            &plain,
            template(json!({"components": [{"type": "body", "parameters": [
                {"type": "currency", "currency": {"fallback_value": "HK$100.99", "code": "HKD", "amount_1000": 100990}},
                {"type": "date_time", "date_time": {"fallback_value": "May 1, 2026"}}]}]})),
            SUBMIT_PATH,
            submit_body(
                "template",
                json!({"language": "en", "templateName": "spring_sale", "bodyParams": ["HK$100.99", "May 1, 2026"]}),
            ),
        ),
        (
            "a document header keeps its filename, a header caption has no place",
            &plain,
            template(json!({"components": [{"type": "header", "parameters": [
                {"type": "document", "document": {"link": "https://cdn.example.com/f/menu.pdf", "filename": "menu.pdf", "caption": "Menu"}}]}]})),
            SUBMIT_PATH,
            submit_body(
                "template",
                json!({"language": "en", "templateName": "spring_sale",
                "header": {"type": "document", "link": "https://cdn.example.com/f/menu.pdf", "filename": "menu.pdf"}}),
            ),
        ),
        (
            "a quick-reply payload is a button parameter",
            &plain,
            template(json!({"components": [{"type": "button", "sub_type": "quick_reply", "index": 0,
                "parameters": [{"type": "payload", "payload": "stop-promos"}]}]})),
            SUBMIT_PATH,
            submit_body(
                "template",
                json!({"language": "en", "templateName": "spring_sale",
                "buttonParams": [{"type": "payload", "value": "stop-promos"}]}),
            ),
        ),
        (
            "a utility template stays on msg/submit with MMLite on",
            &mmlite,
            template(json!({"category": "utility"})),
            SUBMIT_PATH,
            submit_body("template", json!({"language": "en", "templateName": "spring_sale"})),
        ),
        (
            "a template without category stays on msg/submit with MMLite on",
            &mmlite,
            template(json!({})),
            SUBMIT_PATH,
            submit_body("template", json!({"language": "en", "templateName": "spring_sale"})),
        ),
        (
            "a marketing template stays on msg/submit with marketing_via_mmlite off",
            &mmlite_off,
            template(json!({"category": "MARKETING"})),
            SUBMIT_PATH,
            submit_body("template", json!({"language": "en", "templateName": "spring_sale"})),
        ),
        (
            "an interactive video header carries its caption",
            &plain,
            whatsapp(
                "interactive",
                json!({"type": "button", "header": {"type": "video", "video": {"link": "https://cdn.example.com/v/a.mp4", "caption": "Watch"}},
                "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}}),
            ),
            SUBMIT_PATH,
            submit_body(
                "interactive",
                json!({"interactive": {"type": "button",
                "header": {"type": "video", "link": "https://cdn.example.com/v/a.mp4", "caption": "Watch"},
                "body": {"text": "Pick"}, "action": {"buttons": [{"type": "reply", "title": "Yes", "id": "y"}]}}}),
            ),
        ),
    ];
    let mut failures = Vec::new();
    for (name, account, request, path, want) in &cases {
        let result = match send(&server, account, request).await {
            Ok(req) => check(&req, path, want),
            Err(e) => Err(e),
        };
        if let Err(e) = result {
            failures.push(format!("{name}: {e}"));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[tokio::test]
async fn uid_is_the_message_id_in_32_hex_digits() {
    let server = mock_server().await;
    let account = account_with(config(&server.uri()));
    let id = MessageId::new();
    let req = send_as(&server, &account, &whatsapp("text", json!("Hi")), &id).await.expect("sent");
    let body: Value = serde_json::from_slice(&req.body).expect("json");
    let uid = body["uid"].as_str().expect("uid");
    assert_eq!(uid, id.as_uuid().simple().to_string());
    assert_eq!(uid.len(), 32);
    assert!(uid.bytes().all(|b| b.is_ascii_hexdigit()));
}

#[tokio::test]
async fn a_path_prefix_on_the_base_url_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("1")).expect(1).mount(&server).await;
    let account = account_with(config(&format!("{}/inno/", server.uri())));
    account.send(&MessageId::new(), &text()).await.expect("sent");
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received[0].url.path(), "/inno/api/whatsapp/v3/msg/submit");
}
