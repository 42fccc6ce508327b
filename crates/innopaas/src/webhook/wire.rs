//! The InnoPaaS webhook bodies (PROVIDERS.md §2.6), as far as the gateway reads them strictly:
//! the envelope, status and template bodies, and the part of an inbound message that says who
//! sent what to whom and when. What an inbound message carries is read leniently in the parent
//! module, straight from the JSON.
//!
//! Fields the gateway does not map are not declared, so whatever InnoPaaS adds passes through.
//! Ids, codes and phone numbers take a string or an integer (Chuanglan writes both); times take
//! the forms in [`WireTime`].

use std::fmt;

use chrono::{DateTime, NaiveDateTime, Utc};
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

pub(super) use gateway_core::event::fields::{NonEmpty, NonEmptyText, Text};

/// The envelope time, required for status and template events (their bodies have no time).
#[derive(Debug, Deserialize)]
pub(super) struct Timed {
    #[serde(rename = "eventTime")]
    pub event_time: WireTime,
}

/// The envelope time where the body may carry its own (inbound `sendTime`).
#[derive(Debug, Deserialize)]
pub(super) struct MaybeTimed {
    #[serde(rename = "eventTime", default)]
    pub event_time: Option<WireTime>,
}

/// `whatsapp_message_status_updated` body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct StatusBody {
    /// InnoPaaS's "Message Id": what msg/submit returned.
    #[serde(default)]
    pub id: Option<Text>,
    #[serde(default)]
    pub wamid: Option<String>,
    pub status: String,
    #[serde(default)]
    pub uid: Option<Text>,
    #[serde(default)]
    pub send_phone: Option<Text>,
    #[serde(default)]
    pub conversation: Option<ConversationWire>,
    #[serde(default)]
    pub error_data: Option<ErrorData>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct ConversationWire {
    #[serde(default)]
    pub initiate_type: Option<String>,
    #[serde(default)]
    pub expire_at: Option<OptionalTime>,
}

/// `errorData`: `{errorCode, errorMessage}` (the code a string or a number), or a bare string.
#[derive(Debug)]
pub(super) struct ErrorData {
    pub code: Option<String>,
    pub message: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorDataObject {
    #[serde(default)]
    error_code: Option<Text>,
    #[serde(default)]
    error_message: Option<String>,
}

impl<'de> Deserialize<'de> for ErrorData {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "an error object {errorCode, errorMessage} or a string")]
        enum Either {
            Object(ErrorDataObject),
            Message(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Object(o) => ErrorData { code: o.error_code.map(|c| c.0), message: o.error_message },
            Either::Message(m) => ErrorData { code: None, message: Some(m) },
        })
    }
}

/// `whatsapp_template_status_updated` (and `…_update`) body.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct TemplateBody {
    #[serde(default)]
    pub waba_id: Option<Text>,
    pub template_id: NonEmptyText,
    #[serde(default)]
    pub template_name: Option<String>,
    #[serde(default)]
    pub template_language: Option<String>,
    pub template_status: NonEmpty,
    #[serde(default)]
    pub reason: Option<String>,
}

/// What identifies an inbound message (`whatsapp_mo_message_received`, `chat_mo_message_notify`).
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct InboundHead {
    /// InnoPaaS's own id of the inbound message.
    #[serde(default)]
    pub id: Option<Text>,
    #[serde(default)]
    pub wamid: Option<String>,
    pub from: NonEmptyText,
    pub to: NonEmptyText,
    #[serde(default)]
    pub send_time: Option<WireTime>,
    /// Cloud API style Unix seconds, should InnoPaaS pass Meta's field through.
    #[serde(default)]
    pub timestamp: Option<WireTime>,
}

const TIME: &str = "a time: RFC 3339, `yyyy-MM-dd HH:mm:ss` (UTC), or Unix seconds or milliseconds";

/// A point in time as InnoPaaS writes one; see [`parse_time`].
#[derive(Debug)]
pub(super) struct WireTime(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for WireTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(TIME)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                parse_time(v).map(WireTime).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &TIME))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                epoch(v).map(WireTime).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &TIME))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .ok()
                    .and_then(epoch)
                    .map(WireTime)
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &TIME))
            }
        }
        d.deserialize_any(V)
    }
}

