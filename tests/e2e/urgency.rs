//! Urgency and control: priorities, validity (`expired`), campaigns and their cancel, the
//! operator's sender pause — against a real Redis (and a Redis Cluster) and the sandbox.

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use chrono::{DateTime, FixedOffset};
use gateway_tests::{
    eventually, quiet_period, GatewayProcess, TestGateway, TestRedis, TestSandbox, API_KEY, READ_ONLY_KEY,
};
use serde_json::{json, Value};

fn at(v: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(v.as_str().unwrap_or_default()).unwrap()
}

fn text(t: &str) -> Value {
    json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": t})
}

/// The WhatsApp account limited to `rate` messages/s (burst 5), and an event subscription to the
/// sandbox's webhook sink.
fn toml_at(redis: &TestRedis, sandbox_url: &str, rate: u32) -> String {
    let sink = gateway_tests::sink_subscription(sandbox_url, &["*"], "");
    redis.config(sandbox_url, &sink).lane_rate("incs-whatsapp", i64::from(rate), 5).text()
}

async fn post(client: &reqwest::Client, url: String, body: Option<&Value>) -> (u16, Value) {
    let mut req = client.post(url).bearer_auth(API_KEY);
    if let Some(b) = body {
        req = req.json(b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Every page of a search (`limit=200`): `(created_at, id, status)` of each message, in order.
async fn every_page(gw: &TestGateway, q: &str) -> Vec<(DateTime<FixedOffset>, String, String)> {
    let mut out = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page) = get(&gw.client, format!("{}/v1/messages?{q}&limit=200{cursor}", gw.base_url)).await;
        assert_eq!(status, 200, "{q}: {page}");
        for m in page["items"].as_array().unwrap() {
            out.push((
                at(&m["created_at"]),
                m["id"].as_str().unwrap().to_owned(),
                m["status"].as_str().unwrap().to_owned(),
            ));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => return out,
        }
    }
}

async fn get(client: &reqwest::Client, url: String) -> (u16, Value) {
    let res = client.get(url).bearer_auth(API_KEY).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Sends `texts` as batches of up to 1000; returns `(text, id)` of each.
async fn batch(
    gw_url: &str,
    client: &reqwest::Client,
    texts: &[String],
    priority: &str,
) -> (String, Vec<(String, String)>) {
    let mut out = Vec::new();
    let mut batch_id = String::new();
    for chunk in texts.chunks(1000) {
        let messages: Vec<Value> = chunk.iter().map(|t| text(t)).collect();
        let (status, body) = post(
            client,
            format!("{gw_url}/v1/messages/batch"),
            Some(&json!({"messages": messages, "priority": priority})),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let refused: Vec<&Value> =
            body["results"].as_array().unwrap().iter().filter(|r| r["status"] != 202).take(3).collect();
        assert!(refused.is_empty(), "batch items refused: {refused:?}");
        batch_id = body["batch_id"].as_str().unwrap().to_owned();
        for (t, r) in chunk.iter().zip(body["results"].as_array().unwrap()) {
            assert_eq!(r["message"]["batch_id"], batch_id.as_str());
            assert_eq!(r["message"]["priority"], priority);
            out.push((t.clone(), r["message"]["id"].as_str().unwrap().to_owned()));
        }
    }
    (batch_id, out)
}

/// When the sandbox first received each text.
async fn received(sandbox: &TestSandbox) -> HashMap<String, DateTime<FixedOffset>> {
    let mut out = HashMap::new();
    for r in sandbox.requests("incs").await {
        if let Some(t) = r["body"]["text"].as_str() {
            out.entry(t.to_owned()).or_insert_with(|| at(&r["received_at"]));
        }
    }
    out
}

/// 5,000 `bulk` messages queued on an account limited to 50/s, then 20 `high` ones: each `high`
/// reaches the sandbox within 1 s of its acceptance. Then `high` arrives faster than the account's
/// rate for 4 s: `bulk` still gets its documented share (weights 10:4:1, so 1 send in 11).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn high_overtakes_a_bulk_backlog_and_bulk_keeps_its_share() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&toml_at(&redis, &sandbox.url(), 50)).await;
    let bulk: Vec<String> = (0..5000).map(|i| format!("bulk-{i}")).collect();
    batch(&gw.base_url, &gw.client, &bulk, "bulk").await;

    let mut accepted = Vec::new();
    for i in 0..20 {
        let mut m = text(&format!("high-{i}"));
        m["priority"] = json!("high");
        let res = gw.send(&m).await;
        assert_eq!(res.status(), 202);
        let body: Value = res.json().await.unwrap();
        assert_eq!(body["priority"], "high");
        accepted.push((format!("high-{i}"), at(&body["created_at"])));
    }
    let got = eventually(Duration::from_secs(10), || async {
        let got = received(&sandbox).await;
        accepted.iter().all(|(t, _)| got.contains_key(t)).then_some(got)
    })
    .await
    .expect("every high message reached the sandbox");
    for (t, accepted_at) in &accepted {
        let waited = got[t] - *accepted_at;
        assert!(waited <= chrono::Duration::milliseconds(1000), "{t} waited {waited} behind the bulk backlog");
    }
    let bulk_sent = got.keys().filter(|t| t.starts_with("bulk-")).count();
    assert!(bulk_sent < 4000, "the bulk backlog was gone ({bulk_sent} sent): the test proves nothing");

    // `high` at 60/s for 4 s on a 50/s account: it always has work waiting.
    let started = chrono::Utc::now();
    let client = gw.client.clone();
    let url = gw.base_url.clone();
    let feeder = tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_millis(1000 / 60));
        for i in 0..240 {
            tick.tick().await;
            let mut m = text(&format!("flood-{i}"));
            m["priority"] = json!("high");
            let res = client.post(format!("{url}/v1/messages")).bearer_auth(API_KEY).json(&m).send().await.unwrap();
            assert_eq!(res.status(), 202);
        }
    });
    feeder.await.unwrap();
    let from = started.fixed_offset() + chrono::Duration::milliseconds(500);
    let to = started.fixed_offset() + chrono::Duration::milliseconds(4000);
    let got = received(&sandbox).await;
    let window: Vec<&String> = got.iter().filter(|(_, t)| **t >= from && **t < to).map(|(k, _)| k).collect();
    let bulk_in = window.iter().filter(|t| t.starts_with("bulk-")).count();
    let high_in = window.iter().filter(|t| t.starts_with("flood-")).count();
    let total = bulk_in + high_in;
    eprintln!("in 3.5 s of constant high: {high_in} high, {bulk_in} bulk");
    assert!(total >= 150, "only {total} sends in 3.5 s at 50/s");
    assert!(high_in > bulk_in * 5, "high did not go first: {high_in} high, {bulk_in} bulk");
    assert!(bulk_in + 1 >= total / 11, "bulk got {bulk_in} of {total} sends, under its share of 1 in 11");
    gw.stop().await;
}

