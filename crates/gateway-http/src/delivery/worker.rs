//! Delivery workers: one loop per lane and process claims leased batches and sends each message
//! through the lane's provider, with up to `concurrency_per_lane` calls in flight.
//!
//! A worker wakes when the engine says its lane has work (a wake-up, see [`super::wake`]), when
//! the last claim said something becomes due (delays, leases, validity, pauses, rate), or after
//! an idle wait: `idle_poll_ms` after a look that found work, `idle_max_ms` after one that found
//! nothing while wake-ups are heard (only `idle_poll_ms` while they are not). On shutdown it stops
//! claiming and lets in-flight sends finish; anything not finished in time keeps its lease, which
//! expires, and the message is sent again.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::Utc;
use gateway_core::retry::{Attempt, Decision, RetryPolicy, Route, Source, JITTER, LEASE_MARGIN};
use gateway_core::{ErrorClass, MessageId, MessageStatus, Provider, ProviderError};
use governor::{DefaultDirectRateLimiter, Quota};
use rand::Rng;
use tokio::sync::{Notify, Semaphore};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, error, info_span, warn, Instrument};

use super::circuit::{Admission, CircuitBreaker, CircuitState};
use crate::config::EngineConfig;
use crate::engine::record::{AttemptRecord, ChainLink, ErrorRecord, StoredMessage};
use crate::engine::{Claimed, Engine, IdleReason, LaneSpec};
use crate::metrics::Metrics;

/// The most a single claim takes, whatever the free concurrency.
const MAX_CLAIM: usize = 128;

/// A lane: one provider account, its queue, and the wake-up bell its workers listen to.
pub struct Lane {
    pub spec: LaneSpec,
    pub provider: Arc<dyn Provider>,
    pub wake: Notify,
    /// Set when the lane was woken or found work: the depth sampler looks at its sender then.
    pub touched: std::sync::atomic::AtomicBool,
    /// Whether its last look found messages waiting (taken, or held back by a pause or the rate):
    /// the depth sampler keeps looking at its sender while it does.
    pub waiting: std::sync::atomic::AtomicBool,
    pub circuit: CircuitBreaker,
    /// A local backstop to the shared GCRA in Redis: even if the shared limit misbehaved, this
    /// process alone never sends faster than the lane's rate.
    pub limiter: DefaultDirectRateLimiter,
    /// The longest a send to this account waits for its answer: a send starts only on a lease
    /// that outlasts it.
    pub call_timeout: Duration,
}

impl Lane {
    pub fn new(spec: LaneSpec, provider: Arc<dyn Provider>, circuit: CircuitBreaker, call_timeout: Duration) -> Self {
        let rate = std::num::NonZeroU32::new(spec.rate_per_second).unwrap_or(std::num::NonZeroU32::MIN);
        let burst = std::num::NonZeroU32::new(spec.burst.max(1)).unwrap_or(std::num::NonZeroU32::MIN);
        let limiter = DefaultDirectRateLimiter::direct(Quota::per_second(rate).allow_burst(burst));
        let touched = std::sync::atomic::AtomicBool::new(true);
        let waiting = std::sync::atomic::AtomicBool::new(false);
        Self { spec, provider, wake: Notify::new(), touched, waiting, circuit, limiter, call_timeout }
    }
}

/// A provider failure that looks like an outage (5xx, timeout, network) rather than an answer.
fn is_outage(e: &ProviderError) -> bool {
    e.class == ErrorClass::Transient && e.http_status.is_none_or(|s| s >= 500 || s == 408)
}

/// Every lane this process knows, by account name.
#[derive(Default)]
pub struct Lanes(HashMap<String, Arc<Lane>>);

impl Lanes {
    pub fn insert(&mut self, lane: Lane) {
        self.0.insert(lane.spec.lane.clone(), Arc::new(lane));
    }
    pub fn get(&self, name: &str) -> Option<&Arc<Lane>> {
        self.0.get(name)
    }
    pub fn iter(&self) -> impl Iterator<Item = &Arc<Lane>> {
        self.0.values()
    }
}

