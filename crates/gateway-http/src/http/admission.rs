//! Admission: what the gateway lets in when it cannot take everything, so that an overload or a
//! nearly full Redis refuses new sends early and cheaply, and never the provider callbacks.
//!
//! - **Two budgets of requests in flight**, per process: one for the API (`/v1/...`) and one for
//!   provider callbacks (`/callbacks/...`). A request beyond its budget waits at most
//!   `admission.max_wait_ms` (callbacks: `admission.callbacks_max_wait_ms`, longer, since a
//!   provider may not send a refused callback again) for a place, then gets 503 with
//!   `Retry-After`, having touched nothing. Without a bound, a burst of callers queues every request on the Redis connection
//!   until calls time out after `redis.timeout_ms`, callbacks among them; with one, Redis sees at
//!   most the budget's worth of calls, and callbacks have places no caller can take. Callbacks
//!   also get their own Redis connection (see `startup`), so they do not queue behind the API's
//!   calls on one socket.
//! - **The memory guard**: Redis's `used_memory` against its `maxmemory`, sampled every
//!   `admission.memory_sample_ms` (never per request). Above `admission.memory_guard` (a
//!   fraction), new sends get 503 with `Retry-After` and readiness goes false, while Redis can
//!   still take writes: callbacks, deliveries and acknowledgements go on, and the queue drains.
//!   Under `noeviction`, Redis itself would refuse every write past `maxmemory`, whichever call
//!   it happened to be.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{OwnedSemaphorePermit, Semaphore, TryAcquireError};
use tokio_util::sync::CancellationToken;

use crate::config::AdmissionConfig;
use crate::engine::Engine;
use crate::metrics::Metrics;

/// Which budget a request draws on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Budget {
    Api,
    Callbacks,
}

impl Budget {
    /// The budget of a request path; `None` for health, metrics and docs, which are never held.
    pub fn of(path: &str) -> Option<Self> {
        if path.starts_with("/callbacks/") {
            Some(Self::Callbacks)
        } else if path.starts_with("/v1/") {
            Some(Self::Api)
        } else {
            None
        }
    }

    /// The `gateway_requests_shed_total` reason.
    pub fn shed_reason(self) -> &'static str {
        match self {
            Self::Api => "api_busy",
            Self::Callbacks => "callbacks_busy",
        }
    }
}

/// Places for requests in flight, per budget, and the memory guard.
pub struct Admission {
    api: Arc<Semaphore>,
    callbacks: Arc<Semaphore>,
    max_wait: Duration,
    callbacks_max_wait: Duration,
    pub memory: MemoryGuard,
}

impl Admission {
    pub fn new(config: &AdmissionConfig) -> Self {
        Self {
            api: Arc::new(Semaphore::new(config.max_in_flight)),
            callbacks: Arc::new(Semaphore::new(config.callbacks_max_in_flight)),
            max_wait: Duration::from_millis(config.max_wait_ms),
            callbacks_max_wait: Duration::from_millis(config.callbacks_max_wait_ms),
            memory: MemoryGuard::new(config.memory_guard),
        }
    }

    /// A place in `budget`, held until the permit is dropped; `None` when none came free within
    /// the wait.
    pub async fn enter(&self, budget: Budget) -> Option<OwnedSemaphorePermit> {
        let (slots, wait) = match budget {
            Budget::Api => (&self.api, self.max_wait),
            Budget::Callbacks => (&self.callbacks, self.callbacks_max_wait),
        };
        match slots.clone().try_acquire_owned() {
            Ok(permit) => Some(permit),
            Err(TryAcquireError::NoPermits) if !wait.is_zero() => {
                tokio::time::timeout(wait, slots.clone().acquire_owned()).await.ok()?.ok()
            }
            Err(_) => None,
        }
    }
}

/// Redis's memory as last sampled, and whether new sends are refused for it.
pub struct MemoryGuard {
    fraction: f64,
    over: AtomicBool,
    used: AtomicU64,
    max: AtomicU64,
}

impl MemoryGuard {
    fn new(fraction: f64) -> Self {
        Self { fraction, over: AtomicBool::new(false), used: AtomicU64::new(0), max: AtomicU64::new(0) }
    }

    /// Whether new sends are refused: Redis was above the guard at the last sample.
    pub fn engaged(&self) -> bool {
        self.over.load(Ordering::Relaxed)
    }

    /// `(used_memory, maxmemory)` at the last sample (of the fullest node of a cluster).
    pub fn last(&self) -> (u64, u64) {
        (self.used.load(Ordering::Relaxed), self.max.load(Ordering::Relaxed))
    }