fn verify(delivery: &Value) -> Value {
    gateway_tests::verified_webhook(delivery)
}

/// A message with `ttl_seconds: 2` on a paused sender ends `expired` after 2 s without reaching
/// the provider, announced by a signed `message.status` event; one sent in time is unaffected.
async fn validity_ends_on_a_paused_sender(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&toml_at(&redis, &sandbox.url(), 80)).await;
    let (status, sender) =
        post(&gw.client, format!("{}/v1/senders/hk-main/pause", gw.base_url), Some(&json!({"reason": "ttl test"})))
            .await;
    assert_eq!(status, 200, "{sender}");
    assert_eq!(sender["paused"], true);

    let mut m = text("short-lived");
    m["ttl_seconds"] = json!(2);
    let res = gw.send(&m).await;
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    let id = accepted["id"].as_str().unwrap().to_owned();
    assert_eq!(accepted["ttl_seconds"], 2);
    assert_eq!(at(&accepted["expires_at"]) - at(&accepted["created_at"]), chrono::Duration::seconds(2));

    let m = gw.wait_for_status(&id, "expired", Duration::from_secs(5)).await;
    let history = m["history"].as_array().unwrap();
    let ended = history.iter().find(|h| h["status"] == "expired").expect("expired in the history");
    let after = at(&ended["at"]) - at(&accepted["created_at"]);
    assert!(
        after >= chrono::Duration::milliseconds(2000) && after < chrono::Duration::milliseconds(2600),
        "expired {after} after acceptance"
    );
    let event = eventually(Duration::from_secs(5), || async {
        let deliveries: Vec<Value> =
            gw.client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.ok()?.json().await.ok()?;
        deliveries.iter().map(verify).find(|e| e["type"] == "message.status" && e["data"]["message_id"] == id.as_str())
    })
    .await
    .expect("a signed message.status event");
    assert_eq!(event["data"]["status"], "expired");
    assert_eq!(event["data"]["previous_status"], "queued");

    let (status, _) = post(&gw.client, format!("{}/v1/senders/hk-main/resume", gw.base_url), None).await;
    assert_eq!(status, 200);
    let mut m = text("in-time");
    m["ttl_seconds"] = json!(30);
    let res = gw.send(&m).await;
    let in_time = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    gw.wait_for_status(&in_time, "submitted", Duration::from_secs(5)).await;
    quiet_period(Duration::from_millis(500), "the expired message must not go out after the resume").await;
    let got = received(&sandbox).await;
    assert!(got.contains_key("in-time"));
    assert!(!got.contains_key("short-lived"), "an expired message reached the provider");
    assert_eq!(gw.get_message(&id).await["status"], "expired");
    gw.stop().await;
}

