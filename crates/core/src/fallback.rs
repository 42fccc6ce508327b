//! Cross-channel fallback: a send may name further messages, each for another channel or sender,
//! sent one after the other until one reaches the person.
//!
//! Step 0 is the message itself; `fallback[i]` of the request is step `i + 1`. Each step is sent
//! when the step before it ends undelivered (`failed`, `cancelled`, any final status off the
//! delivery path), or when it has not reached the next step's `until` status `after_seconds`
//! after it was submitted.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::content::whatsapp::{Contact, Interactive, Location};
use crate::content::{ContentType, Media};
use crate::message::{Channel, OutboundMessage, Priority};
use crate::provider::ProviderKind;
use crate::request::{TemplateInput, TextInput};
use crate::status::MessageStatus;

pub const MAX_STEPS: usize = 3;
pub const DEFAULT_AFTER_SECONDS: u32 = 60;
pub const MIN_AFTER_SECONDS: u32 = 1;
pub const MAX_AFTER_SECONDS: u32 = 24 * 3600;

/// The status the previous step must reach for this step not to be sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackUntil {
    Submitted,
    #[default]
    Delivered,
    Read,
}

impl FallbackUntil {
    pub fn status(self) -> MessageStatus {
        match self {
            Self::Submitted => MessageStatus::Submitted,
            Self::Delivered => MessageStatus::Delivered,
            Self::Read => MessageStatus::Read,
        }
    }
}

/// One fallback step as callers write it: the content of a send for its own channel (the
/// recipient is the first message's), and when to send it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({"channel": "viber", "type": "text", "text": "Your code is 123456", "after_seconds": 60, "until": "delivered"}))]
pub struct FallbackStepIn {
    pub channel: Channel,
    /// A configured sender of `channel`; default: the channel's default sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    #[serde(rename = "type")]
    pub kind: ContentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<TextInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub image: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub video: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub audio: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub document: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sticker: Option<Media>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<Location>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub contacts: Option<Vec<Contact>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub template: Option<TemplateInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interactive: Option<Interactive>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp: Option<crate::content::viber::Otp>,
    /// This step's metadata; default: the first message's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// This step's priority class; default: the first message's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// This step's validity in seconds (1 to 2,592,000), counted from when the step is sent;
    /// default: the first message's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u32>,
    /// How long after the previous step was submitted to wait for it to reach `until`
    /// (default 60, 1 to 86400).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 86400)]
    pub after_seconds: Option<u32>,
    /// The status the previous step must reach (default `delivered`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<FallbackUntil>,
}

/// A validated fallback step.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Step {
    pub message: OutboundMessage,
    pub after_seconds: u32,
    pub until: FallbackUntil,
    /// Set by the step itself; `None` follows the first message.
    pub priority: Option<Priority>,
    /// Set by the step itself (validated); `None` follows the first message.
    pub ttl_seconds: Option<u32>,
}
