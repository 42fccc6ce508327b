//! Cross-channel fallback: WhatsApp, then Viber, then RCS, until the message reaches the person.

use std::time::Duration;

use gateway_tests::{
    eventually, free_port, metric_value, ms_of, quiet_period, sandbox_calling_back, GatewayProcess, TestGateway,
    TestRedis, TestSandbox, API_KEY,
};
use serde_json::{json, Value};

const WA: &str = "/external/messages/whatsapp";
const VIBER: &str = "/external/messages/viber";
const RCS: &str = "/external/messages/rcs";

fn events_to(sandbox_url: &str) -> String {
    gateway_tests::sink_subscription(sandbox_url, &["message.fallback", "message.status"], "")
}

/// A gateway on a free port with a sandbox calling it back, and events going to the sandbox.
async fn setup() -> (TestRedis, TestSandbox, TestGateway) {
    setup_on(TestRedis::single()).await
}

async fn setup_on(redis: TestRedis) -> (TestRedis, TestSandbox, TestGateway) {
    let port = free_port();
    let sandbox = sandbox_calling_back(port).await;
    let toml = redis.config(&sandbox.url(), &events_to(&sandbox.url())).listen(port).text();
    let gw = TestGateway::spawn(&toml).await;
    (redis, sandbox, gw)
}

fn chain(to: &str, steps: Value) -> Value {
    json!({"channel": "whatsapp", "to": to, "type": "text", "text": "Your code is 123456",
        "metadata": {"order_id": "A-1"}, "fallback": steps})
}

async fn accepted_id(gw: &TestGateway, body: &Value) -> String {
    let res = gw.send(body).await;
    assert_eq!(res.status(), 202);
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["outcome"], Value::Null);
    assert!(v["fallback"].as_array().is_some_and(|s| s.iter().all(|s| s["state"] == "pending")), "{v}");
    v["id"].as_str().unwrap().to_owned()
}

fn submitted_ms(message: &Value) -> i64 {
    let entry = message["history"].as_array().unwrap().iter().find(|h| h["status"] == "submitted");
    ms_of(&entry.unwrap_or_else(|| panic!("never submitted: {message}"))["at"])
}

/// Waits until step `step` (1-based) of the chain is sent; returns its message id.
async fn step_sent(gw: &TestGateway, id: &str, step: usize, timeout: Duration) -> String {
    let found = eventually(timeout, || async {
        let m = gw.get_message(id).await;
        m["fallback"][step - 1]["message_id"].as_str().map(str::to_owned)
    })
    .await;
    found.unwrap_or_else(|| panic!("step {step} of chain {id} never sent"))
}

async fn webhook_events(sandbox: &TestSandbox, kind: &str) -> Vec<Value> {
    let all: Vec<Value> =
        sandbox.client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.unwrap().json().await.unwrap();
    all.iter()
        .filter_map(|d| serde_json::from_str::<Value>(d["raw_body"].as_str()?).ok())
        .filter(|e| e["type"] == kind)
        .collect()
}

#[tokio::test]
async fn an_undeliverable_whatsapp_falls_back_to_viber_at_once() {
    undeliverable_falls_back_to_viber(TestRedis::single()).await;
}

/// On a Redis Cluster the first message and its Viber step live in different slots.
#[tokio::test]
async fn an_undeliverable_whatsapp_falls_back_to_viber_on_a_redis_cluster() {
    undeliverable_falls_back_to_viber(TestRedis::cluster()).await;
}

