//! Prometheus metrics, in one registry owned by the application (no process globals), so tests can
//! run several gateways in one process. Label values are bounded: route templates, not paths; no
//! ids, no phone numbers.

use gateway_core::{Channel, MessageStatus, ProviderKind};
use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry, TextEncoder,
};

#[derive(Clone)]
pub struct Metrics {
    registry: Registry,
    pub http_requests: IntCounterVec,
    pub http_duration: HistogramVec,
    pub accepted: IntCounterVec,
    pub provider_requests: IntCounterVec,
    pub provider_duration: HistogramVec,
    pub transitions: IntCounterVec,
    pub retries: IntCounterVec,
    pub lane_pauses: IntCounterVec,
    pub possible_duplicates: IntCounter,
    pub dead_letters: IntCounter,
    pub accept_to_submitted: HistogramVec,
    pub accept_to_delivered: HistogramVec,
    pub queue_depth: IntGaugeVec,
    pub lane_paused: IntGaugeVec,
    pub sender_paused: IntGaugeVec,
    pub rate_limit_hits: IntCounterVec,
    pub circuit_state: IntGaugeVec,
    pub callbacks: IntCounterVec,
    pub webhook_deliveries: IntCounterVec,
    pub events_queued: IntCounterVec,
    pub event_dead_letters: IntCounterVec,
    pub subscription_failing: IntGaugeVec,
    pub subscription_disabled: IntGaugeVec,
    pub event_backlog: IntGaugeVec,
    pub api_rate_limited: IntCounterVec,
    pub redis_up: IntGauge,
    pub early_reports_buffered: IntGauge,
    pub redis_memory_used: IntGauge,
    pub redis_memory_max: IntGauge,
    pub memory_guard: IntGauge,
    pub requests_shed: IntCounterVec,
    pub early_reports_dropped: IntCounter,
    pub fallbacks: IntCounterVec,
    pub fallback_late_success: IntCounter,
}

/// `gateway_circuit_state` values.
pub const CIRCUIT_CLOSED: i64 = 0;
pub const CIRCUIT_HALF_OPEN: i64 = 1;
pub const CIRCUIT_OPEN: i64 = 2;

/// `gateway_provider_requests_total` outcomes: `submitted` or the error class's label.
const PROVIDER_OUTCOMES: [&str; 6] =
    ["submitted", "rejected", "rejected_account", "throttled", "throttled_recipient", "transient"];
/// `gateway_retries_total` reasons.
const RETRY_REASONS: [&str; 5] = ["failover", "pair_rate", "timeout", "server_error", "network"];
/// `gateway_fallbacks_total` reasons.
const FALLBACK_REASONS: [&str; 4] = ["failed", "expired", "cancelled", "timeout"];
/// `gateway_requests_shed_total` reasons.
pub const SHED_REASONS: [&str; 3] = ["memory_guard", "api_busy", "callbacks_busy"];
/// `gateway_webhook_deliveries_total` outcomes.
const WEBHOOK_OUTCOMES: [&str; 3] = ["delivered", "retried", "dead_lettered"];
/// The `gateway_callbacks_total` (event, outcome) pairs a dashboard reads on a normal day.
const CALLBACK_OUTCOMES: [(&str, &str); 5] =
    [("status", "ok"), ("inbound", "ok"), ("template", "ok"), ("unknown", "malformed"), ("unknown", "unknown_event")];

const LATENCY_BUCKETS: &[f64] = &[0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0];

