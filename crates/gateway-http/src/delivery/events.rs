//! Events for internal consumers (DESIGN.md §5): `message.status`, `message.inbound`,
//! `template.status`, delivered to configured subscriptions, signed per Standard Webhooks
//! (`webhook-id`, `webhook-timestamp`, `webhook-signature: v1,<HMAC-SHA256 of id.timestamp.body>`).
//!
//! Deliveries are engine jobs: each subscription has a few partitions (lanes under the hash tag
//! `{ev:<subscription>}`), an event goes to the partition of its message (or user, or template),
//! and each partition delivers one event at a time. A failed delivery stays at the head of its
//! partition, which pauses for the retry delay, so a subscriber that is down gets its events later
//! in order per message; after the last attempt the event is dead-lettered and the partition moves
//! on.
//!
//! A subscriber that is down never takes the sending path with it: each subscription's backlog is
//! bounded (`max_pending` events, none older than `max_age_secs`; the oldest beyond either are
//! dead-lettered as new ones come), a delivered event is deleted at once, and a subscription that
//! has failed without a single success for `disable_after_secs` is disabled: its backlog and every
//! new event go straight to its dead letters until `POST /v1/subscriptions/{name}/enable` or a
//! restart. Its failure state lives in Redis, so every instance sees it.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::atomic::{self, AtomicBool};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use gateway_core::retry::{Attempt, Decision, RetryPolicy, Route, Source};
use gateway_core::ProviderError;
use secrecy::ExposeSecret;
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info, info_span, warn, Instrument};

use crate::config::SubscriptionConfig;
use crate::engine::record::ErrorRecord;
use crate::engine::subscription::{Bounds, EventQueue, Failing, Health, Trimmed};
use crate::engine::{Engine, LaneSpec, StoreError};
use crate::metrics::Metrics;

/// Most events one call dead-letters, so that no script blocks Redis for long.
const TRIM_BUDGET: u64 = 1000;
/// How often each instance reads a subscription's shared failure state.
const HEALTH_INTERVAL: Duration = Duration::from_secs(1);

/// What a delivery job holds.
#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "v")]
enum EventJob {
    #[serde(rename = "1")]
    V1 {
        event_id: String,
        kind: String,
        payload: String,
        /// The trace the delivery joins: the message's, or the callback's that brought the news.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        traceparent: Option<String>,
    },
}

/// One delivery to a subscriber, as the event's record keeps it among its attempts.
#[derive(Debug, Serialize)]
struct DeliveryAttempt {
    n: u32,
    subscription: String,
    at: chrono::DateTime<Utc>,
    /// `delivered`, `failed` or `unreadable`.
    outcome: &'static str,
    http_status: Option<u16>,
    latency_ms: u64,
}

struct Partition {
    spec: LaneSpec,
    wake: Notify,
}

struct Subscription {
    config: SubscriptionConfig,
    policy: RetryPolicy,
    webhook: standardwebhooks::Webhook,
    partitions: Vec<Arc<Partition>>,
    /// Where its partitions' events wait.
    queue: EventQueue,
    /// Events each partition keeps (its share of `max_pending`).
    keep: u64,
    /// As last read from Redis (or decided here): deliveries stop, events are dead-lettered.
    disabled: AtomicBool,
}

impl Subscription {
    fn lanes(&self) -> Vec<String> {
        self.partitions.iter().map(|p| p.spec.lane.clone()).collect()
    }

    fn is_disabled(&self) -> bool {
        self.disabled.load(atomic::Ordering::Relaxed)
    }

    /// What a partition keeps: its share of `max_pending`, or nothing while disabled.
    fn bounds<'a>(&self, over_count: &'a ErrorRecord, over_age: &'a ErrorRecord) -> Bounds<'a> {
        Bounds {
            keep: if self.is_disabled() { 0 } else { self.keep },
            max_age: Some(Duration::from_secs(self.config.max_age_secs)),
            over_count,
            over_age,
            budget: TRIM_BUDGET,
        }
    }

    fn over_count(&self) -> ErrorRecord {
        if self.is_disabled() { DropReason::Disabled } else { DropReason::MaxPending }.error()
    }
}

