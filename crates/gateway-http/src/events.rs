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

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use gateway_core::retry::{Attempt, Decision, Ordering, RetryPolicy, RetrySchedule, Route, Source};
use gateway_core::ProviderError;
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::{debug, info_span, warn, Instrument};

use crate::engine::record::AttemptRecord;
use crate::engine::{Engine, LaneSpec, StoreError};
use crate::metrics::Metrics;

pub const MESSAGE_STATUS: &str = "message.status";
pub const MESSAGE_INBOUND: &str = "message.inbound";
pub const TEMPLATE_STATUS: &str = "template.status";
/// A fallback step was triggered (sent because the step before it did not reach the person).
pub const MESSAGE_FALLBACK: &str = "message.fallback";
pub const EVENT_TYPES: [&str; 4] = [MESSAGE_STATUS, MESSAGE_INBOUND, TEMPLATE_STATUS, MESSAGE_FALLBACK];

/// A consumer of events.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    pub name: String,
    pub url: String,
    /// Event types to deliver; `*` for all.
    #[serde(default = "all_events")]
    pub events: Vec<String>,
    /// The Standard Webhooks signing secret, `whsec_<base64>`.
    pub secret: SecretString,
    /// Deliveries in flight at once (each partition keeps its events in order).
    #[serde(default = "default_partitions")]
    pub partitions: u32,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// Delays before each retry of a failed delivery; after the last one it is dead-lettered.
    /// Never empty, never decreasing.
    #[serde(default = "default_schedule")]
    pub retry_schedule_ms: RetrySchedule,
}

impl std::fmt::Debug for SubscriptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("partitions", &self.partitions)
            .finish_non_exhaustive()
    }
}

fn all_events() -> Vec<String> {
    vec!["*".into()]
}
fn default_partitions() -> u32 {
    4
}
fn default_timeout_ms() -> u64 {
    10_000
}
/// The message schedule and a last try after half an hour more: a subscriber down for a deploy
/// loses nothing.
fn default_schedule() -> RetrySchedule {
    RetrySchedule::from_millis(&[1_000, 5_000, 30_000, 120_000, 600_000, 1_800_000]).unwrap_or_default()
}

impl SubscriptionConfig {
    /// # Errors
    /// A `(key, reason)` for the first bad setting.
    pub fn validate(&self) -> Result<(), (String, String)> {
        let bad = |k: &str, r: &str| Err((k.to_owned(), r.to_owned()));
        if self.name.is_empty() || !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return bad("name", "letters, digits, '-' and '_' only");
        }
        match url::Url::parse(&self.url) {
            Ok(u) if matches!(u.scheme(), "http" | "https") => {}
            _ => return bad("url", "an absolute http(s) URL"),
        }
        if let Some(e) = self.events.iter().find(|e| e.as_str() != "*" && !EVENT_TYPES.contains(&e.as_str())) {
            return Err((
                "events".into(),
                format!("unknown event type `{e}` (one of {}, or *)", EVENT_TYPES.join(", ")),
            ));
        }
        if standardwebhooks::Webhook::new(self.secret.expose_secret()).is_err() {
            return bad("secret", "a Standard Webhooks secret, `whsec_` and base64");
        }
        if !(1..=64).contains(&self.partitions) {
            return bad("partitions", "1 to 64");
        }
        Ok(())
    }

    /// A failed delivery keeps the head of its partition, so events of one message stay in order.
    fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { schedule: self.retry_schedule_ms.clone(), ordering: Ordering::InOrder }
    }

    fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

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

struct Partition {
    spec: LaneSpec,
    wake: Notify,
}

struct Subscription {
    config: SubscriptionConfig,
    policy: RetryPolicy,
    webhook: standardwebhooks::Webhook,
    partitions: Vec<Arc<Partition>>,
}

/// Emits events and runs their deliveries.
#[derive(Clone)]
pub struct Events {
    engine: Engine,
    subs: Arc<Vec<Subscription>>,
    metrics: Metrics,
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
                            sender: format!("ev:{}", c.name),
                            lane: format!("p{k}"),
                            rate_per_second: 100_000,
                            burst: 1000,
                        },
                        wake: Notify::new(),
                    })
                })
                .collect();
            subs.push(Subscription { config: c.clone(), policy: c.retry_policy(), webhook, partitions });
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
            self.engine.accept_job(&job_id, &p.spec.sender, &p.spec.lane, &body, 0, false).await?;
            p.wake.notify_one();
        }
        Ok(())
    }

    /// Starts one delivery loop per partition; they stop when `stop` is cancelled.
    pub fn start(&self, idle_poll: Duration, stop: CancellationToken) -> TaskTracker {
        let tracker = TaskTracker::new();
        let client = reqwest::Client::builder().build().unwrap_or_default();
        for (si, sub) in self.subs.iter().enumerate() {
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
            self.engine
                .submitted(sender, &claim, &p.spec.lane, "webhook", "", &attempt, false)
                .await
                .map(|r| r.is_some())
        } else {
            let failure = match status {
                Some(s) => ProviderError::transient(format!("the subscriber answered {s}")).with_http_status(s),
                None => ProviderError::transient("the subscriber could not be reached"),
            };
            let attempt_made = Attempt { made: claim.attempt, redelivery: claim.redelivery };
            match sub.policy.decide(&failure, Source::Answer, attempt_made, Route { has_next: false }, 1.0) {
                Decision::PauseLane { pause, spend } => {
                    self.metrics.webhook_deliveries.with_label_values(&["retried"]).inc();
                    debug!(event = %event_id, kind = %kind, status = ?status, "delivery failed; the partition waits");
                    self.engine.throttled(sender, &p.spec.lane, &claim, &attempt, pause, spend).await
                }
                decision => {
                    self.metrics.webhook_deliveries.with_label_values(&["dead_lettered"]).inc();
                    warn!(event = %event_id, kind = %kind, %decision, "event delivery dead-lettered after its last attempt");
                    let err = crate::engine::record::ErrorRecord {
                        code: status.map(|s| s.to_string()),
                        title: "the subscriber did not accept the event".into(),
                        retryable: true,
                    };
                    self.engine.failed(sender, &claim, &err, &attempt, true, "gateway").await
                }
            }
        };
        if let Err(e) = outcome {
            warn!(error = %e, "could not record an event delivery; it will be retried");
        }
    }

    fn attempt(
        &self,
        sub: &Subscription,
        claim: &crate::engine::Claimed,
        outcome: &str,
        status: Option<u16>,
        latency: Duration,
    ) -> AttemptRecord {
        AttemptRecord {
            n: claim.attempt + 1,
            provider: "webhook".into(),
            account: sub.config.name.clone(),
            at: Utc::now(),
            outcome: outcome.to_owned(),
            http_status: status,
            provider_code: None,
            latency_ms: latency.as_millis() as u64,
        }
    }
}
