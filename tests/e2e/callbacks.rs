//! Callbacks in, status out (DESIGN.md §2.3, §5).

use std::time::Duration;

use gateway_tests::{eventually, free_port, metric_sample, TestGateway, TestRedis, TestSandbox, API_KEY};
use provider_sandbox::SandboxConfig;
use serde_json::{json, Value};

fn subscription(sink: &str) -> String {
    let schedule =
        "retry_schedule_ms = [100, 200, 300, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400, 400]";
    gateway_tests::sink_subscription(sink, &["*"], &format!("partitions = 2\n{schedule}"))
}

/// A gateway on a known port, so the sandbox can be told where to send its callbacks.
async fn gateway_on(port: u16, redis: &TestRedis, sandbox_url: &str, extra: &str) -> TestGateway {
    let toml = redis.config(sandbox_url, extra).listen(port).text();
    TestGateway::spawn(&toml).await
}

async fn sandbox_calling(port: u16) -> TestSandbox {
    gateway_tests::sandbox_calling_back(port).await
}

async fn webhooks(sandbox: &TestSandbox) -> Vec<Value> {
    sandbox.client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.unwrap().json().await.unwrap()
}

fn verify(delivery: &Value) -> Value {
    gateway_tests::verified_webhook(delivery)
}

async fn post_callback(gw: &TestGateway, path: &str, body: &Value) -> u16 {
    gw.client.post(format!("{}{path}", gw.base_url)).json(body).send().await.unwrap().status().as_u16()
}

