//! The engine's contract, driven directly (no HTTP, no worker) against a real Redis and the same
//! scenarios again on a three-node Redis Cluster: what a claim token entitles its holder to, the
//! dead-letter cap, and the races between operators (pause, cancel) and claims.
//!
//! The worker and the API rely on these promises; the end-to-end tests see them only through
//! their effects, so a broken fence would show there as a rare duplicate rather than a failure.

use std::collections::HashSet;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use gateway_core::request::SendRequest;
use gateway_core::{MessageId, MessageStatus};
use gateway_http::engine::record::{AttemptRecord, ErrorRecord, StoredMessage};
use gateway_http::engine::{CancelOutcome, Claimed, Engine, IdleReason, LaneSpec};
use gateway_tests::{eventually, quiet_period, TestRedis};
use serde_json::json;

const SENDER: &str = "hk-main";
const LANE: &str = "incs-whatsapp";

/// An engine on `redis` with the test configuration, changed as a value.
fn engine(redis: &TestRedis, change: impl FnOnce(&mut gateway_http::config::EngineConfig)) -> Engine {
    let mut config = redis.gateway_config("http://127.0.0.1:9", "");
    change(&mut config.engine);
    Engine::new(&config.redis, &config.engine).unwrap()
}

fn lane() -> LaneSpec {
    LaneSpec { sender: SENDER.into(), lane: LANE.into(), rate_per_second: 1_000_000, burst: 1_000_000 }
}

