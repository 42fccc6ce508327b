//! Cross-channel fallback chains at run time: what moves a chain on (a step ending undelivered, a
//! wait ending, a step reaching its status, a cancel), the timer loop that checks waiting chains,
//! and the hand-off that creates a step's message.
//!
//! Status reports and the engine's own outcomes call [`Chains::on_status`] at once, so a failed
//! step is followed within a report's round trip; the timer loop catches everything else (waits
//! that end, hand-offs an instance died in the middle of, reports lost between the two slots).
//! Every move is fenced in the first message's slot by the step in play, so instances that race
//! on a chain send each step once.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chrono::{SecondsFormat, Utc};
use futures::StreamExt;
use gateway_core::MessageStatus;
use serde_json::json;
use tokio_util::sync::CancellationToken;
use tracing::{debug, warn};

use crate::config::MESSAGE_FALLBACK;
use crate::delivery::events::Events;
use crate::delivery::worker::Lanes;
use crate::engine::fallback::ChainView;
use crate::engine::record::{ChainLink, StoredMessage, StoredMessageV1, StoredMessageV2};
use crate::engine::{Engine, StoreError};
use crate::metrics::Metrics;

/// How long a pending hand-off waits before the timer loop finishes it (an instance died in it).
const HANDOFF_RECHECK: Duration = Duration::from_secs(2);
/// How long a due chain is leased to the instance checking it.
const DUE_LEASE: Duration = Duration::from_secs(2);
/// How often the timer loop looks for due chains: the precision of a wait's end.
const TICK: Duration = Duration::from_millis(100);
/// Chains checked at once by one instance.
const CONCURRENT_CHECKS: usize = 16;

#[derive(Clone)]
pub struct Chains {
    pub engine: Engine,
    pub events: Events,
    pub metrics: Metrics,
    pub lanes: Arc<Lanes>,
}

impl Chains {
    /// A message of a chain moved to `status`: the chain's outcome when it reached its `until`,
    /// the next step when it ended undelivered.
    pub async fn on_status(&self, id: &str, link: &ChainLink, status: MessageStatus) {
        let result = async {
            if status.reaches(link.until) {
                self.reached(id, link).await
            } else if status.ended_undelivered() {
                self.check(&link.parent_sender, &link.parent_id.to_string()).await
            } else {
                Ok(())
            }
        }
        .await;
        if let Err(e) = result {
            // The timer loop checks the chain again.
            warn!(error = %e, message_id = %id, "could not move a fallback chain on");
        }
    }

    async fn reached(&self, id: &str, link: &ChainLink) -> Result<(), StoreError> {
        let parent = link.parent_id.to_string();
        let (late, first) = self.engine.fallback_reached(&link.parent_sender, &parent, link.step, id).await?;
        if late && first {
            self.metrics.fallback_late_success.inc();
        }
        Ok(())
    }

    /// Looks at the step in play and moves the chain on if it must.
    ///
    /// # Errors
    /// [`StoreError`] when Redis is unreachable: the timer loop checks again.
    pub async fn check(&self, parent_sender: &str, parent_id: &str) -> Result<(), StoreError> {
        let Some(view) = self.engine.chain_view(parent_sender, parent_id).await? else {
            // Gone (retention ended): drop its timer.
            self.engine.fallback_rearm(parent_sender, parent_id, 0, -1).await?;
            return Ok(());
        };
        let current = view.current;
        if view.done {
            self.engine.fallback_rearm(parent_sender, parent_id, current, -1).await?;
            return Ok(());
        }
        if view.handing_off {
            return self.hand_off(parent_sender, parent_id, &view, current).await;
        }
        let steps = &view.body.v1().fallback;
        let (sender, id, until) = match current {
            0 => (parent_sender.to_owned(), parent_id.to_owned(), steps.first().map(|s| s.until)),
            k => {
                let Some(step) = steps.get(usize::from(k) - 1) else { return Ok(()) };
                (
                    step.sender.clone(),
                    step.id.to_string(),
                    Some(steps.get(usize::from(k)).map_or(step.until, |s| s.until)),
                )
            }
        };
        let Some(until) = until else { return Ok(()) };
        let next_after = steps.get(usize::from(current)).map(|s| i64::from(s.after_seconds) * 1000);
        let st = self.engine.step_status(&sender, &id).await?;
        match (st.status, next_after) {
            (Some(s), _) if s.reaches(until) => {
                let link = ChainLink {
                    parent_sender: parent_sender.to_owned(),
                    parent_id: view.body.v1().id,
                    step: current,
                    until,
                };
                self.reached(&id, &link).await
            }
            (None, None) => self.engine.fallback_close(parent_sender, parent_id, Some(current)).await.map(drop),
            (Some(s), None) if s.ended_undelivered() => {
                self.engine.fallback_close(parent_sender, parent_id, Some(current)).await.map(drop)
            }
            // The last step is in play: only its own reports decide now.
            (Some(_), None) => self.engine.fallback_rearm(parent_sender, parent_id, current, -1).await.map(drop),
            // A record gone before its end counts as undelivered.
            (None, Some(_)) => self.advance(parent_sender, parent_id, &view, "failed").await,
            (Some(s), Some(_)) if s.ended_undelivered() => {
                self.advance(parent_sender, parent_id, &view, s.as_str()).await
            }
            (Some(s), Some(after_ms)) if s.is_with_provider() => {
                let deadline = st.submitted_at_ms.unwrap_or(st.now_ms) + after_ms;
                if st.now_ms >= deadline {
                    self.advance(parent_sender, parent_id, &view, "timeout").await
                } else {
                    self.engine.fallback_rearm(parent_sender, parent_id, current, deadline).await.map(drop)
                }
            }
            // Not with the provider yet: the wait starts when it is; look again a wait from now.
            (Some(_), Some(after_ms)) => {
                self.engine.fallback_rearm(parent_sender, parent_id, current, st.now_ms + after_ms).await.map(drop)
            }
        }
    }

