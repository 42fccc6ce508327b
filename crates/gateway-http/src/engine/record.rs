//! What the engine stores about a message, and how it reads it back.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use gateway_core::{MessageId, MessageStatus, OutboundMessage, Priority};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The immutable part of a message record. Versioned, so a rolling deploy can read what an older
/// instance wrote (an older instance cannot read `2`: upgrade every instance before relying on
/// priorities, validity or campaigns).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum StoredMessage {
    #[serde(rename = "1")]
    V1(StoredMessageV1),
    /// Adds urgency and campaign membership.
    #[serde(rename = "2")]
    V2(StoredMessageV2),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMessageV2 {
    #[serde(flatten)]
    pub base: StoredMessageV1,
    #[serde(default)]
    pub priority: Priority,
    /// Validity from acceptance (or from `send_at`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
    /// The campaign (`POST /v1/messages/batch`) the message came in.
    // Not written into the body: the record's own `batch` field (which cancelling a campaign
    // reads) holds it, and `MessageRecord::from_fields` puts it back. Older bodies carry it.
    #[serde(default, skip_serializing)]
    pub batch_id: Option<String>,
    /// The W3C `traceparent` of the request that accepted it (a fallback step: its first
    /// message's), so its sends and event deliveries are spans of that trace.
    // Stored under a short key (older records: the long one), as every queued message carries it.
    #[serde(default, rename = "tp", alias = "traceparent", skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMessageV1 {
    pub id: MessageId,
    pub sender: String,
    /// Accounts that may carry the message, in order: the first is tried first.
    pub lanes: Vec<String>,
    pub message: OutboundMessage,
    /// The first message of a chain: the steps to send if it does not reach the person.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub fallback: Vec<StoredStep>,
    /// Any message of a chain (the first one included): where the chain's state lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chain: Option<ChainLink>,
}

/// A fallback step as the first message keeps it, routed at acceptance; its id is given then, so
/// that creating its message is idempotent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredStep {
    pub id: MessageId,
    pub sender: String,
    pub lanes: Vec<String>,
    pub message: OutboundMessage,
    pub after_seconds: u32,
    pub until: MessageStatus,
    /// The step's own, else the first message's (older records: `normal`).
    #[serde(default)]
    pub priority: Priority,
    /// The step's own, else the first message's; counted from when the step is sent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ttl_seconds: Option<u32>,
}

/// A message's place in a fallback chain.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainLink {
    /// The first message's sender (its hash tag holds the chain's state) and id.
    pub parent_sender: String,
    pub parent_id: MessageId,
    /// 0 for the first message, `i + 1` for `fallback[i]`.
    pub step: u8,
    /// The status that makes this message the chain's outcome: the next step's `until`, or, for
    /// the last step, its own.
    pub until: MessageStatus,
}

impl ChainLink {
    /// The compact form kept in the record's `chain` field, so status reports learn a message
    /// is in a chain without reading its body: `sender \n parent id \n step \n until`.
    pub fn encode(&self) -> String {
        format!("{}\n{}\n{}\n{}", self.parent_sender, self.parent_id, self.step, self.until.as_str())
    }

    pub fn decode(s: &str) -> Option<Self> {
        let mut it = s.split('\n');
        let parent_sender = it.next()?.to_owned();
        let parent_id = it.next()?.parse().ok()?;
        let step = it.next()?.parse().ok()?;
        let until = it.next()?.parse().ok()?;
        Some(Self { parent_sender, parent_id, step, until })
    }
}

/// Where each step of a chain is, as the first message's record holds it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ChainState {
    /// The step now in play (0: the first message).
    pub current: u8,
    /// Per fallback step (`fallback[i]` at `i`): the id it was sent with, once sent.
    pub sent: Vec<Option<String>>,
    /// Per fallback step: why it was sent (`failed`, `timeout`, ...).
    pub reasons: Vec<Option<String>>,
    /// The chain will send nothing more (a step reached its status, it was cancelled, or every
    /// step was tried).
    pub done: bool,
    /// The id of the first message that reached its `until`.
    pub outcome: Option<String>,
}
impl StoredMessage {
    pub fn v1(&self) -> &StoredMessageV1 {
        match self {
            StoredMessage::V1(m) => m,
            StoredMessage::V2(m) => &m.base,
        }
    }

