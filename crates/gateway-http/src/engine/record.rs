//! What the engine stores about a message, and how it reads it back.

use std::collections::HashMap;

use chrono::{DateTime, TimeZone, Utc};
use gateway_core::{MessageId, MessageStatus, OutboundMessage};
use serde::{Deserialize, Serialize};

use super::StoreError;

/// The immutable part of a message record. Versioned, so a rolling deploy can read what an older
/// or newer instance wrote.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "v")]
pub enum StoredMessage {
    #[serde(rename = "1")]
    V1(StoredMessageV1),
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StoredMessageV1 {
    pub id: MessageId,
    pub sender: String,
    /// Accounts that may carry the message, in order: the first is tried first.
    pub lanes: Vec<String>,
    pub message: OutboundMessage,
}

impl StoredMessage {
    pub fn v1(&self) -> &StoredMessageV1 {
        match self {
            StoredMessage::V1(m) => m,
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
    pub provider: Option<String>,
    pub provider_message_id: Option<String>,
    pub error: Option<ErrorRecord>,
    pub created_ms: i64,
    pub updated_ms: i64,
    pub history: Vec<HistoryEntry>,
    pub attempts: Vec<AttemptRecord>,
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
        let body: StoredMessage = serde_json::from_str(f.get("body").ok_or_else(|| corrupt("no body"))?)
            .map_err(|e| corrupt(&e.to_string()))?;
        let status = f.get("status").ok_or_else(|| corrupt("no status"))?.parse().map_err(|e: String| corrupt(&e))?;
        let int = |k: &str| f.get(k).and_then(|v| v.parse::<i64>().ok()).unwrap_or(0);
        let error = match f.get("error") {
            Some(e) if !e.is_empty() => Some(serde_json::from_str(e).map_err(|e| corrupt(&e.to_string()))?),
            _ => None,
        };
        Ok(Self {
            status,
            lane: f.get("lane").cloned().unwrap_or_default(),
            provider: f.get("provider").cloned(),
            provider_message_id: f.get("pmid").cloned(),
            error,
            created_ms: int("created"),
            updated_ms: int("updated"),
            history: list(f.get("history"))?,
            attempts: list(f.get("attempts"))?,
            body,
        })
    }
}

pub fn ms_to_time(ms: i64) -> DateTime<Utc> {
    Utc.timestamp_millis_opt(ms).single().unwrap_or_default()
}
