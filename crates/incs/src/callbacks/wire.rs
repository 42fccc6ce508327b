//! The INCS callback bodies (seeds/003), as far as the gateway reads them.
//!
//! Fields the gateway does not map are not declared, so what INCS or Meta add later passes
//! through (and stays in `InboundMessage::raw`). Declared fields are typed strictly, with the
//! leniency the documents call for: INCS writes numbers where its tables say strings (order
//! quantities and prices, error codes) and the reverse (WhatsApp `timestamp`), so those fields take
//! either.

use std::fmt;

use chrono::{DateTime, Utc};
use gateway_core::MessageStatus;
use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;

pub(super) use gateway_core::event::fields::{NonEmpty, NonEmptyText, Text};

/// `message_status_update`.
#[derive(Debug, Deserialize)]
pub(super) struct StatusUpdate {
    #[serde(default)]
    pub business_phone: Option<String>,
    pub message_id: NonEmpty,
    pub message_status: WireStatus,
    #[serde(default)]
    pub error: Option<StatusError>,
    pub received_at: UnixSeconds,
}

/// `error`: `null`, `{code, title}` (`{}` when empty), or a bare string.
#[derive(Debug)]
pub(super) struct StatusError {
    pub code: Option<String>,
    pub title: Option<String>,
}

#[derive(Debug, Deserialize)]
struct StatusErrorObject {
    #[serde(default)]
    code: Option<Text>,
    #[serde(default)]
    title: Option<String>,
    #[serde(default)]
    message: Option<String>,
}

impl<'de> Deserialize<'de> for StatusError {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        #[derive(Deserialize)]
        #[serde(untagged, expecting = "an error object {code, title} or a string")]
        enum Either {
            Object(StatusErrorObject),
            Title(String),
        }
        Ok(match Either::deserialize(d)? {
            Either::Object(o) => StatusError { code: o.code.map(|c| c.0), title: o.title.or(o.message) },
            Either::Title(t) => StatusError { code: None, title: Some(t) },
        })
    }
}

/// `message_status`: the documented strings, or INCS's internal integers (1 sent, 2 failed,
/// 3 delivered, 4 read). Anything else is kept as text for the caller to report.
#[derive(Debug)]
pub(super) enum WireStatus {
    Known(MessageStatus),
    Other(String),
}

impl WireStatus {
    fn from_code(code: i64) -> Self {
        crate::status::from_code(code).map_or_else(|| Self::Other(code.to_string()), Self::Known)
    }

    fn from_name(name: &str) -> Self {
        crate::status::from_name(name).map_or_else(|| Self::Other(name.to_owned()), Self::Known)
    }
}

impl<'de> Deserialize<'de> for WireStatus {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WireStatus;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a status name or an INCS status number")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(WireStatus::from_name(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(WireStatus::from_code(v))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(i64::try_from(v).map_or_else(|_| WireStatus::Other(v.to_string()), WireStatus::from_code))
            }
        }
        d.deserialize_any(V)
    }
}

/// `template_status_update`, `template_category_update`, `template_quality_update`.
#[derive(Debug, Deserialize)]
pub(super) struct TemplateUpdate {
    #[serde(default)]
    pub channel_id: Option<Text>,
    #[serde(default)]
    pub business_phone: Option<String>,
    pub template_id: NonEmptyText,
    #[serde(default)]
    pub template_name: Option<String>,
    pub new_value: NonEmpty,
    #[serde(default)]
    pub reason: Option<String>,
    pub received_at: UnixSeconds,
}

/// `new_message`: `message` is a Meta webhook value (WhatsApp) or an RBM message (RCS).
#[derive(Debug, Deserialize)]
pub(super) struct NewMessage {
    #[serde(default)]
    pub business_phone: Option<String>,
}