async fn undeliverable_falls_back_to_viber(redis: TestRedis) {
    let (_redis, sandbox, gw) = setup_on(redis).await;
    let to = "85268410001";
    sandbox.recipient(to, "whatsapp", "undeliverable").await;
    let id = accepted_id(&gw, &chain(to, json!([{"channel": "viber", "type": "text", "text": "Your code is 123456"}])))
        .await;

    let viber_id = step_sent(&gw, &id, 1, Duration::from_secs(10)).await;
    let wa = sandbox.requests_to("incs", WA).await;
    let viber = eventually(Duration::from_secs(5), || async {
        let v = sandbox.requests_to("incs", VIBER).await;
        (!v.is_empty()).then_some(v)
    })
    .await
    .expect("the Viber step never reached the sandbox");
    assert_eq!((wa.len(), viber.len()), (1, 1));
    assert_eq!(viber[0]["body"]["to"], to);
    // The sandbox reports `failed` 100 ms after it accepted the WhatsApp send.
    let failed_callback_ms = ms_of(&wa[0]["received_at"]) + 100;
    let gap = ms_of(&viber[0]["received_at"]) - failed_callback_ms;
    eprintln!("WhatsApp failed callback to Viber send: {gap} ms");
    assert!(gap < 1000, "the Viber send came {gap} ms after the WhatsApp failure");

    let first = gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
    assert_eq!(first["error"]["code"], "131026");
    let step = gw.wait_until_passed(&viber_id, "delivered", Duration::from_secs(10)).await;
    assert_eq!((step["parent_id"].as_str(), step["step"].as_u64()), (Some(id.as_str()), Some(1)));
    assert_eq!(step["channel"], "viber");
    assert_eq!(step["metadata"]["order_id"], "A-1", "the step inherits the first message's metadata");
    let first = eventually(Duration::from_secs(5), || async {
        let m = gw.get_message(&id).await;
        (m["outcome"] == viber_id.as_str()).then_some(m)
    })
    .await
    .unwrap_or_else(|| panic!("the outcome never became the Viber message"));
    assert_eq!(first["step"], 0);
    assert_eq!(first["fallback"][0]["state"], "sent");
    assert_eq!(first["fallback"][0]["reason"], "failed");
    assert_eq!(first["fallback"][0]["channel"], "viber");

    let events = eventually(Duration::from_secs(5), || async {
        let e = webhook_events(&sandbox, "message.fallback").await;
        (!e.is_empty()).then_some(e)
    })
    .await
    .expect("no message.fallback event");
    assert_eq!(events.len(), 1);
    let data = &events[0]["data"];
    assert_eq!(
        (data["message_id"].as_str(), data["step_message_id"].as_str()),
        (Some(id.as_str()), Some(viber_id.as_str()))
    );
    assert_eq!(
        (data["reason"].as_str(), data["from_channel"].as_str(), data["channel"].as_str()),
        (Some("failed"), Some("whatsapp"), Some("viber"))
    );
    let statuses = webhook_events(&sandbox, "message.status").await;
    assert!(
        statuses.iter().any(|e| e["data"]["message_id"] == viber_id.as_str() && e["data"]["parent_id"] == id.as_str()),
        "the step's status events carry parent_id"
    );
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"gateway_fallbacks_total{from="whatsapp",reason="failed",to="viber"} 1"#), "{metrics}");
}

#[tokio::test]
async fn a_silent_step_is_followed_after_its_wait_down_to_rcs() {
    let (_redis, sandbox, gw) = setup().await;
    let to = "85268410002";
    sandbox.recipient(to, "whatsapp", "no_receipts").await;
    sandbox.recipient(to, "viber", "no_receipts").await;
    let id = accepted_id(
        &gw,
        &chain(
            to,
            json!([
                {"channel": "viber", "type": "text", "text": "via viber", "after_seconds": 3},
                {"channel": "rcs", "type": "text", "text": "via rcs", "after_seconds": 3}]),
        ),
    )
    .await;
    let viber_id = step_sent(&gw, &id, 1, Duration::from_secs(8)).await;
    let rcs_id = step_sent(&gw, &id, 2, Duration::from_secs(8)).await;
    let first = gw.get_message(&id).await;
    let viber = gw.get_message(&viber_id).await;
    let viber_sent = sandbox.requests_to("incs", VIBER).await;
    let rcs_sent = sandbox.requests_to("incs", RCS).await;
    assert_eq!((viber_sent.len(), rcs_sent.len()), (1, 1));
    let wait1 = ms_of(&viber_sent[0]["received_at"]) - submitted_ms(&first);
    let wait2 = ms_of(&rcs_sent[0]["received_at"]) - submitted_ms(&viber);
    eprintln!("waits: WhatsApp submitted to Viber sent {wait1} ms, Viber submitted to RCS sent {wait2} ms");
    assert!((2500..=3500).contains(&wait1), "Viber went {wait1} ms after the WhatsApp submit");
    assert!((2500..=3500).contains(&wait2), "RCS went {wait2} ms after the Viber submit");
    assert_eq!(first["fallback"][0]["reason"], "timeout");
    assert_eq!(first["fallback"][1]["reason"], "timeout");
    assert_eq!(first["status"], "submitted", "the WhatsApp message itself stays where its provider left it");
    let rcs = gw.wait_for_status(&rcs_id, "delivered", Duration::from_secs(5)).await;
    assert_eq!(rcs["step"], 2);
    let first = eventually(Duration::from_secs(5), || async {
        let m = gw.get_message(&id).await;
        (m["outcome"] == rcs_id.as_str()).then_some(m)
    })
    .await;
    assert!(first.is_some(), "the RCS message never became the outcome");
}

