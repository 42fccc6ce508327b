//! The INCS half: `POST /external/messages/{whatsapp,viber,rcs}` and `GET /external/messages/status`,
//! with INCS's certification-code auth, body validation, envelopes and message ids
//! (PROVIDERS.md §1, seeds/000). The statuses it simulates are also what the callbacks report.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::callbacks::{Callback, CallbackJob, CallbackQueue};
use crate::emit::{self, Emit, Refusal};
use crate::faults::status_code;
use crate::recipients::{Behaviour, Channel as RecipientChannel, Recipients};
use crate::recording::{lock, RequestBody};

mod interactive;
pub(crate) mod templates;

/// The documented limit of `message_ids` per status poll.
const MAX_POLLED_IDS: usize = 100;

/// `channel_id` and `business_phone` of the first certification code, from the documents' own
/// callback examples; later codes count up from them.
const FIRST_CHANNEL_ID: u64 = 30058;
const FIRST_BUSINESS_PHONE: u64 = 6_281_519_236_680;

const INVALID_PHONE: &str = "The phone number is invalid.";
const INVALID_CERTIFICATION_CODE: &str = "Certification code invalid";

/// INCS's own error codes (10001 auth, 10002–10004 WhatsApp/Viber/RCS API errors), as opposed to
/// the HTTP-like ones.
pub(crate) fn is_provider_code(code: u32) -> bool {
    (10001..=10004).contains(&code)
}

/// The HTTP status the sandbox sends with an envelope `code`: 200 for INCS's own codes, the code
/// itself otherwise. INCS does not document this; see the crate header.
fn http_status_for(code: u32) -> StatusCode {
    if is_provider_code(code) {
        StatusCode::OK
    } else {
        status_code(code)
    }
}

/// The default answer of an INCS fault with this `status` and no `body`.
pub(crate) fn fault_answer(code: u32) -> (StatusCode, Vec<u8>) {
    let message: Cow<'static, str> = match code {
        400 => "General api error".into(),
        404 => "Not Found".into(),
        422 => "The given data was invalid.".into(),
        429 => "Too Many Attempts.".into(),
        500 => "Server Error".into(),
        10001 => INVALID_CERTIFICATION_CODE.into(),
        10002 => "(#131000) Something went wrong".into(),
        10003 => "Message failed \u{2013} detailed reason unknown".into(),
        10004 => "RCS API error".into(),
        other => status_code(other).canonical_reason().unwrap_or("Error").into(),
    };
    let error = IncsError { code, message };
    (error.http_status(), error.envelope())
}

/// The INCS response envelope, fields in the documents' order.
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    status: &'static str,
    code: u32,
    message: &'a str,
    data: D,
    error: EmptyObject,
}

#[derive(Serialize)]
struct EmptyObject {}

fn envelope_bytes<D: Serialize>(envelope: &Envelope<'_, D>) -> Vec<u8> {
    // Serializing these plain structs cannot fail; an empty body would still be visibly wrong.
    serde_json::to_vec(envelope).unwrap_or_default()
}

fn success<D: Serialize>(data: D) -> HttpResponse {
    let body = envelope_bytes(&Envelope { status: "success", code: 200, message: "", data, error: EmptyObject {} });
    HttpResponse::Ok().content_type("application/json").body(body)
}

/// An answer in INCS's error envelope.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct IncsError {
    code: u32,
    message: Cow<'static, str>,
}

impl IncsError {
    fn invalid(message: impl Into<Cow<'static, str>>) -> IncsError {
        IncsError { code: 422, message: message.into() }
    }

    fn http_status(&self) -> StatusCode {
        http_status_for(self.code)
    }

    fn envelope(&self) -> Vec<u8> {
        envelope_bytes(&Envelope {
            status: "error",
            code: self.code,
            message: &self.message,
            data: EmptyObject {},
            error: EmptyObject {},
        })
    }

