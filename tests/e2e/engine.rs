//! The delivery engine's guarantees (DESIGN.md §3), against a real Redis — one server, and the
//! same scenarios again on a three-node Redis Cluster — and the provider sandbox.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, FixedOffset};
use gateway_tests::{
    eventually, quiet_period, send_texts, texts_received, GatewayProcess, TestGateway, TestRedis, TestSandbox, API_KEY,
    INCS_CODE,
};
use serde_json::{json, Value};

/// The second certification code the sandbox accepts by default: a second lane.
const INCS_CODE_2: &str = "f484bd42-5c2e-3d7a-9b1e-2f3c4d5e0001";

fn received_at(r: &Value) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(r["received_at"].as_str().unwrap()).unwrap()
}

fn text(i: &str) -> Value {
    json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": i})
}

async fn id_of(res: reqwest::Response) -> String {
    assert_eq!(res.status(), 202);
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

/// A second WhatsApp sender on its own account (its own lane), with the second sandbox code.
fn second_lane(sandbox_url: &str, rate: u32) -> String {
    format!(
        r#"
[[accounts]]
name = "incs-whatsapp-2"
provider = "incs"
rate_per_second = {rate}
[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{INCS_CODE_2}"
channels = ["whatsapp"]

[[senders]]
name = "sg-main"
channel = "whatsapp"
accounts = ["incs-whatsapp-2"]
"#
    )
}

// ---- scenarios, run on one Redis and on a cluster ----

async fn retries_dead_letters_and_replay(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(
        &redis
            .config(&sandbox.url(), "")
            .set("engine", "dead_letter_cap", 3)
            .set("engine", "circuit_failure_threshold", 1000)
            .text(),
    )
    .await;
    sandbox.fault(json!({"provider": "incs", "status": 500})).await;
    let id = id_of(gw.send(&text("always-500")).await).await;
    let m = gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3, "1 + the schedule's 2 retries");
    // Retries follow the schedule [100, 200] ms, ±20 % jitter, plus the call and the claim.
    let at = |i: usize| DateTime::parse_from_rfc3339(attempts[i]["at"].as_str().unwrap()).unwrap();
    let gap1 = (at(1) - at(0)).num_milliseconds();
    let gap2 = (at(2) - at(1)).num_milliseconds();
    assert!((80..=450).contains(&gap1), "first retry after {gap1} ms");
    assert!((160..=550).contains(&gap2), "second retry after {gap2} ms");

    let list: Value = gw
        .client
        .get(format!("{}/v1/dead-letters", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|d| d["message"]["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()]);

    sandbox.clear_faults().await;
    let replay = gw
        .client
        .post(format!("{}/v1/dead-letters/{id}/replay", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 202);
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    assert_eq!(m["attempts"].as_array().map(Vec::len), Some(4));
    let again = gw
        .client
        .post(format!("{}/v1/dead-letters/{id}/replay", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 404, "no longer a dead letter");

    // The set stays capped at 3: the oldest go, with their records.
    sandbox.fault(json!({"provider": "incs", "status": 500})).await;
    let mut ids = Vec::new();
    for i in 0..5 {
        let id = id_of(gw.send(&text(&format!("dlq-{i}"))).await).await;
        gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
        ids.push(id);
    }
    let list: Value = gw
        .client
        .get(format!("{}/v1/dead-letters", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let listed: Vec<&str> =
        list["items"].as_array().unwrap().iter().filter_map(|d| d["message"]["id"].as_str()).collect();
    assert_eq!(listed, [ids[4].as_str(), ids[3].as_str(), ids[2].as_str()]);
    let gone =
        gw.client.get(format!("{}/v1/messages/{}", gw.base_url, ids[0])).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(gone.status(), 404);
    let del = gw
        .client
        .delete(format!("{}/v1/dead-letters/{}", gw.base_url, ids[4]))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 204);
    let del = gw
        .client
        .delete(format!("{}/v1/dead-letters/{}", gw.base_url, ids[4]))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(del.status(), 404);
    gw.stop().await;
}

async fn one_idempotency_key_makes_one_message(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), "")).await;
    let body = text("idempotent");
    let mut calls = Vec::new();
    for _ in 0..100 {
        let req = gw
            .client
            .post(format!("{}/v1/messages", gw.base_url))
            .bearer_auth(API_KEY)
            .header("Idempotency-Key", "order-A-1001")
            .json(&body);
        calls.push(tokio::spawn(req.send()));
    }
    let mut ids = HashSet::new();
    let mut statuses = Vec::new();
    let mut replayed = 0;
    for c in calls {
        let res = c.await.unwrap().unwrap();
        statuses.push(res.status().as_u16());
        if res.headers().get("idempotent-replayed").is_some_and(|v| v == "true") {
            replayed += 1;
        }
        if res.status() == 202 {
            ids.insert(res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned());
        }
    }
    assert!(statuses.iter().all(|s| *s == 202 || *s == 409), "{statuses:?}");
    assert_eq!(ids.len(), 1, "exactly one message");
    let id = ids.into_iter().next().unwrap();
    assert!(replayed >= 1 || statuses.iter().filter(|s| **s == 202).count() == 1);
    gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;

    // Now done: the same key and body replay the original answer.
    let res = gw.send_idempotent(&body, "order-A-1001").await;
    assert_eq!(res.status(), 202);
    assert_eq!(res.headers()["idempotent-replayed"], "true");
    assert_eq!(res.json::<Value>().await.unwrap()["id"], id.as_str());
    // Another body with the same key: 422 naming the header.
    let res = gw.send_idempotent(&text("other"), "order-A-1001").await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "Idempotency-Key");

    quiet_period(Duration::from_millis(300), "a repeated Idempotency-Key must not send again").await;
    let sent = texts_received(&sandbox.requests("incs").await);
    assert_eq!(sent.get("idempotent"), Some(&1), "one provider send");
    gw.stop().await;
}

async fn send_at_waits_and_cancel_stops(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), "")).await;
    let at = chrono::Utc::now() + chrono::Duration::seconds(2);
    let mut scheduled = text("scheduled");
    scheduled["send_at"] = json!(at.to_rfc3339());
    let id = id_of(gw.send(&scheduled).await).await;
    let mut cancelled = text("cancelled");
    cancelled["send_at"] = json!(at.to_rfc3339());
    let cancel_id = id_of(gw.send(&cancelled).await).await;

    quiet_period(Duration::from_millis(800), "a scheduled message must not go before its send_at").await;
    assert_eq!(gw.get_message(&id).await["status"], "queued");
    let res = gw
        .client
        .post(format!("{}/v1/messages/{cancel_id}/cancel", gw.base_url))
        .bearer_auth(API_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.json::<Value>().await.unwrap()["status"], "cancelled");

    gw.wait_for_status(&id, "submitted", Duration::from_secs(4)).await;
    let reqs = sandbox.requests("incs").await;
    let scheduled_req = reqs.iter().find(|r| r["body"]["text"] == "scheduled").unwrap();
    assert!(received_at(scheduled_req) >= at.fixed_offset() - chrono::Duration::milliseconds(5), "sent before send_at");
    quiet_period(Duration::from_millis(500), "a cancelled message must never be sent").await;
    assert!(!texts_received(&sandbox.requests("incs").await).contains_key("cancelled"), "a cancelled message was sent");
    assert_eq!(gw.get_message(&cancel_id).await["status"], "cancelled");
    let res =
        gw.client.post(format!("{}/v1/messages/{id}/cancel", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 409, "too late to cancel a submitted message");
    gw.stop().await;
}

async fn a_429_pauses_only_its_lane(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &second_lane(&sandbox.url(), 80))).await;
    sandbox
        .fault(json!({"provider": "incs", "status": 429, "retry_after": 2, "count": 1,
            "match": {"headers": {"certification-code": INCS_CODE}}}))
        .await;
    // A steady stream on both lanes for 3 s.
    let mut ids = Vec::new();
    let started = Instant::now();
    let mut i = 0;
    while started.elapsed() < Duration::from_secs(3) {
        let a = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("a-{i}")});
        let b = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("b-{i}"), "sender": "sg-main"});
        ids.push(id_of(gw.send(&a).await).await);
        id_of(gw.send(&b).await).await;
        i += 1;
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    gw.wait_for_status(ids.last().unwrap(), "submitted", Duration::from_secs(5)).await;
    let reqs = sandbox.requests("incs").await;
    let lane = |code: &str| -> Vec<DateTime<FixedOffset>> {
        reqs.iter().filter(|r| r["headers"]["certification-code"] == code).map(received_at).collect()
    };
    let a = lane(INCS_CODE);
    let b = lane(INCS_CODE_2);
    // a[0] got the 429; lane A sends nothing for 2 s after it.
    let gap = a[1] - a[0];
    assert!(gap >= chrono::Duration::milliseconds(1990), "lane A resumed after {gap}");
    // Lane B keeps its pace (one message per ~50 ms) through A's pause.
    let during = b.iter().filter(|t| **t > a[0] && **t < a[0] + chrono::Duration::seconds(2)).count();
    assert!(during >= 20, "lane B sent only {during} messages during lane A's pause");
    // The throttled message went out later with no attempt spent.
    let first = gw.wait_for_status(&ids[0], "submitted", Duration::from_secs(3)).await;
    let outcomes: Vec<(&str, u64)> = first["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["outcome"].as_str().unwrap(), a["n"].as_u64().unwrap()))
        .collect();
    assert_eq!(outcomes, [("throttled", 1), ("submitted", 1)]);
    gw.stop().await;
}