#[tokio::test]
async fn a_message_delivered_within_the_wait_sends_no_fallback_and_replays_are_one_chain() {
    let (_redis, sandbox, gw) = setup().await;
    let body = chain("85268410003", json!([{"channel": "viber", "type": "text", "text": "x", "after_seconds": 2}]));
    let send = || gw.send_idempotent(&body, "chain-1");
    let first: Value = send().await.json().await.unwrap();
    let id = first["id"].as_str().unwrap().to_owned();
    let delivered = gw.wait_for_status(&id, "delivered", Duration::from_secs(5)).await;
    let again = send().await;
    assert_eq!(again.headers().get("Idempotent-Replayed").and_then(|v| v.to_str().ok()), Some("true"));
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["id"], id.as_str());
    let deadline = submitted_ms(&delivered) + 2000;
    let until = (deadline + 2000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    quiet_period(Duration::from_millis(until), "two seconds past the wait, no fallback may be sent").await;
    assert!(sandbox.requests_to("incs", VIBER).await.is_empty(), "a fallback went out for a delivered message");
    assert_eq!(sandbox.requests_to("incs", WA).await.len(), 1, "the replay sent nothing");
    let m = gw.get_message(&id).await;
    assert_eq!(m["outcome"], id.as_str());
    assert_eq!(m["fallback"][0]["state"], "skipped");
    assert_eq!(m["fallback"][0]["message_id"], Value::Null);
}

