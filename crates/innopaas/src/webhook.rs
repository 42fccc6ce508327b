//! InnoPaaS webhooks (PROVIDERS.md §2.6) turned into [`CallbackEvent`]s, and the check of the
//! static headers InnoPaaS adds to every push.
//!
//! Every push is an envelope `{id, type, eventTime, body}`; `type` picks the body:
//! - `whatsapp_message_status_updated` is a [`StatusReport`] for the id msg/submit returned
//!   (`body.id`, InnoPaaS's "Message Id"; the `wamid` only when `id` is missing). `delivered`,
//!   `read`, `failed` (and `sent`, which InnoPaaS never sends) map by name, case-insensitively;
//!   `SMECL:FAILED`, undefined by InnoPaaS, is `failed`, and without `errorData` it reports the
//!   error `{code: "SMECL:FAILED"}` so the failure is not anonymous. Any other status is `Ignored`,
//!   not refused. `uid` (our message id, PROVIDERS.md §0) is the `correlation_id`, `sendPhone` the
//!   `recipient`, `conversation {initiateType, expireAt}` the [`Conversation`] (an `initiateType`
//!   missing beside an `expireAt` reads `unknown`). The time is `eventTime`: the body has none.
//! - `whatsapp_template_status_updated`, and `whatsapp_template_status_update` as one example
//!   spells it, are a [`TemplateReport`] of a status change: `templateStatus` (PENDING, APPROVED,
//!   REJECTED, PAUSED, DISABLED, or whatever InnoPaaS adds) as sent. Meta's `reason` `NONE` means
//!   no reason. `category` has no place in a status report and stays unread.
//! - `whatsapp_mo_message_received` and the inbox's `chat_mo_message_notify` are one
//!   [`InboundMessage`] each, `raw` being the whole `body`. InnoPaaS documents little of either
//!   (the shapes here follow Chuanglan's public webhook page, `chuanglan-international/whatsapp`
//!   `api_cn/webhook.md`: Cloud API objects with camelCase names, `sendTime`, `customerProfile`),
//!   so what identifies the message is strict and what it carries is lenient. Required: `from`,
//!   `to` (our number), `wamid` or else `id` (the provider message id: a wamid is what later
//!   replies and reactions name), and a time (`sendTime`, a Cloud API `timestamp`, or else
//!   `eventTime`). The content follows `type` (or the inbox's `messageType`; with neither, the
//!   first content field present): `text.body` (or `text` or `body` as a string), media objects
//!   with `link` or `url`, `location`, `contacts` (or `contact`), template `button`,
//!   `interactive` list and button replies (`list_reply` or `listReply`), `reaction`, `order`,
//!   and `unknown`/`unsupported` with `errors`. Snake-case and camelCase names are both read. A
//!   type the model lacks (`system`), or a known type whose part cannot be read, is
//!   [`InboundContent::Unknown`] with that type as its kind: the message still counts (it opens
//!   the 24-hour window) and `raw` holds what it said. An unreadable `context`, profile or the
//!   like is dropped, not refused. `from` and `to` lose a leading `+`. Subscribed to both inbound
//!   events, the gateway gets a message twice under one wamid: a duplicate, which it absorbs.
//! - `whatsapp_account_review_updated`, `whatsapp_phone_number_name_update` (both "being updated"
//!   in the docs, shapes unpublished) and `chat_mt_message_notify` (messages agents send from the
//!   InnoPaaS inbox, not the gateway's) are `Ignored` without reading their bodies.
//!
//! Times: RFC 3339 / ISO 8601 (offsets with or without a colon), `yyyy-MM-dd HH:mm:ss` with no
//! zone (taken as UTC, which the sandbox writes; InnoPaaS names no zone), or Unix seconds or
//! milliseconds (from 10^11 up), as a number or a string of digits.
//!
//! A status report keeps the `wamid` beside InnoPaaS's id, so the gateway can link it to the
//! message and map an inbound reply's `context` (a wamid) to our id. A template report carries
//! `wabaId` as its business account, so a URL serving several WABAs attributes it.

mod wire;

use gateway_core::event::fields::{decode, malformed, non_empty};
use gateway_core::event::{
    CallbackError, CallbackEvent, ContactName, ContactPhone, Conversation, InboundContent, InboundContext,
    InboundError, InboundMedia, InboundMessage, InteractiveReply, OrderItem, ReportedError, SharedContact,
    StatusReport, TemplateChange, TemplateReport,
};
use gateway_core::transport::truncate as cut;
use gateway_core::{Channel, MessageStatus, ProviderKind};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use subtle::{Choice, ConstantTimeEq};