/// With the idle poll far beyond the test's deadlines, only the engine's wake-ups bring a lane
/// to its work: a new message, a scheduled one at its time, a retry after its delay.
async fn idle_lanes_are_woken_for_their_work(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(
        &redis
            .gateway_toml(&sandbox.url(), "")
            .replace("idle_poll_ms = 50", "idle_poll_ms = 60000\nidle_max_ms = 60000"),
    )
    .await;
    gateway_tests::quiet_period(Duration::from_millis(500), "the lanes have made their first look and sleep").await;
    let id = id_of(gw.send(&text("woken")).await).await;
    gw.wait_for_status(&id, "submitted", Duration::from_secs(5)).await;

    let at = chrono::Utc::now() + chrono::Duration::milliseconds(1500);
    let mut scheduled = text("scheduled");
    scheduled["send_at"] = json!(at.to_rfc3339());
    let id = id_of(gw.send(&scheduled).await).await;
    gw.wait_for_status(&id, "submitted", Duration::from_secs(6)).await;
    let reqs = sandbox.requests("incs").await;
    let sent = reqs.iter().find(|r| r["body"]["text"] == "scheduled").unwrap();
    assert!(received_at(sent) >= at.fixed_offset() - chrono::Duration::milliseconds(5), "sent before send_at");

    sandbox.fault(json!({"provider": "incs", "status": 500, "count": 1})).await;
    let id = id_of(gw.send(&text("retried")).await).await;
    let record = gw.wait_for_status(&id, "submitted", Duration::from_secs(5)).await;
    assert_eq!(record["attempts"].as_array().map(Vec::len), Some(2), "one failed attempt, then the retry: {record}");
    gw.stop().await;
}