fn status_callback(pmid: &str, status: &str) -> Value {
    json!({"event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
        "message_id": pmid, "message_status": status, "error": null, "received_at": chrono::Utc::now().timestamp()})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn incs_callbacks_take_a_message_to_read_and_events_follow() {
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = sandbox_calling(port).await;
    let gw = gateway_on(port, &redis, &sandbox.url(), &subscription(&sandbox.url())).await;

    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "track me", "metadata": {"order_id": "A-1001"}})).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "read", Duration::from_secs(5)).await;
    let history: Vec<&str> = m["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["queued", "submitted", "sent", "delivered", "read"]);

    // The subscriber got every status, signed, in order, with the metadata echoed.
    let statuses = eventually(Duration::from_secs(5), || async {
        let events: Vec<Value> = webhooks(&sandbox).await.iter().map(verify).collect();
        let statuses: Vec<String> = events
            .iter()
            .filter(|e| e["type"] == "message.status" && e["data"]["message_id"] == id.as_str())
            .map(|e| e["data"]["status"].as_str().unwrap_or("").to_owned())
            .collect();
        (statuses.len() >= 4).then_some(statuses)
    })
    .await
    .expect("four status events");
    assert_eq!(statuses, ["submitted", "sent", "delivered", "read"]);
    let events: Vec<Value> = webhooks(&sandbox).await.iter().map(verify).collect();
    let read = events.iter().find(|e| e["data"]["status"] == "read").unwrap();
    assert_eq!(read["data"]["metadata"]["order_id"], "A-1001");
    assert_eq!(read["data"]["previous_status"], "delivered");

    // Late reports after `read` change nothing but the history.
    let pmid = m["provider_message_id"].as_str().unwrap();
    assert_eq!(
        post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &status_callback(pmid, "failed")).await,
        200
    );
    let after = gw.get_message(&id).await;
    assert_eq!(after["status"], "read");
    let history: Vec<&str> = after["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["queued", "submitted", "sent", "delivered", "read", "failed"]);
    // Duplicates are harmless.
    assert_eq!(
        post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &status_callback(pmid, "delivered")).await,
        200
    );
    assert_eq!(gw.get_message(&id).await["history"].as_array().map(Vec::len), Some(6));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_late_delivered_after_read_only_joins_the_history() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway_on(free_port(), &redis, &sandbox.url(), "").await;
    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "x"})).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let pmid = m["provider_message_id"].as_str().unwrap().to_owned();
    let cb = "/callbacks/incs/sandbox-incs-callback";
    assert_eq!(post_callback(&gw, cb, &status_callback(&pmid, "read")).await, 200);
    assert_eq!(post_callback(&gw, cb, &status_callback(&pmid, "delivered")).await, 200);
    assert_eq!(post_callback(&gw, cb, &status_callback(&pmid, "sent")).await, 200);
    let m = gw.get_message(&id).await;
    assert_eq!(m["status"], "read");
    let history: Vec<&str> = m["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["queued", "submitted", "read", "delivered", "sent"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_callback_before_the_send_is_recorded_waits_for_it() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway_on(free_port(), &redis, &sandbox.url(), "").await;
    let pmid = "wamid.HBgLODUyNjg0MTEyMzQVAgARGBJCVUZGRVJFRC0wMDAwMDEA";
    // The callback arrives first: it is accepted and kept.
    assert_eq!(
        post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &status_callback(pmid, "delivered")).await,
        200
    );
    sandbox
        .fault(json!({"provider": "incs", "status": 200, "count": 1,
            "body": {"status": "success", "code": 200, "message": "", "data": {"msg_id": pmid}, "error": {}}}))
        .await;
    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "early"})).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "delivered", Duration::from_secs(3)).await;
    assert_eq!(m["provider_message_id"], pmid);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_documented_incs_callback_is_accepted_and_bad_ones_are_refused() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway_on(free_port(), &redis, &sandbox.url(), "").await;
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../crates/incs/tests/callbacks");
    let mut n = 0;
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "json") {
            continue;
        }
        let body = std::fs::read(&path).unwrap();
        let res = gw
            .client
            .post(format!("{}/callbacks/incs/sandbox-incs-callback", gw.base_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", path.display());
        n += 1;
    }
    assert!(n >= 25, "only {n} fixtures");
    let post_raw = |body: &'static str, token: &'static str| {
        gw.client
            .post(format!("{}/callbacks/incs/{token}", gw.base_url))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    assert_eq!(post_raw("{not json", "sandbox-incs-callback").await.unwrap().status(), 400);
    assert_eq!(post_raw("[]", "sandbox-incs-callback").await.unwrap().status(), 400);
    assert_eq!(post_raw(r#"{"event":"message_status_update"}"#, "sandbox-incs-callback").await.unwrap().status(), 400);
    assert_eq!(post_raw(r#"{"event":"something_new","x":1}"#, "sandbox-incs-callback").await.unwrap().status(), 422);
    assert_eq!(post_raw(r#"{"event":"message_status_update"}"#, "wrong-token-000000").await.unwrap().status(), 404);
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert!(gateway_tests::metric_value(&metrics, "gateway_callbacks_total") >= (n + 4) as f64);
    assert!(metrics.contains("outcome=\"malformed\""), "malformed callbacks are counted");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn innopaas_webhooks_are_verified_and_applied() {
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = TestSandbox::spawn_with(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        innopaas_webhook_url: Some(format!("http://127.0.0.1:{port}/callbacks/innopaas/sandbox-innopaas-callback")),
        ..Default::default()
    })
    .await;
    let url = sandbox.url();
    let extra = format!(
        r#"
[[accounts]]
name = "innopaas-hk"
provider = "innopaas"
callback_token = "sandbox-innopaas-callback"
webhook_headers = {{ Authorization = "sandbox-innopaas-callback" }}
[accounts.innopaas]
base_url = "{url}"
app_key = "sandbox-innopaas-appkey"
token = "sandbox-innopaas-token"
waba_id = "102290129340398"
send_number = "85230001234"

[[senders]]
name = "inno"
channel = "whatsapp"
accounts = ["innopaas-hk"]
"#
    );
    let gw = gateway_on(port, &redis, &url, &extra).await;
    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "via innopaas", "sender": "inno"})).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "read", Duration::from_secs(5)).await;
    let history: Vec<&str> = m["history"].as_array().unwrap().iter().filter_map(|h| h["status"].as_str()).collect();
    assert_eq!(history, ["queued", "submitted", "delivered", "read"]);
    // Without the configured static header: refused.
    let res = gw
        .client
        .post(format!("{}/callbacks/innopaas/sandbox-innopaas-callback", gw.base_url))
        .header("Authorization", "wrong")
        .json(&json!({"id": "x", "type": "whatsapp_message_status_updated", "eventTime": "2026-11-21T10:00:00Z", "body": {}}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inbound_messages_open_the_window_and_map_replies() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let toml_extra = subscription(&sandbox.url());
    let gw = {
        let toml =
            redis.config(&sandbox.url(), &toml_extra).set("senders.hk-main", "enforce_session_window", true).text();
        TestGateway::spawn(&toml).await
    };
    let user = "6281519140327";
    let text = json!({"channel": "whatsapp", "to": user, "type": "text", "text": "hi"});
    let res = gw.send(&text).await;
    assert_eq!(res.status(), 422, "outside the window a text is refused");
    let template =
        json!({"channel": "whatsapp", "to": user, "type": "template", "template": {"name": "test_button_reply_1"}});
    let res = gw.send(&template).await;
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let wamid = m["provider_message_id"].as_str().unwrap();

    // The user replies to our template (the document's button_reply webhook, pointed at our wamid).
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/incs/tests/callbacks/new_message_whatsapp_interactive_button_reply_seed001.json");
    let mut reply: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    reply["message"]["messages"][0]["context"]["id"] = json!(wamid);
    reply["message"]["messages"][0]["from"] = json!(user);
    reply["message"]["contacts"][0]["wa_id"] = json!(user);
    assert_eq!(post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &reply).await, 200);

    let res = gw.send(&text).await;
    assert_eq!(res.status(), 202, "the reply opened the 24-hour window");
    let inbound = eventually(Duration::from_secs(5), || async {
        webhooks(&sandbox).await.iter().map(verify).find(|e| e["type"] == "message.inbound")
    })
    .await
    .expect("a message.inbound event");
    assert_eq!(inbound["data"]["from"], user);
    assert_eq!(inbound["data"]["type"], "interactive");
    assert_eq!(inbound["data"]["context"]["message_id"], id.as_str(), "the reply maps to our message");
    assert_eq!(inbound["data"]["sender"], "hk-main");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_that_is_down_gets_its_events_later_in_order() {
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = sandbox_calling(port).await;
    // The subscriber's address has nobody listening yet.
    let sink_port = free_port();
    let sink_url = format!("http://127.0.0.1:{sink_port}");
    let gw = gateway_on(port, &redis, &sandbox.url(), &subscription(&sink_url)).await;
    let mut ids = Vec::new();
    for i in 0..3 {
        let res = gw
            .send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("late-{i}")}))
            .await;
        ids.push(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
    }
    for id in &ids {
        gw.wait_for_status(id, "read", Duration::from_secs(5)).await;
    }
    // Deliveries fail while nobody listens; once one has been retried, the subscriber comes up.
    let retried = eventually(Duration::from_secs(5), || async {
        let text = gw.metrics().await;
        (metric_sample(&text, "gateway_webhook_deliveries_total", "outcome=\"retried\"") >= 1.0).then_some(())
    });
    retried.await.expect("a failed delivery was retried");
    let sink = TestSandbox::spawn_with(SandboxConfig {
        listen: format!("127.0.0.1:{sink_port}").parse().unwrap(),
        ..Default::default()
    })
    .await;
    let all = eventually(Duration::from_secs(15), || async {
        let events: Vec<Value> = webhooks(&sink).await.iter().map(verify).collect();
        (events.iter().filter(|e| e["type"] == "message.status").count() >= 12).then_some(events)
    })
    .await
    .expect("all 12 status events arrive once the subscriber is back");
    for id in &ids {
        let statuses: Vec<&str> = all
            .iter()
            .filter(|e| e["data"]["message_id"] == id.as_str())
            .filter_map(|e| e["data"]["status"].as_str())
            .collect();
        assert_eq!(statuses, ["submitted", "sent", "delivered", "read"], "order for {id}");
    }
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn silent_messages_are_reconciled_by_polling() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn_with(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        incs_callback_delays: [Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(150)],
        ..Default::default()
    })
    .await;
    let toml = redis
        .config(&sandbox.url(), "")
        .set("engine", "reconcile_after_secs", 1)
        .set("engine", "reconcile_interval_ms", 200)
        .text();
    let gw = TestGateway::spawn(&toml).await;
    let res = gw.send(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "quiet"})).await;
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let m = gw.wait_for_status(&id, "read", Duration::from_secs(6)).await;
    let last = m["history"].as_array().unwrap().last().cloned().unwrap();
    assert_eq!(last["status"], "read");
    let polls = sandbox.requests("incs").await.iter().filter(|r| r["path"] == "/external/messages/status").count();
    assert!(polls >= 1, "the status came from a poll");
    let _ = API_KEY;
    gw.stop().await;
}

/// A template known (from its status callback) to be REJECTED, PAUSED or DISABLED is refused up
/// front; once approved again, it goes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sends_of_a_rejected_template_are_refused() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway_on(free_port(), &redis, &sandbox.url(), "").await;
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../crates/incs/tests/callbacks/template_status_update.json");
    let mut callback: Value = serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap();
    let name = callback["template_name"].as_str().unwrap().to_owned();
    let at = callback["received_at"].as_i64().unwrap_or(1_774_000_000);
    callback["new_value"] = json!("REJECTED");
    assert_eq!(post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &callback).await, 200);
    let send = json!({"channel": "whatsapp", "to": "85268411234", "type": "template", "template": {"name": name}});
    let res = gw.send(&send).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "template.name");
    assert!(problem["errors"][0]["reason"].as_str().unwrap().contains("REJECTED"), "{problem}");

    callback["new_value"] = json!("APPROVED");
    callback["received_at"] = json!(at + 60);
    assert_eq!(post_callback(&gw, "/callbacks/incs/sandbox-incs-callback", &callback).await, 200);
    assert_eq!(gw.send(&send).await.status(), 202);
    gw.stop().await;
}
