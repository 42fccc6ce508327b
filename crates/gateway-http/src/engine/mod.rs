//! The delivery engine: Redis is the only store, and every accepted message is in it before the
//! API answers 202.
//!
//! # Data structures
//! All keys of one sender share the hash tag `{<sender>}`, so each Lua script touches one slot and
//! the engine runs unchanged on a Redis Cluster. A sender's lanes are its provider accounts.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{S}:m:<id>` | hash | the message record: `body` (versioned JSON, immutable), `status`, `lane`, `provider`, `pmid`, `error`, `attempt` (spent), `history`, `attempts`, `token` (current lease), `redeliver`, `pq` (priority class), `exp` (validity end), `batch`, `sx` (`<retention ms>:<recipient>`, for the search indexes; older records have `to` and `rt`); `attempt` and `updated` are absent until the first change (0 and `created`), `chain` (its place in a fallback chain); on a chain's first message also `fbn` (steps), `fbcur` (step in play), `fb<k>`/`fbr<k>` (step k's message id and why it was sent), `fbho` (hand-off pending), `fbok<k>`, `fbdone`, `outcome` |
//! | `P:{S}:q:<lane>` | list | the lane's ready FIFO for `normal` messages (`LPUSH` in, `RPOP` out; work that must go next is `RPUSH`ed) |
//! | `P:{S}:q:<lane>:high`, `P:{S}:q:<lane>:bulk` | list | the same for `high` and `bulk` messages |
//! | `P:{S}:wrr:<lane>` | string | the lane's weighted round-robin credits (`high,normal,bulk`; 60 s) |
//! | `P:{S}:exp` | zset | id → end of validity (ms), for queued messages with a `ttl_seconds` |
//! | `P:{S}:hold` | hash | present while an operator has paused the sender: `at` (ms), `reason`; no TTL, so it survives restarts |
//! | `P:{S}:b:<batch>` | zset | id → acceptance (ms): the sender's messages of one campaign; kept for the retention after its last member ended |
//! | `P:{S}:ix:to:<to>`, `P:{S}:ix:st:<status>` | zset | id → acceptance (ms): search indexes of the sender's messages by recipient and by current status (`sending` ones stay in `queued`'s; a search by sender alone merges the status indexes); each kept for the retention after its last write, and trimmed of entries whose records are gone as it is written |
//! | `P:batch:<batch>` | hash | a campaign: `created` (ms), `total`, `senders` (comma-separated); retention + 30 days |
//! | `P:{S}:lease` | zset | id → lease deadline (ms); an expired lease puts the message back |
//! | `P:{S}:delay` | zset | id → due time (ms): retries and `send_at` |
//! | `P:{S}:dlq` | zset | id → time it was dead-lettered; capped |
//! | `P:{S}:pause:<lane>` | string | present while the lane is paused (PX = pause) |
//! | `P:{S}:rate:<lane>` | string | the lane's GCRA theoretical arrival time (ms) |
//! | `P:{S}:fbwait` | zset | first message id → when its fallback chain is next checked (ms): the end of a step's wait, or a pending hand-off's recheck |
//! | `P:{S}:recon` | zset | id → last status news (ms), for submitted messages whose status is polled when callbacks stay silent |
//! | `P:ix:<id>` | string | id → sender, to find a message by id alone |
//! | `P:pm:<provider>:<provider id>` | string | the provider's message id → `sender\nid` (an alias such as INCS's chat id: `sender\nid\nthe attempt's provider id`), to apply callbacks |
//! | `P:{pmbuf}:<provider>:<provider id>` | list | status reports that came before the send's answer was recorded: the newest 16 per id, 1 h after the last |
//! | `P:{pmbuf}:ix` | zset | buffer key → its last write (ms): at most `engine.report_buffer_cap` ids, the oldest deleted beyond it |
//! | `P:idem:<api key>:<sha256>` | string | an `Idempotency-Key`'s state and stored response (`engine.idempotency_retention_secs`, 24 h) |
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
//! - Priorities are three ready lists per lane rather than one sorted set: pushes and pops stay
//!   O(1), retries and throttle pauses put a message back on its own class's list, and the claim
//!   script shares the sends between the classes that hold work by smooth weighted round robin
//!   (`engine.priority_weights`, default high 10, normal 4, bulk 1: with only `high` and `bulk`
//!   waiting, `bulk` still gets 1 send in 11).
//! - Validity is checked where a message is taken for sending (the claim script), and a sweep in
//!   the same script ends queued messages whose validity passed even while the sender is paused.
//!   A message already leased to a worker is left to it; if it comes back unsent, it expires then.
//! - An operator's sender pause is one key under the sender's tag, read by every claim script, so
//!   no instance sends for a paused sender and the pause survives restarts.
//! - A campaign may span senders: its record is global (`P:batch:<id>`), its members are kept per
//!   sender (`P:{S}:b:<id>`), so cancelling is one atomic script per sender and no claim can take a
//!   member once that script has run.

mod conn;
pub mod fallback;
mod group;
pub mod record;
mod scripts;
pub mod subscription;

use std::sync::Arc;
use std::time::Duration;

use gateway_core::{MessageId, MessageStatus, Priority};
use redis::{AsyncCommands, Script, Value};
use secrecy::ExposeSecret;

pub use conn::{Conn, RedisPool};

use crate::config::{EngineConfig, RedisConfig};
pub use record::{AttemptRecord, ChainLink, ErrorRecord, MessageRecord, StoredMessage};

#[derive(Debug, Clone, thiserror::Error)]
pub enum StoreError {
    #[error("redis unavailable: {0}")]
    Unavailable(String),
    #[error("redis call timed out")]
    Timeout,
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// Redis refused a write because it reached `maxmemory` (the connection is fine).
    #[error("redis is out of memory")]
    Full,
}

