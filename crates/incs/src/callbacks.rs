//! INCS callbacks (PROVIDERS.md §1.8, seeds/003) turned into [`CallbackEvent`]s.
//!
//! - `message_status_update` is a [`StatusReport`] for the id INCS returned at send time; an
//!   unknown status value is `Ignored`, not an error, so a status INCS adds later is counted but
//!   not refused.
//! - The three `template_*_update` events are [`TemplateReport`]s. INCS documents no
//!   `template_name` in its field table (the examples have one): it defaults to empty.
//! - `new_message` holds a Meta webhook value (WhatsApp: one [`InboundMessage`] per `messages[]`
//!   entry, `raw` being that entry) or an RBM message (RCS: one [`InboundMessage`], `raw` being
//!   `message`). A WhatsApp value with no messages, or only `statuses`, is `Ignored`, so a
//!   successful parse never returns an empty list. One malformed entry makes the whole body
//!   malformed: INCS gets a 400 rather than losing part of a batch silently.
//! - `message_created` and `message_status_updated` are INCS chat events keyed by INCS's internal
//!   bigint id, which sends never return. `message_created` carries both that id and the channel's
//!   (`channel_msg_id`, the wamid or Viber/RCS UUID a send returned): it becomes a
//!   [`MessageAlias`] `chat:<id>` of the channel id, and, when `channel_status` is already 1-4,
//!   a [`StatusReport`] too. `message_status_updated` (1 sent, 2 failed with `error` as the
//!   title, 3 delivered, 4 read) is a [`StatusReport`] for `chat:<id>`, which the gateway applies
//!   once the alias is known (buffered until then), so Viber and RCS messages move without
//!   `message_status_update`. Status 0 (created) moves nothing and is `Ignored`.

mod wire;

use chrono::{DateTime, Utc};
use gateway_core::event::fields::{decode, malformed, non_empty};
use gateway_core::event::{
    CallbackError, CallbackEvent, ContactName, ContactPhone, FileThumbnail, InboundContent, InboundContext,
    InboundError, InboundFile, InboundMedia, InboundMessage, InteractiveReply, MessageAlias, OrderItem, ReportedError,
    SharedContact, StatusReport, SuggestionKind, TemplateChange, TemplateReport,
};
use gateway_core::transport::truncate as cut;
use gateway_core::{Channel, MessageStatus, ProviderKind};
use serde::Deserialize;
use serde_json::Value;

use self::wire::{
    ChatMessage, MessageCreated, MessageStatusUpdated, NewMessage, RcsFileInfo, RcsMessage, StatusUpdate,
    TemplateUpdate, WaButton, WaContact, WaError, WaInteractive, WaLocation, WaMedia, WaMessage, WaOrder, WaReaction,
    WaReply, WaSharedContact, WaText, WaValue, WireStatus, RCS_KNOWN_KEYS,
};

/// Longest event name or message type echoed back in an error or an `unknown` kind.
const MAX_NAME: usize = 64;

/// Parses one INCS callback body.
///
/// # Errors
/// - [`CallbackError::Malformed`]: the body is not a JSON object, has no string `event`, or an
///   event the gateway knows lacks a required field or has one of the wrong type.
/// - [`CallbackError::UnknownEvent`]: an `event` this adapter does not know, or a `new_message`
///   whose `messaging_product` is not WhatsApp.
///
/// Never panics, whatever the input.
pub fn parse_callback(body: &[u8]) -> Result<Vec<CallbackEvent>, CallbackError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(malformed("the body is not a JSON object"));
    };
    let event = match object.get("event") {
        Some(Value::String(event)) => event.as_str(),
        Some(_) => return Err(malformed("`event` is not a string")),
        None => return Err(malformed("missing field `event`")),
    };
    match event {
        "message_status_update" => status_update(event, &value).map(|e| vec![e]),
        "template_status_update" => template_update(&value, TemplateChange::Status).map(|e| vec![e]),
        "template_category_update" => template_update(&value, TemplateChange::Category).map(|e| vec![e]),
        "template_quality_update" => template_update(&value, TemplateChange::Quality).map(|e| vec![e]),
        "new_message" => new_message(event, &value),
        "message_created" => message_created(event, &value),
        "message_status_updated" => message_status_updated(event, &value).map(|e| vec![e]),
        other => Err(CallbackError::UnknownEvent(cut(other, MAX_NAME))),
    }
}

