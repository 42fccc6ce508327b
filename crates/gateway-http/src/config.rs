//! Configuration: one TOML file layered with `GATEWAY__SECTION__KEY` environment variables,
//! validated once at start-up. Secrets are `secrecy` types: they never reach `Debug`, logs or errors.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::Path;

use crate::providers::ProviderSettings;
use figment::providers::{Env, Format, Toml};
use figment::Figment;
use gateway_core::content::ContentType;
use gateway_core::retry::{check_lease, Ordering, RetryPolicy, RetrySchedule};
use gateway_core::{Channel, ProviderKind};
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("configuration: {0}")]
    Load(Box<figment::Error>),
    #[error("configuration key `{key}`: {reason}")]
    Invalid { key: String, reason: String },
}

fn invalid(key: impl Into<String>, reason: impl Into<String>) -> ConfigError {
    ConfigError::Invalid { key: key.into(), reason: reason.into() }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    #[serde(default)]
    pub server: ServerConfig,
    pub redis: RedisConfig,
    #[serde(default)]
    pub engine: EngineConfig,
    #[serde(default)]
    pub api_keys: Vec<ApiKeyConfig>,
    #[serde(default)]
    pub accounts: Vec<AccountConfig>,
    #[serde(default)]
    pub senders: Vec<SenderConfig>,
    /// Routing rules, first match wins (DESIGN.md §4).
    #[serde(default)]
    pub routes: Vec<RouteConfig>,
    /// Internal consumers of events (DESIGN.md §5).
    #[serde(default)]
    pub subscriptions: Vec<SubscriptionConfig>,
    /// OpenTelemetry export (off unless an endpoint is given).
    #[serde(default)]
    pub tracing: crate::telemetry::TracingConfig,
    /// Requests in flight and the Redis memory guard (see `admission`).
    #[serde(default)]
    pub admission: AdmissionConfig,
}

/// A routing rule: when every given condition matches, try these accounts in this order. Accounts
/// that do not belong to the message's sender are passed over; a rule that leaves none does not
/// match.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteConfig {
    #[serde(default)]
    pub channel: Option<Channel>,
    #[serde(default)]
    pub sender: Option<String>,
    /// Recipient number prefixes (country codes), any of which matches.
    #[serde(default)]
    pub country_prefixes: Vec<String>,
    /// Content types, any of which matches; an interactive sub-type is written
    /// `interactive.carousel`.
    #[serde(default)]
    pub types: Vec<String>,
    pub accounts: Vec<String>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct ServerConfig {
    pub listen: SocketAddr,
    /// Request bodies above this size get 413.
    pub max_body_bytes: usize,
    /// The same for `POST /v1/messages/batch` (up to 1000 messages).
    pub max_batch_body_bytes: usize,
    pub workers: usize,
    /// Seconds in-flight requests and sends get to finish on SIGTERM.
    pub shutdown_grace_secs: u64,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            max_body_bytes: 1024 * 1024,
            max_batch_body_bytes: 32 * 1024 * 1024,
            workers: 2,
            shutdown_grace_secs: 20,
        }
    }
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RedisConfig {
    /// `redis://[:password@]host:port[/db]`; secret because it may hold a password.
    pub url: SecretString,
    #[serde(default = "default_key_prefix")]
    pub key_prefix: String,
    /// A Redis call that takes longer fails, and the API answers 503.
    #[serde(default = "default_redis_timeout_ms")]
    pub timeout_ms: u64,
    /// A Redis Cluster: `url` then lists seed nodes separated by commas.
    #[serde(default)]
    pub cluster: bool,
    /// Replicas that must confirm an accepted message (Redis `WAIT`) before the API answers 202;
    /// 0: the primary alone.
    #[serde(default)]
    pub wait_replicas: u32,
    /// How long the API waits for those replicas before it answers 503.
    #[serde(default = "default_wait_timeout_ms")]
    pub wait_timeout_ms: u64,
}

/// The most replicas `wait_replicas` may ask for: beyond it, a typo.
pub const MAX_WAIT_REPLICAS: u32 = 16;

fn default_wait_timeout_ms() -> u64 {
    500
}

fn default_key_prefix() -> String {
    "gw".into()
}
fn default_redis_timeout_ms() -> u64 {
    2000
}

