//! The delivery engine: Redis is the only store, and every accepted message is in it before the
//! API answers 202.
//!
//! # Data structures
//! All keys of one sender share the hash tag `{<sender>}`, so each Lua script touches one slot and
//! the engine runs unchanged on a Redis Cluster. A sender's lanes are its provider accounts.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{S}:m:<id>` | hash | the message record: `body` (versioned JSON, immutable), `status`, `lane`, `provider`, `pmid`, `error`, `attempt` (spent), `history`, `attempts`, `token` (current lease), `redeliver`, `chain` (its place in a fallback chain); on a chain's first message also `fbn` (steps), `fbcur` (step in play), `fb<k>`/`fbr<k>` (step k's message id and why it was sent), `fbho` (hand-off pending), `fbok<k>`, `fbdone`, `outcome` |
//! | `P:{S}:q:<lane>` | list | the lane's ready FIFO (`LPUSH` in, `RPOP` out; work that must go next is `RPUSH`ed) |
//! | `P:{S}:lease` | zset | id → lease deadline (ms); an expired lease puts the message back |
//! | `P:{S}:delay` | zset | id → due time (ms): retries and `send_at` |
//! | `P:{S}:dlq` | zset | id → time it was dead-lettered; capped |
//! | `P:{S}:pause:<lane>` | string | present while the lane is paused (PX = pause) |
//! | `P:{S}:rate:<lane>` | string | the lane's GCRA theoretical arrival time (ms) |
//! | `P:{S}:fbwait` | zset | first message id → when its fallback chain is next checked (ms): the end of a step's wait, or a pending hand-off's recheck |
//! | `P:{S}:recon` | zset | id → last status news (ms), for submitted messages whose status is polled when callbacks stay silent |
//! | `P:ix:<id>` | string | id → sender, to find a message by id alone |
//! | `P:pm:<provider>:<provider id>` | string | the provider's message id → `sender\nid`, to apply callbacks |
//! | `P:pmbuf:<provider>:<provider id>` | list | status reports that came before the send's answer was recorded (1 h) |
//! | `P:idem:<api key>:<sha256>` | string | an `Idempotency-Key`'s state and stored response (24 h) |
//!
//! # Why this shape
//! - A lease set with fencing tokens, not `BLMOVE` to a processing list: a worker that dies leaves a
//!   lease that simply expires, and a worker whose lease expired cannot acknowledge (its token no
//!   longer matches), so a message is never acknowledged twice.
//! - Message records get a TTL (retention) only once they are with the provider or final, so
//!   nothing queued can expire.
//! - A fallback chain's state lives on its first message, in that sender's slot; a step sent with
//!   another sender lives in another slot. The hand-off is two scripts: a fenced transition in the
//!   first message's slot records the step's id (chosen at acceptance) and marks the hand-off
//!   pending, then the step is created in its own slot under that id, which a repeat after a
//!   crash finds and leaves alone; the wait timer rechecks pending hand-offs. Reading a step's
//!   status across slots is a plain read; every decision is then fenced by the step in play.
//! - The rate limit (GCRA) is checked inside the claim script, so instances sharing a lane share
//!   its rate exactly, without a round trip per message.

pub mod circuit;
mod conn;
pub mod fallback;
pub mod record;
pub mod sampler;
mod scripts;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use gateway_core::{MessageId, MessageStatus};
use redis::{AsyncCommands, Script, Value};
use secrecy::ExposeSecret;

pub use conn::{Conn, RedisPool};

use crate::config::{EngineConfig, RedisConfig};
pub use record::{AttemptRecord, ChainLink, ErrorRecord, MessageRecord, StoredMessage};

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("redis call timed out")]
    Timeout,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        StoreError::Unavailable(e.to_string())
    }
}

struct Scripts {
    accept: Script,
    claim: Script,
    submitted: Script,
    failed: Script,
    retry: Script,
    throttled: Script,
    release: Script,
    cancel: Script,
    replay: Script,
    drop_dead_letter: Script,
    idempotency_begin: Script,
    failover: Script,
    apply_report: Script,
    drain: Script,
    chain: fallback::ChainScripts,
}

