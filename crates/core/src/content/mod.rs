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
#[serde(deny_unknown_fields, from = "MediaWire")]
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

/// What a caller may send for a media object: `Media`, plus the Cloud API's uploaded-media `id`,
/// which is recognised only to be refused with the reason. Neither INCS nor InnoPaaS documents a
/// media upload or sends by media id, so an `id` could never reach the person; a caller who knows
/// the Cloud API deserves to learn why rather than read "unknown field".
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct MediaWire {
    #[serde(default, deserialize_with = "refuse_uploaded_media_id")]
    #[allow(dead_code)]
    id: (),
    link: String,
    #[serde(default)]
    caption: Option<String>,
    #[serde(default)]
    filename: Option<String>,
}

impl From<MediaWire> for Media {
    fn from(wire: MediaWire) -> Self {
        Self { link: wire.link, caption: wire.caption, filename: wire.filename }
    }
}

fn refuse_uploaded_media_id<'de, D: serde::Deserializer<'de>>(_: D) -> Result<(), D::Error> {
    Err(serde::de::Error::custom(
        "media by uploaded id is not carried: neither INCS nor InnoPaaS documents a media upload or a send by media id; give a public `link` instead",
    ))
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

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::Media;

    #[test]
    fn media_by_uploaded_id_is_refused_with_the_reason() {
        for refused in [json!({"id": "1037543291543636"}), json!({"link": "https://a.example/x.png", "id": "1"})] {
            let error = serde_json::from_value::<Media>(refused.clone()).unwrap_err().to_string();
            assert!(error.contains("media by uploaded id is not carried"), "{refused}: {error}");
        }
        let missing = serde_json::from_value::<Media>(json!({"caption": "c"})).unwrap_err().to_string();
        assert!(missing.contains("missing field `link`"), "{missing}");
        let unknown = serde_json::from_value::<Media>(json!({"link": "https://a.example/x.png", "size": 3}));
        assert!(unknown.unwrap_err().to_string().contains("unknown field `size`"));
        let media: Media = serde_json::from_value(json!({"link": "https://a.example/x.png", "caption": "c"})).unwrap();
        assert_eq!(serde_json::to_value(&media).unwrap(), json!({"link": "https://a.example/x.png", "caption": "c"}));
    }
}