    pub fn priority(&self) -> Priority {
        match self {
            StoredMessage::V1(_) => Priority::Normal,
            StoredMessage::V2(m) => m.priority,
        }
    }

    pub fn ttl_seconds(&self) -> Option<u32> {
        match self {
            StoredMessage::V1(_) => None,
            StoredMessage::V2(m) => m.ttl_seconds,
        }
    }

    pub fn batch_id(&self) -> Option<&str> {
        match self {
            StoredMessage::V1(_) => None,
            StoredMessage::V2(m) => m.batch_id.as_deref(),
        }
    }

    pub fn traceparent(&self) -> Option<&str> {
        match self {
            StoredMessage::V1(_) => None,
            StoredMessage::V2(m) => m.traceparent.as_deref(),
        }
    }
}

/// The error shown on a message.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorRecord {
    pub code: Option<String>,
    pub title: String,
    pub retryable: bool,
}

/// One provider call.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AttemptRecord {
    pub n: u32,
    pub provider: String,
    pub account: String,
    pub at: DateTime<Utc>,
    /// `submitted`, `rejected`, `rejected_account`, `throttled`, `throttled_recipient`, `transient`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub provider_code: Option<String>,
    pub latency_ms: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HistoryEntry {
    pub status: MessageStatus,
    /// Milliseconds since the epoch (server clock).
    pub at: i64,
    pub source: String,
}

/// A message record as read back from Redis.
#[derive(Debug, Clone)]
pub struct MessageRecord {
    pub body: StoredMessage,
    pub status: MessageStatus,
    pub lane: String,
    /// Attempts made on the current account.
    pub attempt: u32,
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub error: Option<ErrorRecord>,
    pub created_ms: i64,
    pub updated_ms: i64,
    /// When its validity ends (ms), if it has one.
    pub expires_ms: Option<i64>,
    pub history: Vec<HistoryEntry>,
    pub attempts: Vec<AttemptRecord>,
    /// The first message of a chain: the chain's state.
    pub chain: Option<ChainState>,
}

fn list<T: for<'de> Deserialize<'de>>(raw: Option<&String>) -> Result<Vec<T>, StoreError> {
    match raw {
        None => Ok(Vec::new()),
        Some(s) if s.is_empty() => Ok(Vec::new()),
        Some(s) => serde_json::from_str(&format!("[{s}]")).map_err(|e| StoreError::Corrupt(e.to_string())),
    }
}

impl MessageRecord {
    /// # Errors
    /// [`StoreError::Corrupt`] when a field cannot be read.
    pub fn from_fields(f: HashMap<String, String>) -> Result<Self, StoreError> {
        let corrupt = |what: &str| StoreError::Corrupt(format!("message record: {what}"));
        let mut body: StoredMessage = serde_json::from_str(f.get("body").ok_or_else(|| corrupt("no body"))?)
            .map_err(|e| corrupt(&e.to_string()))?;
        if let (StoredMessage::V2(m), Some(batch)) = (&mut body, f.get("batch").filter(|b| !b.is_empty())) {
            m.batch_id.get_or_insert_with(|| batch.clone());
        }
        let status = f.get("status").ok_or_else(|| corrupt("no status"))?.parse().map_err(|e: String| corrupt(&e))?;
        let int = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let error = match f.get("error") {
            Some(e) if !e.is_empty() => Some(serde_json::from_str(e).map_err(|e| corrupt(&e.to_string()))?),
            _ => None,
        };
        Ok(Self {
            status,
            lane: f.get("lane").cloned().unwrap_or_default(),
            attempt: f.get("attempt").and_then(|v| v.parse().ok()).unwrap_or(0),
            provider: f.get("provider").cloned(),
            provider_message_id: f.get("pmid").cloned(),
            error,
            created_ms: int("created"),
            // Not written until the first change after acceptance.
            updated_ms: f.get("updated").and_then(|v| v.parse().ok()).unwrap_or_else(|| int("created")),
            expires_ms: f.get("exp").and_then(|v| v.parse().ok()),
            history: list(f.get("history"))?,
            attempts: list(f.get("attempts"))?,
            chain: chain_state(&body, &f),
            body,
        })
    }
}