/// A campaign of 1,000 cancelled while it drains at 50/s: after the answer no cancelled message
/// reaches the sandbox, `cancelled + already_sent = 1000`, and `GET /v1/batches/{id}` agrees.
async fn cancelling_a_draining_campaign(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&toml_at(&redis, &sandbox.url(), 50)).await;
    let texts: Vec<String> = (0..1000).map(|i| format!("camp-{i}")).collect();
    let (batch_id, members) = batch(&gw.base_url, &gw.client, &texts, "normal").await;
    let started =
        eventually(Duration::from_secs(10), || async { (received(&sandbox).await.len() >= 100).then_some(()) }).await;
    assert!(started.is_some(), "the campaign never started draining");

    let (status, answer) = post(&gw.client, format!("{}/v1/batches/{batch_id}/cancel", gw.base_url), None).await;
    assert_eq!(status, 200, "{answer}");
    let cancelled = answer["cancelled"].as_u64().unwrap();
    let already_sent = answer["already_sent"].as_u64().unwrap();
    assert_eq!(cancelled + already_sent, 1000, "{answer}");
    assert!(cancelled > 500 && already_sent >= 100, "{answer}");

    let statuses: HashMap<String, String> = {
        let mut out = HashMap::new();
        for (t, id) in &members {
            out.insert(t.clone(), gw.get_message(id).await["status"].as_str().unwrap().to_owned());
        }
        out
    };
    let cancelled_texts: HashSet<&String> =
        statuses.iter().filter(|(_, s)| *s == "cancelled").map(|(t, _)| t).collect();
    assert_eq!(cancelled_texts.len() as u64, cancelled);
    quiet_period(Duration::from_secs(2), "no cancelled message may reach the provider").await;
    let got = received(&sandbox).await;
    let leaked: Vec<&&String> = cancelled_texts.iter().filter(|t| got.contains_key(t.as_str())).collect();
    assert!(
        leaked.is_empty(),
        "{} cancelled messages reached the provider: {:?}",
        leaked.len(),
        &leaked[..leaked.len().min(5)]
    );
    assert_eq!(got.keys().filter(|t| t.starts_with("camp-")).count() as u64, already_sent);

    let (status, view) = get(&gw.client, format!("{}/v1/batches/{batch_id}", gw.base_url)).await;
    assert_eq!(status, 200, "{view}");
    assert_eq!(view["id"], batch_id.as_str());
    assert_eq!(view["total"], 1000);
    assert_eq!(view["counts"]["cancelled"].as_u64(), Some(cancelled));
    let counted: u64 = view["counts"].as_object().unwrap().values().filter_map(Value::as_u64).sum();
    assert_eq!(counted, 1000);
    assert_eq!(view["counts"]["queued"], 0);
    // Again: nothing more to cancel, the same answer.
    let (_, again) = post(&gw.client, format!("{}/v1/batches/{batch_id}/cancel", gw.base_url), None).await;
    assert_eq!(again["cancelled"].as_u64(), Some(cancelled));
    gw.stop().await;
}