impl From<redis::RedisError> for StoreError {
    fn from(e: redis::RedisError) -> Self {
        // A write refused for memory, also from inside a script (whose error then carries the
        // command's own message).
        if e.code() == Some("OOM") || e.to_string().contains("OOM command not allowed") {
            return StoreError::Full;
        }
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
    renew: Script,
    cancel: Script,
    replay: Script,
    drop_dead_letter: Script,
    idempotency_begin: Script,
    failover: Script,
    apply_report: Script,
    reopen: Script,
    drain: Script,
    buffer_report: Script,
    chain: fallback::ChainScripts,
    cancel_batch: Script,
    batch_counts: Script,
}

/// Key names for one sender.
#[derive(Clone)]
pub struct SenderKeys {
    /// `<prefix>:{<sender>}`: every key of the sender starts with it.
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
    /// The lane's ready list for one priority class (`class`: `""`, `":high"`, `":bulk"`).
    pub fn ready_class(&self, lane: &str, class: &str) -> String {
        format!("{}:q:{lane}{class}", self.tag)
    }
    fn round_robin(&self, lane: &str) -> String {
        format!("{}:wrr:{lane}", self.tag)
    }
    pub fn validity(&self) -> String {
        format!("{}:exp", self.tag)
    }
    pub fn hold(&self) -> String {
        format!("{}:hold", self.tag)
    }
    pub fn batch(&self, batch: &str) -> String {
        format!("{}:b:{batch}", self.tag)
    }
    pub fn search_to(&self, to: &str) -> String {
        format!("{}:ix:to:{to}", self.tag)
    }
    /// Messages in `status` (`sending` ones are kept with `queued`).
    pub fn search_status(&self, status: MessageStatus) -> String {
        let status = if status == MessageStatus::Sending { MessageStatus::Queued } else { status };
        format!("{}:ix:st:{status}", self.tag)
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
/// The most reports kept for one provider id (a message gets a handful before its send is
/// recorded; beyond it the oldest go).
const REPORT_BUFFER_PER_ID: usize = 16;

/// What [`Engine::buffer_report`] did.
#[derive(Debug, Default)]
pub struct Buffered {
    /// The message the id turned out to name, with every report buffered for it, to apply now.
    pub owner: Option<(ProviderIdOwner, Vec<String>)>,
    /// Reports dropped to keep the buffer within its bounds.
    pub dropped: u64,
}

/// Every text of an `INFO` reply: one, or one per node of a cluster.
fn info_texts(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::BulkString(b) => out.push(String::from_utf8_lossy(b).into_owned()),
        Value::VerbatimString { text, .. } | Value::SimpleString(text) => out.push(text.clone()),
        Value::Array(items) | Value::Set(items) => items.iter().for_each(|i| info_texts(i, out)),
        Value::Map(pairs) => pairs.iter().for_each(|(_, i)| info_texts(i, out)),
        _ => {}
    }
}

/// `(used_memory, maxmemory)` from an `INFO memory` text.
fn memory_of(info: &str) -> Option<(u64, u64)> {
    let field =
        |name: &str| info.lines().find_map(|l| l.strip_prefix(name)?.strip_prefix(':')?.trim().parse::<u64>().ok());
    Some((field("used_memory")?, field("maxmemory").unwrap_or(0)))
}

/// What applying a provider's status report did.
/// How a failure reported by callback is tried again (the retry policy's decision).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopen<'a> {
    /// On the same account after `after`; `spend`: the attempt counts against the schedule.
    Retry { after: Duration, spend: bool },
    /// At the front of this next account's lane.
    FailOver(&'a str),
}

/// What [`Engine::reopen`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reopened {
    Retry,
    Failover,
    /// The message is not waiting on that send (final, delivered, or a later attempt).
    NotApplicable,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReportOutcome {
    /// The message moved to the reported status (from `previous`).
    Advanced { previous: MessageStatus, created_ms: i64, chain: Option<ChainLink> },
    /// Kept in the history only (it would have moved backwards, or the message is final).
    HistoryOnly,
    /// About an earlier attempt that a reported failure replaced: not applied.
    Stale,
    /// The same status was reported before.
    Duplicate,
    /// No such message (its retention ended).
    Missing,
    /// A reported failure sent the message round again (retry or failover).
    Retried,
}

/// The message a provider id belongs to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProviderIdOwner {
    pub sender: String,
    /// Our message id.
    pub id: String,
    /// For an id that stands for one attempt's own provider id (INCS's chat id, whose reports
    /// name nothing else): that provider id, so a report naming the alias is fenced like one
    /// naming the attempt.
    pub attempt: Option<String>,
}

impl ProviderIdOwner {
    pub fn new(sender: &str, id: &str) -> Self {
        Self { sender: sender.to_owned(), id: id.to_owned(), attempt: None }
    }

    fn encode(&self) -> String {
        match &self.attempt {
            Some(attempt) => format!("{}\n{}\n{attempt}", self.sender, self.id),
            None => format!("{}\n{}", self.sender, self.id),
        }
    }

    fn decode(value: &str) -> Option<Self> {
        let mut parts = value.splitn(3, '\n');
        let (sender, id) = (parts.next()?, parts.next()?);
        Some(Self { sender: sender.to_owned(), id: id.to_owned(), attempt: parts.next().map(str::to_owned) })
    }
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
    /// Its priority class's ready-list suffix: back on the same list if it must wait again.
    pub class: String,
}

/// The ready-list suffix of a priority class.
pub fn class_suffix(priority: Priority) -> &'static str {
    match priority {
        Priority::High => ":high",
        Priority::Normal => "",
        Priority::Bulk => ":bulk",
    }
}

#[derive(Debug)]
pub struct ClaimBatch {
    pub items: Vec<Claimed>,
    /// Messages of the sender whose validity ended while they waited: now `expired`.
    pub expired: Vec<String>,
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

/// A message search (`GET /v1/messages`): every filter given must match.
#[derive(Debug, Clone, Default)]
pub struct SearchQuery {
    pub senders: Vec<String>,
    pub to: Option<String>,
    pub status: Option<MessageStatus>,
    pub batch: Option<String>,
    /// Accepted at or after (ms).
    pub since_ms: Option<i64>,
    /// Accepted before (ms).
    pub until_ms: Option<i64>,
    pub limit: usize,
    /// Only messages after this position in the newest-first order.
    pub after: Option<SearchPosition>,
}

/// A place in the newest-first order of messages: acceptance time, then id.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct SearchPosition {
    pub accepted_ms: i64,
    pub id: String,
}

/// A page of search results, newest first.
#[derive(Debug, Default)]
pub struct SearchPage {
    pub items: Vec<MessageRecord>,
    /// Where the next page starts, when there may be one.
    pub next: Option<SearchPosition>,
}

/// An operator's pause of a sender.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hold {
    pub at_ms: i64,
    pub reason: Option<String>,
}

/// A campaign as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchRecord {
    pub created_ms: i64,
    pub total: u64,
    pub senders: Vec<String>,
}