impl std::fmt::Debug for RedisConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RedisConfig")
            .field("url", &"[redacted]")
            .field("key_prefix", &self.key_prefix)
            .field("timeout_ms", &self.timeout_ms)
            .field("cluster", &self.cluster)
            .field("wait_replicas", &self.wait_replicas)
            .field("wait_timeout_ms", &self.wait_timeout_ms)
            .finish()
    }
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct EngineConfig {
    /// How long a claimed message may stay unacknowledged before another worker takes it again.
    pub lease_ms: u64,
    /// How long a message record is kept after its last change once it is with the provider or final.
    pub retention_secs: u64,
    /// How long an `Idempotency-Key` keeps its answer (a retry within it gets the same answer).
    pub idempotency_retention_secs: u64,
    /// Delays before each retry of a transient failure; one entry per retry, jittered by ±20 %.
    /// After the last one the message fails. Never empty, never decreasing.
    pub retry_schedule_ms: RetrySchedule,
    /// Provider calls in flight per lane and process.
    pub concurrency_per_lane: usize,
    /// How often an idle worker looks for work queued by other instances, in milliseconds, while
    /// this process does not hear the engine's wake-ups (`<prefix>:wake`); while it does, the
    /// wait after a look that found work.
    pub idle_poll_ms: u64,
    /// How long an idle lane waits between looks for work while wake-ups are heard (a quarter
    /// less at random), unless its last look said something is due sooner: the safety net for a
    /// lost wake-up, which then costs this much latency at most. 5 minutes: with 1,000 accounts,
    /// about 4 looks a second.
    pub idle_max_ms: u64,
    /// Whether this process runs delivery workers (an API-only process does not).
    pub dispatch: bool,
    /// Dead letters kept per sender; beyond it the oldest are dropped.
    pub dead_letter_cap: usize,
    /// Provider message ids whose status reports may wait for their send's answer (reports that
    /// came first); beyond it the ids written longest ago are dropped with their reports.
    pub report_buffer_cap: usize,
    /// Consecutive 5xx/timeout failures that open an account's circuit.
    pub circuit_failure_threshold: u32,
    /// How long an open circuit stays open before one probe is let through.
    pub circuit_open_ms: u64,
    /// How often queue depths are sampled into the metrics, in milliseconds.
    pub sample_interval_ms: u64,
    /// A submitted INCS message with no status news for this long has its status polled.
    pub reconcile_after_secs: u64,
    /// How often the reconciliation looks for such messages, in milliseconds.
    pub reconcile_interval_ms: u64,
    /// How one account shares its sends between the priority classes that have messages waiting:
    /// each waiting class gets its weight's share (see the engine's module documentation).
    pub priority_weights: PriorityWeights,
}

/// Claim weights of the priority classes. With `high`, `normal` and `bulk` all waiting, they get
/// `high / (high + normal + bulk)` of the sends, and so on; a class that waits for nothing takes
/// nothing, so a lone class gets every send.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct PriorityWeights {
    pub high: u32,
    pub normal: u32,
    pub bulk: u32,
}

impl Default for PriorityWeights {
    fn default() -> Self {
        Self { high: 10, normal: 4, bulk: 1 }
    }
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            lease_ms: 30_000,
            retention_secs: 7 * 24 * 3600,
            idempotency_retention_secs: 24 * 3600,
            retry_schedule_ms: RetrySchedule::default(),
            concurrency_per_lane: 256,
            idle_poll_ms: 200,
            idle_max_ms: 300_000,
            dispatch: true,
            dead_letter_cap: 10_000,
            report_buffer_cap: 10_000,
            circuit_failure_threshold: 5,
            circuit_open_ms: 30_000,
            sample_interval_ms: 5_000,
            reconcile_after_secs: 900,
            reconcile_interval_ms: 30_000,
            priority_weights: PriorityWeights::default(),
        }
    }
}

impl EngineConfig {
    /// How message delivery retries: the schedule, each message on its own.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { schedule: self.retry_schedule_ms.clone(), ordering: Ordering::Independent }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    Send,
    Read,
    Admin,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiKeyConfig {
    pub name: String,
    /// Hex SHA-256 of the key. Keys are long random strings, so a plain hash is enough to make a
    /// leaked config useless; the key itself is never stored.
    pub sha256: SecretString,
    pub scopes: Vec<Scope>,
    /// Requests per second this key may make (a burst of twice that is allowed).
    #[serde(default = "default_key_rate")]
    pub rate_per_second: u32,
}

fn default_key_rate() -> u32 {
    1000
}

impl std::fmt::Debug for ApiKeyConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ApiKeyConfig")
            .field("name", &self.name)
            .field("scopes", &self.scopes)
            .field("rate_per_second", &self.rate_per_second)
            .finish_non_exhaustive()
    }
}