/// Evalsha calls so far (a single Redis; a cluster's are spread over its nodes).
async fn script_calls(redis: &TestRedis) -> Option<u64> {
    if redis.is_cluster() {
        return None;
    }
    let mut c = redis.client().await;
    let info: String = c.query(redis::cmd("INFO").arg("commandstats")).await;
    // No line before the first call.
    Some(info.lines().find(|l| l.starts_with("cmdstat_evalsha:")).map_or(0, |line| {
        line.split(['=', ',']).nth(1).and_then(|n| n.parse().ok()).expect("calls=<n> in INFO commandstats")
    }))
}

/// A burst to one sender is stored, and its sends recorded, in batches: the accepts (or the
/// `submitted` records) that arrive while the sender's previous script call is in Redis go in the
/// next call together. Each message is still whole: one `queued` and one `submitted` entry, one
/// attempt, its provider id linked, found in the search index of its status.
async fn a_burst_is_stored_and_recorded_in_batches(redis: TestRedis) {
    use gateway_core::request::SendRequest;
    use gateway_core::{MessageId, MessageStatus};
    use gateway_http::engine::record::StoredMessage;
    use gateway_http::engine::{Engine, LaneSpec, SearchQuery};

    let config = redis.config("http://127.0.0.1:9", "").config();
    let engine = Engine::new(&config.redis, &config.engine).unwrap();
    let n = 300;
    let bodies: Vec<(MessageId, StoredMessage)> = (0..n)
        .map(|i| {
            let request: SendRequest = serde_json::from_value(
                json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("burst-{i}")}),
            )
            .unwrap();
            let id = MessageId::new();
            let message = request.into_message(chrono::Utc::now()).unwrap();
            (id, StoredMessage::V1(gateway_tests::stored_on_hk_main(id, message)))
        })
        .collect();
    // All at once from one task: each joins the batch that is waiting when it comes.
    let before = script_calls(&redis).await;
    let accepted = futures::future::join_all(
        bodies.iter().map(|(id, body)| engine.accept(id, "hk-main", "incs-whatsapp", body, 0)),
    )
    .await;
    let after_accepts = script_calls(&redis).await;
    assert!(accepted.iter().all(Result::is_ok), "{:?}", accepted.iter().find(|r| r.is_err()));

    let lane = LaneSpec {
        sender: "hk-main".into(),
        lane: "incs-whatsapp".into(),
        rate_per_second: 1_000_000,
        burst: 1_000_000,
    };
    let mut claimed = Vec::new();
    while claimed.len() < n {
        let batch = engine.claim(&lane, 64).await.unwrap();
        assert!(!batch.items.is_empty(), "{} of {n} claimed, then nothing", claimed.len());
        claimed.extend(batch.items);
    }
    let attempt = gateway_tests::submitted_attempt();
    let before_records = script_calls(&redis).await;
    let recorded = futures::future::join_all(claimed.iter().map(|c| {
        let pmid = format!("wamid.{}", c.id);
        let engine = &engine;
        let attempt = &attempt;
        async move { engine.submitted("hk-main", c, "incs-whatsapp", "incs", &pmid, attempt, false).await }
    }))
    .await;
    let after_records = script_calls(&redis).await;
    assert!(recorded.iter().all(|r| matches!(r, Ok(Some(buffered)) if buffered.is_empty())), "{recorded:?}");
    // A stale token is still fenced out inside a batch: recording the same claim again changes nothing.
    assert!(matches!(
        engine.submitted("hk-main", &claimed[0], "incs-whatsapp", "incs", "other", &attempt, false).await,
        Ok(None)
    ));

    for (id, _) in &bodies {
        let record = engine.get(id).await.unwrap().expect("stored");
        assert_eq!(record.status, MessageStatus::Submitted, "{id}");
        let statuses: Vec<MessageStatus> = record.history.iter().map(|h| h.status).collect();
        assert_eq!(statuses, [MessageStatus::Queued, MessageStatus::Submitted], "{id}");
        assert_eq!(record.attempts.len(), 1, "{id}");
        let owner = engine.find_by_provider_id("incs", &format!("wamid.{id}")).await.unwrap();
        assert_eq!(owner.map(|o| o.id), Some(id.to_string()));
    }
    let mut found = HashSet::new();
    let mut query = SearchQuery {
        senders: vec!["hk-main".into()],
        to: Some("85268411234".into()),
        status: Some(MessageStatus::Submitted),
        limit: 100,
        ..SearchQuery::default()
    };
    loop {
        let page = engine.search(&query).await.unwrap();
        found.extend(page.items.iter().map(|m| m.body.v1().id.to_string()));
        match page.next {
            Some(next) => query.after = Some(next),
            None => break,
        }
    }
    assert_eq!(found.len(), n, "every message in the submitted index");
    query = SearchQuery {
        senders: vec!["hk-main".into()],
        to: Some("85268411234".into()),
        status: Some(MessageStatus::Queued),
        limit: 10,
        ..SearchQuery::default()
    };
    assert!(engine.search(&query).await.unwrap().items.is_empty(), "none left in the queued index");

    if let (Some(a), Some(b), Some(c), Some(d)) = (before, after_accepts, before_records, after_records) {
        eprintln!("{} script calls for {n} accepts, {} for {n} records", b - a, d - c);
        // One each would be n. Typically 8 to 30: flushes start on the runtime's other thread
        // while the burst is still coming, and take what has come so far.
        assert!(b - a <= n as u64 / 4, "{} script calls for {n} accepts", b - a);
        assert!(d - c <= n as u64 / 4, "{} script calls for {n} records", d - c);
    }
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

