//! INCS request and response bodies. Private: the rest of the gateway sees only core types.
//!
//! The content types in `gateway-core` already serialize to the WhatsApp Cloud API shapes that the
//! INCS documents use (they are the gateway's API contract, DESIGN.md §2.1), so interactive objects,
//! template components, WhatsApp media and the Viber OTP and RCS template objects are embedded here
//! by reference instead of being copied into mirror DTOs that could drift. This module defines its
//! own shape only where INCS departs from those: text is a plain string, WhatsApp templates have no
//! `language`, the authentication template is `{name, code}`, and Viber and RCS media are `{link}`.
//! The golden tests compare every documented example with what goes on the wire, so a change in
//! core that alters the JSON fails there.

use gateway_core::content::rcs::{RcsContent, RcsTemplate};
use gateway_core::content::viber::{Otp, ViberContent};
use gateway_core::content::whatsapp::{Interactive, TemplateComponent, WhatsAppContent};
use gateway_core::content::Media;
use gateway_core::{Content, OutboundMessage};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

/// `{ "to", "type", "<type>": <object> }`.
#[derive(Debug, Serialize)]
pub(crate) struct SendBody<'a> {
    to: &'a str,
    #[serde(flatten)]
    content: WireContent<'a>,
}

#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireContent<'a> {
    Text { text: &'a str },
    Image { image: WireMedia<'a> },
    Video { video: WireMedia<'a> },
    Audio { audio: WireMedia<'a> },
    Document { document: WireMedia<'a> },
    Template { template: WireTemplate<'a> },
    Interactive { interactive: &'a Interactive },
    Otp { otp: &'a Otp },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireMedia<'a> {
    /// WhatsApp: `{link, caption?, filename?}` as the Cloud API has it.
    WhatsApp(&'a Media),
    /// Viber and RCS: INCS documents `{link}` and nothing else.
    LinkOnly { link: &'a str },
}

#[derive(Debug, Serialize)]
#[serde(untagged)]
enum WireTemplate<'a> {
    /// `{name, components?}`: INCS takes no `language` and resolves it from the name.
    WhatsApp {
        name: &'a str,
        #[serde(skip_serializing_if = "<[_]>::is_empty")]
        components: &'a [TemplateComponent],
    },
    /// `{name, code}`: INCS fills the code into the body and the copy-code button.
    Authentication { name: &'a str, code: &'a str },
    /// `{name, parameters?}`.
    Rcs(&'a RcsTemplate),
}

impl<'a> SendBody<'a> {
    /// The body for a message, or `None` for content INCS does not carry (which `can_carry` names).
    pub(crate) fn new(message: &'a OutboundMessage) -> Option<Self> {
        let link = |m: &'a Media| WireMedia::LinkOnly { link: &m.link };
        let content = match &message.content {
            Content::Whatsapp(c) => match c {
                WhatsAppContent::Text(t) => WireContent::Text { text: &t.body },
                WhatsAppContent::Image(m) => WireContent::Image { image: WireMedia::WhatsApp(m) },
                WhatsAppContent::Video(m) => WireContent::Video { video: WireMedia::WhatsApp(m) },
                WhatsAppContent::Audio(m) => WireContent::Audio { audio: WireMedia::WhatsApp(m) },
                WhatsAppContent::Document(m) => WireContent::Document { document: WireMedia::WhatsApp(m) },
                WhatsAppContent::Template(t) => WireContent::Template {
                    template: WireTemplate::WhatsApp { name: &t.name, components: &t.components },
                },
                WhatsAppContent::AuthTemplate(t) => {
                    WireContent::Template { template: WireTemplate::Authentication { name: &t.name, code: &t.code } }
                }
                WhatsAppContent::Interactive(i) => match i {
                    Interactive::Product { .. } | Interactive::ProductList { .. } => return None,
                    _ => WireContent::Interactive { interactive: i },
                },
                WhatsAppContent::Sticker(_) | WhatsAppContent::Location(_) | WhatsAppContent::Contacts(_) => {
                    return None
                }
            },
            Content::Viber(c) => match c {
                ViberContent::Otp(o) => WireContent::Otp { otp: o },
                ViberContent::Text(t) => WireContent::Text { text: t },
                ViberContent::Image(m) => WireContent::Image { image: link(m) },
                ViberContent::Video(m) => WireContent::Video { video: link(m) },
                ViberContent::Document(m) => WireContent::Document { document: link(m) },
            },
            Content::Rcs(c) => match c {
                RcsContent::Template(t) => WireContent::Template { template: WireTemplate::Rcs(t) },
                RcsContent::Text(t) => WireContent::Text { text: t },
                RcsContent::Image(m) => WireContent::Image { image: link(m) },
                RcsContent::Video(m) => WireContent::Video { video: link(m) },
                RcsContent::Document(m) => WireContent::Document { document: link(m) },
            },
        };
        Some(Self { to: message.to.as_str(), content })
    }
}

/// `{status, code, message, data, error}`. Lenient on purpose: a `code` given as a numeric string
/// and a `message` that is not a string are still understood, since an envelope we cannot read
/// would otherwise be classified by the HTTP status alone.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(deserialize_with = "number_or_numeric_string")]
    pub code: u64,
    #[serde(default, deserialize_with = "lenient_text")]
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

impl Envelope {
    /// `None` when the body is not JSON or not an INCS envelope.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        // serde reads a struct from an array too; an envelope is an object.
        match serde_json::from_slice(body).ok()? {
            v @ Value::Object(_) => serde_json::from_value(v).ok(),
            _ => None,
        }
    }

    /// `data.msg_id` of a send answer.
    pub(crate) fn msg_id(&self) -> Option<&str> {
        self.data.get("msg_id").and_then(Value::as_str).filter(|s| !s.trim().is_empty())
    }
}

fn number_or_numeric_string<'de, D: Deserializer<'de>>(d: D) -> Result<u64, D::Error> {
    match Value::deserialize(d)? {
        Value::Number(n) => n.as_u64().ok_or_else(|| serde::de::Error::custom("code is not a whole number")),
        Value::String(s) => s.trim().parse().map_err(serde::de::Error::custom),
        other => Err(serde::de::Error::custom(format!("code is {other}"))),
    }
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

/// One entry of the status poll's `data.data[]`. The timestamps are Unix seconds, 0 when unset.
#[derive(Debug, Deserialize)]
pub(crate) struct StatusEntry {
    pub message_id: String,
    /// A string (`sent`, `delivered`, `read`, `failed`) in the documents; INCS's internal integer
    /// codes are accepted too.
    #[serde(default)]
    pub message_status: Value,
    #[serde(default, deserialize_with = "unix_seconds")]
    pub created_at: Option<i64>,
    #[serde(default, deserialize_with = "unix_seconds")]
    pub delivered_at: Option<i64>,
    #[serde(default, deserialize_with = "unix_seconds")]
    pub read_at: Option<i64>,
}

/// A number, a numeric string or null; 0 and null are "not set".
fn unix_seconds<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
    let secs = match Value::deserialize(d)? {
        Value::Null => None,
        Value::Number(n) => n.as_i64().or_else(|| n.as_f64().map(|f| f as i64)),
        Value::String(s) if s.trim().is_empty() => None,
        Value::String(s) => Some(s.trim().parse().map_err(serde::de::Error::custom)?),
        other => return Err(serde::de::Error::custom(format!("a timestamp cannot be {other}"))),
    };
    Ok(secs.filter(|&s| s > 0))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_are_read_leniently() {
        let e = Envelope::parse(br#"{"status":"error","code":"10001","message":null}"#).unwrap();
        assert_eq!((e.code, e.message.as_str()), (10001, ""));
        let e = Envelope::parse(br#"{"code":422,"message":{"to":["invalid"]}}"#).unwrap();
        assert_eq!(e.message, r#"{"to":["invalid"]}"#);
        assert!(Envelope::parse(b"<html></html>").is_none());
        assert!(Envelope::parse(br#"{"status":"success"}"#).is_none());
        assert!(Envelope::parse(br#"[1,2]"#).is_none());
        assert!(Envelope::parse(br#"{"code":-1}"#).is_none());
    }

    #[test]
    fn msg_id_must_be_a_non_empty_string() {
        let id = |data: Value| Envelope { code: 200, message: String::new(), data }.msg_id().map(str::to_owned);
        assert_eq!(id(json!({"msg_id": "wamid.X"})), Some("wamid.X".into()));
        assert_eq!(id(json!({"msg_id": ""})), None);
        assert_eq!(id(json!({"msg_id": 5})), None);
        assert_eq!(id(json!({})), None);
        assert_eq!(id(json!([])), None);
    }

    #[test]
    fn timestamps_zero_and_null_are_unset() {
        let e: StatusEntry = serde_json::from_value(json!({
            "message_id": "m", "message_status": "read", "created_at": "1774249921", "delivered_at": 0, "read_at": null
        }))
        .unwrap();
        assert_eq!((e.created_at, e.delivered_at, e.read_at), (Some(1774249921), None, None));
    }
}