/// A [`WireTime`] where an empty string or `null` means none (`conversation.expireAt`).
#[derive(Debug)]
pub(super) struct OptionalTime(pub Option<DateTime<Utc>>);

impl<'de> Deserialize<'de> for OptionalTime {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = OptionalTime;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(TIME)
            }
            fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
                Ok(OptionalTime(None))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                if v.trim().is_empty() {
                    return Ok(OptionalTime(None));
                }
                parse_time(v).map(|t| OptionalTime(Some(t))).ok_or_else(|| E::invalid_value(Unexpected::Str(v), &TIME))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                epoch(v).map(|t| OptionalTime(Some(t))).ok_or_else(|| E::invalid_value(Unexpected::Unsigned(v), &TIME))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v)
                    .ok()
                    .and_then(epoch)
                    .map(|t| OptionalTime(Some(t)))
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &TIME))
            }
        }
        d.deserialize_any(V)
    }
}

/// Values from here up are milliseconds: 10^11 seconds is the year 5138, 10^11 milliseconds 1973.
const MILLIS_FROM: i64 = 100_000_000_000;

/// Unix seconds, or milliseconds from [`MILLIS_FROM`] up.
fn epoch(v: u64) -> Option<DateTime<Utc>> {
    let v = i64::try_from(v).ok()?;
    if v >= MILLIS_FROM {
        DateTime::from_timestamp_millis(v)
    } else {
        DateTime::from_timestamp(v, 0)
    }
}

/// RFC 3339 (`2023-02-22T12:00:00.000Z`), ISO 8601 with a `+0800` offset, `yyyy-MM-dd HH:mm:ss`
/// or `yyyy-MM-ddTHH:mm:ss` with no offset (taken as UTC: the sandbox writes UTC and InnoPaaS
/// documents no zone), optionally with a fraction; or a string of digits ([`epoch`]).
pub(super) fn parse_time(s: &str) -> Option<DateTime<Utc>> {
    let s = s.trim();
    if !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()) {
        return epoch(s.parse().ok()?);
    }
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Some(t.with_timezone(&Utc));
    }
    for format in ["%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(t) = DateTime::parse_from_str(s, format) {
            return Some(t.with_timezone(&Utc));
        }
    }
    ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f"]
        .into_iter()
        .find_map(|format| NaiveDateTime::parse_from_str(s, format).ok())
        .map(|t| t.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(s: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(s).map(|t| t.with_timezone(&Utc)).unwrap_or_default()
    }

    #[test]
    fn times_in_every_form() {
        let noon = at("2023-02-22T12:00:00Z");
        let cases = [
            ("2023-02-22T12:00:00.000Z", noon),
            ("2023-02-22T12:00:00Z", noon),
            ("2023-02-22T20:00:00+08:00", noon),
            ("2023-02-22T20:00:00+0800", noon),
            ("2023-02-22 20:00:00+0800", noon),
            ("2023-02-22 12:00:00", noon),
            ("2023-02-22T12:00:00", noon),
            ("2023-02-22T12:00:00.000", noon),
            (" 2023-02-22 12:00:00 ", noon),
            ("2023-02-22 12:00:00.250", at("2023-02-22T12:00:00.250Z")),
            ("1677067200", noon),
            ("1677067200000", noon),
        ];
        for (wire, want) in cases {
            assert_eq!(parse_time(wire), Some(want), "{wire}");
        }
        for bad in [
            "",
            "yesterday",
            "2023-02-22",
            "2023-02-30 12:00:00",
            "12:00:00",
            "-1677067200",
            "1e9",
            "99999999999999999999",
        ] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
        assert_eq!(epoch(99_999_999_999), DateTime::from_timestamp(99_999_999_999, 0));
        assert_eq!(epoch(100_000_000_000), DateTime::from_timestamp_millis(MILLIS_FROM));
        assert_eq!(epoch(u64::MAX), None);
    }
}