on_single_and_cluster!(
    a_burst_is_stored_and_recorded_in_batches,
    idle_lanes_are_woken_for_their_work,
    retries_dead_letters_and_replay,
    one_idempotency_key_makes_one_message,
    send_at_waits_and_cancel_stops,
    a_429_pauses_only_its_lane,
    kill_9_during_5000_sends_loses_nothing,
    sigterm_during_load_loses_nothing_and_leaves_no_lease,
);

// ---- process-level scenarios ----

/// Short leases; 32 sends in flight per lane, so that a stop lands mid-load and the duplicates a
/// kill can cause (at most the sends in flight) have a bound the test can hold them to.
fn fast_toml(redis: &TestRedis, sandbox_url: &str) -> String {
    redis
        .config(sandbox_url, "")
        .set("engine", "lease_ms", 3000)
        .set("engine", "concurrency_per_lane", 32)
        .lane_rate("incs-whatsapp", 5000, 100)
        .text()
}

async fn kill_9_during_5000_sends_loses_nothing(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let toml = fast_toml(&redis, &sandbox.url());
    let mut first = GatewayProcess::spawn(&toml).await;
    // The first half goes to a process that is killed while it works.
    let client = first.client.clone();
    let url = first.base_url.clone();
    let sending = tokio::spawn(async move { send_texts(&client, &url, "k", 2500, 16).await });
    // Kill it once it has sent a good part to the provider.
    let reached =
        eventually(Duration::from_secs(30), || async { (sandbox.requests("incs").await.len() >= 800).then_some(()) })
            .await;
    assert!(reached.is_some(), "the first process never got going");
    first.kill9();
    let (mut accepted, _) = sending.await.unwrap();
    let second = GatewayProcess::spawn(&toml).await;
    let (more, failed) = send_texts(&second.client, &second.base_url, "k2", 2500, 16).await;
    assert!(failed.is_empty(), "the second process refused {failed:?}");
    accepted.extend(more.into_iter().map(|(i, id)| (i + 100_000, id)));
    assert!(accepted.len() >= 3300, "only {} sends were accepted", accepted.len());

    let want: HashSet<String> = accepted
        .iter()
        .map(|(i, _)| if *i >= 100_000 { format!("k2-{}", i - 100_000) } else { format!("k-{i}") })
        .collect();
    let all_there = eventually(Duration::from_secs(60), || async {
        let got = texts_received(&sandbox.requests("incs").await);
        want.iter().all(|t| got.contains_key(t)).then_some(got)
    })
    .await;
    let Some(got) = all_there else {
        let got = texts_received(&sandbox.requests("incs").await);
        let missing = want.iter().filter(|t| !got.contains_key(*t)).count();
        panic!("{missing} accepted messages never reached the provider");
    };
    let duplicates: usize = got.values().map(|n| n.saturating_sub(1)).sum();
    // In flight at the kill: at most the lane's concurrency (32 leases).
    assert!(duplicates <= 32, "{duplicates} duplicates");
    let counted = second.metric("gateway_possible_duplicates_total").await;
    assert!(counted >= duplicates as f64, "{duplicates} duplicates but {counted} counted");
}

