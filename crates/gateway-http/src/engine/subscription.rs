//! What the engine keeps about an event subscription beyond its deliveries (which are ordinary
//! jobs in the lanes `p<k>` of the hash tag `{ev:<subscription>}`):
//!
//! | key | type | holds |
//! | --- | --- | --- |
//! | `P:{ev:S}:health` | hash | `failing_since` (ms, cleared by any delivery that succeeds), `disabled_at` (ms) |
//!
//! A subscriber that is down must not grow Redis without bound: each partition keeps at most its
//! share of `max_pending` events, none older than `max_age`; what is pushed out is dead-lettered
//! (the subscription's `dlq`, capped like every dead-letter set), oldest first, so the subscriber
//! gets the newest events, in order, when it is back. A delivered event is deleted at once:
//! nothing reads it again, and at four events a message it would otherwise be most of Redis.

use std::sync::LazyLock;
use std::time::Duration;

use redis::{AsyncCommands, Script, Value};

use super::scripts::script;
use super::{json, Claimed, Engine, ErrorRecord, StoreError};

/// The key tag of a subscription's events, `ev:<subscription>`.
///
/// Events borrow the lane machinery of messages (claim, lease, retry, dead letters: one
/// implementation of at-least-once), but they are not messages: no id index, no provider, no
/// status to report. This type is how the engine tells them apart; the `ev:` prefix is written
/// and read only here.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EventQueue(String);

impl EventQueue {
    const PREFIX: &'static str = "ev:";

    pub fn of(subscription: &str) -> Self {
        Self(format!("{}{subscription}", Self::PREFIX))
    }

    /// The tag the lane operations take (as a sender's name for messages).
    pub fn tag(&self) -> &str {
        &self.0
    }

    /// Whether a lane tag holds events rather than messages.
    pub(super) fn holds(tag: &str) -> bool {
        tag.starts_with(Self::PREFIX)
    }
}

struct Scripts {
    accept: Script,
    trim: Script,
    delivered: Script,
    failing: Script,
}

static SCRIPTS: LazyLock<Scripts> =
    LazyLock::new(|| Scripts { accept: accept(), trim: trim(), delivered: delivered(), failing: failing() });

/// `bound(list, dlq, keep, max_age_ms, cap, prefix, retention, over_count, over_age, budget)`:
/// dead-letters the oldest events of one partition beyond `keep` events or `max_age_ms` (0: no
/// limit), at most `budget` of them, and caps the dead-letter set (dead letters pushed out lose
/// their records). Returns `{over the count, over the age}`.
const BOUND: &str = r#"
local function bound(list, dlq, keep, max_age, cap, prefix, retention, over_count, over_age, budget)
  local function bury(id, err)
    local mk = prefix .. id
    if redis.call('HGET', mk, 'status') ~= 'queued' then return 0 end
    set_status(mk, 'failed')
    redis.call('HSET', mk, 'error', err, 'updated', now)
    history(mk, 'failed', now, 'gateway')
    redis.call('ZADD', dlq, now, id)
    redis.call('PEXPIRE', mk, retention)
    return 1
  end
  local by_count, by_age = 0, 0
  local excess = math.min(redis.call('LLEN', list) - keep, budget)
  while excess > 0 do
    local id = redis.call('RPOP', list)
    if not id then break end
    by_count = by_count + bury(id, over_count)
    excess = excess - 1
    budget = budget - 1
  end
  while max_age > 0 and budget > 0 do
    local id = redis.call('LINDEX', list, -1)
    if not id then break end
    local created = tonumber(redis.call('HGET', prefix .. id, 'created') or '0')
    if created > now - max_age then break end
    redis.call('RPOP', list)
    by_age = by_age + bury(id, over_age)
    budget = budget - 1
  end
  local excess_dl = redis.call('ZCARD', dlq) - cap
  if excess_dl > 0 then
    local oldest = redis.call('ZRANGE', dlq, 0, excess_dl - 1)
    redis.call('ZREMRANGEBYRANK', dlq, 0, excess_dl - 1)
    for _, old in ipairs(oldest) do redis.call('DEL', prefix .. old) end
  end
  return {by_count, by_age}
end
"#;