    /// Takes a sample of each node, `(used_memory, maxmemory)`; a node without `maxmemory` has no
    /// limit to guard. Returns whether the guard is engaged now.
    pub fn record(&self, nodes: &[(u64, u64)]) -> bool {
        let fullest = nodes
            .iter()
            .filter(|(_, max)| *max > 0)
            .max_by(|a, b| (a.0 as f64 / a.1 as f64).total_cmp(&(b.0 as f64 / b.1 as f64)))
            .or_else(|| nodes.first())
            .copied()
            .unwrap_or((0, 0));
        let over = fullest.1 > 0 && fullest.0 as f64 > self.fraction * fullest.1 as f64;
        self.used.store(fullest.0, Ordering::Relaxed);
        self.max.store(fullest.1, Ordering::Relaxed);
        self.over.store(over, Ordering::Relaxed);
        over
    }
}

/// Samples Redis's memory into the guard and the metrics until `stop`.
pub fn spawn_memory_sampler(
    engine: Engine,
    admission: Arc<Admission>,
    metrics: Metrics,
    every: Duration,
    stop: CancellationToken,
) {
    tokio::spawn(async move {
        loop {
            match engine.memory().await {
                Ok(nodes) => {
                    let was = admission.memory.engaged();
                    let over = admission.memory.record(&nodes);
                    let (used, max) = admission.memory.last();
                    metrics.redis_memory_used.set(i64::try_from(used).unwrap_or(i64::MAX));
                    metrics.redis_memory_max.set(i64::try_from(max).unwrap_or(i64::MAX));
                    metrics.memory_guard.set(i64::from(over));
                    if over != was {
                        if over {
                            tracing::warn!(used, max, "Redis memory above the guard: new sends are refused");
                        } else {
                            tracing::info!(used, max, "Redis memory below the guard again: sends are taken");
                        }
                    }
                }
                // An unreachable Redis is the readiness probe's and the store calls' to report;
                // the guard keeps its last state.
                Err(e) => tracing::debug!(error = %e, "could not sample Redis memory"),
            }
            tokio::select! {
                () = tokio::time::sleep(every) => {},
                () = stop.cancelled() => break,
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_engages_above_its_fraction_of_the_fullest_node() {
        let guard = MemoryGuard::new(0.9);
        assert!(!guard.record(&[(89, 100)]));
        assert!(guard.record(&[(91, 100)]));
        assert!(guard.engaged());
        assert_eq!(guard.last(), (91, 100));
        // A cluster: the fullest node decides.
        assert!(guard.record(&[(10, 100), (950, 1000)]));
        assert!(!guard.record(&[(10, 100), (500, 1000)]));
        // No maxmemory: nothing to guard.
        assert!(!guard.record(&[(1 << 40, 0)]));
        assert!(!guard.record(&[]));
    }

    #[test]
    fn paths_draw_on_their_own_budget() {
        assert_eq!(Budget::of("/callbacks/incs/token"), Some(Budget::Callbacks));
        assert_eq!(Budget::of("/v1/messages"), Some(Budget::Api));
        assert_eq!(Budget::of("/health/ready"), None);
        assert_eq!(Budget::of("/metrics"), None);
    }

    #[tokio::test]
    async fn a_full_budget_refuses_after_its_wait_and_leaves_the_other_free() {
        let config = AdmissionConfig {
            max_in_flight: 1,
            callbacks_max_in_flight: 1,
            max_wait_ms: 20,
            callbacks_max_wait_ms: 0,
            ..Default::default()
        };
        let admission = Admission::new(&config);
        let held = admission.enter(Budget::Api).await;
        assert!(held.is_some());
        let started = std::time::Instant::now();
        assert!(admission.enter(Budget::Api).await.is_none());
        assert!(started.elapsed() >= Duration::from_millis(20));
        let callback = admission.enter(Budget::Callbacks).await;
        assert!(callback.is_some());
        assert!(admission.enter(Budget::Callbacks).await.is_none(), "a full callback budget refuses too");
        drop(held);
        assert!(admission.enter(Budget::Api).await.is_some());
    }

    #[test]
    fn settings_out_of_range_are_named() {
        let cases: [(AdmissionConfig, &str); 7] = [
            (AdmissionConfig { max_in_flight: 0, ..Default::default() }, "max_in_flight"),
            (AdmissionConfig { max_wait_ms: 10_001, ..Default::default() }, "max_wait_ms"),
            (AdmissionConfig { callbacks_max_in_flight: 0, ..Default::default() }, "callbacks_max_in_flight"),
            (AdmissionConfig { callbacks_max_wait_ms: 30_001, ..Default::default() }, "callbacks_max_wait_ms"),
            (AdmissionConfig { memory_guard: 0.0, ..Default::default() }, "memory_guard"),
            (AdmissionConfig { memory_guard: 1.01, ..Default::default() }, "memory_guard"),
            (AdmissionConfig { memory_sample_ms: 99, ..Default::default() }, "memory_sample_ms"),
        ];
        for (config, key) in cases {
            assert_eq!(config.validate().map_err(|(k, _)| k), Err(key));
        }
        assert!(AdmissionConfig::default().validate().is_ok());
    }
}