fn status_update(event: &str, value: &Value) -> Result<CallbackEvent, CallbackError> {
    let update: StatusUpdate = decode(value, "")?;
    let status = match update.message_status {
        WireStatus::Known(status) => status,
        WireStatus::Other(other) => {
            return Ok(ignored(event, format!("status `{}` is not one the gateway tracks", cut(&other, MAX_NAME))))
        }
    };
    let error = update.error.and_then(|e| match (e.code, e.title) {
        (None, None) => None,
        (code, title) => Some(ReportedError { code, title: title.unwrap_or_default() }),
    });
    Ok(CallbackEvent::Status(StatusReport {
        provider: ProviderKind::Incs,
        provider_message_id: update.message_id.0,
        status,
        at: update.received_at.0,
        error,
        correlation_id: None,
        recipient: None,
        business_phone: non_empty(update.business_phone),
        conversation: None,
        wamid: None,
    }))
}

fn template_update(value: &Value, change: TemplateChange) -> Result<CallbackEvent, CallbackError> {
    let update: TemplateUpdate = decode(value, "")?;
    Ok(CallbackEvent::Template(TemplateReport {
        provider: ProviderKind::Incs,
        template_id: update.template_id.0,
        template_name: update.template_name.unwrap_or_default(),
        language: None,
        change,
        new_value: update.new_value.0,
        reason: non_empty(update.reason),
        at: update.received_at.0,
        business_phone: non_empty(update.business_phone).map(|p| p.trim_start_matches('+').to_owned()),
        business_account: non_empty(update.channel_id.map(|c| c.0)),
    }))
}

fn new_message(event: &str, value: &Value) -> Result<Vec<CallbackEvent>, CallbackError> {
    let envelope: NewMessage = decode(value, "")?;
    let message = match value.get("message") {
        Some(message @ Value::Object(_)) => message,
        Some(_) => return Err(malformed("`message` is not an object")),
        None => return Err(malformed("missing field `message`")),
    };
    let business_phone = non_empty(envelope.business_phone);
    match message.get("messaging_product") {
        Some(Value::String(product)) if product == "whatsapp" => whatsapp(event, business_phone, message),
        Some(Value::String(product)) => {
            Err(CallbackError::UnknownEvent(cut(&format!("{event} ({product})"), MAX_NAME)))
        }
        Some(_) => Err(malformed("`message.messaging_product` is not a string")),
        None if message.get("messages").is_some() || message.get("metadata").is_some() => {
            whatsapp(event, business_phone, message)
        }
        None if message.get("senderPhoneNumber").is_some() => rcs(business_phone, message).map(|e| vec![e]),
        None => Err(malformed(
            "`message` is neither a WhatsApp webhook value (messaging_product, messages) nor an RCS message \
             (senderPhoneNumber)",
        )),
    }
}

fn whatsapp(event: &str, business_phone: Option<String>, message: &Value) -> Result<Vec<CallbackEvent>, CallbackError> {
    let value: WaValue = decode(message, "message")?;
    let entries = match message.get("messages") {
        Some(Value::Array(entries)) => entries,
        Some(Value::Null) | None if message.get("statuses").is_some() => {
            return Ok(vec![ignored(event, "WhatsApp statuses arrive as message_status_update".into())])
        }
        Some(Value::Null) | None => return Err(malformed("message: missing field `messages`")),
        Some(_) => return Err(malformed("message.messages: not an array")),
    };
    if entries.is_empty() {
        return Ok(vec![ignored(event, "a WhatsApp webhook value without messages".into())]);
    }
    let business_phone = business_phone
        .or_else(|| value.metadata.and_then(|m| non_empty(m.display_phone_number)))
        .ok_or_else(|| malformed("no `business_phone` and no `message.metadata.display_phone_number`"))?;
    let contacts = value.contacts.unwrap_or_default();
    entries
        .iter()
        .enumerate()
        .map(|(i, entry)| {
            whatsapp_message(&format!("message.messages[{i}]"), entry, &business_phone, &contacts)
                .map(|m| CallbackEvent::Inbound(Box::new(m)))
        })
        .collect()
}

