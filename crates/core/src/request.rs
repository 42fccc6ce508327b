//! The send request as callers write it (DESIGN.md §2.1), and its conversion into an
//! [`OutboundMessage`]: the one place where the API shape meets the domain.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::content::rcs::{RcsContent, RcsTemplate};
use crate::content::viber::{Otp, ViberContent};
use crate::content::whatsapp::{
    AuthTemplate, Contact, Interactive, Location, Template, TemplateCategory, TemplateComponent, Text, WhatsAppContent,
};
use crate::content::{ContentType, Media};
use crate::fallback::{self, FallbackStepIn, Step};
use crate::message::{Channel, Content, OutboundMessage, Priority};
use crate::phone::PhoneNumber;
use crate::provider::ProviderKind;
use crate::validate::{self, FieldErrors, Path};

/// How far ahead `send_at` may be.
pub const MAX_SCHEDULE_AHEAD_DAYS: i64 = 30;
/// The longest validity a message may have (`ttl_seconds`): 30 days.
pub const MAX_TTL_SECONDS: u32 = 30 * 24 * 3600;
pub const MAX_METADATA_PAIRS: usize = 16;
pub const MAX_METADATA_KEY_CHARS: usize = 64;
pub const MAX_METADATA_VALUE_CHARS: usize = 512;

/// A message to send. `type` names the content object that must be present; all others must be
/// absent. Unknown fields are refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "channel": "whatsapp",
    "to": "85268411234",
    "type": "template",
    "template": {
        "name": "test_header_text_2",
        "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "2025-10-01"}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "the end of 2025"},
                {"type": "text", "text": "25OFF"},
                {"type": "text", "text": "25%"}
            ]}
        ]
    },
    "metadata": {"order_id": "A-1001"}
}))]
pub struct SendRequest {
    pub channel: Channel,
    /// Country code and number, digits only (a leading `+` is dropped), 8 to 15 digits.
    #[schema(example = "85268411234")]
    pub to: String,
    /// A configured sender name; default: the channel's default sender.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sender: Option<String>,
    /// Pin a provider; otherwise the routing rules decide.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider: Option<ProviderKind>,
    #[serde(rename = "type")]
    pub kind: ContentType,
    /// A string, or `{ "body": string, "preview_url": bool }`.
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
    pub otp: Option<Otp>,
    /// Up to 16 string pairs, echoed in every event about this message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metadata: Option<BTreeMap<String, String>>,
    /// Send at this time (RFC 3339), at most 30 days ahead. A time in the past sends now.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub send_at: Option<DateTime<Utc>>,
    /// Up to 3 further messages for other channels or senders, to the same recipient, sent one
    /// after the other while the one before has not reached the person: each is sent when the one
    /// before ends `failed`, `cancelled` or `expired`, or has not reached its `until` status `after_seconds`
    /// after it was submitted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(max_items = 3)]
    pub fallback: Option<Vec<FallbackStepIn>>,
    /// `high` goes before `normal`, `normal` before `bulk`, on the same provider account. Default:
    /// the sender's `default_priority`, else `normal`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub priority: Option<Priority>,
    /// Validity in seconds (1 to 2,592,000 = 30 days), counted from acceptance or from `send_at`.
    /// A message not handed to a provider by then is never sent and ends `expired`. Default: the
    /// sender's `default_ttl_seconds`, else none.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u32>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TextInput {
    Plain(String),
    Object(TextBody),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TextBody {
    pub body: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview_url: Option<bool>,
}

/// A template send. WhatsApp: `{name, language?, components?}` or the authentication form
/// `{name, code}`. RCS: `{name, parameters?: {var: value}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TemplateInput {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub language: Option<TemplateLanguage>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub components: Option<Vec<TemplateComponent>>,
    /// WhatsApp authentication templates: the one-time code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// RCS templates: a value per `[var]` placeholder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
    /// WhatsApp templates: the template's category, when known (`marketing`, `utility`,
    /// `authentication`). Marketing templates may take a provider's marketing route.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<TemplateCategory>,
}

/// `template.language`: a code (`"en_US"`), or the Cloud API's object
/// `{"code": "en_US", "policy": "deterministic"}` (`policy` optional; Meta knows no other).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum TemplateLanguage {
    #[schema(example = "en_US")]
    Code(String),
    Object(LanguageObject),
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LanguageObject {
    #[schema(example = "en_US")]
    pub code: String,
    /// `deterministic`, the only policy the Cloud API has.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(example = "deterministic")]
    pub policy: Option<String>,
}