/// One provider account: a credential set for one business number at one provider. It is also
/// the lane: its queue, rate and pause are its own.
#[derive(Debug, Clone, Deserialize)]
#[serde(try_from = "crate::providers::WrittenAccount")]
pub struct AccountConfig {
    pub name: String,
    /// The provider, with its own settings.
    pub settings: ProviderSettings,
    /// Messages per second this account may send (WhatsApp default: 80).
    pub rate_per_second: u32,
    /// Messages the lane may send at once above its rate after being idle (GCRA tolerance).
    pub burst: u32,
    /// The secret in this account's callback URL (`/callbacks/<provider>/<token>`).
    pub callback_token: Option<SecretString>,
    /// Static headers the provider adds to its callbacks (InnoPaaS: configured in its console),
    /// checked on every callback, e.g. `{ Authorization = "..." }`.
    pub webhook_headers: std::collections::BTreeMap<String, SecretString>,
}

impl AccountConfig {
    pub fn provider(&self) -> ProviderKind {
        self.settings.kind()
    }

    /// The longest a send to this account waits for its answer.
    pub fn provider_timeout(&self) -> std::time::Duration {
        self.settings.timeout().1
    }
}

pub(crate) fn default_rate() -> u32 {
    80
}
pub(crate) fn default_burst() -> u32 {
    10
}

/// A business identity callers name in `sender`: a channel and the accounts that can send for it,
/// in order of preference.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SenderConfig {
    pub name: String,
    pub channel: Channel,
    /// The channel's default sender, used when a request names none.
    #[serde(default)]
    pub default: bool,
    pub accounts: Vec<String>,
    /// Refuse (422) non-template WhatsApp messages to users who have not written within 24 hours,
    /// instead of letting the provider fail them (Meta 131047).
    #[serde(default)]
    pub enforce_session_window: bool,
    /// The priority of this sender's messages that name none.
    #[serde(default)]
    pub default_priority: Option<gateway_core::Priority>,
    /// The validity of this sender's messages that give no `ttl_seconds` (1 s to 30 days).
    #[serde(default)]
    pub default_ttl_seconds: Option<u32>,
}

// The event types a subscription can ask for (`subscriptions[].events`).
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
    /// Most events waiting for delivery (shared evenly by the partitions); beyond it the oldest
    /// are dead-lettered.
    #[serde(default = "default_max_pending")]
    pub max_pending: u64,
    /// Events waiting longer than this are dead-lettered.
    #[serde(default = "default_max_age_secs")]
    pub max_age_secs: u64,
    /// A subscription whose deliveries all failed for this long is disabled.
    #[serde(default = "default_disable_after_secs")]
    pub disable_after_secs: u64,
}

impl std::fmt::Debug for SubscriptionConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SubscriptionConfig")
            .field("name", &self.name)
            .field("url", &self.url)
            .field("events", &self.events)
            .field("partitions", &self.partitions)
            .field("max_pending", &self.max_pending)
            .field("max_age_secs", &self.max_age_secs)
            .field("disable_after_secs", &self.disable_after_secs)
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
fn default_max_pending() -> u64 {
    100_000
}
fn default_max_age_secs() -> u64 {
    24 * 3600
}
fn default_disable_after_secs() -> u64 {
    24 * 3600
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
        if self.max_pending < u64::from(self.partitions) || self.max_pending > 100_000_000 {
            return bad("max_pending", "at least `partitions` (each partition keeps its share), at most 100000000");
        }
        if !(1..=30 * 24 * 3600).contains(&self.max_age_secs) {
            return bad("max_age_secs", "1 to 2592000 (30 days)");
        }
        if !(1..=30 * 24 * 3600).contains(&self.disable_after_secs) {
            return bad("disable_after_secs", "1 to 2592000 (30 days)");
        }
        Ok(())
    }

    /// A failed delivery keeps the head of its partition, so events of one message stay in order.
    pub fn retry_policy(&self) -> RetryPolicy {
        RetryPolicy { schedule: self.retry_schedule_ms.clone(), ordering: Ordering::InOrder }
    }

    pub fn wants(&self, kind: &str) -> bool {
        self.events.iter().any(|e| e == "*" || e == kind)
    }
}

