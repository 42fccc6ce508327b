//! The retry policy: after a failed attempt, what happens next, decided from the failure's class,
//! the attempt and the route. Message delivery (a provider's answer or a failure it reported
//! later) and event delivery (a subscriber's answer) all ask [`RetryPolicy::decide`]; the engine
//! only carries the decision out.

use std::fmt;
use std::ops::Range;
use std::time::Duration;

use crate::meta::PAIR_RATE_DELAY;
use crate::provider::{ErrorClass, ProviderError, RejectScope, ThrottleScope};

/// How long a lane pauses on a throttle that names no `Retry-After`.
pub const DEFAULT_THROTTLE_PAUSE: Duration = Duration::from_secs(1);

/// The factor a backoff delay is multiplied by, drawn at random per retry, so that messages that
/// failed together do not all come back together.
pub const JITTER: Range<f64> = 0.8..1.2;

/// The delays before each retry of a transient failure, one entry per retry. Never empty and
/// never decreasing: a schedule that waits less after more failures is a typo.
#[derive(Debug, Clone, PartialEq, Eq, serde::Deserialize)]
#[serde(try_from = "Vec<u64>")]
pub struct RetrySchedule(Vec<Duration>);

impl TryFrom<Vec<u64>> for RetrySchedule {
    type Error = ScheduleError;
    fn try_from(ms: Vec<u64>) -> Result<Self, ScheduleError> {
        Self::from_millis(&ms)
    }
}

/// 1 s, 5 s, 30 s, 2 min, 10 min: five retries over about 13 minutes.
impl Default for RetrySchedule {
    fn default() -> Self {
        Self([1, 5, 30, 120, 600].map(Duration::from_secs).to_vec())
    }
}

/// Why a retry schedule cannot be used.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    #[error("at least one delay")]
    Empty,
    #[error("entry {index} ({ms} ms) is shorter than the one before it ({previous} ms): delays must not decrease")]
    Decreasing { index: usize, ms: u64, previous: u64 },
}

impl RetrySchedule {
    /// # Errors
    /// [`ScheduleError`] when `ms` is empty or decreases somewhere.
    pub fn from_millis(ms: &[u64]) -> Result<Self, ScheduleError> {
        if ms.is_empty() {
            return Err(ScheduleError::Empty);
        }
        if let Some(i) = ms.windows(2).position(|w| w[1] < w[0]) {
            return Err(ScheduleError::Decreasing { index: i + 1, ms: ms[i + 1], previous: ms[i] });
        }
        Ok(Self(ms.iter().map(|m| Duration::from_millis(*m)).collect()))
    }

    /// The delay before the retry that follows `made` attempts on one account, if any is left.
    pub fn after(&self, made: u32) -> Option<Duration> {
        self.0.get(made as usize).copied()
    }

    /// The longest delay of the schedule.
    pub fn longest(&self) -> Duration {
        self.0.iter().copied().max().unwrap_or_default()
    }
}

/// How a failed job waits for its next attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ordering {
    /// Each message on its own: it waits in the delayed set and the lane goes on with the others.
    Independent,
    /// Jobs of a lane go out in order (event partitions): a failed job keeps the head of its lane,
    /// which pauses until the retry.
    InOrder,
}

/// Where the failure came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The answer to the attempt, while the worker still holds the job.
    Answer,
    /// A failure the provider reported by callback after having accepted the message; the lane is
    /// no longer involved, so a throttle delays this message only.
    Report,
}

/// The failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Attempt {
    /// Attempts made on the current account before this one.
    pub made: u32,
    /// The job was claimed again after a lease ran out (its previous outcome is unknown).
    pub redelivery: bool,
}

/// What the message's route still offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Route {
    /// Another account comes after the current one.
    pub has_next: bool,
}

/// Why a retry happens (the `reason` label of the retries metric).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RetryReason {
    /// No answer in time: the provider may have the message.
    Timeout,
    /// A 5xx or an error body the provider calls temporary.
    ServerError,
    /// No connection or a broken one.
    Network,
    /// WhatsApp's per-recipient rate (Meta 131056).
    PairRate,
    /// A throttle reported after the provider had accepted the message.
    Throttled,
    /// A failure the provider reported after having accepted the message.
    ReportedFailure,
}

impl RetryReason {
    pub fn label(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ServerError => "server_error",
            Self::Network => "network",
            Self::PairRate => "pair_rate",
            Self::Throttled => "throttled",
            Self::ReportedFailure => "reported_failure",
        }
    }
}

/// What to do after a failed attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Send it again on the same account after `after`. `spend`: the attempt counts against the
    /// schedule (a throttle does not spend one).
    Retry { after: Duration, spend: bool, reason: RetryReason },
    /// Hold the whole lane for `pause`; the job keeps its place. `spend` as for `Retry`.
    PauseLane { pause: Duration, spend: bool },
    /// Hand it to the next account of its route, with a fresh attempt budget there.
    FailOver,
    /// A permanent failure: it fails now and is not dead-lettered (nothing would make a replay
    /// succeed).
    Fail,
    /// Every attempt is used up: it fails and goes to the dead letters, where it can be replayed.
    DeadLetter,
}

