//! Fault injection: a queue of faults, each answering the next `count` matching requests of one
//! provider with a chosen status, body, `Retry-After` and delay. The first matching fault in
//! insertion order wins, so a narrow fault (one lane's certification code) can sit beside a broad
//! one.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::recording::lock;
use crate::{incs, innopaas, Provider};

/// The longest delay a fault may ask for; anything longer is a typo, not a timeout test.
const MAX_DELAY_MS: u64 = 600_000;

/// A fault as posted to `POST /_sandbox/faults` and listed by `GET /_sandbox/faults` (where
/// `count` is what is left).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Fault {
    provider: Provider,
    /// An HTTP status, or a provider code answered with HTTP 200: for INCS 10001–10004, for
    /// InnoPaaS 100–199 (its custom codes: 102 auth, 110 balance, ...; never a final HTTP status).
    /// Absent: answer normally, only after `delay_ms`.
    #[serde(default)]
    status: Option<u32>,
    /// Seconds, sent as the `Retry-After` header.
    #[serde(default)]
    retry_after: Option<u64>,
    /// The exact JSON answer; absent: the provider's envelope for `status`.
    #[serde(default)]
    body: Option<Value>,
    #[serde(default)]
    delay_ms: u64,
    /// How many more requests this fault answers; absent: until cleared.
    #[serde(default)]
    count: Option<u32>,
    #[serde(default, rename = "match")]
    matcher: RequestMatch,
}

/// Which requests a fault applies to; every member present must match.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RequestMatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    path: Option<String>,
    /// Header name (any case) to exact value.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    headers: BTreeMap<String, String>,
}

impl RequestMatch {
    fn matches(&self, req: &HttpRequest) -> bool {
        if self.path.as_deref().is_some_and(|path| path != req.path()) {
            return false;
        }
        self.headers.iter().all(|(name, expected)| {
            req.headers().get_all(name.as_str()).any(|value| value.as_bytes() == expected.as_bytes())
        })
    }
}

impl Fault {
    /// Parses and checks a posted fault; the error is a message for the client.
    pub(crate) fn parse(body: &[u8]) -> Result<Fault, String> {
        let mut fault: Fault = serde_json::from_slice(body).map_err(|error| format!("invalid fault: {error}"))?;
        fault.check()?;
        // Header names are case-insensitive on the wire; store them as actix looks them up.
        fault.matcher.headers = std::mem::take(&mut fault.matcher.headers)
            .into_iter()
            .map(|(name, value)| (name.to_ascii_lowercase(), value))
            .collect();
        Ok(fault)
    }

    fn check(&self) -> Result<(), String> {
        if let Some(status) = self.status {
            let provider_code = match self.provider {
                Provider::Incs => incs::is_provider_code(status),
                Provider::Innopaas => false,
            };
            if !(100..=599).contains(&status) && !provider_code {
                return Err(match self.provider {
                    Provider::Incs => format!(
                        "invalid fault: status {status} is neither an HTTP status (100-599) nor an \
                         INCS provider code (10001-10004)"
                    ),
                    Provider::Innopaas => {
                        format!("invalid fault: status {status} is not an HTTP status (100-599)")
                    }
                });
            }
        } else {
            if self.body.is_some() || self.retry_after.is_some() {
                return Err("invalid fault: `body` and `retry_after` need a `status` to answer with".into());
            }
            if self.delay_ms == 0 {
                return Err("invalid fault: give a `status` to answer with, a `delay_ms`, or both".into());
            }
        }
        if self.delay_ms > MAX_DELAY_MS {
            return Err(format!("invalid fault: `delay_ms` may be at most {MAX_DELAY_MS}"));
        }
        if self.count == Some(0) {
            return Err("invalid fault: `count` must be at least 1 (leave it out for a fault that lasts \
                 until cleared)"
                .into());
        }
        Ok(())
    }
}

/// What one request gets from the fault that matched it.
#[derive(Debug)]
pub(crate) struct FaultHit {
    pub(crate) delay: Duration,
    status: Option<u32>,
    retry_after: Option<u64>,
    body: Option<Value>,
}

impl FaultHit {
    /// The faulty answer, or `None` when the fault only delays the normal one.
    pub(crate) fn response(self, provider: Provider) -> Option<HttpResponse> {
        let status = self.status?;
        let (http_status, default_body) = match provider {
            Provider::Incs => incs::fault_answer(status),
            Provider::Innopaas => innopaas::fault_answer(status),
        };
        let body = match self.body.map(|body| serde_json::to_vec(&body)) {
            Some(Ok(body)) => body,
            // A `Value` always serializes; the provider's envelope is the sensible fallback.
            None | Some(Err(_)) => default_body,
        };
        let mut response = HttpResponse::build(http_status);
        response.content_type("application/json");
        if let Some(seconds) = self.retry_after {
            response.insert_header(("Retry-After", seconds.to_string()));
        }
        Some(response.body(body))
    }
}