use self::wire::{ErrorData, InboundHead, MaybeTimed, StatusBody, TemplateBody, Timed};

/// Longest event name or message type echoed back in an error or an `unknown` kind.
const MAX_NAME: usize = 64;
/// InnoPaaS's undocumented platform failure status.
const SMECL_FAILED: &str = "SMECL:FAILED";

/// Parses one InnoPaaS webhook body.
///
/// # Errors
/// - [`CallbackError::Malformed`]: the body is not a JSON object or has no string `type`; or an
///   event the gateway reads lacks `body`, its time, or a field that identifies it, or has one of
///   the wrong type.
/// - [`CallbackError::UnknownEvent`]: a `type` this adapter does not know.
///
/// A success is never empty. Never panics, whatever the input.
pub fn parse_webhook(body: &[u8]) -> Result<Vec<CallbackEvent>, CallbackError> {
    let value: Value = serde_json::from_slice(body).map_err(|e| malformed(format!("not JSON: {e}")))?;
    let Value::Object(envelope) = &value else {
        return Err(malformed("the body is not a JSON object"));
    };
    let event = match envelope.get("type") {
        Some(Value::String(event)) => event.as_str(),
        Some(_) => return Err(malformed("`type` is not a string")),
        None => return Err(malformed("missing field `type`")),
    };
    let event = match event {
        "whatsapp_message_status_updated" => status(event, &value)?,
        "whatsapp_template_status_updated" | "whatsapp_template_status_update" => template(&value)?,
        "whatsapp_mo_message_received" | "chat_mo_message_notify" => CallbackEvent::Inbound(Box::new(inbound(&value)?)),
        "whatsapp_account_review_updated" => ignored(event, "WABA review results are not acted on"),
        "whatsapp_phone_number_name_update" => ignored(event, "sender display name changes are not acted on"),
        "chat_mt_message_notify" => ignored(event, "a message sent from the InnoPaaS inbox, not through the gateway"),
        other => return Err(CallbackError::UnknownEvent(cut(other, MAX_NAME))),
    };
    Ok(vec![event])
}

/// Whether a push carries every static header configured for it in the InnoPaaS console
/// (`UserName`, `Authorization`, ...), each exactly once and with the configured value.
///
/// `expected` is the configuration (`(name, value)`, e.g. a `&BTreeMap<String, SecretString>`);
/// `received` every header of the request, as `(name, value bytes)` in any case
/// (`headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()))`). Names match case-insensitively;
/// values exactly, in constant time, and every configured header is checked whatever the result
/// of the others: only value lengths can leak. Headers beyond the configured ones are fine, and
/// with none configured every push passes (the callback URL's token is then the only guard).
///
/// The optional `X-CALLBACK-ID: timestamp=…;nonce=…;username=…;signature=…` HMAC described for
/// InnoPaaS (PROVIDERS.md §2.6) was written for its SMS product and is unverified for WhatsApp;
/// it is neither checked nor required.
pub fn verify_static_headers<'e, 'r, K: AsRef<str>>(
    expected: impl IntoIterator<Item = (K, &'e SecretString)>,
    received: impl IntoIterator<Item = (&'r str, &'r [u8])>,
) -> bool {
    let received: Vec<(&str, &[u8])> = received.into_iter().collect();
    let mut all = Choice::from(1);
    for (name, want) in expected {
        let name = name.as_ref();
        let mut values = received.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| *v);
        all &= match (values.next(), values.next()) {
            (Some(got), None) => got.ct_eq(want.expose_secret().as_bytes()),
            _ => Choice::from(0),
        };
    }
    bool::from(all)
}