    fn response(&self) -> HttpResponse {
        HttpResponse::build(self.http_status()).content_type("application/json").body(self.envelope())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Channel {
    Whatsapp,
    Viber,
    Rcs,
}

impl Channel {
    fn from_path(path: &str) -> Option<Channel> {
        match path {
            "/external/messages/whatsapp" => Some(Channel::Whatsapp),
            "/external/messages/viber" => Some(Channel::Viber),
            "/external/messages/rcs" => Some(Channel::Rcs),
            _ => None,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Channel::Whatsapp => "whatsapp",
            Channel::Viber => "viber",
            Channel::Rcs => "rcs",
        }
    }

    fn message_types(self) -> &'static [&'static str] {
        match self {
            Channel::Whatsapp => &["template", "text", "image", "video", "audio", "document", "interactive"],
            Channel::Viber => &["otp", "text", "image", "video", "document"],
            Channel::Rcs => &["template", "text", "image", "video", "document"],
        }
    }

    /// WhatsApp's limit is Meta's, Viber's is in the INCS document, RCS's is the RBM limit.
    fn text_limit(self) -> usize {
        match self {
            Channel::Whatsapp => 4096,
            Channel::Viber => 1000,
            Channel::Rcs => 3072,
        }
    }

    fn recipient_channel(self) -> RecipientChannel {
        match self {
            Channel::Whatsapp => RecipientChannel::Whatsapp,
            Channel::Viber => RecipientChannel::Viber,
            Channel::Rcs => RecipientChannel::Rcs,
        }
    }

    fn new_message_id(self, to: &str) -> String {
        match self {
            Channel::Whatsapp => wamid(to),
            Channel::Viber => uuid::Uuid::new_v4().to_string(),
            Channel::Rcs => uuid::Uuid::now_v7().to_string(),
        }
    }
}

/// A WhatsApp message id shaped like Meta's: base64 of a small binary record holding the
/// recipient and a random hex id, the way the documents' wamids decode.
pub(crate) fn wamid(to: &str) -> String {
    let random: [u8; 9] = rand::random();
    let mut record = Vec::with_capacity(to.len() + 28);
    record.extend_from_slice(&[0x1C, 0x18, u8::try_from(to.len()).unwrap_or(u8::MAX)]);
    record.extend_from_slice(to.as_bytes());
    // 0x11 marks an outgoing message (inbound ones carry 0x12), then an 18-character hex id.
    record.extend_from_slice(&[0x15, 0x02, 0x00, 0x11, 0x18, 0x12]);
    let mut hex = String::with_capacity(18);
    for byte in random {
        let _ = write!(hex, "{byte:02X}");
    }
    record.extend_from_slice(hex.as_bytes());
    record.push(0x00);
    format!("wamid.{}", base64::engine::general_purpose::STANDARD.encode(record))
}

/// Where a message is in its simulated life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum MessageStatus {
    /// Taken by INCS, not yet sent on (Meta's word for it).
    Accepted,
    Sent,
    Delivered,
    Read,
}

impl MessageStatus {
    /// The statuses a message moves through after acceptance, in the order of the delays.
    pub(crate) const PROGRESSION: [MessageStatus; 3] =
        [MessageStatus::Sent, MessageStatus::Delivered, MessageStatus::Read];

    pub(crate) fn as_str(self) -> &'static str {
        match self {
            MessageStatus::Accepted => "accepted",
            MessageStatus::Sent => "sent",
            MessageStatus::Delivered => "delivered",
            MessageStatus::Read => "read",
        }
    }

    fn after(elapsed: Duration, delays: &[Duration; 3]) -> MessageStatus {
        MessageStatus::PROGRESSION
            .iter()
            .zip(delays)
            .rev()
            .find(|(_, delay)| elapsed >= **delay)
            .map_or(MessageStatus::Accepted, |(status, _)| *status)
    }
}

#[derive(Debug, Clone)]
struct SentMessage {
    accepted_at_ms: i64,
    behaviour: Behaviour,
    /// The number (certification code position) it went from, its recipient, and INCS's own
    /// chat id once a chat event named it.
    lane: usize,
    to: String,
    chat_id: Option<u64>,
}

/// One row of the status poll.
#[derive(Debug, Serialize)]
struct StatusRow<'a> {
    message_id: &'a str,
    message_status: &'static str,
    created_at: i64,
    delivered_at: i64,
    read_at: i64,
}

#[derive(Serialize)]
struct StatusPollData<'a> {
    data: Vec<StatusRow<'a>>,
}

#[derive(Deserialize)]
struct StatusQuery {
    message_ids: Option<String>,
}

#[derive(Serialize)]
struct SendData {
    msg_id: String,
}

/// The `message_status_update` callback INCS posts (seeds/003), fields in the document's order.
#[derive(Debug, Serialize)]
struct MessageStatusUpdate<'a> {
    event: &'static str,
    channel_id: u64,
    business_phone: &'a str,
    message_id: &'a str,
    message_status: &'static str,
    /// Null, or the provider's error for a recipient not on the channel (`undeliverable`).
    error: Option<CallbackError>,
    received_at: i64,
}

#[derive(Debug, Serialize)]
struct CallbackError {
    code: Value,
    title: &'static str,
}

/// The INCS stand-in: its configuration and the messages it issued.
pub(crate) struct Incs {
    certification_codes: Vec<String>,
    api_codes: Vec<String>,
    strict: bool,
    delays: [Duration; 3],
    messages: Mutex<HashMap<String, SentMessage>>,
    callbacks: Option<CallbackQueue>,
    templates: templates::Templates,
}