/// Meta's one language policy.
pub const LANGUAGE_POLICY: &str = "deterministic";

impl TemplateLanguage {
    /// The language code, and the problem with the object's `policy` if any.
    fn code(&self, field: &Path, errors: &mut FieldErrors) -> String {
        match self {
            Self::Code(code) => code.clone(),
            Self::Object(LanguageObject { code, policy }) => {
                if policy.as_deref().is_some_and(|p| p != LANGUAGE_POLICY) {
                    errors.push(field.key("policy"), format!("`{LANGUAGE_POLICY}`, the only policy WhatsApp has"));
                }
                code.clone()
            }
        }
    }
}

/// The members of a send request that hold arrays; no other member may be one.
const ARRAY_MEMBERS: [&str; 13] = [
    "contacts",
    "components",
    "parameters",
    "phones",
    "emails",
    "urls",
    "addresses",
    "sections",
    "rows",
    "buttons",
    "cards",
    "product_items",
    "fallback",
];

/// What serde lets through and the API does not: a tag given as a variant index (`"type": 0`,
/// which serde reads as the first variant) and an object given as an array of its fields
/// (`"org": [null, null]`, which serde reads as a struct). The API takes names and objects only.
///
/// # Errors
/// [`FieldErrors`] naming each such member.
pub fn tags_and_objects_as_written(value: &serde_json::Value) -> Result<(), FieldErrors> {
    fn walk(v: &serde_json::Value, path: &Path, errors: &mut FieldErrors) {
        match v {
            serde_json::Value::Object(m) => {
                for (k, v) in m {
                    if k == "type" && !v.is_string() {
                        errors.push(path.key(k), "must be a string");
                    }
                    if v.is_array() && !ARRAY_MEMBERS.contains(&k.as_str()) {
                        errors.push(path.key(k), "must not be an array");
                    }
                    walk(v, &path.key(k), errors);
                }
            }
            serde_json::Value::Array(a) => {
                // Every list of the request holds objects.
                for (i, v) in a.iter().enumerate() {
                    if v.is_array() {
                        errors.push(path.index(i), "must not be an array");
                    }
                    walk(v, &path.index(i), errors);
                }
            }
            _ => {}
        }
    }
    let mut errors = FieldErrors::default();
    walk(value, &Path::root(), &mut errors);
    if errors.is_empty() {
        Ok(())
    } else {
        Err(errors)
    }
}

impl SendRequest {
    /// Parses and validates the request and its fallback steps, each step like a message of its
    /// channel to the same recipient; a step's errors are named under `fallback[i]`.
    ///
    /// # Errors
    /// [`FieldErrors`] with one entry per problem, each with a JSON path.
    pub fn into_chain(mut self, now: DateTime<Utc>) -> Result<(OutboundMessage, Vec<Step>), FieldErrors> {
        let inputs = self.fallback.take();
        let to = self.to.clone();
        let parent_metadata = self.metadata.clone();
        let first = self.into_message(now);
        let mut errors = FieldErrors::default();
        let mut steps = Vec::new();
        let list = Path::root().key("fallback");
        let inputs = inputs.unwrap_or_default();
        if inputs.len() > fallback::MAX_STEPS {
            errors.push(list.clone(), format!("at most {} steps, got {}", fallback::MAX_STEPS, inputs.len()));
        }
        for (i, step) in inputs.into_iter().enumerate() {
            let path = list.index(i);
            let after_seconds = step.after_seconds.unwrap_or(fallback::DEFAULT_AFTER_SECONDS);
            if !(fallback::MIN_AFTER_SECONDS..=fallback::MAX_AFTER_SECONDS).contains(&after_seconds) {
                errors.push(
                    path.key("after_seconds"),
                    format!(
                        "must be {} to {} seconds, got {after_seconds}",
                        fallback::MIN_AFTER_SECONDS,
                        fallback::MAX_AFTER_SECONDS
                    ),
                );
            }
            let until = step.until.unwrap_or_default();
            let inherits_metadata = step.metadata.is_none();
            let (priority, ttl_seconds) = (step.priority, step.ttl_seconds);
            let request = SendRequest {
                channel: step.channel,
                to: to.clone(),
                sender: step.sender,
                provider: step.provider,
                kind: step.kind,
                text: step.text,
                image: step.image,
                video: step.video,
                audio: step.audio,
                document: step.document,
                sticker: step.sticker,
                location: step.location,
                contacts: step.contacts,
                template: step.template,
                interactive: step.interactive,
                otp: step.otp,
                metadata: step.metadata,
                send_at: None,
                fallback: None,
                priority,
                ttl_seconds,
            };
            match request.into_message(now) {
                Ok(mut message) => {
                    if inherits_metadata {
                        message.metadata = parent_metadata.clone().unwrap_or_default();
                    }
                    steps.push(Step { message, after_seconds, until, priority, ttl_seconds });
                }
                // The recipient is the first message's: its errors are reported there once.
                Err(e) => errors.extend(e.without("to").under(&path)),
            }
        }
        match first {
            Ok(message) if errors.is_empty() => Ok((message, steps)),
            Ok(_) => Err(errors),
            Err(mut e) => {
                e.extend(errors);
                Err(e)
            }
        }
    }

