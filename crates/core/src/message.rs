//! The outbound message as the domain knows it, after parsing and validation.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use uuid::Uuid;

use crate::content::rcs::RcsContent;
use crate::content::viber::ViberContent;
use crate::content::whatsapp::WhatsAppContent;
use crate::content::ContentType;
use crate::phone::PhoneNumber;
use crate::provider::ProviderKind;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Channel {
    Whatsapp,
    Viber,
    Rcs,
}

impl Channel {
    pub const ALL: [Channel; 3] = [Self::Whatsapp, Self::Viber, Self::Rcs];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Whatsapp => "whatsapp",
            Self::Viber => "viber",
            Self::Rcs => "rcs",
        }
    }

    /// The content types this channel carries at all (a provider may carry fewer).
    pub fn content_types(self) -> &'static [ContentType] {
        use ContentType::*;
        match self {
            Self::Whatsapp => {
                &[Text, Image, Video, Audio, Document, Sticker, Location, Contacts, Template, Interactive]
            }
            Self::Viber => &[Otp, Text, Image, Video, Document],
            Self::Rcs => &[Template, Text, Image, Video, Document],
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Channel {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|c| c.as_str() == s)
            .ok_or_else(|| format!("unknown channel `{s}` (whatsapp, viber, rcs)"))
    }
}

/// How urgent a message is. On one provider account, ready `high` messages go before `normal`
/// ones and `normal` before `bulk`, each class keeping a guaranteed share of the sends (the
/// engine's priority weights) so that no class waits forever.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
// Read from a string only, so that any other JSON type is a field error naming `priority`.
#[serde(rename_all = "snake_case", try_from = "String")]
pub enum Priority {
    /// One-time passwords, alerts: what must not wait behind a campaign.
    High,
    #[default]
    Normal,
    /// Campaigns and newsletters.
    Bulk,
}

impl Priority {
    pub const ALL: [Priority; 3] = [Self::High, Self::Normal, Self::Bulk];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::High => "high",
            Self::Normal => "normal",
            Self::Bulk => "bulk",
        }
    }
}

impl fmt::Display for Priority {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl TryFrom<String> for Priority {
    type Error = String;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse()
    }
}

impl FromStr for Priority {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| format!("unknown priority `{s}` (high, normal, bulk)"))
    }
}

/// The gateway's message id: a UUIDv7, so ids sort by creation time.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct MessageId(Uuid);

impl MessageId {
    pub fn new() -> Self {
        Self(Uuid::now_v7())
    }

    pub fn as_uuid(&self) -> Uuid {
        self.0
    }

    /// The id in 32 hex digits, for providers whose correlation field is that short (InnoPaaS `uid`).
    pub fn simple(&self) -> String {
        self.0.simple().to_string()
    }
}

impl Default for MessageId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for MessageId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

impl FromStr for MessageId {
    type Err = uuid::Error;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Uuid::parse_str(s).map(Self)
    }
}

/// What a message carries, by channel: a channel cannot hold another channel's content.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "channel", content = "content", rename_all = "snake_case")]
pub enum Content {
    Whatsapp(WhatsAppContent),
    Viber(ViberContent),
    Rcs(RcsContent),
}

impl Content {
    pub fn channel(&self) -> Channel {
        match self {
            Self::Whatsapp(_) => Channel::Whatsapp,
            Self::Viber(_) => Channel::Viber,
            Self::Rcs(_) => Channel::Rcs,
        }
    }

    pub fn content_type(&self) -> ContentType {
        match self {
            Self::Whatsapp(c) => match c {
                WhatsAppContent::Text(_) => ContentType::Text,
                WhatsAppContent::Image(_) => ContentType::Image,
                WhatsAppContent::Video(_) => ContentType::Video,
                WhatsAppContent::Audio(_) => ContentType::Audio,
                WhatsAppContent::Document(_) => ContentType::Document,
                WhatsAppContent::Sticker(_) => ContentType::Sticker,
                WhatsAppContent::Location(_) => ContentType::Location,
                WhatsAppContent::Contacts(_) => ContentType::Contacts,
                WhatsAppContent::Template(_) | WhatsAppContent::AuthTemplate(_) => ContentType::Template,
                WhatsAppContent::Interactive(_) => ContentType::Interactive,
            },
            Self::Viber(c) => match c {
                ViberContent::Otp(_) => ContentType::Otp,
                ViberContent::Text(_) => ContentType::Text,
                ViberContent::Image(_) => ContentType::Image,
                ViberContent::Video(_) => ContentType::Video,
                ViberContent::Document(_) => ContentType::Document,
            },
            Self::Rcs(c) => match c {
                RcsContent::Template(_) => ContentType::Template,
                RcsContent::Text(_) => ContentType::Text,
                RcsContent::Image(_) => ContentType::Image,
                RcsContent::Video(_) => ContentType::Video,
                RcsContent::Document(_) => ContentType::Document,
            },
        }
    }

    /// The interactive sub-type (`list`, `carousel`, ...) where there is one: routing and
    /// capability checks need it.
    pub fn interactive_kind(&self) -> Option<&'static str> {
        match self {
            Self::Whatsapp(WhatsAppContent::Interactive(i)) => Some(i.kind()),
            _ => None,
        }
    }

    /// Templates may be sent outside the 24-hour customer-service window; nothing else may.
    pub fn is_template(&self) -> bool {
        self.content_type() == ContentType::Template
    }
}

/// A validated message, ready to be queued and sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OutboundMessage {
    pub to: PhoneNumber,
    /// The configured sender name, if the caller chose one.
    // Absent fields are left out rather than written as `null`: every queued message is stored in
    // this shape, and the bytes count against Redis memory per message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// A provider pinned by the caller.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    pub content: Content,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub metadata: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
}

impl OutboundMessage {
    pub fn channel(&self) -> Channel {
        self.content.channel()
    }
}