async fn accept(engine: &Engine, text: &str) -> MessageId {
    let request: SendRequest =
        serde_json::from_value(json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": text}))
            .unwrap();
    let id = MessageId::new();
    let body =
        StoredMessage::V1(gateway_tests::stored_on_hk_main(id, request.into_message(chrono::Utc::now()).unwrap()));
    engine.accept(&id, SENDER, LANE, &body, 0).await.unwrap();
    id
}

fn attempt(n: u32, outcome: &str) -> AttemptRecord {
    AttemptRecord {
        n,
        provider: "incs".into(),
        account: LANE.into(),
        at: chrono::Utc::now(),
        outcome: outcome.into(),
        http_status: Some(500),
        provider_code: None,
        latency_ms: 1,
    }
}

fn error() -> ErrorRecord {
    ErrorRecord { code: Some("500".into()), title: "provider error".into(), retryable: true }
}

/// Claims until `want` messages came back or the deadline passes.
async fn claim_n(engine: &Engine, want: usize, within: Duration) -> Vec<Claimed> {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    while got.len() < want && Instant::now() < deadline {
        let batch = engine.claim(&lane(), want - got.len()).await.unwrap();
        if batch.items.is_empty() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        got.extend(batch.items);
    }
    got
}

async fn status_of(engine: &Engine, id: &MessageId) -> MessageStatus {
    engine.get(id).await.unwrap().expect("the record").status
}

// ---- scenarios, run on one Redis and on a cluster ----

/// A claim whose lease expired and was claimed again holds nothing: every action taken with its
/// token is refused and changes nothing, while the new holder's token works.
async fn a_stale_lease_token_can_neither_ack_nor_retry(redis: TestRedis) {
    let engine = engine(&redis, |e| e.lease_ms = 300);
    let id = accept(&engine, "stale").await;
    let first = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("claimed");
    assert_eq!(first.id, id.to_string());
    assert!(!first.redelivery);

    // The lease runs out (the worker froze); the next claim takes the message over.
    let second = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("claimed again after the lease");
    assert_eq!(second.id, first.id);
    assert!(second.redelivery, "a claim after an expired lease says the provider may have it");
    assert_ne!(second.token, first.token);
    let before = engine.get(&id).await.unwrap().unwrap();

    let (a, e) = (attempt(1, "transient"), error());
    assert!(!engine.renew(SENDER, &first).await.unwrap(), "renew");
    assert!(!engine.retry(SENDER, &first, &e, &a, Duration::from_millis(1), true, false).await.unwrap(), "retry");
    assert!(!engine.throttled(SENDER, LANE, &first, &a, Duration::from_millis(50), false).await.unwrap(), "throttled");
    assert!(!engine.failover(SENDER, &first, "incs-backup", Some(&a), Some(&e)).await.unwrap(), "failover");
    assert!(!engine.release(SENDER, LANE, &first).await.unwrap(), "release");
    assert!(!engine.failed(SENDER, &first, &e, &a, true, "answer").await.unwrap(), "failed");
    let ack = engine.submitted(SENDER, &first, LANE, "incs", "stale-pm", &attempt(1, "submitted"), false).await;
    assert_eq!(ack.unwrap(), None, "submitted");

    let after = engine.get(&id).await.unwrap().unwrap();
    assert_eq!(after.status, before.status);
    assert_eq!(after.attempts, before.attempts, "no attempt recorded from the stale token");
    assert_eq!(after.provider_message_id, None);
    assert!(engine.dead_letters(SENDER, 10).await.unwrap().is_empty());
    assert_eq!(engine.find_by_provider_id("incs", "stale-pm").await.unwrap(), None, "no provider id linked");
    assert!(engine.claim(&lane(), 10).await.unwrap().items.is_empty(), "nothing queued twice");

    // The holder's token still works, once.
    assert!(engine.renew(SENDER, &second).await.unwrap());
    let ack = engine.submitted(SENDER, &second, LANE, "incs", "pm-2", &attempt(1, "submitted"), false).await;
    assert_eq!(ack.unwrap(), Some(Vec::new()));
    assert_eq!(status_of(&engine, &id).await, MessageStatus::Submitted);
    let again = engine.submitted(SENDER, &second, LANE, "incs", "pm-3", &attempt(2, "submitted"), false).await;
    assert_eq!(again.unwrap(), None, "a lease ends with its first outcome");
    assert_eq!(engine.get(&id).await.unwrap().unwrap().provider_message_id.as_deref(), Some("pm-2"));
}

/// The dead-letter set keeps the newest `dead_letter_cap` entries; the oldest go with their
/// records, so the cap bounds memory and not just the list.
async fn the_dead_letter_cap_holds_and_drops_the_oldest_records(redis: TestRedis) {
    let engine = engine(&redis, |e| e.dead_letter_cap = 3);
    let mut ids = Vec::new();
    for i in 0..7 {
        let id = accept(&engine, &format!("dlq-{i}")).await;
        let claim = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("claimed");
        assert_eq!(claim.id, id.to_string());
        assert!(engine.failed(SENDER, &claim, &error(), &attempt(1, "transient"), true, "answer").await.unwrap());
        ids.push(id);
        // Scores are milliseconds: keep the order strict.
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let listed: Vec<String> =
        engine.dead_letters(SENDER, 100).await.unwrap().into_iter().map(|(r, _)| r.body.v1().id.to_string()).collect();
    let newest: Vec<String> = ids.iter().rev().take(3).map(ToString::to_string).collect();
    assert_eq!(listed, newest, "the newest three, newest first");
    assert_eq!(engine.depth(SENDER, &[LANE.into()]).await.unwrap().dead_letters, 3);
    for old in &ids[..4] {
        assert_eq!(engine.get(old).await.unwrap().map(|r| r.status), None, "{old}: dropped with its record");
        assert_eq!(engine.replay(old).await.unwrap(), None, "{old}: no longer a dead letter");
    }
    for kept in &ids[4..] {
        assert_eq!(status_of(&engine, kept).await, MessageStatus::Failed);
    }
    // Replaying one frees its place; the cap still holds after more failures.
    assert_eq!(engine.replay(&ids[6]).await.unwrap().as_deref(), Some(LANE));
    assert_eq!(engine.depth(SENDER, &[LANE.into()]).await.unwrap().dead_letters, 2);
    let replayed = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("the replay is queued");
    assert_eq!(replayed.id, ids[6].to_string());
    assert!(engine.failed(SENDER, &replayed, &error(), &attempt(2, "transient"), true, "answer").await.unwrap());
    assert_eq!(engine.depth(SENDER, &[LANE.into()]).await.unwrap().dead_letters, 3);
}

/// Cancel and claim race on the same messages from two engines (two instances): each message ends
/// exactly one way. Cancelled ones are never claimed; claimed ones are "too late" to cancel.
async fn cancel_and_claim_race_to_exactly_one_winner(redis: TestRedis) {
    let api = engine(&redis, |_| {});
    let worker = engine(&redis, |_| {});
    let n = 400;
    let mut ids = Vec::new();
    for i in 0..n {
        ids.push(accept(&api, &format!("race-{i}")).await);
    }
    let canceller = {
        let api = api.clone();
        let ids = ids.clone();
        tokio::spawn(async move {
            let mut cancelled = HashSet::new();
            // Newest first, so the two meet in the middle of the queue.
            for id in ids.iter().rev() {
                match api.cancel(id).await.unwrap() {
                    CancelOutcome::Cancelled => {
                        cancelled.insert(id.to_string());
                    }
                    CancelOutcome::TooLate(s) => assert_eq!(s, MessageStatus::Sending, "{id}"),
                    CancelOutcome::NotFound => panic!("{id} not found"),
                }
            }
            cancelled
        })
    };
    let mut claimed = HashSet::new();
    loop {
        let batch = worker.claim(&lane(), 7).await.unwrap();
        if batch.items.is_empty() && canceller.is_finished() {
            break;
        }
        for c in batch.items {
            assert!(claimed.insert(c.id.clone()), "{} claimed twice", c.id);
        }
    }
    let cancelled = canceller.await.unwrap();
    assert!(claimed.is_disjoint(&cancelled), "a message both cancelled and claimed");
    assert_eq!(claimed.len() + cancelled.len(), n, "every message ends one way");
    assert!(!claimed.is_empty() && !cancelled.is_empty(), "the race did not happen: {} claimed", claimed.len());
    for id in &ids {
        let want = if cancelled.contains(&id.to_string()) { MessageStatus::Cancelled } else { MessageStatus::Sending };
        assert_eq!(status_of(&api, id).await, want, "{id}");
    }
}

/// Once an operator's pause returns, no claim hands out a message of that sender, whichever
/// instance claims; what was queued waits, and resuming releases it in order.
async fn a_pause_stops_every_claim_until_resumed(redis: TestRedis) {
    let api = engine(&redis, |_| {});
    let worker = engine(&redis, |_| {});
    let mut ids = Vec::new();
    for i in 0..500 {
        ids.push(accept(&api, &format!("held-{i}")).await);
    }
    // Claims run while the pause lands: some before it, none after it.
    let claimed = Arc::new(AtomicUsize::new(0));
    let claimer = {
        let (worker, claimed) = (worker.clone(), claimed.clone());
        tokio::spawn(async move {
            let mut got = Vec::new();
            loop {
                let batch = worker.claim(&lane(), 1).await.unwrap();
                if batch.idle == IdleReason::Paused {
                    return got;
                }
                got.extend(batch.items.into_iter().map(|c| c.id));
                claimed.store(got.len(), Ordering::SeqCst);
            }
        })
    };
    let started =
        eventually(Duration::from_secs(10), || async { (claimed.load(Ordering::SeqCst) >= 20).then_some(()) });
    started.await.expect("the claimer started");
    api.hold(SENDER, Some("campaign review")).await.unwrap();
    let before_pause =
        tokio::time::timeout(Duration::from_secs(10), claimer).await.expect("claims see the pause").unwrap();
    let before_pause = before_pause.len();
    assert!(before_pause < ids.len(), "the pause landed after the queue drained");

    let batch = worker.claim(&lane(), 100).await.unwrap();
    assert!(batch.items.is_empty(), "claimed {} while paused", batch.items.len());
    assert_eq!(batch.idle, IdleReason::Paused);
    quiet_period(Duration::from_millis(300), "a pause has no expiry: claims stay empty").await;
    assert!(worker.claim(&lane(), 100).await.unwrap().items.is_empty());
    // Cancelling while paused works on what waits.
    let last = ids.last().unwrap();
    assert_eq!(api.cancel(last).await.unwrap(), CancelOutcome::Cancelled);

    assert!(api.resume(SENDER).await.unwrap());
    let rest = claim_n(&worker, ids.len() - before_pause - 1, Duration::from_secs(10)).await;
    let rest: Vec<String> = rest.into_iter().map(|c| c.id).collect();
    let want: Vec<String> = ids[before_pause..ids.len() - 1].iter().map(ToString::to_string).collect();
    assert_eq!(rest, want, "the rest, in order, without the cancelled one");
    assert!(worker.claim(&lane(), 10).await.unwrap().items.is_empty());
}

/// A lane paused by a throttle keeps its message at the front: nothing is claimed during the
/// pause, and the same message comes first after it, with its attempt unspent when asked.
async fn a_throttled_lane_waits_and_keeps_its_order(redis: TestRedis) {
    let engine = engine(&redis, |_| {});
    let first = accept(&engine, "front").await;
    let second = accept(&engine, "behind").await;
    let claim = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("claimed");
    assert_eq!(claim.id, first.to_string());
    let pause = Duration::from_millis(400);
    assert!(engine.throttled(SENDER, LANE, &claim, &attempt(1, "throttled"), pause, false).await.unwrap());

    let during = engine.claim(&lane(), 10).await.unwrap();
    assert!(during.items.is_empty(), "claimed during the lane's pause");
    assert!(matches!(during.idle, IdleReason::Paused | IdleReason::RateLimited), "{:?}", during.idle);
    assert!(during.wait.is_some_and(|w| w <= pause), "told to wait {:?}", during.wait);

    let after = claim_n(&engine, 2, Duration::from_secs(5)).await;
    let order: Vec<&str> = after.iter().map(|c| c.id.as_str()).collect();
    assert_eq!(order, [first.to_string(), second.to_string()]);
    assert_eq!(after[0].attempt, 0, "a throttle that does not spend leaves the attempt count");
}

/// Each scenario as two tests: on one Redis, and on a Redis Cluster.
/// Reconciliation reads an idle sender only when it can have something to poll: its answer says
/// how long until its oldest submitted message goes quiet, or a whole quiet period when nothing
/// waits, since a message submitted later goes quiet no sooner.
async fn reconciliation_says_when_a_sender_can_next_have_a_quiet_message(redis: TestRedis) {
    let engine = engine(&redis, |_| {});
    let quiet = Duration::from_secs(60);
    let (none, due) = engine.quiet_messages(SENDER, quiet, 10).await.unwrap();
    assert!(none.is_empty());
    assert_eq!(due, Some(quiet), "nothing submitted: nothing goes quiet before a quiet period");

    let id = accept(&engine, "reconcile me").await;
    let claimed = claim_n(&engine, 1, Duration::from_secs(5)).await.pop().expect("claimed");
    let accepted = attempt(1, "accepted");
    let submitted = engine.submitted(SENDER, &claimed, LANE, "incs", "wamid.quiet", &accepted, true);
    assert!(submitted.await.unwrap().is_some());
    let (none, due) = engine.quiet_messages(SENDER, quiet, 10).await.unwrap();
    assert!(none.is_empty(), "submitted just now: not quiet yet");
    let due = due.expect("a due time");
    assert!(due <= quiet && due >= quiet - Duration::from_secs(10), "due in {due:?}");

    // Quiet at once with no quiet period: polled now, so no due time is given (look again soon).
    let (polled, due) = engine.quiet_messages(SENDER, Duration::ZERO, 10).await.unwrap();
    assert_eq!(polled.iter().map(|p| p.0.as_str()).collect::<Vec<_>>(), [id.to_string().as_str()]);
    assert_eq!(due, None);
    // Polled just now: its next turn is a whole quiet period away.
    let (none, due) = engine.quiet_messages(SENDER, quiet, 10).await.unwrap();
    assert!(none.is_empty());
    assert!(due.is_some_and(|d| d >= quiet - Duration::from_secs(10)), "due in {due:?}");
}

macro_rules! on_single_and_cluster {
    ($($scenario:ident),* $(,)?) => {
        mod single {
            use gateway_tests::TestRedis;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(TestRedis::single()).await;
            })*
        }
        mod cluster {
            use gateway_tests::TestRedis;
            $(#[tokio::test]
            async fn $scenario() {
                super::$scenario(TestRedis::cluster()).await;
            })*
        }
    };
}

on_single_and_cluster!(
    a_stale_lease_token_can_neither_ack_nor_retry,
    the_dead_letter_cap_holds_and_drops_the_oldest_records,
    cancel_and_claim_race_to_exactly_one_winner,
    a_pause_stops_every_claim_until_resumed,
    a_throttled_lane_waits_and_keeps_its_order,
    reconciliation_says_when_a_sender_can_next_have_a_quiet_message,
);