async fn sigterm_during_load_loses_nothing_and_leaves_no_lease(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    sandbox.fault(json!({"provider": "incs", "delay_ms": 50})).await;
    let toml = fast_toml(&redis, &sandbox.url());
    let mut first = GatewayProcess::spawn(&toml).await;
    let (accepted, failed) = send_texts(&first.client, &first.base_url, "t", 600, 16).await;
    assert!(failed.is_empty());
    // Stop it while it is still sending.
    let busy =
        eventually(Duration::from_secs(10), || async { (!sandbox.requests("incs").await.is_empty()).then_some(()) })
            .await;
    assert!(busy.is_some());
    assert!(first.terminate(Duration::from_secs(10)), "the gateway did not exit on SIGTERM");
    let mut client = redis.client().await;
    let leases: u64 = client.query(redis::cmd("ZCARD").arg("gw:{hk-main}:lease")).await;
    assert_eq!(leases, 0, "SIGTERM left leases behind");
    let sent_before = sandbox.requests("incs").await.len();
    assert!(sent_before < 600, "the test did not stop the gateway mid-load");

    let second = GatewayProcess::spawn(&toml).await;
    let want: HashSet<String> = accepted.iter().map(|(i, _)| format!("t-{i}")).collect();
    let got = eventually(Duration::from_secs(30), || async {
        let got = texts_received(&sandbox.requests("incs").await);
        want.iter().all(|t| got.contains_key(t)).then_some(got)
    })
    .await
    .expect("every accepted message reached the provider");
    assert!(got.values().all(|n| *n == 1), "a graceful stop sent something twice");
    assert_eq!(second.metric("gateway_possible_duplicates_total").await, 0.0);
}