#[tokio::test]
async fn cancelling_during_the_wait_sends_no_step() {
    let (_redis, sandbox, gw) = setup().await;
    let to = "85268410004";
    sandbox.recipient(to, "whatsapp", "no_receipts").await;
    let id = accepted_id(
        &gw,
        &chain(to, json!([{"channel": "viber", "type": "text", "text": "x", "after_seconds": 2}, {"channel": "rcs", "type": "text", "text": "y"}])),
    )
    .await;
    let submitted = gw.wait_for_status(&id, "submitted", Duration::from_secs(5)).await;
    let res =
        gw.client.post(format!("{}/v1/messages/{id}/cancel", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["status"], "submitted");
    assert_eq!(
        (m["fallback"][0]["state"].as_str(), m["fallback"][1]["state"].as_str()),
        (Some("skipped"), Some("skipped"))
    );
    let until = (submitted_ms(&submitted) + 4000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    quiet_period(Duration::from_millis(until), "two seconds past the cancelled chain's wait").await;
    assert!(sandbox.requests_to("incs", VIBER).await.is_empty(), "a cancelled chain sent its step");
    assert!(sandbox.requests_to("incs", RCS).await.is_empty());
    // Once closed, there is nothing left to cancel.
    let res =
        gw.client.post(format!("{}/v1/messages/{id}/cancel", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 409);
}

#[tokio::test]
async fn a_step_that_names_no_usable_sender_or_bad_content_is_refused() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    // Viber without a default sender.
    let toml = redis.config(&sandbox.url(), "").set("senders.viber-main", "default", false).text();
    let gw = TestGateway::spawn(&toml).await;
    let cases = [
        (json!([{"channel": "viber", "type": "text", "text": "x"}]), "fallback[0].sender"),
        (
            json!([{"channel": "rcs", "type": "text", "text": "x"}, {"channel": "viber", "sender": "rcs-main", "type": "text", "text": "x"}]),
            "fallback[1].sender",
        ),
        (
            json!([{"channel": "rcs", "type": "text", "text": "x"}, {"channel": "viber", "sender": "viber-main", "type": "text", "text": "x".repeat(1001)}]),
            "fallback[1].text",
        ),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "after_seconds": 0}]), "fallback[0].after_seconds"),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "until": "sent"}]), "fallback[0].until"),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "fallback": []}]), "fallback[0].fallback"),
        (json!({"channel": "rcs"}), "fallback"),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "ttl_seconds": 0}]), "fallback[0].ttl_seconds"),
        (
            json!([{"channel": "rcs", "type": "text", "text": "x"}, {"channel": "viber", "sender": "viber-main", "type": "text", "text": "x", "ttl_seconds": 2_592_001}]),
            "fallback[1].ttl_seconds",
        ),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "ttl_seconds": -1}]), "fallback[0].ttl_seconds"),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "priority": "urgent"}]), "fallback[0].priority"),
        (json!([{"channel": "rcs", "type": "text", "text": "x", "priority": 1}]), "fallback[0].priority"),
    ];
    for (steps, field) in cases {
        let res = gw.send(&chain("85268410005", steps.clone())).await;
        assert_eq!(res.status(), 422, "{steps}");
        assert_eq!(res.headers().get("content-type").and_then(|v| v.to_str().ok()), Some("application/problem+json"));
        let p: Value = res.json().await.unwrap();
        assert!(p["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{steps}: {p}");
    }
    let four: Vec<Value> = (0..4).map(|_| json!({"channel": "rcs", "type": "text", "text": "x"})).collect();
    let res = gw.send(&chain("85268410005", Value::Array(four))).await;
    assert_eq!(res.status(), 422);
    assert!(sandbox.requests("incs").await.is_empty());
}

/// The wait is durable: a gateway killed with SIGKILL during it sends the step after restart,
/// once, on time.
#[tokio::test]
async fn a_gateway_killed_during_the_wait_sends_the_step_once_on_time() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let (early, late) = ("85268410006", "85268410007");
    for to in [early, late] {
        sandbox.recipient(to, "whatsapp", "no_receipts").await;
    }
    let toml = redis.gateway_toml(&sandbox.url(), "");
    let mut gw = GatewayProcess::spawn(&toml).await;
    let send = |to: &'static str, after: u32| {
        let body = chain(to, json!([{"channel": "viber", "type": "text", "text": to, "after_seconds": after}]));
        let (client, url) = (gw.client.clone(), format!("{}/v1/messages", gw.base_url));
        async move {
            let v: Value =
                client.post(url).bearer_auth(API_KEY).json(&body).send().await.unwrap().json().await.unwrap();
            v["id"].as_str().unwrap().to_owned()
        }
    };
    // One wait ends while the gateway is down, the other after it is back.
    let (a, b) = (send(early, 2).await, send(late, 8).await);
    let wa_sent = eventually(Duration::from_secs(5), || async {
        let r = sandbox.requests_to("incs", WA).await;
        (r.len() == 2).then_some(r)
    })
    .await
    .expect("both WhatsApp messages submitted");
    // The provider's answer is recorded right after it is received; give it a moment.
    let base = gw.base_url.clone();
    let submitted = eventually(Duration::from_secs(5), || async {
        let mut all = Vec::new();
        for id in [&a, &b] {
            let m: Value = gw
                .client
                .get(format!("{base}/v1/messages/{id}"))
                .bearer_auth(API_KEY)
                .send()
                .await
                .ok()?
                .json()
                .await
                .ok()?;
            (m["status"] == "submitted").then_some(())?;
            all.push(submitted_ms(&m));
        }
        Some(all)
    })
    .await
    .expect("both submitted");
    assert_eq!(wa_sent.len(), 2);
    gw.kill9();
    let down_until = submitted[0] + 3500;
    let pause = (down_until - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    quiet_period(Duration::from_millis(pause), "the gateway stays down past the first wait's end").await;
    assert!(sandbox.requests_to("incs", VIBER).await.is_empty(), "nothing sends while the gateway is down");
    let gw = GatewayProcess::spawn(&toml).await;
    let restarted = chrono::Utc::now().timestamp_millis();
    let viber = eventually(Duration::from_secs(10), || async {
        let r = sandbox.requests_to("incs", VIBER).await;
        (r.len() == 2).then_some(r)
    })
    .await
    .expect("both steps sent after the restart");
    let at = |to: &str| ms_of(&viber.iter().find(|r| r["body"]["to"] == to).unwrap()["received_at"]);
    let after_restart = at(early) - restarted;
    let late_wait = at(late) - submitted[1];
    eprintln!(
        "overdue step: {after_restart} ms after the restart; on-time step: {late_wait} ms after its submit (wait 8000)"
    );
    assert!(after_restart <= 1000, "the overdue step went {after_restart} ms after the restart");
    assert!((7000..=9000).contains(&late_wait), "the step due after the restart went after {late_wait} ms");
    quiet_period(Duration::from_secs(3), "a step sent twice would show by now (hand-off recheck is 2 s)").await;
    assert_eq!(sandbox.requests_to("incs", VIBER).await.len(), 2, "a step was sent twice");
    assert!(gw.metric("gateway_fallbacks_total").await >= 1.0);
}