/// Why an event was dead-lettered (`gateway_event_dead_letters_total{reason}` and the `reason` of
/// `GET /v1/event-dead-letters`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DropReason {
    /// The subscriber refused it on every attempt of the retry schedule.
    RetriesExhausted,
    /// The backlog was over `max_pending` and it was the oldest.
    MaxPending,
    /// It waited longer than `max_age_secs`.
    MaxAge,
    /// The subscription was disabled.
    Disabled,
}

impl DropReason {
    pub const ALL: [DropReason; 4] =
        [DropReason::RetriesExhausted, DropReason::MaxPending, DropReason::MaxAge, DropReason::Disabled];

    pub fn as_str(self) -> &'static str {
        match self {
            DropReason::RetriesExhausted => "retries_exhausted",
            DropReason::MaxPending => "max_pending",
            DropReason::MaxAge => "max_age",
            DropReason::Disabled => "disabled",
        }
    }

    /// The reason kept in a dead letter's error code (a subscriber's HTTP status, or none, for
    /// [`DropReason::RetriesExhausted`]).
    fn of_code(code: Option<&str>) -> Self {
        match code {
            Some("max_pending") => DropReason::MaxPending,
            Some("max_age") => DropReason::MaxAge,
            Some("disabled") => DropReason::Disabled,
            _ => DropReason::RetriesExhausted,
        }
    }

    fn error(self) -> ErrorRecord {
        let title = match self {
            DropReason::RetriesExhausted => "the subscriber did not accept the event",
            DropReason::MaxPending => "the subscription's backlog was over max_pending",
            DropReason::MaxAge => "the event waited longer than max_age_secs",
            DropReason::Disabled => "the subscription is disabled",
        };
        ErrorRecord { code: Some(self.as_str().to_owned()), title: title.to_owned(), retryable: true }
    }
}

/// An event dead letter, as the API shows it.
#[derive(Debug, Clone)]
pub struct EventDeadLetter {
    pub id: String,
    pub subscription: String,
    pub reason: DropReason,
    /// The subscriber's last HTTP status, when it answered at all.
    pub last_status: Option<u16>,
    pub attempts: u32,
    pub created_ms: i64,
    pub dead_lettered_ms: i64,
    /// The `webhook-id` and the event as it is signed and sent.
    pub event_id: String,
    pub kind: String,
    pub payload: serde_json::Value,
}

/// A subscription's state, as the API shows it.
#[derive(Debug, Clone)]
pub struct SubscriptionState {
    pub name: String,
    pub health: Health,
    pub pending: u64,
    pub max_pending: u64,
    pub max_age_secs: u64,
    pub disable_after_secs: u64,
}

