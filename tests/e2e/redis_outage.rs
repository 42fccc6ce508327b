use std::time::Duration;

use gateway_tests::{gateway_toml, RedisServer, TestGateway, TestSandbox};
use serde_json::{json, Value};

/// With Redis gone the API answers 503 with Retry-After, never 202, and the process keeps serving;
/// once Redis is back, sends are accepted and delivered again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_down_means_503_and_recovery_after() {
    let mut redis = RedisServer::start();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&gateway_toml(&redis.url(), &sandbox.url(), "")).await;
    let msg = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "hi"});

    assert_eq!(gw.send(&msg).await.status(), 202);
    redis.kill();
    for _ in 0..3 {
        let res = gw.send(&msg).await;
        assert_eq!(res.status(), 503);
        assert_eq!(res.headers()["retry-after"], "1");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
    }
    let ready = gw.client.get(format!("{}/health/ready", gw.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    assert_eq!(gw.client.get(format!("{}/health/live", gw.base_url)).send().await.unwrap().status(), 200);

    redis.restart();
    let accepted = gateway_tests::eventually(Duration::from_secs(10), || async {
        let res = gw.send(&msg).await;
        (res.status() == 202).then_some(res)
    })
    .await
    .expect("accepted again after Redis came back");
    let id = accepted.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    gw.wait_for_status(&id, "submitted", Duration::from_secs(5)).await;
    gw.stop().await;
}