macro_rules! on_single_and_cluster {
    ($($name:ident),* $(,)?) => {
        mod single {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(gateway_tests::TestRedis::single()).await;
                }
            )*
        }
        mod cluster {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(gateway_tests::TestRedis::cluster()).await;
                }
            )*
        }
    };
}

on_single_and_cluster!(validity_ends_on_a_paused_sender, cancelling_a_draining_campaign);

/// A sender paused through one of two gateway processes: neither sends for it for 5 s, a restart
/// of both keeps it paused, and a resume (through the other) sends the backlog.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_pause_holds_every_instance_and_survives_restarts() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let toml = toml_at(&redis, &sandbox.url(), 80);
    let mut a = GatewayProcess::spawn(&toml).await;
    let mut b = GatewayProcess::spawn(&toml).await;
    let (status, paused) = post(
        &a.client,
        format!("{}/v1/senders/hk-main/pause", a.base_url),
        Some(&json!({"reason": "wrong campaign link"})),
    )
    .await;
    assert_eq!(status, 200, "{paused}");
    let mut ids = Vec::new();
    for i in 0..20 {
        let gw = if i % 2 == 0 { &a } else { &b };
        let (status, m) =
            post(&gw.client, format!("{}/v1/messages", gw.base_url), Some(&text(&format!("held-{i}")))).await;
        assert_eq!(status, 202);
        ids.push(m["id"].as_str().unwrap().to_owned());
    }
    let (_, senders) = get(&b.client, format!("{}/v1/senders", b.base_url)).await;
    let hk = senders["items"].as_array().unwrap().iter().find(|s| s["name"] == "hk-main").unwrap().clone();
    assert_eq!(hk["paused"], true);
    assert_eq!(hk["reason"], "wrong campaign link");
    assert!(hk["paused_at"].is_string());
    quiet_period(Duration::from_secs(5), "a paused sender sends nothing, from any instance").await;
    assert!(sandbox.requests("incs").await.is_empty(), "a paused sender sent");

    assert!(a.terminate(Duration::from_secs(10)));
    assert!(b.terminate(Duration::from_secs(10)));
    let a2 = GatewayProcess::spawn(&toml).await;
    let b2 = GatewayProcess::spawn(&toml).await;
    quiet_period(Duration::from_secs(1), "the pause survives a restart of every instance").await;
    assert!(sandbox.requests("incs").await.is_empty(), "a restart lifted the pause");
    let (_, senders) = get(&a2.client, format!("{}/v1/senders", a2.base_url)).await;
    assert!(senders["items"].as_array().unwrap().iter().any(|s| s["name"] == "hk-main" && s["paused"] == true));
    let metrics = a2.client.get(format!("{}/metrics", a2.base_url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("gateway_sender_paused_seconds{sender=\"hk-main\"}")),
        "no pause gauge"
    );

    let (status, resumed) = post(&b2.client, format!("{}/v1/senders/hk-main/resume", b2.base_url), None).await;
    assert_eq!(status, 200);
    assert_eq!(resumed["paused"], false);
    let all = eventually(Duration::from_secs(10), || async {
        let got = received(&sandbox).await;
        (0..20).all(|i| got.contains_key(&format!("held-{i}"))).then_some(())
    })
    .await;
    assert!(all.is_some(), "the backlog did not go out after the resume");
}

