//! Every InnoPaaS answer and transport failure, turned into success or a classified
//! [`ProviderError`] (PROVIDERS.md §2.1, §2.5): the envelope decides, the HTTP status only where the
//! envelope's code is not one InnoPaaS documents, or the body is no envelope at all.

use std::time::{Duration, SystemTime};

use gateway_core::meta;
use gateway_core::transport::{
    parse_retry_after, transport_error, truncate, with_retry_after, ErrorChain, TransportFailure, MAX_TITLE_CHARS,
};
use gateway_core::{ErrorClass, ProviderError, RejectScope, ThrottleScope};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::wire::Envelope;

/// What the caller was doing: a call that creates something (a send, a template) may have done so
/// when no answer came back; a read has no such risk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Call {
    Send,
    PhoneInfo,
    TemplateSubmit,
}

impl Call {
    fn creates(self) -> bool {
        matches!(self, Self::Send | Self::TemplateSubmit)
    }
}

/// An HTTP answer, as far as classification needs it.
pub(crate) struct Answer<'a> {
    pub http_status: u16,
    pub retry_after: Option<Duration>,
    pub body: &'a [u8],
}

/// The class of a failure InnoPaaS reported by webhook (`errorData.errorCode`, a Meta code as
/// text): the same Meta table as a send's answer. `SMECL:FAILED` and anything without a Meta
/// code is permanent (PROVIDERS.md §2.6).
pub fn classify_report(error: &gateway_core::event::ReportedError) -> ErrorClass {
    match meta::code_of_report(error.code.as_deref(), &error.title) {
        Some(code) => meta::classify(code),
        None => ErrorClass::Rejected(RejectScope::Content),
    }
}

/// The envelope of a successful answer (`code: "0"`, `success: true`), or the classified error.
pub(crate) fn answer(call: Call, a: &Answer<'_>) -> Result<Envelope, ProviderError> {
    let Some(envelope) = Envelope::parse(a.body) else {
        return Err(not_an_envelope(call, a));
    };
    if envelope.is_success() {
        return Ok(envelope);
    }
    let code = envelope.code.as_str();
    let message = envelope.message.trim();
    if code == "0" {
        // "Success" with `success: false` (or none): InnoPaaS may or may not have taken it.
        let mut err = ProviderError::transient("InnoPaaS answered code 0 without success: true")
            .with_http_status(a.http_status)
            .with_provider_code(code);
        if call.creates() {
            err = err.with_outcome_unknown();
        }
        return Err(err);
    }
    let meta_code = meta::code_in_message(message);
    let class = match code {
        "101" | "102" | "110" | "112" | "114" | "115" | "118" => {
            tracing::warn!(http_status = a.http_status, code, "InnoPaaS refused the account");
            ErrorClass::Rejected(RejectScope::Account)
        }
        "105" | "106" | "108" | "109" => ErrorClass::Rejected(RejectScope::Content),
        _ => undocumented(code, a, meta_code),
    };
    let title = if message.is_empty() { describe_code(code) } else { truncate(message, MAX_TITLE_CHARS) };
    let mut err = ProviderError::new(class, title).with_http_status(a.http_status).with_provider_code(code);
    if let Some(m) = meta_code {
        err = err.with_meta_code(m);
    }
    Err(err)
}

/// A code the error table does not list (PROVIDERS.md §2.5 has only its first rows): permanent,
/// unless a Meta code in the message says wait or retry, or the HTTP status (or a code that reads
/// like one) says so.
fn undocumented(code: &str, a: &Answer<'_>, meta_code: Option<u32>) -> ErrorClass {
    let meta_class = meta_code.map(|m| with_retry_after(meta::classify(m), a.retry_after));
    if let Some(class @ (ErrorClass::Throttled { .. } | ErrorClass::Transient)) = meta_class {
        return class;
    }
    match (a.http_status, code.parse::<u16>().ok()) {
        (429, _) | (_, Some(429)) => throttled_lane(a.retry_after),
        (500..=599, _) | (_, Some(500..=599)) => ErrorClass::Transient,
        _ => meta_class.unwrap_or(ErrorClass::Rejected(RejectScope::Content)),
    }
}