fn status(event: &str, value: &Value) -> Result<CallbackEvent, CallbackError> {
    let Timed { event_time } = decode(value, "")?;
    let wire: StatusBody = decode(body(value)?, "body")?;
    let name = wire.status.trim();
    let status = match name.to_ascii_lowercase().as_str() {
        "delivered" => MessageStatus::Delivered,
        "read" => MessageStatus::Read,
        "failed" | "smecl:failed" => MessageStatus::Failed,
        "sent" => MessageStatus::Sent,
        _ => {
            return Ok(ignored(event, &format!("status `{}` is not one the gateway tracks", cut(name, MAX_NAME))));
        }
    };
    let platform_failure = name.eq_ignore_ascii_case(SMECL_FAILED);
    let wamid = non_empty(wire.wamid);
    let provider_message_id = non_empty(wire.id.map(|id| id.0))
        .or_else(|| wamid.clone())
        .ok_or_else(|| malformed("body: neither `id` nor `wamid` names the message"))?;
    let error = wire.error_data.and_then(|ErrorData { code, message }| {
        let code = non_empty(code);
        let message = non_empty(message);
        (code.is_some() || message.is_some()).then(|| ReportedError { code, title: message.unwrap_or_default() })
    });
    let error = error.or_else(|| {
        platform_failure.then(|| ReportedError {
            code: Some(SMECL_FAILED.to_owned()),
            title: "InnoPaaS platform failure (SMECL:FAILED)".to_owned(),
        })
    });
    let conversation = wire.conversation.and_then(|c| {
        let kind = non_empty(c.initiate_type);
        let expires_at = c.expire_at.and_then(|t| t.0);
        (kind.is_some() || expires_at.is_some())
            .then(|| Conversation { kind: kind.unwrap_or_else(|| "unknown".to_owned()), expires_at })
    });
    Ok(CallbackEvent::Status(StatusReport {
        provider: ProviderKind::Innopaas,
        provider_message_id,
        status,
        at: event_time.0,
        error,
        correlation_id: non_empty(wire.uid.map(|u| u.0)),
        recipient: non_empty(wire.send_phone.map(|p| p.0)),
        business_phone: None,
        conversation,
        wamid,
    }))
}

fn template(value: &Value) -> Result<CallbackEvent, CallbackError> {
    let Timed { event_time } = decode(value, "")?;
    let wire: TemplateBody = decode(body(value)?, "body")?;
    Ok(CallbackEvent::Template(TemplateReport {
        provider: ProviderKind::Innopaas,
        template_id: wire.template_id.0,
        template_name: wire.template_name.unwrap_or_default(),
        language: non_empty(wire.template_language),
        change: TemplateChange::Status,
        new_value: wire.template_status.0,
        reason: non_empty(wire.reason).filter(|r| !r.trim().eq_ignore_ascii_case("NONE")),
        at: event_time.0,
        business_phone: None,
        business_account: non_empty(wire.waba_id.map(|w| w.0)),
    }))
}

fn inbound(value: &Value) -> Result<InboundMessage, CallbackError> {
    let MaybeTimed { event_time } = decode(value, "")?;
    let body = body(value)?;
    let head: InboundHead = decode(body, "body")?;
    let at = head
        .send_time
        .or(head.timestamp)
        .or(event_time)
        .ok_or_else(|| malformed("no `body.sendTime` and no `eventTime`"))?
        .0;
    let provider_message_id = non_empty(head.wamid)
        .or_else(|| non_empty(head.id.map(|id| id.0)))
        .ok_or_else(|| malformed("body: neither `wamid` nor `id` names the message"))?;
    let content = content(body);
    let context = context(body).or_else(|| match &content {
        // A reaction names the message it reacts to; that is its context.
        InboundContent::Reaction { message_id, .. } => {
            Some(InboundContext { provider_message_id: message_id.clone(), from: None })
        }
        _ => None,
    });
    Ok(InboundMessage {
        provider: ProviderKind::Innopaas,
        channel: Channel::Whatsapp,
        business_phone: phone(head.to.0),
        from: phone(head.from.0),
        provider_message_id,
        at,
        profile_name: ["customerProfile", "profile"].iter().find_map(|k| non_blank(body.get(*k), &["name"])),
        content,
        context,
        raw: body.clone(),
    })
}

/// The content fields, in the order a body without `type` is searched for one.
const CONTENT_KEYS: [&str; 12] = [
    "text",
    "image",
    "video",
    "audio",
    "document",
    "sticker",
    "location",
    "contacts",
    "button",
    "interactive",
    "reaction",
    "order",
];

fn content(body: &Value) -> InboundContent {
    let kind = non_blank(Some(body), &["type", "messageType"])
        .or_else(|| CONTENT_KEYS.iter().find(|k| body.get(**k).is_some_and(|v| !v.is_null())).map(|k| (*k).to_owned()))
        .or_else(|| non_blank(Some(body), &["body"]).map(|_| "text".to_owned()));
    let Some(kind) = kind else {
        return InboundContent::Unknown { kind: "none".to_owned() };
    };
    let kind = kind.trim();
    let read = match kind.to_ascii_lowercase().as_str() {
        "text" => text(body),
        "image" => media(body, "image").map(InboundContent::Image),
        "video" => media(body, "video").map(InboundContent::Video),
        "audio" | "voice" => media(body, "audio").or_else(|| media(body, "voice")).map(InboundContent::Audio),
        "document" | "file" => media(body, "document").or_else(|| media(body, "file")).map(InboundContent::Document),
        "sticker" => media(body, "sticker").map(InboundContent::Sticker),
        "location" => location(body.get("location")),
        "contacts" | "contact" => contacts(body),
        "button" => button(body.get("button")),
        "interactive" => return interactive(body.get("interactive")),
        "reaction" => reaction(body.get("reaction")),
        "order" => order(body.get("order")),
        "unknown" | "unsupported" => errors(body.get("errors")).map(|errors| InboundContent::Unsupported { errors }),
        _ => None,
    };
    read.unwrap_or_else(|| InboundContent::Unknown { kind: cut(kind, MAX_NAME) })
}