fn whatsapp_message(
    path: &str,
    entry: &Value,
    business_phone: &str,
    contacts: &[WaContact],
) -> Result<InboundMessage, CallbackError> {
    let head: WaMessage = decode(entry, path)?;
    let from = head.from.0;
    let content = whatsapp_content(path, &head.kind, entry)?;
    let profile_name = contacts
        .iter()
        .find(|c| {
            c.wa_id.as_deref() == Some(from.as_str())
                || (head.from_user_id.is_some() && c.user_id.as_deref() == head.from_user_id.as_deref())
        })
        .and_then(|c| c.profile.as_ref())
        .and_then(|p| non_empty(p.name.clone()));
    let context = head
        .context
        .and_then(|c| non_empty(c.id).map(|id| InboundContext { provider_message_id: id, from: non_empty(c.from) }))
        .or_else(|| match &content {
            // A reaction names the message it reacts to; that is its context.
            InboundContent::Reaction { message_id, .. } => {
                Some(InboundContext { provider_message_id: message_id.clone(), from: None })
            }
            _ => None,
        });
    Ok(InboundMessage {
        provider: ProviderKind::Incs,
        channel: Channel::Whatsapp,
        business_phone: business_phone.to_owned(),
        from,
        provider_message_id: head.id.0,
        at: head.timestamp.0,
        profile_name,
        content,
        context,
        raw: entry.clone(),
    })
}

fn whatsapp_content(path: &str, kind: &str, entry: &Value) -> Result<InboundContent, CallbackError> {
    let media = |m: WaMedia| InboundMedia {
        link: m.link,
        mime_type: m.mime_type,
        caption: m.caption,
        filename: m.filename,
        sha256: m.sha256,
        id: m.id,
        voice: m.voice,
        animated: m.animated,
    };
    Ok(match kind {
        "text" => InboundContent::Text { body: part::<WaText>(path, entry, kind)?.body },
        "image" => InboundContent::Image(media(part(path, entry, kind)?)),
        "video" => InboundContent::Video(media(part(path, entry, kind)?)),
        "audio" => InboundContent::Audio(media(part(path, entry, kind)?)),
        "document" => InboundContent::Document(media(part(path, entry, kind)?)),
        "sticker" => InboundContent::Sticker(media(part(path, entry, kind)?)),
        "location" => {
            let l: WaLocation = part(path, entry, kind)?;
            InboundContent::Location {
                latitude: l.latitude.0,
                longitude: l.longitude.0,
                name: l.name,
                address: l.address,
            }
        }
        "contacts" => {
            let cards: Vec<WaSharedContact> = part(path, entry, kind)?;
            InboundContent::Contacts { contacts: cards.into_iter().map(shared_contact).collect() }
        }
        "button" => {
            let b: WaButton = part(path, entry, kind)?;
            InboundContent::Button { payload: b.payload, text: b.text }
        }
        "interactive" => interactive(&format!("{path}.interactive"), field(path, entry, kind)?)?,
        "order" => {
            let o: WaOrder = part(path, entry, kind)?;
            InboundContent::Order {
                catalog_id: o.catalog_id.0,
                items: o
                    .product_items
                    .into_iter()
                    .map(|i| OrderItem {
                        product_retailer_id: i.product_retailer_id.0,
                        quantity: i.quantity.0,
                        item_price: i.item_price.map(|p| p.0),
                        currency: i.currency,
                    })
                    .collect(),
                text: o.text,
            }
        }
        "reaction" => {
            let r: WaReaction = part(path, entry, kind)?;
            InboundContent::Reaction { message_id: r.message_id.0, emoji: non_empty(r.emoji) }
        }
        "unsupported" => InboundContent::Unsupported { errors: errors(path, entry)? },
        // Older webhook versions call an unsupported message `unknown`, with the same `errors`.
        "unknown" if entry.get("errors").is_some() => InboundContent::Unsupported { errors: errors(path, entry)? },
        other => InboundContent::Unknown { kind: cut(other, MAX_NAME) },
    })
}

