use std::time::Duration;

use super::*;

const S: Duration = Duration::from_secs(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

fn policy(ordering: Ordering) -> RetryPolicy {
    RetryPolicy { schedule: RetrySchedule::from_millis(&[100, 200]).unwrap(), ordering }
}

fn throttled(retry_after: Option<Duration>, scope: ThrottleScope) -> ProviderError {
    ProviderError::new(ErrorClass::Throttled { retry_after, scope }, "slow down")
}

fn rejected(scope: RejectScope) -> ProviderError {
    ProviderError::new(ErrorClass::Rejected(scope), "no")
}

fn network() -> ProviderError {
    ProviderError::transient("could not connect")
}

fn server_error() -> ProviderError {
    ProviderError::transient("503").with_http_status(503)
}

fn timeout() -> ProviderError {
    ProviderError::transient("no answer").with_outcome_unknown()
}

const FIRST: Attempt = Attempt { made: 0, redelivery: false };
const SECOND: Attempt = Attempt { made: 1, redelivery: false };
const LAST: Attempt = Attempt { made: 2, redelivery: false };
const REDELIVERED: Attempt = Attempt { made: 1, redelivery: true };
const ALONE: Route = Route { has_next: false };
const NEXT: Route = Route { has_next: true };

fn retry(after: Duration, spend: bool, reason: RetryReason) -> Decision {
    Decision::Retry { after, spend, reason }
}

#[test]
fn every_outcome_class_has_its_decision() {
    use Decision::*;
    use Ordering::*;
    use Source::*;
    let lane = ThrottleScope::Lane;
    let recipient = ThrottleScope::Recipient;
    #[rustfmt::skip]
    let table: Vec<(&str, Ordering, ProviderError, Source, Attempt, Route, Decision)> = vec![
        // Permanent refusals.
        ("content refused", Independent, rejected(RejectScope::Content), Answer, FIRST, NEXT, Fail),
        ("content refused, reported", Independent, rejected(RejectScope::Content), Report, FIRST, NEXT, Fail),
        ("account refused, another account", Independent, rejected(RejectScope::Account), Answer, FIRST, NEXT, FailOver),
        ("account refused, no other account", Independent, rejected(RejectScope::Account), Answer, FIRST, ALONE, Fail),
        ("account refused, reported", Independent, rejected(RejectScope::Account), Report, SECOND, NEXT, FailOver),
        // Throttles spend no attempt.
        ("429 with Retry-After", Independent, throttled(Some(3 * S), lane), Answer, LAST, ALONE, PauseLane { pause: 3 * S, spend: false }),
        ("429 without Retry-After", Independent, throttled(None, lane), Answer, FIRST, ALONE, PauseLane { pause: DEFAULT_THROTTLE_PAUSE, spend: false }),
        ("a short Retry-After is honoured", Independent, throttled(Some(ms(200)), lane), Answer, FIRST, ALONE, PauseLane { pause: ms(200), spend: false }),
        ("throttle reported later", Independent, throttled(None, lane), Report, FIRST, NEXT, retry(DEFAULT_THROTTLE_PAUSE, false, RetryReason::Throttled)),
        ("throttle reported later, short", Independent, throttled(Some(ms(200)), lane), Report, FIRST, NEXT, retry(DEFAULT_THROTTLE_PAUSE, false, RetryReason::Throttled)),
        ("throttle reported later, long", Independent, throttled(Some(5 * S), lane), Report, FIRST, NEXT, retry(5 * S, false, RetryReason::Throttled)),
        ("pair rate", Independent, throttled(None, recipient), Answer, LAST, ALONE, retry(PAIR_RATE_DELAY, false, RetryReason::PairRate)),
        ("pair rate, shorter Retry-After", Independent, throttled(Some(S), recipient), Answer, FIRST, ALONE, retry(PAIR_RATE_DELAY, false, RetryReason::PairRate)),
        ("pair rate, longer Retry-After", Independent, throttled(Some(9 * S), recipient), Report, FIRST, ALONE, retry(9 * S, false, RetryReason::PairRate)),
        // Transient: the schedule, then the next account, then the dead letters.
        ("network, first", Independent, network(), Answer, FIRST, ALONE, retry(ms(100), true, RetryReason::Network)),
        ("5xx, second", Independent, server_error(), Answer, SECOND, NEXT, retry(ms(200), true, RetryReason::ServerError)),
        ("timeout, first", Independent, timeout(), Answer, FIRST, NEXT, retry(ms(100), true, RetryReason::Timeout)),
        ("reported transient", Independent, server_error(), Report, FIRST, ALONE, retry(ms(100), true, RetryReason::ReportedFailure)),
        ("schedule used, another account", Independent, network(), Answer, LAST, NEXT, FailOver),
        ("schedule used, no other account", Independent, server_error(), Answer, LAST, ALONE, DeadLetter),
        ("reported, schedule used", Independent, server_error(), Report, LAST, NEXT, FailOver),
        // A send that may have reached the provider is tried once more, then never again.
        ("timeout again after a redelivery", Independent, timeout(), Answer, REDELIVERED, NEXT, DeadLetter),
        ("a clean error after a redelivery", Independent, network(), Answer, REDELIVERED, NEXT, retry(ms(200), true, RetryReason::Network)),
        // In-order lanes (event partitions) pause instead of setting the job aside.
        ("in order, first failure", InOrder, server_error(), Answer, FIRST, ALONE, PauseLane { pause: ms(100), spend: true }),
        ("in order, second failure", InOrder, network(), Answer, SECOND, ALONE, PauseLane { pause: ms(200), spend: true }),
        ("in order, schedule used", InOrder, network(), Answer, LAST, ALONE, DeadLetter),
    ];
    for (name, ordering, failure, source, attempt, route, want) in table {
        assert_eq!(policy(ordering).decide(&failure, source, attempt, route, 1.0), want, "{name}");
    }
}

#[test]
fn jitter_scales_backoff_but_not_throttles() {
    let p = policy(Ordering::Independent);
    let backoff = p.decide(&network(), Source::Answer, FIRST, ALONE, 1.2);
    assert_eq!(backoff, retry(ms(120), true, RetryReason::Network));
    let pause = p.decide(&throttled(Some(3 * S), ThrottleScope::Lane), Source::Answer, FIRST, ALONE, 1.2);
    assert_eq!(pause, Decision::PauseLane { pause: 3 * S, spend: false });
    let in_order = policy(Ordering::InOrder).decide(&network(), Source::Answer, FIRST, ALONE, 1.2);
    assert_eq!(in_order, Decision::PauseLane { pause: ms(100), spend: true });
}

#[test]
fn a_schedule_is_not_empty_and_never_decreases() {
    assert_eq!(RetrySchedule::from_millis(&[]), Err(ScheduleError::Empty));
    assert_eq!(
        RetrySchedule::from_millis(&[100, 300, 200]),
        Err(ScheduleError::Decreasing { index: 2, ms: 200, previous: 300 })
    );
    let flat = RetrySchedule::from_millis(&[100, 400, 400]).unwrap();
    assert_eq!(flat.after(0), Some(ms(100)));
    assert_eq!(flat.after(2), Some(ms(400)));
    assert_eq!(flat.after(3), None);
    assert_eq!(flat.longest(), ms(400));
}

#[test]
fn a_lease_outlasts_the_provider_call() {
    assert!(check_lease(ms(11_000), ms(10_000)).is_ok());
    assert!(check_lease(ms(3_000), ms(2_000)).is_ok());
    let err = check_lease(ms(5_000), ms(10_000)).unwrap_err();
    assert_eq!(err, LeaseTooShort { lease_ms: 5_000, timeout_ms: 10_000, margin_ms: 1_000 });
    assert!(err.to_string().contains("5000 ms is shorter than the slowest provider call (10000 ms) plus 1000 ms"));
    assert!(check_lease(ms(2_999), ms(2_000)).is_err());
}
