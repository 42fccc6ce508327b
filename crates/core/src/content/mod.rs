//! Message content, per channel.
//!
//! The shapes are those of the WhatsApp Cloud API as the INCS documents use them (DESIGN.md §2.1):
//! they are the gateway's API contract, so these types serialize back to exactly the JSON a caller
//! sent. Each type refuses unknown fields, so a typo is an error and not a silently dropped field.

pub mod rcs;
pub mod viber;
pub mod whatsapp;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// A media object given by a public URL.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Media {
    /// Public HTTP(S) URL of the asset.
    #[schema(example = "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png")]
    pub link: String,
    /// Caption (WhatsApp image, video, document only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub caption: Option<String>,
    /// File name shown to the user (WhatsApp document only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub filename: Option<String>,
}

impl Media {
    pub fn link(link: impl Into<String>) -> Self {
        Self { link: link.into(), caption: None, filename: None }
    }
}

/// `{ "text": "..." }`, the Cloud API's text holder for bodies and footers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextObject {
    pub text: String,
}

/// The kind of content a message carries: the request's `type`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ContentType {
    Text,
    Image,
    Video,
    Audio,
    Document,
    Sticker,
    Location,
    Contacts,
    Template,
    Interactive,
    Otp,
}

impl ContentType {
    pub const ALL: [ContentType; 11] = [
        Self::Text,
        Self::Image,
        Self::Video,
        Self::Audio,
        Self::Document,
        Self::Sticker,
        Self::Location,
        Self::Contacts,
        Self::Template,
        Self::Interactive,
        Self::Otp,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Image => "image",
            Self::Video => "video",
            Self::Audio => "audio",
            Self::Document => "document",
            Self::Sticker => "sticker",
            Self::Location => "location",
            Self::Contacts => "contacts",
            Self::Template => "template",
            Self::Interactive => "interactive",
            Self::Otp => "otp",
        }
    }
}

impl std::fmt::Display for ContentType {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
