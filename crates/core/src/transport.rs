//! What every adapter needs to turn an HTTP exchange into a classified outcome, in one place so
//! the adapters agree: `Retry-After`, a request that got no complete answer, a throttling class
//! lengthened by the header, titles of bounded length.

use std::time::{Duration, SystemTime};

use crate::provider::{ErrorClass, ProviderError};

/// Longest `title` kept from a provider message.
pub const MAX_TITLE_CHARS: usize = 200;

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a date in the past is zero,
/// anything unreadable is ignored.
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// A throttling Meta code carries no delay of its own unless it is the pair rate; a `Retry-After`
/// header, if the provider sent one, is the better guess. Never shorter than the class's own delay.
pub fn with_retry_after(class: ErrorClass, header: Option<Duration>) -> ErrorClass {
    match class {
        ErrorClass::Throttled { retry_after, scope } => {
            ErrorClass::Throttled { retry_after: retry_after.max(header), scope }
        }
        other => other,
    }
}

/// At most `max` characters, cut on a character boundary, with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
}

/// How a request failed to get a complete answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TransportFailure {
    /// No connection was made: nothing was sent.
    pub connect: bool,
    pub timeout: bool,
    /// The status, when the answer broke off after its head.
    pub http_status: Option<u16>,
}

/// A request that got no complete answer is transient. A connect error means nothing was sent;
/// anything after that may have reached the provider, so a call that creates something
/// (`creates`) has an unknown outcome.
pub fn transport_error(provider: &str, failure: TransportFailure, timeout: Duration, creates: bool) -> ProviderError {
    let mut err = if failure.connect {
        ProviderError::transient(format!("could not connect to {provider}"))
    } else if failure.timeout {
        ProviderError::transient(format!("{provider} did not answer within {} ms", timeout.as_millis()))
    } else if failure.http_status.is_some() {
        ProviderError::transient(format!("the {provider} answer broke off"))
    } else {
        ProviderError::transient(format!("the request to {provider} failed"))
    };
    if let Some(s) = failure.http_status {
        err = err.with_http_status(s);
    }
    if creates && !failure.connect {
        err = err.with_outcome_unknown();
    }
    err
}

/// An error and its sources on one line, for logs.
pub struct ErrorChain<'a>(pub &'a (dyn std::error::Error + 'static));

impl std::fmt::Display for ErrorChain<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0)?;
        let mut source = self.0.source();
        while let Some(s) = source {
            write!(f, ": {s}")?;
            source = s.source();
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::provider::ThrottleScope;

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(parse_retry_after(" 120 ", now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(parse_retry_after(&later, now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&earlier, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }

    #[test]
    fn truncate_cuts_on_char_boundaries() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("验证码验证码", 2), "验证…");
        assert_eq!(truncate(&"x".repeat(500), MAX_TITLE_CHARS).chars().count(), MAX_TITLE_CHARS + 1);
    }

    #[test]
    fn a_header_lengthens_a_throttle_but_never_shortens_it() {
        let six = Some(Duration::from_secs(6));
        let lane = |d| ErrorClass::Throttled { retry_after: d, scope: ThrottleScope::Lane };
        assert_eq!(with_retry_after(lane(None), Some(Duration::from_secs(2))), lane(Some(Duration::from_secs(2))));
        assert_eq!(with_retry_after(lane(six), Some(Duration::from_secs(2))), lane(six));
        assert_eq!(with_retry_after(ErrorClass::Transient, six), ErrorClass::Transient);
    }

    #[test]
    fn transport_failures_say_whether_anything_was_sent() {
        let t = Duration::from_millis(200);
        let connect =
            transport_error("INCS", TransportFailure { connect: true, timeout: false, http_status: None }, t, true);
        assert_eq!(connect.class, ErrorClass::Transient);
        assert!(!connect.outcome_unknown);
        let timeout =
            transport_error("INCS", TransportFailure { connect: false, timeout: true, http_status: None }, t, true);
        assert!(timeout.outcome_unknown);
        assert_eq!(timeout.title, "INCS did not answer within 200 ms");
        let poll =
            transport_error("INCS", TransportFailure { connect: false, timeout: true, http_status: None }, t, false);
        assert!(!poll.outcome_unknown);
        let cut = transport_error(
            "InnoPaaS",
            TransportFailure { connect: false, timeout: false, http_status: Some(200) },
            t,
            true,
        );
        assert_eq!(cut.http_status, Some(200));
        assert_eq!(cut.title, "the InnoPaaS answer broke off");
    }
}
