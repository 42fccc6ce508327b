//! What providers tell us, in provider-neutral terms (DESIGN.md §5): delivery status reports,
//! inbound messages and template changes.
//!
//! Adapters parse their callback bodies into [`CallbackEvent`]s; the gateway records them, moves
//! message statuses ([`crate::MessageStatus::on_report`]) and hands them on to internal consumers.
//! The content is typed; the only untyped part is [`InboundMessage::raw`], the provider's own
//! message object, kept so that what the model does not name (a Click-to-WhatsApp `referral`, a
//! `system` notice, a new message type) is not lost.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

pub mod fields;

use crate::message::Channel;
use crate::provider::ProviderKind;
use crate::status::MessageStatus;

/// One thing a provider callback told us. One callback body may hold several (a WhatsApp webhook
/// value can carry more than one inbound message).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum CallbackEvent {
    Status(StatusReport),
    Inbound(Box<InboundMessage>),
    Template(TemplateReport),
    /// A second id a provider uses for a message it already knows under `provider_message_id`
    /// (INCS's internal chat id beside the channel's id), so later reports naming either find it.
    Alias(MessageAlias),
    /// A well-formed event the gateway deliberately does not act on (answered 200, counted).
    Ignored {
        /// The provider's event name.
        event: String,
        reason: String,
    },
}

impl CallbackEvent {
    /// A short, bounded label for logs and metrics: `status`, `inbound`, `template`, `ignored`.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status(_) => "status",
            Self::Inbound(_) => "inbound",
            Self::Template(_) => "template",
            Self::Alias(_) => "alias",
            Self::Ignored { .. } => "ignored",
        }
    }
}

/// A provider's report on a message we sent.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StatusReport {
    pub provider: ProviderKind,
    /// The id the provider gave at submit time (a wamid, or a UUID for Viber and RCS).
    pub provider_message_id: String,
    /// One of [`StatusReport::REPORTABLE`]: providers report nothing else.
    pub status: MessageStatus,
    /// When the status changed at the provider (or, failing that, when it was reported).
    pub at: DateTime<Utc>,
    /// Why it failed; normally present only with `failed`.
    pub error: Option<ReportedError>,
    /// Our own message id, when the provider echoes it (InnoPaaS `uid`).
    pub correlation_id: Option<String>,
    /// The user the message went to, when the provider says.
    pub recipient: Option<String>,
    /// The business number that sent the message, when the provider says.
    pub business_phone: Option<String>,
    /// The WhatsApp conversation the message opened or fell into, when the provider says.
    pub conversation: Option<Conversation>,
    /// The WhatsApp message id, when the provider's own id is another (InnoPaaS): replies name it.
    #[serde(default)]
    pub wamid: Option<String>,
}

impl StatusReport {
    /// A report that says only which message, what status and when; the rest is added by the
    /// adapters that know more.
    pub fn new(provider: ProviderKind, provider_message_id: String, status: MessageStatus, at: DateTime<Utc>) -> Self {
        Self {
            provider,
            provider_message_id,
            status,
            at,
            error: None,
            correlation_id: None,
            recipient: None,
            business_phone: None,
            conversation: None,
            wamid: None,
        }
    }
}

/// Another id of a message a provider already reported under `provider_message_id`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MessageAlias {
    pub provider: ProviderKind,
    /// The id the send returned (or the provider's channel id for it).
    pub provider_message_id: String,
    /// The other id, namespaced by the adapter so it cannot collide with a real message id.
    pub alias: String,
}

impl StatusReport {
    /// The statuses a provider can report; the rest of [`MessageStatus`] is the gateway's own.
    pub const REPORTABLE: [MessageStatus; 4] =
        [MessageStatus::Sent, MessageStatus::Delivered, MessageStatus::Read, MessageStatus::Failed];
}

/// A provider's failure reason.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ReportedError {
    /// The provider's code as text (a Meta code such as `131049` for WhatsApp).
    pub code: Option<String>,
    pub title: String,
}

/// A WhatsApp conversation (pricing window) as a provider reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    /// `business_initiated`, `customer_initiated`, `referral_conversion`, ... as reported.
    pub kind: String,
    pub expires_at: Option<DateTime<Utc>>,
}

