//! Every InnoPaaS answer and transport failure, turned into success or a classified
//! [`ProviderError`] (PROVIDERS.md §2.1, §2.5): the envelope decides, the HTTP status only where the
//! envelope's code is not one InnoPaaS documents, or the body is no envelope at all.

use std::time::{Duration, SystemTime};

use gateway_core::meta;
use gateway_core::{ErrorClass, ProviderError, RejectScope, ThrottleScope};
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::wire::Envelope;

/// Longest `title` kept from a provider message.
const MAX_TITLE_CHARS: usize = 200;

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

/// A throttling Meta code carries no delay of its own unless it is the pair rate; a `Retry-After`
/// header, if InnoPaaS sent one, is the better guess. Never shorter than the class's own delay.
fn with_retry_after(class: ErrorClass, header: Option<Duration>) -> ErrorClass {
    match class {
        ErrorClass::Throttled { retry_after, scope } => {
            ErrorClass::Throttled { retry_after: retry_after.max(header), scope }
        }
        other => other,
    }
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

/// A request that got no complete answer. A connect error means nothing was sent; anything after
/// that may have reached InnoPaaS, so the outcome of a creating call is unknown.
pub(crate) fn transport(call: Call, e: &reqwest::Error, timeout: Duration, http_status: Option<u16>) -> ProviderError {
    let mut err = if e.is_connect() {
        ProviderError::transient("could not connect to InnoPaaS")
    } else if e.is_timeout() {
        ProviderError::transient(format!("InnoPaaS did not answer within {} ms", timeout.as_millis()))
    } else if http_status.is_some() {
        ProviderError::transient("the InnoPaaS answer broke off")
    } else {
        ProviderError::transient("the request to InnoPaaS failed")
    };
    if let Some(s) = http_status {
        err = err.with_http_status(s);
    }
    if call.creates() && !e.is_connect() {
        err = err.with_outcome_unknown();
    }
    // The URL in reqwest's text holds no secret: the credentials travel in headers, and the URLs
    // may not carry any.
    tracing::debug!(error = %DisplayChain(e), "InnoPaaS transport error");
    err
}

/// The error and its sources on one line.
struct DisplayChain<'a>(&'a (dyn std::error::Error + 'static));

impl std::fmt::Display for DisplayChain<'_> {
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

/// `Retry-After` as delta-seconds or an HTTP-date (RFC 9110 §10.2.3); a date in the past is zero,
/// anything unreadable is ignored.
pub(crate) fn retry_after(headers: &HeaderMap, now: SystemTime) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(secs) = value.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let at = httpdate::parse_http_date(value).ok()?;
    Some(at.duration_since(now).unwrap_or(Duration::ZERO))
}

/// At most `max` characters, cut on a character boundary, with `…` when cut.
pub(crate) fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_owned(),
        Some((cut, _)) => format!("{}…", &s[..cut]),
    }
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