/// Key names for one sender.
#[derive(Clone)]
pub struct SenderKeys {
    tag: String,
}

impl SenderKeys {
    fn new(prefix: &str, sender: &str) -> Self {
        Self { tag: format!("{prefix}:{{{sender}}}") }
    }
    pub fn message(&self, id: &str) -> String {
        format!("{}:m:{id}", self.tag)
    }
    fn message_prefix(&self) -> String {
        format!("{}:m:", self.tag)
    }
    pub fn ready(&self, lane: &str) -> String {
        format!("{}:q:{lane}", self.tag)
    }
    fn ready_prefix(&self) -> String {
        format!("{}:q:", self.tag)
    }
    pub fn lease(&self) -> String {
        format!("{}:lease", self.tag)
    }
    pub fn delay(&self) -> String {
        format!("{}:delay", self.tag)
    }
    pub fn dead_letters(&self) -> String {
        format!("{}:dlq", self.tag)
    }
    pub fn pause(&self, lane: &str) -> String {
        format!("{}:pause:{lane}", self.tag)
    }
    pub fn rate(&self, lane: &str) -> String {
        format!("{}:rate:{lane}", self.tag)
    }
    pub fn reconcile(&self) -> String {
        format!("{}:recon", self.tag)
    }
    pub fn fallback_wait(&self) -> String {
        format!("{}:fbwait", self.tag)
    }
}

/// How long reports for an unknown provider message id wait for the send's answer.
pub const REPORT_BUFFER_TTL: Duration = Duration::from_secs(3600);

/// What applying a provider's status report did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The message moved to the reported status (from `previous`).
    Advanced { previous: MessageStatus, created_ms: i64, chain: Option<ChainLink> },
    /// Kept in the history only (it would have moved backwards, or the message is final).
    HistoryOnly,
    /// The same status was reported before.
    Duplicate,
    /// No such message (its retention ended).
    Missing,
}

/// One claimed message, leased to this worker.
#[derive(Debug)]
pub struct Claimed {
    pub id: String,
    pub token: String,
    pub body: String,
    /// Attempts already spent.
    pub attempt: u32,
    /// A previous lease on it expired: the provider may already have it.
    pub redelivery: bool,
}

#[derive(Debug)]
pub struct ClaimBatch {
    pub items: Vec<Claimed>,
    /// How long the lane has no claimable work (paused, rate-limited, or waiting on a due time);
    /// `None` when nothing is known to be coming.
    pub wait: Option<Duration>,
    pub idle: IdleReason,
}

/// Why a claim returned fewer messages than asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleReason {
    /// More may be ready: claim again.
    None,
    Paused,
    RateLimited,
    Empty,
}

/// What cancelling found.
#[derive(Debug, PartialEq, Eq)]
pub enum CancelOutcome {
    Cancelled,
    NotFound,
    /// Already with a worker, the provider, or final.
    TooLate(MessageStatus),
}

/// The depth of a sender's queues.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Depth {
    /// Ready, per lane.
    pub ready: Vec<(String, u64)>,
    pub scheduled: u64,
    pub in_flight: u64,
    pub dead_letters: u64,
}

/// What an `Idempotency-Key` holds.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum IdempotencyRecord {
    Processing { fingerprint: String },
    Done { fingerprint: String, status: u16, body: String },
}

/// The lane a worker claims for.
#[derive(Debug, Clone)]
pub struct LaneSpec {
    pub sender: String,
    pub lane: String,
    pub rate_per_second: u32,
    pub burst: u32,
}

#[derive(Clone)]
pub struct Engine {
    pool: RedisPool,
    prefix: String,
    timeout: Duration,
    retention: Duration,
    lease: Duration,
    dead_letter_cap: usize,
    scripts: Arc<Scripts>,
    /// Distinguishes this process's lease tokens from other instances'.
    instance: String,
}