fn interactive(path: &str, interactive: &Value) -> Result<InboundContent, CallbackError> {
    let head: WaInteractive = decode(interactive, path)?;
    let (kind, key) = match head.kind.as_str() {
        "list_reply" => (InteractiveReply::ListReply, "list_reply"),
        "button_reply" => (InteractiveReply::ButtonReply, "button_reply"),
        other => return Ok(InboundContent::Unknown { kind: cut(&format!("interactive.{other}"), MAX_NAME) }),
    };
    let reply: WaReply = part(path, interactive, key)?;
    Ok(InboundContent::Interactive { kind, id: reply.id.0, title: reply.title, description: reply.description })
}

fn shared_contact(card: WaSharedContact) -> SharedContact {
    let name = card.name.map_or_else(ContactName::default, |n| ContactName {
        formatted_name: n.formatted_name,
        first_name: n.first_name,
        last_name: n.last_name,
    });
    let phones = card
        .phones
        .unwrap_or_default()
        .into_iter()
        .map(|p| ContactPhone { phone: p.phone, wa_id: p.wa_id, kind: p.kind })
        .collect();
    SharedContact { name, phones }
}

fn errors(path: &str, entry: &Value) -> Result<Vec<InboundError>, CallbackError> {
    let errors: Vec<WaError> = match entry.get("errors") {
        None | Some(Value::Null) => Vec::new(),
        Some(errors) => decode(errors, &format!("{path}.errors"))?,
    };
    Ok(errors
        .into_iter()
        .map(|e| InboundError {
            code: e.code.map(|c| c.0),
            title: e.title.or(e.message).unwrap_or_default(),
            details: e.error_data.and_then(|d| d.details),
        })
        .collect())
}

fn rcs(business_phone: Option<String>, message: &Value) -> Result<CallbackEvent, CallbackError> {
    let m: RcsMessage = decode(message, "message")?;
    let business_phone = business_phone
        .or_else(|| non_empty(m.agent_id))
        .ok_or_else(|| malformed("no `business_phone` and no `message.agentId`"))?;
    let mut context = None;
    let content = if let Some(s) = m.suggestion_response {
        context = s
            .trackdata
            .and_then(|t| non_empty(t.msg_id))
            .map(|id| InboundContext { provider_message_id: id, from: None });
        let kind = match s.kind.as_deref().map(str::to_ascii_uppercase).as_deref() {
            Some("REPLY") => Ok(SuggestionKind::Reply),
            Some("ACTION") => Ok(SuggestionKind::Action),
            other => Err(format!("suggestionResponse.{}", other.unwrap_or("untyped"))),
        };
        match kind {
            Ok(kind) => InboundContent::Suggestion { kind, postback_data: s.postback_data, text: s.text },
            Err(unknown) => InboundContent::Unknown { kind: cut(&unknown, MAX_NAME) },
        }
    } else if let Some(f) = m.user_file {
        let RcsFileInfo { file_uri, mime_type, file_name, file_size_bytes } = f.payload;
        InboundContent::File(InboundFile {
            file_uri: file_uri.0,
            mime_type,
            file_name,
            file_size_bytes: file_size_bytes.map(|n| n.0),
            thumbnail: f.thumbnail.map(|t| FileThumbnail {
                file_uri: t.file_uri.0,
                mime_type: t.mime_type,
                file_size_bytes: t.file_size_bytes.map(|n| n.0),
            }),
        })
    } else if let Some(l) = m.location {
        InboundContent::Location { latitude: l.latitude.0, longitude: l.longitude.0, name: None, address: None }
    } else if let Some(body) = m.text {
        InboundContent::Text { body }
    } else {
        let kind = message
            .as_object()
            .and_then(|o| o.keys().find(|k| !RCS_KNOWN_KEYS.contains(&k.as_str())))
            .map_or("none", String::as_str);
        InboundContent::Unknown { kind: cut(kind, MAX_NAME) }
    };
    let sender = m.sender_phone_number.0;
    Ok(CallbackEvent::Inbound(Box::new(InboundMessage {
        provider: ProviderKind::Incs,
        channel: Channel::Rcs,
        business_phone,
        // Digits only, like WhatsApp ids and the API's `to`; `raw` keeps the `+`.
        from: sender.strip_prefix('+').map_or_else(|| sender.clone(), str::to_owned),
        provider_message_id: m.message_id.0,
        at: m.send_time,
        profile_name: None,
        content,
        context,
        raw: message.clone(),
    })))
}