/// Bounds one partition (see `BOUND`).
///
/// KEYS: the partition's ready list, the subscription's dead-letter set.
/// ARGV: most events kept, most age ms (0: none), dead-letter cap, record key prefix, retention
/// ms, error JSON for events over the count, error JSON for events over the age, most events
/// dead-lettered by this call.
fn trim() -> Script {
    script(&format!(
        r#"{BOUND}
return bound(KEYS[1], KEYS[2], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4],
  tonumber(ARGV[5]), ARGV[6], ARGV[7], tonumber(ARGV[8]))
"#
    ))
}

/// Stores and queues an event, then bounds its partition, in one step: a backlog never holds
/// more than its share of `max_pending`, however many callbacks emit at once.
///
/// KEYS: event record, the partition's ready list, the subscription's dead-letter set.
/// ARGV: id, job body, partition, then ARGV 1-8 of `trim`.
/// Returns `{over the count, over the age}`, or `{-1, 0}` when the id exists already.
fn accept() -> Script {
    script(&format!(
        r#"{BOUND}
if redis.call('EXISTS', KEYS[1]) == 1 then return {{-1, 0}} end
redis.call('HSET', KEYS[1], 'body', ARGV[2], 'lane', ARGV[3], 'attempt', 0, 'created', now, 'updated', now)
set_status(KEYS[1], 'queued')
history(KEYS[1], 'queued', now, 'api')
redis.call('LPUSH', KEYS[2], ARGV[1])
return bound(KEYS[2], KEYS[3], tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6]), ARGV[7],
  tonumber(ARGV[8]), ARGV[9], ARGV[10], tonumber(ARGV[11]))
"#
    ))
}

/// The subscriber took the event: it is deleted, and the subscription is no longer failing.
///
/// KEYS: event record, lease set, health. ARGV: id, token.
/// Returns 1, or 0 when the token no longer holds the lease.
fn delivered() -> Script {
    script(
        r#"
if not fenced(KEYS[1], KEYS[2], ARGV[1], ARGV[2]) then return 0 end
redis.call('DEL', KEYS[1])
redis.call('HDEL', KEYS[3], 'failing_since')
return 1
"#,
    )
}

/// A delivery failed: the subscription is failing since now unless it already was; past
/// `disable_after` ms of failing it is disabled.
///
/// KEYS: health. ARGV: disable after ms.
/// Returns `{failing since ms, 0 | 1 disabled now | 2 already disabled}`.
fn failing() -> Script {
    script(
        r#"
redis.call('HSETNX', KEYS[1], 'failing_since', now)
local since = tonumber(redis.call('HGET', KEYS[1], 'failing_since'))
if redis.call('HEXISTS', KEYS[1], 'disabled_at') == 1 then return {since, 2} end
if now - since >= tonumber(ARGV[1]) then
  redis.call('HSET', KEYS[1], 'disabled_at', now)
  return {since, 1}
end
return {since, 0}
"#,
    )
}

/// The limits of one partition's backlog, and why what goes beyond them is dead-lettered.
#[derive(Debug, Clone)]
pub struct Bounds<'a> {
    /// Most events kept.
    pub keep: u64,
    pub max_age: Option<Duration>,
    pub over_count: &'a ErrorRecord,
    pub over_age: &'a ErrorRecord,
    /// Most events dead-lettered by one call (a lowered limit is reached over several calls, so
    /// no one script blocks Redis for long).
    pub budget: u64,
}

/// Why events were dead-lettered by [`Engine::trim_backlog`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Trimmed {
    pub over_count: u64,
    pub over_age: u64,
}

/// A subscription's failure state, shared by every instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Health {
    pub failing_since_ms: Option<i64>,
    pub disabled_at_ms: Option<i64>,
}

/// What recording a failed delivery found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failing {
    Since(i64),
    /// This failure passed the limit: the subscription is disabled from now.
    DisabledNow,
    AlreadyDisabled,
}

/// An event dead letter as stored.
#[derive(Debug, Clone)]
pub struct EventDeadLetter {
    pub id: String,
    pub dead_lettered_ms: i64,
    pub body: String,
    pub lane: String,
    pub error: Option<ErrorRecord>,
    pub attempts: u32,
    pub created_ms: i64,
}