/// `[admission]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdmissionConfig {
    /// API requests (`/v1/...`) handled at once by one process. Twice the 64 concurrent sends
    /// that keep a 2-core instance's accept path at its ceiling (`make bench`, S2); more would
    /// only queue sends that are answered late under overload, and take CPU from the refusals
    /// and callbacks.
    pub max_in_flight: usize,
    /// How long a request beyond its budget waits for a place before it is refused, in ms.
    pub max_wait_ms: u64,
    /// Provider callbacks handled at once by one process: a budget of their own.
    pub callbacks_max_in_flight: usize,
    /// How long a callback beyond its budget waits for a place, in ms: longer than a send, since
    /// a provider may not send a refused callback again.
    pub callbacks_max_wait_ms: u64,
    /// New sends are refused while Redis's `used_memory` is above this fraction of `maxmemory`.
    pub memory_guard: f64,
    /// How often Redis's memory is sampled, in ms.
    pub memory_sample_ms: u64,
}

impl Default for AdmissionConfig {
    fn default() -> Self {
        Self {
            max_in_flight: 128,
            max_wait_ms: 10,
            callbacks_max_in_flight: 1024,
            callbacks_max_wait_ms: 1000,
            memory_guard: 0.9,
            memory_sample_ms: 1000,
        }
    }
}

impl AdmissionConfig {
    /// # Errors
    /// `(key, reason)` of the first setting out of range.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if !(1..=100_000).contains(&self.max_in_flight) {
            return Err(("max_in_flight", "1 to 100000"));
        }
        if self.max_wait_ms > 10_000 {
            return Err(("max_wait_ms", "0 to 10000"));
        }
        if !(1..=100_000).contains(&self.callbacks_max_in_flight) {
            return Err(("callbacks_max_in_flight", "1 to 100000"));
        }
        if self.callbacks_max_wait_ms > 30_000 {
            return Err(("callbacks_max_wait_ms", "0 to 30000"));
        }
        if !(self.memory_guard > 0.0 && self.memory_guard <= 1.0) {
            return Err(("memory_guard", "a fraction above 0 and at most 1"));
        }
        if !(100..=60_000).contains(&self.memory_sample_ms) {
            return Err(("memory_sample_ms", "100 to 60000"));
        }
        Ok(())
    }
}