impl Metrics {
    /// # Errors
    /// Only if two families were given one name (a programming error found at start-up).
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let counter = |name: &str, help: &str, labels: &[&str]| -> Result<IntCounterVec, prometheus::Error> {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok(c)
        };
        let histogram =
            |name: &str, help: &str, labels: &[&str], buckets: &[f64]| -> Result<HistogramVec, prometheus::Error> {
                let h = HistogramVec::new(HistogramOpts::new(name, help).buckets(buckets.to_vec()), labels)?;
                registry.register(Box::new(h.clone()))?;
                Ok(h)
            };
        let possible_duplicates = IntCounter::new(
            "gateway_possible_duplicates_total",
            "Sends of a message whose earlier attempt has an unknown outcome (a provider timeout, or a lease that ran out), so the provider may already have it",
        )?;
        registry.register(Box::new(possible_duplicates.clone()))?;
        let gauge = |name: &str, help: &str, labels: &[&str]| -> Result<IntGaugeVec, prometheus::Error> {
            let g = IntGaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let redis_up = IntGauge::new("gateway_redis_up", "1 when the last Redis health probe succeeded")?;
        registry.register(Box::new(redis_up.clone()))?;
        let early_reports_buffered = IntGauge::new(
            "gateway_early_reports_buffered",
            "Provider message ids with status reports waiting for their send's answer (bounded by engine.report_buffer_cap)",
        )?;
        registry.register(Box::new(early_reports_buffered.clone()))?;
        let early_reports_dropped = IntCounter::new(
            "gateway_early_reports_dropped_total",
            "Status reports for unknown provider ids dropped to keep the buffer within its bounds",
        )?;
        registry.register(Box::new(early_reports_dropped.clone()))?;
        let int_gauge = |name: &str, help: &str| -> Result<IntGauge, prometheus::Error> {
            let g = IntGauge::new(name, help)?;
            registry.register(Box::new(g.clone()))?;
            Ok(g)
        };
        let redis_memory_used =
            int_gauge("gateway_redis_memory_used_bytes", "Redis used_memory at the last sample (the fullest node)")?;
        let redis_memory_max =
            int_gauge("gateway_redis_maxmemory_bytes", "Redis maxmemory at the last sample (0: no limit)")?;
        let memory_guard = int_gauge(
            "gateway_memory_guard_engaged",
            "1 while Redis memory is above admission.memory_guard of maxmemory and new sends are refused",
        )?;
        let dead_letters =
            IntCounter::new("gateway_dead_letters_total", "Messages dead-lettered after their last attempt")?;
        registry.register(Box::new(dead_letters.clone()))?;
        let fallback_late_success = IntCounter::new(
            "gateway_fallback_late_success_total",
            "Fallback steps that reached their status after the next step had been sent (both went out)",
        )?;
        registry.register(Box::new(fallback_late_success.clone()))?;
        Ok(Self {
            fallbacks: counter(
                "gateway_fallbacks_total",
                "Fallback steps sent, by the channel left, the channel taken and why (failed, expired, cancelled, timeout)",
                &["from", "to", "reason"],
            )?,
            fallback_late_success,
            http_requests: counter(
                "gateway_http_requests_total",
                "HTTP requests by route template and status",
                &["method", "route", "status"],
            )?,
            http_duration: histogram(
                "gateway_http_request_duration_seconds",
                "HTTP request latency",
                &["method", "route"],
                LATENCY_BUCKETS,
            )?,
            accepted: counter(
                "gateway_messages_accepted_total",
                "Messages accepted (202) by channel and type",
                &["channel", "type"],
            )?,
            provider_requests: counter(
                "gateway_provider_requests_total",
                "Provider calls by provider, channel and outcome",
                &["provider", "channel", "outcome"],
            )?,
            provider_duration: histogram(
                "gateway_provider_request_duration_seconds",
                "Provider call latency",
                &["provider", "channel"],
                LATENCY_BUCKETS,
            )?,
            transitions: counter(
                "gateway_status_transitions_total",
                "Message status changes by new status",
                &["status"],
            )?,
            retries: counter("gateway_retries_total", "Retries scheduled, by reason", &["reason"])?,
            lane_pauses: counter("gateway_lane_pauses_total", "Lane pauses caused by provider throttling", &["lane"])?,
            accept_to_submitted: histogram(
                "gateway_accept_to_submitted_seconds",
                "Time from acceptance to the provider's acceptance",
                &["provider", "channel"],
                LATENCY_BUCKETS,
            )?,
            accept_to_delivered: histogram(
                "gateway_accept_to_delivered_seconds",
                "Time from acceptance to the provider's delivered report",
                &["provider", "channel"],
                &[0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0],
            )?,
            queue_depth: gauge(
                "gateway_queue_depth",
                "Messages per lane and state (ready, scheduled, in_flight, dead_letter)",
                &["lane", "state"],
            )?,
            lane_paused: gauge("gateway_lane_paused", "1 while a lane is paused by provider throttling", &["lane"])?,
            sender_paused: gauge(
                "gateway_sender_paused_seconds",
                "How long an operator has had the sender paused (0 while it is not)",
                &["sender"],
            )?,
            rate_limit_hits: counter(
                "gateway_rate_limit_hits_total",
                "Times a lane had work but its rate allowed none",
                &["lane"],
            )?,
            circuit_state: gauge(
                "gateway_circuit_state",
                "Circuit breaker per provider account: 0 closed, 1 half-open, 2 open",
                &["lane"],
            )?,
            callbacks: counter(
                "gateway_callbacks_total",
                "Provider callbacks by provider, event and outcome",
                &["provider", "event", "outcome"],
            )?,
            webhook_deliveries: counter(
                "gateway_webhook_deliveries_total",
                "Event deliveries to internal subscribers by outcome",
                &["outcome"],
            )?,
            events_queued: counter(
                "gateway_events_queued_total",
                "Events queued for delivery, per subscription",
                &["subscription"],
            )?,
            event_dead_letters: counter(
                "gateway_event_dead_letters_total",
                "Events dead-lettered instead of delivered, by subscription and reason (retries_exhausted, max_pending, max_age, disabled)",
                &["subscription", "reason"],
            )?,
            subscription_failing: gauge(
                "gateway_subscription_failing_seconds",
                "How long every delivery to the subscription has failed (0 while it is healthy)",
                &["subscription"],
            )?,
            subscription_disabled: gauge(
                "gateway_subscription_disabled",
                "1 while the subscription is disabled after failing continuously",
                &["subscription"],
            )?,
            event_backlog: gauge(
                "gateway_event_backlog",
                "Events waiting for delivery, per subscription (bounded by its max_pending)",
                &["subscription"],
            )?,
            api_rate_limited: counter(
                "gateway_api_rate_limited_total",
                "API requests refused by the per-key rate limit",
                &["key"],
            )?,
            redis_up,
            early_reports_buffered,
            early_reports_dropped,
            redis_memory_used,
            redis_memory_max,
            memory_guard,
            requests_shed: counter(
                "gateway_requests_shed_total",
                "Requests refused with 503 before any work: memory_guard (new sends while Redis is nearly full), api_busy, callbacks_busy (beyond the budget of requests in flight)",
                &["reason"],
            )?,
            possible_duplicates,
            dead_letters,
            registry,
        })
    }