/// What the workers tell the rest of the gateway when they move a message. Implemented by
/// `inbound::reports::Reports` and handed in by `startup`, so delivery does not depend on inbound.
#[async_trait::async_trait]
pub trait StatusNews: Send + Sync {
    /// The engine moved the message itself (submitted, failed, expired): `message.status`.
    async fn engine_status(&self, id: &MessageId, status: MessageStatus, previous: MessageStatus);
    /// A message of a fallback chain reached `status`, which may move the chain on.
    async fn chain_moved(&self, id: &str, chain: Option<&ChainLink>, status: MessageStatus);
    /// Status reports that came before the send's answer was recorded, applied now.
    async fn apply_buffered(&self, sender: &str, id: &str, items: Vec<String>, attempt: Option<&str>);
}

/// Shared by every lane loop and send of this process, behind one `Arc`: a send's task takes a
/// pointer, not a copy of each handle (the metrics alone are dozens of them).
struct Ctx {
    engine: Engine,
    reports: Arc<dyn StatusNews>,
    lanes: Arc<Lanes>,
    config: Arc<EngineConfig>,
    policy: Arc<RetryPolicy>,
    metrics: Metrics,
    shutdown: CancellationToken,
    in_flight: TaskTracker,
    wake: super::wake::WakeState,
}

/// The running workers of this process.
pub struct Dispatcher {
    shutdown: CancellationToken,
    loops: TaskTracker,
    in_flight: TaskTracker,
}

impl Dispatcher {
    /// `wake` says whether the engine's wake-ups are heard ([`super::wake::subscribe`]).
    pub fn start(
        engine: Engine,
        lanes: Arc<Lanes>,
        config: EngineConfig,
        metrics: Metrics,
        reports: impl StatusNews + 'static,
        wake: super::wake::WakeState,
    ) -> Self {
        let shutdown = CancellationToken::new();
        let loops = TaskTracker::new();
        let in_flight = TaskTracker::new();
        let ctx = Arc::new(Ctx {
            wake,
            engine,
            reports: Arc::new(reports),
            lanes: lanes.clone(),
            policy: Arc::new(config.retry_policy()),
            config: Arc::new(config),
            metrics,
            shutdown: shutdown.clone(),
            in_flight: in_flight.clone(),
        });
        for lane in lanes.iter() {
            let span = info_span!("lane", lane = %lane.spec.lane, sender = %lane.spec.sender);
            loops.spawn(run_lane(ctx.clone(), lane.clone()).instrument(span));
        }
        loops.close();
        Self { shutdown, loops, in_flight }
    }

    /// Stops claiming, then waits up to `grace` for in-flight sends.
    pub async fn stop(self, grace: Duration) {
        self.shutdown.cancel();
        self.loops.wait().await;
        self.in_flight.close();
        if tokio::time::timeout(grace, self.in_flight.wait()).await.is_err() {
            warn!("shutdown grace ended with sends in flight; their leases will expire and they will be sent again");
        }
    }
}