#[tokio::test]
async fn a_thousand_chains_in_one_batch_all_resolve_and_no_step_goes_twice() {
    let (_redis, sandbox, gw) = setup().await;
    let n = 1000;
    let to = |i: usize| format!("8526900{i:04}");
    // Every other recipient is not on WhatsApp.
    for i in (0..n).step_by(2) {
        sandbox.recipient(&to(i), "whatsapp", "undeliverable").await;
    }
    let messages: Vec<Value> = (0..n)
        .map(|i| {
            chain(&to(i), json!([{"channel": "viber", "type": "text", "text": format!("v{i}"), "after_seconds": 30}]))
        })
        .collect();
    let res = gw
        .client
        .post(format!("{}/v1/messages/batch", gw.base_url))
        .bearer_auth(API_KEY)
        .json(&json!({"messages": messages}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let ids: Vec<String> =
        out["results"].as_array().unwrap().iter().map(|r| r["message"]["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!((ids.len(), out["accepted"].as_u64()), (n, Some(n as u64)));
    let started = std::time::Instant::now();
    let mut unresolved: Vec<usize> = (0..n).collect();
    while !unresolved.is_empty() && started.elapsed() < Duration::from_secs(90) {
        let mut still = Vec::new();
        for i in unresolved {
            let m = gw.get_message(&ids[i]).await;
            let want_step = i % 2 == 0;
            match m["outcome"].as_str() {
                Some(o) if want_step => assert_eq!(Some(o), m["fallback"][0]["message_id"].as_str(), "chain {i}"),
                Some(o) => assert_eq!(o, ids[i], "chain {i} fell back though WhatsApp delivered"),
                None => still.push(i),
            }
        }
        unresolved = still;
        if !unresolved.is_empty() {
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    assert!(unresolved.is_empty(), "{} chains never resolved, e.g. {:?}", unresolved.len(), unresolved.first());
    eprintln!("1000 chains resolved in {:?}", started.elapsed());
    let viber = sandbox.requests_to("incs", VIBER).await;
    let mut seen = std::collections::HashSet::new();
    for r in &viber {
        assert!(seen.insert(r["body"]["text"].as_str().unwrap().to_owned()), "a step went twice: {}", r["body"]);
    }
    assert_eq!(viber.len(), n / 2);
    assert!((0..n).step_by(2).all(|i| seen.contains(&format!("v{i}"))));
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&metrics, "gateway_fallbacks_total"), (n / 2) as f64);
}

/// A message that reaches the person after the next step went out: both went out, the late
/// success is recorded on its own message and counted, and nothing further is sent.
#[tokio::test]
async fn a_late_delivery_is_recorded_counted_and_ends_the_chain() {
    let (_redis, sandbox, gw) = setup().await;
    let to = "85268410008";
    sandbox.recipient(to, "whatsapp", "no_receipts").await;
    sandbox.recipient(to, "viber", "no_receipts").await;
    let id = accepted_id(
        &gw,
        &chain(
            to,
            json!([{"channel": "viber", "type": "text", "text": "v", "after_seconds": 1},
                   {"channel": "rcs", "type": "text", "text": "r", "after_seconds": 2}]),
        ),
    )
    .await;
    let viber_id = step_sent(&gw, &id, 1, Duration::from_secs(5)).await;
    let first = gw.get_message(&id).await;
    let pmid = first["provider_message_id"].as_str().unwrap().to_owned();
    let callback = json!({"event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
        "message_id": pmid, "message_status": "delivered", "error": null, "received_at": chrono::Utc::now().timestamp()});
    let res = gw
        .client
        .post(format!("{}/callbacks/incs/sandbox-incs-callback", gw.base_url))
        .json(&callback)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let first = gw.wait_for_status(&id, "delivered", Duration::from_secs(5)).await;
    assert_eq!(first["outcome"], id.as_str(), "the first message to reach the person is the outcome");
    assert_eq!(first["fallback"][0]["message_id"], viber_id.as_str());
    assert_eq!(first["fallback"][1]["state"], "skipped");
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&metrics, "gateway_fallback_late_success_total"), 1.0);
    // A `read` after it is the same success, not another.
    let read = json!({"event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
        "message_id": first["provider_message_id"], "message_status": "read", "error": null,
        "received_at": chrono::Utc::now().timestamp()});
    gw.client.post(format!("{}/callbacks/incs/sandbox-incs-callback", gw.base_url)).json(&read).send().await.unwrap();
    gw.wait_for_status(&id, "read", Duration::from_secs(5)).await;
    let viber = gw.get_message(&viber_id).await;
    let until = (submitted_ms(&viber) + 3000 - chrono::Utc::now().timestamp_millis()).max(0) as u64;
    quiet_period(Duration::from_millis(until), "one second past the Viber step's wait: RCS must not go").await;
    assert!(sandbox.requests_to("incs", RCS).await.is_empty(), "the chain went on after a success");
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&metrics, "gateway_fallback_late_success_total"), 1.0);
}

