//! The engine's side of cross-channel fallback: a chain's state and timer in the first
//! message's slot, and the scripts that move it (see the module header of `engine` for the keys
//! and the hand-off across slots).

use std::time::Duration;

use gateway_core::{MessageId, MessageStatus};
use redis::{FromRedisValue, Script, ToRedisArgs, Value};

use super::record::{ChainLink, StoredMessage};
use super::{json, scripts, ChainJob, Engine, Job, StoreError};

pub(super) struct ChainScripts {
    due: Script,
    advance: Script,
    handed: Script,
    reached: Script,
    close: Script,
    rearm: Script,
}

impl ChainScripts {
    pub(super) fn new() -> Self {
        Self {
            due: scripts::fallback_due(),
            advance: scripts::fallback_advance(),
            handed: scripts::fallback_handed(),
            reached: scripts::fallback_reached(),
            close: scripts::fallback_close(),
            rearm: scripts::fallback_rearm(),
        }
    }
}

/// What the first message's record says about its chain.
#[derive(Debug, Clone)]
pub struct ChainView {
    pub body: StoredMessage,
    pub current: u8,
    pub done: bool,
    pub handing_off: bool,
}

/// A message's status as a chain check reads it, with the server's time of the read.
#[derive(Debug, Clone, Copy)]
pub struct StepStatus {
    /// `None`: the record is gone (its retention ended).
    pub status: Option<MessageStatus>,
    pub submitted_at_ms: Option<i64>,
    pub now_ms: i64,
}

/// How a chain was closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed {
    /// This call closed it (it was open, at the expected step).
    pub now: bool,
    pub current: u8,
    pub handing_off: bool,
}

fn int(v: &Value) -> i64 {
    match v {
        Value::Int(i) => *i,
        Value::BulkString(b) => String::from_utf8_lossy(b).parse().unwrap_or(0),
        _ => 0,
    }
}

impl Engine {
    /// Stores and queues a message of a chain through the same script as any message (priority
    /// class, validity, search indexes). `steps` > 0 for the first message, which also gets its
    /// chain state and a first check `first_wait` after it is due. A step's id is chosen at
    /// acceptance, so a hand-off repeated after a crash finds it: returns the acceptance time, or
    /// `None` when a message with this id exists already.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or slow.
    #[allow(clippy::too_many_arguments)]
    pub async fn accept_chained(
        &self,
        id: &MessageId,
        sender: &str,
        lane: &str,
        body: &StoredMessage,
        due_ms: i64,
        link: &ChainLink,
        steps: usize,
        first_wait: Duration,
        source: &str,
    ) -> Result<Option<i64>, StoreError> {
        let mut job = Job::of_message(body);
        job.chain =
            ChainJob { link: link.encode(), steps, first_wait_ms: first_wait.as_millis() as u64, source: Some(source) };
        let body = json(body)?;
        let now = self.accept_once(&id.to_string(), sender, lane, &body, due_ms, true, &job).await?;
        Ok((now != 0).then_some(now))
    }