impl Config {
    /// Loads the TOML file (if any) and `GATEWAY__…` variables, then validates.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key at fault.
    pub fn load(path: Option<&Path>) -> Result<Self, ConfigError> {
        let mut figment = Figment::new();
        if let Some(path) = path {
            if !path.exists() {
                return Err(invalid("--config", format!("file {} does not exist", path.display())));
            }
            figment = figment.merge(Toml::file(path));
        }
        figment = figment.merge(Env::prefixed("GATEWAY__").split("__").lowercase(true));
        let config: Config = figment.extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// Parses a TOML string (tests, tools) and validates it.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the key at fault.
    pub fn from_toml(toml: &str) -> Result<Self, ConfigError> {
        let config: Config =
            Figment::new().merge(Toml::string(toml)).extract().map_err(|e| ConfigError::Load(Box::new(e)))?;
        config.validate()?;
        Ok(config)
    }

    /// # Errors
    /// A [`ConfigError`] naming the key at fault.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if self.server.max_body_bytes < 1024 {
            return Err(invalid("server.max_body_bytes", "at least 1024"));
        }
        if self.server.workers == 0 {
            return Err(invalid("server.workers", "at least 1"));
        }
        let url = self.redis.url.expose_secret();
        if !(url.starts_with("redis://") || url.starts_with("rediss://") || url.starts_with("redis+unix://")) {
            return Err(invalid("redis.url", "must start with redis://, rediss:// or redis+unix://"));
        }
        if self.redis.key_prefix.is_empty() || self.redis.key_prefix.contains(['{', '}', ' ']) {
            return Err(invalid("redis.key_prefix", "non-empty, without braces or spaces"));
        }
        if self.redis.wait_replicas > MAX_WAIT_REPLICAS {
            return Err(invalid("redis.wait_replicas", format!("at most {MAX_WAIT_REPLICAS}")));
        }
        if self.redis.wait_replicas > 0
            && (self.redis.wait_timeout_ms == 0 || self.redis.wait_timeout_ms >= self.redis.timeout_ms)
        {
            // The WAIT must answer within the Redis call's own timeout, or the count of replicas
            // that confirmed is never read.
            return Err(invalid(
                "redis.wait_timeout_ms",
                format!("at least 1 and less than redis.timeout_ms ({} ms)", self.redis.timeout_ms),
            ));
        }
        if self.engine.lease_ms < 1000 {
            return Err(invalid("engine.lease_ms", "at least 1000"));
        }
        if self.engine.concurrency_per_lane == 0 {
            return Err(invalid("engine.concurrency_per_lane", "at least 1"));
        }
        if self.engine.idle_poll_ms == 0 {
            return Err(invalid("engine.idle_poll_ms", "at least 1"));
        }
        if !(60..=30 * 24 * 3600).contains(&self.engine.idempotency_retention_secs) {
            return Err(invalid("engine.idempotency_retention_secs", "60 to 2592000 (30 days)"));
        }
        if !(self.engine.idle_poll_ms..=3_600_000).contains(&self.engine.idle_max_ms) {
            return Err(invalid("engine.idle_max_ms", "from engine.idle_poll_ms to 3600000"));
        }
        if self.engine.dead_letter_cap == 0 {
            return Err(invalid("engine.dead_letter_cap", "at least 1"));
        }
        if !(1..=10_000_000).contains(&self.engine.report_buffer_cap) {
            return Err(invalid("engine.report_buffer_cap", "1 to 10000000"));
        }
        if self.engine.circuit_failure_threshold == 0 {
            return Err(invalid("engine.circuit_failure_threshold", "at least 1"));
        }
        for (name, w) in [
            ("high", self.engine.priority_weights.high),
            ("normal", self.engine.priority_weights.normal),
            ("bulk", self.engine.priority_weights.bulk),
        ] {
            if !(1..=1000).contains(&w) {
                return Err(invalid(format!("engine.priority_weights.{name}"), "1 to 1000"));
            }
        }
        if self.engine.sample_interval_ms < 100 {
            return Err(invalid("engine.sample_interval_ms", "at least 100"));
        }
        self.tracing.validate().map_err(|(key, reason)| invalid(format!("tracing.{key}"), reason))?;
        self.admission.validate().map_err(|(key, reason)| invalid(format!("admission.{key}"), reason))?;