/// A message a user sent to one of our senders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InboundMessage {
    pub provider: ProviderKind,
    pub channel: Channel,
    /// Our side of the conversation: the business phone number (digits), or for RCS, when the
    /// provider gives no number, the RBM agent id.
    pub business_phone: String,
    /// The user: WhatsApp id or phone number, digits only.
    pub from: String,
    pub provider_message_id: String,
    /// When the user sent it (as the channel's servers received it).
    pub at: DateTime<Utc>,
    /// The user's profile name, when the channel shares it.
    pub profile_name: Option<String>,
    pub content: InboundContent,
    /// The message this one replies to, reacts to or answers (a button, a list, a suggestion).
    pub context: Option<InboundContext>,
    /// The provider's own message object, as received.
    pub raw: serde_json::Value,
}

/// The earlier message an inbound message refers to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundContext {
    /// The provider's id of the referred message: when it is one we sent, the id the provider
    /// returned at submit time.
    pub provider_message_id: String,
    /// Who sent the referred message (our business number for a reply to us), when known.
    pub from: Option<String>,
}

/// What an inbound message carries.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum InboundContent {
    Text {
        body: String,
    },
    Image(InboundMedia),
    Video(InboundMedia),
    /// Voice notes included (`voice: true`).
    Audio(InboundMedia),
    Document(InboundMedia),
    Sticker(InboundMedia),
    Location {
        latitude: f64,
        longitude: f64,
        name: Option<String>,
        address: Option<String>,
    },
    Contacts {
        contacts: Vec<SharedContact>,
    },
    /// A tap on a template's quick-reply button.
    Button {
        payload: Option<String>,
        text: String,
    },
    /// A choice in an interactive list or reply-button message.
    Interactive {
        kind: InteractiveReply,
        id: String,
        title: String,
        description: Option<String>,
    },
    Order {
        catalog_id: String,
        items: Vec<OrderItem>,
        text: Option<String>,
    },
    /// A reaction to an earlier message; `emoji` is `None` when a reaction was removed.
    Reaction {
        message_id: String,
        emoji: Option<String>,
    },
    /// An RCS suggested reply or suggested action the user tapped.
    Suggestion {
        kind: SuggestionKind,
        postback_data: String,
        text: Option<String>,
    },
    /// An RCS file (image, video, document, ...) the user sent.
    File(InboundFile),
    /// A message the channel itself could not deliver in a supported form.
    Unsupported {
        errors: Vec<InboundError>,
    },
    /// A message type this model does not know; [`InboundMessage::raw`] holds it.
    Unknown {
        kind: String,
    },
}

impl InboundContent {
    /// The `type` name, as serialized.
    pub fn type_name(&self) -> &'static str {
        match self {
            Self::Text { .. } => "text",
            Self::Image(_) => "image",
            Self::Video(_) => "video",
            Self::Audio(_) => "audio",
            Self::Document(_) => "document",
            Self::Sticker(_) => "sticker",
            Self::Location { .. } => "location",
            Self::Contacts { .. } => "contacts",
            Self::Button { .. } => "button",
            Self::Interactive { .. } => "interactive",
            Self::Order { .. } => "order",
            Self::Reaction { .. } => "reaction",
            Self::Suggestion { .. } => "suggestion",
            Self::File(_) => "file",
            Self::Unsupported { .. } => "unsupported",
            Self::Unknown { .. } => "unknown",
        }
    }
}

/// A WhatsApp media object. `id` is the Meta media id; `link` a URL the provider hosts the
/// file at (INCS: static.incsapp.com).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundMedia {
    pub link: Option<String>,
    pub mime_type: Option<String>,
    pub caption: Option<String>,
    pub filename: Option<String>,
    pub sha256: Option<String>,
    pub id: Option<String>,
    /// Audio: a voice note recorded in the app.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub voice: Option<bool>,
    /// Sticker: animated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub animated: Option<bool>,
}