/// A first message still waiting for its `send_at` is cancelled with its whole chain.
#[tokio::test]
async fn cancelling_a_scheduled_first_message_skips_the_whole_chain() {
    let (_redis, sandbox, gw) = setup().await;
    let mut body = chain("85268410009", json!([{"channel": "viber", "type": "text", "text": "x", "after_seconds": 1}]));
    body["send_at"] = json!((chrono::Utc::now() + chrono::TimeDelta::hours(1)).to_rfc3339());
    let id = accepted_id(&gw, &body).await;
    let res =
        gw.client.post(format!("{}/v1/messages/{id}/cancel", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let m: Value = res.json().await.unwrap();
    assert_eq!(m["status"], "cancelled");
    assert_eq!(m["fallback"][0]["state"], "skipped");
    // A cancelled first message is not a failed step: nothing follows it.
    quiet_period(Duration::from_millis(1500), "longer than the step's wait and a timer tick").await;
    assert!(sandbox.requests("incs").await.is_empty(), "something was sent for a cancelled chain");
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert_eq!(metric_value(&metrics, "gateway_fallbacks_total"), 0.0);
}

fn ms_between(from: &Value, to: &Value) -> i64 {
    ms_of(to) - ms_of(from)
}

/// An OTP chain with `priority: high` and a validity: its steps inherit both unless they set
/// their own, each step is queued in its class with its own `expires_at`, and the chain's
/// messages are found by recipient like any message.
#[tokio::test]
async fn steps_inherit_priority_and_validity_unless_they_set_their_own_and_are_searchable() {
    let (_redis, sandbox, gw) = setup().await;
    let to = "85268410031";
    sandbox.recipient(to, "whatsapp", "undeliverable").await;
    sandbox.recipient(to, "viber", "undeliverable").await;
    let mut body = chain(
        to,
        json!([{"channel": "viber", "type": "text", "text": "Your code is 123456"},
            {"channel": "rcs", "type": "text", "text": "Your code is 123456", "priority": "bulk", "ttl_seconds": 30}]),
    );
    body["priority"] = json!("high");
    body["ttl_seconds"] = json!(600);
    let res = gw.send(&body).await;
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!((accepted["priority"].as_str(), accepted["ttl_seconds"].as_u64()), (Some("high"), Some(600)));
    assert_eq!(ms_between(&accepted["created_at"], &accepted["expires_at"]), 600_000);
    let id = accepted["id"].as_str().unwrap().to_owned();

    let viber_id = step_sent(&gw, &id, 1, Duration::from_secs(10)).await;
    let rcs_id = step_sent(&gw, &id, 2, Duration::from_secs(10)).await;
    let viber = gw.get_message(&viber_id).await;
    assert_eq!((viber["priority"].as_str(), viber["ttl_seconds"].as_u64()), (Some("high"), Some(600)), "{viber}");
    assert_eq!(ms_between(&viber["created_at"], &viber["expires_at"]), 600_000, "{viber}");
    let rcs = gw.get_message(&rcs_id).await;
    assert_eq!((rcs["priority"].as_str(), rcs["ttl_seconds"].as_u64()), (Some("bulk"), Some(30)), "{rcs}");
    assert_eq!(ms_between(&rcs["created_at"], &rcs["expires_at"]), 30_000, "{rcs}");
    gw.wait_for_status(&rcs_id, "delivered", Duration::from_secs(10)).await;

    let found = eventually(Duration::from_secs(5), || async {
        let page: Value = gw
            .client
            .get(format!("{}/v1/messages?to={to}", gw.base_url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .ok()?
            .json()
            .await
            .ok()?;
        let ids: Vec<String> =
            page["items"].as_array()?.iter().filter_map(|m| m["id"].as_str().map(str::to_owned)).collect();
        (ids.len() == 3).then_some(ids)
    })
    .await
    .expect("the chain's three messages are found by recipient");
    assert_eq!(found, [rcs_id.clone(), viber_id.clone(), id.clone()], "newest first");
    let delivered: Value = gw
        .client
        .get(format!("{}/v1/messages?to={to}&status=delivered", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let delivered: Vec<&str> = delivered["items"].as_array().unwrap().iter().filter_map(|m| m["id"].as_str()).collect();
    assert_eq!(delivered, [rcs_id.as_str()]);
}

/// A first message that expires unsent (its sender paused) sends the next step at once, not at
/// the step's next check (`after_seconds` later).
#[tokio::test]
async fn an_expired_step_sends_the_next_one_at_once() {
    let (_redis, sandbox, gw) = setup().await;
    let res = gw
        .client
        .post(format!("{}/v1/senders/hk-main/pause", gw.base_url))
        .bearer_auth(API_KEY)
        .json(&json!({"reason": "fallback expiry test"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let to = "85268410032";
    let mut body =
        chain(to, json!([{"channel": "viber", "type": "text", "text": "Your code is 123456", "after_seconds": 60}]));
    body["ttl_seconds"] = json!(2);
    let id = accepted_id(&gw, &body).await;

    let first = gw.wait_for_status(&id, "expired", Duration::from_secs(5)).await;
    let expired_at = &first["history"].as_array().unwrap().iter().find(|h| h["status"] == "expired").unwrap()["at"];
    let viber = eventually(Duration::from_secs(3), || async {
        let v = sandbox.requests_to("incs", VIBER).await;
        (!v.is_empty()).then_some(v)
    })
    .await
    .expect("the Viber step was not sent within 3 s of the first message's expiry");
    let gap = ms_between(expired_at, &viber[0]["received_at"]);
    eprintln!("first message expired to Viber send: {gap} ms");
    assert!(gap < 1000, "the Viber step went {gap} ms after the expiry");
    assert!(sandbox.requests_to("incs", WA).await.is_empty(), "the expired message reached the provider");
    let first = gw.get_message(&id).await;
    assert_eq!(first["fallback"][0]["reason"], "expired", "{first}");
    let step = gw.get_message(first["fallback"][0]["message_id"].as_str().unwrap()).await;
    assert_eq!(step["ttl_seconds"], 2, "the step inherits the validity (counted from its own send)");
}