    async fn advance(
        &self,
        parent_sender: &str,
        parent_id: &str,
        view: &ChainView,
        reason: &str,
    ) -> Result<(), StoreError> {
        let m = view.body.v1();
        let current = view.current;
        let Some(step) = m.fallback.get(usize::from(current)) else { return Ok(()) };
        if !self.engine.fallback_advance(parent_sender, parent_id, current, &step.id, reason, HANDOFF_RECHECK).await? {
            return Ok(());
        }
        let (from, previous_id) = match current {
            0 => (m.message.channel(), m.id),
            k => {
                let prev = &m.fallback[usize::from(k) - 1];
                (prev.message.channel(), prev.id)
            }
        };
        let to = step.message.channel();
        self.metrics.fallbacks.with_label_values(&[from.as_str(), to.as_str(), reason]).inc();
        debug!(message_id = %m.id, step = current + 1, reason, "fallback step triggered");
        let data = json!({
            "message_id": m.id.to_string(),
            "step": current + 1,
            "step_message_id": step.id.to_string(),
            "previous_message_id": previous_id.to_string(),
            "from_channel": from,
            "channel": to,
            "sender": step.sender,
            "to": m.message.to.as_str(),
            "reason": reason,
            "metadata": step.message.metadata,
            "at": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        });
        if let Err(e) = self.events.emit(MESSAGE_FALLBACK, parent_id, data, view.body.traceparent()).await {
            warn!(error = %e, message_id = %m.id, "could not emit a fallback event");
        }
        self.hand_off(parent_sender, parent_id, view, current + 1).await
    }

    /// Creates step `k`'s message (again, harmlessly, after a crash) and ends the hand-off.
    async fn hand_off(&self, parent_sender: &str, parent_id: &str, view: &ChainView, k: u8) -> Result<(), StoreError> {
        let m = view.body.v1();
        let Some(step) = m.fallback.get(usize::from(k).wrapping_sub(1)) else { return Ok(()) };
        let next = m.fallback.get(usize::from(k));
        let link = ChainLink {
            parent_sender: parent_sender.to_owned(),
            parent_id: m.id,
            step: k,
            until: next.map_or(step.until, |s| s.until),
        };
        let Some(lane) = step.lanes.first() else { return Ok(()) };
        let body = StoredMessage::V2(StoredMessageV2 {
            base: StoredMessageV1 {
                id: step.id,
                sender: step.sender.clone(),
                lanes: step.lanes.clone(),
                message: step.message.clone(),
                fallback: Vec::new(),
                chain: Some(link.clone()),
            },
            priority: step.priority,
            ttl_seconds: step.ttl_seconds,
            batch_id: None,
            traceparent: view.body.traceparent().map(str::to_owned),
        });
        let created = self
            .engine
            .accept_chained(&step.id, &step.sender, lane, &body, 0, &link, 0, Duration::ZERO, "fallback")
            .await?;
        if created.is_some() {
            let channel = step.message.channel();
            let kind = step.message.content.content_type();
            self.metrics.accepted.with_label_values(&[channel.as_str(), kind.as_str()]).inc();
            self.metrics.transitions.with_label_values(&["queued"]).inc();
            if let Some(l) = self.lanes.get(lane) {
                l.wake.notify_one();
            }
        }
        let next_wait = next.map(|s| Duration::from_secs(u64::from(s.after_seconds)));
        if self.engine.fallback_handed(parent_sender, parent_id, k, next_wait).await? == 2 {
            // Cancelled while the step was being created: it must not go out.
            let _ = self.engine.cancel(&step.id).await?;
        }
        Ok(())
    }

    /// Checks due chains of every sender until `stop`: a sender is looked at when its earliest
    /// timer is due, when a wake-up says a timer was set, and at least every `idle_max` (every
    /// tick while wake-ups are not heard).
    pub fn spawn_timer(self, senders: Vec<String>, wake: TimerWake, stop: CancellationToken) {
        tokio::spawn(async move {
            let mut next_at = vec![Instant::now(); senders.len()];
            loop {
                let (all, rung) = wake.bells.take();
                let live = wake.state.live();
                for (sender, next) in senders.iter().zip(next_at.iter_mut()) {
                    let now = Instant::now();
                    if all || !live || rung.contains(sender) {
                        *next = now;
                    }
                    if *next > now {
                        continue;
                    }
                    *next = match self.engine.fallback_due(sender, 256, DUE_LEASE).await {
                        Ok((ids, _)) if !ids.is_empty() => {
                            futures::stream::iter(ids)
                                .for_each_concurrent(CONCURRENT_CHECKS, |id| {
                                    let this = &self;
                                    async move {
                                        if let Err(e) = this.check(sender, &id).await {
                                            warn!(error = %e, message_id = %id, "fallback check failed; it is retried");
                                        }
                                    }
                                })
                                .await;
                            now
                        }
                        Ok((_, due_in)) => now + due_in.map_or(wake.idle_max, |d| d.min(wake.idle_max)),
                        Err(e) => {
                            debug!(error = %e, sender, "fallback timers unreadable");
                            now
                        }
                    };
                }
                tokio::select! {
                    () = tokio::time::sleep(TICK) => {},
                    () = stop.cancelled() => break,
                }
            }
        });
    }
}

/// What tells the fallback timer loop to look at a sender before its earliest timer.
pub struct TimerWake {
    pub state: crate::delivery::wake::WakeState,
    pub bells: crate::delivery::wake::ChainBells,
    /// The longest a sender goes unchecked while wake-ups are heard.
    pub idle_max: Duration,
}