/// What cancelling a campaign did: statuses after the cancel, and the ids it cancelled now.
#[derive(Debug, Default)]
pub struct BatchCancel {
    pub cancelled_now: Vec<String>,
    pub counts: std::collections::BTreeMap<String, u64>,
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
    idempotency_retention: Duration,
    lease: Duration,
    dead_letter_cap: usize,
    report_buffer_cap: usize,
    /// Claim weights of the priority classes: high, normal, bulk.
    weights: [u32; 3],
    scripts: Arc<Scripts>,
    /// Distinguishes this process's lease tokens from other instances'.
    instance: String,
    /// Replicas that must confirm an accepted message, and how long to wait for them.
    wait_replicas: Option<(u32, Duration)>,
    accepts: Arc<group::Group<AcceptItem, i64>>,
    submits: Arc<group::Group<SubmitItem, Option<Vec<String>>>>,
}

/// One job's part of a batch of accepts: the accept script's 12 arguments per job.
struct AcceptItem {
    /// Whether it gets an id index (messages do, event deliveries do not).
    indexed: bool,
    args: [String; 12],
}

/// One send's part of a batch of `submitted` records: the script's 7 arguments per message.
struct SubmitItem {
    args: [String; 7],
}

impl Engine {
    /// # Errors
    /// When the Redis URL cannot be used to build a pool (bad syntax); an unreachable Redis is not
    /// an error here: calls fail with [`StoreError::Unavailable`] until it is back.
    pub fn new(redis: &RedisConfig, engine: &EngineConfig) -> Result<Self, String> {
        let timeout = Duration::from_millis(redis.timeout_ms);
        let urls: Vec<String> = redis.url.expose_secret().split(',').map(|u| u.trim().to_owned()).collect();
        let pool = RedisPool::new(&urls, redis.cluster, timeout)?;
        Ok(Self {
            pool,
            prefix: redis.key_prefix.clone(),
            timeout,
            retention: Duration::from_secs(engine.retention_secs),
            idempotency_retention: Duration::from_secs(engine.idempotency_retention_secs),
            lease: Duration::from_millis(engine.lease_ms),
            dead_letter_cap: engine.dead_letter_cap,
            report_buffer_cap: engine.report_buffer_cap,
            weights: [engine.priority_weights.high, engine.priority_weights.normal, engine.priority_weights.bulk],
            scripts: Arc::new(Scripts {
                accept: scripts::accept(),
                claim: scripts::claim(),
                submitted: scripts::submitted(),
                failed: scripts::failed(),
                retry: scripts::retry(),
                throttled: scripts::throttled(),
                release: scripts::release(),
                renew: scripts::renew(),
                cancel: scripts::cancel(),
                replay: scripts::replay(),
                drop_dead_letter: scripts::drop_dead_letter(),
                idempotency_begin: scripts::idempotency_begin(),
                failover: scripts::failover(),
                apply_report: scripts::apply_report(),
                reopen: scripts::reopen(),
                drain: scripts::drain(),
                buffer_report: scripts::buffer_report(),
                chain: fallback::ChainScripts::new(),
                cancel_batch: scripts::cancel_batch(),
                batch_counts: scripts::batch_counts(),
            }),
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
            wait_replicas: (redis.wait_replicas > 0)
                .then(|| (redis.wait_replicas, Duration::from_millis(redis.wait_timeout_ms))),
            accepts: group::Group::new(),
            submits: group::Group::new(),
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

    /// How long an `Idempotency-Key` keeps its answer (`engine.idempotency_retention_secs`).
    pub fn idempotency_retention(&self) -> Duration {
        self.idempotency_retention
    }

    /// The configured key prefix (`gw`).
    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    /// The channel the scripts publish wake-ups on (heard by `delivery::wake`).
    pub fn wake_channel(&self) -> String {
        format!("{}:wake", self.prefix)
    }

    /// Clients that can subscribe to the wake-ups.
    pub fn wake_clients(&self) -> Vec<redis::Client> {
        self.pool.subscriber_clients()
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

    /// `(used_memory, maxmemory)` of each node (one, or every node of a cluster).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn memory(&self) -> Result<Vec<(u64, u64)>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let info: Value = redis::cmd("INFO").arg("memory").query_async(&mut c).await?;
            let mut texts = Vec::new();
            info_texts(&info, &mut texts);
            Ok(texts.iter().filter_map(|t| memory_of(t)).collect())
        })
        .await
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
        let job = Job::of_message(body);
        let body = serde_json::to_string(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.accept_with(&id.to_string(), sender, lane, &body, due_ms, true, &job).await
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
        self.accept_with(id, sender, lane, body, due_ms, indexed, &Job::default()).await
    }

    #[allow(clippy::too_many_arguments)]
    async fn accept_with(
        &self,
        id: &str,
        sender: &str,
        lane: &str,
        body: &str,
        due_ms: i64,
        indexed: bool,
        job: &Job<'_>,
    ) -> Result<i64, StoreError> {
        let now = self.accept_once(id, sender, lane, body, due_ms, indexed, job).await?;
        if now == 0 {
            return Err(StoreError::Corrupt(format!("job {id} already exists")));
        }
        Ok(now)
    }

    /// The accept script: the acceptance time, or 0 when a job with this id exists already. The
    /// job joins its sender's next batch ([`group`]).
    #[allow(clippy::too_many_arguments)]
    async fn accept_once(
        &self,
        id: &str,
        sender: &str,
        lane: &str,
        body: &str,
        due_ms: i64,
        indexed: bool,
        job: &Job<'_>,
    ) -> Result<i64, StoreError> {
        let item = AcceptItem {
            indexed,
            args: [
                id.to_owned(),
                body.to_owned(),
                lane.to_owned(),
                due_ms.to_string(),
                job.class.to_owned(),
                job.ttl_ms.to_string(),
                job.batch.to_owned(),
                job.to.to_owned(),
                job.chain.link.clone(),
                job.chain.steps.to_string(),
                job.chain.first_wait_ms.to_string(),
                job.chain.source.unwrap_or("api").to_owned(),
            ],
        };
        let engine = self.clone();
        self.accepts
            .submit(sender, item, move |sender, items| {
                let engine = engine.clone();
                async move { engine.accept_batch(&sender, items).await }
            })
            .await
    }

    /// One batch of a sender's accepts: the id indexes, then the script, in one round trip on a
    /// single Redis.
    async fn accept_batch(&self, sender: &str, items: Vec<AcceptItem>) -> Result<Vec<i64>, StoreError> {
        let keys = self.keys(sender);
        let mut pipe = redis::pipe();
        for item in items.iter().filter(|i| i.indexed) {
            // The index first: if the script never runs, it points at nothing (a 404), and no
            // message exists that cannot be found.
            pipe.set(self.index_key(&item.args[0]), sender);
        }
        let mut accept = redis::cmd("EVALSHA");
        accept
            .arg(self.scripts.accept.get_hash())
            .arg(3)
            .arg(keys.delay())
            .arg(keys.validity())
            .arg(keys.fallback_wait())
            .arg(&keys.tag)
            .arg(self.retention.as_millis() as u64);
        for item in &items {
            accept.arg(&item.args[..]);
        }
        pipe.add_command(accept);
        self.timed(async {
            let mut c = self.conn().await?;
            let replies = match c.in_order(&pipe).await {
                Err(e) if e.kind() == redis::ErrorKind::Server(redis::ServerErrorKind::NoScript) => {
                    // A Redis that restarted or was flushed: load the script, then all again
                    // (setting the id indexes twice is harmless).
                    self.scripts.accept.load_async(&mut c).await?;
                    c.in_order(&pipe).await?
                }
                other => other?,
            };
            let times = replies.into_iter().last().unwrap_or(Value::Nil);
            Ok(<Vec<i64> as redis::FromRedisValue>::from_redis_value(times).map_err(redis::RedisError::from)?)
        })
        .await
    }

    /// Whether the replicas `redis.wait_replicas` asks for hold an accepted message: Redis `WAIT`
    /// on the node of its record and on the node of its id index (the same on a single Redis),
    /// over the connection that wrote them, so that it covers those writes. Always true when no
    /// replica is asked for.
    ///
    /// `WAIT` holds the shared connection until it answers, so every call behind it waits as
    /// long: the price of the setting, paid only by those who turn it on.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn replicated(&self, sender: &str, id: &MessageId) -> Result<bool, StoreError> {
        let Some((replicas, timeout)) = self.wait_replicas else { return Ok(true) };
        let id = id.to_string();
        let keys = [self.keys(sender).message(&id), self.index_key(&id)];
        let mut wait = redis::cmd("WAIT");
        wait.arg(replicas).arg(timeout.as_millis() as u64);
        self.timed(async {
            let mut c = self.conn().await?;
            let confirmed: Vec<i64> = match &mut c {
                Conn::Single(single) => vec![wait.query_async(single).await?],
                Conn::Cluster(cluster) => {
                    use redis::cluster_routing::{Route, RoutingInfo, SingleNodeRoutingInfo, SlotAddr};
                    let mut out = Vec::with_capacity(keys.len());
                    for key in &keys {
                        let node = RoutingInfo::SingleNode(SingleNodeRoutingInfo::SpecificNode(Route::with_key(
                            key.as_bytes(),
                            SlotAddr::Master,
                        )));
                        let reply = cluster.route_command(wait.clone(), node).await?;
                        out.push(redis::from_redis_value(reply).map_err(redis::RedisError::from)?);
                    }
                    out
                }
            };
            Ok(confirmed.iter().all(|n| *n >= i64::from(replicas)))
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
                    .key(keys.ready_class(&lane.lane, ":high"))
                    .key(keys.ready_class(&lane.lane, ":bulk"))
                    .key(keys.round_robin(&lane.lane))
                    .key(keys.validity())
                    .key(keys.hold())
                    .arg(&lane.lane)
                    .arg(self.lease.as_millis() as u64)
                    .arg(max)
                    .arg(&self.instance)
                    .arg(keys.message_prefix())
                    .arg(keys.ready_prefix())
                    .arg(interval)
                    .arg(lane.burst)
                    .arg(self.weights[0])
                    .arg(self.weights[1])
                    .arg(self.weights[2])
                    .arg(self.retention.as_millis() as u64)
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        let batch = parse_claim(values)?;
        if !batch.expired.is_empty() && !self.indexless(&lane.sender) {
            // Ended: the id index lives as long as the record.
            self.timed(async {
                let mut c = self.conn().await?;
                for id in &batch.expired {
                    let () = c.pexpire(self.index_key(id), self.retention.as_millis() as i64).await?;
                }
                Ok(())
            })
            .await?;
        }
        Ok(batch)
    }

    /// Records a successful send. The record joins its sender's next batch ([`group`]).
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(None)` when the lease was lost (another worker owns the message now);
    /// otherwise the status reports that were buffered under the provider's id.
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
        let item = SubmitItem {
            args: [
                claim.id.clone(),
                claim.token.clone(),
                provider.to_owned(),
                pmid.to_owned(),
                json(attempt)?,
                lane.to_owned(),
                if reconcile { "1" } else { "0" }.to_owned(),
            ],
        };
        let engine = self.clone();
        self.submits
            .submit(sender, item, move |sender, items| {
                let engine = engine.clone();
                async move { engine.submitted_batch(&sender, items).await }
            })
            .await
    }

    /// One batch of a sender's successful sends: the script, then in one more round trip the id
    /// indexes' lifetimes, the provider ids' links and their report buffers.
    async fn submitted_batch(
        &self,
        sender: &str,
        items: Vec<SubmitItem>,
    ) -> Result<Vec<Option<Vec<String>>>, StoreError> {
        let keys = self.keys(sender);
        let mut script = self.scripts.submitted.prepare_invoke();
        script.key(keys.lease()).key(keys.reconcile()).key(keys.validity());
        script.arg(&keys.tag).arg(self.retention.as_millis() as u64);
        for item in &items {
            script.arg(&item.args[..]);
        }
        self.timed(async {
            let mut c = self.conn().await?;
            let recorded: Vec<i64> = script.invoke_async(&mut c).await?;
            if recorded.len() != items.len() {
                return Err(unknown_answer("submitted", &format!("{} answers for {}", recorded.len(), items.len())));
            }
            let retention = self.retention.as_millis() as i64;
            // The id index lives as long as the record; the provider's id is linked before its
            // report buffer is taken (`buffer_report` pushes, then reads the link), and taking an
            // empty buffer costs nothing more. Each buffer's reply is the last of its message's.
            let mut pipe = redis::pipe();
            // Per message: not recorded (None), or the position of its buffer's reply, if any.
            let mut takes = Vec::with_capacity(items.len());
            for (item, ok) in items.iter().zip(&recorded) {
                let [id, _, provider, pmid, ..] = &item.args;
                if *ok != 1 {
                    takes.push(None);
                    continue;
                }
                if !self.indexless(sender) {
                    pipe.pexpire(self.index_key(id), retention);
                }
                if pmid.is_empty() {
                    takes.push(Some(None));
                    continue;
                }
                let owner = ProviderIdOwner::new(sender, id).encode();
                pipe.pset_ex(self.provider_id_key(provider, pmid), owner, retention as u64);
                pipe.zrem(self.buffer_index_key(), self.buffer_key(provider, pmid));
                pipe.cmd("LPOP").arg(self.buffer_key(provider, pmid)).arg(REPORT_BUFFER_PER_ID);
                takes.push(Some(Some(pipe.len() - 1)));
            }
            let mut replies = if pipe.is_empty() { Vec::new() } else { c.in_order(&pipe).await? };
            let mut out = Vec::with_capacity(items.len());
            for take in takes {
                out.push(match take {
                    None => None,
                    Some(None) => Some(Vec::new()),
                    Some(Some(at)) => {
                        let taken = replies.get_mut(at).map_or(Value::Nil, |v| std::mem::replace(v, Value::Nil));
                        let taken = <Option<Vec<String>> as redis::FromRedisValue>::from_redis_value(taken)
                            .map_err(redis::RedisError::from)?;
                        Some(taken.unwrap_or_default())
                    }
                });
            }
            Ok(out)
        })
        .await
    }

    /// Events have no id index (see [`subscription::EventQueue`]).
    fn indexless(&self, sender: &str) -> bool {
        subscription::EventQueue::holds(sender)
    }

    fn provider_id_key(&self, provider: &str, pmid: &str) -> String {
        format!("{}:pm:{provider}:{pmid}", self.prefix)
    }

    /// Every early-report buffer shares one hash tag with its index, so one script bounds them.
    fn buffer_key(&self, provider: &str, pmid: &str) -> String {
        format!("{}:{{pmbuf}}:{provider}:{pmid}", self.prefix)
    }

    fn buffer_index_key(&self) -> String {
        format!("{}:{{pmbuf}}:ix", self.prefix)
    }

    /// How many provider ids have status reports waiting for their send's answer.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn buffered_report_ids(&self) -> Result<u64, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            Ok(c.zcard(self.buffer_index_key()).await?)
        })
        .await
    }

    /// Links another provider id (an InnoPaaS wamid, an INCS chat id) to a message, and takes the
    /// reports buffered under it. `attempt` is the provider id of the send the new id stands for,
    /// when it names one attempt only (INCS's chat id), so reports naming it can be told stale once
    /// that attempt is superseded.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn link_provider_id(
        &self,
        provider: &str,
        pmid: &str,
        owner: &ProviderIdOwner,
    ) -> Result<Vec<String>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let () = c
                .pset_ex(self.provider_id_key(provider, pmid), owner.encode(), self.retention.as_millis() as u64)
                .await?;
            Ok(self
                .scripts
                .drain
                .key(self.buffer_key(provider, pmid))
                .key(self.buffer_index_key())
                .invoke_async(&mut c)
                .await?)
        })
        .await
    }

    /// The sender of a message, by our id alone.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn sender_of_message(&self, id: &str) -> Result<Option<String>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            self.sender_of(&mut c, id).await
        })
        .await
    }

    /// Sends a message again after its provider reported a failure worth another attempt, as
    /// `decision` says. Only a message still `submitted` or `sent` under one of `ids`, with the
    /// `attempt` count the decision was made from (a report about an earlier attempt changes
    /// nothing).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    #[allow(clippy::too_many_arguments)]
    pub async fn reopen(
        &self,
        sender: &str,
        id: &str,
        ids: &[&str],
        at_ms: i64,
        source: &str,
        error: &ErrorRecord,
        attempt: u32,
        decision: Reopen<'_>,
    ) -> Result<Reopened, StoreError> {
        let keys = self.keys(sender);
        let error = json(error)?;
        let accepted: String = ids.iter().fold("|".to_owned(), |acc, s| format!("{acc}{s}|"));
        let (mode, delay_ms, next_lane) = match decision {
            Reopen::Retry { after, spend: true } => ("retry", after.as_millis() as u64, ""),
            Reopen::Retry { after, spend: false } => ("wait", after.as_millis() as u64, ""),
            Reopen::FailOver(next) => ("failover", 0, next),
        };
        self.timed(async {
            let mut c = self.conn().await?;
            let outcome: String = self
                .scripts
                .reopen
                .key(keys.message(id))
                .key(keys.delay())
                .key(keys.reconcile())
                .arg(&accepted)
                .arg(at_ms)
                .arg(source)
                .arg(&error)
                .arg(mode)
                .arg(attempt)
                .arg(next_lane)
                .arg(delay_ms)
                .arg(id)
                .arg(keys.ready_prefix())
                .invoke_async(&mut c)
                .await?;
            let reopened = match outcome.as_str() {
                "retry" => Reopened::Retry,
                "failover" => Reopened::Failover,
                "skip" => Reopened::NotApplicable,
                other => return Err(unknown_answer("reopen", other)),
            };
            if reopened != Reopened::NotApplicable {
                // Queued again: the id index must outlive the wait, as for any queued message.
                let () = c.persist(self.index_key(id)).await?;
            }
            Ok(reopened)
        })
        .await
    }

    /// Finds our message by the provider's id: `(sender, id)`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn find_by_provider_id(&self, provider: &str, pmid: &str) -> Result<Option<ProviderIdOwner>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let v: Option<String> = c.get(self.provider_id_key(provider, pmid)).await?;
            Ok(v.as_deref().and_then(ProviderIdOwner::decode))
        })
        .await
    }

    /// Keeps a report for a provider id we do not know yet, within the buffer's bounds (TTL,
    /// `engine.report_buffer_cap` ids, the newest reports of each id). If the id became known
    /// meanwhile, returns everything buffered for it (including this report) for the caller to
    /// apply now.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn buffer_report(&self, provider: &str, pmid: &str, report: &str) -> Result<Buffered, StoreError> {
        let key = self.buffer_key(provider, pmid);
        let index = self.buffer_index_key();
        self.timed(async {
            let mut c = self.conn().await?;
            let dropped: u64 = self
                .scripts
                .buffer_report
                .key(&key)
                .key(&index)
                .arg(report)
                .arg(REPORT_BUFFER_TTL.as_millis() as u64)
                .arg(self.report_buffer_cap)
                .arg(REPORT_BUFFER_PER_ID)
                .invoke_async(&mut c)
                .await?;
            // The send's answer may have been recorded between our lookup and the push.
            let v: Option<String> = c.get(self.provider_id_key(provider, pmid)).await?;
            let Some(owner) = v.as_deref().and_then(ProviderIdOwner::decode) else {
                return Ok(Buffered { owner: None, dropped });
            };
            let items: Vec<String> = self.scripts.drain.key(&key).key(&index).invoke_async(&mut c).await?;
            Ok(Buffered { owner: Some((owner, items)), dropped })
        })
        .await
    }

    /// Applies a reported status to a message; `advances_from` are the statuses from which the
    /// report moves the message forward (computed by gateway-core's status machine); `ids` are the
    /// provider ids the report names, so one about a superseded attempt is not applied.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    #[allow(clippy::too_many_arguments)]
    pub async fn apply_report(
        &self,
        sender: &str,
        id: &str,
        ids: &[&str],
        reported: MessageStatus,
        at_ms: i64,
        source: &str,
        error: Option<&ErrorRecord>,
        advances_from: &[MessageStatus],
    ) -> Result<ReportOutcome, StoreError> {
        let keys = self.keys(sender);
        let error = error.map(json).transpose()?.unwrap_or_default();
        let from: String = advances_from.iter().fold("|".to_owned(), |acc, s| format!("{acc}{}|", s.as_str()));
        let done = reported.is_final();
        let ids: String = ids.iter().fold("|".to_owned(), |acc, s| format!("{acc}{s}|"));
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
                .arg(&ids)
                .invoke_async(&mut c)
                .await?;
            Ok(match outcome.as_str() {
                "advanced" => ReportOutcome::Advanced {
                    previous: previous.parse().map_err(StoreError::Corrupt)?,
                    created_ms: created,
                    chain: ChainLink::decode(&chain),
                },
                "history" => ReportOutcome::HistoryOnly,
                "stale" => ReportOutcome::Stale,
                "duplicate" => ReportOutcome::Duplicate,
                "missing" => ReportOutcome::Missing,
                other => return Err(unknown_answer("apply_report", other)),
            })
        })
        .await
    }

    /// Submitted messages with no status news for `quiet`: `(id, lane, provider message id)`.
    /// When there are none, also how long until one can be: its reconciliation set is scored by
    /// when each message was submitted or last polled, so its oldest entry is the next to go
    /// quiet, and an entry added later goes quiet no sooner than `quiet` from now.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn quiet_messages(
        &self,
        sender: &str,
        quiet: Duration,
        limit: usize,
    ) -> Result<(Vec<(String, String, String)>, Option<Duration>), StoreError> {
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
            if ids.is_empty() {
                let oldest: Vec<(String, i64)> = redis::cmd("ZRANGE")
                    .arg(keys.reconcile())
                    .arg(0)
                    .arg(0)
                    .arg("WITHSCORES")
                    .query_async(&mut c)
                    .await?;
                let quiet_ms = i64::try_from(quiet.as_millis()).unwrap_or(i64::MAX);
                let due_in = oldest.first().map_or(quiet_ms, |(_, at)| at.saturating_add(quiet_ms) - now);
                return Ok((Vec::new(), Some(Duration::from_millis(u64::try_from(due_in).unwrap_or(0)))));
            }
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
            Ok((out, None))
        })
        .await
    }

    /// Records a final failure; `dead_letter` when retries were exhausted. `attempt` joins the
    /// record's attempts: a message's [`AttemptRecord`], or an event's delivery.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn failed(
        &self,
        sender: &str,
        claim: &Claimed,
        error: &ErrorRecord,
        attempt: &impl serde::Serialize,
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
                .key(keys.validity())
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
        attempt: &impl serde::Serialize,
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
                .key(keys.ready_class(lane, &claim.class))
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
            ready_len(&mut c, &self.keys(sender), lane).await
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
                .key(keys.ready_class(next_lane, &claim.class))
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

    /// How long a claim holds its message before another worker may claim it again.
    pub fn lease(&self) -> Duration {
        self.lease
    }

    /// Extends a claim's lease by a whole lease from now.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease has moved on (the token no longer holds it).
    pub async fn renew(&self, sender: &str, claim: &Claimed) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .renew
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(self.lease.as_millis() as u64)
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
                .key(keys.ready_class(lane, &claim.class))
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
                .key(keys.validity())
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
                [Value::Int(0)] => Ok(CancelOutcome::NotFound),
                other => Err(StoreError::Corrupt(format!("unexpected cancel answer {other:?}"))),
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
                d.ready.push((lane.clone(), ready_len(&mut c, &keys, lane).await?));
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

    /// Pauses a sender for every instance until [`Engine::resume`]. Pausing again keeps the first
    /// pause's time and takes the new reason. Returns the pause.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn hold(&self, sender: &str, reason: Option<&str>) -> Result<Hold, StoreError> {
        let key = self.keys(sender).hold();
        self.timed(async {
            let mut c = self.conn().await?;
            let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await?;
            let () = redis::pipe()
                .atomic()
                .cmd("HSETNX")
                .arg(&key)
                .arg("at")
                .arg(secs * 1000 + micros / 1000)
                .ignore()
                .cmd("HSET")
                .arg(&key)
                .arg("reason")
                .arg(reason.unwrap_or_default())
                .ignore()
                .query_async(&mut c)
                .await?;
            // Every instance looks at the sender again (its lanes stop, its gauges show the pause).
            let _: i64 =
                redis::cmd("PUBLISH").arg(self.wake_channel()).arg(format!("*{sender}")).query_async(&mut c).await?;
            Ok(())
        })
        .await?;
        self.held(sender).await?.ok_or_else(|| StoreError::Corrupt("the pause vanished".into()))
    }

    /// Ends an operator's pause of a sender. Returns whether it was paused.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn resume(&self, sender: &str) -> Result<bool, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            // The sender's lanes may sleep long while held: they are woken to look again.
            let mut pipe = redis::pipe();
            pipe.del(self.keys(sender).hold()).publish(self.wake_channel(), format!("*{sender}"));
            let deleted = c.in_order(&pipe).await?.into_iter().next().unwrap_or(Value::Nil);
            let n: u64 = redis::from_redis_value(deleted).map_err(redis::RedisError::from)?;
            Ok(n == 1)
        })
        .await
    }

    /// The operator's pause of a sender, if any.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn held(&self, sender: &str) -> Result<Option<Hold>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let (at, reason): (Option<i64>, Option<String>) =
                redis::cmd("HMGET").arg(self.keys(sender).hold()).arg("at").arg("reason").query_async(&mut c).await?;
            Ok(at.map(|at_ms| Hold { at_ms, reason: reason.filter(|r| !r.is_empty()) }))
        })
        .await
    }

    fn batch_key(&self, batch: &str) -> String {
        format!("{}:batch:{batch}", self.prefix)
    }

    /// How long a campaign's record is kept: past the retention of its last member, which may
    /// wait up to 30 days for its `send_at`.
    fn batch_ttl(&self) -> Duration {
        self.retention + Duration::from_secs(u64::from(gateway_core::request::MAX_TTL_SECONDS))
    }

    /// Records a campaign once its messages are stored.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn create_batch(&self, batch: &str, total: u64, senders: &[String]) -> Result<i64, StoreError> {
        let key = self.batch_key(batch);
        self.timed(async {
            let mut c = self.conn().await?;
            let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await?;
            let now = secs * 1000 + micros / 1000;
            let () = redis::pipe()
                .atomic()
                .hset_multiple(
                    &key,
                    &[("created", now.to_string()), ("total", total.to_string()), ("senders", senders.join(","))],
                )
                .ignore()
                .pexpire(&key, self.batch_ttl().as_millis() as i64)
                .ignore()
                .query_async(&mut c)
                .await?;
            Ok(now)
        })
        .await
    }

    /// A campaign's record.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or the record is unreadable.
    pub async fn batch(&self, batch: &str) -> Result<Option<BatchRecord>, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let f: std::collections::HashMap<String, String> = c.hgetall(self.batch_key(batch)).await?;
            if f.is_empty() {
                return Ok(None);
            }
            let int = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
            Ok(Some(BatchRecord {
                created_ms: int("created"),
                total: u64::try_from(int("total")).unwrap_or(0),
                senders: f
                    .get("senders")
                    .map(|s| s.split(',').filter(|s| !s.is_empty()).map(str::to_owned).collect())
                    .unwrap_or_default(),
            }))
        })
        .await
    }

    /// The statuses of a campaign's messages on one sender.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn batch_counts(
        &self,
        sender: &str,
        batch: &str,
    ) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let flat: Vec<Value> = self
                .scripts
                .batch_counts
                .key(keys.batch(batch))
                .arg(keys.message_prefix())
                .invoke_async(&mut c)
                .await?;
            pairs(&flat)
        })
        .await
    }

    /// Cancels a campaign's messages on one sender that no provider has yet.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn cancel_batch(&self, sender: &str, batch: &str) -> Result<BatchCancel, StoreError> {
        let keys = self.keys(sender);
        self.timed(async {
            let mut c = self.conn().await?;
            let flat: Vec<Value> = self
                .scripts
                .cancel_batch
                .key(keys.batch(batch))
                .key(keys.delay())
                .key(keys.validity())
                .arg(keys.message_prefix())
                .arg(self.retention.as_millis() as u64)
                .invoke_async(&mut c)
                .await?;
            let n = match flat.first() {
                Some(Value::Int(n)) => usize::try_from(*n).unwrap_or(0),
                _ => return Err(StoreError::Corrupt("unexpected batch cancel answer".into())),
            };
            let cancelled_now = flat[1..=n].iter().map(value_text).collect::<Result<Vec<_>, _>>()?;
            let counts = pairs(&flat[n + 1..])?;
            for id in &cancelled_now {
                let () = c.pexpire(self.index_key(id), self.retention.as_millis() as i64).await?;
            }
            Ok(BatchCancel { cancelled_now, counts })
        })
        .await
    }

    /// Finds messages through the search indexes of each sender, never by scanning: the narrowest
    /// index that applies (campaign, recipient, status, all) is read newest first, and the other
    /// filters are checked on the records it names.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or a record is unreadable.
    pub async fn search(&self, q: &SearchQuery) -> Result<SearchPage, StoreError> {
        let mut found: Vec<(SearchPosition, MessageRecord)> = Vec::new();
        let mut more = false;
        for sender in &q.senders {
            let (hits, sender_more) = self.search_sender(sender, q).await?;
            more |= sender_more;
            found.extend(hits);
        }
        found.sort_by(|a, b| b.0.cmp(&a.0));
        if found.len() > q.limit {
            found.truncate(q.limit);
            more = true;
        }
        let next = if more { found.last().map(|(p, _)| p.clone()) } else { None };
        Ok(SearchPage { items: found.into_iter().map(|(_, r)| r).collect(), next })
    }

    async fn search_sender(
        &self,
        sender: &str,
        q: &SearchQuery,
    ) -> Result<(Vec<(SearchPosition, MessageRecord)>, bool), StoreError> {
        let keys = self.keys(sender);
        let indexes: Vec<String> = match (&q.batch, &q.to, q.status) {
            (Some(b), _, _) => vec![keys.batch(b)],
            (None, Some(to), _) => vec![keys.search_to(to)],
            (None, None, Some(st)) => vec![keys.search_status(st)],
            // Every message is in exactly one status index: merged, they are all the sender's.
            (None, None, None) => MessageStatus::ALL
                .into_iter()
                .filter(|s| *s != MessageStatus::Sending)
                .map(|s| keys.search_status(s))
                .collect(),
        };
        let max = match (&q.after, q.until_ms) {
            (Some(a), Some(u)) if u <= a.accepted_ms => format!("({u}"),
            (Some(a), _) => a.accepted_ms.to_string(),
            (None, Some(u)) => format!("({u}"),
            (None, None) => "+inf".to_owned(),
        };
        let min = q.since_ms.map_or("-inf".to_owned(), |s| s.to_string());
        let page = (q.limit + 1).clamp(16, 256);
        let mut merged: Vec<IndexRun> = indexes.into_iter().map(IndexRun::new).collect();
        self.timed(async {
            let mut c = self.conn().await?;
            let mut out = Vec::new();
            loop {
                // Refill, in one round trip, every index whose read-ahead ran out.
                let refill: Vec<usize> = (0..merged.len()).filter(|&i| merged[i].needs_more()).collect();
                if !refill.is_empty() {
                    let mut pipe = redis::pipe();
                    for &i in &refill {
                        pipe.cmd("ZREVRANGEBYSCORE")
                            .arg(&merged[i].key)
                            .arg(&max)
                            .arg(&min)
                            .arg("WITHSCORES")
                            .arg("LIMIT")
                            .arg(merged[i].offset)
                            .arg(page);
                    }
                    let pages: Vec<Vec<(String, f64)>> = pipe.query_async(&mut c).await?;
                    for (i, entries) in refill.into_iter().zip(pages) {
                        merged[i].take(entries, page, q.after.as_ref());
                    }
                    continue;
                }
                // Newest first across the indexes, as far as every one of them has been read.
                let mut candidates = Vec::new();
                while candidates.len() < page && !merged.iter().any(IndexRun::needs_more) {
                    let Some(next) = merged
                        .iter_mut()
                        .filter(|r| !r.ahead.is_empty())
                        .max_by(|a, b| a.ahead[0].cmp(&b.ahead[0]))
                        .and_then(|r| r.ahead.pop_front())
                    else {
                        break;
                    };
                    candidates.push(next);
                }
                if candidates.is_empty() {
                    return Ok((out, false));
                }
                let mut pipe = redis::pipe();
                for p in &candidates {
                    pipe.hgetall(keys.message(&p.id));
                }
                let records: Vec<std::collections::HashMap<String, String>> = pipe.query_async(&mut c).await?;
                for (p, fields) in candidates.into_iter().zip(records) {
                    if fields.is_empty() {
                        continue; // its retention ended; the index drops it as it is written
                    }
                    let r = MessageRecord::from_fields(fields)?;
                    let m = r.body.v1();
                    let matches = q.to.as_deref().is_none_or(|to| m.message.to.as_str() == to)
                        && q.status.is_none_or(|st| r.status == st)
                        && q.batch.as_deref().is_none_or(|b| r.body.batch_id() == Some(b));
                    if matches {
                        out.push((p, r));
                        if out.len() > q.limit {
                            return Ok((out, true));
                        }
                    }
                }
            }
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

/// One search index read newest first, a page at a time, for merging with others.
struct IndexRun {
    key: String,
    /// Entries read so far.
    offset: usize,
    /// Read and not yet merged, newest first.
    ahead: std::collections::VecDeque<SearchPosition>,
    exhausted: bool,
}

impl IndexRun {
    fn new(key: String) -> Self {
        Self { key, offset: 0, ahead: std::collections::VecDeque::new(), exhausted: false }
    }

    fn needs_more(&self) -> bool {
        self.ahead.is_empty() && !self.exhausted
    }

    /// Keeps a page's entries that come after the cursor (those at the cursor's own millisecond
    /// may not).
    fn take(&mut self, entries: Vec<(String, f64)>, page: usize, after: Option<&SearchPosition>) {
        self.offset += entries.len();
        self.exhausted = entries.len() < page;
        self.ahead.extend(
            entries
                .into_iter()
                .map(|(id, score)| SearchPosition { accepted_ms: score as i64, id })
                .filter(|p| after.is_none_or(|a| p < a)),
        );
    }
}

/// What a message adds to a plain job at acceptance.
#[derive(Default)]
struct Job<'a> {
    class: &'static str,
    ttl_ms: u64,
    batch: &'a str,
    /// The recipient, for the search indexes (messages only).
    to: &'a str,
    chain: ChainJob<'a>,
}

/// A fallback chain message's additions at acceptance.
#[derive(Default)]
struct ChainJob<'a> {
    /// The encoded [`record::ChainLink`] (empty: not in a chain).
    link: String,
    /// Steps after it (the first message only).
    steps: usize,
    first_wait_ms: u64,
    /// What the `queued` history entry names as its source (default `api`).
    source: Option<&'a str>,
}

impl<'a> Job<'a> {
    /// A message's priority class, validity, campaign and recipient, from its stored body.
    fn of_message(body: &'a StoredMessage) -> Self {
        Self {
            class: class_suffix(body.priority()),
            ttl_ms: body.ttl_seconds().map_or(0, |s| u64::from(s) * 1000),
            batch: body.batch_id().unwrap_or_default(),
            to: body.v1().message.to.as_str(),
            chain: ChainJob::default(),
        }
    }
}

/// Messages waiting in all of a lane's ready lists.
async fn ready_len(c: &mut Conn, keys: &SenderKeys, lane: &str) -> Result<u64, StoreError> {
    let mut n = 0;
    for class in ["", ":high", ":bulk"] {
        let len: u64 = c.llen(keys.ready_class(lane, class)).await?;
        n += len;
    }
    Ok(n)
}

fn json<T: serde::Serialize>(v: &T) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn value_text(v: &Value) -> Result<String, StoreError> {
    match v {
        Value::BulkString(b) => String::from_utf8(b.clone()).map_err(|e| StoreError::Corrupt(e.to_string())),
        Value::SimpleString(s) => Ok(s.clone()),
        Value::Int(i) => Ok(i.to_string()),
        other => Err(StoreError::Corrupt(format!("unexpected script value {other:?}"))),
    }
}

/// `{name, count, name, count, ...}` from a script.
fn pairs(flat: &[Value]) -> Result<std::collections::BTreeMap<String, u64>, StoreError> {
    let mut out = std::collections::BTreeMap::new();
    for pair in flat.chunks(2) {
        let [name, n] = pair else { return Err(StoreError::Corrupt("odd count list".into())) };
        out.insert(value_text(name)?, value_text(n)?.parse().unwrap_or(0));
    }
    Ok(out)
}

/// A script answered something its reader does not know: the two are out of step (a script from
/// another version of the gateway, say). Failing loudly beats guessing an outcome.
fn unknown_answer(script: &str, answer: &str) -> StoreError {
    StoreError::Corrupt(format!("{script} answered {answer:?}"))
}

fn parse_claim(values: Vec<Value>) -> Result<ClaimBatch, StoreError> {
    let text = value_text;
    let mut it = values.iter();
    let wait = match it.next() {
        Some(Value::Int(ms)) if *ms > 0 => Some(Duration::from_millis(*ms as u64)),
        Some(Value::Int(0)) => Some(Duration::ZERO),
        Some(Value::Int(_)) | None => None,
        Some(other) => return Err(StoreError::Corrupt(format!("unexpected claim header {other:?}"))),
    };
    let idle = match it.next() {
        Some(Value::Int(0)) => IdleReason::None,
        Some(Value::Int(1)) => IdleReason::Paused,
        Some(Value::Int(2)) => IdleReason::RateLimited,
        Some(Value::Int(3)) => IdleReason::Empty,
        other => return Err(StoreError::Corrupt(format!("unexpected claim idle reason {other:?}"))),
    };
    let n_expired = match it.next() {
        Some(Value::Int(n)) => {
            usize::try_from(*n).map_err(|_| StoreError::Corrupt(format!("claim expired count {n}")))?
        }
        other => return Err(StoreError::Corrupt(format!("unexpected claim expired count {other:?}"))),
    };
    let expired = it.by_ref().take(n_expired).map(text).collect::<Result<Vec<_>, _>>()?;
    let rest: Vec<&Value> = it.collect();
    let mut items = Vec::with_capacity(rest.len() / 6);
    for chunk in rest.chunks(6) {
        let [id, token, body, attempt, redeliver, class] = chunk else {
            return Err(StoreError::Corrupt("claim result has a partial entry".into()));
        };
        items.push(Claimed {
            id: text(id)?,
            token: text(token)?,
            body: text(body)?,
            attempt: text(attempt)?.parse().unwrap_or(0),
            redelivery: text(redeliver)? == "1",
            class: text(class)?,
        });
    }
    Ok(ClaimBatch { items, expired, wait, idle })
}