impl Engine {
    fn health_key(&self, queue: &EventQueue) -> String {
        format!("{}:health", self.keys(queue.tag()).tag)
    }

    /// Stores and queues an event in a partition, and dead-letters what the partition then holds
    /// beyond its bounds.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or slow: the event may or may not be queued.
    pub async fn accept_event(
        &self,
        id: &str,
        queue: &EventQueue,
        lane: &str,
        body: &str,
        bounds: &Bounds<'_>,
    ) -> Result<Trimmed, StoreError> {
        let keys = self.keys(queue.tag());
        let (over_count, over_age) = (json(bounds.over_count)?, json(bounds.over_age)?);
        self.timed(async {
            let mut c = self.conn().await?;
            let (by_count, by_age): (i64, u64) = SCRIPTS
                .accept
                .key(keys.message(id))
                .key(keys.ready(lane))
                .key(keys.dead_letters())
                .arg(id)
                .arg(body)
                .arg(lane)
                .arg(bounds.keep)
                .arg(bounds.max_age.map_or(0, |a| a.as_millis() as u64))
                .arg(self.dead_letter_cap)
                .arg(keys.message_prefix())
                .arg(self.retention.as_millis() as u64)
                .arg(&over_count)
                .arg(&over_age)
                .arg(bounds.budget)
                .invoke_async(&mut c)
                .await?;
            if by_count < 0 {
                return Err(StoreError::Corrupt(format!("event {id} already exists")));
            }
            Ok(Trimmed { over_count: by_count as u64, over_age: by_age })
        })
        .await
    }