async fn run_lane(ctx: Arc<Ctx>, lane: Arc<Lane>) {
    let permits = Arc::new(Semaphore::new(ctx.config.concurrency_per_lane));
    let refill = (ctx.config.concurrency_per_lane.min(MAX_CLAIM) / 4).max(1);
    let idle = Duration::from_millis(ctx.config.idle_poll_ms);
    let idle_max = Duration::from_millis(ctx.config.idle_max_ms).max(idle);
    let mut backoff = Duration::from_millis(50);
    loop {
        if ctx.shutdown.is_cancelled() {
            break;
        }
        let free = permits.available_permits();
        if free < refill {
            // Most sends are in flight: claim again once a quarter of them are back, not on each
            // one's return, so that a busy lane claims in batches (a claim costs a script call
            // whatever its size).
            tokio::select! {
                p = permits.clone().acquire_many_owned(refill as u32) => drop(p),
                () = ctx.shutdown.cancelled() => break,
            }
            continue;
        }
        let max = match lane.circuit.admit() {
            Admission::Allowed => free.min(MAX_CLAIM),
            Admission::Probe => 1,
            Admission::Wait(d) => {
                ctx.metrics
                    .circuit_state
                    .with_label_values(&[lane.spec.lane.as_str()])
                    .set(crate::metrics::CIRCUIT_OPEN);
                // The account is down: hand what waits on it to the next account of each
                // message's route; what has none waits for the circuit.
                let all_forwarded = forward_while_open(&ctx, &lane, free.min(MAX_CLAIM)).await;
                if !all_forwarded {
                    tokio::select! {
                        () = tokio::time::sleep(d.min(idle * 4)) => {},
                        () = lane.wake.notified() => {},
                        () = ctx.shutdown.cancelled() => break,
                    }
                }
                continue;
            }
        };
        // The leases of this claim end no earlier than a lease from now.
        let claimed_at = Instant::now();
        let batch = match ctx.engine.claim(&lane.spec, max).await {
            Ok(b) => {
                backoff = Duration::from_millis(50);
                b
            }
            Err(e) => {
                warn!(error = %e, "claim failed; retrying");
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {},
                    () = ctx.shutdown.cancelled() => break,
                }
                backoff = (backoff * 2).min(Duration::from_secs(2));
                continue;
            }
        };
        if batch.items.is_empty() && max == 1 && lane.circuit.state() == CircuitState::HalfOpen {
            // The probe found nothing to send: the circuit stays half-open for the next one.
            lane.circuit.on_answer();
        }
        report_expired(&ctx, &batch.expired).await;
        lane.waiting
            .store(!batch.items.is_empty() || batch.idle != IdleReason::Empty, std::sync::atomic::Ordering::Relaxed);
        let idle_for = if !batch.items.is_empty() || !ctx.wake.live() {
            idle
        } else {
            // Wake-ups are heard, so new work rings this lane and the next look is only a safety
            // net against a lost wake-up; the look's own answer (`batch.wait`: the earliest
            // delayed message, lease or validity end) still bounds the sleep below. Up to a
            // quarter less, at random: lanes that went idle together look at different times.
            idle_max.mul_f64(rand::rng().random_range(0.75..=1.0)).max(idle)
        };
        if batch.idle == IdleReason::RateLimited {
            ctx.metrics.rate_limit_hits.with_label_values(&[lane.spec.lane.as_str()]).inc();
        }
        for item in batch.items {
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                // Cannot happen (we claimed no more than the free permits); the lease will
                // expire and the message will be claimed again.
                error!(message_id = %item.id, "no permit for a claimed message");
                continue;
            };
            let ctx2 = ctx.clone();
            let lane2 = lane.clone();
            // Boxed: a send's future is several kilobytes (the provider call, the recording), and
            // a task moves its future when it is spawned and again when it ends.
            ctx.in_flight.spawn(Box::pin(async move {
                deliver(&ctx2, &lane2, item, claimed_at + ctx2.engine.lease()).await;
                drop(permit);
            }));
        }
        let sleep_for = match batch.wait {
            Some(d) if d.is_zero() => continue,
            Some(d) => d.min(idle_for),
            None => idle_for,
        };
        tokio::select! {
            () = lane.wake.notified() => {},
            () = tokio::time::sleep(sleep_for) => {},
            () = ctx.shutdown.cancelled() => break,
        }
    }
}

/// Messages whose validity ended while they waited: counted and announced (`message.status`);
/// a fallback chain moves on to its next step at once.
async fn report_expired(ctx: &Ctx, ids: &[String]) {
    for id in ids {
        ctx.metrics.transitions.with_label_values(&["expired"]).inc();
        let Ok(parsed) = id.parse::<MessageId>() else { continue };
        ctx.reports.engine_status(&parsed, MessageStatus::Expired, MessageStatus::Queued).await;
        match ctx.engine.get(&parsed).await {
            Ok(Some(record)) => {
                ctx.reports.chain_moved(id, record.body.v1().chain.as_ref(), MessageStatus::Expired).await;
            }
            Ok(None) => {}
            // The chain's timer loop looks at it again.
            Err(e) => warn!(error = %e, message_id = %id, "could not read an expired message"),
        }
    }
}

