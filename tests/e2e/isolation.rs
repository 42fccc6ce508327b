//! Isolation under failure: a subscriber that is down cannot grow Redis without bound nor slow
//! the sends.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_tests::{
    eventually, free_port, metric_sample, metric_value, texts_received, RedisClient, TestGateway, TestRedis,
    TestSandbox, API_KEY, READ_ONLY_KEY,
};
use provider_sandbox::SandboxConfig;
use serde_json::{json, Value};

const STATUSES: [&str; 4] = ["submitted", "sent", "delivered", "read"];

/// A subscription to `sink` with a quick, long retry schedule: while the sink is down nothing
/// runs out of attempts, and once it is back the partitions retry within half a second.
fn subscription(sink: &str, extra: &str) -> String {
    let schedule = vec!["500"; 400].join(", ");
    gateway_tests::sink_subscription(
        sink,
        &["*"],
        &format!("partitions = 2\nretry_schedule_ms = [{schedule}]\n{extra}"),
    )
}

async fn gateway_on(port: u16, redis: &TestRedis, sandbox_url: &str, extra: &str) -> TestGateway {
    let toml = redis
        .config(sandbox_url, extra)
        .listen(port)
        // Every dropped event stays a dead letter, so that each one can be accounted for.
        .set("engine", "dead_letter_cap", 1_000_000)
        // The lane's rate is not what this test is about.
        .lane_rate("incs-whatsapp", 5000, 500)
        .text();
    TestGateway::spawn(&toml).await
}

async fn sandbox_calling(port: u16) -> TestSandbox {
    // Far enough apart that a loaded machine does not reorder a message's reports.
    gateway_tests::sandbox_calling_back_after(port, [300, 600, 900]).await
}

async fn sink_on(port: u16) -> TestSandbox {
    TestSandbox::spawn_with(SandboxConfig {
        listen: format!("127.0.0.1:{port}").parse().unwrap(),
        ..Default::default()
    })
    .await
}

/// The events the sink received, parsed, in arrival order.
async fn received(sink: &TestSandbox) -> Vec<Value> {
    let raw: Vec<Value> =
        sink.client.get(format!("{}/_sandbox/webhooks", sink.url())).send().await.unwrap().json().await.unwrap();
    raw.iter().map(|d| serde_json::from_str(d["raw_body"].as_str().unwrap()).unwrap()).collect()
}

async fn pending(redis: &mut RedisClient) -> u64 {
    let mut n = 0;
    for p in ["p0", "p1"] {
        let len: u64 = redis.query(redis::cmd("LLEN").arg(format!("gw:{{ev:sink}}:q:{p}"))).await;
        n += len;
    }
    n
}