/// The WhatsApp webhook value, without `messages` (read one by one, so each keeps its raw JSON).
#[derive(Debug, Deserialize)]
pub(super) struct WaValue {
    #[serde(default)]
    pub metadata: Option<WaMetadata>,
    #[serde(default)]
    pub contacts: Option<Vec<WaContact>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaMetadata {
    #[serde(default)]
    pub display_phone_number: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaContact {
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default)]
    pub user_id: Option<String>,
    #[serde(default)]
    pub profile: Option<WaProfile>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaProfile {
    #[serde(default)]
    pub name: Option<String>,
}

/// The part of every `messages[]` entry that does not depend on its type.
#[derive(Debug, Deserialize)]
pub(super) struct WaMessage {
    pub from: NonEmpty,
    #[serde(default)]
    pub from_user_id: Option<String>,
    pub id: NonEmpty,
    pub timestamp: UnixSeconds,
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub context: Option<WaContext>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaContext {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub from: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaText {
    pub body: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaMedia {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub link: Option<String>,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub caption: Option<String>,
    #[serde(default)]
    pub filename: Option<String>,
    #[serde(default)]
    pub sha256: Option<String>,
    #[serde(default)]
    pub voice: Option<bool>,
    #[serde(default)]
    pub animated: Option<bool>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaLocation {
    pub latitude: Latitude,
    pub longitude: Longitude,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub address: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaSharedContact {
    #[serde(default)]
    pub name: Option<WaContactName>,
    #[serde(default)]
    pub phones: Option<Vec<WaContactPhone>>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaContactName {
    #[serde(default)]
    pub formatted_name: Option<String>,
    #[serde(default)]
    pub first_name: Option<String>,
    #[serde(default)]
    pub last_name: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaContactPhone {
    #[serde(default)]
    pub phone: Option<String>,
    #[serde(default)]
    pub wa_id: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaButton {
    #[serde(default)]
    pub payload: Option<String>,
    pub text: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaInteractive {
    #[serde(rename = "type")]
    pub kind: String,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaReply {
    pub id: NonEmpty,
    pub title: String,
    #[serde(default)]
    pub description: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaOrder {
    pub catalog_id: NonEmptyText,
    #[serde(default)]
    pub text: Option<String>,
    pub product_items: Vec<WaOrderItem>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaOrderItem {
    pub product_retailer_id: NonEmptyText,
    pub quantity: Count,
    #[serde(default)]
    pub item_price: Option<Decimal>,
    #[serde(default)]
    pub currency: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaReaction {
    pub message_id: NonEmpty,
    #[serde(default)]
    pub emoji: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaError {
    #[serde(default)]
    pub code: Option<Text>,
    #[serde(default)]
    pub title: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
    #[serde(default)]
    pub error_data: Option<WaErrorData>,
}

#[derive(Debug, Deserialize)]
pub(super) struct WaErrorData {
    #[serde(default)]
    pub details: Option<String>,
}

/// An RBM user message as INCS forwards it.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RcsMessage {
    pub sender_phone_number: NonEmpty,
    pub message_id: NonEmpty,
    pub send_time: DateTime<Utc>,
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default)]
    pub user_file: Option<RcsUserFile>,
    #[serde(default)]
    pub suggestion_response: Option<RcsSuggestionResponse>,
    #[serde(default)]
    pub location: Option<RcsLocation>,
}

/// The keys of an RBM message that [`RcsMessage`] maps; any other key names an unknown kind.
pub(super) const RCS_KNOWN_KEYS: [&str; 8] =
    ["senderPhoneNumber", "messageId", "sendTime", "agentId", "text", "userFile", "suggestionResponse", "location"];

#[derive(Debug, Deserialize)]
pub(super) struct RcsUserFile {
    pub payload: RcsFileInfo,
    #[serde(default)]
    pub thumbnail: Option<RcsFileInfo>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RcsFileInfo {
    pub file_uri: NonEmpty,
    #[serde(default)]
    pub mime_type: Option<String>,
    #[serde(default)]
    pub file_name: Option<String>,
    #[serde(default)]
    pub file_size_bytes: Option<Count>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RcsSuggestionResponse {
    pub postback_data: String,
    #[serde(default)]
    pub text: Option<String>,
    #[serde(default, rename = "type")]
    pub kind: Option<String>,
    #[serde(default)]
    pub trackdata: Option<RcsTrackData>,
}

/// INCS's tracking data on a suggestion response: `msgId` is the id of the message that carried
/// the suggestion, in the same form as an RCS send's `msg_id`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(super) struct RcsTrackData {
    #[serde(default)]
    pub msg_id: Option<String>,
}

#[derive(Debug, Deserialize)]
pub(super) struct RcsLocation {
    pub latitude: Latitude,
    pub longitude: Longitude,
}

/// `message_created` (INCS chat event).
#[derive(Debug, Deserialize)]
pub(super) struct MessageCreated {
    pub message: ChatMessage,
}

#[derive(Debug, Deserialize)]
pub(super) struct ChatMessage {
    pub id: BigId,
    #[serde(rename = "type")]
    pub kind: i64,
    #[serde(default)]
    pub channel_msg_id: Option<String>,
    #[serde(default)]
    pub channel_status: Option<i64>,
    pub created_at: DateTime<Utc>,
}

/// `message_status_updated` (INCS chat event).
#[derive(Debug, Deserialize)]
pub(super) struct MessageStatusUpdated {
    pub message_id: BigId,
    pub message_status: i64,
    #[serde(default)]
    pub error: Option<String>,
    pub updated_at: DateTime<Utc>,
}

/// Unix seconds, as an integer or a string of digits.
#[derive(Debug)]
pub(super) struct UnixSeconds(pub DateTime<Utc>);

impl<'de> Deserialize<'de> for UnixSeconds {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "Unix seconds (an integer or a string of digits) within chrono's range";
        impl Visitor<'_> for V {
            type Value = UnixSeconds;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                DateTime::from_timestamp(v, 0)
                    .map(UnixSeconds)
                    .ok_or_else(|| E::invalid_value(Unexpected::Signed(v), &EXPECTED))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                let secs = i64::try_from(v).map_err(|_| E::invalid_value(Unexpected::Unsigned(v), &EXPECTED))?;
                self.visit_i64(secs)
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                let secs = v.trim().parse::<i64>().map_err(|_| E::invalid_value(Unexpected::Str(v), &EXPECTED))?;
                self.visit_i64(secs)
            }
        }
        d.deserialize_any(V)
    }
}

/// A non-negative integer, as a number or a string of digits (INCS's own ids are bigints).
#[derive(Debug)]
pub(super) struct Count(pub u64);

/// INCS's internal bigint ids.
pub(super) type BigId = Count;

impl<'de> Deserialize<'de> for Count {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        const EXPECTED: &str = "a non-negative integer";
        impl Visitor<'_> for V {
            type Value = Count;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str(EXPECTED)
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Count(v))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                u64::try_from(v).map(Count).map_err(|_| E::invalid_value(Unexpected::Signed(v), &EXPECTED))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                v.trim().parse::<u64>().map(Count).map_err(|_| E::invalid_value(Unexpected::Str(v), &EXPECTED))
            }
        }
        d.deserialize_any(V)
    }
}

/// A finite decimal, as a number or a numeric string (prices).
#[derive(Debug)]
pub(super) struct Decimal(pub f64);

impl<'de> Deserialize<'de> for Decimal {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decimal(d, "a finite number", |_| true).map(Decimal)
    }
}

/// Degrees in [-90, 90].
#[derive(Debug)]
pub(super) struct Latitude(pub f64);

impl<'de> Deserialize<'de> for Latitude {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decimal(d, "a latitude in [-90, 90]", |v| (-90.0..=90.0).contains(&v)).map(Latitude)
    }
}

/// Degrees in [-180, 180].
#[derive(Debug)]
pub(super) struct Longitude(pub f64);

impl<'de> Deserialize<'de> for Longitude {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        decimal(d, "a longitude in [-180, 180]", |v| (-180.0..=180.0).contains(&v)).map(Longitude)
    }
}

fn decimal<'de, D: Deserializer<'de>>(d: D, expected: &'static str, ok: fn(f64) -> bool) -> Result<f64, D::Error> {
    struct V {
        expected: &'static str,
        ok: fn(f64) -> bool,
    }
    impl Visitor<'_> for V {
        type Value = f64;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str(self.expected)
        }
        fn visit_f64<E: de::Error>(self, v: f64) -> Result<f64, E> {
            if v.is_finite() && (self.ok)(v) {
                Ok(v)
            } else {
                Err(E::invalid_value(Unexpected::Float(v), &self))
            }
        }
        // Integers this large are not exact as f64, but no price or coordinate comes near them.
        #[allow(clippy::cast_precision_loss)]
        fn visit_i64<E: de::Error>(self, v: i64) -> Result<f64, E> {
            self.visit_f64(v as f64)
        }
        #[allow(clippy::cast_precision_loss)]
        fn visit_u64<E: de::Error>(self, v: u64) -> Result<f64, E> {
            self.visit_f64(v as f64)
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<f64, E> {
            let parsed = v.trim().parse::<f64>().map_err(|_| E::invalid_value(Unexpected::Str(v), &self))?;
            self.visit_f64(parsed)
        }
    }
    d.deserialize_any(V { expected, ok })
}