impl Engine {
    /// # Errors
    /// When the Redis URL cannot be used to build a pool (bad syntax); an unreachable Redis is not
    /// an error here: calls fail with [`StoreError::Unavailable`] until it is back.
    pub fn new(redis: &RedisConfig, engine: &EngineConfig) -> Result<Self, String> {
        let timeout = Duration::from_millis(redis.timeout_ms);
        let urls: Vec<String> = redis.url.expose_secret().split(',').map(|u| u.trim().to_owned()).collect();
        let timeouts = deadpool_redis::Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) };
        let pool = RedisPool::new(&urls, redis.cluster, redis.pool_size, timeouts)?;
        Ok(Self {
            pool,
            prefix: redis.key_prefix.clone(),
            timeout,
            retention: Duration::from_secs(engine.retention_secs),
            lease: Duration::from_millis(engine.lease_ms),
            dead_letter_cap: engine.dead_letter_cap,
            scripts: Arc::new(Scripts {
                accept: scripts::accept(),
                claim: scripts::claim(),
                submitted: scripts::submitted(),
                failed: scripts::failed(),
                retry: scripts::retry(),
                throttled: scripts::throttled(),
                release: scripts::release(),
                cancel: scripts::cancel(),
                replay: scripts::replay(),
                drop_dead_letter: scripts::drop_dead_letter(),
                idempotency_begin: scripts::idempotency_begin(),
                failover: scripts::failover(),
                apply_report: scripts::apply_report(),
                drain: scripts::drain(),
                chain: fallback::ChainScripts::new(),
            }),
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        })
    }

    /// A connection for stores that live beside the engine (template cache, session windows),
    /// with the same pool and timeouts.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn connection(&self) -> Result<Conn, StoreError> {
        self.timed(self.conn()).await
    }

    /// Bounds a Redis call by the configured timeout.
    ///
    /// # Errors
    /// [`StoreError::Timeout`], or the call's own error.
    pub async fn bounded<T>(
        &self,
        f: impl std::future::Future<Output = Result<T, StoreError>>,
    ) -> Result<T, StoreError> {
        self.timed(f).await
    }

    /// The configured key prefix (`gw`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn keys(&self, sender: &str) -> SenderKeys {
        SenderKeys::new(&self.prefix, sender)
    }

    fn index_key(&self, id: &str) -> String {
        format!("{}:ix:{id}", self.prefix)
    }

    async fn conn(&self) -> Result<Conn, StoreError> {
        self.pool.get().await.map_err(StoreError::Unavailable)
    }

    async fn timed<T>(&self, f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        let result = tokio::time::timeout(self.timeout, f).await.map_err(|_| StoreError::Timeout).and_then(|r| r);
        if matches!(result, Err(StoreError::Unavailable(_) | StoreError::Timeout)) {
            // The shared connection may be broken: the next call makes a new one.
            self.pool.invalidate();
        }
        result
    }

    /// Whether Redis answers.
    pub async fn ping(&self) -> Result<(), StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let _: String = redis::cmd("PING").query_async(&mut c).await?;
            Ok(())
        })
        .await
    }

    /// Stores and queues a new message. Returns its acceptance time (ms since the epoch, server
    /// clock).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or slow: the caller must not answer 202.
    pub async fn accept(
        &self,
        id: &MessageId,
        sender: &str,
        lane: &str,
        body: &StoredMessage,
        due_ms: i64,
    ) -> Result<i64, StoreError> {
        let body = serde_json::to_string(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.accept_job(&id.to_string(), sender, lane, &body, due_ms, true).await
    }

    /// Stores and queues any job (a message, an event delivery). `indexed` jobs can be found by
    /// id alone (messages); others only through their queues (event deliveries).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or slow.
    pub async fn accept_job(
        &self,
        id: &str,
        sender: &str,
        lane: &str,
        body: &str,
        due_ms: i64,
        indexed: bool,
    ) -> Result<i64, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            if indexed {
                // The index first: if the script never runs, it points at nothing (a 404), and no
                // message exists that cannot be found.
                let () = c.set(self.index_key(id), sender).await?;
            }
            let now: i64 = self
                .scripts
                .accept
                .key(keys.message(id))
                .key(keys.ready(lane))
                .key(keys.delay())
                .arg(id)
                .arg(body)
                .arg(lane)
                .arg(due_ms)
                .invoke_async(&mut c)
                .await?;
            if now == 0 {
                return Err(StoreError::Corrupt(format!("job {id} already exists")));
            }
            Ok(now)
        })
        .await
    }

    /// Claims up to `max` messages of a lane.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn claim(&self, lane: &LaneSpec, max: usize) -> Result<ClaimBatch, StoreError> {
        let keys = self.keys(&lane.sender);
        let interval = 1000.0 / f64::from(lane.rate_per_second.max(1));
        let values: Vec<Value> = self
            .timed(async {
                let mut c = self.conn().await?;
                Ok(self
                    .scripts
                    .claim
                    .key(keys.ready(&lane.lane))
                    .key(keys.lease())
                    .key(keys.delay())
                    .key(keys.pause(&lane.lane))
                    .key(keys.rate(&lane.lane))
                    .arg(&lane.lane)
                    .arg(self.lease.as_millis() as u64)
                    .arg(max)
                    .arg(&self.instance)
                    .arg(keys.message_prefix())
                    .arg(keys.ready_prefix())
                    .arg(interval)
                    .arg(lane.burst)
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        parse_claim(values)
    }

    /// Records a successful send.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost (another worker owns the message now).
    #[allow(clippy::too_many_arguments)]
    pub async fn submitted(
        &self,
        sender: &str,
        claim: &Claimed,
        lane: &str,
        provider: &str,
        pmid: &str,
        attempt: &AttemptRecord,
        reconcile: bool,
    ) -> Result<Option<Vec<String>>, StoreError> {
        let keys = self.keys(sender);
        let attempt = json(attempt)?;
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .submitted
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.reconcile())
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(provider)
                .arg(pmid)
                .arg(&attempt)
                .arg(self.retention.as_millis() as u64)
                .arg(lane)
                .arg(if reconcile { "1" } else { "0" })
                .invoke_async(&mut c)
                .await?;
            if ok != 1 {
                return Ok(None);
            }
            let retention = self.retention.as_millis() as i64;
            if !self.indexless(sender) {
                let () = c.pexpire(self.index_key(&claim.id), retention).await?;
            }
            if pmid.is_empty() {
                return Ok(Some(Vec::new()));
            }
            // Link the provider's id, then take what callbacks left waiting for it.
            let () = c
                .pset_ex(self.provider_id_key(provider, pmid), format!("{sender}\n{}", claim.id), retention as u64)
                .await?;
            let buffered: Vec<String> =
                self.scripts.drain.key(self.buffer_key(provider, pmid)).invoke_async(&mut c).await?;
            Ok(Some(buffered))
        })
        .await
    }

    /// Event deliveries live under `ev:` tags and have no id index.
    fn indexless(&self, sender: &str) -> bool {
        sender.starts_with("ev:")
    }

    fn provider_id_key(&self, provider: &str, pmid: &str) -> String {
        format!("{}:pm:{provider}:{pmid}", self.prefix)
    }

    fn buffer_key(&self, provider: &str, pmid: &str) -> String {
        format!("{}:pmbuf:{provider}:{pmid}", self.prefix)
    }

    /// Finds our message by the provider's id: `(sender, id)`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn find_by_provider_id(
        &self,
        provider: &str,
        pmid: &str,
    ) -> Result<Option<(String, String)>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let v: Option<String> = c.get(self.provider_id_key(provider, pmid)).await?;
            Ok(v.and_then(|v| v.split_once('\n').map(|(s, i)| (s.to_owned(), i.to_owned()))))
        })
        .await
    }

    /// Keeps a report for a provider id we do not know yet. If the id became known meanwhile,
    /// returns everything buffered for it (including this report) for the caller to apply now.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn buffer_report(
        &self,
        provider: &str,
        pmid: &str,
        report: &str,
    ) -> Result<Option<((String, String), Vec<String>)>, StoreError> {
        let key = self.buffer_key(provider, pmid);
        self.timed(async {
            let mut c = self.conn().await?;
            let () = c.rpush(&key, report).await?;
            let () = c.pexpire(&key, REPORT_BUFFER_TTL.as_millis() as i64).await?;
            // The send's answer may have been recorded between our lookup and the push.
            let v: Option<String> = c.get(self.provider_id_key(provider, pmid)).await?;
            let Some(owner) = v.and_then(|v| v.split_once('\n').map(|(s, i)| (s.to_owned(), i.to_owned()))) else {
                return Ok(None);
            };
            let items: Vec<String> = self.scripts.drain.key(&key).invoke_async(&mut c).await?;
            Ok(Some((owner, items)))
        })
        .await
    }

    /// Applies a reported status to a message; `advances_from` are the statuses from which the
    /// report moves the message forward (computed by gateway-core's status machine).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_report(
        &self,
        sender: &str,
        id: &str,
        reported: MessageStatus,
        at_ms: i64,
        source: &str,
        error: Option<&ErrorRecord>,
        advances_from: &[MessageStatus],
    ) -> Result<ReportOutcome, StoreError> {
        let keys = self.keys(sender);
        let error = error.map(json).transpose()?.unwrap_or_default();
        let from: String = advances_from.iter().fold("|".to_owned(), |acc, s| format!("{acc}{}|", s.as_str()));
        let done = matches!(reported, MessageStatus::Read | MessageStatus::Failed);
        self.timed(async {
            let mut c = self.conn().await?;
            let (outcome, previous, created, chain): (String, String, i64, String) = self
                .scripts
                .apply_report
                .key(keys.message(id))
                .key(keys.reconcile())
                .arg(reported.as_str())
                .arg(at_ms)
                .arg(source)
                .arg(&error)
                .arg(&from)
                .arg(self.retention.as_millis() as u64)
                .arg(if done { "1" } else { "0" })
                .invoke_async(&mut c)
                .await?;
            Ok(match outcome.as_str() {
                "advanced" => ReportOutcome::Advanced {
                    previous: previous.parse().map_err(StoreError::Corrupt)?,
                    created_ms: created,
                    chain: ChainLink::decode(&chain),
                },
                "history" => ReportOutcome::HistoryOnly,
                "duplicate" => ReportOutcome::Duplicate,
                _ => ReportOutcome::Missing,
            })
        })
        .await
    }

    /// Submitted messages with no status news for `quiet`: `(id, lane, provider message id)`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn quiet_messages(
        &self,
        sender: &str,
        quiet: Duration,
        limit: usize,
    ) -> Result<Vec<(String, String, String)>, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await?;
            let now = secs * 1000 + micros / 1000;
            let ids: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                .arg(keys.reconcile())
                .arg("-inf")
                .arg(now - quiet.as_millis() as i64)
                .arg("LIMIT")
                .arg(0)
                .arg(limit)
                .query_async(&mut c)
                .await?;
            let mut out = Vec::with_capacity(ids.len());
            for id in ids {
                let (lane, pmid): (Option<String>, Option<String>) =
                    redis::cmd("HMGET").arg(keys.message(&id)).arg("lane").arg("pmid").query_async(&mut c).await?;
                match (lane, pmid) {
                    (Some(l), Some(p)) => {
                        // Polled now: next time only after another quiet period.
                        let () = c.zadd(keys.reconcile(), &id, now).await?;
                        out.push((id, l, p));
                    }
                    _ => {
                        let () = c.zrem(keys.reconcile(), &id).await?;
                    }
                }
            }
            Ok(out)
        })
        .await
    }

    /// Records a final failure; `dead_letter` when retries were exhausted.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn failed(
        &self,
        sender: &str,
        claim: &Claimed,
        error: &ErrorRecord,
        attempt: &AttemptRecord,
        dead_letter: bool,
        source: &str,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        let (error, attempt) = (json(error)?, json(attempt)?);
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .failed
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.dead_letters())
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(&error)
                .arg(&attempt)
                .arg(self.retention.as_millis() as u64)
                .arg(if dead_letter { "1" } else { "0" })
                .arg(self.dead_letter_cap)
                .arg(source)
                .arg(keys.message_prefix())
                .invoke_async(&mut c)
                .await?;
            if ok == 1 && !self.indexless(sender) {
                let () = c.pexpire(self.index_key(&claim.id), self.retention.as_millis() as i64).await?;
            }
            Ok(ok == 1)
        })
        .await
    }

    /// Schedules another attempt after `delay`; `spend` says whether it counts against the budget.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    #[allow(clippy::too_many_arguments)]
    pub async fn retry(
        &self,
        sender: &str,
        claim: &Claimed,
        error: &ErrorRecord,
        attempt: &AttemptRecord,
        delay: Duration,
        spend: bool,
        ambiguous: bool,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        let (error, attempt) = (json(error)?, json(attempt)?);
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .retry
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.delay())
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(&error)
                .arg(&attempt)
                .arg(delay.as_millis() as u64)
                .arg(if spend { "1" } else { "0" })
                .arg(if ambiguous { "1" } else { "0" })
                .invoke_async(&mut c)
                .await?;
            Ok(ok == 1)
        })
        .await
    }

    /// Puts the message back at the front of its lane and pauses the lane for `pause`.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    #[allow(clippy::too_many_arguments)]
    pub async fn throttled(
        &self,
        sender: &str,
        lane: &str,
        claim: &Claimed,
        attempt: &AttemptRecord,
        pause: Duration,
        spend: bool,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        let attempt = json(attempt)?;
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .throttled
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.ready(lane))
                .key(keys.pause(lane))
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(&attempt)
                .arg(pause.as_millis().max(1) as u64)
                .arg(if spend { "1" } else { "0" })
                .invoke_async(&mut c)
                .await?;
            Ok(ok == 1)
        })
        .await
    }

    /// Reads a message by id.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or the record cannot be read.
    pub async fn get(&self, id: &MessageId) -> Result<Option<MessageRecord>, StoreError> {
        let id = id.to_string();
        self.timed(async {
            let mut c = self.conn().await?;
            let sender: Option<String> = c.get(self.index_key(&id)).await?;
            let Some(sender) = sender else { return Ok(None) };
            let fields: std::collections::HashMap<String, String> = c.hgetall(self.keys(&sender).message(&id)).await?;
            if fields.is_empty() {
                return Ok(None);
            }
            MessageRecord::from_fields(fields).map(Some)
        })
        .await
    }

    /// Messages of a lane waiting in its FIFO (for `/v1/senders` and metrics).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn ready_depth(&self, sender: &str, lane: &str) -> Result<u64, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            Ok(c.llen(self.keys(sender).ready(lane)).await?)
        })
        .await
    }

    async fn sender_of(&self, c: &mut Conn, id: &str) -> Result<Option<String>, StoreError> {
        Ok(c.get(self.index_key(id)).await?)
    }

    /// Moves a claimed message to the next account of its route.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn failover(
        &self,
        sender: &str,
        claim: &Claimed,
        next_lane: &str,
        attempt: Option<&AttemptRecord>,
        error: Option<&ErrorRecord>,
    ) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        let attempt = attempt.map(json).transpose()?.unwrap_or_default();
        let error = error.map(json).transpose()?.unwrap_or_default();
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .failover
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.ready(next_lane))
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(next_lane)
                .arg(&attempt)
                .arg(&error)
                .invoke_async(&mut c)
                .await?;
            Ok(ok == 1)
        })
        .await
    }

    /// Hands a claimed message back (shutdown before its provider call).
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn release(&self, sender: &str, lane: &str, claim: &Claimed) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .release
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(keys.ready(lane))
                .arg(&claim.id)
                .arg(&claim.token)
                .invoke_async(&mut c)
                .await?;
            Ok(ok == 1)
        })
        .await
    }

    /// Cancels a queued or scheduled message.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn cancel(&self, id: &MessageId) -> Result<CancelOutcome, StoreError> {
        let id = id.to_string();
        self.timed(async {
            let mut c = self.conn().await?;
            let Some(sender) = self.sender_of(&mut c, &id).await? else { return Ok(CancelOutcome::NotFound) };
            let keys = self.keys(&sender);
            let out: Vec<Value> = self
                .scripts
                .cancel
                .key(keys.message(&id))
                .key(keys.delay())
                .arg(&id)
                .arg(self.retention.as_millis() as u64)
                .invoke_async(&mut c)
                .await?;
            match out.as_slice() {
                [Value::Int(1)] => {
                    let () = c.pexpire(self.index_key(&id), self.retention.as_millis() as i64).await?;
                    Ok(CancelOutcome::Cancelled)
                }
                [Value::Int(0), Value::BulkString(st)] => {
                    let st = String::from_utf8_lossy(st).parse().map_err(StoreError::Corrupt)?;
                    Ok(CancelOutcome::TooLate(st))
                }
                _ => Ok(CancelOutcome::NotFound),
            }
        })
        .await
    }

    /// The newest dead letters of a sender: `(id, dead-lettered at ms)`, newest first.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn dead_letters(&self, sender: &str, limit: usize) -> Result<Vec<(MessageRecord, i64)>, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let ids: Vec<(String, f64)> =
                c.zrevrange_withscores(keys.dead_letters(), 0, limit.saturating_sub(1) as isize).await?;
            let mut out = Vec::with_capacity(ids.len());
            for (id, at) in ids {
                let fields: std::collections::HashMap<String, String> = c.hgetall(keys.message(&id)).await?;
                if fields.is_empty() {
                    // Its retention ended: the entry points at nothing.
                    let () = c.zrem(keys.dead_letters(), &id).await?;
                    continue;
                }
                out.push((MessageRecord::from_fields(fields)?, at as i64));
            }
            Ok(out)
        })
        .await
    }

    /// Replays a dead letter. Returns the lane it was queued on, or `None` if it is not one.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn replay(&self, id: &MessageId) -> Result<Option<String>, StoreError> {
        let id = id.to_string();
        self.timed(async {
            let mut c = self.conn().await?;
            let Some(sender) = self.sender_of(&mut c, &id).await? else { return Ok(None) };
            let keys = self.keys(&sender);
            let ok: i64 = self
                .scripts
                .replay
                .key(keys.message(&id))
                .key(keys.dead_letters())
                .arg(&id)
                .arg(keys.ready_prefix())
                .invoke_async(&mut c)
                .await?;
            if ok != 1 {
                return Ok(None);
            }
            let () = c.persist(self.index_key(&id)).await?;
            let lane: Option<String> = c.hget(keys.message(&id), "lane").await?;
            Ok(lane)
        })
        .await
    }

    /// Drops a dead letter. Returns whether it was one.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn drop_dead_letter(&self, id: &MessageId) -> Result<bool, StoreError> {
        let id = id.to_string();
        self.timed(async {
            let mut c = self.conn().await?;
            let Some(sender) = self.sender_of(&mut c, &id).await? else { return Ok(false) };
            let keys = self.keys(&sender);
            let ok: i64 = self
                .scripts
                .drop_dead_letter
                .key(keys.message(&id))
                .key(keys.dead_letters())
                .arg(&id)
                .invoke_async(&mut c)
                .await?;
            if ok == 1 {
                let () = c.del(self.index_key(&id)).await?;
            }
            Ok(ok == 1)
        })
        .await
    }

    /// Queue depths of a sender.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn depth(&self, sender: &str, lanes: &[String]) -> Result<Depth, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let mut d = Depth::default();
            for lane in lanes {
                d.ready.push((lane.clone(), c.llen(keys.ready(lane)).await?));
            }
            d.scheduled = c.zcard(keys.delay()).await?;
            d.in_flight = c.zcard(keys.lease()).await?;
            d.dead_letters = c.zcard(keys.dead_letters()).await?;
            Ok(d)
        })
        .await
    }

    /// How long a lane stays paused (`None`: not paused).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn paused_for(&self, sender: &str, lane: &str) -> Result<Option<Duration>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let ms: i64 = c.pttl(self.keys(sender).pause(lane)).await?;
            Ok((ms > 0).then(|| Duration::from_millis(ms as u64)))
        })
        .await
    }

    fn idempotency_key(&self, api_key: &str, key: &str) -> String {
        use sha2::Digest;
        format!("{}:idem:{api_key}:{}", self.prefix, hex::encode(sha2::Sha256::digest(key.as_bytes())))
    }

    /// Claims an idempotency key for a request with this fingerprint, or returns what it holds.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn idempotency_begin(
        &self,
        api_key: &str,
        key: &str,
        fingerprint: &str,
        processing_ttl: Duration,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let k = self.idempotency_key(api_key, key);
        let value = json(&IdempotencyRecord::Processing { fingerprint: fingerprint.to_owned() })?;
        self.timed(async {
            let mut c = self.conn().await?;
            let out: Vec<Value> = self
                .scripts
                .idempotency_begin
                .key(&k)
                .arg(&value)
                .arg(processing_ttl.as_millis() as u64)
                .invoke_async(&mut c)
                .await?;
            match out.as_slice() {
                [Value::Int(1)] => Ok(None),
                [Value::Int(0), Value::BulkString(v)] => {
                    serde_json::from_slice(v).map(Some).map_err(|e| StoreError::Corrupt(e.to_string()))
                }
                _ => Err(StoreError::Corrupt("unexpected idempotency answer".into())),
            }
        })
        .await
    }

    /// Stores the response for an idempotency key, kept for `ttl`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn idempotency_complete(
        &self,
        api_key: &str,
        key: &str,
        record: &IdempotencyRecord,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let k = self.idempotency_key(api_key, key);
        let value = json(record)?;
        self.timed(async {
            let mut c = self.conn().await?;
            let () = c.pset_ex(&k, value, ttl.as_millis() as u64).await?;
            Ok(())
        })
        .await
    }

    /// Forgets an idempotency key whose request did not complete (so a retry can proceed).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn idempotency_abandon(&self, api_key: &str, key: &str) -> Result<(), StoreError> {
        let k = self.idempotency_key(api_key, key);
        self.timed(async {
            let mut c = self.conn().await?;
            let () = c.del(&k).await?;
            Ok(())
        })
        .await
    }
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn parse_claim(values: Vec<Value>) -> Result<ClaimBatch, StoreError> {
    fn text(v: &Value) -> Result<String, StoreError> {
        match v {
            Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|e| StoreError::Corrupt(e.to_string())),
            Value::SimpleString(s) => Ok(s.clone()),
            Value::Int(i) => Ok(i.to_string()),
            other => Err(StoreError::Corrupt(format!("unexpected claim value {other:?}"))),
        }
    }
    let mut it = values.iter();
    let wait = match it.next() {
        Some(Value::Int(ms)) if *ms > 0 => Some(Duration::from_millis(*ms as u64)),
        Some(Value::Int(0)) => Some(Duration::ZERO),
        Some(Value::Int(_)) | None => None,
        Some(other) => return Err(StoreError::Corrupt(format!("unexpected claim header {other:?}"))),
    };
    let idle = match it.next() {
        Some(Value::Int(1)) => IdleReason::Paused,
        Some(Value::Int(2)) => IdleReason::RateLimited,
        Some(Value::Int(3)) => IdleReason::Empty,
        _ => IdleReason::None,
    };
    let rest: Vec<&Value> = it.collect();
    let mut items = Vec::with_capacity(rest.len() / 5);
    for chunk in rest.chunks(5) {
        let [id, token, body, attempt, redeliver] = chunk else {
            return Err(StoreError::Corrupt("claim result has a partial entry".into()));
        };
        items.push(Claimed {
            id: text(id)?,
            token: text(token)?,
            body: text(body)?,
            attempt: text(attempt)?.parse().unwrap_or(0),
            redelivery: text(redeliver)? == "1",
        });
    }
    Ok(ClaimBatch { items, wait, idle })
}