async fn admin_get(gw: &TestGateway, path: &str, key: &str) -> (u16, Value) {
    let res = gw.client.get(format!("{}{path}", gw.base_url)).bearer_auth(key).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

async fn admin_post(gw: &TestGateway, path: &str) -> (u16, Value) {
    let res = gw.client.post(format!("{}{path}", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// Sends `flood-0..n`; a send refused for load (503 or 408, on a shared machine) is sent again
/// with its `Idempotency-Key`, as a client would. Returns `(index, id)` of each.
async fn send_all(gw: &TestGateway, n: usize) -> Vec<(usize, String)> {
    use futures::StreamExt;
    let results: Vec<(usize, String)> = futures::stream::iter(0..n)
        .map(|i| async move {
            let body =
                json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("flood-{i}")});
            // Up to a minute: a shared test machine can be loaded far beyond what it serves.
            for _ in 0..120 {
                match gw
                    .client
                    .post(format!("{}/v1/messages", gw.base_url))
                    .bearer_auth(API_KEY)
                    .header("Idempotency-Key", format!("flood-{i}"))
                    .json(&body)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => {
                        let v: Value = r.json().await.unwrap();
                        return (i, v["id"].as_str().unwrap().to_owned());
                    }
                    Ok(r) if [503, 408, 409].contains(&r.status().as_u16()) => {}
                    Ok(r) => panic!("send {i}: {}", r.status()),
                    Err(e) => panic!("send {i}: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            panic!("send {i} was refused for a minute")
        })
        .buffer_unordered(8)
        .collect()
        .await;
    results
}

/// How many messages the flood sends (20,000 in the issue; `ISOLATION_MESSAGES` to change).
fn flood_size() -> usize {
    std::env::var("ISOLATION_MESSAGES").ok().and_then(|v| v.parse().ok()).unwrap_or(1_000)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscriber_down_during_a_flood_costs_a_bounded_backlog_and_gets_the_newest_events() {
    const MAX_PENDING: u64 = 1_000;
    let n = flood_size();
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = sandbox_calling(port).await;
    let sink_port = free_port();
    let extra = format!("max_pending = {MAX_PENDING}\nmax_age_secs = 3600\n");
    let toml_extra = subscription(&format!("http://127.0.0.1:{sink_port}"), &extra);
    let gw = gateway_on(port, &redis, &sandbox.url(), &toml_extra).await;
    let mut r = redis.client().await;

    // Sample the backlog while the flood runs.
    let peak = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    let sampler = {
        let (peak, stop) = (peak.clone(), stop.clone());
        let mut r = redis.client().await;
        tokio::spawn(async move {
            while !stop.load(Ordering::Relaxed) {
                peak.fetch_max(pending(&mut r).await, Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        })
    };
    let started = Instant::now();
    let ok = send_all(&gw, n).await;
    let accepted_in = started.elapsed();
    // Every message goes to `read`, unless this machine is loaded beyond what the gateway can
    // serve and a callback is refused (the sandbox, like INCS, does not retry): then the run ends
    // when nothing has moved for five seconds, and the count of refused callbacks says why.
    let mut last = (0.0, Instant::now());
    loop {
        let text = gw.metrics().await;
        let read = metric_sample(&text, "gateway_status_transitions_total", "status=\"read\"");
        if read as usize >= n {
            break;
        }
        let refused = metric_sample(&text, "gateway_http_requests_total", "status=\"503\"");
        if read > last.0 {
            last = (read, Instant::now());
        } else if refused > 0.0 && last.1.elapsed() > Duration::from_secs(5) {
            eprintln!("{read} of {n} messages read; {refused} requests refused under load");
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "every message reaches `read`: {read} of {n}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let flood_took = started.elapsed();
    let sent = texts_received(&sandbox.requests("incs").await);
    assert_eq!(sent.len(), n, "every message was sent");
    // At least once: under a load that times out a provider call, a send may go again.
    let resent: usize = sent.values().map(|c| c - 1).sum();
    // The last events are queued as the last callbacks are applied; let the sampler see them.
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, Ordering::Relaxed);
    let _ = sampler.await;

    let peak = peak.load(Ordering::Relaxed);
    let backlog = pending(&mut r).await;
    // Each partition keeps its share; at most one more each is in flight and comes back.
    assert!(peak <= MAX_PENDING + 2, "the backlog stayed at its cap: peak {peak}");
    assert!(backlog >= MAX_PENDING - 2, "the cap is full of the newest events: {backlog}");
    let mut backlog_bytes = 0u64;
    for p in ["p0", "p1"] {
        let list = format!("gw:{{ev:sink}}:q:{p}");
        let ids: Vec<String> = r.query(redis::cmd("LRANGE").arg(&list).arg(0).arg(-1)).await;
        let list_bytes: Option<u64> = r.query(redis::cmd("MEMORY").arg("USAGE").arg(&list)).await;
        backlog_bytes += list_bytes.unwrap_or(0);
        for id in ids {
            let b: Option<u64> = r.query(redis::cmd("MEMORY").arg("USAGE").arg(format!("gw:{{ev:sink}}:m:{id}"))).await;
            backlog_bytes += b.unwrap_or(0);
        }
    }
    let info: String = r.query(redis::cmd("INFO").arg("memory")).await;
    let used_peak = info.lines().find_map(|l| l.strip_prefix("used_memory_peak:")).unwrap_or("?").trim().to_owned();
    let text = gw.metrics().await;
    // At most four per message (submitted, sent, delivered, read): a `delivered` that arrives
    // after `read` only joins the history. The gateway's own count says what was queued.
    let total = metric_value(&text, "gateway_events_queued_total") as u64;
    assert!(total <= 4 * n as u64 && total > 0, "events queued: {total}");
    // Where every event is, read in one step after the count: the delivery loop keeps moving
    // events between the queues and the lease, so reads one after the other can miss one.
    let (waiting, dead, in_flight): (u64, u64, u64) = r
        .query(
            redis::cmd("EVAL")
                .arg(
                    "return {redis.call('LLEN', KEYS[1]) + redis.call('LLEN', KEYS[2]), \
                     redis.call('ZCARD', KEYS[3]), redis.call('ZCARD', KEYS[4])}",
                )
                .arg(4)
                .arg("gw:{ev:sink}:q:p0")
                .arg("gw:{ev:sink}:q:p1")
                .arg("gw:{ev:sink}:dlq")
                .arg("gw:{ev:sink}:lease"),
        )
        .await;
    // An event whose queueing answer timed out under load is queued but not counted.
    let held = dead + waiting + in_flight;
    assert!(held >= total && held <= 4 * n as u64, "every event is either waiting or dead-lettered: {held} of {total}");
    let dropped = metric_sample(&text, "gateway_event_dead_letters_total", "reason=\"max_pending\"") as u64;
    assert!(
        dropped <= dead && dropped + (held - total) >= dead,
        "every dead-lettered event is counted: {dropped} of {dead}"
    );
    assert_eq!(metric_sample(&text, "gateway_event_dead_letters_total", "reason=\"retries_exhausted\""), 0.0);
    eprintln!(
        "flood: {n} messages accepted in {accepted_in:?}, flood over after {flood_took:?}; {total} events, \
         backlog peak {peak} (cap {MAX_PENDING}), {backlog} waiting in {backlog_bytes} bytes ({} bytes/event), \
         {dead} dead-lettered; redis used_memory_peak {used_peak}; {resent} sends repeated",
        backlog_bytes / backlog.max(1)
    );

    // The API shows them (admin only), newest first.
    let (status, _) = admin_get(&gw, "/v1/event-dead-letters", READ_ONLY_KEY).await;
    assert_eq!(status, 403);
    let (status, body) = admin_get(&gw, "/v1/event-dead-letters?subscription=nope", API_KEY).await;
    assert_eq!(status, 422, "{body}");
    assert_eq!(body["errors"][0]["field"], "subscription");
    let (status, body) = admin_get(&gw, "/v1/event-dead-letters?limit=0", API_KEY).await;
    assert_eq!(status, 422, "{body}");
    let (status, list) = admin_get(&gw, "/v1/event-dead-letters?subscription=sink&limit=3", API_KEY).await;
    assert_eq!(status, 200, "{list}");
    let items = list["items"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(items.iter().all(|d| d["reason"] == "max_pending" && d["subscription"] == "sink"), "{list}");
    assert!(items[0]["dead_lettered_at"].as_str() >= items[2]["dead_lettered_at"].as_str(), "newest first");
    let (status, subs) = admin_get(&gw, "/v1/subscriptions", READ_ONLY_KEY).await;
    assert_eq!(status, 200);
    assert_eq!(subs["items"][0]["state"], "failing", "{subs}");
    assert_eq!(subs["items"][0]["max_pending"], MAX_PENDING);

    // The subscriber comes back: it gets what waited, in order, and nothing else.
    let sink = sink_on(sink_port).await;
    let expected = (backlog + in_flight) as usize;
    let events = eventually(Duration::from_secs(60), || async {
        let got = received(&sink).await;
        (got.len() >= expected).then_some(got)
    })
    .await
    .unwrap_or_else(|| panic!("the {expected} waiting events arrive"));
    let mut per_message: HashMap<String, Vec<String>> = HashMap::new();
    for e in &events {
        per_message
            .entry(e["data"]["message_id"].as_str().unwrap().to_owned())
            .or_default()
            .push(e["data"]["status"].as_str().unwrap().to_owned());
    }
    // Which events of each message were dead-lettered instead.
    let rank = |s: &str| STATUSES.iter().position(|x| *x == s).unwrap();
    let dead_ids: Vec<String> = r.query(redis::cmd("ZRANGE").arg("gw:{ev:sink}:dlq").arg(0).arg(-1)).await;
    let mut dropped_of: HashMap<String, Vec<usize>> = HashMap::new();
    for id in dead_ids {
        let body: String = r.query(redis::cmd("HGET").arg(format!("gw:{{ev:sink}}:m:{id}")).arg("body")).await;
        let job: Value = serde_json::from_str(&body).unwrap();
        let event: Value = serde_json::from_str(job["payload"].as_str().unwrap()).unwrap();
        let status = event["data"]["status"].as_str().unwrap();
        dropped_of.entry(event["data"]["message_id"].as_str().unwrap().to_owned()).or_default().push(rank(status));
    }
    for (id, got) in &per_message {
        let got: Vec<usize> = got.iter().map(|s| rank(s)).collect();
        assert!(got.windows(2).all(|w| w[0] < w[1]), "{id}: in order: {got:?}");
        // The oldest were dropped: every event of a message that was dead-lettered is older than
        // every one that arrived.
        let newest_dropped = dropped_of.get(id).and_then(|d| d.iter().max().copied());
        assert!(newest_dropped.is_none_or(|d| d < got[0]), "{id}: dropped {:?}, got {got:?}", dropped_of.get(id));
    }
    let (last, _) = ok.iter().max_by_key(|(i, _)| *i).unwrap();
    let last_id = &ok.iter().find(|(i, _)| i == last).unwrap().1;
    assert!(
        per_message.get(last_id).is_some_and(|s| s.last().map(String::as_str) == Some("read")),
        "the newest arrived"
    );

    // A dead letter delivered on demand, with its original webhook-id.
    let first = &items[0];
    let (status, replayed) =
        admin_post(&gw, &format!("/v1/event-dead-letters/{}/replay", first["id"].as_str().unwrap())).await;
    assert_eq!(status, 202, "{replayed}");
    let webhook_id = first["event_id"].as_str().unwrap().to_owned();
    let redelivered = eventually(Duration::from_secs(10), || async {
        let raw: Vec<Value> =
            sink.client.get(format!("{}/_sandbox/webhooks", sink.url())).send().await.unwrap().json().await.unwrap();
        raw.iter().any(|d| d["headers"]["webhook-id"] == webhook_id.as_str()).then_some(())
    })
    .await;
    assert!(redelivered.is_some(), "the replayed event is delivered");
    let (status, _) =
        admin_post(&gw, &format!("/v1/event-dead-letters/{}/replay", first["id"].as_str().unwrap())).await;
    assert_eq!(status, 404, "a replayed event is no longer a dead letter");
    let (status, _) = admin_post(&gw, "/v1/event-dead-letters/not-an-id/replay").await;
    assert_eq!(status, 404);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_subscription_failing_too_long_is_disabled_until_enabled() {
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = sandbox_calling(port).await;
    let sink_port = free_port();
    let toml_extra = subscription(&format!("http://127.0.0.1:{sink_port}"), "disable_after_secs = 2\n");
    let gw = gateway_on(port, &redis, &sandbox.url(), &toml_extra).await;
    let text = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "while down"});
    let id = gw.send(&text).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    gw.wait_for_status(&id, "read", Duration::from_secs(10)).await;

    let disabled = eventually(Duration::from_secs(15), || async {
        let (_, subs) = admin_get(&gw, "/v1/subscriptions", API_KEY).await;
        (subs["items"][0]["state"] == "disabled").then_some(subs)
    })
    .await
    .expect("the subscription is disabled after failing for 2 s");
    assert!(disabled["items"][0]["disabled_at"].is_string(), "{disabled}");
    let text_metrics = gw.metrics().await;
    assert_eq!(metric_value(&text_metrics, "gateway_subscription_disabled"), 1.0);
    let mut r = redis.client().await;
    let drained = eventually(Duration::from_secs(5), || async {
        let mut r = redis.client().await;
        (pending(&mut r).await == 0).then_some(())
    })
    .await;
    assert!(drained.is_some(), "its backlog went to the dead letters");
    let dead: u64 = r.query(redis::cmd("ZCARD").arg("gw:{ev:sink}:dlq")).await;
    assert_eq!(dead, 4, "the message's four events are dead letters");
    let (_, list) = admin_get(&gw, "/v1/event-dead-letters?subscription=sink", API_KEY).await;
    assert!(list["items"].as_array().unwrap().iter().any(|d| d["reason"] == "disabled"), "{list}");
    // Replaying into a disabled subscription is refused.
    let (status, _) =
        admin_post(&gw, &format!("/v1/event-dead-letters/{}/replay", list["items"][0]["id"].as_str().unwrap())).await;
    assert_eq!(status, 409);

    // New events go straight to the dead letters; sends are untouched.
    let id2 = gw.send(&text).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    gw.wait_for_status(&id2, "read", Duration::from_secs(10)).await;
    let all_dead = eventually(Duration::from_secs(5), || async {
        let mut r = redis.client().await;
        let dead: u64 = r.query(redis::cmd("ZCARD").arg("gw:{ev:sink}:dlq")).await;
        (dead == 8).then_some(())
    })
    .await;
    assert!(all_dead.is_some(), "the second message's events were dead-lettered too");
    assert!(
        metric_sample(&gw.metrics().await, "gateway_event_dead_letters_total", "reason=\"disabled\"") >= 4.0,
        "and counted"
    );

    // Enabled again, with the subscriber back: new events flow, the dead letters replay.
    let sink = sink_on(sink_port).await;
    let (status, _) = admin_post(&gw, "/v1/subscriptions/nope/enable").await;
    assert_eq!(status, 404);
    let (status, enabled) = admin_post(&gw, "/v1/subscriptions/sink/enable").await;
    assert_eq!(status, 200, "{enabled}");
    assert_eq!(enabled["state"], "active");
    let id3 = gw.send(&text).await.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    gw.wait_for_status(&id3, "read", Duration::from_secs(10)).await;
    let got = eventually(Duration::from_secs(10), || async {
        let got = received(&sink).await;
        (got.iter().filter(|e| e["data"]["message_id"] == id3.as_str()).count() == 4).then_some(got)
    })
    .await;
    assert!(got.is_some(), "events after the enable are delivered");
    let (status, _) =
        admin_post(&gw, &format!("/v1/event-dead-letters/{}/replay", list["items"][0]["id"].as_str().unwrap())).await;
    assert_eq!(status, 202);
    assert_eq!(metric_value(&gw.metrics().await, "gateway_subscription_disabled"), 0.0);
    gw.stop().await;
}
