//! The delivery engine: Redis is the only store, and every accepted message is in it before the
//! API answers 202.
//!
//! # Data structures
//! All keys of one sender share the hash tag `{<sender>}`, so each Lua script touches one slot and
//! the engine runs unchanged on a Redis Cluster. A sender's lanes are its provider accounts.
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{S}:m:<id>` | hash | the message record: `body` (versioned JSON, immutable), `status`, `lane`, `provider`, `pmid`, `error`, `attempt` (spent), `history`, `attempts`, `token` (current lease), `redeliver` |
//! | `P:{S}:q:<lane>` | list | the lane's ready FIFO (`LPUSH` in, `RPOP` out; work that must go next is `RPUSH`ed) |
//! | `P:{S}:lease` | zset | id → lease deadline (ms); an expired lease puts the message back |
//! | `P:{S}:delay` | zset | id → due time (ms): retries and `send_at` |
//! | `P:{S}:dlq` | zset | id → time it was dead-lettered; capped |
//! | `P:{S}:pause:<lane>` | string | present while the lane is paused (PX = pause) |
//! | `P:{S}:rate:<lane>` | string | the lane's GCRA theoretical arrival time (ms) |
//! | `P:ix:<id>` | string | id → sender, to find a message by id alone |
//!
//! # Why this shape
//! - A lease set with fencing tokens, not `BLMOVE` to a processing list: a worker that dies leaves a
//!   lease that simply expires, and a worker whose lease expired cannot acknowledge (its token no
//!   longer matches), so a message is never acknowledged twice.
//! - Message records get a TTL (retention) only once they are with the provider or final, so
//!   nothing queued can expire.
//! - The rate limit (GCRA) is checked inside the claim script, so instances sharing a lane share
//!   its rate exactly, without a round trip per message.

mod scripts;
pub mod record;
pub mod worker;

use std::sync::Arc;
use std::time::Duration;

use deadpool_redis::{Pool, Runtime};
use gateway_core::{MessageId, MessageStatus};
use redis::{AsyncCommands, Script, Value};
use secrecy::ExposeSecret;

use crate::config::{EngineConfig, RedisConfig};
pub use record::{AttemptRecord, ErrorRecord, MessageRecord, StoredMessage};

/// Dead letters kept per sender; the oldest go first.
pub const DEAD_LETTER_CAP: usize = 10_000;

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

impl From<deadpool_redis::PoolError> for StoreError {
    fn from(e: deadpool_redis::PoolError) -> Self {
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
    pool: Pool,
    prefix: String,
    timeout: Duration,
    retention: Duration,
    lease: Duration,
    scripts: Arc<Scripts>,
    /// Distinguishes this process's lease tokens from other instances'.
    instance: String,
}

impl Engine {
    /// # Errors
    /// When the Redis URL cannot be used to build a pool (bad syntax); an unreachable Redis is not
    /// an error here: calls fail with [`StoreError::Unavailable`] until it is back.
    pub fn new(redis: &RedisConfig, engine: &EngineConfig) -> Result<Self, String> {
        let mut cfg = deadpool_redis::Config::from_url(redis.url.expose_secret());
        let timeout = Duration::from_millis(redis.timeout_ms);
        cfg.pool = Some(deadpool_redis::PoolConfig {
            max_size: redis.pool_size,
            timeouts: deadpool_redis::Timeouts { wait: Some(timeout), create: Some(timeout), recycle: Some(timeout) },
            ..Default::default()
        });
        // The pool error text may contain the URL (and its password): never pass it on.
        let pool = cfg.create_pool(Some(Runtime::Tokio1)).map_err(|_| "redis.url: cannot build a connection pool".to_owned())?;
        Ok(Self {
            pool,
            prefix: redis.key_prefix.clone(),
            timeout,
            retention: Duration::from_secs(engine.retention_secs),
            lease: Duration::from_millis(engine.lease_ms),
            scripts: Arc::new(Scripts {
                accept: scripts::accept(),
                claim: scripts::claim(),
                submitted: scripts::submitted(),
                failed: scripts::failed(),
                retry: scripts::retry(),
                throttled: scripts::throttled(),
            }),
            instance: uuid::Uuid::new_v4().simple().to_string()[..12].to_owned(),
        })
    }

    pub fn keys(&self, sender: &str) -> SenderKeys {
        SenderKeys::new(&self.prefix, sender)
    }

    fn index_key(&self, id: &str) -> String {
        format!("{}:ix:{id}", self.prefix)
    }

    async fn conn(&self) -> Result<deadpool_redis::Connection, StoreError> {
        Ok(self.pool.get().await?)
    }

    async fn timed<T>(&self, f: impl std::future::Future<Output = Result<T, StoreError>>) -> Result<T, StoreError> {
        tokio::time::timeout(self.timeout, f).await.map_err(|_| StoreError::Timeout)?
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
    pub async fn accept(&self, id: &MessageId, sender: &str, lane: &str, body: &StoredMessage, due_ms: i64) -> Result<i64, StoreError> {
        let id = id.to_string();
        let keys = self.keys(sender);
        let body = serde_json::to_string(body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
        self.timed(async {
            let mut c = self.conn().await?;
            // The index first: if the script never runs, it points at nothing (a 404), and no
            // message exists that cannot be found.
            let () = c.set(self.index_key(&id), sender).await?;
            let now: i64 = self
                .scripts
                .accept
                .key(keys.message(&id))
                .key(keys.ready(lane))
                .key(keys.delay())
                .arg(&id)
                .arg(&body)
                .arg(lane)
                .arg(due_ms)
                .invoke_async(&mut c)
                .await?;
            if now == 0 {
                return Err(StoreError::Corrupt(format!("message {id} already exists")));
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
    pub async fn submitted(&self, sender: &str, claim: &Claimed, lane: &str, provider: &str, pmid: &str, attempt: &AttemptRecord) -> Result<bool, StoreError> {
        let keys = self.keys(sender);
        let attempt = json(attempt)?;
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .submitted
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .arg(&claim.id)
                .arg(&claim.token)
                .arg(provider)
                .arg(pmid)
                .arg(&attempt)
                .arg(self.retention.as_millis() as u64)
                .arg(lane)
                .invoke_async(&mut c)
                .await?;
            if ok == 1 {
                let () = c.pexpire(self.index_key(&claim.id), self.retention.as_millis() as i64).await?;
            }
            Ok(ok == 1)
        })
        .await
    }

    /// Records a final failure; `dead_letter` when retries were exhausted.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn failed(&self, sender: &str, claim: &Claimed, error: &ErrorRecord, attempt: &AttemptRecord, dead_letter: bool, source: &str) -> Result<bool, StoreError> {
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
                .arg(DEAD_LETTER_CAP)
                .arg(source)
                .invoke_async(&mut c)
                .await?;
            if ok == 1 {
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
    pub async fn retry(&self, sender: &str, claim: &Claimed, error: &ErrorRecord, attempt: &AttemptRecord, delay: Duration, spend: bool) -> Result<bool, StoreError> {
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
    pub async fn throttled(&self, sender: &str, lane: &str, claim: &Claimed, attempt: &AttemptRecord, pause: Duration) -> Result<bool, StoreError> {
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

    pub fn status_of(record: &MessageRecord) -> MessageStatus {
        record.status
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
    Ok(ClaimBatch { items, wait })
}