/// Bad input to the new fields and endpoints: a 4xx problem naming the field, never a 5xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_urgency_input_is_a_4xx_naming_the_field() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&toml_at(&redis, &sandbox.url(), 80)).await;
    let url = |p: &str| format!("{}{p}", gw.base_url);
    let with = |k: &str, v: Value| {
        let mut m = text("x");
        m[k] = v;
        m
    };
    for (name, body, field) in [
        ("unknown priority", with("priority", json!("urgent")), "priority"),
        ("priority not a string", with("priority", json!(1)), "priority"),
        ("ttl 0", with("ttl_seconds", json!(0)), "ttl_seconds"),
        ("ttl over 30 days", with("ttl_seconds", json!(2_592_001)), "ttl_seconds"),
        ("ttl negative", with("ttl_seconds", json!(-1)), "ttl_seconds"),
    ] {
        let (status, p) = post(&gw.client, url("/v1/messages"), Some(&body)).await;
        assert_eq!(status, 422, "{name}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{name}: {p}");
    }
    let (status, p) =
        post(&gw.client, url("/v1/messages/batch"), Some(&json!({"messages": [text("x")], "priority": "urgent"})))
            .await;
    assert_eq!((status, p["errors"][0]["field"].as_str()), (422, Some("priority")), "{p}");
    let (_, p) =
        post(&gw.client, url("/v1/messages/batch"), Some(&json!({"messages": [with("ttl_seconds", json!(0))]}))).await;
    assert_eq!(p["results"][0]["status"], 422, "{p}");
    assert_eq!(p["results"][0]["problem"]["errors"][0]["field"], "messages[0].ttl_seconds", "{p}");

    let unknown = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e70";
    for path in [format!("/v1/batches/{unknown}"), "/v1/batches/not-a-batch".to_owned()] {
        let (status, p) = get(&gw.client, url(&path)).await;
        assert_eq!(status, 404, "{path}: {p}");
        assert!(p["detail"].as_str().unwrap().contains("batch"), "{p}");
        let (status, p) = post(&gw.client, url(&format!("{path}/cancel")), None).await;
        assert_eq!(status, 404, "{path}: {p}");
    }
    for action in ["pause", "resume"] {
        let (status, p) = post(&gw.client, url(&format!("/v1/senders/nobody/{action}")), None).await;
        assert_eq!(status, 404, "{p}");
        assert!(p["detail"].as_str().unwrap().contains("sender `nobody`"), "{p}");
        let res = gw.client.post(url(&format!("/v1/senders/hk-main/{action}"))).bearer_auth(READ_ONLY_KEY).send().await;
        assert_eq!(res.unwrap().status(), 403, "{action} needs the admin scope");
    }
    for (body, field) in
        [(json!({"reason": "x".repeat(201)}), "reason"), (json!({"reason": 5}), "reason"), (json!({"why": "x"}), "why")]
    {
        let (status, p) = post(&gw.client, url("/v1/senders/hk-main/pause"), Some(&body)).await;
        assert_eq!(status, 422, "{p}");
        assert_eq!(p["errors"][0]["field"], field, "{p}");
    }
    let (_, senders) = get(&gw.client, url("/v1/senders")).await;
    assert!(senders["items"].as_array().unwrap().iter().all(|s| s["paused"] == false), "a refused pause paused");
    // `null`, which the document allows, is no body: a pause without a reason.
    let (status, p) = post(&gw.client, url("/v1/senders/hk-main/pause"), Some(&Value::Null)).await;
    assert_eq!((status, &p["paused"]), (200, &json!(true)), "{p}");
    let (status, p) = post(&gw.client, url("/v1/senders/hk-main/resume"), None).await;
    assert_eq!((status, &p["paused"]), (200, &json!(false)), "{p}");
    gw.stop().await;
}