/// Why an event dead letter could not be replayed.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    #[error("not an event dead letter")]
    NotFound,
    #[error("subscription `{0}` is disabled: enable it first")]
    Disabled(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// Emits events and runs their deliveries.
#[derive(Clone)]
pub struct Events {
    engine: Engine,
    subs: Arc<Vec<Subscription>>,
    metrics: Metrics,
}

/// A partition's share of a subscription's `max_pending` (rounded up, so the shares cover it).
fn share(max_pending: u64, partitions: u32) -> u64 {
    max_pending.div_ceil(u64::from(partitions.max(1)))
}

fn partition_of(key: &str, n: usize) -> usize {
    let mut h = DefaultHasher::new();
    key.hash(&mut h);
    (h.finish() % n.max(1) as u64) as usize
}

impl Events {
    /// # Errors
    /// A message naming the subscription whose secret cannot be used.
    pub fn new(engine: Engine, configs: &[SubscriptionConfig], metrics: Metrics) -> Result<Self, String> {
        let mut subs = Vec::new();
        for c in configs {
            let webhook = standardwebhooks::Webhook::new(c.secret.expose_secret())
                .map_err(|_| format!("subscriptions.{}.secret: not a Standard Webhooks secret", c.name))?;
            let partitions = (0..c.partitions)
                .map(|k| {
                    Arc::new(Partition {
                        spec: LaneSpec {
                            sender: EventQueue::of(&c.name).tag().to_owned(),
                            lane: format!("p{k}"),
                            rate_per_second: 100_000,
                            burst: 1000,
                        },
                        wake: Notify::new(),
                    })
                })
                .collect();
            for reason in DropReason::ALL {
                metrics.event_dead_letters.with_label_values(&[c.name.as_str(), reason.as_str()]);
            }
            metrics.events_queued.with_label_values(&[c.name.as_str()]);
            metrics.subscription_failing.with_label_values(&[c.name.as_str()]).set(0);
            metrics.subscription_disabled.with_label_values(&[c.name.as_str()]).set(0);
            metrics.event_backlog.with_label_values(&[c.name.as_str()]).set(0);
            subs.push(Subscription {
                queue: EventQueue::of(&c.name),
                keep: share(c.max_pending, c.partitions),
                disabled: AtomicBool::new(false),
                policy: c.retry_policy(),
                config: c.clone(),
                webhook,
                partitions,
            });
        }
        Ok(Self { engine, subs: Arc::new(subs), metrics })
    }

    /// Whether any subscription takes this event type (so building it is worth a Redis read).
    pub fn wanted(&self, kind: &str) -> bool {
        self.subs.iter().any(|s| s.config.wants(kind))
    }

    /// The same subscriptions (and wake-ups) over another connection pool.
    pub fn with_engine(&self, engine: Engine) -> Self {
        Self { engine, subs: self.subs.clone(), metrics: self.metrics.clone() }
    }

    /// Queues an event for every subscription that wants it. `order_key` keeps the events of one
    /// message (or user, or template) in one partition, so they arrive in order. `trace` is the
    /// `traceparent` its deliveries continue (a message's); without one, the current span's.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable: the event is not queued.
    pub async fn emit(
        &self,
        kind: &str,
        order_key: &str,
        data: serde_json::Value,
        trace: Option<&str>,
    ) -> Result<(), StoreError> {
        if !self.wanted(kind) {
            return Ok(());
        }
        let traceparent = trace.map(str::to_owned).or_else(|| crate::telemetry::traceparent(&tracing::Span::current()));
        let event_id = format!("msg_{}", uuid::Uuid::now_v7().simple());
        let payload = serde_json::json!({
            "type": kind,
            "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
            "data": data,
        })
        .to_string();
        for sub in self.subs.iter().filter(|s| s.config.wants(kind)) {
            let p = &sub.partitions[partition_of(order_key, sub.partitions.len())];
            let job = EventJob::V1 {
                event_id: event_id.clone(),
                kind: kind.to_owned(),
                payload: payload.clone(),
                traceparent: traceparent.clone(),
            };
            let body = serde_json::to_string(&job).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            let job_id = uuid::Uuid::now_v7().to_string();
            let (over_count, over_age) = (sub.over_count(), DropReason::MaxAge.error());
            let trimmed = self
                .engine
                .accept_event(&job_id, &sub.queue, &p.spec.lane, &body, &sub.bounds(&over_count, &over_age))
                .await?;
            self.metrics.events_queued.with_label_values(&[sub.config.name.as_str()]).inc();
            self.count_dropped(sub, trimmed);
            if !sub.is_disabled() {
                p.wake.notify_one();
            }
        }
        Ok(())
    }

    fn count_dropped(&self, sub: &Subscription, trimmed: Trimmed) {
        let name = sub.config.name.as_str();
        let over_count = if sub.is_disabled() { DropReason::Disabled } else { DropReason::MaxPending };
        if trimmed.over_count > 0 {
            self.metrics.event_dead_letters.with_label_values(&[name, over_count.as_str()]).inc_by(trimmed.over_count);
        }
        if trimmed.over_age > 0 {
            self.metrics
                .event_dead_letters
                .with_label_values(&[name, DropReason::MaxAge.as_str()])
                .inc_by(trimmed.over_age);
        }
    }

    /// Dead-letters what a partition holds beyond its bounds (everything, while disabled).
    async fn bound(&self, sub: &Subscription, p: &Partition) -> Result<u64, StoreError> {
        let (over_count, over_age) = (sub.over_count(), DropReason::MaxAge.error());
        let trimmed = self.engine.trim_backlog(&sub.queue, &p.spec.lane, &sub.bounds(&over_count, &over_age)).await?;
        self.count_dropped(sub, trimmed);
        Ok(trimmed.over_count + trimmed.over_age)
    }

    /// Dead-letters a disabled subscription's whole backlog.
    async fn flush(&self, sub: &Subscription) {
        for p in &sub.partitions {
            loop {
                match self.bound(sub, p).await {
                    Ok(n) if n >= TRIM_BUDGET => continue,
                    Ok(_) => break,
                    Err(e) => {
                        warn!(subscription = %sub.config.name, error = %e, "could not dead-letter the backlog");
                        break;
                    }
                }
            }
        }
    }

    fn find(&self, name: &str) -> Option<&Subscription> {
        self.subs.iter().find(|s| s.config.name == name)
    }

    /// The configured subscriptions' names.
    pub fn names(&self) -> Vec<String> {
        self.subs.iter().map(|s| s.config.name.clone()).collect()
    }

    /// A subscription's state; `None` when none has this name.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn state(&self, name: &str) -> Result<Option<SubscriptionState>, StoreError> {
        let Some(sub) = self.find(name) else { return Ok(None) };
        let health = self.engine.subscription_health(&sub.queue).await?;
        let pending = self.engine.backlog(&sub.queue, &sub.lanes()).await?;
        Ok(Some(SubscriptionState {
            name: sub.config.name.clone(),
            health,
            pending,
            max_pending: sub.config.max_pending,
            max_age_secs: sub.config.max_age_secs,
            disable_after_secs: sub.config.disable_after_secs,
        }))
    }

    /// Enables a subscription again (on every instance within a second); `false` when none has
    /// this name.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn enable(&self, name: &str) -> Result<bool, StoreError> {
        let Some(sub) = self.find(name) else { return Ok(false) };
        self.engine.enable_subscription(&sub.queue).await?;
        if sub.disabled.swap(false, atomic::Ordering::Relaxed) {
            info!(subscription = %name, "subscription enabled");
        }
        self.metrics.subscription_disabled.with_label_values(&[name]).set(0);
        for p in &sub.partitions {
            p.wake.notify_one();
        }
        Ok(true)
    }

    /// Event dead letters, newest first: of one subscription, or of all.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn dead_letters(&self, name: Option<&str>, limit: usize) -> Result<Vec<EventDeadLetter>, StoreError> {
        let mut out = Vec::new();
        for sub in self.subs.iter().filter(|s| name.is_none_or(|n| n == s.config.name)) {
            for d in self.engine.event_dead_letters(&sub.queue, limit).await? {
                out.push(Self::dead_letter_of(sub, d));
            }
        }
        out.sort_by_key(|d| std::cmp::Reverse((d.dead_lettered_ms, d.id.clone())));
        out.truncate(limit);
        Ok(out)
    }

    fn dead_letter_of(sub: &Subscription, d: crate::engine::subscription::EventDeadLetter) -> EventDeadLetter {
        let code = d.error.as_ref().and_then(|e| e.code.as_deref());
        let (event_id, kind, payload) = match serde_json::from_str::<EventJob>(&d.body) {
            Ok(EventJob::V1 { event_id, kind, payload, .. }) => {
                (event_id, kind, serde_json::from_str(&payload).unwrap_or(serde_json::Value::Null))
            }
            Err(_) => (String::new(), String::new(), serde_json::Value::Null),
        };
        EventDeadLetter {
            subscription: sub.config.name.clone(),
            reason: DropReason::of_code(code),
            last_status: code.and_then(|c| c.parse().ok()),
            attempts: d.attempts,
            created_ms: d.created_ms,
            dead_lettered_ms: d.dead_lettered_ms,
            id: d.id,
            event_id,
            kind,
            payload,
        }
    }

    /// Queues an event dead letter again, at the front of its partition, with a fresh retry
    /// budget. Returns it as it was.
    ///
    /// # Errors
    /// [`ReplayError`]: not a dead letter, its subscription disabled, or Redis unreachable.
    pub async fn replay(&self, id: &str) -> Result<EventDeadLetter, ReplayError> {
        for sub in self.subs.iter() {
            let Some(d) = self.engine.event_dead_letter(&sub.queue, id).await? else { continue };
            if sub.is_disabled() || self.engine.subscription_health(&sub.queue).await?.disabled_at_ms.is_some() {
                return Err(ReplayError::Disabled(sub.config.name.clone()));
            }
            let Some(lane) = self.engine.replay_event(&sub.queue, id).await? else { continue };
            if let Some(p) = sub.partitions.iter().find(|p| p.spec.lane == lane) {
                p.wake.notify_one();
            }
            return Ok(Self::dead_letter_of(sub, d));
        }
        Err(ReplayError::NotFound)
    }

    /// Starts one delivery loop per partition and one health watch per subscription; they stop
    /// when `stop` is cancelled. Starting enables every configured subscription again.
    pub fn start(&self, idle_poll: Duration, stop: CancellationToken) -> TaskTracker {
        let tracker = TaskTracker::new();
        let client = reqwest::Client::builder().build().unwrap_or_default();
        for (si, sub) in self.subs.iter().enumerate() {
            let this = self.clone();
            let watch_stop = stop.clone();
            let span = info_span!("events", subscription = %sub.config.name);
            tracker.spawn(async move { this.watch(si, watch_stop).await }.instrument(span));
            for p in &sub.partitions {
                let this = self.clone();
                let p = p.clone();
                let stop = stop.clone();
                let client = client.clone();
                let span = info_span!("events", subscription = %sub.config.name, partition = %p.spec.lane);
                tracker.spawn(async move { this.run(si, p, client, idle_poll, stop).await }.instrument(span));
            }
        }
        tracker.close();
        tracker
    }

    /// Follows the subscription's shared failure state (set by any instance), keeps its gauges,
    /// and dead-letters its backlog when it becomes disabled.
    async fn watch(&self, si: usize, stop: CancellationToken) {
        let Some(sub) = self.subs.get(si) else { return };
        let name = sub.config.name.as_str();
        let mut enabled_at_start = false;
        while !stop.is_cancelled() {
            if !enabled_at_start {
                enabled_at_start = self.engine.enable_subscription(&sub.queue).await.is_ok();
            }
            match self.engine.subscription_health(&sub.queue).await {
                Ok(h) => {
                    let disabled = h.disabled_at_ms.is_some();
                    let was = sub.disabled.swap(disabled, atomic::Ordering::Relaxed);
                    if disabled && !was {
                        warn!(subscription = %name, "subscription disabled after failing continuously");
                        self.flush(sub).await;
                    } else if !disabled && was {
                        for p in &sub.partitions {
                            p.wake.notify_one();
                        }
                    }
                    let failing =
                        h.failing_since_ms.map_or(0, |since| (Utc::now().timestamp_millis() - since).max(0) / 1000);
                    self.metrics.subscription_failing.with_label_values(&[name]).set(failing);
                    self.metrics.subscription_disabled.with_label_values(&[name]).set(i64::from(disabled));
                }
                Err(e) => debug!(error = %e, "subscription state unavailable"),
            }
            if let Ok(n) = self.engine.backlog(&sub.queue, &sub.lanes()).await {
                self.metrics.event_backlog.with_label_values(&[name]).set(i64::try_from(n).unwrap_or(i64::MAX));
            }
            tokio::select! { () = tokio::time::sleep(HEALTH_INTERVAL) => {}, () = stop.cancelled() => break }
        }
    }

    async fn run(
        &self,
        si: usize,
        p: Arc<Partition>,
        client: reqwest::Client,
        idle: Duration,
        stop: CancellationToken,
    ) {
        let Some(sub) = self.subs.get(si) else { return };
        while !stop.is_cancelled() {
            if sub.is_disabled() {
                tokio::select! {
                    () = p.wake.notified() => {},
                    () = tokio::time::sleep(HEALTH_INTERVAL) => {},
                    () = stop.cancelled() => break,
                }
                continue;
            }
            let batch = match self.engine.claim(&p.spec, 1).await {
                Ok(b) => b,
                Err(e) => {
                    warn!(error = %e, "event claim failed");
                    tokio::select! { () = tokio::time::sleep(Duration::from_millis(500)) => {}, () = stop.cancelled() => break }
                    continue;
                }
            };
            let got = !batch.items.is_empty();
            for item in batch.items {
                self.deliver(sub, &p, &client, item).await;
            }
            if got {
                continue;
            }
            let sleep = batch.wait.filter(|w| !w.is_zero()).map_or(idle, |w| w.min(idle));
            tokio::select! {
                () = p.wake.notified() => {},
                () = tokio::time::sleep(sleep) => {},
                () = stop.cancelled() => break,
            }
        }
    }

    async fn deliver(
        &self,
        sub: &Subscription,
        p: &Partition,
        client: &reqwest::Client,
        claim: crate::engine::Claimed,
    ) {
        let sender = p.spec.sender.as_str();
        let Ok(EventJob::V1 { event_id, kind, payload, traceparent }) = serde_json::from_str::<EventJob>(&claim.body)
        else {
            warn!(job = %claim.id, "unreadable event job; dropping it");
            let err =
                crate::engine::record::ErrorRecord { code: None, title: "unreadable event".into(), retryable: false };
            let attempt = self.attempt(sub, &claim, "unreadable", None, Duration::ZERO);
            let _ = self.engine.failed(sender, &claim, &err, &attempt, true, "gateway").await;
            return;
        };
        let ts = Utc::now().timestamp();
        let signature = match sub.webhook.sign(&event_id, ts, payload.as_bytes()) {
            Ok(s) => s,
            Err(e) => {
                warn!(error = %e, "cannot sign an event");
                return;
            }
        };
        // The subscription's URL stays out of the span: it may carry a token.
        let span = info_span!(
            parent: None,
            "event_delivery",
            otel.name = %format_args!("deliver {kind}"),
            otel.kind = "client",
            subscription = %sub.config.name,
            event_id = %event_id,
            event_type = %kind,
            n = claim.attempt + 1,
            http.response.status_code = tracing::field::Empty,
            otel.status_code = tracing::field::Empty,
        );
        crate::telemetry::continue_stored_trace(&span, traceparent.as_deref());
        let mut request = client
            .post(&sub.config.url)
            .timeout(Duration::from_millis(sub.config.timeout_ms))
            .header("content-type", "application/json")
            .header(standardwebhooks::HEADER_WEBHOOK_ID, &event_id)
            .header(standardwebhooks::HEADER_WEBHOOK_TIMESTAMP, ts.to_string())
            .header(standardwebhooks::HEADER_WEBHOOK_SIGNATURE, signature);
        if let Some(tp) = crate::telemetry::traceparent(&span) {
            request = request.header(crate::telemetry::TRACEPARENT, tp);
        }
        let started = Instant::now();
        let result = request.body(payload).send().instrument(span.clone()).await;
        let latency = started.elapsed();
        let status = result.as_ref().ok().map(|r| r.status().as_u16());
        let ok = status.is_some_and(|s| (200..300).contains(&s));
        if let Some(s) = status {
            span.record("http.response.status_code", s);
        }
        if !ok {
            span.record("otel.status_code", "ERROR");
        }
        drop(span);
        let attempt = self.attempt(sub, &claim, if ok { "delivered" } else { "failed" }, status, latency);
        let outcome = if ok {
            self.metrics.webhook_deliveries.with_label_values(&["delivered"]).inc();
            self.engine.event_delivered(&sub.queue, &claim).await
        } else {
            self.failed_delivery(sub, p, claim, &attempt, &event_id, &kind, status).await
        };
        if let Err(e) = outcome {
            warn!(error = %e, "could not record an event delivery; it will be retried");
        }
    }

    /// A delivery failed: the partition waits for the next retry, or the event is dead-lettered
    /// (its last attempt, or the subscription has now failed for too long).
    #[allow(clippy::too_many_arguments)]
    async fn failed_delivery(
        &self,
        sub: &Subscription,
        p: &Partition,
        claim: crate::engine::Claimed,
        attempt: &DeliveryAttempt,
        event_id: &str,
        kind: &str,
        status: Option<u16>,
    ) -> Result<bool, StoreError> {
        let sender = p.spec.sender.as_str();
        let name = sub.config.name.as_str();
        let failing =
            self.engine.subscription_failing(&sub.queue, Duration::from_secs(sub.config.disable_after_secs)).await?;
        // Disabled now, or already by another instance: this event joins the dead letters with
        // the rest of the backlog.
        if matches!(failing, Failing::DisabledNow | Failing::AlreadyDisabled) {
            let was = sub.disabled.swap(true, atomic::Ordering::Relaxed);
            if failing == Failing::DisabledNow {
                warn!(subscription = %name, "subscription disabled after failing continuously");
            }
            self.metrics.subscription_disabled.with_label_values(&[name]).set(1);
            self.metrics.webhook_deliveries.with_label_values(&["dead_lettered"]).inc();
            self.metrics.event_dead_letters.with_label_values(&[name, DropReason::Disabled.as_str()]).inc();
            let ok =
                self.engine.failed(sender, &claim, &DropReason::Disabled.error(), attempt, true, "gateway").await?;
            if !was {
                self.flush(sub).await;
            }
            return Ok(ok);
        }
        let failure = match status {
            Some(s) => ProviderError::transient(format!("the subscriber answered {s}")).with_http_status(s),
            None => ProviderError::transient("the subscriber could not be reached"),
        };
        let attempt_made = Attempt { made: claim.attempt, redelivery: claim.redelivery };
        match sub.policy.decide(&failure, Source::Answer, attempt_made, Route { has_next: false }, 1.0) {
            Decision::PauseLane { pause, spend } => {
                self.metrics.webhook_deliveries.with_label_values(&["retried"]).inc();
                debug!(event = %event_id, kind = %kind, status = ?status, "delivery failed; the partition waits");
                self.engine.throttled(sender, &p.spec.lane, &claim, attempt, pause, spend).await
            }
            decision => {
                self.metrics.webhook_deliveries.with_label_values(&["dead_lettered"]).inc();
                self.metrics.event_dead_letters.with_label_values(&[name, DropReason::RetriesExhausted.as_str()]).inc();
                warn!(event = %event_id, kind = %kind, %decision, "event delivery dead-lettered after its last attempt");
                let err = ErrorRecord {
                    code: status.map(|s| s.to_string()),
                    title: "the subscriber did not accept the event".into(),
                    retryable: true,
                };
                self.engine.failed(sender, &claim, &err, attempt, true, "gateway").await
            }
        }
    }

    fn attempt(
        &self,
        sub: &Subscription,
        claim: &crate::engine::Claimed,
        outcome: &'static str,
        status: Option<u16>,
        latency: Duration,
    ) -> DeliveryAttempt {
        DeliveryAttempt {
            n: claim.attempt + 1,
            subscription: sub.config.name.clone(),
            at: Utc::now(),
            outcome,
            http_status: status,
            latency_ms: latency.as_millis() as u64,
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    fn config(extra: &str) -> SubscriptionConfig {
        let toml = format!(
            "name = \"sink\"\nurl = \"http://127.0.0.1:9/hook\"\nsecret = \"whsec_c2FuZGJveC13ZWJob29rLXNlY3JldA==\"\n{extra}"
        );
        parse(&toml).unwrap()
    }

    fn parse(toml: &str) -> Result<SubscriptionConfig, Box<figment::Error>> {
        use figment::providers::{Format, Toml};
        figment::Figment::new().merge(Toml::string(toml)).extract().map_err(Box::new)
    }

    #[test]
    fn backlog_and_disable_settings_have_defaults() {
        let c = config("");
        assert_eq!((c.max_pending, c.max_age_secs, c.disable_after_secs), (100_000, 86_400, 86_400));
        assert!(c.validate().is_ok());
    }

    #[test]
    fn bad_backlog_and_disable_settings_name_their_key() {
        for (extra, key) in [
            ("max_pending = 0", "max_pending"),
            ("partitions = 8\nmax_pending = 7", "max_pending"),
            ("max_pending = 100000001", "max_pending"),
            ("max_age_secs = 0", "max_age_secs"),
            ("max_age_secs = 2592001", "max_age_secs"),
            ("disable_after_secs = 0", "disable_after_secs"),
            ("disable_after_secs = 2592001", "disable_after_secs"),
        ] {
            let err = config(extra).validate().expect_err(extra);
            assert_eq!(err.0, key, "{extra}: {err:?}");
        }
        assert!(parse("name = \"a\"\nurl = \"http://x\"\nsecret = \"s\"\nmax_pending = -1").is_err());
    }

    #[test]
    fn each_partition_keeps_its_share_of_max_pending() {
        assert_eq!(share(1000, 3), 334);
        assert_eq!(share(1000, 4), 250);
        assert_eq!(share(5, 1), 5);
    }

    #[test]
    fn a_dead_letter_reason_is_read_back_from_its_error_code() {
        for r in DropReason::ALL.into_iter().filter(|r| *r != DropReason::RetriesExhausted) {
            assert_eq!(DropReason::of_code(r.error().code.as_deref()), r);
        }
        assert_eq!(DropReason::of_code(Some("500")), DropReason::RetriesExhausted);
        assert_eq!(DropReason::of_code(None), DropReason::RetriesExhausted);
    }
}