/// The account after this one in the message's route, if any.
fn next_lane<'a>(stored: &'a StoredMessage, current: &str) -> Option<&'a str> {
    let lanes = &stored.v1().lanes;
    let pos = lanes.iter().position(|l| l == current)?;
    lanes.get(pos + 1).map(String::as_str)
}

/// Claims a batch from a lane whose circuit is open and moves each message to its next account.
/// Returns false when something had nowhere to go (or nothing was waiting), so the caller sleeps.
async fn forward_while_open(ctx: &Ctx, lane: &Lane, max: usize) -> bool {
    let Ok(batch) = ctx.engine.claim(&lane.spec, max).await else { return false };
    report_expired(ctx, &batch.expired).await;
    if batch.items.is_empty() {
        return false;
    }
    let mut all = true;
    for claim in batch.items {
        let next = serde_json::from_str::<StoredMessage>(&claim.body)
            .ok()
            .and_then(|s| next_lane(&s, &lane.spec.lane).map(str::to_owned));
        let moved = match &next {
            Some(next) => ctx.engine.failover(&lane.spec.sender, &claim, next, None, None).await,
            None => ctx.engine.release(&lane.spec.sender, &lane.spec.lane, &claim).await.map(|_| false),
        };
        match (moved, next) {
            (Ok(true), Some(next)) => {
                ctx.metrics.retries.with_label_values(&["failover"]).inc();
                if let Some(l) = ctx.lanes.get(&next) {
                    l.wake.notify_one();
                }
            }
            _ => all = false,
        }
    }
    all
}

fn error_record(e: &ProviderError) -> ErrorRecord {
    ErrorRecord { code: e.code(), title: e.title.clone(), retryable: e.is_retryable() }
}