impl fmt::Display for Decision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Retry { after, .. } => write!(f, "retry in {} ms", after.as_millis()),
            Self::PauseLane { pause, .. } => write!(f, "pause the lane for {} ms", pause.as_millis()),
            Self::FailOver => f.write_str("fail over"),
            Self::Fail => f.write_str("fail"),
            Self::DeadLetter => f.write_str("dead-letter"),
        }
    }
}

/// One kind of delivery's retry settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetryPolicy {
    pub schedule: RetrySchedule,
    pub ordering: Ordering,
}

impl RetryPolicy {
    /// Decides what follows a failed attempt. `jitter` multiplies backoff delays taken from the
    /// schedule (draw it from [`JITTER`]; 1.0 for none); throttle delays are the provider's own
    /// and are not jittered.
    pub fn decide(
        &self,
        failure: &ProviderError,
        source: Source,
        attempt: Attempt,
        route: Route,
        jitter: f64,
    ) -> Decision {
        match (failure.class, source) {
            // Another account may carry it: credentials, balance, sender, policy.
            (ErrorClass::Rejected(RejectScope::Account), _) if route.has_next => Decision::FailOver,
            (ErrorClass::Rejected(_), _) => Decision::Fail,
            (ErrorClass::Throttled { retry_after, scope: ThrottleScope::Lane }, Source::Answer) => {
                Decision::PauseLane { pause: retry_after.unwrap_or(DEFAULT_THROTTLE_PAUSE), spend: false }
            }
            (ErrorClass::Throttled { retry_after, scope: ThrottleScope::Lane }, Source::Report) => Decision::Retry {
                after: retry_after.unwrap_or(DEFAULT_THROTTLE_PAUSE).max(DEFAULT_THROTTLE_PAUSE),
                spend: false,
                reason: RetryReason::Throttled,
            },
            (ErrorClass::Throttled { retry_after, scope: ThrottleScope::Recipient }, _) => Decision::Retry {
                after: retry_after.unwrap_or(PAIR_RATE_DELAY).max(PAIR_RATE_DELAY),
                spend: false,
                reason: RetryReason::PairRate,
            },
            (ErrorClass::Transient, _) => {
                // A send whose outcome is unknown (timeout after sending) may already be with the
                // provider: retry it once, not again, and not elsewhere (PROVIDERS.md §0).
                let ambiguous_again = failure.outcome_unknown && attempt.redelivery;
                match self.schedule.after(attempt.made).filter(|_| !ambiguous_again) {
                    Some(delay) => match self.ordering {
                        Ordering::InOrder => Decision::PauseLane { pause: delay, spend: true },
                        Ordering::Independent => Decision::Retry {
                            after: delay.mul_f64(jitter),
                            spend: true,
                            reason: transient_reason(failure, source),
                        },
                    },
                    // This account used up its attempts: the next one gets a fresh budget.
                    None if route.has_next && !ambiguous_again => Decision::FailOver,
                    None => Decision::DeadLetter,
                }
            }
        }
    }
}

fn transient_reason(failure: &ProviderError, source: Source) -> RetryReason {
    if source == Source::Report {
        RetryReason::ReportedFailure
    } else if failure.outcome_unknown {
        RetryReason::Timeout
    } else if failure.http_status.is_some() {
        RetryReason::ServerError
    } else {
        RetryReason::Network
    }
}

/// Why a lease is too short for a provider call.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{lease_ms} ms is shorter than the slowest provider call ({timeout_ms} ms) plus {margin_ms} ms: a send still waiting for its answer would be claimed and sent again")]
pub struct LeaseTooShort {
    pub lease_ms: u64,
    pub timeout_ms: u64,
    pub margin_ms: u64,
}

/// What a lease must leave beyond the provider's timeout: recording the outcome in Redis and the
/// local rate limiter's wait before the call.
pub const LEASE_MARGIN: Duration = Duration::from_secs(1);

/// A claimed message must stay leased for the whole provider call and the recording of its
/// outcome, or a second worker sends it again while the first is still waiting for an answer.
///
/// # Errors
/// [`LeaseTooShort`] when `lease` is shorter than `provider_timeout` plus [`LEASE_MARGIN`].
pub fn check_lease(lease: Duration, provider_timeout: Duration) -> Result<(), LeaseTooShort> {
    if lease < provider_timeout + LEASE_MARGIN {
        return Err(LeaseTooShort {
            lease_ms: lease.as_millis() as u64,
            timeout_ms: provider_timeout.as_millis() as u64,
            margin_ms: LEASE_MARGIN.as_millis() as u64,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
