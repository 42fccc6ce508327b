//! `POST /_sandbox/callbacks`: makes a provider post, now, a callback the caller names, in the
//! provider's documented shape (seeds/003 for INCS, PROVIDERS.md §2.6-2.7 for InnoPaaS), so a
//! gateway's handling of what providers do only sometimes can be driven end to end:
//!
//! - `{"event": "failed", "provider", "message_id", "code", "title"?}`: a `failed` status with
//!   that error code for a message the provider accepted (INCS `message_status_update` with
//!   `error {code, title}`; InnoPaaS `whatsapp_message_status_updated` with `errorData`);
//! - `{"event": "inbound", "provider", "from", "number"?, "message"?, "context_message_id"?}`: a
//!   user's message to the provider's `number`-th number (default 0), `message` being Meta's
//!   message object (`{"type": "image", "image": {...}}`, any documented type; default a text),
//!   replying to `context_message_id` when given (INCS `new_message`; InnoPaaS
//!   `whatsapp_mo_message_received`, which also takes `waba_id` and `to`);
//! - INCS only: `{"event": "message_created", "message_id", "channel_status"?}` and
//!   `{"event": "message_status_updated", "message_id", "channel_status"}` (INCS's chat events,
//!   keyed by its own chat id, given to a message the first time one names it);
//!   `{"event": "template_update", "template_id", "change": "status"|"category"|"quality",
//!   "new_value", "reason"?}` for a template created here.
//!
//! Answers 202 with `{"posted": <body>}`; 400 for a body it does not understand, 404 for a
//! message or template the provider does not have, 409 when no callback URL is configured.

use actix_web::http::StatusCode;
use serde::Deserialize;
use serde_json::{Map, Value};

use crate::Provider;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum TemplateChange {
    Status,
    Category,
    Quality,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "event", rename_all = "snake_case", deny_unknown_fields)]
pub(crate) enum Emit {
    Failed {
        provider: Provider,
        message_id: String,
        code: Value,
        #[serde(default)]
        title: Option<String>,
    },
    Inbound {
        provider: Provider,
        from: String,
        #[serde(default)]
        number: usize,
        #[serde(default)]
        message: Option<Map<String, Value>>,
        #[serde(default)]
        context_message_id: Option<String>,
        #[serde(default)]
        waba_id: Option<String>,
        #[serde(default)]
        to: Option<String>,
    },
    MessageCreated {
        message_id: String,
        #[serde(default)]
        channel_status: u8,
    },
    MessageStatusUpdated {
        message_id: String,
        channel_status: u8,
    },
    TemplateUpdate {
        template_id: String,
        change: TemplateChange,
        new_value: String,
        #[serde(default)]
        reason: String,
    },
}

/// Why an emit request was refused: the control's HTTP status and a message.
pub(crate) type Refusal = (StatusCode, String);

pub(crate) fn bad(message: impl Into<String>) -> Refusal {
    (StatusCode::BAD_REQUEST, message.into())
}

pub(crate) fn no_callback_url(provider: Provider) -> Refusal {
    (StatusCode::CONFLICT, format!("no callback URL is configured for {provider}"))
}

pub(crate) fn not_found(what: &str, id: &str) -> Refusal {
    (StatusCode::NOT_FOUND, format!("{what} `{id}` is not one the sandbox issued"))
}

impl Emit {
    /// Parses a `POST /_sandbox/callbacks` body.
    pub(crate) fn parse(body: &[u8]) -> Result<Emit, Refusal> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let emit: Emit = serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string() {
            path if path == "." => bad(e.inner().to_string()),
            path => bad(format!("{path}: {}", e.inner())),
        })?;
        match &emit {
            Emit::Failed { code, .. } if !(code.is_string() || code.is_u64()) => {
                Err(bad("code: a provider error code, a number or a string"))
            }
            Emit::Inbound { from, .. } if !is_phone_number(from) => {
                Err(bad(format!("from: 8 to 15 digits with the country code, got `{from}`")))
            }
            Emit::Inbound { message: Some(m), .. } => match m.get("type").and_then(Value::as_str) {
                Some(kind) if m.get(kind).is_some() => Ok(()),
                Some(kind) => Err(bad(format!("message.{kind}: the object named by `type` is missing"))),
                None => Err(bad("message.type: required, a string")),
            }
            .map(|()| emit),
            Emit::MessageCreated { channel_status, .. } | Emit::MessageStatusUpdated { channel_status, .. }
                if *channel_status > 4 =>
            {
                Err(bad("channel_status: 0 created, 1 sent, 2 failed, 3 delivered, 4 read"))
            }
            _ => Ok(emit),
        }
    }
}

/// The default inbound message: a text.
pub(crate) fn default_message() -> Map<String, Value> {
    let mut m = Map::new();
    m.insert("type".into(), "text".into());
    m.insert("text".into(), serde_json::json!({"body": "hello"}));
    m
}

fn is_phone_number(to: &str) -> bool {
    (8..=15).contains(&to.len()) && to.bytes().all(|b| b.is_ascii_digit())
}
