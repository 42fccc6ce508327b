use std::time::Duration;

use gateway_tests::INCS_CODE;
use serde_json::{json, Value};

/// The README's example: accepted, submitted within a second with the sandbox's id, and the INCS
/// request carries the certification code and exactly the documented body.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_text_reaches_incs_and_is_submitted() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let res = gw.send(&json!({"channel": "whatsapp", "to": "+85268411234", "type": "text", "text": "Hello"})).await;
    assert_eq!(res.status(), 202);
    let location = res.headers().get("location").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let accepted: Value = res.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(location.as_deref(), Some(format!("/v1/messages/{id}").as_str()));
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["to"], "85268411234");
    assert_eq!(accepted["sender"], "hk-main");

    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(1)).await;
    let pmid = m["provider_message_id"].as_str().unwrap();
    assert!(pmid.starts_with("wamid."), "{pmid}");
    assert_eq!(m["provider"], "incs");
    assert_eq!(m["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(m["attempts"][0]["outcome"], "submitted");
    let statuses: Vec<&str> = m["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(statuses, ["queued", "submitted"]);

    let reqs = sandbox.requests("incs").await;
    assert_eq!(reqs.len(), 1, "{reqs:?}");
    assert_eq!(reqs[0]["path"], "/external/messages/whatsapp");
    assert_eq!(reqs[0]["headers"]["certification-code"], INCS_CODE);
    assert_eq!(reqs[0]["body"], json!({"to": "85268411234", "type": "text", "text": "Hello"}));
    gw.stop().await;
}

/// Each channel goes to its own INCS path, and the body is the document's shape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn viber_and_rcs_go_to_their_paths() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let otp = json!({"code": "123456", "language": "en", "code_expiration_minutes": 3});
    let viber = gw.send(&json!({"channel": "viber", "to": "85268411234", "type": "otp", "otp": otp})).await;
    assert_eq!(viber.status(), 202);
    let viber_id = viber.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let params = json!({"username": "jack", "service_name": "promotion"});
    let rcs = gw
        .send(&json!({"channel": "rcs", "to": "85268411234", "type": "template",
            "template": {"name": "test_button_reply_1", "parameters": params}}))
        .await;
    assert_eq!(rcs.status(), 202);
    let rcs_id = rcs.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();

    gw.wait_for_status(&viber_id, "submitted", Duration::from_secs(2)).await;
    gw.wait_for_status(&rcs_id, "submitted", Duration::from_secs(2)).await;
    let reqs = sandbox.requests("incs").await;
    let by_path = |p: &str| reqs.iter().find(|r| r["path"] == p).cloned().unwrap_or(Value::Null);
    assert_eq!(by_path("/external/messages/viber")["body"], json!({"to": "85268411234", "type": "otp", "otp": otp}));
    assert_eq!(
        by_path("/external/messages/rcs")["body"],
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_button_reply_1", "parameters": params}})
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_and_docs_are_served() {
    let (_redis, _sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let get = |p: &str| gw.client.get(format!("{}{p}", gw.base_url)).send();
    assert_eq!(get("/health/live").await.unwrap().status(), 200);
    let ready = get("/health/ready").await.unwrap();
    assert_eq!(ready.status(), 200);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!(ready["redis"], "up");
    let circuits: Vec<(&str, &str)> = ready["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["account"].as_str().unwrap(), a["circuit"].as_str().unwrap()))
        .collect();
    assert_eq!(circuits, [("incs-rcs", "closed"), ("incs-viber", "closed"), ("incs-whatsapp", "closed")]);
    let spec: Value = get("/openapi.json").await.unwrap().json().await.unwrap();
    assert!(spec["paths"]["/v1/messages"]["post"].is_object());
    assert_eq!(get("/docs/").await.unwrap().status(), 200);
    let metrics = get("/metrics").await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gateway_http_requests_total"), "{metrics}");
    gw.stop().await;
}