    /// Creates, at 0, every series whose labels are known at start-up, so that dashboards and
    /// alerts show 0 rather than "No data" before the first event. `lanes` are
    /// `(sender, account, provider, channel)`, each sender's accounts in order; `api_keys` the key
    /// names.
    pub fn initialise(&self, lanes: &[(String, String, ProviderKind, Channel)], api_keys: &[String]) {
        for channel in [Channel::Whatsapp, Channel::Viber, Channel::Rcs] {
            for kind in channel.content_types() {
                self.accepted.with_label_values(&[channel.as_str(), kind.as_str()]);
            }
        }
        for status in MessageStatus::ALL {
            self.transitions.with_label_values(&[status.as_str()]);
        }
        for reason in RETRY_REASONS {
            self.retries.with_label_values(&[reason]);
        }
        let channels = [Channel::Whatsapp, Channel::Viber, Channel::Rcs];
        for (from, to) in channels.iter().flat_map(|f| channels.iter().map(move |t| (f, t))) {
            for reason in FALLBACK_REASONS {
                self.fallbacks.with_label_values(&[from.as_str(), to.as_str(), reason]);
            }
        }
        for outcome in WEBHOOK_OUTCOMES {
            self.webhook_deliveries.with_label_values(&[outcome]);
        }
        for reason in SHED_REASONS {
            self.requests_shed.with_label_values(&[reason]);
        }
        for key in api_keys {
            self.api_rate_limited.with_label_values(&[key.as_str()]);
        }
        let mut senders_seen = std::collections::BTreeSet::new();
        for (sender, lane, provider, channel) in lanes {
            let (provider, channel, lane) = (provider.as_str(), channel.as_str(), lane.as_str());
            for outcome in PROVIDER_OUTCOMES {
                self.provider_requests.with_label_values(&[provider, channel, outcome]);
            }
            self.provider_duration.with_label_values(&[provider, channel]);
            self.accept_to_submitted.with_label_values(&[provider, channel]);
            self.accept_to_delivered.with_label_values(&[provider, "all"]);
            self.lane_pauses.with_label_values(&[lane]);
            self.rate_limit_hits.with_label_values(&[lane]);
            self.circuit_state.with_label_values(&[lane]).set(CIRCUIT_CLOSED);
            self.lane_paused.with_label_values(&[lane]).set(0);
            self.queue_depth.with_label_values(&[lane, "ready"]).set(0);
            // Scheduled, in-flight and dead-lettered messages are shown on a sender's first lane
            // (see the sampler).
            if senders_seen.insert(sender.clone()) {
                for state in ["scheduled", "in_flight", "dead_letter"] {
                    self.queue_depth.with_label_values(&[lane, state]).set(0);
                }
            }
            for (event, outcome) in CALLBACK_OUTCOMES {
                self.callbacks.with_label_values(&[provider, event, outcome]);
            }
        }
    }

    /// Creates, at 0, the HTTP series of every documented (method, route, status): the API
    /// document is the list of what the routes answer.
    pub fn initialise_routes(&self, spec: &serde_json::Value) {
        for (route, item) in spec["paths"].as_object().into_iter().flatten() {
            for (method, op) in item.as_object().into_iter().flatten() {
                let method = method.to_ascii_uppercase();
                self.http_duration.with_label_values(&[method.as_str(), route.as_str()]);
                for status in op["responses"].as_object().into_iter().flatten().map(|(s, _)| s) {
                    self.http_requests.with_label_values(&[method.as_str(), route.as_str(), status.as_str()]);
                }
            }
        }
    }

    pub fn registry(&self) -> &Registry {
        &self.registry
    }

    /// The Prometheus text exposition of every family.
    pub fn render(&self) -> String {
        let mut buf = Vec::new();
        let encoder = TextEncoder::new();
        if encoder.encode(&self.registry.gather(), &mut buf).is_err() {
            return String::new();
        }
        String::from_utf8(buf).unwrap_or_default()
    }
}