        let mut key_names = HashSet::new();
        for (i, k) in self.api_keys.iter().enumerate() {
            if !key_names.insert(k.name.as_str()) {
                return Err(invalid(format!("api_keys[{i}].name"), format!("duplicate name `{}`", k.name)));
            }
            let h = k.sha256.expose_secret();
            if h.len() != 64 || !h.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(invalid(format!("api_keys[{i}].sha256"), "64 hex digits (sha256 of the key)"));
            }
            if k.scopes.is_empty() {
                return Err(invalid(format!("api_keys[{i}].scopes"), "at least one of send, read, admin"));
            }
            if k.rate_per_second == 0 {
                return Err(invalid(format!("api_keys[{i}].rate_per_second"), "at least 1"));
            }
        }

        let mut accounts = HashMap::new();
        for (i, a) in self.accounts.iter().enumerate() {
            if !valid_name(&a.name) {
                return Err(invalid(format!("accounts[{i}].name"), "letters, digits, '-' and '_' only"));
            }
            if accounts.insert(a.name.as_str(), a).is_some() {
                return Err(invalid(format!("accounts[{i}].name"), format!("duplicate account `{}`", a.name)));
            }
            if a.rate_per_second == 0 {
                return Err(invalid(format!("accounts[{i}].rate_per_second"), "at least 1"));
            }
            if a.burst == 0 {
                return Err(invalid(format!("accounts[{i}].burst"), "at least 1"));
            }
            a.settings.validate().map_err(|e| invalid(format!("accounts[{i}].{}", e.key), e.reason))?;
            let (setting, timeout) = a.settings.timeout();
            check_lease(std::time::Duration::from_millis(self.engine.lease_ms), timeout)
                .map_err(|e| invalid("engine.lease_ms", format!("{e} (accounts[{i}].{setting})")))?;
            if let Some(t) = &a.callback_token {
                if t.expose_secret().len() < 16 {
                    return Err(invalid(format!("accounts[{i}].callback_token"), "at least 16 characters"));
                }
            }
        }

        let mut sender_names = HashSet::new();
        let mut defaults = HashSet::new();
        let mut owner: HashMap<&str, &str> = HashMap::new();
        for (i, s) in self.senders.iter().enumerate() {
            if !valid_name(&s.name) {
                return Err(invalid(format!("senders[{i}].name"), "letters, digits, '-' and '_' only"));
            }
            if !sender_names.insert(s.name.as_str()) {
                return Err(invalid(format!("senders[{i}].name"), format!("duplicate sender `{}`", s.name)));
            }
            if s.default && !defaults.insert(s.channel) {
                return Err(invalid(
                    format!("senders[{i}].default"),
                    format!("a second default sender for {}", s.channel),
                ));
            }
            if let Some(ttl) = s.default_ttl_seconds {
                if !(1..=gateway_core::request::MAX_TTL_SECONDS).contains(&ttl) {
                    return Err(invalid(format!("senders[{i}].default_ttl_seconds"), "1 to 2592000 (30 days)"));
                }
            }
            if s.accounts.is_empty() {
                return Err(invalid(format!("senders[{i}].accounts"), "at least one account"));
            }
            for (j, name) in s.accounts.iter().enumerate() {
                let key = format!("senders[{i}].accounts[{j}]");
                let Some(account) = accounts.get(name.as_str()) else {
                    return Err(invalid(key, format!("no account named `{name}`")));
                };
                // An account is one business number's credential: its queue lives with its
                // sender, so it cannot serve two.
                if let Some(other) = owner.insert(name.as_str(), s.name.as_str()) {
                    return Err(invalid(key, format!("account `{name}` already serves sender `{other}`")));
                }
                if let Some(why) = account.settings.refuses(s.channel) {
                    return Err(invalid(key, format!("account `{name}` {why}")));
                }
            }
        }
        let mut sub_names = HashSet::new();
        for (i, sub) in self.subscriptions.iter().enumerate() {
            sub.validate().map_err(|(k, r)| invalid(format!("subscriptions[{i}].{k}"), r))?;
            // Event deliveries are engine jobs under the same lease.
            check_lease(
                std::time::Duration::from_millis(self.engine.lease_ms),
                std::time::Duration::from_millis(sub.timeout_ms),
            )
            .map_err(|e| invalid("engine.lease_ms", format!("{e} (subscriptions[{i}].timeout_ms)")))?;
            if !sub_names.insert(sub.name.as_str()) {
                return Err(invalid(
                    format!("subscriptions[{i}].name"),
                    format!("duplicate subscription `{}`", sub.name),
                ));
            }
        }
        if self.engine.reconcile_interval_ms < 100 {
            return Err(invalid("engine.reconcile_interval_ms", "at least 100"));
        }
        for (i, r) in self.routes.iter().enumerate() {
            if r.accounts.is_empty() {
                return Err(invalid(format!("routes[{i}].accounts"), "at least one account"));
            }
            for (j, name) in r.accounts.iter().enumerate() {
                if !accounts.contains_key(name.as_str()) {
                    return Err(invalid(format!("routes[{i}].accounts[{j}]"), format!("no account named `{name}`")));
                }
                if let Some(sender) = &r.sender {
                    if owner.get(name.as_str()) != Some(&sender.as_str()) {
                        return Err(invalid(
                            format!("routes[{i}].accounts[{j}]"),
                            format!("account `{name}` does not serve sender `{sender}`"),
                        ));
                    }
                }
            }
            if let Some(sender) = &r.sender {
                if !sender_names.contains(sender.as_str()) {
                    return Err(invalid(format!("routes[{i}].sender"), format!("no sender named `{sender}`")));
                }
            }
            for (j, p) in r.country_prefixes.iter().enumerate() {
                let digits = p.trim_start_matches('+');
                if digits.is_empty() || digits.len() > 6 || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(invalid(format!("routes[{i}].country_prefixes[{j}]"), "1 to 6 digits"));
                }
            }
            for (j, t) in r.types.iter().enumerate() {
                let (base, sub) = t.split_once('.').map_or((t.as_str(), None), |(b, s)| (b, Some(s)));
                let known = ContentType::ALL.iter().any(|c| c.as_str() == base);
                let sub_ok = match sub {
                    None => true,
                    Some(s) => {
                        base == "interactive"
                            && ["cta_url", "list", "button", "carousel", "product", "product_list"].contains(&s)
                    }
                };
                if !known || !sub_ok {
                    return Err(invalid(format!("routes[{i}].types[{j}]"), format!("unknown type `{t}`")));
                }
            }
        }
        Ok(())
    }

    pub fn sender(&self, name: &str) -> Option<&SenderConfig> {
        self.senders.iter().find(|s| s.name == name)
    }

    pub fn default_sender(&self, channel: Channel) -> Option<&SenderConfig> {
        self.senders.iter().find(|s| s.channel == channel && s.default)
    }

    pub fn account(&self, name: &str) -> Option<&AccountConfig> {
        self.accounts.iter().find(|a| a.name == name)
    }
}