    /// Chains of a sender whose timer is due, each leased for `lease`, and how long until the
    /// earliest timer left is due (`None`: no chain waits).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn fallback_due(
        &self,
        sender: &str,
        max: usize,
        lease: Duration,
    ) -> Result<(Vec<String>, Option<Duration>), StoreError> {
        let keys = self.keys(sender);
        let reply: Vec<Value> = self
            .timed(async {
                let mut c = self.conn().await?;
                Ok(self
                    .scripts
                    .chain
                    .due
                    .key(keys.fallback_wait())
                    .arg(max)
                    .arg(lease.as_millis() as u64)
                    .invoke_async(&mut c)
                    .await?)
            })
            .await?;
        let mut it = reply.into_iter();
        let next = match it.next() {
            Some(Value::Int(ms)) => u64::try_from(ms).ok().map(Duration::from_millis),
            other => return Err(StoreError::Corrupt(format!("unexpected fallback_due answer {other:?}"))),
        };
        let ids = it.map(redis::from_redis_value::<String>).collect::<Result<Vec<_>, _>>();
        Ok((ids.map_err(|e| StoreError::Corrupt(e.to_string()))?, next))
    }

    /// The chain as its first message holds it (`None`: gone).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable or the record cannot be read.
    pub async fn chain_view(&self, sender: &str, id: &str) -> Result<Option<ChainView>, StoreError> {
        let key = self.keys(sender).message(id);
        self.timed(async {
            let mut c = self.conn().await?;
            let (body, cur, done, ho): (Option<String>, Option<u8>, Option<String>, Option<String>) =
                redis::cmd("HMGET")
                    .arg(&key)
                    .arg("body")
                    .arg("fbcur")
                    .arg("fbdone")
                    .arg("fbho")
                    .query_async(&mut c)
                    .await?;
            let Some(body) = body else { return Ok(None) };
            let body = serde_json::from_str(&body).map_err(|e| StoreError::Corrupt(e.to_string()))?;
            Ok(Some(ChainView {
                body,
                current: cur.unwrap_or(0),
                done: done.as_deref() == Some("1"),
                handing_off: ho.as_deref() == Some("1"),
            }))
        })
        .await
    }

    /// A message's status and submission time, read across slots.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn step_status(&self, sender: &str, id: &str) -> Result<StepStatus, StoreError> {
        let key = self.keys(sender).message(id);
        self.timed(async {
            let mut c = self.conn().await?;
            let (status, submitted): (Option<String>, Option<i64>) =
                redis::cmd("HMGET").arg(&key).arg("status").arg("submitted_at").query_async(&mut c).await?;
            let (secs, micros): (i64, i64) = redis::cmd("TIME").query_async(&mut c).await?;
            let status = status.map(|s| s.parse()).transpose().map_err(StoreError::Corrupt)?;
            Ok(StepStatus { status, submitted_at_ms: submitted, now_ms: secs * 1000 + micros / 1000 })
        })
        .await
    }

    /// Runs one of the chain's transitions in the first message's slot: every one takes the
    /// message and the sender's fallback wait set as keys, and the first message's id first.
    async fn chain_transition<T: FromRedisValue>(
        &self,
        script: &Script,
        parent_sender: &str,
        parent_id: &str,
        args: impl ToRedisArgs,
    ) -> Result<T, StoreError> {
        let keys = self.keys(parent_sender);
        self.timed(async {
            let mut c = self.conn().await?;
            Ok(script
                .key(keys.message(parent_id))
                .key(keys.fallback_wait())
                .arg(parent_id)
                .arg(args)
                .invoke_async(&mut c)
                .await?)
        })
        .await
    }

    /// Moves the chain from step `current` to the next, whose message id is `step_id`.
    ///
    /// # Errors
    /// [`StoreError`]; `Ok(false)` when another caller moved it, or it is over.
    pub async fn fallback_advance(
        &self,
        parent_sender: &str,
        parent_id: &str,
        current: u8,
        step_id: &MessageId,
        reason: &str,
        recheck: Duration,
    ) -> Result<bool, StoreError> {
        let args = (current, step_id.to_string(), reason, recheck.as_millis() as u64);
        let ok: i64 = self.chain_transition(&self.scripts.chain.advance, parent_sender, parent_id, args).await?;
        Ok(ok == 1)
    }

    /// Ends the hand-off of `step`: 1 done by this call, 2 done but the chain was closed
    /// meanwhile, 0 done by another caller.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn fallback_handed(
        &self,
        parent_sender: &str,
        parent_id: &str,
        step: u8,
        next_wait: Option<Duration>,
    ) -> Result<i64, StoreError> {
        let args = (step, next_wait.map_or(0, |d| d.as_millis() as u64));
        self.chain_transition(&self.scripts.chain.handed, parent_sender, parent_id, args).await
    }

    /// Records that `step` (message `id`) reached its status. Returns `(late, first time)`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn fallback_reached(
        &self,
        parent_sender: &str,
        parent_id: &str,
        step: u8,
        id: &str,
    ) -> Result<(bool, bool), StoreError> {
        let (late, counted): (i64, i64) =
            self.chain_transition(&self.scripts.chain.reached, parent_sender, parent_id, (step, id)).await?;
        Ok((late == 1, counted == 1))
    }

    /// Closes a chain (at step `expected`, or wherever it is when `None`).
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn fallback_close(
        &self,
        parent_sender: &str,
        parent_id: &str,
        expected: Option<u8>,
    ) -> Result<Closed, StoreError> {
        let expected = expected.map_or(-1, i64::from);
        let out: Vec<Value> =
            self.chain_transition(&self.scripts.chain.close, parent_sender, parent_id, expected).await?;
        let [closed, cur, ho] = out.as_slice() else {
            return Err(StoreError::Corrupt("unexpected fallback_close answer".into()));
        };
        Ok(Closed { now: int(closed) == 1, current: u8::try_from(int(cur)).unwrap_or(0), handing_off: int(ho) == 1 })
    }

    /// Sets the chain's next check at `at_ms` (server clock), if it is still at step `current`.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable.
    pub async fn fallback_rearm(
        &self,
        parent_sender: &str,
        parent_id: &str,
        current: u8,
        at_ms: i64,
    ) -> Result<bool, StoreError> {
        let ok: i64 =
            self.chain_transition(&self.scripts.chain.rearm, parent_sender, parent_id, (current, at_ms)).await?;
        Ok(ok == 1)
    }
}