/// Redis killed with SIGKILL and restarted with its AOF during sends: nothing that got a 202 is
/// lost, and requests during the outage get 503.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_kill_9_loses_no_accepted_message() {
    let mut redis = gateway_tests::RedisServer::start();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&gateway_tests::gateway_toml(&redis.url(), &sandbox.url(), "")).await;
    let (mut accepted, failed) = send_texts(&gw.client, &gw.base_url, "r", 300, 8).await;
    assert!(failed.is_empty());
    let client = gw.client.clone();
    let url = gw.base_url.clone();
    let during = tokio::spawn(async move { send_texts(&client, &url, "d", 400, 4).await });
    tokio::time::sleep(Duration::from_millis(150)).await;
    redis.kill();
    tokio::time::sleep(Duration::from_millis(500)).await;
    redis.restart();
    let (accepted_during, failed_during) = during.await.unwrap();
    assert!(failed_during.iter().all(|s| *s == 503), "outage answers: {failed_during:?}");
    assert!(!failed_during.is_empty(), "the outage was not seen");
    accepted.extend(accepted_during.iter().map(|(i, id)| (i + 10_000, id.clone())));
    for (i, id) in accepted.iter().rev().take(50) {
        let _ = i;
        gw.wait_for_status(id, "submitted", Duration::from_secs(20)).await;
    }
    let want: HashSet<String> = accepted
        .iter()
        .map(|(i, _)| if *i >= 10_000 { format!("d-{}", i - 10_000) } else { format!("r-{i}") })
        .collect();
    let ok = eventually(Duration::from_secs(20), || async {
        let got = texts_received(&sandbox.requests("incs").await);
        want.iter().all(|t| got.contains_key(t)).then_some(())
    })
    .await;
    assert!(ok.is_some(), "an accepted message was lost");
    gw.stop().await;
}

/// One lane at 50 messages/s (burst 5), served by two gateway processes on one Redis.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_lane_rate() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let toml = redis.config(&sandbox.url(), "").lane_rate("incs-whatsapp", 50, 5).text();
    let a = GatewayProcess::spawn(&toml).await;
    let b = GatewayProcess::spawn(&toml).await;
    let (ok_a, _) = send_texts(&a.client, &a.base_url, "a", 350, 8).await;
    let (ok_b, _) = send_texts(&b.client, &b.base_url, "b", 350, 8).await;
    assert_eq!(ok_a.len() + ok_b.len(), 700);
    // Measured over the first ten seconds of sending (700 at 50/s take fourteen).
    let span = |times: &[DateTime<FixedOffset>]| match (times.first(), times.last()) {
        (Some(a), Some(b)) => *b - *a,
        _ => chrono::Duration::zero(),
    };
    let times = eventually(Duration::from_secs(40), || async {
        let mut times: Vec<DateTime<FixedOffset>> = sandbox.requests("incs").await.iter().map(received_at).collect();
        times.sort();
        (span(&times) > chrono::Duration::seconds(10) || times.len() >= 700).then_some(times)
    })
    .await
    .expect("ten seconds of sends");
    let start = times[0];
    let mut worst = 0;
    for (i, t) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|u| **u < *t + chrono::Duration::seconds(1)).count();
        worst = worst.max(in_window);
    }
    assert!(worst <= 55, "{worst} messages in one second (limit 50 + burst 5)");
    let in_ten = times.iter().filter(|t| **t < start + chrono::Duration::seconds(10)).count();
    assert!(in_ten >= 450, "only {in_ten} messages in 10 s (want at least 90 % of 500)");
    let _ = (a, b);
}

