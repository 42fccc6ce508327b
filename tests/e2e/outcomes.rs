//! What happens to a message after the provider answers.

use std::time::Duration;

use gateway_tests::TestGateway;
use serde_json::{json, Value};

async fn send_text(gw: &TestGateway) -> String {
    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "hi"})).await;
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_permanent_rejection_fails_the_message_with_the_error() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    // The document's failure example: HTTP 200 with an error envelope.
    sandbox
        .fault(json!({"provider": "incs", "status": 200, "count": 1, "body": {"status": "error", "code": 10002,
            "message": "(#132012) Parameter format does not match format in the created template", "data": {}, "error": {}}}))
        .await;
    let id = send_text(&gw).await;
    let m = gw.wait_for_status(&id, "failed", Duration::from_secs(2)).await;
    assert_eq!(m["error"]["code"], "132012");
    assert_eq!(m["error"]["retryable"], false);
    assert!(m["error"]["title"].as_str().unwrap().contains("Parameter format"));
    assert_eq!(m["attempts"].as_array().map(Vec::len), Some(1));
    assert_eq!(m["attempts"][0]["outcome"], "rejected");
    assert_eq!(sandbox.requests("incs").await.len(), 1, "a permanent error is not retried");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_failure_is_retried_then_submitted() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    sandbox.fault(json!({"provider": "incs", "status": 500, "count": 1})).await;
    let id = send_text(&gw).await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let outcomes: Vec<&str> = m["attempts"].as_array().unwrap().iter().filter_map(|a| a["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["transient", "submitted"]);
    assert_eq!(m["attempts"][0]["http_status"], 500);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_run_out_and_the_message_fails() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    sandbox.fault(json!({"provider": "incs", "status": 500})).await;
    let id = send_text(&gw).await;
    // Schedule [100, 200] ms: three attempts, then failed.
    let m = gw.wait_for_status(&id, "failed", Duration::from_secs(3)).await;
    assert_eq!(m["attempts"].as_array().map(Vec::len), Some(3));
    assert_eq!(m["error"]["retryable"], true);
    assert_eq!(sandbox.requests("incs").await.len(), 3);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_429_pauses_the_lane_without_spending_an_attempt() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    sandbox.fault(json!({"provider": "incs", "status": 429, "retry_after": 1, "count": 1})).await;
    let id = send_text(&gw).await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(4)).await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{m}");
    assert_eq!(attempts[0]["outcome"], "throttled");
    assert_eq!(attempts[1]["n"], 1, "the throttled call spent no attempt");
    let reqs = sandbox.requests("incs").await;
    let at = |i: usize| chrono::DateTime::parse_from_rfc3339(reqs[i]["received_at"].as_str().unwrap()).unwrap();
    let gap = at(1) - at(0);
    assert!(gap >= chrono::Duration::milliseconds(950), "the lane resumed after {gap}");
    gw.stop().await;
}