/// A contact card the user shared.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SharedContact {
    pub name: ContactName,
    pub phones: Vec<ContactPhone>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactName {
    pub formatted_name: Option<String>,
    pub first_name: Option<String>,
    pub last_name: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContactPhone {
    pub phone: Option<String>,
    /// The WhatsApp id, when the number is on WhatsApp.
    pub wa_id: Option<String>,
    /// `CELL`, `HOME`, `WORK`, ... as sent.
    #[serde(rename = "type")]
    pub kind: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum InteractiveReply {
    ListReply,
    ButtonReply,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct OrderItem {
    pub product_retailer_id: String,
    pub quantity: u64,
    pub item_price: Option<f64>,
    pub currency: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SuggestionKind {
    /// A suggested reply: the user sent its text.
    Reply,
    /// A suggested action (open a URL, dial, share location, ...).
    Action,
}

/// An RCS file: `file_uri` is where the channel hosts it (a short-lived URL).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundFile {
    pub file_uri: String,
    pub mime_type: Option<String>,
    pub file_name: Option<String>,
    pub file_size_bytes: Option<u64>,
    pub thumbnail: Option<FileThumbnail>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileThumbnail {
    pub file_uri: String,
    pub mime_type: Option<String>,
    pub file_size_bytes: Option<u64>,
}

/// Why the channel could not pass a message on (WhatsApp `errors[]`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct InboundError {
    pub code: Option<String>,
    pub title: String,
    pub details: Option<String>,
}

/// A change to one of our message templates.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TemplateReport {
    pub provider: ProviderKind,
    pub template_id: String,
    /// Empty when the provider did not name the template.
    pub template_name: String,
    pub language: Option<String>,
    pub change: TemplateChange,
    /// The new status (`APPROVED`, `REJECTED`, `PAUSED`, ...), category (`MARKETING`, ...) or
    /// quality rating (`GREEN`, `YELLOW`, `RED`), as the provider spells it.
    pub new_value: String,
    pub reason: Option<String>,
    pub at: DateTime<Utc>,
    /// The business number the template belongs to, when the provider says (digits).
    #[serde(default)]
    pub business_phone: Option<String>,
    /// The provider's id of the business account or channel, when it says (INCS `channel_id`,
    /// InnoPaaS `wabaId`).
    #[serde(default)]
    pub business_account: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TemplateChange {
    Status,
    Category,
    Quality,
}

/// Why a callback body could not be turned into events. Its text names the field at fault and
/// is bounded in length, so it can go back to the provider in a 4xx body.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallbackError {
    /// Not JSON, not an object, a required field missing or of the wrong type: answer 400.
    #[error("malformed callback: {0}")]
    Malformed(String),
    /// A well-formed body of an event (or event shape) this adapter does not know: answer 422
    /// and count it. Holds the event name, cut short.
    #[error("unknown callback event `{0}`")]
    UnknownEvent(String),
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn at() -> DateTime<Utc> {
        DateTime::from_timestamp(1_754_466_101, 0).unwrap()
    }

    fn inbound(content: InboundContent) -> CallbackEvent {
        CallbackEvent::Inbound(Box::new(InboundMessage {
            provider: ProviderKind::Incs,
            channel: Channel::Whatsapp,
            business_phone: "6281519236680".into(),
            from: "85268415026".into(),
            provider_message_id: "wamid.X".into(),
            at: at(),
            profile_name: Some("Lessie".into()),
            content,
            context: Some(InboundContext { provider_message_id: "wamid.Y".into(), from: None }),
            raw: json!({"id": "wamid.X"}),
        }))
    }

    fn samples() -> Vec<CallbackEvent> {
        let media = InboundMedia { link: Some("https://x/y.jpg".into()), ..InboundMedia::default() };
        vec![
            CallbackEvent::Status(StatusReport {
                provider: ProviderKind::Innopaas,
                provider_message_id: "wamid.X".into(),
                status: MessageStatus::Failed,
                at: at(),
                error: Some(ReportedError { code: Some("131049".into()), title: "no".into() }),
                correlation_id: Some("0190".into()),
                recipient: Some("85268415026".into()),
                business_phone: None,
                conversation: Some(Conversation { kind: "business_initiated".into(), expires_at: Some(at()) }),
                wamid: Some("wamid.Y".into()),
            }),
            CallbackEvent::Template(TemplateReport {
                provider: ProviderKind::Incs,
                template_id: "1".into(),
                template_name: "t".into(),
                language: None,
                change: TemplateChange::Quality,
                new_value: "YELLOW".into(),
                reason: None,
                at: at(),
                business_phone: Some("6281519236680".into()),
                business_account: Some("30058".into()),
            }),
            CallbackEvent::Alias(MessageAlias {
                provider: ProviderKind::Incs,
                provider_message_id: "b0b7".into(),
                alias: "chat:260400000076".into(),
            }),
            CallbackEvent::Ignored { event: "message_created".into(), reason: "internal".into() },
            inbound(InboundContent::Text { body: "hi".into() }),
            inbound(InboundContent::Image(media.clone())),
            inbound(InboundContent::Sticker(InboundMedia { animated: Some(false), ..media })),
            inbound(InboundContent::Location { latitude: 22.5, longitude: 113.8, name: None, address: None }),
            inbound(InboundContent::Contacts {
                contacts: vec![SharedContact {
                    name: ContactName { formatted_name: Some("L".into()), ..ContactName::default() },
                    phones: vec![ContactPhone { phone: Some("+1".into()), wa_id: None, kind: Some("CELL".into()) }],
                }],
            }),
            inbound(InboundContent::Button { payload: None, text: "b".into() }),
            inbound(InboundContent::Interactive {
                kind: InteractiveReply::ListReply,
                id: "r".into(),
                title: "R".into(),
                description: None,
            }),
            inbound(InboundContent::Order {
                catalog_id: "c".into(),
                items: vec![OrderItem {
                    product_retailer_id: "p".into(),
                    quantity: 2,
                    item_price: Some(30.5),
                    currency: Some("USD".into()),
                }],
                text: None,
            }),
            inbound(InboundContent::Reaction { message_id: "wamid.Y".into(), emoji: None }),
            inbound(InboundContent::Suggestion { kind: SuggestionKind::Action, postback_data: "p".into(), text: None }),
            inbound(InboundContent::File(InboundFile { file_uri: "https://f".into(), ..InboundFile::default() })),
            inbound(InboundContent::Unsupported {
                errors: vec![InboundError { code: Some("131051".into()), title: "t".into(), details: None }],
            }),
            inbound(InboundContent::Unknown { kind: "system".into() }),
        ]
    }

    #[test]
    fn every_event_round_trips_through_json() {
        for event in samples() {
            let text = serde_json::to_string(&event).unwrap();
            let back: CallbackEvent = serde_json::from_str(&text).unwrap();
            assert_eq!(back, event, "{text}");
        }
    }

    #[test]
    fn json_shape_is_tagged_by_kind_and_type() {
        let v = serde_json::to_value(inbound(InboundContent::Interactive {
            kind: InteractiveReply::ButtonReply,
            id: "change-button".into(),
            title: "Change".into(),
            description: None,
        }))
        .unwrap();
        assert_eq!(v["kind"], "inbound");
        assert_eq!(v["channel"], "whatsapp");
        assert_eq!(v["provider"], "incs");
        assert_eq!(v["at"], "2025-08-06T07:41:41Z");
        assert_eq!(v["content"]["type"], "interactive");
        assert_eq!(v["content"]["kind"], "button_reply");
        assert_eq!(v["context"]["provider_message_id"], "wamid.Y");
        let status = serde_json::to_value(&samples()[0]).unwrap();
        assert_eq!(status["kind"], "status");
        assert_eq!(status["status"], "failed");
        assert_eq!(status["error"]["code"], "131049");
    }

    #[test]
    fn type_names_match_the_serialized_tag() {
        for event in samples() {
            if let CallbackEvent::Inbound(m) = &event {
                let v = serde_json::to_value(&m.content).unwrap();
                assert_eq!(v["type"], m.content.type_name());
            }
        }
    }

    #[test]
    fn kinds_match_the_serialized_tag() {
        for event in samples() {
            assert_eq!(serde_json::to_value(&event).unwrap()["kind"], event.kind());
        }
    }

    #[test]
    fn reportable_statuses_are_the_provider_ones() {
        for s in StatusReport::REPORTABLE {
            assert!(s.is_with_provider() || s == MessageStatus::Failed, "{s}");
        }
    }
}
