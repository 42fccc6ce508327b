//! Durability under partial failure: a provider that answers after its timeout, leases held
//! while a send is in flight.

use std::collections::HashSet;
use std::time::Duration;

use gateway_tests::{
    eventually, metric_value, send_texts, texts_received, ConfigToml, TestGateway, TestRedis, TestSandbox,
};
use serde_json::{json, Value};

/// Every account of the test configuration with a provider timeout of `ms` (the lease must
/// outlast the slowest).
fn provider_timeouts(config: ConfigToml, ms: i64) -> ConfigToml {
    ["incs-whatsapp", "incs-viber", "incs-rcs"]
        .into_iter()
        .fold(config, |config, account| config.set(&format!("accounts.{account}.incs"), "timeout_ms", ms))
}

async fn metric(gw: &TestGateway, name: &str) -> f64 {
    let text = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    metric_value(&text, name)
}

/// The case, at a tenth of its times: the provider answers after 1.5 s while the gateway
/// waits 1 s (15 s against 10 s), so every attempt times out with its outcome unknown. The lease
/// is the shortest the configuration allows (the timeout plus one second), so each send extends
/// it before it starts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_answering_after_its_timeout_gets_each_message_at_most_twice() {
    const MESSAGES: usize = 200;
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    sandbox.fault(json!({"provider": "incs", "delay_ms": 1500})).await;
    let toml = provider_timeouts(redis.config(&sandbox.url(), ""), 1000)
        .set("engine", "lease_ms", 2000)
        .set("engine", "concurrency_per_lane", 100)
        // Timeouts are outages to the circuit breaker; an open circuit only delays this test.
        .set("engine", "circuit_failure_threshold", 100_000)
        .lane_rate("incs-whatsapp", 200, 100)
        .text();
    let gw = TestGateway::spawn(&toml).await;

    let (accepted, refused) = send_texts(&gw.client, &gw.base_url, "slow", MESSAGES, 8).await;
    assert!(refused.is_empty(), "sends refused: {refused:?}");

    // A second unknown outcome ends the message: sending it a third time could make a second
    // duplicate.
    let open = std::sync::Mutex::new(accepted.iter().map(|(_, id)| id.clone()).collect::<Vec<_>>());
    let ended = eventually(Duration::from_secs(120), || async {
        let pending = open.lock().unwrap().clone();
        let mut still = Vec::new();
        for id in pending {
            if gw.get_message(&id).await["status"] != "failed" {
                still.push(id);
            }
        }
        let done = still.is_empty();
        *open.lock().unwrap() = still;
        done.then_some(())
    })
    .await;
    assert!(ended.is_some(), "{} messages never ended", open.lock().unwrap().len());

    let got = texts_received(&sandbox.requests("incs").await);
    let want: HashSet<String> = accepted.iter().map(|(i, _)| format!("slow-{i}")).collect();
    let missing = want.iter().filter(|t| !got.contains_key(*t)).count();
    assert_eq!(missing, 0, "{missing} messages never reached the provider");
    let most = got.values().copied().max().unwrap_or(0);
    assert!(most <= 2, "a message was sent {most} times");
    let duplicates: usize = got.values().map(|n| n.saturating_sub(1)).sum();
    let counted = metric(&gw, "gateway_possible_duplicates_total").await;
    eprintln!(
        "{} sends for {MESSAGES} messages; {duplicates} duplicates, {counted} counted",
        got.values().sum::<usize>()
    );
    assert!(duplicates > 0, "no message was sent again: the test did not exercise the timeout");
    assert!(counted >= duplicates as f64, "{duplicates} duplicates but {counted} counted");
    assert!(counted <= MESSAGES as f64, "{counted} possible duplicates counted for {MESSAGES} messages");

    // What the message says: two timed-out attempts, then failed for good.
    let (_, id) = &accepted[0];
    let m: Value = gw.get_message(id).await;
    let attempts = m["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 2, "{m}");
    assert!(attempts.iter().all(|a| a["outcome"] == "transient"), "{m}");
    gw.stop().await;
}