impl Incs {
    pub(crate) fn new(
        certification_codes: Vec<String>,
        delays: [Duration; 3],
        callbacks: Option<CallbackQueue>,
    ) -> Incs {
        Incs {
            api_codes: certification_codes.clone(),
            strict: false,
            certification_codes,
            delays,
            messages: Mutex::new(HashMap::new()),
            callbacks,
            templates: templates::Templates::new(crate::DEFAULT_INCS_TEMPLATE_REVIEW_DELAY),
        }
    }

    /// The api family's codes, and whether a code is valid only on its own family.
    pub(crate) fn with_api_codes(mut self, api_codes: Vec<String>, strict: bool) -> Incs {
        self.api_codes = api_codes;
        self.strict = strict;
        self
    }

    /// How long a new template stays `PENDING` before its review (and its status callback).
    pub(crate) fn with_template_review_delay(mut self, delay: Duration) -> Incs {
        self.templates = templates::Templates::new(delay);
        self
    }

    /// Answers a request to an INCS path (already recorded and past the fault book).
    pub(crate) fn handle(&self, req: &HttpRequest, body: &RequestBody, recipients: &Recipients) -> HttpResponse {
        let path = req.path();
        let outcome = if path == "/external/messages/status" {
            if req.method() == Method::GET {
                self.poll_status(req)
            } else {
                Err(method_not_allowed(req.method(), "GET"))
            }
        } else if let Some(channel) = Channel::from_path(path) {
            if req.method() == Method::POST {
                self.send(channel, req, body, recipients)
            } else {
                Err(method_not_allowed(req.method(), "POST"))
            }
        } else if let Some(outcome) = templates::handle(self, req, body) {
            outcome
        } else {
            Err(IncsError { code: 404, message: "Not Found".into() })
        };
        outcome.unwrap_or_else(|error| error.response())
    }

    /// The lane (number) of the presented certification code on the chat-api family.
    fn authenticate(&self, req: &HttpRequest) -> Result<usize, IncsError> {
        self.authenticate_on(req, HostFamily::Chat)
    }

    /// The lane (number) of the presented code: its position among its family's codes, one per
    /// number in both lists. Strict, it must be a code of `family`; lenient, of either.
    pub(crate) fn authenticate_on(&self, req: &HttpRequest, family: HostFamily) -> Result<usize, IncsError> {
        let code = req.headers().get("certification-code").and_then(|code| code.to_str().ok());
        let refused = || IncsError { code: 10001, message: INVALID_CERTIFICATION_CODE.into() };
        let code = code.ok_or_else(refused)?;
        let chat = self.certification_codes.iter().position(|known| known == code);
        let api = self.api_codes.iter().position(|known| known == code);
        let allowed = match (self.strict, family) {
            (_, HostFamily::Either) | (false, HostFamily::Chat) => chat.or(api),
            (false, HostFamily::Api) => api.or(chat),
            (true, HostFamily::Chat) => chat,
            (true, HostFamily::Api) => api,
        };
        allowed.ok_or_else(refused)
    }

