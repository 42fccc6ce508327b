//! Samples queue depths, lane pauses, circuit states and Redis health into the metrics, so
//! dashboards and alerts see the queues even when nothing moves.
//!
//! While wake-ups are heard, a sender none of whose lanes was woken since its last sample or found
//! messages waiting at its last look is sampled again only after `engine.idle_max_ms`: its queues
//! are empty and have not moved (as far as any wake-up says), and a thousand idle senders would
//! otherwise cost thousands of reads a second.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use super::circuit::CircuitState;
use super::worker::Lanes;
use crate::engine::Engine;
use crate::metrics::{Metrics, CIRCUIT_CLOSED, CIRCUIT_HALF_OPEN, CIRCUIT_OPEN};

/// Lanes grouped by sender, in a stable order.
pub fn lanes_by_sender(lanes: &Lanes) -> BTreeMap<String, Vec<String>> {
    let mut by_sender: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for lane in lanes.iter() {
        by_sender.entry(lane.spec.sender.clone()).or_default().push(lane.spec.lane.clone());
    }
    for v in by_sender.values_mut() {
        v.sort();
    }
    by_sender
}

pub fn circuit_value(state: CircuitState) -> i64 {
    match state {
        CircuitState::Closed => CIRCUIT_CLOSED,
        CircuitState::HalfOpen => CIRCUIT_HALF_OPEN,
        CircuitState::Open => CIRCUIT_OPEN,
    }
}

/// When idle senders are sampled again, and when each sender was last.
struct Idle {
    wake: super::wake::WakeState,
    every: Duration,
    last: HashMap<String, Instant>,
}

impl Idle {
    /// Whether the sender's queues need a look: always, unless wake-ups are heard and none of its
    /// lanes was woken or had messages waiting since its last sample within `every`.
    fn due(&mut self, lanes: &Lanes, sender: &str, names: &[String]) -> bool {
        // Every lane's mark is taken, so each touch counts once.
        let touched = names.iter().filter_map(|n| lanes.get(n)).fold(false, |any, lane| {
            let touched = lane.touched.swap(false, Ordering::Relaxed) || lane.waiting.load(Ordering::Relaxed);
            touched || any
        });
        let now = Instant::now();
        let stale = self.last.get(sender).is_none_or(|at| now.duration_since(*at) >= self.every);
        if touched || stale || !self.wake.live() {
            self.last.insert(sender.to_owned(), now);
            return true;
        }
        false
    }
}

/// One sample of everything (of idle senders, see [`Idle`]).
async fn sample(engine: &Engine, lanes: &Lanes, metrics: &Metrics, idle: &mut Idle) {
    let up = engine.ping().await.is_ok();
    metrics.redis_up.set(i64::from(up));
    for lane in lanes.iter() {
        metrics.circuit_state.with_label_values(&[lane.spec.lane.as_str()]).set(circuit_value(lane.circuit.state()));
    }
    if !up {
        return;
    }
    if let Ok(n) = engine.buffered_report_ids().await {
        metrics.early_reports_buffered.set(i64::try_from(n).unwrap_or(i64::MAX));
    }
    for (sender, names) in lanes_by_sender(lanes) {
        if !idle.due(lanes, &sender, &names) {
            continue;
        }
        let Ok(depth) = engine.depth(&sender, &names).await else { continue };
        for (lane, ready) in &depth.ready {
            metrics.queue_depth.with_label_values(&[lane.as_str(), "ready"]).set(*ready as i64);
        }
        // Scheduled, in-flight and dead-lettered messages are kept per sender; they are shown on
        // the sender's first lane so every series keeps the same labels.
        if let Some(first) = names.first() {
            metrics.queue_depth.with_label_values(&[first.as_str(), "scheduled"]).set(depth.scheduled as i64);
            metrics.queue_depth.with_label_values(&[first.as_str(), "in_flight"]).set(depth.in_flight as i64);
            metrics.queue_depth.with_label_values(&[first.as_str(), "dead_letter"]).set(depth.dead_letters as i64);
        }
        if let Ok(hold) = engine.held(&sender).await {
            let now = chrono::Utc::now().timestamp_millis();
            let secs = hold.map_or(0, |h| (now - h.at_ms).max(0) / 1000);
            metrics.sender_paused.with_label_values(&[sender.as_str()]).set(secs);
        }
        for lane in &names {
            let paused = engine.paused_for(&sender, lane).await.ok().flatten().is_some();
            metrics.lane_paused.with_label_values(&[lane.as_str()]).set(i64::from(paused));
        }
    }
}

/// Samples every `every` until `stop`; idle senders every `idle_every` while `wake` is live.
pub fn spawn(
    engine: Engine,
    lanes: Arc<Lanes>,
    metrics: Metrics,
    (every, idle_every): (Duration, Duration),
    wake: super::wake::WakeState,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        let mut idle = Idle { wake, every: idle_every, last: HashMap::new() };
        loop {
            sample(&engine, &lanes, &metrics, &mut idle).await;
            tokio::select! {
                () = tokio::time::sleep(every) => {},
                () = stop.cancelled() => break,
            }
        }
    });
}