fn chain_state(body: &StoredMessage, f: &HashMap<String, String>) -> Option<ChainState> {
    let steps = body.v1().fallback.len();
    if steps == 0 {
        return None;
    }
    let field = |k: String| f.get(&k).filter(|v| !v.is_empty()).cloned();
    Some(ChainState {
        current: f.get("fbcur").and_then(|v| v.parse().ok()).unwrap_or(0),
        sent: (1..=steps).map(|k| field(format!("fb{k}"))).collect(),
        reasons: (1..=steps).map(|k| field(format!("fbr{k}"))).collect(),
        done: f.get("fbdone").is_some_and(|v| v == "1"),
        outcome: field("outcome".into()),
    })
}

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fields(body: &str, batch: Option<&str>) -> HashMap<String, String> {
        let mut f = HashMap::from([
            ("body".to_owned(), body.to_owned()),
            ("status".to_owned(), "queued".to_owned()),
            ("created".to_owned(), "1796074081991".to_owned()),
        ]);
        if let Some(b) = batch {
            f.insert("batch".to_owned(), b.to_owned());
        }
        f
    }

    const MESSAGE: &str = r#""id":"01a22e5c-4b21-7362-8273-b1098e44e542","sender":"hk-main","lanes":["incs-whatsapp"],"message":{"to":"85268000000","content":{"channel":"whatsapp","content":{"type":"text","value":{"body":"hi"}}}}"#;

    #[test]
    fn a_body_is_written_without_absent_fields_and_its_campaign() {
        let record = MessageRecord::from_fields(fields(
            &format!(r#"{{"v":"2",{MESSAGE},"tp":"00-552dbc53874b13091b168e18fb87ddc7-201ffd27f22ee910-01"}}"#),
            Some("b-1"),
        ))
        .unwrap();
        assert_eq!(record.body.batch_id(), Some("b-1"), "the campaign comes from the record's `batch` field");
        assert_eq!(record.body.traceparent(), Some("00-552dbc53874b13091b168e18fb87ddc7-201ffd27f22ee910-01"));
        let written = serde_json::to_string(&record.body).unwrap();
        for absent in ["batch_id", "null", "metadata", "send_at", "traceparent"] {
            assert!(!written.contains(absent), "{absent} written in {written}");
        }
        assert!(written.contains(r#""tp":"00-552dbc"#), "{written}");
    }

    #[test]
    fn older_bodies_are_read_with_their_own_fields() {
        let old = format!(
            r#"{{"v":"2",{},"priority":"bulk","batch_id":"b-old","traceparent":"00-552dbc53874b13091b168e18fb87ddc7-201ffd27f22ee910-01"}}"#,
            MESSAGE.replacen(
                r#""content""#,
                r#""sender":null,"provider":null,"metadata":{},"send_at":null,"content""#,
                1
            )
        );
        let record = MessageRecord::from_fields(fields(&old, None)).unwrap();
        assert_eq!(record.body.batch_id(), Some("b-old"));
        assert_eq!(record.body.priority(), Priority::Bulk);
        assert_eq!(record.body.traceparent(), Some("00-552dbc53874b13091b168e18fb87ddc7-201ffd27f22ee910-01"));
        assert_eq!(record.body.v1().message.send_at, None);
    }
}
