//! Logging: JSON lines when `LOG_FORMAT=json`, human-readable otherwise; level from `RUST_LOG`.
//!
//! Every HTTP request runs in a `request` span holding its request id, method and route template
//! (never the raw path: callback URLs carry a secret), so each line it logs can be traced back to
//! it; the id is the caller's `X-Request-Id` when sane, otherwise a fresh UUIDv7, and is echoed in
//! the response.

use actix_web::http::header::{HeaderMap, HeaderName};
use tracing_subscriber::EnvFilter;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The longest caller-supplied request id kept; a longer one is replaced.
const MAX_REQUEST_ID: usize = 64;

pub fn init() {
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info,actix_server=warn"));
    let json = std::env::var("LOG_FORMAT").is_ok_and(|v| v.eq_ignore_ascii_case("json"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_target(false);
    // A second init (tests) is harmless: the first subscriber stays.
    let _ =
        if json { builder.json().flatten_event(true).with_current_span(true).try_init() } else { builder.try_init() };
}

/// The request's id: its `X-Request-Id` when that is 1 to 64 visible ASCII characters (so it is
/// safe in a log line and a header), otherwise a new UUIDv7.
pub fn request_id(headers: &HeaderMap) -> String {
    headers
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= MAX_REQUEST_ID && v.bytes().all(|b| b.is_ascii_graphic()))
        .map_or_else(|| uuid::Uuid::now_v7().to_string(), str::to_owned)
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with(value: &[u8]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        if let Ok(v) = HeaderValue::from_bytes(value) {
            headers.insert(REQUEST_ID, v);
        }
        headers
    }

    fn generated(id: &str) -> bool {
        uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
    }

    #[test]
    fn a_sane_caller_id_is_kept() {
        assert_eq!(request_id(&with(b"test-123")), "test-123");
        let longest = "a".repeat(64);
        assert_eq!(request_id(&with(longest.as_bytes())), longest);
    }

    #[test]
    fn a_missing_empty_long_or_unprintable_id_is_replaced_by_a_uuidv7() {
        assert!(generated(&request_id(&HeaderMap::new())));
        assert!(generated(&request_id(&with(b""))));
        assert!(generated(&request_id(&with("a".repeat(65).as_bytes()))));
        assert!(generated(&request_id(&with(b"two words"))));
        assert!(generated(&request_id(&with(b"tab\there"))));
        assert!(generated(&request_id(&with("caf\u{e9}".as_bytes()))));
    }
}