    fn send(
        &self,
        channel: Channel,
        req: &HttpRequest,
        body: &RequestBody,
        recipients: &Recipients,
    ) -> Result<HttpResponse, IncsError> {
        // The documents put RCS sends on both hosts.
        let family = if channel == Channel::Rcs { HostFamily::Either } else { HostFamily::Chat };
        let lane = self.authenticate_on(req, family)?;
        let to = validate_send(channel, body, self.strict)?;
        if let (true, Channel::Whatsapp, RequestBody::Json(fields)) = (self.strict, channel, body) {
            if let (Some("template"), Some(Value::Object(template))) =
                (fields.get("type").and_then(Value::as_str), fields.get("template"))
            {
                self.templates.check_send(template)?;
            }
        }
        let message_type = match body {
            RequestBody::Json(fields) => fields.get("type").and_then(Value::as_str).unwrap_or(""),
            _ => "",
        };
        let behaviour = recipients.get(to, channel.recipient_channel()).for_send(message_type);
        let message_id = channel.new_message_id(to);
        let accepted = Instant::now();
        let accepted_at_ms = chrono::Utc::now().timestamp_millis();
        let sent = SentMessage { accepted_at_ms, behaviour, lane, to: to.to_owned(), chat_id: None };
        lock(&self.messages).insert(message_id.clone(), sent);

        if let Some(callbacks) = &self.callbacks {
            let lane = u64::try_from(lane).unwrap_or(0);
            let business_phone = (FIRST_BUSINESS_PHONE + lane).to_string();
            let update = |status: &'static str, delay: Duration, error: Option<CallbackError>| {
                let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
                let update = MessageStatusUpdate {
                    event: "message_status_update",
                    channel_id: FIRST_CHANNEL_ID + lane,
                    business_phone: &business_phone,
                    message_id: &message_id,
                    message_status: status,
                    error,
                    received_at: accepted_at_ms.saturating_add(delay_ms).div_euclid(1000),
                };
                // Serializing this plain struct cannot fail; an empty body would still be visibly wrong.
                let body = serde_json::to_vec(&update).unwrap_or_default();
                Callback { due: accepted + delay, status, body }
            };
            let callbacks_due: Vec<Callback> = match behaviour {
                Behaviour::Normal => MessageStatus::PROGRESSION
                    .into_iter()
                    .zip(self.delays)
                    .map(|(status, delay)| update(status.as_str(), delay, None))
                    .collect(),
                // The provider learns the number is not on the channel (or out of its window)
                // when it tries to send on.
                Behaviour::Undeliverable | Behaviour::OutsideWindow => {
                    let (code, title) = behaviour.failure(channel.recipient_channel()).unwrap_or_default();
                    vec![update("failed", self.delays[0], Some(CallbackError { code, title }))]
                }
                Behaviour::NoReceipts => Vec::new(),
            };
            if !callbacks_due.is_empty() {
                callbacks.enqueue(CallbackJob { message_id: message_id.clone(), callbacks: callbacks_due });
            }
        }
        tracing::debug!(channel = channel.name(), %message_id, "message accepted");
        Ok(success(SendData { msg_id: message_id }))
    }

    fn poll_status(&self, req: &HttpRequest) -> Result<HttpResponse, IncsError> {
        self.authenticate(req)?;
        let query = web::Query::<StatusQuery>::from_query(req.query_string())
            .map_err(|_| IncsError::invalid("The message ids must be a string."))?;
        let ids: Vec<&str> =
            query.message_ids.as_deref().unwrap_or("").split(',').map(str::trim).filter(|id| !id.is_empty()).collect();
        if ids.is_empty() {
            return Err(IncsError::invalid("The message ids field is required."));
        }
        if ids.len() > MAX_POLLED_IDS {
            return Err(IncsError::invalid(format!("The message ids may not have more than {MAX_POLLED_IDS} items.")));
        }

        let now_ms = chrono::Utc::now().timestamp_millis();
        let rows = {
            let messages = lock(&self.messages);
            ids.iter()
                .filter_map(|id| {
                    let message = messages.get(*id)?;
                    Some(self.status_row(id, message, now_ms))
                })
                .collect()
        };
        Ok(success(StatusPollData { data: rows }))
    }

    fn status_row<'a>(&self, id: &'a str, message: &SentMessage, now_ms: i64) -> StatusRow<'a> {
        let elapsed_ms = u64::try_from(now_ms - message.accepted_at_ms).unwrap_or(0);
        let elapsed = Duration::from_millis(elapsed_ms);
        let status = match message.behaviour {
            Behaviour::Normal => MessageStatus::after(elapsed, &self.delays),
            Behaviour::NoReceipts => MessageStatus::Accepted,
            Behaviour::Undeliverable | Behaviour::OutsideWindow if elapsed >= self.delays[0] => {
                return StatusRow {
                    message_id: id,
                    message_status: "failed",
                    created_at: message.accepted_at_ms.div_euclid(1000),
                    delivered_at: 0,
                    read_at: 0,
                }
            }
            Behaviour::Undeliverable | Behaviour::OutsideWindow => MessageStatus::Accepted,
        };
        let unix_seconds_after = |delay: Duration| {
            let delay_ms = i64::try_from(delay.as_millis()).unwrap_or(i64::MAX);
            message.accepted_at_ms.saturating_add(delay_ms).div_euclid(1000)
        };
        StatusRow {
            message_id: id,
            message_status: status.as_str(),
            created_at: message.accepted_at_ms.div_euclid(1000),
            delivered_at: if status >= MessageStatus::Delivered { unix_seconds_after(self.delays[1]) } else { 0 },
            read_at: if status >= MessageStatus::Read { unix_seconds_after(self.delays[2]) } else { 0 },
        }
    }
}

/// INCS's first chat id; later ones count up (seeds/003's example id).
const FIRST_CHAT_ID: u64 = 260_400_000_084;