    /// Dead-letters the oldest events of a partition beyond its bounds.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn trim_backlog(
        &self,
        queue: &EventQueue,
        lane: &str,
        bounds: &Bounds<'_>,
    ) -> Result<Trimmed, StoreError> {
        let keys = self.keys(queue.tag());
        let (over_count, over_age) = (json(bounds.over_count)?, json(bounds.over_age)?);
        self.timed(async {
            let mut c = self.conn().await?;
            let (by_count, by_age): (u64, u64) = SCRIPTS
                .trim
                .key(keys.ready(lane))
                .key(keys.dead_letters())
                .arg(bounds.keep)
                .arg(bounds.max_age.map_or(0, |a| a.as_millis() as u64))
                .arg(self.dead_letter_cap)
                .arg(keys.message_prefix())
                .arg(self.retention.as_millis() as u64)
                .arg(&over_count)
                .arg(&over_age)
                .arg(bounds.budget)
                .invoke_async(&mut c)
                .await?;
            Ok(Trimmed { over_count: by_count, over_age: by_age })
        })
        .await
    }

    /// Records a delivered event (and deletes it).
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when the lease was lost.
    pub async fn event_delivered(&self, queue: &EventQueue, claim: &Claimed) -> Result<bool, StoreError> {
        let keys = self.keys(queue.tag());
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = SCRIPTS
                .delivered
                .key(keys.message(&claim.id))
                .key(keys.lease())
                .key(self.health_key(queue))
                .arg(&claim.id)
                .arg(&claim.token)
                .invoke_async(&mut c)
                .await?;
            Ok(ok == 1)
        })
        .await
    }

    /// Records that a delivery of the subscription failed.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn subscription_failing(
        &self,
        queue: &EventQueue,
        disable_after: Duration,
    ) -> Result<Failing, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let (since, state): (i64, i64) = SCRIPTS
                .failing
                .key(self.health_key(queue))
                .arg(disable_after.as_millis() as u64)
                .invoke_async(&mut c)
                .await?;
            Ok(match state {
                1 => Failing::DisabledNow,
                2 => Failing::AlreadyDisabled,
                _ => Failing::Since(since),
            })
        })
        .await
    }

    /// The subscription's failure state.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn subscription_health(&self, queue: &EventQueue) -> Result<Health, StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let (since, disabled): (Option<i64>, Option<i64>) = redis::cmd("HMGET")
                .arg(self.health_key(queue))
                .arg("failing_since")
                .arg("disabled_at")
                .query_async(&mut c)
                .await?;
            Ok(Health { failing_since_ms: since, disabled_at_ms: disabled })
        })
        .await
    }

    /// Enables the subscription again, with a fresh failing period.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn enable_subscription(&self, queue: &EventQueue) -> Result<(), StoreError> {
        self.timed(async {
            let mut c = self.conn().await?;
            let () = c.del(self.health_key(queue)).await?;
            Ok(())
        })
        .await
    }

    /// Events waiting in the given partitions (not counting those in flight).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn backlog(&self, queue: &EventQueue, lanes: &[String]) -> Result<u64, StoreError> {
        let keys = self.keys(queue.tag());
        self.timed(async {
            let mut c = self.conn().await?;
            let mut n = 0u64;
            for lane in lanes {
                let len: u64 = c.llen(keys.ready(lane)).await?;
                n += len;
            }
            Ok(n)
        })
        .await
    }

    /// The newest event dead letters of a subscription, newest first.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or a record cannot be read.
    pub async fn event_dead_letters(
        &self,
        queue: &EventQueue,
        limit: usize,
    ) -> Result<Vec<EventDeadLetter>, StoreError> {
        let keys = self.keys(queue.tag());
        self.timed(async {
            let mut c = self.conn().await?;
            let ids: Vec<(String, f64)> =
                c.zrevrange_withscores(keys.dead_letters(), 0, limit.saturating_sub(1) as isize).await?;
            let mut out = Vec::with_capacity(ids.len());
            for (id, at) in ids {
                if let Some(d) = self.read_event(&mut c, queue.tag(), &id, at as i64).await? {
                    out.push(d);
                }
            }
            Ok(out)
        })
        .await
    }

    /// One event dead letter of a subscription.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or the record cannot be read.
    pub async fn event_dead_letter(&self, queue: &EventQueue, id: &str) -> Result<Option<EventDeadLetter>, StoreError> {
        let keys = self.keys(queue.tag());
        self.timed(async {
            let mut c = self.conn().await?;
            let at: Option<f64> = c.zscore(keys.dead_letters(), id).await?;
            match at {
                Some(at) => self.read_event(&mut c, queue.tag(), id, at as i64).await,
                None => Ok(None),
            }
        })
        .await
    }

    async fn read_event(
        &self,
        c: &mut super::Conn,
        sender: &str,
        id: &str,
        at: i64,
    ) -> Result<Option<EventDeadLetter>, StoreError> {
        let keys = self.keys(sender);
        let fields: Vec<Value> = redis::cmd("HMGET")
            .arg(keys.message(id))
            .arg(&["body", "lane", "error", "attempt", "created"])
            .query_async(c)
            .await?;
        let text = |i: usize| match fields.get(i) {
            Some(Value::BulkString(b)) => Some(String::from_utf8_lossy(b).into_owned()),
            _ => None,
        };
        let Some(body) = text(0) else {
            // Its retention ended: the entry points at nothing.
            let () = c.zrem(keys.dead_letters(), id).await?;
            return Ok(None);
        };
        let error = text(2).filter(|e| !e.is_empty()).and_then(|e| serde_json::from_str(&e).ok());
        Ok(Some(EventDeadLetter {
            id: id.to_owned(),
            dead_lettered_ms: at,
            body,
            lane: text(1).unwrap_or_default(),
            error,
            attempts: text(3).and_then(|a| a.parse().ok()).unwrap_or(0),
            created_ms: text(4).and_then(|a| a.parse().ok()).unwrap_or(0),
        }))
    }

    /// Puts an event dead letter back at the front of its partition. Returns its partition, or
    /// `None` when it is not a dead letter of this subscription.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn replay_event(&self, queue: &EventQueue, id: &str) -> Result<Option<String>, StoreError> {
        let keys = self.keys(queue.tag());
        self.timed(async {
            let mut c = self.conn().await?;
            let ok: i64 = self
                .scripts
                .replay
                .key(keys.message(id))
                .key(keys.dead_letters())
                .arg(id)
                .arg(keys.ready_prefix())
                .invoke_async(&mut c)
                .await?;
            if ok != 1 {
                return Ok(None);
            }
            let lane: Option<String> = c.hget(keys.message(id), "lane").await?;
            Ok(lane)
        })
        .await
    }
}
