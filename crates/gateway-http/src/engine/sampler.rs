//! Samples queue depths, lane pauses, circuit states and Redis health into the metrics, so
//! dashboards and alerts see the queues even when nothing moves.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::circuit::CircuitState;
use super::worker::Lanes;
use super::Engine;
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

/// One sample of everything.
pub async fn sample(engine: &Engine, lanes: &Lanes, metrics: &Metrics) {
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

pub fn spawn(engine: Engine, lanes: Arc<Lanes>, metrics: Metrics, every: Duration, stop: CancellationToken) {
    tokio::spawn(async move {
        loop {
            sample(&engine, &lanes, &metrics).await;
            tokio::select! {
                () = tokio::time::sleep(every) => {},
                () = stop.cancelled() => break,
            }
        }
    });
}