/// After 100,000 messages are sent and their retention ends, Redis memory is back to where it
/// started (within 5 %): nothing the engine writes outlives its retention.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn memory_returns_to_its_start_after_retention() {
    use gateway_core::request::SendRequest;
    use gateway_http::engine::record::StoredMessage;
    use gateway_http::engine::{Engine, LaneSpec};

    let redis = TestRedis::single();
    let config = redis.config("http://127.0.0.1:9", "").set("engine", "retention_secs", 1).config();
    let engine = Engine::new(&config.redis, &config.engine).unwrap();
    let lane = LaneSpec {
        sender: "hk-main".into(),
        lane: "incs-whatsapp".into(),
        rate_per_second: 1_000_000,
        burst: 1_000_000,
    };
    let request: SendRequest = serde_json::from_value(text("hello")).unwrap();
    let message = request.into_message(chrono::Utc::now()).unwrap();
    let attempt = gateway_tests::submitted_attempt();
    let mut client = redis.client().await;

    let run = |n: usize| {
        let engine = engine.clone();
        let lane = lane.clone();
        let message = message.clone();
        let attempt = attempt.clone();
        async move {
            let mut tasks = Vec::new();
            for t in 0..32 {
                let engine = engine.clone();
                let message = message.clone();
                tasks.push(tokio::spawn(async move {
                    for _ in (t..n).step_by(32) {
                        let id = gateway_core::MessageId::new();
                        let body = StoredMessage::V1(gateway_tests::stored_on_hk_main(id, message.clone()));
                        engine.accept(&id, "hk-main", "incs-whatsapp", &body, 0).await.unwrap();
                    }
                }));
            }
            let mut done = 0;
            while done < n {
                let batch = engine.claim(&lane, 256).await.unwrap();
                let mut acks = Vec::new();
                for item in batch.items {
                    let engine = engine.clone();
                    let attempt = attempt.clone();
                    acks.push(tokio::spawn(async move {
                        let pmid = format!("wamid.{}", item.id);
                        assert!(engine
                            .submitted("hk-main", &item, "incs-whatsapp", "incs", &pmid, &attempt, false)
                            .await
                            .unwrap()
                            .is_some());
                    }));
                }
                done += acks.len();
                for a in acks {
                    a.await.unwrap();
                }
                if done < n && batch.wait.is_some_and(|w| !w.is_zero()) {
                    tokio::time::sleep(Duration::from_millis(1)).await;
                }
            }
            for t in tasks {
                t.await.unwrap();
            }
        }
    };

    // Warm up (scripts loaded, pools open), let that retention end, then measure the start.
    run(1000).await;
    async fn expire_all(client: &mut gateway_tests::RedisClient) -> (u64, u64) {
        tokio::time::sleep(Duration::from_millis(1500)).await;
        // Touch every key so expired ones are reclaimed now rather than by the sampler later.
        let mut cursor: u64 = 0;
        loop {
            let (next, _keys): (u64, Vec<String>) =
                client.query(redis::cmd("SCAN").arg(cursor).arg("COUNT").arg(10_000)).await;
            cursor = next;
            if cursor == 0 {
                break;
            }
        }
        // The slow log keeps copies of slow commands' arguments: Redis's diagnostics, not data.
        let () = client.query(redis::cmd("SLOWLOG").arg("RESET")).await;
        // Emptied hash tables shrink in Redis's periodic cron, not at once: give it a few runs.
        tokio::time::sleep(Duration::from_millis(2500)).await;
        let info: String = client.query(redis::cmd("INFO").arg("memory")).await;
        let field = |name: &str| -> u64 {
            info.lines()
                .find_map(|l| l.strip_prefix(name).and_then(|v| v.strip_prefix(':')))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0)
        };
        // Client and AOF buffers are connection state that Redis shrinks on its own schedule
        // (a pipelining client's query buffer stays large for a while); what must come back is
        // the rest: the data and its bookkeeping.
        let used =
            field("used_memory").saturating_sub(field("mem_clients_normal")).saturating_sub(field("mem_aof_buffer"));
        let keys: u64 = client.query(&redis::cmd("DBSIZE")).await;
        (used, keys)
    }
    let (start, start_keys) = expire_all(&mut client).await;

    let started = Instant::now();
    run(100_000).await;
    let elapsed = started.elapsed();
    let (end, end_keys) = expire_all(&mut client).await;
    let ratio = end as f64 / start as f64;
    eprintln!("100k messages in {elapsed:?}; memory without client buffers {start} -> {end} bytes ({ratio:.3}); keys {start_keys} -> {end_keys}");
    assert_eq!(end_keys, start_keys, "keys outlived their retention");
    assert!((0.95..=1.05).contains(&ratio), "memory {start} -> {end} ({ratio:.3})");
}