fn valid_name(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = r#"
[redis]
url = "redis://127.0.0.1:6379"

[engine]
lease_ms = 12000

[[accounts]]
name = "incs-wa"
provider = "incs"
incs = { certification_code = "code", channels = ["whatsapp"] }

[[senders]]
name = "hk-main"
channel = "whatsapp"
accounts = ["incs-wa"]
"#;

    fn base() -> Config {
        Config::from_toml(BASE).expect("the base configuration is valid")
    }

    fn subscription(extra: &str) -> String {
        format!(
            "{BASE}\n[[subscriptions]]\nname = \"sink\"\nurl = \"http://127.0.0.1:1/\"\nsecret = \"whsec_c2FuZGJveC13ZWJob29rLXNlY3JldA==\"\n{extra}"
        )
    }

    fn load_error(toml: &str) -> String {
        Config::from_toml(toml).expect_err("refused").to_string()
    }

    #[test]
    fn an_account_takes_the_settings_of_its_own_provider_only() {
        let other = BASE.replace(
            r#"incs = { certification_code = "code", channels = ["whatsapp"] }"#,
            r#"innopaas = { app_key = "k", token = "t", waba_id = "1", send_number = "85268411234" }"#,
        );
        let err = load_error(&other);
        assert!(err.contains("incs-wa") && err.contains("`innopaas`: this account's provider is `incs`"), "{err}");
        let none = BASE.replace(r#"incs = { certification_code = "code", channels = ["whatsapp"] }"#, "");
        let err = load_error(&none);
        assert!(err.contains("`incs`: required for provider `incs`"), "{err}");
        let typo = BASE.replace("provider = \"incs\"", "provider = \"incs\"\nrate_per_secnd = 5");
        assert!(load_error(&typo).contains("rate_per_secnd"), "unknown keys are still refused");
        let c = base();
        assert_eq!(c.accounts[0].provider().as_str(), "incs");
        assert!(matches!(c.accounts[0].settings, ProviderSettings::Incs(_)));
    }

    #[test]
    fn a_retry_schedule_that_is_empty_or_decreasing_is_refused_naming_the_key() {
        let cases = [
            (BASE.replace("lease_ms = 12000", "lease_ms = 12000\nretry_schedule_ms = []"), "engine.retry_schedule_ms"),
            (
                BASE.replace("lease_ms = 12000", "lease_ms = 12000\nretry_schedule_ms = [100, 50]"),
                "engine.retry_schedule_ms",
            ),
            (subscription("retry_schedule_ms = []"), "subscriptions"),
            (subscription("retry_schedule_ms = [1000, 999]"), "subscriptions"),
        ];
        for (toml, key) in cases {
            let err = load_error(&toml);
            assert!(err.contains(key) && err.contains("retry_schedule_ms"), "{err}");
        }
        let empty = load_error(&BASE.replace("lease_ms = 12000", "lease_ms = 12000\nretry_schedule_ms = []"));
        assert!(empty.contains("at least one delay"), "{empty}");
        let flat = BASE.replace("lease_ms = 12000", "lease_ms = 12000\nretry_schedule_ms = [100, 400, 400]");
        assert!(Config::from_toml(&flat).is_ok(), "a flat tail is a schedule");
    }

    #[test]
    fn replicated_durability_settings_are_checked_naming_the_key() {
        let c = base();
        assert_eq!((c.redis.wait_replicas, c.redis.wait_timeout_ms), (0, 500));
        let cases = [
            ("wait_replicas = 17", "redis.wait_replicas"),
            ("wait_replicas = 1\nwait_timeout_ms = 0", "redis.wait_timeout_ms"),
            ("wait_replicas = 1\nwait_timeout_ms = 2000\ntimeout_ms = 2000", "redis.wait_timeout_ms"),
            ("wait_replicas = -1", "wait_replicas"),
            ("wait_replicas = \"one\"", "wait_replicas"),
        ];
        for (setting, key) in cases {
            let toml = BASE.replacen("[redis]\n", &format!("[redis]\n{setting}\n"), 1);
            let err = load_error(&toml);
            assert!(err.contains(key), "{setting}: {err}");
        }
        let toml = BASE.replacen("[redis]\n", "[redis]\nwait_replicas = 1\nwait_timeout_ms = 300\n", 1);
        let c = Config::from_toml(&toml).expect("valid");
        assert_eq!((c.redis.wait_replicas, c.redis.wait_timeout_ms), (1, 300));
        // Without replicas to wait for, the timeout is not used and not judged.
        assert!(Config::from_toml(&BASE.replacen("[redis]\n", "[redis]\nwait_timeout_ms = 0\n", 1)).is_ok());
    }

    #[test]
    fn a_lease_shorter_than_a_provider_call_is_refused_naming_the_key() {
        let mut c = base();
        c.engine.lease_ms = 10_999;
        let err = c.validate().expect_err("refused").to_string();
        assert!(err.starts_with("configuration key `engine.lease_ms`"), "{err}");
        assert!(err.contains("accounts[0].incs.timeout_ms"), "{err}");

        let mut c = base();
        if let ProviderSettings::Incs(incs) = &mut c.accounts[0].settings {
            incs.timeout_ms = 2_000;
        }
        c.engine.lease_ms = 3_000;
        assert!(c.validate().is_ok());

        let mut c = Config::from_toml(&subscription("timeout_ms = 2000")).expect("valid");
        c.subscriptions[0].timeout_ms = 11_001;
        let err = c.validate().expect_err("refused").to_string();
        assert!(err.starts_with("configuration key `engine.lease_ms`"), "{err}");
        assert!(err.contains("subscriptions[0].timeout_ms"), "{err}");
    }

    #[test]
    fn capacity_bounds_out_of_range_are_refused_naming_the_key() {
        assert_eq!(base().engine.report_buffer_cap, 10_000);
        type Change = fn(&mut Config);
        assert_eq!(base().engine.idempotency_retention_secs, 86_400);
        let cases: [(Change, &str); 5] = [
            (|c| c.engine.report_buffer_cap = 0, "engine.report_buffer_cap"),
            (|c| c.engine.report_buffer_cap = 10_000_001, "engine.report_buffer_cap"),
            (|c| c.admission.memory_guard = 1.5, "admission.memory_guard"),
            (|c| c.engine.idempotency_retention_secs = 59, "engine.idempotency_retention_secs"),
            (|c| c.engine.idempotency_retention_secs = 2_592_001, "engine.idempotency_retention_secs"),
        ];
        for (change, key) in cases {
            let mut c = base();
            change(&mut c);
            let err = c.validate().expect_err("refused").to_string();
            assert!(err.starts_with(&format!("configuration key `{key}`")), "{err}");
        }
    }

    #[test]
    fn an_idle_wait_shorter_than_the_poll_or_over_an_hour_is_refused_naming_the_key() {
        assert_eq!(base().engine.idle_max_ms, 300_000);
        for (poll, max) in [(200, 199), (200, 3_600_001)] {
            let mut c = base();
            (c.engine.idle_poll_ms, c.engine.idle_max_ms) = (poll, max);
            let err = c.validate().expect_err("refused").to_string();
            assert!(err.starts_with("configuration key `engine.idle_max_ms`"), "{poll}/{max}: {err}");
        }
        let mut c = base();
        (c.engine.idle_poll_ms, c.engine.idle_max_ms) = (500, 500);
        assert!(c.validate().is_ok(), "a wait equal to the poll is the poll alone");
    }
}