    /// Parses and validates the request into a message, or names every field at fault. The
    /// fallback steps are left out: [`Self::into_chain`] reads them.
    ///
    /// # Errors
    /// [`FieldErrors`] with one entry per problem, each with a JSON path.
    pub fn into_message(self, now: DateTime<Utc>) -> Result<OutboundMessage, FieldErrors> {
        let mut errors = FieldErrors::default();
        let root = Path::root();

        let to = match PhoneNumber::parse(&self.to) {
            Ok(p) => Some(p),
            Err(e) => {
                errors.push(root.key("to"), e.to_string());
                None
            }
        };
        if let Some(sender) = &self.sender {
            if sender.trim().is_empty() {
                errors.push(root.key("sender"), "must not be empty");
            }
        }
        let metadata = self.metadata.clone().unwrap_or_default();
        validate::metadata(&metadata, &root.key("metadata"), &mut errors);
        if let Some(at) = self.send_at {
            if at > now + Duration::days(MAX_SCHEDULE_AHEAD_DAYS) {
                errors.push(root.key("send_at"), format!("must be at most {MAX_SCHEDULE_AHEAD_DAYS} days ahead"));
            }
        }

        if let Some(ttl) = self.ttl_seconds {
            if !(1..=MAX_TTL_SECONDS).contains(&ttl) {
                errors.push(root.key("ttl_seconds"), format!("1 to {MAX_TTL_SECONDS} seconds (30 days), got {ttl}"));
            }
        }

        let channel = self.channel;
        let kind = self.kind;
        let content = if !channel.content_types().contains(&kind) {
            errors.push(
                root.key("type"),
                format!(
                    "{channel} does not carry `{kind}` (it carries: {})",
                    channel.content_types().iter().map(|t| t.as_str()).collect::<Vec<_>>().join(", ")
                ),
            );
            None
        } else {
            self.check_only_named_object(&mut errors);
            self.content(&mut errors)
        };

        if let Some(content) = &content {
            validate::content(content, &root, &mut errors);
            // The content holds the body alone; the caller wrote `{"body": …}`, so that is the path.
            if matches!(self.text, Some(TextInput::Object(_))) {
                errors.rename("text", "text.body");
            }
        }
        match (to, content) {
            (Some(to), Some(content)) if errors.is_empty() => Ok(OutboundMessage {
                to,
                sender: self.sender,
                provider: self.provider,
                content,
                metadata,
                send_at: self.send_at,
            }),
            _ => Err(errors),
        }
    }

    fn present_objects(&self) -> [(ContentType, bool); 11] {
        [
            (ContentType::Text, self.text.is_some()),
            (ContentType::Image, self.image.is_some()),
            (ContentType::Video, self.video.is_some()),
            (ContentType::Audio, self.audio.is_some()),
            (ContentType::Document, self.document.is_some()),
            (ContentType::Sticker, self.sticker.is_some()),
            (ContentType::Location, self.location.is_some()),
            (ContentType::Contacts, self.contacts.is_some()),
            (ContentType::Template, self.template.is_some()),
            (ContentType::Interactive, self.interactive.is_some()),
            (ContentType::Otp, self.otp.is_some()),
        ]
    }

    fn check_only_named_object(&self, errors: &mut FieldErrors) {
        for (t, present) in self.present_objects() {
            if present && t != self.kind {
                errors.push(Path::root().key(t.as_str()), format!("not allowed when `type` is `{}`", self.kind));
            }
        }
    }