/// Keeps a claim's lease from running out while its send is in flight: extended by a whole lease
/// each time a third of it is left. Never returns; once the lease has moved on (another worker
/// holds the message) there is nothing left to keep, and the outcome will be fenced out.
async fn keep_lease(engine: &Engine, sender: &str, claim: &Claimed, mut held_until: Instant) {
    let lease = engine.lease();
    loop {
        tokio::time::sleep_until(held_until.checked_sub(lease / 3).unwrap_or(held_until).into()).await;
        let asked = Instant::now();
        match engine.renew(sender, claim).await {
            Ok(true) => held_until = asked + lease,
            Ok(false) => {
                warn!(message_id = %claim.id, "lease moved on while the send was in flight");
                return std::future::pending().await;
            }
            Err(e) => {
                warn!(message_id = %claim.id, error = %e, "could not extend the lease; trying again");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    }
}

async fn deliver(ctx: &Ctx, lane: &Lane, claim: Claimed, held_until: Instant) {
    let sender = lane.spec.sender.as_str();
    let provider = lane.provider.kind();
    let stored: StoredMessage = match serde_json::from_str(&claim.body) {
        Ok(s) => s,
        Err(e) => {
            error!(message_id = %claim.id, error = %e, "unreadable message record; failing it");
            let err =
                ErrorRecord { code: None, title: "the stored message could not be read".into(), retryable: false };
            let attempt = AttemptRecord {
                n: claim.attempt + 1,
                provider: provider.to_string(),
                account: lane.spec.lane.clone(),
                at: Utc::now(),
                outcome: "unreadable".into(),
                http_status: None,
                provider_code: None,
                latency_ms: 0,
            };
            let _ = ctx.engine.failed(sender, &claim, &err, &attempt, true, "gateway").await;
            return;
        }
    };
    let m = stored.v1();
    // Wait for the local backstop; on shutdown, hand the message back untouched instead.
    tokio::select! {
        () = lane.limiter.until_ready() => {},
        () = ctx.shutdown.cancelled() => {
            if let Err(e) = ctx.engine.release(sender, &lane.spec.lane, &claim).await {
                warn!(message_id = %m.id, error = %e, "could not hand the message back; its lease will expire");
            }
            return;
        }
    }
    // The rate wait used part of the lease: a send starts only on a lease that outlasts the
    // provider's timeout and the recording of the outcome. Never on one that has moved on, which
    // would send a message that another worker is sending too.
    let mut held_until = held_until;
    if held_until.saturating_duration_since(Instant::now()) < lane.call_timeout + LEASE_MARGIN {
        let asked = Instant::now();
        match ctx.engine.renew(sender, &claim).await {
            Ok(true) => held_until = asked + ctx.engine.lease(),
            Ok(false) => {
                warn!(message_id = %m.id, "lease moved on before the send; another worker has the message");
                return;
            }
            Err(e) => {
                warn!(message_id = %m.id, error = %e, "could not extend the lease; not sending, it will be claimed again");
                return;
            }
        }
    }
    let work = deliver_leased(ctx, lane, &claim, &stored);
    tokio::select! {
        () = work => {},
        () = keep_lease(&ctx.engine, sender, &claim, held_until) => {},
    }
}

/// Sends a claimed message whose lease is held, and records the outcome.
async fn deliver_leased(ctx: &Ctx, lane: &Lane, claim: &Claimed, stored: &StoredMessage) {
    let sender = lane.spec.sender.as_str();
    let provider = lane.provider.kind();
    let m = stored.v1();
    let channel = m.message.channel().as_str();
    let n = claim.attempt + 1;
    // A root here, continued from the request that accepted the message: the lane's loop span
    // is no parent of it.
    let span = info_span!(
        parent: None,
        "attempt",
        message_id = %m.id,
        provider = %provider,
        lane = %lane.spec.lane,
        n,
        otel.name = "send",
        outcome = tracing::field::Empty,
    );
    crate::telemetry::continue_stored_trace(&span, stored.traceparent());
    let call = info_span!(
        parent: &span,
        "provider_call",
        otel.name = %format_args!("{provider} send"),
        otel.kind = "client",
        provider = %provider,
        channel,
        http.response.status_code = tracing::field::Empty,
        provider.code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if claim.redelivery {
        // An earlier attempt's outcome is unknown (a provider timeout, or a lease that ran out):
        // the provider may have the message already.
        ctx.metrics.possible_duplicates.inc();
    }
    let at = Utc::now();
    let started = Instant::now();
    let result = lane.provider.send(&m.id, &m.message).instrument(call.clone()).await;
    let latency = started.elapsed();
    if let Err(e) = &result {
        if let Some(status) = e.http_status {
            call.record("http.response.status_code", status);
        }
        if let Some(code) = &e.provider_code {
            call.record("provider.code", code.as_str());
        }
        call.record("otel.status_code", "ERROR");
    }
    drop(call);
    ctx.metrics.provider_duration.with_label_values(&[provider.as_str(), channel]).observe(latency.as_secs_f64());

    let outcome = match &result {
        Ok(_) => "submitted",
        Err(e) => e.class.label(),
    };
    span.record("outcome", outcome);
    let circuit_opened = match &result {
        Err(e) if is_outage(e) => lane.circuit.on_failure(),
        Ok(_) => {
            lane.circuit.on_success();
            false
        }
        Err(_) => {
            lane.circuit.on_answer();
            false
        }
    };
    if circuit_opened {
        warn!(lane = %lane.spec.lane, "circuit opened after repeated provider outages");
    }
    ctx.metrics.circuit_state.with_label_values(&[lane.spec.lane.as_str()]).set(match lane.circuit.state() {
        CircuitState::Closed => crate::metrics::CIRCUIT_CLOSED,
        CircuitState::HalfOpen => crate::metrics::CIRCUIT_HALF_OPEN,
        CircuitState::Open => crate::metrics::CIRCUIT_OPEN,
    });
    ctx.metrics.provider_requests.with_label_values(&[provider.as_str(), channel, outcome]).inc();
    let attempt = AttemptRecord {
        n,
        provider: provider.to_string(),
        account: lane.spec.lane.clone(),
        at,
        outcome: outcome.to_owned(),
        http_status: result.as_ref().err().and_then(|e| e.http_status),
        provider_code: result.as_ref().err().and_then(|e| e.provider_code.clone()),
        latency_ms: latency.as_millis() as u64,
    };

    let stored_ok = async {
        match result {
            Ok(receipt) => {
                // Polled later if its callbacks go missing.
                let reconcile = lane.provider.status_poll().is_some();
                let pmid = receipt.provider_message_id.as_str();
                let buffered = ctx
                    .engine
                    .submitted(sender, claim, &lane.spec.lane, provider.as_str(), pmid, &attempt, reconcile)
                    .await?;
                let ok = buffered.is_some();
                if let Some(buffered) = buffered {
                    ctx.metrics.transitions.with_label_values(&["submitted"]).inc();
                    if let Some(ts) = m.id.as_uuid().get_timestamp() {
                        let (secs, nanos) = ts.to_unix();
                        let created_ms = secs * 1000 + u64::from(nanos / 1_000_000);
                        // A scheduled message starts its clock at its due time.
                        let due_ms = m.message.send_at.map_or(0, |t| u64::try_from(t.timestamp_millis()).unwrap_or(0));
                        let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
                        let waited = now_ms.saturating_sub(created_ms.max(due_ms)) as f64 / 1000.0;
                        ctx.metrics
                            .accept_to_submitted
                            .with_label_values(&[provider.as_str(), channel])
                            .observe(waited);
                    }
                    ctx.reports.engine_status(&m.id, MessageStatus::Submitted, MessageStatus::Sending).await;
                    ctx.reports.chain_moved(&claim.id, m.chain.as_ref(), MessageStatus::Submitted).await;
                    // Callbacks that beat the send's answer here are applied now.
                    ctx.reports.apply_buffered(sender, &claim.id, buffered, None).await;
                }
                debug!(provider_message_id = %receipt.provider_message_id, "submitted");
                Ok::<bool, crate::engine::StoreError>(ok)
            }
            Err(e) => {
                let err = error_record(&e);
                let next = next_lane(stored, &lane.spec.lane);
                let decision = ctx.policy.decide(
                    &e,
                    Source::Answer,
                    Attempt { made: claim.attempt, redelivery: claim.redelivery },
                    Route { has_next: next.is_some() },
                    rand::rng().random_range(JITTER),
                );
                debug!(error = %e, decision = %decision, "attempt failed");
                match (decision, next) {
                    (Decision::FailOver, Some(next)) => {
                        let ok = ctx.engine.failover(sender, claim, next, Some(&attempt), Some(&err)).await?;
                        if ok {
                            ctx.metrics.retries.with_label_values(&["failover"]).inc();
                            if let Some(l) = ctx.lanes.get(next) {
                                l.wake.notify_one();
                            }
                        }
                        Ok(ok)
                    }
                    (Decision::Retry { after, spend, reason }, _) => {
                        ctx.metrics.retries.with_label_values(&[reason.label()]).inc();
                        ctx.engine.retry(sender, claim, &err, &attempt, after, spend, e.outcome_unknown).await
                    }
                    (Decision::PauseLane { pause, spend }, _) => {
                        ctx.metrics.lane_pauses.with_label_values(&[lane.spec.lane.as_str()]).inc();
                        ctx.engine.throttled(sender, &lane.spec.lane, claim, &attempt, pause, spend).await
                    }
                    (Decision::Fail | Decision::DeadLetter | Decision::FailOver, _) => {
                        let dead_letter = decision == Decision::DeadLetter;
                        let source = if dead_letter { "gateway" } else { provider.as_str() };
                        let ok = ctx.engine.failed(sender, claim, &err, &attempt, dead_letter, source).await?;
                        if ok {
                            ctx.metrics.transitions.with_label_values(&["failed"]).inc();
                            if dead_letter {
                                ctx.metrics.dead_letters.inc();
                            }
                            ctx.reports.engine_status(&m.id, MessageStatus::Failed, MessageStatus::Sending).await;
                            ctx.reports.chain_moved(&claim.id, m.chain.as_ref(), MessageStatus::Failed).await;
                        }
                        Ok(ok)
                    }
                }
            }
        }
    }
    .instrument(span)
    .await;

    match stored_ok {
        Ok(true) => {}
        Ok(false) => {
            warn!(message_id = %m.id, "lease lost before the outcome was recorded; another worker has the message")
        }
        // The lease will expire and the message will be sent again: at least once.
        Err(e) => warn!(message_id = %m.id, error = %e, "could not record the outcome"),
    }
}