impl Incs {
    /// Posts, now, the callback an `/_sandbox/callbacks` request names (see `crate::emit`).
    pub(crate) fn emit(&self, emit: Emit) -> Result<Value, Refusal> {
        let callbacks = self.callbacks.as_ref().ok_or_else(|| emit::no_callback_url(crate::Provider::Incs))?;
        let now = chrono::Utc::now();
        let number = |lane: usize| {
            let lane = u64::try_from(lane).unwrap_or(0);
            (FIRST_CHANNEL_ID + lane, (FIRST_BUSINESS_PHONE + lane).to_string())
        };
        let (key, status, body) = match emit {
            Emit::Failed { message_id, code, title, .. } => {
                let lane = self.sent(&message_id)?.lane;
                let (channel_id, business_phone) = number(lane);
                let body = serde_json::json!({"event": "message_status_update", "channel_id": channel_id,
                    "business_phone": business_phone, "message_id": message_id, "message_status": "failed",
                    "error": {"code": code, "title": title.unwrap_or_else(|| "Message failed".into())},
                    "received_at": now.timestamp()});
                (message_id, "failed", body)
            }
            Emit::Inbound { from, number: lane, message, context_message_id, .. } => {
                let (channel_id, business_phone) = number(lane);
                let mut message = message.unwrap_or_else(emit::default_message);
                let id = wamid(&from);
                message.insert("from".into(), from.clone().into());
                message.insert("id".into(), id.clone().into());
                message.insert("timestamp".into(), now.timestamp().to_string().into());
                if let Some(replied) = context_message_id {
                    message.insert("context".into(), serde_json::json!({"from": business_phone, "id": replied}));
                }
                let body = serde_json::json!({"event": "new_message", "channel_id": channel_id,
                    "business_phone": business_phone, "message": {
                        "messaging_product": "whatsapp",
                        "metadata": {"display_phone_number": business_phone, "phone_number_id": channel_id.to_string()},
                        "contacts": [{"profile": {"name": "Sandbox User"}, "wa_id": from}],
                        "messages": [Value::Object(message)]}});
                (id, "inbound", body)
            }
            Emit::MessageCreated { message_id, channel_status } => {
                let (chat_id, sent) = self.chat_id(&message_id)?;
                let (channel_id, _) = number(sent.lane);
                let at = now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true);
                let body = serde_json::json!({"event": "message_created", "message": {"id": chat_id,
                    "auth_id": channel_id, "conversation_id": 979, "session_type": 1, "sender": "incs_1",
                    "receiver": sent.to, "type": 101, "custom_type": 0, "custom_id": 0, "channel_msg_id": message_id,
                    "channel_status": channel_status, "content": {}, "error": "", "source": 1,
                    "created_at": at, "updated_at": at}});
                (message_id, "message_created", body)
            }
            Emit::MessageStatusUpdated { message_id, channel_status } => {
                let (chat_id, _) = self.chat_id(&message_id)?;
                let body = serde_json::json!({"event": "message_status_updated", "message_id": chat_id,
                    "message_status": channel_status, "error": "",
                    "updated_at": now.to_rfc3339_opts(chrono::SecondsFormat::Micros, true)});
                (message_id, "message_status_updated", body)
            }
            Emit::TemplateUpdate { template_id, change, new_value, reason } => {
                let (name, lane) =
                    self.templates.name_of(&template_id).ok_or_else(|| emit::not_found("template", &template_id))?;
                let (channel_id, business_phone) = number(lane);
                let event = match change {
                    emit::TemplateChange::Status => "template_status_update",
                    emit::TemplateChange::Category => "template_category_update",
                    emit::TemplateChange::Quality => "template_quality_update",
                };
                let body = serde_json::json!({"event": event, "channel_id": channel_id,
                    "business_phone": business_phone, "template_id": template_id, "template_name": name,
                    "new_value": new_value, "reason": reason, "received_at": now.timestamp()});
                (template_id, "template_update", body)
            }
        };
        let bytes = serde_json::to_vec(&body).unwrap_or_default();
        callbacks.enqueue(CallbackJob {
            message_id: key,
            callbacks: vec![Callback { due: Instant::now(), status, body: bytes }],
        });
        Ok(body)
    }

    fn sent(&self, message_id: &str) -> Result<SentMessage, Refusal> {
        lock(&self.messages).get(message_id).cloned().ok_or_else(|| emit::not_found("message", message_id))
    }

    /// INCS's own chat id for a message it accepted, given the first time a chat event names it.
    fn chat_id(&self, message_id: &str) -> Result<(u64, SentMessage), Refusal> {
        let mut messages = lock(&self.messages);
        let next = FIRST_CHAT_ID + messages.values().filter(|m| m.chat_id.is_some()).count() as u64;
        let sent = messages.get_mut(message_id).ok_or_else(|| emit::not_found("message", message_id))?;
        let id = *sent.chat_id.get_or_insert(next);
        Ok((id, sent.clone()))
    }
}

fn method_not_allowed(method: &Method, allowed: &str) -> IncsError {
    IncsError {
        code: 405,
        message: format!("The {method} method is not supported for this route. Supported methods: {allowed}.").into(),
    }
}

/// INCS's two host families (PROVIDERS.md §1.1), each with its own certification code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum HostFamily {
    /// chat-api: sends and the status poll.
    Chat,
    /// api: templates and the account.
    Api,
    Either,
}

/// The answer to a POST whose body is not sent as JSON.
pub(crate) fn not_json_answer() -> HttpResponse {
    IncsError::invalid("The request body must be JSON (Content-Type: application/json).").response()
}