    /// The content object named by `type`, in the channel's domain shape.
    fn content(&self, errors: &mut FieldErrors) -> Option<Content> {
        let field = Path::root().key(self.kind.as_str());
        let missing = |errors: &mut FieldErrors| {
            errors.push(field.clone(), format!("required when `type` is `{}`", self.kind));
            None
        };
        let media = |m: &Option<Media>| m.clone();
        match self.channel {
            Channel::Whatsapp => {
                let c = match self.kind {
                    ContentType::Text => self.text.clone().map(|t| WhatsAppContent::Text(whatsapp_text(t))),
                    ContentType::Image => media(&self.image).map(WhatsAppContent::Image),
                    ContentType::Video => media(&self.video).map(WhatsAppContent::Video),
                    ContentType::Audio => media(&self.audio).map(WhatsAppContent::Audio),
                    ContentType::Document => media(&self.document).map(WhatsAppContent::Document),
                    ContentType::Sticker => media(&self.sticker).map(WhatsAppContent::Sticker),
                    ContentType::Location => self.location.clone().map(WhatsAppContent::Location),
                    ContentType::Contacts => self.contacts.clone().map(WhatsAppContent::Contacts),
                    ContentType::Interactive => self.interactive.clone().map(WhatsAppContent::Interactive),
                    ContentType::Template => match &self.template {
                        None => None,
                        Some(t) => return whatsapp_template(t, &field, errors).map(Content::Whatsapp),
                    },
                    ContentType::Otp => None,
                };
                c.map(Content::Whatsapp).or_else(|| missing(errors))
            }
            Channel::Viber => {
                let c = match self.kind {
                    ContentType::Otp => self.otp.clone().map(ViberContent::Otp),
                    ContentType::Text => match &self.text {
                        Some(t) => return plain_text(t, &field, errors).map(|s| Content::Viber(ViberContent::Text(s))),
                        None => None,
                    },
                    ContentType::Image => media(&self.image).map(ViberContent::Image),
                    ContentType::Video => media(&self.video).map(ViberContent::Video),
                    ContentType::Document => media(&self.document).map(ViberContent::Document),
                    _ => None,
                };
                c.map(Content::Viber).or_else(|| missing(errors))
            }
            Channel::Rcs => {
                let c = match self.kind {
                    ContentType::Template => match &self.template {
                        None => None,
                        Some(t) => {
                            return rcs_template(t, &field, errors).map(|t| Content::Rcs(RcsContent::Template(t)))
                        }
                    },
                    ContentType::Text => match &self.text {
                        Some(t) => return plain_text(t, &field, errors).map(|s| Content::Rcs(RcsContent::Text(s))),
                        None => None,
                    },
                    ContentType::Image => media(&self.image).map(RcsContent::Image),
                    ContentType::Video => media(&self.video).map(RcsContent::Video),
                    ContentType::Document => media(&self.document).map(RcsContent::Document),
                    _ => None,
                };
                c.map(Content::Rcs).or_else(|| missing(errors))
            }
        }
    }
}

fn whatsapp_text(t: TextInput) -> Text {
    match t {
        TextInput::Plain(body) => Text { body, preview_url: None },
        TextInput::Object(TextBody { body, preview_url }) => Text { body, preview_url },
    }
}

/// Viber and RCS take plain text only; `preview_url` means nothing there.
fn plain_text(t: &TextInput, field: &Path, errors: &mut FieldErrors) -> Option<String> {
    match t {
        TextInput::Plain(s) => Some(s.clone()),
        TextInput::Object(TextBody { body, preview_url: None }) => Some(body.clone()),
        TextInput::Object(TextBody { preview_url: Some(_), .. }) => {
            errors.push(field.key("preview_url"), "only WhatsApp supports link previews");
            None
        }
    }
}

fn whatsapp_template(t: &TemplateInput, field: &Path, errors: &mut FieldErrors) -> Option<WhatsAppContent> {
    let language = t.language.as_ref().map(|l| l.code(&field.key("language"), errors));
    if t.parameters.is_some() {
        errors.push(field.key("parameters"), "RCS templates only; WhatsApp templates take `components`");
    }
    match (&t.code, &t.components) {
        (Some(_), Some(_)) => {
            errors.push(field.key("code"), "an authentication template takes `code` and no `components`");
            None
        }
        (Some(code), None) => {
            Some(WhatsAppContent::AuthTemplate(AuthTemplate { name: t.name.clone(), code: code.clone(), language }))
        }
        (None, components) => Some(WhatsAppContent::Template(Template {
            name: t.name.clone(),
            language,
            components: components.clone().unwrap_or_default(),
            category: t.category,
        })),
    }
}