#[derive(Default)]
pub(crate) struct FaultBook {
    faults: Mutex<Vec<Fault>>,
}

impl FaultBook {
    pub(crate) fn add(&self, fault: Fault) {
        lock(&self.faults).push(fault);
    }

    pub(crate) fn list(&self) -> Vec<Fault> {
        lock(&self.faults).clone()
    }

    pub(crate) fn clear(&self) {
        lock(&self.faults).clear();
    }

    /// Finds the first fault for this request and uses up one of its `count`.
    pub(crate) fn take_matching(&self, provider: Provider, req: &HttpRequest) -> Option<FaultHit> {
        let mut faults = lock(&self.faults);
        let index = faults.iter().position(|fault| fault.provider == provider && fault.matcher.matches(req))?;
        let fault = &mut faults[index];
        let hit = FaultHit {
            delay: Duration::from_millis(fault.delay_ms),
            status: fault.status,
            retry_after: fault.retry_after,
            body: fault.body.clone(),
        };
        if let Some(count) = fault.count.as_mut() {
            *count -= 1;
            if *count == 0 {
                faults.remove(index);
            }
        }
        Some(hit)
    }
}

/// Used where a status is known to be valid; falls back to 500 rather than panicking.
pub(crate) fn status_code(status: u32) -> StatusCode {
    u16::try_from(status)
        .ok()
        .and_then(|status| StatusCode::from_u16(status).ok())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use actix_web::test::TestRequest;

    fn fault(json: &str) -> Result<Fault, String> {
        Fault::parse(json.as_bytes())
    }

    #[test]
    fn malformed_faults_are_refused_with_a_reason() {
        let cases = [
            (r#"{"status":429}"#, "missing field `provider`"),
            (r#"{"provider":"sms","status":429}"#, "unknown variant `sms`"),
            (r#"{"provider":"incs","status":42}"#, "neither an HTTP status"),
            (r#"{"provider":"innopaas","status":10001}"#, "not an HTTP status"),
            (r#"{"provider":"incs","status":429,"count":0}"#, "at least 1"),
            (r#"{"provider":"incs","status":429,"retry-after":2}"#, "unknown field `retry-after`"),
            (r#"{"provider":"incs"}"#, "give a `status`"),
            (r#"{"provider":"incs","retry_after":2,"delay_ms":5}"#, "need a `status`"),
            (r#"{"provider":"incs","status":500,"match":{"header":{}}}"#, "unknown field `header`"),
            (r#"{"provider":"incs","delay_ms":600001}"#, "at most"),
            ("[]", "invalid fault"),
        ];
        for (json, reason) in cases {
            let error = fault(json).expect_err(json);
            assert!(error.contains(reason), "{json}: {error}");
        }
    }

    #[test]
    fn count_is_used_up_and_first_match_wins() {
        let book = FaultBook::default();
        book.add(
            fault(
                r#"{"provider":"incs","status":429,"count":1,
                    "match":{"headers":{"Certification-Code":"lane-a"}}}"#,
            )
            .unwrap(),
        );
        book.add(fault(r#"{"provider":"incs","status":500,"count":2}"#).unwrap());

        let lane_a = || {
            TestRequest::post()
                .uri("/external/messages/whatsapp")
                .insert_header(("certification-code", "lane-a"))
                .to_http_request()
        };
        let lane_b = || {
            TestRequest::post()
                .uri("/external/messages/whatsapp")
                .insert_header(("certification-code", "lane-b"))
                .to_http_request()
        };

        assert!(book.take_matching(Provider::Innopaas, &lane_a()).is_none());
        assert_eq!(book.take_matching(Provider::Incs, &lane_a()).unwrap().status, Some(429));
        // The narrow fault is used up; lane A now falls through to the broad one.
        assert_eq!(book.take_matching(Provider::Incs, &lane_a()).unwrap().status, Some(500));
        assert_eq!(book.take_matching(Provider::Incs, &lane_b()).unwrap().status, Some(500));
        assert!(book.take_matching(Provider::Incs, &lane_b()).is_none());
        assert!(book.list().is_empty());
    }

    #[test]
    fn path_match_is_exact() {
        let book = FaultBook::default();
        book.add(fault(r#"{"provider":"incs","status":500,"match":{"path":"/external/messages/rcs"}}"#).unwrap());
        let viber = TestRequest::post().uri("/external/messages/viber").to_http_request();
        let rcs = TestRequest::post().uri("/external/messages/rcs?x=1").to_http_request();
        assert!(book.take_matching(Provider::Incs, &viber).is_none());
        assert!(book.take_matching(Provider::Incs, &rcs).is_some());
        // No count: it stays until cleared.
        assert!(book.take_matching(Provider::Incs, &rcs).is_some());
        assert_eq!(book.list().len(), 1);
        book.clear();
        assert!(book.take_matching(Provider::Incs, &rcs).is_none());
    }
}
