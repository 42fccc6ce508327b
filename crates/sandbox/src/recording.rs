//! What the sandbox received: provider requests and internal webhook deliveries.
//!
//! Both logs are append-only vectors behind a mutex held only for a push or a listing; bodies are
//! parsed once per request and shared with the handler through an `Arc`, and timestamps are
//! formatted only when listed, so recording stays cheap under benchmark load.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use actix_web::http::header::HeaderMap;
use actix_web::HttpRequest;
use chrono::{DateTime, SecondsFormat, Utc};
use serde::{Serialize, Serializer};
use serde_json::Value;

use crate::Provider;

/// A request body as recorded: JSON when it parses, the raw text otherwise, nothing when empty.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum RequestBody {
    Empty,
    Json(Value),
    Text(String),
}

impl RequestBody {
    pub(crate) fn parse(bytes: &[u8]) -> RequestBody {
        if bytes.is_empty() {
            return RequestBody::Empty;
        }
        match serde_json::from_slice(bytes) {
            Ok(value) => RequestBody::Json(value),
            Err(_) => RequestBody::Text(String::from_utf8_lossy(bytes).into_owned()),
        }
    }
}

impl Serialize for RequestBody {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self {
            RequestBody::Empty => serializer.serialize_none(),
            RequestBody::Json(value) => value.serialize(serializer),
            RequestBody::Text(text) => serializer.serialize_str(text),
        }
    }
}

/// One request to a provider path, in the DESIGN.md §8 shape.
#[derive(Debug, Serialize)]
pub(crate) struct RecordedRequest {
    provider: Provider,
    method: String,
    path: String,
    query: String,
    headers: BTreeMap<String, String>,
    #[serde(serialize_with = "shared_body")]
    body: Arc<RequestBody>,
    #[serde(serialize_with = "rfc3339_millis")]
    received_at: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct RequestLog {
    entries: Mutex<Vec<RecordedRequest>>,
    /// Requests received since start by `METHOD path`, which clearing the log leaves alone: a long
    /// run clears the log to bound the sandbox's memory and still counts what arrived.
    counts: Mutex<BTreeMap<String, u64>>,
}

impl RequestLog {
    pub(crate) fn record(&self, provider: Provider, req: &HttpRequest, body: Arc<RequestBody>) {
        let entry = RecordedRequest {
            provider,
            method: req.method().as_str().to_owned(),
            path: req.path().to_owned(),
            query: req.query_string().to_owned(),
            headers: header_map(req.headers()),
            body,
            received_at: Utc::now(),
        };
        *lock(&self.counts).entry(format!("{} {}", entry.method, entry.path)).or_insert(0) += 1;
        lock(&self.entries).push(entry);
    }

    /// How many requests arrived since start, by `METHOD path`.
    pub(crate) fn counts(&self) -> BTreeMap<String, u64> {
        lock(&self.counts).clone()
    }

    /// The recorded requests, optionally of one provider, in arrival order, as a JSON array.
    pub(crate) fn to_json(&self, provider: Option<Provider>) -> serde_json::Result<Vec<u8>> {
        let entries = lock(&self.entries);
        let selected: Vec<&RecordedRequest> =
            entries.iter().filter(|entry| provider.is_none_or(|wanted| entry.provider == wanted)).collect();
        serde_json::to_vec(&selected)
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// One delivery the gateway made to the sandbox's webhook consumer.
#[derive(Debug, Serialize)]
pub(crate) struct RecordedWebhook {
    headers: BTreeMap<String, String>,
    /// The exact bytes as text, so signatures over the raw body can be checked.
    raw_body: String,
    #[serde(serialize_with = "rfc3339_millis")]
    received_at: DateTime<Utc>,
}

#[derive(Default)]
pub(crate) struct WebhookLog {
    entries: Mutex<Vec<RecordedWebhook>>,
    /// Deliveries received since start; clearing the log leaves it alone.
    count: std::sync::atomic::AtomicU64,
}

impl WebhookLog {
    pub(crate) fn record(&self, req: &HttpRequest, body: &[u8]) {
        let entry = RecordedWebhook {
            headers: header_map(req.headers()),
            raw_body: String::from_utf8_lossy(body).into_owned(),
            received_at: Utc::now(),
        };
        self.count.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        lock(&self.entries).push(entry);
    }

    /// Deliveries received since start.
    pub(crate) fn count(&self) -> u64 {
        self.count.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub(crate) fn to_json(&self) -> serde_json::Result<Vec<u8>> {
        serde_json::to_vec(&*lock(&self.entries))
    }

    pub(crate) fn clear(&self) {
        lock(&self.entries).clear();
    }
}

/// Header names as actix keeps them (lower case); repeated headers joined as HTTP allows.
fn header_map(headers: &HeaderMap) -> BTreeMap<String, String> {
    let mut map: BTreeMap<String, String> = BTreeMap::new();
    for (name, value) in headers {
        let value = String::from_utf8_lossy(value.as_bytes());
        map.entry(name.as_str().to_owned())
            .and_modify(|joined| {
                joined.push_str(", ");
                joined.push_str(&value);
            })
            .or_insert_with(|| value.into_owned());
    }
    map
}

/// A panic while holding one of these locks cannot leave a half-made entry behind (pushes and
/// clears are single calls), so a poisoned lock is still safe to use.
pub(crate) fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

fn shared_body<S: Serializer>(body: &Arc<RequestBody>, serializer: S) -> Result<S::Ok, S::Error> {
    body.as_ref().serialize(serializer)
}

pub(crate) fn rfc3339_millis<S: Serializer>(at: &DateTime<Utc>, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&at.to_rfc3339_opts(SecondsFormat::Millis, true))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn bodies_are_json_text_or_null() {
        assert_eq!(RequestBody::parse(b""), RequestBody::Empty);
        assert_eq!(RequestBody::parse(br#"{"to":"85268411234"}"#), RequestBody::Json(json!({"to": "85268411234"})));
        assert_eq!(RequestBody::parse(b"to=85268411234"), RequestBody::Text("to=85268411234".into()));
        assert_eq!(serde_json::to_value(RequestBody::Empty).unwrap(), Value::Null);
        assert_eq!(serde_json::to_value(RequestBody::Text("x".into())).unwrap(), json!("x"));
    }

    #[test]
    fn timestamps_have_milliseconds_and_z() {
        let at = DateTime::parse_from_rfc3339("2026-11-21T10:00:00.123456+00:00").unwrap().with_timezone(&Utc);
        let mut out = Vec::new();
        rfc3339_millis(&at, &mut serde_json::Serializer::new(&mut out)).unwrap();
        assert_eq!(String::from_utf8(out).unwrap(), "\"2026-11-21T10:00:00.123Z\"");
    }
}