/// A lease extended while its send is in flight keeps the message from every other claim; once
/// it is no longer extended it runs out, the message is claimed again as a redelivery, and the
/// first claim can no longer extend it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_renewed_lease_holds_its_message_and_a_lease_that_moved_on_cannot_be_renewed() {
    use gateway_http::engine::record::StoredMessage;
    use gateway_http::engine::{Engine, LaneSpec};

    let redis = TestRedis::single();
    let config =
        provider_timeouts(redis.config("http://127.0.0.1:9", ""), 500).set("engine", "lease_ms", 1500).config();
    let engine = Engine::new(&config.redis, &config.engine).unwrap();
    let lane = LaneSpec { sender: "hk-main".into(), lane: "incs-whatsapp".into(), rate_per_second: 1000, burst: 10 };
    let request: gateway_core::request::SendRequest =
        serde_json::from_value(json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "held"}))
            .unwrap();
    let id = gateway_core::MessageId::new();
    let body =
        StoredMessage::V1(gateway_tests::stored_on_hk_main(id, request.into_message(chrono::Utc::now()).unwrap()));
    engine.accept(&id, "hk-main", "incs-whatsapp", &body, 0).await.unwrap();
    let mut first = engine.claim(&lane, 10).await.unwrap().items;
    assert_eq!(first.len(), 1);
    let first = first.remove(0);
    assert!(!first.redelivery);

    // Three leases long, extended every half lease: nobody else gets the message.
    let held_until = std::time::Instant::now() + Duration::from_millis(4500);
    while std::time::Instant::now() < held_until {
        tokio::time::sleep(Duration::from_millis(500)).await;
        assert!(engine.renew("hk-main", &first).await.unwrap(), "a held lease could not be extended");
        let other = engine.claim(&lane, 10).await.unwrap();
        assert!(other.items.is_empty(), "a second claim took a message whose lease was being extended");
    }

    // No longer extended: the lease runs out and the message comes back as a redelivery.
    let second = eventually(Duration::from_secs(5), || async {
        let mut items = engine.claim(&lane, 10).await.unwrap().items;
        (!items.is_empty()).then(|| items.remove(0))
    })
    .await
    .expect("the message was never claimed again after its lease ran out");
    assert_eq!(second.id, first.id);
    assert!(second.redelivery, "a message claimed after a lost lease must count as a possible duplicate");
    assert!(!engine.renew("hk-main", &first).await.unwrap(), "a lease that moved on was extended");
    assert!(engine.renew("hk-main", &second).await.unwrap());
}

/// What one failover run saw.
struct Failover {
    accepted: usize,
    refused: Vec<u16>,
    lost: usize,
    after: usize,
}

/// 3,000 sends on a Redis Cluster of 3 primaries with 1 replica each; the primary holding the
/// sender's queue is killed with SIGKILL once a third of them reached the provider, and its
/// replica takes over. Counts the messages that got a 202 and never reached the provider, then
/// sends 100 more on the promoted replica.
async fn failover_during_sends(wait_replicas: u32) -> Failover {
    let mut cluster = gateway_tests::RedisCluster::start_with_replicas(1);
    let sandbox = TestSandbox::spawn().await;
    let toml = ConfigToml::parse(&gateway_tests::gateway_toml(&cluster.url(), &sandbox.url(), ""))
        .set("redis", "cluster", true)
        .set("redis", "wait_replicas", i64::from(wait_replicas))
        .set("redis", "wait_timeout_ms", 500)
        .set("engine", "lease_ms", 3000)
        .lane_rate("incs-whatsapp", 5000, 100)
        .text();
    let gw = TestGateway::spawn(&toml).await;
    let primary = cluster.primary_of("gw:{hk-main}:lease");

    let (client, url) = (gw.client.clone(), gw.base_url.clone());
    let sending = tokio::spawn(async move { send_texts(&client, &url, "f", 3000, 16).await });
    let going =
        eventually(Duration::from_secs(60), || async { (sandbox.requests("incs").await.len() >= 1000).then_some(()) })
            .await;
    assert!(going.is_some(), "the sends never got going");
    cluster.kill(primary);
    let (accepted, refused) = sending.await.unwrap();
    assert!(refused.iter().all(|s| *s == 503), "refusals other than 503: {refused:?}");

    let want: HashSet<String> = accepted.iter().map(|(i, _)| format!("f-{i}")).collect();
    let arrived = eventually(Duration::from_secs(60), || async {
        let got = texts_received(&sandbox.requests("incs").await);
        want.iter().all(|t| got.contains_key(t)).then_some(())
    })
    .await;
    let lost = if arrived.is_some() {
        0
    } else {
        let got = texts_received(&sandbox.requests("incs").await);
        want.iter().filter(|t| !got.contains_key(*t)).count()
    };

    // The gateway goes on with the promoted replica.
    let mut after = 0;
    for i in 0..100 {
        let body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("after-{i}")});
        if gw.send(&body).await.status() == 202 {
            after += 1;
        }
    }
    gw.stop().await;
    let run = Failover { accepted: accepted.len(), refused, lost, after };
    eprintln!(
        "wait_replicas = {wait_replicas}: {} accepted, {} refused with 503, {} lost; {} of 100 accepted after the failover",
        run.accepted,
        run.refused.len(),
        run.lost,
        run.after
    );
    assert!(run.accepted >= 1000, "only {} sends were accepted", run.accepted);
    run
}

/// With `wait_replicas = 1`, a 202 means the replica that takes over has the message: none is lost.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_wait_replicas_a_primary_failover_loses_no_accepted_message() {
    let run = failover_during_sends(1).await;
    assert_eq!(run.lost, 0, "{} messages that got a 202 never reached the provider", run.lost);
}

/// The same run with `wait_replicas = 0`, which reports what a failover costs without it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_wait_replicas_a_primary_failover_is_measured() {
    let run = failover_during_sends(0).await;
    assert_eq!(run.after, 100, "the gateway did not go on with the promoted replica");
}