/// Strict: a field INCS does not document is refused, so a misspelt one surfaces here and not
/// as a silently ignored field in production.
fn only_known(object: &Map<String, Value>, parent: &str, known: &[&str]) -> Result<(), IncsError> {
    match object.keys().find(|k| !known.contains(&k.as_str())) {
        Some(unknown) => {
            let at = if parent.is_empty() { unknown.clone() } else { format!("{parent}.{unknown}") };
            Err(IncsError::invalid(format!("The {at} field is not allowed.")))
        }
        None => Ok(()),
    }
}

/// The fields INCS documents for an object of a send (seeds/000-002), by message type.
fn known_fields(channel: Channel, message_type: &str) -> Option<&'static [&'static str]> {
    Some(match (channel, message_type) {
        (Channel::Whatsapp, "image" | "video" | "document") => &["link", "caption", "filename"],
        (_, "image" | "video" | "audio" | "document") => &["link"],
        (Channel::Whatsapp, "template") => &["name", "components", "code"],
        (Channel::Rcs, "template") => &["name", "parameters"],
        (Channel::Viber, "otp") => &["code", "language", "code_expiration_minutes"],
        _ => return None,
    })
}

/// Checks a send body the way INCS documents it; returns the recipient.
fn validate_send(channel: Channel, body: &RequestBody, strict: bool) -> Result<&str, IncsError> {
    let RequestBody::Json(Value::Object(fields)) = body else {
        return Err(IncsError::invalid("The request body must be a JSON object."));
    };
    if strict {
        if let Some(Value::String(message_type)) = fields.get("type") {
            only_known(fields, "", &["to", "type", message_type.as_str()])?;
            if let (Some(known), Some(Value::Object(object))) =
                (known_fields(channel, message_type), fields.get(message_type.as_str()))
            {
                only_known(object, message_type, known)?;
            }
            if let Some(Value::Array(components)) =
                fields.get("template").and_then(|t| t.get("components")).filter(|_| message_type == "template")
            {
                for (i, c) in components.iter().enumerate() {
                    if let Value::Object(c) = c {
                        only_known(
                            c,
                            &format!("template.components.{i}"),
                            &["type", "sub_type", "index", "parameters"],
                        )?;
                    }
                }
            }
        }
    }

    let to = match fields.get("to") {
        None | Some(Value::Null) => return Err(IncsError::invalid("The to field is required.")),
        Some(Value::String(to)) if is_phone_number(to) => to.as_str(),
        Some(_) => return Err(IncsError::invalid(INVALID_PHONE)),
    };

    let message_type = match fields.get("type") {
        None | Some(Value::Null) => return Err(IncsError::invalid("The type field is required.")),
        Some(Value::String(message_type)) => message_type.as_str(),
        Some(_) => return Err(IncsError::invalid("The type field must be a string.")),
    };
    if !channel.message_types().contains(&message_type) {
        return Err(IncsError::invalid(format!(
            "The selected type is invalid: {} messages can be {}.",
            channel.name(),
            channel.message_types().join(", ")
        )));
    }

    let content = match fields.get(message_type) {
        None | Some(Value::Null) => return Err(IncsError::invalid(format!("The {message_type} field is required."))),
        Some(content) => content,
    };
    validate_content(channel, message_type, content)?;
    Ok(to)
}

/// Country code and number, digits only; E.164 allows at most 15 digits.
fn is_phone_number(to: &str) -> bool {
    (8..=15).contains(&to.len()) && to.bytes().all(|byte| byte.is_ascii_digit())
}

fn validate_content(channel: Channel, message_type: &str, content: &Value) -> Result<(), IncsError> {
    if message_type == "text" {
        let Value::String(text) = content else {
            return Err(IncsError::invalid("The text field must be a string."));
        };
        if text.trim().is_empty() {
            return Err(IncsError::invalid("The text field is required."));
        }
        let limit = channel.text_limit();
        if text.chars().count() > limit {
            return Err(IncsError::invalid(format!("The text may not be greater than {limit} characters.")));
        }
        return Ok(());
    }

    let Value::Object(object) = content else {
        return Err(IncsError::invalid(format!("The {message_type} field must be an object.")));
    };
    match message_type {
        "image" | "video" | "audio" | "document" => {
            let link = required_string(object, message_type, "link")?;
            if !(link.starts_with("https://") || link.starts_with("http://")) {
                return Err(IncsError::invalid(format!("The {message_type}.link must be a valid URL.")));
            }
        }
        "template" => {
            required_string(object, message_type, "name")?;
            match channel {
                Channel::Whatsapp => {
                    if object.get("components").is_some_and(|c| !c.is_array()) {
                        return Err(IncsError::invalid("The template.components must be an array."));
                    }
                }
                Channel::Rcs => {
                    if object.get("parameters").is_some_and(|p| !p.is_object()) {
                        return Err(IncsError::invalid("The template.parameters must be an object."));
                    }
                }
                Channel::Viber => {}
            }
        }
        "interactive" => interactive::check(object).map_err(IncsError::invalid)?,
        "otp" => {
            required_string(object, message_type, "code")?;
            if object.get("code_expiration_minutes").is_some_and(|minutes| !minutes.is_u64()) {
                return Err(IncsError::invalid("The otp.code_expiration_minutes must be an integer."));
            }
        }
        _ => {}
    }
    Ok(())
}