fn text(body: &Value) -> Option<InboundContent> {
    let text = match body.get("text") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(part @ Value::Object(_)) => string(part, &["body"]),
        _ => None,
    };
    text.or_else(|| string(body, &["body"])).map(|body| InboundContent::Text { body })
}

/// The media object under `key`; failing that, an inbox-style body carrying the media fields
/// itself (its `id` then being the message's, not the media's).
fn media(body: &Value, key: &str) -> Option<InboundMedia> {
    let (part, flat) = match body.get(key) {
        Some(part @ Value::Object(_)) => (part, false),
        _ => (body, true),
    };
    let link = non_blank(Some(part), &["link", "url", "mediaUrl", "media_url"]);
    let id = if flat { None } else { id_text(Some(part), &["id", "mediaId", "media_id"]) };
    if link.is_none() && id.is_none() {
        return None;
    }
    Some(InboundMedia {
        link,
        mime_type: non_blank(Some(part), &["mimeType", "mime_type"]),
        caption: string(part, &["caption"]),
        filename: non_blank(Some(part), &["filename", "fileName", "file_name"]),
        sha256: non_blank(Some(part), &["sha256"]),
        id,
        voice: part.get("voice").and_then(Value::as_bool),
        animated: part.get("animated").and_then(Value::as_bool),
    })
}

fn location(part: Option<&Value>) -> Option<InboundContent> {
    let part = part?;
    let latitude = decimal(part.get("latitude")?).filter(|v| (-90.0..=90.0).contains(v))?;
    let longitude = decimal(part.get("longitude")?).filter(|v| (-180.0..=180.0).contains(v))?;
    Some(InboundContent::Location {
        latitude,
        longitude,
        name: string(part, &["name"]),
        address: string(part, &["address"]),
    })
}

fn contacts(body: &Value) -> Option<InboundContent> {
    let cards = ["contacts", "contact"].iter().find_map(|k| body.get(*k).and_then(Value::as_array))?;
    if cards.is_empty() {
        return None;
    }
    let contacts = cards
        .iter()
        .map(|card| {
            let name = card.get("name");
            let name = ContactName {
                formatted_name: non_blank(name, &["formattedName", "formatted_name"]),
                first_name: non_blank(name, &["firstName", "first_name"]),
                last_name: non_blank(name, &["lastName", "last_name"]),
            };
            let phones = card
                .get("phones")
                .and_then(Value::as_array)
                .map(|phones| {
                    phones
                        .iter()
                        .map(|p| ContactPhone {
                            phone: id_text(Some(p), &["phone"]),
                            wa_id: id_text(Some(p), &["wa_id", "waId", "waID"]),
                            kind: non_blank(Some(p), &["type"]),
                        })
                        .collect()
                })
                .unwrap_or_default();
            SharedContact { name, phones }
        })
        .collect();
    Some(InboundContent::Contacts { contacts })
}

fn button(part: Option<&Value>) -> Option<InboundContent> {
    let part = part?;
    Some(InboundContent::Button { payload: string(part, &["payload"]), text: string(part, &["text"])? })
}

fn interactive(part: Option<&Value>) -> InboundContent {
    const LIST: [&str; 2] = ["list_reply", "listReply"];
    const BUTTON: [&str; 2] = ["button_reply", "buttonReply"];
    let unknown = |kind: &str| InboundContent::Unknown { kind: cut(kind, MAX_NAME) };
    let Some(part) = part.filter(|p| p.is_object()) else {
        return unknown("interactive");
    };
    let declared = non_blank(Some(part), &["type"]);
    let (kind, keys) = match declared.as_deref().map(|t| t.trim().to_ascii_lowercase().replace('_', "")) {
        Some(t) if t == "listreply" => (InteractiveReply::ListReply, LIST),
        Some(t) if t == "buttonreply" => (InteractiveReply::ButtonReply, BUTTON),
        None if LIST.iter().any(|k| part.get(*k).is_some()) => (InteractiveReply::ListReply, LIST),
        None if BUTTON.iter().any(|k| part.get(*k).is_some()) => (InteractiveReply::ButtonReply, BUTTON),
        _ => return unknown(&format!("interactive.{}", declared.as_deref().map_or("untyped", str::trim))),
    };
    let reply = keys.iter().find_map(|k| part.get(*k));
    let read = reply.and_then(|reply| {
        Some(InboundContent::Interactive {
            kind,
            id: id_text(Some(reply), &["id"])?,
            title: string(reply, &["title"])?,
            description: string(reply, &["description"]),
        })
    });
    read.unwrap_or_else(|| unknown("interactive"))
}

