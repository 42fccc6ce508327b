//! A circuit breaker per provider account. It opens after consecutive 5xx responses or timeouts
//! (never on 429 or 4xx: those are answers, not outages), stays open for a while, then lets one
//! probe through; the probe's outcome closes or reopens it.

use std::sync::Mutex;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CircuitState {
    Closed,
    HalfOpen,
    Open,
}

impl CircuitState {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Closed => "closed",
            Self::HalfOpen => "half_open",
            Self::Open => "open",
        }
    }
}

/// What a worker may do now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// Send freely.
    Allowed,
    /// Send exactly one message: it decides whether the circuit closes.
    Probe,
    /// Send nothing for this long.
    Wait(Duration),
}

#[derive(Debug)]
enum Inner {
    Closed { failures: u32 },
    Open { until: Instant },
    HalfOpen { probing: bool },
}

#[derive(Debug)]
pub struct CircuitBreaker {
    inner: Mutex<Inner>,
    threshold: u32,
    open_for: Duration,
}

impl CircuitBreaker {
    pub fn new(threshold: u32, open_for: Duration) -> Self {
        Self { inner: Mutex::new(Inner::Closed { failures: 0 }), threshold: threshold.max(1), open_for }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A poisoned lock only means another thread panicked mid-update; the state is still usable.
        self.inner.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    pub fn state(&self) -> CircuitState {
        let mut inner = self.lock();
        if let Inner::Open { until } = *inner {
            if Instant::now() >= until {
                *inner = Inner::HalfOpen { probing: false };
            }
        }
        match *inner {
            Inner::Closed { .. } => CircuitState::Closed,
            Inner::HalfOpen { .. } => CircuitState::HalfOpen,
            Inner::Open { .. } => CircuitState::Open,
        }
    }

    /// Asks to send; a `Probe` must be followed by `on_success` or `on_failure`.
    pub fn admit(&self) -> Admission {
        let mut inner = self.lock();
        let now = Instant::now();
        match *inner {
            Inner::Closed { .. } => Admission::Allowed,
            Inner::Open { until } if now < until => Admission::Wait(until - now),
            Inner::Open { .. } | Inner::HalfOpen { probing: false } => {
                *inner = Inner::HalfOpen { probing: true };
                Admission::Probe
            }
            Inner::HalfOpen { probing: true } => Admission::Wait(Duration::from_millis(50)),
        }
    }

    pub fn on_success(&self) {
        *self.lock() = Inner::Closed { failures: 0 };
    }

    /// Records an outage-type failure (5xx, timeout, connection error). Returns true when this
    /// failure opened the circuit.
    pub fn on_failure(&self) -> bool {
        let mut inner = self.lock();
        let open = match *inner {
            Inner::Closed { failures } => failures + 1 >= self.threshold,
            Inner::HalfOpen { .. } => true,
            Inner::Open { .. } => false,
        };
        if open {
            *inner = Inner::Open { until: Instant::now() + self.open_for };
        } else if let Inner::Closed { failures } = &mut *inner {
            *failures += 1;
        }
        open
    }

    /// Answers that are not outages (2xx, 4xx, 429) end a run of failures.
    pub fn on_answer(&self) {
        let mut inner = self.lock();
        match *inner {
            Inner::Closed { .. } | Inner::HalfOpen { .. } => *inner = Inner::Closed { failures: 0 },
            Inner::Open { .. } => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn opens_after_the_threshold_and_probes_after_the_wait() {
        let cb = CircuitBreaker::new(3, Duration::from_millis(30));
        assert!(!cb.on_failure());
        assert!(!cb.on_failure());
        assert_eq!(cb.state(), CircuitState::Closed);
        assert!(cb.on_failure());
        assert_eq!(cb.state(), CircuitState::Open);
        assert!(matches!(cb.admit(), Admission::Wait(_)));
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cb.admit(), Admission::Probe);
        assert!(matches!(cb.admit(), Admission::Wait(_)), "one probe at a time");
        assert!(cb.on_failure(), "a failed probe reopens");
        assert_eq!(cb.state(), CircuitState::Open);
        std::thread::sleep(Duration::from_millis(40));
        assert_eq!(cb.admit(), Admission::Probe);
        cb.on_success();
        assert_eq!(cb.state(), CircuitState::Closed);
        assert_eq!(cb.admit(), Admission::Allowed);
    }

    #[test]
    fn an_answer_resets_the_failure_run() {
        let cb = CircuitBreaker::new(2, Duration::from_secs(60));
        assert!(!cb.on_failure());
        cb.on_answer();
        assert!(!cb.on_failure());
        assert_eq!(cb.state(), CircuitState::Closed);
    }
}