/// The prefix of INCS's internal chat ids among provider message ids.
pub const CHAT_ID_PREFIX: &str = "chat:";

fn chat_report(
    provider_message_id: String,
    status: MessageStatus,
    at: DateTime<Utc>,
    error: Option<String>,
) -> CallbackEvent {
    let error = (status == MessageStatus::Failed).then(|| ReportedError {
        code: None,
        title: non_empty(error).map(|e| cut(&e, 200)).unwrap_or_else(|| "INCS reported the message failed".into()),
    });
    CallbackEvent::Status(StatusReport {
        error,
        ..StatusReport::new(ProviderKind::Incs, provider_message_id, status, at)
    })
}

fn message_created(event: &str, value: &Value) -> Result<Vec<CallbackEvent>, CallbackError> {
    let MessageCreated { message: ChatMessage { id, kind, channel_msg_id, channel_status, created_at } } =
        decode(value, "")?;
    let Some(channel_msg_id) = non_empty(channel_msg_id) else {
        return Ok(vec![ignored(
            event,
            format!("INCS chat message {} (type {kind}) has no channel id yet; nothing to link", id.0),
        )]);
    };
    let mut events = vec![CallbackEvent::Alias(MessageAlias {
        provider: ProviderKind::Incs,
        provider_message_id: channel_msg_id.clone(),
        alias: format!("{CHAT_ID_PREFIX}{}", id.0),
    })];
    if let Some(status) = channel_status.and_then(crate::status::from_code) {
        events.push(chat_report(channel_msg_id, status, created_at, None));
    }
    Ok(events)
}

fn message_status_updated(event: &str, value: &Value) -> Result<CallbackEvent, CallbackError> {
    let MessageStatusUpdated { message_id, message_status, error, updated_at } = decode(value, "")?;
    match crate::status::from_code(message_status) {
        Some(status) => Ok(chat_report(format!("{CHAT_ID_PREFIX}{}", message_id.0), status, updated_at, error)),
        None => Ok(ignored(
            event,
            format!("INCS chat status {message_status} for INCS message {} moves nothing", message_id.0),
        )),
    }
}

/// The object named by a WhatsApp message's `type` (`"type": "image"` → `image`), which must be there.
fn part<'a, T: Deserialize<'a>>(path: &str, entry: &'a Value, key: &str) -> Result<T, CallbackError> {
    decode(field(path, entry, key)?, &format!("{path}.{key}"))
}

fn field<'a>(path: &str, entry: &'a Value, key: &str) -> Result<&'a Value, CallbackError> {
    match entry.get(key) {
        None | Some(Value::Null) => Err(malformed(format!("{path}: type `{key}` without a `{key}` field"))),
        Some(value) => Ok(value),
    }
}

fn ignored(event: &str, reason: String) -> CallbackEvent {
    CallbackEvent::Ignored { event: event.to_owned(), reason }
}