fn required_string<'a>(object: &'a Map<String, Value>, parent: &str, field: &str) -> Result<&'a str, IncsError> {
    match object.get(field) {
        Some(Value::String(value)) if !value.trim().is_empty() => Ok(value),
        Some(Value::String(_)) | None | Some(Value::Null) => {
            Err(IncsError::invalid(format!("The {parent}.{field} field is required.")))
        }
        Some(_) => Err(IncsError::invalid(format!("The {parent}.{field} must be a string."))),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn body(value: Value) -> RequestBody {
        RequestBody::Json(value)
    }

    fn rejection(channel: Channel, value: Value) -> String {
        let error = validate_send(channel, &body(value.clone()), true).expect_err(&value.to_string());
        assert_eq!(error.code, 422, "{value}");
        error.message.into_owned()
    }

    #[test]
    fn phone_numbers_are_8_to_15_digits() {
        for good in ["85268411234", "12345678", "123456789012345"] {
            assert!(is_phone_number(good), "{good}");
        }
        for bad in ["+85268411234", "1234567", "1234567890123456", "8526841123a", "", "852 6841 1234"] {
            assert!(!is_phone_number(bad), "{bad}");
        }
    }

    #[test]
    fn invalid_bodies_get_clear_422s() {
        let wa = Channel::Whatsapp;
        assert_eq!(
            validate_send(wa, &RequestBody::Text("to=1".into()), true).unwrap_err().message,
            "The request body must be a JSON object."
        );
        assert_eq!(validate_send(wa, &RequestBody::Empty, true).unwrap_err().code, 422);
        assert_eq!(rejection(wa, json!({"type":"text","text":"Hi"})), "The to field is required.");
        assert_eq!(rejection(wa, json!({"to":"+85268411234","type":"text","text":"Hi"})), INVALID_PHONE);
        assert_eq!(rejection(wa, json!({"to":85268411234_u64,"type":"text","text":"Hi"})), INVALID_PHONE);
        assert_eq!(rejection(wa, json!({"to":"85268411234","text":"Hi"})), "The type field is required.");
        assert!(rejection(wa, json!({"to":"85268411234","type":"otp","otp":{"code":"1"}}))
            .contains("whatsapp messages can be template, text"));
        assert!(rejection(
            Channel::Viber,
            json!({"to":"85268411234","type":"audio","audio":{"link":"https://x/a.mp3"}})
        )
        .starts_with("The selected type is invalid"));
        assert!(rejection(Channel::Rcs, json!({"to":"85268411234","type":"interactive","interactive":{}}))
            .starts_with("The selected type is invalid"));
        assert_eq!(rejection(wa, json!({"to":"85268411234","type":"image"})), "The image field is required.");
        assert_eq!(
            rejection(wa, json!({"to":"85268411234","type":"text","text":{"body":"Hi"}})),
            "The text field must be a string."
        );
        assert_eq!(rejection(wa, json!({"to":"85268411234","type":"text","text":""})), "The text field is required.");
        assert_eq!(
            rejection(Channel::Viber, json!({"to":"85268411234","type":"text","text":"x".repeat(1001)})),
            "The text may not be greater than 1000 characters."
        );
        assert_eq!(
            rejection(wa, json!({"to":"85268411234","type":"image","image":{}})),
            "The image.link field is required."
        );
        assert_eq!(
            rejection(wa, json!({"to":"85268411234","type":"image","image":{"link":"ftp://x"}})),
            "The image.link must be a valid URL."
        );
        assert_eq!(
            rejection(wa, json!({"to":"85268411234","type":"template","template":{}})),
            "The template.name field is required."
        );
        assert_eq!(
            rejection(wa, json!({"to":"85268411234","type":"template","template":{"name":"t","components":{}}})),
            "The template.components must be an array."
        );
        assert_eq!(
            rejection(
                Channel::Rcs,
                json!({"to":"85268411234","type":"template","template":{"name":"t","parameters":[]}})
            ),
            "The template.parameters must be an object."
        );
        assert!(rejection(wa, json!({"to":"85268411234","type":"interactive","interactive":{"type":"product"}}))
            .starts_with("The interactive.type must be one of"));
        assert_eq!(
            rejection(Channel::Viber, json!({"to":"85268411234","type":"otp","otp":{"language":"en"}})),
            "The otp.code field is required."
        );
    }

    /// Splits a wamid into (recipient, direction byte, hex id), following the documented layout.
    fn decode_wamid(id: &str) -> (String, u8, String) {
        let raw = base64::engine::general_purpose::STANDARD.decode(id.strip_prefix("wamid.").unwrap()).unwrap();
        assert_eq!(raw[..2], [0x1C, 0x18]);
        let phone_len = usize::from(raw[2]);
        let phone = String::from_utf8(raw[3..3 + phone_len].to_vec()).unwrap();
        let rest = &raw[3 + phone_len..];
        assert_eq!(rest[..3], [0x15, 0x02, 0x00]);
        assert_eq!(rest[4], 0x18);
        let hex_len = usize::from(rest[5]);
        let hex = String::from_utf8(rest[6..6 + hex_len].to_vec()).unwrap();
        assert_eq!(rest[6 + hex_len..], [0x00]);
        (phone, rest[3], hex)
    }

    #[test]
    fn generated_wamids_have_the_documented_layout() {
        // The success example of seeds/000 and an inbound id of seeds/001.
        assert_eq!(
            decode_wamid("wamid.HBgLODUyNjg0MTUwMjYVAgARGBIyMUQ4RjA5MTY1NUJERjE3NjYA"),
            ("85268415026".into(), 0x11, "21D8F091655BDF1766".into())
        );
        let inbound =
            decode_wamid("wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDOTgzNjhFOTU2NDgxMDI4NEY2NDdCOTg0MkEyMDgzAA==");
        assert_eq!((inbound.0.as_str(), inbound.1), ("6281519140327", 0x12));

        let id = wamid("85268411234");
        let (phone, direction, hex) = decode_wamid(&id);
        assert_eq!((phone.as_str(), direction, hex.len()), ("85268411234", 0x11, 18));
        assert!(hex.bytes().all(|b| b.is_ascii_digit() || (b'A'..=b'F').contains(&b)));
        assert_ne!(wamid("85268411234"), id, "ids must be random");
    }

    #[test]
    fn viber_and_rcs_ids_are_uuid_v4_and_v7() {
        let viber = uuid::Uuid::parse_str(&Channel::Viber.new_message_id("85268411234")).unwrap();
        let rcs = uuid::Uuid::parse_str(&Channel::Rcs.new_message_id("85268411234")).unwrap();
        assert_eq!(viber.get_version_num(), 4);
        assert_eq!(rcs.get_version_num(), 7);
    }

    #[test]
    fn status_follows_the_delays() {
        let delays = [Duration::from_millis(100), Duration::from_millis(300), Duration::from_millis(600)];
        let at = |ms| MessageStatus::after(Duration::from_millis(ms), &delays);
        assert_eq!(at(0), MessageStatus::Accepted);
        assert_eq!(at(99), MessageStatus::Accepted);
        assert_eq!(at(100), MessageStatus::Sent);
        assert_eq!(at(300), MessageStatus::Delivered);
        assert_eq!(at(599), MessageStatus::Delivered);
        assert_eq!(at(600), MessageStatus::Read);
        let zero = [Duration::ZERO; 3];
        assert_eq!(MessageStatus::after(Duration::ZERO, &zero), MessageStatus::Read);
    }

    #[test]
    fn status_rows_carry_unix_seconds() {
        let delays = [Duration::from_secs(1), Duration::from_secs(5), Duration::from_secs(9)];
        let incs = Incs::new(vec!["code".into()], delays, None);
        let message = SentMessage {
            accepted_at_ms: 1_774_249_921_500,
            behaviour: Behaviour::Normal,
            lane: 0,
            to: "85268411234".into(),
            chat_id: None,
        };
        let row = |elapsed_ms| incs.status_row("id", &message, message.accepted_at_ms + elapsed_ms);

        let accepted = row(0);
        assert_eq!((accepted.message_status, accepted.created_at), ("accepted", 1_774_249_921));
        assert_eq!((accepted.delivered_at, accepted.read_at), (0, 0));
        let delivered = row(5_000);
        assert_eq!(delivered.message_status, "delivered");
        assert_eq!((delivered.delivered_at, delivered.read_at), (1_774_249_926, 0));
        let read = row(60_000);
        assert_eq!(read.message_status, "read");
        assert_eq!((read.delivered_at, read.read_at), (1_774_249_926, 1_774_249_930));
    }

    #[test]
    fn provider_codes_answer_http_200_others_mirror_the_code() {
        let (status, body) = fault_answer(10001);
        assert_eq!(status, StatusCode::OK);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"status":"error","code":10001,"message":"Certification code invalid","data":{},"error":{}}"#
        );
        let (status, body) = fault_answer(429);
        assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body["message"], "Too Many Attempts.");
        let (status, body) = fault_answer(503);
        assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!((body["code"].as_u64(), body["message"].as_str()), (Some(503), Some("Service Unavailable")));
    }
}