/// A body that is not JSON, or JSON that is not an InnoPaaS envelope: an HTML error page from a
/// proxy, a load balancer's 502, an empty answer. Only the HTTP status is left to go by.
fn not_an_envelope(call: Call, a: &Answer<'_>) -> ProviderError {
    let status = a.http_status;
    let class = match status {
        429 => throttled_lane(a.retry_after),
        // InnoPaaS reports its own credential check as 101/102; a bare 401/403 comes from
        // something in front of it refusing this account (an IP allow-list, say).
        401 | 403 => ErrorClass::Rejected(RejectScope::Account),
        408 => ErrorClass::Transient,
        400..=499 => ErrorClass::Rejected(RejectScope::Content),
        _ => ErrorClass::Transient,
    };
    let mut err = ProviderError::new(class, format!("InnoPaaS answered HTTP {status} without a JSON envelope"))
        .with_http_status(status);
    // Something answered 2xx: InnoPaaS may have taken the message.
    if call.creates() && (200..300).contains(&status) {
        err = err.with_outcome_unknown();
    }
    err
}

fn throttled_lane(retry_after: Option<Duration>) -> ErrorClass {
    ErrorClass::Throttled { retry_after, scope: ThrottleScope::Lane }
}

fn describe_code(code: &str) -> String {
    let what = match code {
        "101" => "account does not exist",
        "102" => "wrong password or token",
        "105" => "uid too long",
        "106" => "content longer than 3000 characters",
        "108" => "phone number format",
        "109" => "too many phone numbers",
        "110" => "insufficient balance",
        "112" => "product configuration",
        "114" => "client IP not allowed",
        "115" => "no permission",
        "118" => "send number does not exist",
        _ => "undocumented error code",
    };
    format!("InnoPaaS code {code}: {what}")
}

/// A successful answer without the id the call should return: InnoPaaS probably did the work, and
/// we cannot tell its id.
pub(crate) fn missing_id(call: Call, http_status: u16, what: &str) -> ProviderError {
    let mut err = ProviderError::transient(format!("InnoPaaS answered code 0 without {what}"))
        .with_http_status(http_status)
        .with_provider_code("0");
    if call.creates() {
        err = err.with_outcome_unknown();
    }
    err
}

/// A request that got no complete answer (see [`transport_error`]).
pub(crate) fn transport(call: Call, e: &reqwest::Error, timeout: Duration, http_status: Option<u16>) -> ProviderError {
    let failure = TransportFailure { connect: e.is_connect(), timeout: e.is_timeout(), http_status };
    // The URL in reqwest's text holds no secret: the credentials travel in headers, and the base
    // URLs may not carry any.
    tracing::debug!(error = %ErrorChain(e), "InnoPaaS transport error");
    transport_error("InnoPaaS", failure, timeout, call.creates())
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
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&later), now), Some(Duration::from_secs(30)));
        let earlier = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(retry_after(&headers(&earlier), now), Some(Duration::ZERO));
        assert_eq!(retry_after(&headers("soon"), now), None);
        assert_eq!(retry_after(&HeaderMap::new(), now), None);
    }

    #[test]
    fn truncate_cuts_on_char_boundaries() {
        assert_eq!(truncate("abc", 3), "abc");
        assert_eq!(truncate("abcd", 3), "abc…");
        assert_eq!(truncate("余额不足余额不足", 2), "余额…");
    }

    #[test]
    fn reads_are_never_outcome_unknown() {
        let a = Answer { http_status: 200, retry_after: None, body: b"<html>" };
        assert!(!not_an_envelope(Call::PhoneInfo, &a).outcome_unknown);
        assert!(not_an_envelope(Call::TemplateSubmit, &a).outcome_unknown);
        assert!(!missing_id(Call::PhoneInfo, 200, "data").outcome_unknown);
    }

    #[test]
    fn a_meta_throttle_beats_the_http_status_and_a_permanent_one_does_not() {
        let answer = |http_status, body: &'static [u8]| {
            super::answer(Call::Send, &Answer { http_status, retry_after: None, body }).unwrap_err().class
        };
        assert_eq!(
            answer(429, br#"{"code":"999","success":false,"message":"(#131056) pair rate limit hit"}"#),
            ErrorClass::Throttled { retry_after: Some(meta::PAIR_RATE_DELAY), scope: ThrottleScope::Recipient }
        );
        assert_eq!(
            answer(503, br#"{"code":"999","success":false,"message":"(#131026) Message undeliverable"}"#),
            ErrorClass::Transient
        );
        assert_eq!(
            answer(200, br#"{"code":"999","success":false,"message":"(#131031) Business account locked"}"#),
            ErrorClass::Rejected(RejectScope::Account)
        );
    }
}