/// Search among 100,000 stored messages: by recipient, by campaign (paged with the cursor) and by
/// status, newest first; and every bad parameter is a 422 naming it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn search_finds_messages_among_100_000() {
    use gateway_core::request::SendRequest;
    use gateway_core::{MessageId, Priority};
    use gateway_http::engine::record::{StoredMessage, StoredMessageV2};
    use gateway_http::engine::{Engine, LaneSpec};

    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let config = redis.config(&sandbox.url(), "").set("engine", "dispatch", false).config();
    let engine = Engine::new(&config.redis, &config.engine).unwrap();
    let gw = TestGateway::spawn_config(config).await;
    let campaign = MessageId::new().to_string();
    let special = "85298765432";

    let n = 100_000;
    let mut tasks = Vec::new();
    for t in 0..16 {
        let engine = engine.clone();
        let campaign = campaign.clone();
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            for i in (t..n).step_by(16) {
                let to = if i % 25_000 == 7 { special.to_owned() } else { format!("8526841{:04}", i % 10_000) };
                let request: SendRequest = serde_json::from_value(
                    json!({"channel": "whatsapp", "to": to, "type": "text", "text": format!("s-{i}")}),
                )
                .unwrap();
                let id = MessageId::new();
                let body = StoredMessage::V2(StoredMessageV2 {
                    base: gateway_tests::stored_on_hk_main(id, request.into_message(chrono::Utc::now()).unwrap()),
                    priority: Priority::Bulk,
                    ttl_seconds: None,
                    batch_id: (50_000..50_500).contains(&i).then(|| campaign.clone()),
                    traceparent: None,
                });
                engine.accept(&id, "hk-main", "incs-whatsapp", &body, 0).await.unwrap();
                mine.push((i, id));
            }
            mine
        }));
    }
    let mut ids = std::collections::BTreeMap::new();
    for t in tasks {
        ids.extend(t.await.unwrap());
    }
    // 1,000 go to the provider; 7 are cancelled.
    let lane = LaneSpec {
        sender: "hk-main".into(),
        lane: "incs-whatsapp".into(),
        rate_per_second: 1_000_000,
        burst: 1_000_000,
    };
    let attempt = gateway_tests::submitted_attempt();
    let mut submitted = 0;
    while submitted < 1000 {
        let batch = engine.claim(&lane, (1000 - submitted).min(64)).await.unwrap();
        for item in batch.items {
            let pmid = format!("wamid.{}", item.id);
            engine.submitted("hk-main", &item, "incs-whatsapp", "incs", &pmid, &attempt, false).await.unwrap();
            submitted += 1;
        }
    }
    let cancelled: Vec<String> = (0..7).map(|k| ids[&(90_000 + k * 11)].to_string()).collect();
    for id in &cancelled {
        let outcome = engine.cancel(&id.parse().unwrap()).await.unwrap();
        assert_eq!(outcome, gateway_http::engine::CancelOutcome::Cancelled);
    }

    let search = |q: String| {
        let gw = &gw;
        async move {
            let started = std::time::Instant::now();
            let (status, page) = get(&gw.client, format!("{}/v1/messages?{q}", gw.base_url)).await;
            (status, page, started.elapsed())
        }
    };
    let (status, page, took) = search(format!("to=%2B{special}")).await;
    assert_eq!(status, 200, "{page}");
    let found: Vec<&str> = page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap()).collect();
    let want: Vec<String> = [75_007, 50_007, 25_007, 7].iter().map(|i| ids[i].to_string()).collect();
    assert_eq!(found, want, "by recipient, newest first");
    assert!(page["next_cursor"].is_null());
    eprintln!("search by recipient among {n}: {took:?}");

    let mut seen = Vec::new();
    let mut accepted_at = Vec::new();
    let mut cursor = String::new();
    loop {
        let (status, page, _) = search(format!("batch_id={campaign}&limit=200{cursor}")).await;
        assert_eq!(status, 200, "{page}");
        for m in page["items"].as_array().unwrap() {
            assert_eq!(m["batch_id"], campaign.as_str());
            seen.push(m["id"].as_str().unwrap().to_owned());
            accepted_at.push(at(&m["created_at"]));
        }
        match page["next_cursor"].as_str() {
            Some(c) => cursor = format!("&cursor={c}"),
            None => break,
        }
    }
    let unique: HashSet<&String> = seen.iter().collect();
    assert_eq!((seen.len(), unique.len()), (500, 500), "the campaign, paged without loss or repeat");
    assert!(accepted_at.windows(2).all(|w| w[0] >= w[1]), "newest first across pages");

    let (status, page, took) = search("status=cancelled&sender=hk-main".into()).await;
    assert_eq!(status, 200, "{page}");
    let mut found: Vec<String> =
        page["items"].as_array().unwrap().iter().map(|m| m["id"].as_str().unwrap().to_owned()).collect();
    found.sort();
    let mut want = cancelled.clone();
    want.sort();
    assert_eq!(found, want, "by status");
    eprintln!("search by status among {n}: {took:?}");
    let (_, page, _) = search("status=submitted&limit=200".into()).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(200));
    assert!(page["items"].as_array().unwrap().iter().all(|m| m["status"] == "submitted"));
    let (_, page, _) = search(format!("to={special}&status=queued&limit=1")).await;
    assert_eq!(page["items"].as_array().map(Vec::len), Some(1));
    assert!(page["next_cursor"].is_string(), "more than one page");

    // By sender alone (the status indexes merged): in two windows of acceptance time, one where
    // sent and queued messages meet and one holding the cancelled ones, the pages are exactly the
    // union of the per-status searches, newest first, without loss or repeat.
    for ((from, until), must_hold) in
        [((800, 1_200), ["submitted", "queued"]), ((89_000, 91_000), ["cancelled", "queued"])]
    {
        let created = |i: usize| {
            let (gw, id) = (&gw, ids[&i].to_string());
            async move { get(&gw.client, format!("{}/v1/messages/{id}", gw.base_url)).await.1["created_at"].clone() }
        };
        let window =
            format!("since={}&until={}", created(from).await.as_str().unwrap(), created(until).await.as_str().unwrap());
        let by_sender = every_page(&gw, &format!("sender=hk-main&{window}")).await;
        let mut want = Vec::new();
        for st in ["queued", "submitted", "cancelled"] {
            want.extend(every_page(&gw, &format!("status={st}&{window}")).await);
        }
        want.sort_by(|a, b| (b.0, &b.1).cmp(&(a.0, &a.1)));
        assert!(by_sender.len() > 300, "window {from}..{until}: {} messages", by_sender.len());
        for st in must_hold {
            assert!(by_sender.iter().any(|m| m.2 == st), "window {from}..{until} holds {st} messages");
        }
        assert!(by_sender == want, "window {from}..{until}: by sender = the union of the status searches");
    }

    for (q, field) in [
        ("limit=0", "limit"),
        ("limit=201", "limit"),
        ("limit=x", "limit"),
        ("cursor=zz", "cursor"),
        ("cursor=6d317c787c79", "cursor"),
        ("status=lost", "status"),
        ("to=123", "to"),
        ("sender=nobody", "sender"),
        ("batch_id=nope", "batch_id"),
        ("since=yesterday", "since"),
        ("colour=red", "colour"),
    ] {
        let (status, p, _) = search(q.into()).await;
        assert_eq!(status, 422, "{q}: {p}");
        assert_eq!(p["errors"][0]["field"], field, "{q}: {p}");
    }
    let res = gw.client.get(format!("{}/v1/messages", gw.base_url)).bearer_auth(READ_ONLY_KEY).send().await.unwrap();
    assert_eq!(res.status(), 200, "the read scope searches");
    gw.stop().await;
}