fn rcs_template(t: &TemplateInput, field: &Path, errors: &mut FieldErrors) -> Option<RcsTemplate> {
    let before = errors.len();
    for (name, set) in [
        ("language", t.language.is_some()),
        ("components", t.components.is_some()),
        ("code", t.code.is_some()),
        ("category", t.category.is_some()),
    ] {
        if set {
            errors.push(field.key(name), "not used by RCS templates, which take `name` and `parameters`");
        }
    }
    (errors.len() == before).then(|| RcsTemplate { name: t.name.clone(), parameters: t.parameters.clone() })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn parse(v: serde_json::Value) -> Result<SendRequest, String> {
        serde_path_to_error::deserialize(v).map_err(|e| format!("{}: {}", e.path(), e.inner()))
    }

    #[test]
    fn tags_are_names_and_objects_are_objects() {
        let v = json!({"channel": "whatsapp", "to": "85268411234", "type": "interactive", "interactive": {
            "type": "button", "body": {"text": "?"},
            "action": {"buttons": [{"type": 0, "reply": {"id": "a", "title": "A"}}]}}});
        let errors = tags_and_objects_as_written(&v).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "interactive.action.buttons[0].type");
        let mut ok = v.clone();
        ok["interactive"]["action"]["buttons"][0]["type"] = json!("reply");
        assert!(tags_and_objects_as_written(&ok).is_ok());
        let org = json!({"channel": "whatsapp", "to": "85268411234", "type": "contacts", "contacts": [
            {"name": {"formatted_name": "A"}, "org": [null, null], "phones": []}]});
        let errors = tags_and_objects_as_written(&org).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "contacts[0].org");
        let nested = json!({"contacts": [{"addresses": [[null, null]]}]});
        let errors = tags_and_objects_as_written(&nested).unwrap_err();
        assert_eq!(errors.as_slice()[0].field, "contacts[0].addresses[0]");
    }

    #[test]
    fn unknown_fields_are_refused_at_every_level() {
        let top = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi","colour":"red"}));
        assert!(top.as_ref().is_err_and(|e| e.contains("colour")), "{top:?}");
        let nested = parse(json!({"channel":"whatsapp","to":"85268411234","type":"interactive","interactive":{
            "type":"button","body":{"text":"b"},"action":{"buttons":[{"type":"reply","reply":{"id":"a","title":"A","x":1}}]}}}));
        assert!(nested.as_ref().is_err_and(|e| e.contains('x')), "{nested:?}");
        let tagged = parse(json!({"channel":"whatsapp","to":"85268411234","type":"interactive","interactive":{
            "type":"button","body":{"text":"b"},"bogus":1,"action":{"buttons":[]}}}));
        assert!(tagged.as_ref().is_err_and(|e| e.contains("bogus")), "{tagged:?}");
    }

    #[test]
    fn ttl_seconds_must_be_1_s_to_30_days() {
        for (ttl, ok) in [(0, false), (1, true), (MAX_TTL_SECONDS, true), (MAX_TTL_SECONDS + 1, false)] {
            let req =
                parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi","ttl_seconds":ttl}));
            let result = req.map(|r| r.into_message(Utc::now()));
            match (ok, result) {
                (true, Ok(Ok(_))) => {}
                (false, Ok(Err(e))) => assert_eq!(e.as_slice()[0].field, "ttl_seconds", "{ttl}"),
                (_, other) => unreachable!("ttl {ttl}: {other:?}"),
            }
        }
    }

    #[test]
    fn an_unknown_priority_is_refused_naming_the_field() {
        let req = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi","priority":"urgent"}));
        assert!(req.as_ref().is_err_and(|e| e.starts_with("priority")), "{req:?}");
        let req = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi","priority":"bulk"}));
        assert_eq!(req.ok().and_then(|r| r.priority), Some(Priority::Bulk));
    }

    #[test]
    fn a_valid_text_becomes_a_message() {
        let req = parse(json!({"channel":"whatsapp","to":"+85268411234","type":"text","text":{"body":"Hello"}}));
        let msg = req.map(|r| r.into_message(Utc::now()));
        let Ok(Ok(msg)) = msg else {
            unreachable!("a valid text was refused: {msg:?}");
        };
        assert_eq!(msg.to.as_str(), "85268411234");
        assert_eq!(
            msg.content,
            Content::Whatsapp(WhatsAppContent::Text(Text { body: "Hello".into(), preview_url: None }))
        );
    }

    fn chain_errors(v: serde_json::Value) -> Vec<String> {
        match parse(v).map(|r| r.into_chain(Utc::now())) {
            Ok(Err(e)) => e.into_vec().into_iter().map(|e| e.field).collect(),
            other => unreachable!("expected field errors, got {other:?}"),
        }
    }

    #[test]
    fn fallback_steps_are_messages_of_their_channel_with_defaults_and_inherited_metadata() {
        let req = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "metadata":{"order":"A-1"},
            "fallback":[
                {"channel":"viber","type":"text","text":"hi on viber"},
                {"channel":"rcs","type":"text","text":"hi on rcs","after_seconds":5,"until":"read","metadata":{"k":"v"}}]}));
        let Ok(Ok((first, steps))) = req.map(|r| r.into_chain(Utc::now())) else { unreachable!("refused") };
        assert_eq!(first.channel(), Channel::Whatsapp);
        assert_eq!(steps.len(), 2);
        assert_eq!(steps[0].message.channel(), Channel::Viber);
        assert_eq!(steps[0].message.to, first.to);
        assert_eq!((steps[0].after_seconds, steps[0].until), (60, fallback::FallbackUntil::Delivered));
        assert_eq!(steps[0].message.metadata.get("order").map(String::as_str), Some("A-1"));
        assert_eq!((steps[1].after_seconds, steps[1].until), (5, fallback::FallbackUntil::Read));
        assert_eq!(steps[1].message.metadata.get("k").map(String::as_str), Some("v"));
        assert!(!steps[1].message.metadata.contains_key("order"));
    }

    #[test]
    fn a_step_may_set_its_own_priority_and_validity_named_under_its_index() {
        let req = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "priority":"high","ttl_seconds":60,
            "fallback":[{"channel":"viber","type":"text","text":"a"},
                {"channel":"rcs","type":"text","text":"b","priority":"bulk","ttl_seconds":30}]}));
        let Ok(Ok((_, steps))) = req.map(|r| r.into_chain(Utc::now())) else { unreachable!("refused") };
        assert_eq!((steps[0].priority, steps[0].ttl_seconds), (None, None));
        assert_eq!((steps[1].priority, steps[1].ttl_seconds), (Some(Priority::Bulk), Some(30)));
        let fields = chain_errors(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a","ttl_seconds":0},
                {"channel":"viber","type":"text","text":"b","ttl_seconds":MAX_TTL_SECONDS + 1}]}));
        assert_eq!(fields, ["fallback[0].ttl_seconds", "fallback[1].ttl_seconds"]);
        let r = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a","priority":"urgent"}]}));
        assert!(r.as_ref().is_err_and(|e| e.starts_with("fallback[0].priority")), "{r:?}");
    }

    #[test]
    fn a_bad_fallback_step_is_named_by_its_index() {
        let long = "x".repeat(1001);
        let fields = chain_errors(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"fine"},{"channel":"viber","type":"text","text":long}]}));
        assert_eq!(fields, ["fallback[1].text"]);
        let fields = chain_errors(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"interactive","text":"x"}]}));
        assert!(fields.contains(&"fallback[0].type".to_owned()), "{fields:?}");
        let fields = chain_errors(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a","after_seconds":0},
                        {"channel":"rcs","type":"text","text":"b","after_seconds":86401}]}));
        assert_eq!(fields, ["fallback[0].after_seconds", "fallback[1].after_seconds"]);
        let step = json!({"channel":"viber","type":"text","text":"a"});
        let fields = chain_errors(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[step.clone(), step.clone(), step.clone(), step]}));
        assert_eq!(fields, ["fallback"]);
        // The recipient's error is the first message's alone.
        let fields = chain_errors(json!({"channel":"whatsapp","to":"12","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a"}]}));
        assert_eq!(fields, ["to"]);
    }

    #[test]
    fn a_fallback_step_refuses_unknown_fields_and_bad_until() {
        let r = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a","send_at":"2026-01-01T00:00:00Z"}]}));
        assert!(r.as_ref().is_err_and(|e| e.starts_with("fallback[0]") && e.contains("send_at")), "{r:?}");
        let r = parse(json!({"channel":"whatsapp","to":"85268411234","type":"text","text":"hi",
            "fallback":[{"channel":"viber","type":"text","text":"a","until":"sent"}]}));
        assert!(r.as_ref().is_err_and(|e| e.starts_with("fallback[0].until")), "{r:?}");
    }
}