fn reaction(part: Option<&Value>) -> Option<InboundContent> {
    let part = part?;
    Some(InboundContent::Reaction {
        message_id: non_blank(Some(part), &["messageId", "message_id"])?,
        emoji: non_blank(Some(part), &["emoji"]),
    })
}

fn order(part: Option<&Value>) -> Option<InboundContent> {
    let part = part?;
    let catalog_id = id_text(Some(part), &["catalogId", "catalog_id"])?;
    let items = ["productItems", "product_items"].iter().find_map(|k| part.get(*k).and_then(Value::as_array))?;
    let items = items
        .iter()
        .map(|item| {
            Some(OrderItem {
                product_retailer_id: id_text(Some(item), &["productRetailerId", "product_retailer_id"])?,
                quantity: count(item.get("quantity")?)?,
                item_price: ["itemPrice", "item_price"].iter().find_map(|k| item.get(*k)).and_then(decimal),
                currency: non_blank(Some(item), &["currency"]),
            })
        })
        .collect::<Option<Vec<_>>>()?;
    Some(InboundContent::Order { catalog_id, items, text: string(part, &["text"]) })
}

fn errors(errors: Option<&Value>) -> Option<Vec<InboundError>> {
    let errors = errors?.as_array()?;
    Some(
        errors
            .iter()
            .map(|e| InboundError {
                code: id_text(Some(e), &["code"]),
                title: string(e, &["title", "message"]).unwrap_or_default(),
                details: string(e, &["details"]).or_else(|| e.get("error_data").and_then(|d| string(d, &["details"]))),
            })
            .collect(),
    )
}

/// `context`: `{id, from}` (the id also as `wamid` or `messageId`), or the id alone.
fn context(body: &Value) -> Option<InboundContext> {
    match body.get("context")? {
        Value::String(id) if !id.trim().is_empty() => {
            Some(InboundContext { provider_message_id: id.clone(), from: None })
        }
        context @ Value::Object(_) => Some(InboundContext {
            provider_message_id: non_blank(Some(context), &["id", "wamid", "messageId", "message_id"])?,
            from: id_text(Some(context), &["from"]),
        }),
        _ => None,
    }
}

/// The first of `keys` in `v` holding a string.
fn string(v: &Value, keys: &[&str]) -> Option<String> {
    keys.iter().find_map(|k| v.get(*k)?.as_str().map(str::to_owned))
}

/// The first of `keys` in `v` holding a string that is not blank.
fn non_blank(v: Option<&Value>, keys: &[&str]) -> Option<String> {
    let v = v?;
    keys.iter().find_map(|k| v.get(*k)?.as_str().filter(|s| !s.trim().is_empty()).map(str::to_owned))
}

/// [`non_blank`], integers read as text too: ids, codes and phone numbers.
fn id_text(v: Option<&Value>, keys: &[&str]) -> Option<String> {
    let v = v?;
    keys.iter().find_map(|k| match v.get(*k)? {
        Value::String(s) if !s.trim().is_empty() => Some(s.clone()),
        Value::Number(n) if n.is_i64() || n.is_u64() => Some(n.to_string()),
        _ => None,
    })
}

/// A finite number, or a string holding one.
fn decimal(v: &Value) -> Option<f64> {
    let n = match v {
        Value::Number(n) => n.as_f64()?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    n.is_finite().then_some(n)
}

/// A non-negative integer, or a string of digits.
fn count(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// The JSON object under `body`, which every event the gateway reads has.
fn body(value: &Value) -> Result<&Value, CallbackError> {
    match value.get("body") {
        Some(body @ Value::Object(_)) => Ok(body),
        Some(Value::Null) | None => Err(malformed("missing field `body`")),
        Some(_) => Err(malformed("`body` is not an object")),
    }
}

/// A phone number as the model keeps it: without a leading `+`.
fn phone(number: String) -> String {
    let trimmed = number.trim();
    trimmed.strip_prefix('+').unwrap_or(trimmed).to_owned()
}

fn ignored(event: &str, reason: &str) -> CallbackEvent {
    CallbackEvent::Ignored { event: event.to_owned(), reason: reason.to_owned() }
}
