//! Every INCS answer and transport failure, turned into success or a classified [`ProviderError`]
//! (PROVIDERS.md §1.1): the body is read first, the HTTP status only when the body is not an
//! envelope, since INCS documents the envelope codes and not whether the HTTP status mirrors them.

use std::time::{Duration, SystemTime};

use gateway_core::meta;
use gateway_core::transport::{
    parse_retry_after, transport_error, truncate, with_retry_after, ErrorChain, TransportFailure, MAX_TITLE_CHARS,
};
use gateway_core::{ErrorClass, ProviderError, RejectScope, ThrottleScope};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::wire::Envelope;

/// What the caller was doing: only a send or a template creation can leave the outcome unknown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Send,
    Poll,
    /// Creating a template: like a send, it may have happened without us learning so.
    Create,
    /// Reading or deleting templates, reading the account: repeating it is harmless.
    Manage,
}

impl Call {
    fn may_have_taken_effect(self) -> bool {
        matches!(self, Call::Send | Call::Create)
    }
}

/// An HTTP answer, as far as classification needs it.
pub(crate) struct Answer<'a> {
    pub http_status: u16,
    pub retry_after: Option<Duration>,
    pub body: &'a [u8],
}

/// The class of a failure INCS reported by callback (`message_status_update` `error`, or a chat
/// status 2): the same table as a send's answer. A Meta code decides for WhatsApp; Viber's
/// transient service errors (PROVIDERS.md §3.5) are retried; anything else is permanent, as an
/// unexplained send failure would be.
pub fn classify_report(error: &gateway_core::event::ReportedError) -> ErrorClass {
    if let Some(code) = meta::code_of_report(error.code.as_deref(), &error.title) {
        return meta::classify(code);
    }
    let code = error.code.as_deref().unwrap_or_default().trim();
    if VIBER_TRANSIENT.iter().any(|t| code.eq_ignore_ascii_case(t) || error.title.contains(t)) {
        return ErrorClass::Transient;
    }
    ErrorClass::Rejected(RejectScope::Content)
}

/// Viber service errors worth another attempt (PROVIDERS.md §3.5).
const VIBER_TRANSIENT: [&str; 2] = ["SRVC_INTERNAL_FAILURE", "SRVC_TIMEOUT"];

/// The envelope of a `code: 200` answer, or the classified error.
pub(crate) fn answer(call: Call, a: &Answer<'_>) -> Result<Envelope, ProviderError> {
    let Some(envelope) = Envelope::parse(a.body) else {
        return Err(not_an_envelope(call, a));
    };
    if envelope.code == 200 {
        return Ok(envelope);
    }
    let code = envelope.code;
    let message = envelope.message.trim();
    let mut meta_code = None;
    let class = match code {
        400 | 404 | 422 => ErrorClass::Rejected(RejectScope::Content),
        429 => throttled_lane(a.retry_after),
        500..=599 => ErrorClass::Transient,
        10001 => {
            tracing::warn!(http_status = a.http_status, "INCS refused the certification code (10001)");
            ErrorClass::Rejected(RejectScope::Account)
        }
        10002 => match meta::code_in_message(message) {
            Some(m) => {
                meta_code = Some(m);
                with_retry_after(meta::classify(m), a.retry_after)
            }
            None => ErrorClass::Rejected(RejectScope::Content),
        },
        10003 | 10004 => ErrorClass::Rejected(RejectScope::Content),
        // An undocumented code: the HTTP status may still say "slow down" or "try again".
        _ => match a.http_status {
            429 => throttled_lane(a.retry_after),
            500..=599 => ErrorClass::Transient,
            _ => ErrorClass::Rejected(RejectScope::Content),
        },
    };
    let title = if message.is_empty() { describe_code(code) } else { truncate(message, MAX_TITLE_CHARS) };
    let mut err = ProviderError::new(class, title).with_http_status(a.http_status).with_provider_code(code.to_string());
    if let Some(m) = meta_code {
        err = err.with_meta_code(m);
    }
    Err(err)
}

/// A body that is not JSON, or JSON that is not an INCS envelope: an HTML error page from a proxy,
/// a load balancer's 502, an empty answer. Only the HTTP status is left to go by.
fn not_an_envelope(call: Call, a: &Answer<'_>) -> ProviderError {
    let status = a.http_status;
    let class = match status {
        429 => throttled_lane(a.retry_after),
        // The certification code is checked by INCS itself (10001); a bare 401/403 comes from
        // something in front of it refusing this account.
        401 | 403 => ErrorClass::Rejected(RejectScope::Account),
        408 => ErrorClass::Transient,
        400..=499 => ErrorClass::Rejected(RejectScope::Content),
        _ => ErrorClass::Transient,
    };
    let mut err = ProviderError::new(class, format!("INCS answered HTTP {status} without a JSON envelope"))
        .with_http_status(status);
    // Something answered 2xx: INCS may have taken the message.
    if call.may_have_taken_effect() && (200..300).contains(&status) {
        err = err.with_outcome_unknown();
    }
    err
}

fn throttled_lane(retry_after: Option<Duration>) -> ErrorClass {
    ErrorClass::Throttled { retry_after, scope: ThrottleScope::Lane }
}

fn describe_code(code: u64) -> String {
    let what = match code {
        400 => "general API error",
        404 => "not found",
        422 => "request parameter error",
        429 => "too many attempts",
        500..=599 => "server error",
        10001 => "certification code invalid",
        10002 => "WhatsApp API error",
        10003 => "Viber API error",
        10004 => "RCS API error",
        _ => "undocumented error code",
    };
    format!("INCS code {code}: {what}")
}

/// A send answered `code: 200` but without `data.msg_id`: INCS probably took the message, and we
/// cannot tell its id.
pub(crate) fn missing_msg_id(http_status: u16) -> ProviderError {
    ProviderError::transient("INCS answered code 200 without data.msg_id")
        .with_http_status(http_status)
        .with_provider_code("200")
        .with_outcome_unknown()
}

/// A request that got no complete answer (see [`transport_error`]).
pub(crate) fn transport(call: Call, e: &reqwest::Error, timeout: Duration, http_status: Option<u16>) -> ProviderError {
    let failure = TransportFailure { connect: e.is_connect(), timeout: e.is_timeout(), http_status };
    // The URL in reqwest's text holds no secret: the credentials travel in headers, and the base
    // URLs may not carry any.
    tracing::debug!(error = %ErrorChain(e), "INCS transport error");
    transport_error("INCS", failure, timeout, call.may_have_taken_effect())
}

/// `Retry-After`, if the answer has a readable one.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    parse_retry_after(headers.get(RETRY_AFTER)?.to_str().ok()?, now)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use reqwest::header::HeaderValue;

    fn headers(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(RETRY_AFTER, HeaderValue::from_str(v).unwrap());
        h
    }

    #[test]
    fn retry_after_reads_seconds_and_dates() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(retry_after(&headers("2"), now), Some(Duration::from_secs(2)));
        assert_eq!(retry_after(&headers(" 120 "), now), Some(Duration::from_secs(120)));
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&later), now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&earlier), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&headers("-1"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn pair_rate_keeps_its_floor_and_lane_throttles_take_the_header() {
        let two = Some(Duration::from_secs(2));
        assert_eq!(
            with_retry_after(meta::classify(131056), two),
            ErrorClass::Throttled { retry_after: Some(meta::PAIR_RATE_DELAY), scope: ThrottleScope::Recipient }
        );
        assert_eq!(with_retry_after(meta::classify(130429), two), throttled_lane(two));
        assert_eq!(with_retry_after(meta::classify(131000), two), ErrorClass::Transient);
    }
}
