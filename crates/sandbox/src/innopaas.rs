//! The InnoPaaS half (PROVIDERS.md §2, seeds/004): `POST /api/whatsapp/v3/msg/submit`,
//! `.../account/phoneInfo` and `.../template/submit`, with InnoPaaS's `AppKey` + `Authorization`
//! auth, field validation, string-coded envelopes, and `whatsapp_message_status_updated` webhooks
//! (`delivered`, then `read`) after every accepted send.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse};
use chrono::{DateTime, SecondsFormat, Utc};
use serde::Serialize;
use serde_json::{json, Map, Value};

use crate::callbacks::{Callback, CallbackJob, CallbackQueue};
use crate::emit::{self, Emit, Refusal};
use crate::faults::status_code;
use crate::incs::wamid;
use crate::recipients::{Behaviour, Channel as RecipientChannel, Recipients};
use crate::recording::{lock, RequestBody};

mod templates;

/// Every InnoPaaS path the gateway uses sits under this prefix (`/api/whatsapp/v3/msg/submit`, ...).
pub(crate) const PATH_PREFIX: &str = "/api/whatsapp/";

pub const SUBMIT_PATH: &str = "/api/whatsapp/v3/msg/submit";
/// The sandbox's MMLite send path. InnoPaaS publishes none (PROVIDERS.md §2.3); point an
/// account's `mmlite_url` here.
pub const MMLITE_SUBMIT_PATH: &str = "/api/whatsapp/v3/mmlite/msg/submit";
pub const PHONE_INFO_PATH: &str = "/api/whatsapp/v3/account/phoneInfo";
pub const TEMPLATE_SUBMIT_PATH: &str = "/api/whatsapp/v3/template/submit";

/// `messageType` values msg/submit takes (seeds/004).
const MESSAGE_TYPES: [&str; 10] =
    ["template", "text", "image", "video", "audio", "location", "document", "sticker", "contacts", "interactive"];
const MAX_UID_CHARS: usize = 32;
const MAX_RECIPIENTS: usize = 1000;
/// Code 106: "content exceeds 3000 characters" (PROVIDERS.md §2.5).
const MAX_CONTENT_CHARS: usize = 3000;
const MAX_TEMPLATE_NAME: usize = 512;
const MAX_TEMPLATE_BODY: usize = 1024;
const MAX_TEMPLATE_FOOTER: usize = 60;
const MAX_TEMPLATE_BUTTONS: usize = 10;
const MAX_REPLY_BUTTONS: usize = 3;
/// How long a conversation opened by a delivered message lasts.
const CONVERSATION_WINDOW: chrono::TimeDelta = chrono::TimeDelta::hours(24);

/// The first phone number id and verified name reported by phoneInfo; later credentials count up.
const FIRST_PHONE_NUMBER_ID: u64 = 110_200_345_501_442;
/// The console account name of the first credential (`IW123456`-style, as in InnoPaaS's
/// webhook examples); later credentials count up.
const FIRST_ACCOUNT_NUMBER: u64 = 100_001;
/// Message ids are 18-digit snowflakes (`356139161272397824` in InnoPaaS's examples): milliseconds
/// since this epoch (2020-01-01) shifted over 22 random bits.
const SNOWFLAKE_EPOCH_MS: i64 = 1_577_836_800_000;

/// The InnoPaaS response envelope: `code` is a string, `data` null on errors.
#[derive(Serialize)]
struct Envelope<'a, D: Serialize> {
    code: &'a str,
    success: bool,
    message: &'a str,
    data: D,
}

fn envelope_bytes<D: Serialize>(envelope: &Envelope<'_, D>) -> Vec<u8> {
    // Serializing these plain structs cannot fail; an empty body would still be visibly wrong.
    serde_json::to_vec(envelope).unwrap_or_default()
}

fn success<D: Serialize>(data: D) -> HttpResponse {
    let body = envelope_bytes(&Envelope { code: "0", success: true, message: "Success", data });
    HttpResponse::Ok().content_type("application/json").body(body)
}

/// An answer in InnoPaaS's error envelope. InnoPaaS's own codes come with HTTP 200.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct InnopaasError {
    http_status: StatusCode,
    code: Cow<'static, str>,
    message: Cow<'static, str>,
}

impl InnopaasError {
    fn code(code: &'static str, message: impl Into<Cow<'static, str>>) -> InnopaasError {
        InnopaasError { http_status: StatusCode::OK, code: code.into(), message: message.into() }
    }

    /// A missing, empty or ill-typed parameter.
    fn invalid(message: impl Into<Cow<'static, str>>) -> InnopaasError {
        InnopaasError::code("400", message)
    }

    fn envelope(&self) -> Vec<u8> {
        envelope_bytes(&Envelope { code: &self.code, success: false, message: &self.message, data: Value::Null })
    }

    fn response(&self) -> HttpResponse {
        HttpResponse::build(self.http_status).content_type("application/json").body(self.envelope())
    }
}

/// The messages of the codes PROVIDERS.md §2.5 lists.
fn documented_message(code: u32) -> Option<&'static str> {
    Some(match code {
        101 => "Account does not exist",
        102 => "Authentication failed",
        105 => "uid exceeds 32 characters",
        106 => "Content exceeds 3000 characters",
        108 => "Phone number format error",
        109 => "Phone number count error",
        110 => "Insufficient balance",
        112 => "Product configuration error",
        114 => "Client IP not allowed",
        115 => "No permission",
        118 => "Send number does not exist",
        _ => return None,
    })
}

/// The default answer of an InnoPaaS fault with this `status` and no `body`: an InnoPaaS code
/// (100–199, the range of its custom codes, never a final HTTP status) as HTTP 200 with that code;
/// any other status as itself, with the status as the code.
pub(crate) fn fault_answer(status: u32) -> (StatusCode, Vec<u8>) {
    let error = if (100..200).contains(&status) {
        let message = documented_message(status).unwrap_or("Error");
        InnopaasError { http_status: StatusCode::OK, code: status.to_string().into(), message: message.into() }
    } else {
        let http_status = status_code(status);
        let message = http_status.canonical_reason().unwrap_or("Error");
        InnopaasError { http_status, code: status.to_string().into(), message: message.into() }
    };
    (error.http_status, error.envelope())
}

/// One phone number of phoneInfo.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct PhoneInfo {
    id: String,
    display_phone_number: &'static str,
    verified_name: &'static str,
    status: &'static str,
    quality_rating: &'static str,
    message_limit: &'static str,
}

/// `whatsapp_message_status_updated` (PROVIDERS.md §2.6).
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusEvent<'a> {
    id: String,
    #[serde(rename = "type")]
    kind: &'static str,
    event_time: String,
    body: StatusBody<'a>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct StatusBody<'a> {
    id: &'a str,
    account_name: &'a str,
    waba_id: &'a str,
    status: &'static str,
    wamid: &'a str,
    send_phone: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    uid: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    conversation: Option<Conversation>,
    /// On `failed`: Meta's code (a string, as InnoPaaS sends it) and message.
    #[serde(skip_serializing_if = "Option::is_none")]
    error_data: Option<ErrorData>,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct ErrorData {
    error_code: String,
    error_message: &'static str,
}

#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
struct Conversation {
    id: String,
    initiate_type: &'static str,
    expire_at: String,
}

/// The answer to a POST whose body is not sent as JSON: InnoPaaS's field error.
pub(crate) fn not_json_answer() -> HttpResponse {
    InnopaasError {
        http_status: StatusCode::OK,
        code: "400".into(),
        message: "the body must be JSON (Content-Type: application/json;charset=utf-8)".into(),
    }
    .response()
}

/// The InnoPaaS stand-in: its credentials and where its webhooks go.
pub(crate) struct Innopaas {
    /// (AppKey, token) pairs.
    credentials: Vec<(String, String)>,
    /// Offsets after acceptance of the `delivered` and `read` webhooks.
    delays: [Duration; 2],
    webhooks: Option<CallbackQueue>,
    /// What each accepted submit was, for the webhooks `/_sandbox/callbacks` asks for.
    sent: Mutex<HashMap<String, Sent>>,
    /// The templates `template/submit` accepted.
    templates: templates::Templates,
    /// Template sends are checked against `templates`.
    strict: bool,
}

#[derive(Debug, Clone)]
struct Sent {
    lane: usize,
    waba_id: String,
    recipient: String,
    uid: Option<String>,
}

/// What a validated send holds that the answer and the webhooks need.
struct Send<'a> {
    waba_id: &'a str,
    uid: Option<&'a str>,
    recipients: Vec<&'a str>,
}

impl Innopaas {
    pub(crate) fn new(
        credentials: Vec<(String, String)>,
        delays: [Duration; 2],
        webhooks: Option<CallbackQueue>,
    ) -> Innopaas {
        Innopaas {
            credentials,
            delays,
            webhooks,
            sent: Mutex::new(HashMap::new()),
            templates: templates::Templates::default(),
            strict: false,
        }
    }

    pub(crate) fn with_strict(mut self, strict: bool) -> Innopaas {
        self.strict = strict;
        self
    }

    /// Answers a request to an InnoPaaS path (already recorded and past the fault book).
    pub(crate) fn handle(&self, req: &HttpRequest, body: &RequestBody, recipients: &Recipients) -> HttpResponse {
        let path = req.path();
        let known = [SUBMIT_PATH, MMLITE_SUBMIT_PATH, PHONE_INFO_PATH, TEMPLATE_SUBMIT_PATH].contains(&path);
        let outcome = if !known {
            Err(InnopaasError { http_status: StatusCode::NOT_FOUND, code: "404".into(), message: "Not Found".into() })
        } else if req.method() != Method::POST {
            Err(InnopaasError {
                http_status: StatusCode::METHOD_NOT_ALLOWED,
                code: "405".into(),
                message: format!("Request method '{}' is not supported", req.method()).into(),
            })
        } else {
            self.authenticate(req).and_then(|lane| match path {
                PHONE_INFO_PATH => phone_info(lane, body),
                TEMPLATE_SUBMIT_PATH => {
                    let fields = template_submit(body)?;
                    self.templates.remember(fields);
                    Ok(success(snowflake()))
                }
                _ => self.submit(lane, path == MMLITE_SUBMIT_PATH, body, recipients),
            })
        };
        outcome.unwrap_or_else(|error| error.response())
    }

    /// The index of the presented (AppKey, token) pair. The token goes as it is, with no `Bearer`.
    fn authenticate(&self, req: &HttpRequest) -> Result<usize, InnopaasError> {
        let header = |name: &str| req.headers().get(name).and_then(|v| v.to_str().ok());
        let (app_key, token) = (header("AppKey"), header("Authorization"));
        self.credentials
            .iter()
            .position(|(key, known_token)| Some(key.as_str()) == app_key && Some(known_token.as_str()) == token)
            .ok_or_else(|| {
                let message = match app_key {
                    None => "Authentication failed: the AppKey header is missing",
                    Some(key) if !self.credentials.iter().any(|(known, _)| known == key) => {
                        "Authentication failed: unknown AppKey"
                    }
                    Some(_) => "Authentication failed: the Authorization token does not match the AppKey",
                };
                InnopaasError::code("102", message)
            })
    }

    fn submit(
        &self,
        lane: usize,
        mmlite: bool,
        body: &RequestBody,
        recipients: &Recipients,
    ) -> Result<HttpResponse, InnopaasError> {
        let fields = json_object(body)?;
        let send = validate_submit(fields, mmlite)?;
        if self.strict && fields.get("messageType").and_then(Value::as_str) == Some("template") {
            self.templates.check_send(fields)?;
        }
        let message_id = snowflake();
        let sent = Sent {
            lane,
            waba_id: send.waba_id.to_owned(),
            recipient: send.recipients.first().map(|r| (*r).to_owned()).unwrap_or_default(),
            uid: send.uid.map(str::to_owned),
        };
        lock(&self.sent).insert(message_id.clone(), sent);
        if let Some(webhooks) = &self.webhooks {
            let account_name = account_name(lane);
            for recipient in &send.recipients {
                let message_type = fields.get("messageType").and_then(Value::as_str).unwrap_or("");
                let behaviour = recipients.get(recipient, RecipientChannel::Whatsapp).for_send(message_type);
                if behaviour != Behaviour::NoReceipts {
                    webhooks.enqueue(self.status_events(&message_id, &account_name, &send, recipient, behaviour));
                }
            }
        }
        tracing::debug!(%message_id, recipients = send.recipients.len(), mmlite, "InnoPaaS message accepted");
        Ok(success(message_id))
    }

    /// `delivered` (with the conversation it opened) then `read`, at their offsets after now.
    fn status_events(
        &self,
        message_id: &str,
        account_name: &str,
        send: &Send<'_>,
        recipient: &str,
        behaviour: Behaviour,
    ) -> CallbackJob {
        let accepted = Instant::now();
        let accepted_at = Utc::now();
        let wamid = wamid(recipient);
        let statuses: &[(&'static str, Duration)] = match behaviour {
            Behaviour::Undeliverable | Behaviour::OutsideWindow => &[("failed", self.delays[0])],
            Behaviour::Normal | Behaviour::NoReceipts => &[("delivered", self.delays[0]), ("read", self.delays[1])],
        };
        let callbacks = statuses
            .iter()
            .copied()
            .map(|(status, delay)| {
                let at = accepted_at + chrono::TimeDelta::from_std(delay).unwrap_or_default();
                let conversation = (status == "delivered").then(|| Conversation {
                    id: uuid::Uuid::new_v4().simple().to_string(),
                    initiate_type: "business_initiated",
                    expire_at: (at + CONVERSATION_WINDOW).format("%Y-%m-%d %H:%M:%S").to_string(),
                });
                let event = StatusEvent {
                    id: uuid::Uuid::new_v4().to_string(),
                    kind: "whatsapp_message_status_updated",
                    event_time: rfc3339_millis(at),
                    body: StatusBody {
                        id: message_id,
                        account_name,
                        waba_id: send.waba_id,
                        status,
                        wamid: &wamid,
                        send_phone: recipient,
                        uid: send.uid,
                        conversation,
                        error_data: behaviour
                            .failure(RecipientChannel::Whatsapp)
                            .filter(|_| status == "failed")
                            .map(|(code, title)| ErrorData { error_code: code.to_string(), error_message: title }),
                    },
                };
                // Serializing these plain structs cannot fail; an empty body would still be visibly wrong.
                let body = serde_json::to_vec(&event).unwrap_or_default();
                Callback { due: accepted + delay, status, body }
            })
            .collect();
        CallbackJob { message_id: message_id.to_owned(), callbacks }
    }
}

impl Innopaas {
    /// Posts, now, the webhook an `/_sandbox/callbacks` request names (see `crate::emit`).
    pub(crate) fn emit(&self, emit: Emit) -> Result<Value, Refusal> {
        let webhooks = self.webhooks.as_ref().ok_or_else(|| emit::no_callback_url(crate::Provider::Innopaas))?;
        let now = Utc::now();
        let (key, status, event) = match emit {
            Emit::Failed { message_id, code, title, .. } => {
                let sent = lock(&self.sent)
                    .get(&message_id)
                    .cloned()
                    .ok_or_else(|| emit::not_found("message", &message_id))?;
                // InnoPaaS sends Meta's code as a string.
                let code = code.as_str().map_or_else(|| code.to_string(), str::to_owned);
                let mut body = json!({"id": message_id, "accountName": account_name(sent.lane), "wabaId": sent.waba_id,
                    "status": "failed", "wamid": wamid(&sent.recipient), "sendPhone": sent.recipient,
                    "errorData": {"errorCode": code, "errorMessage": title.unwrap_or_else(|| "Message failed".into())}});
                if let (Some(uid), Value::Object(b)) = (sent.uid, &mut body) {
                    b.insert("uid".into(), uid.into());
                }
                (
                    message_id,
                    "failed",
                    json!({"id": uuid::Uuid::new_v4().to_string(),
                    "type": "whatsapp_message_status_updated", "eventTime": rfc3339_millis(now), "body": body}),
                )
            }
            Emit::Inbound { from, number, message, context_message_id, waba_id, to, .. } => {
                let (Some(waba_id), Some(to)) = (waba_id, to) else {
                    return Err(emit::bad("waba_id and to (the business number) are required for innopaas"));
                };
                let mut body = Map::new();
                let id = snowflake();
                for (k, v) in [
                    ("id", Value::from(id.clone())),
                    ("accountName", account_name(number).into()),
                    ("wabaId", waba_id.into()),
                    ("wamid", wamid(&from).into()),
                    ("from", from.clone().into()),
                    ("to", to.clone().into()),
                    ("sendTime", now.format("%Y-%m-%d %H:%M:%S").to_string().into()),
                    ("customerProfile", json!({"name": "Sandbox User"})),
                ] {
                    body.insert(k.into(), v);
                }
                body.extend(message.unwrap_or_else(emit::default_message));
                if let Some(replied) = context_message_id {
                    body.insert("context".into(), json!({"from": to, "id": replied}));
                }
                (
                    id,
                    "inbound",
                    json!({"id": uuid::Uuid::new_v4().to_string(), "type": "whatsapp_mo_message_received",
                    "eventTime": rfc3339_millis(now), "body": body}),
                )
            }
            Emit::MessageCreated { .. } | Emit::MessageStatusUpdated { .. } | Emit::TemplateUpdate { .. } => {
                return Err(emit::bad("event: InnoPaaS has no such webhook (INCS only)"));
            }
        };
        let bytes = serde_json::to_vec(&event).unwrap_or_default();
        webhooks.enqueue(CallbackJob {
            message_id: key,
            callbacks: vec![Callback { due: Instant::now(), status, body: bytes }],
        });
        Ok(event)
    }
}

fn account_name(lane: usize) -> String {
    format!("IW{}", FIRST_ACCOUNT_NUMBER + u64::try_from(lane).unwrap_or(0))
}

fn rfc3339_millis(at: DateTime<Utc>) -> String {
    at.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// An 18- or 19-digit id that sorts by time, like InnoPaaS's message ids.
fn snowflake() -> String {
    let ms = u64::try_from(Utc::now().timestamp_millis() - SNOWFLAKE_EPOCH_MS).unwrap_or(0);
    let random: u32 = rand::random();
    ((ms << 22) | u64::from(random & 0x3F_FFFF)).to_string()
}

fn phone_info(lane: usize, body: &RequestBody) -> Result<HttpResponse, InnopaasError> {
    let fields = json_object(body)?;
    required_str(fields, "wabaId")?;
    let lane = u64::try_from(lane).unwrap_or(0);
    Ok(success([PhoneInfo {
        id: (FIRST_PHONE_NUMBER_ID + lane).to_string(),
        display_phone_number: "+852 3001 2345",
        verified_name: "Sandbox Business",
        status: "CONNECTED",
        quality_rating: "GREEN",
        message_limit: "TIER_250",
    }]))
}

/// The checked body of a `template/submit`.
fn template_submit(body: &RequestBody) -> Result<&Map<String, Value>, InnopaasError> {
    let fields = json_object(body)?;
    required_str(fields, "wabaId")?;
    let name = required_str(fields, "name")?;
    let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
    if name.chars().count() > MAX_TEMPLATE_NAME || !name.chars().all(name_ok) {
        return Err(InnopaasError::invalid(format!(
            "name may have at most {MAX_TEMPLATE_NAME} lowercase letters, digits and underscores"
        )));
    }
    number_in(fields, "category", 1..=3, true)?;
    required_str(fields, "messageLanguage")?;
    number_in(fields, "headerType", 1..=5, false)?;
    optional_str(fields, "caption")?;
    let body = required_str(fields, "messageBody")?;
    if body.chars().count() > MAX_TEMPLATE_BODY {
        return Err(InnopaasError::invalid(format!("messageBody may have at most {MAX_TEMPLATE_BODY} characters")));
    }
    if optional_str(fields, "footer")?.is_some_and(|f| f.chars().count() > MAX_TEMPLATE_FOOTER) {
        return Err(InnopaasError::invalid(format!("footer may have at most {MAX_TEMPLATE_FOOTER} characters")));
    }
    number_in(fields, "safetyAdvice", 0..=1, false)?;
    let buttons = optional_array(fields, "buttons")?;
    if buttons.len() > MAX_TEMPLATE_BUTTONS {
        return Err(InnopaasError::invalid(format!("at most {MAX_TEMPLATE_BUTTONS} buttons")));
    }
    for (i, button) in buttons.iter().enumerate() {
        let button = object(button, &format!("buttons[{i}]"))?;
        let at = format!("buttons[{i}].");
        number_in(button, "actionType", 1..=5, true).map_err(|e| prefixed(e, &at))?;
        required_str(button, "label").map_err(|e| prefixed(e, &at))?;
        // A website button (2) carries its URL, and a full example when the URL has a variable.
        if button.get("actionType").and_then(Value::as_u64) == Some(2) {
            let url = required_str(button, "targetUrl").map_err(|e| prefixed(e, &at))?;
            if !(url.starts_with("https://") || url.starts_with("http://")) {
                return Err(InnopaasError::invalid(format!("{at}targetUrl must be an http(s) URL")));
            }
            let examples = optional_array(button, "buttonExample").map_err(|e| prefixed(e, &at))?;
            if url.contains("{{") && examples.len() != 1 {
                return Err(InnopaasError::invalid(format!("{at}buttonExample: one full URL for the variable")));
            }
        } else if button.contains_key("targetUrl") {
            return Err(InnopaasError::invalid(format!("{at}targetUrl is for website buttons (actionType 2)")));
        }
        // A call button (3) carries its number as §2.4 lists it: the country calling code in
        // `phoneArea` and the national number in `phone`, digits only.
        if button.get("actionType").and_then(Value::as_u64) == Some(3) {
            for (field, digits) in [("phoneArea", 1..=3), ("phone", 4..=14)] {
                let value = required_str(button, field).map_err(|e| prefixed(e, &at))?;
                if !digits.contains(&value.len()) || !value.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(InnopaasError::invalid(format!(
                        "{at}{field} must be {} to {} digits",
                        digits.start(),
                        digits.end()
                    )));
                }
            }
        }
    }
    if let Some(example) = fields.get("headerExample") {
        let example = object(example, "headerExample")?;
        if !(example.contains_key("header_text") || example.contains_key("header_handle")) {
            return Err(InnopaasError::invalid("headerExample needs header_text or header_handle"));
        }
    }
    if let Some(example) = fields.get("bodyExample") {
        let rows = object(example, "bodyExample")?.get("body_text").and_then(Value::as_array);
        if !rows.is_some_and(|r| r.iter().all(Value::is_array)) {
            return Err(InnopaasError::invalid("bodyExample.body_text must be a list of rows"));
        }
    }
    Ok(fields)
}

/// Checks a msg/submit (or MMLite) body the way seeds/004 describes it.
fn validate_submit(fields: &Map<String, Value>, mmlite: bool) -> Result<Send<'_>, InnopaasError> {
    let waba_id = required_str(fields, "wabaId")?;
    let message_type = required_str(fields, "messageType")?;
    if !MESSAGE_TYPES.contains(&message_type) {
        return Err(InnopaasError::invalid(format!("messageType must be one of {}", MESSAGE_TYPES.join(", "))));
    }
    if mmlite && message_type != "template" {
        return Err(InnopaasError::invalid("MMLite sends marketing templates only: messageType must be template"));
    }
    let send_number = required_str(fields, "sendNumber")?;
    if !is_phone_number(send_number) {
        return Err(InnopaasError::code("108", "Phone number format error: sendNumber"));
    }
    let recipients: Vec<&str> = required_str(fields, "recipientNumber")?.split(',').map(str::trim).collect();
    if recipients.len() > MAX_RECIPIENTS {
        return Err(InnopaasError::code(
            "109",
            format!("Phone number count error: at most {MAX_RECIPIENTS} recipients"),
        ));
    }
    if let Some(bad) = recipients.iter().find(|r| !is_phone_number(r)) {
        return Err(InnopaasError::code("108", format!("Phone number format error: recipientNumber `{bad}`")));
    }
    let uid = optional_str(fields, "uid")?;
    if uid.is_some_and(|u| u.chars().count() > MAX_UID_CHARS) {
        return Err(InnopaasError::code("105", format!("uid exceeds {MAX_UID_CHARS} characters")));
    }
    match message_type {
        "text" => {
            let body = required_str(fields, "body")?;
            if body.chars().count() > MAX_CONTENT_CHARS {
                return Err(InnopaasError::code("106", format!("Content exceeds {MAX_CONTENT_CHARS} characters")));
            }
        }
        "template" => validate_template(fields)?,
        "image" | "video" | "audio" | "document" | "sticker" => validate_media(fields, message_type)?,
        "location" => {
            let location = required_object(fields, "location")?;
            for coordinate in ["latitude", "longitude"] {
                let value = required_str(location, coordinate).map_err(|e| prefixed(e, "location."))?;
                if value.trim().parse::<f64>().is_err() {
                    return Err(InnopaasError::invalid(format!("location.{coordinate} must be a decimal number")));
                }
            }
            optional_str(location, "name").map_err(|e| prefixed(e, "location."))?;
            optional_str(location, "address").map_err(|e| prefixed(e, "location."))?;
        }
        "contacts" => {
            let contacts = optional_array(fields, "contacts")?;
            if contacts.is_empty() {
                return Err(InnopaasError::invalid("contacts is required"));
            }
            for (i, contact) in contacts.iter().enumerate() {
                let name = required_object(object(contact, &format!("contacts[{i}]"))?, "name")
                    .map_err(|e| prefixed(e, &format!("contacts[{i}].")))?;
                required_str(name, "formattedName").map_err(|e| prefixed(e, &format!("contacts[{i}].name.")))?;
            }
        }
        _ => validate_interactive(required_object(fields, "interactive")?)?,
    }
    Ok(Send { waba_id, uid, recipients })
}

fn validate_template(fields: &Map<String, Value>) -> Result<(), InnopaasError> {
    required_str(fields, "templateName")?;
    required_str(fields, "language")?;
    if let Some(header) = fields.get("header").filter(|h| !h.is_null()) {
        let header = object(header, "header")?;
        let kind = required_str(header, "type").map_err(|e| prefixed(e, "header."))?;
        match kind {
            "text" => {}
            "image" | "video" | "document" => {
                required_link(header).map_err(|e| prefixed(e, "header."))?;
            }
            _ => return Err(InnopaasError::invalid("header.type must be one of text, image, video, document")),
        }
    }
    for (i, param) in optional_array(fields, "bodyParams")?.iter().enumerate() {
        if !param.is_string() {
            return Err(InnopaasError::invalid(format!("bodyParams[{i}] must be a string")));
        }
    }
    for (i, param) in optional_array(fields, "buttonParams")?.iter().enumerate() {
        let param = object(param, &format!("buttonParams[{i}]"))?;
        required_str(param, "type").map_err(|e| prefixed(e, &format!("buttonParams[{i}].")))?;
        required_str(param, "value").map_err(|e| prefixed(e, &format!("buttonParams[{i}].")))?;
    }
    Ok(())
}

fn validate_media(fields: &Map<String, Value>, message_type: &str) -> Result<(), InnopaasError> {
    let media = required_object(fields, "media")?;
    required_link(media).map_err(|e| prefixed(e, "media."))?;
    let caption = optional_str(media, "caption").map_err(|e| prefixed(e, "media."))?;
    if caption.is_some() && matches!(message_type, "audio" | "sticker") {
        return Err(InnopaasError::invalid(format!("media.caption is not allowed when messageType is {message_type}")));
    }
    if message_type == "document" {
        required_str(media, "filename").map_err(|e| prefixed(e, "media."))?;
    }
    Ok(())
}

fn validate_interactive(interactive: &Map<String, Value>) -> Result<(), InnopaasError> {
    const KINDS: [&str; 4] = ["list", "button", "product", "product_list"];
    let at = |e| prefixed(e, "interactive.");
    let kind = required_str(interactive, "type").map_err(at)?;
    if !KINDS.contains(&kind) {
        return Err(InnopaasError::invalid(format!("interactive.type must be one of {}", KINDS.join(", "))));
    }
    let header = interactive.get("header").filter(|h| !h.is_null());
    match (kind, header) {
        ("product", Some(_)) => return Err(InnopaasError::invalid("interactive.header is not allowed for product")),
        ("product_list", None) => {
            return Err(InnopaasError::invalid("interactive.header is required for product_list"))
        }
        (_, Some(header)) => {
            let header = object(header, "interactive.header")?;
            match required_str(header, "type").map_err(|e| prefixed(e, "interactive.header."))? {
                "text" => {}
                "image" | "video" | "document" => {
                    required_link(header).map_err(|e| prefixed(e, "interactive.header."))?;
                }
                _ => {
                    return Err(InnopaasError::invalid(
                        "interactive.header.type must be one of text, image, video, document",
                    ))
                }
            }
        }
        _ => {}
    }
    if kind != "product" {
        let body = required_object(interactive, "body").map_err(at)?;
        required_str(body, "text").map_err(|e| prefixed(e, "interactive.body."))?;
    }
    let action = required_object(interactive, "action").map_err(at)?;
    let at_action = |e| prefixed(e, "interactive.action.");
    match kind {
        "list" => {
            required_str(action, "button").map_err(at_action)?;
            let sections = optional_array(action, "sections").map_err(at_action)?;
            if sections.is_empty() {
                return Err(InnopaasError::invalid("interactive.action.sections is required"));
            }
            for (i, section) in sections.iter().enumerate() {
                let section = object(section, &format!("interactive.action.sections[{i}]"))?;
                let rows = optional_array(section, "rows").map_err(at_action)?;
                if rows.is_empty() {
                    return Err(InnopaasError::invalid(format!("interactive.action.sections[{i}].rows is required")));
                }
                for (j, row) in rows.iter().enumerate() {
                    let path = format!("interactive.action.sections[{i}].rows[{j}]");
                    let row = object(row, &path)?;
                    required_str(row, "id").map_err(|e| prefixed(e, &format!("{path}.")))?;
                    required_str(row, "title").map_err(|e| prefixed(e, &format!("{path}.")))?;
                }
            }
        }
        "button" => {
            let buttons = optional_array(action, "buttons").map_err(at_action)?;
            if buttons.is_empty() || buttons.len() > MAX_REPLY_BUTTONS {
                return Err(InnopaasError::invalid(format!(
                    "interactive.action.buttons must hold 1 to {MAX_REPLY_BUTTONS} buttons"
                )));
            }
            for (i, button) in buttons.iter().enumerate() {
                let path = format!("interactive.action.buttons[{i}]");
                let button = object(button, &path)?;
                if required_str(button, "type").map_err(|e| prefixed(e, &format!("{path}.")))? != "reply" {
                    return Err(InnopaasError::invalid(format!("{path}.type must be reply")));
                }
                required_str(button, "title").map_err(|e| prefixed(e, &format!("{path}.")))?;
                required_str(button, "id").map_err(|e| prefixed(e, &format!("{path}.")))?;
            }
        }
        "product" => {
            required_str(action, "catalogId").map_err(at_action)?;
            required_str(action, "productRetailerId").map_err(at_action)?;
        }
        _ => {
            required_str(action, "catalogId").map_err(at_action)?;
            let sections = optional_array(action, "sections").map_err(at_action)?;
            if sections.is_empty() {
                return Err(InnopaasError::invalid("interactive.action.sections is required"));
            }
            for (i, section) in sections.iter().enumerate() {
                let section = object(section, &format!("interactive.action.sections[{i}]"))?;
                if optional_array(section, "productItems").map_err(at_action)?.is_empty() {
                    return Err(InnopaasError::invalid(format!(
                        "interactive.action.sections[{i}].productItems is required"
                    )));
                }
            }
        }
    }
    Ok(())
}

/// Country code and number, digits only; E.164 allows at most 15 digits.
fn is_phone_number(number: &str) -> bool {
    (8..=15).contains(&number.len()) && number.bytes().all(|b| b.is_ascii_digit())
}

fn json_object(body: &RequestBody) -> Result<&Map<String, Value>, InnopaasError> {
    match body {
        RequestBody::Json(Value::Object(fields)) => Ok(fields),
        _ => Err(InnopaasError::invalid("The request body must be a JSON object")),
    }
}

fn object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, InnopaasError> {
    value.as_object().ok_or_else(|| InnopaasError::invalid(format!("{path} must be an object")))
}

fn required_object<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a Map<String, Value>, InnopaasError> {
    match fields.get(name) {
        None | Some(Value::Null) => Err(InnopaasError::invalid(format!("{name} is required"))),
        Some(value) => object(value, name),
    }
}

fn required_str<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a str, InnopaasError> {
    match optional_str(fields, name)? {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(InnopaasError::invalid(format!("{name} is required"))),
    }
}

fn optional_str<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, InnopaasError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(InnopaasError::invalid(format!("{name} must be a string"))),
    }
}

fn optional_array<'a>(fields: &'a Map<String, Value>, name: &str) -> Result<&'a [Value], InnopaasError> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(&[]),
        Some(Value::Array(values)) => Ok(values),
        Some(_) => Err(InnopaasError::invalid(format!("{name} must be an array"))),
    }
}

fn number_in(
    fields: &Map<String, Value>,
    name: &str,
    range: std::ops::RangeInclusive<u64>,
    required: bool,
) -> Result<(), InnopaasError> {
    let out_of_range = || {
        let mut message = format!("{name} must be an integer from {} to {}", range.start(), range.end());
        if required {
            let _ = write!(message, " and is required");
        }
        InnopaasError::invalid(message)
    };
    match fields.get(name) {
        None | Some(Value::Null) if !required => Ok(()),
        Some(Value::Number(n)) if n.as_u64().is_some_and(|n| range.contains(&n)) => Ok(()),
        _ => Err(out_of_range()),
    }
}

/// A media object's `link`: a public http(s) URL.
fn required_link(fields: &Map<String, Value>) -> Result<(), InnopaasError> {
    let link = required_str(fields, "link")?;
    if !(link.starts_with("https://") || link.starts_with("http://")) {
        return Err(InnopaasError::invalid("link must be a public http(s) URL"));
    }
    Ok(())
}

/// Puts the parent's path in front of a field name in a parameter error.
fn prefixed(mut error: InnopaasError, parent: &str) -> InnopaasError {
    if error.code == "400" {
        error.message = format!("{parent}{}", error.message).into();
    }
    error
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn submit(value: Value) -> Result<Vec<String>, (String, String)> {
        let body = RequestBody::Json(value);
        let fields = json_object(&body).map_err(|e| (e.code.to_string(), e.message.to_string()))?;
        validate_submit(fields, false)
            .map(|send| send.recipients.iter().map(|r| r.to_string()).collect())
            .map_err(|e| (e.code.to_string(), e.message.to_string()))
    }

    fn base(message_type: &str, extra: Value) -> Value {
        let mut body = json!({"wabaId": "104417182520443", "messageType": message_type, "uid": "u1",
            "sendNumber": "85230012345", "recipientNumber": "85268411234"});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        body
    }

    fn refused(value: Value) -> (String, String) {
        submit(value.clone()).expect_err(&value.to_string())
    }

    #[test]
    fn required_fields_and_phone_numbers_are_checked() {
        assert_eq!(submit(base("text", json!({"body": "Hi"}))), Ok(vec!["85268411234".to_string()]));
        let mut missing = base("text", json!({"body": "Hi"}));
        missing.as_object_mut().unwrap().remove("wabaId");
        assert_eq!(refused(missing), ("400".into(), "wabaId is required".into()));
        assert_eq!(refused(base("fax", json!({}))).0, "400");
        assert_eq!(refused(base("text", json!({"sendNumber": "+85230012345", "body": "Hi"}))).0, "108");
        assert_eq!(refused(base("text", json!({"recipientNumber": "852-6841", "body": "Hi"}))).0, "108");
        let many = vec!["85268411234"; 1001].join(",");
        assert_eq!(refused(base("text", json!({"recipientNumber": many, "body": "Hi"}))).0, "109");
        assert_eq!(
            submit(base("text", json!({"recipientNumber": "85268411234, 85268411235", "body": "Hi"}))).unwrap().len(),
            2
        );
        assert_eq!(refused(base("text", json!({"uid": "x".repeat(33), "body": "Hi"}))).0, "105");
        assert_eq!(refused(base("text", json!({}))), ("400".into(), "body is required".into()));
        assert_eq!(refused(base("text", json!({"body": "x".repeat(3001)}))).0, "106");
    }

    #[test]
    fn each_message_type_needs_its_fields() {
        let cases = [
            (base("template", json!({"language": "en"})), "templateName is required"),
            (base("template", json!({"templateName": "t"})), "language is required"),
            (
                base("template", json!({"templateName": "t", "language": "en", "header": {"type": "image"}})),
                "header.link is required",
            ),
            (base("template", json!({"templateName": "t", "language": "en", "bodyParams": [1]})), "bodyParams[0]"),
            (
                base("template", json!({"templateName": "t", "language": "en", "buttonParams": [{"type": "text"}]})),
                "buttonParams[0].value is required",
            ),
            (base("image", json!({"media": {}})), "media.link is required"),
            (base("image", json!({"media": {"link": "ftp://x"}})), "http(s)"),
            (base("audio", json!({"media": {"link": "https://a.io/a.mp3", "caption": "c"}})), "caption is not allowed"),
            (base("document", json!({"media": {"link": "https://a.io/d.pdf"}})), "media.filename is required"),
            (base("location", json!({"location": {"latitude": 1.5, "longitude": "2"}})), "must be a string"),
            (base("location", json!({"location": {"latitude": "north", "longitude": "2"}})), "decimal number"),
            (base("contacts", json!({"contacts": [{"name": {}}]})), "contacts[0].name.formattedName is required"),
            (base("interactive", json!({"interactive": {"type": "cta_url"}})), "interactive.type must be one of"),
            (
                base(
                    "interactive",
                    json!({"interactive": {"type": "button", "body": {"text": "b"}, "action": {"buttons": [
                    {"type": "reply", "reply": {"id": "a", "title": "A"}}]}}}),
                ),
                "interactive.action.buttons[0].title is required",
            ),
            (
                base(
                    "interactive",
                    json!({"interactive": {"type": "product", "header": {"type": "text"},
                    "action": {"catalogId": "c", "productRetailerId": "p"}}}),
                ),
                "header is not allowed",
            ),
            (
                base(
                    "interactive",
                    json!({"interactive": {"type": "product_list", "body": {"text": "b"},
                    "action": {"catalogId": "c", "sections": [{"productItems": [{"productRetailerId": "p"}]}]}}}),
                ),
                "header is required",
            ),
            (
                base(
                    "interactive",
                    json!({"interactive": {"type": "list", "body": {"text": "b"},
                    "action": {"button": "Go", "sections": [{"title": "S", "rows": []}]}}}),
                ),
                "sections[0].rows is required",
            ),
        ];
        for (body, reason) in cases {
            let (code, message) = refused(body.clone());
            assert_eq!(code, "400", "{body}");
            assert!(message.contains(reason), "{body}: {message}");
        }
        let accepted = [
            base(
                "template",
                json!({"templateName": "t", "language": "en", "header": {"type": "text", "paramValue": "x"},
                "bodyParams": ["a"], "buttonParams": [{"type": "text", "value": "b"}]}),
            ),
            base("sticker", json!({"media": {"link": "https://a.io/s.webp"}})),
            base("location", json!({"location": {"latitude": "31.23593", "longitude": "121.47367"}})),
            base(
                "interactive",
                json!({"interactive": {"type": "product",
                "action": {"catalogId": "c", "productRetailerId": "p"}}}),
            ),
        ];
        for body in accepted {
            assert!(submit(body.clone()).is_ok(), "{body}");
        }
    }

    #[test]
    fn mmlite_takes_templates_only() {
        let body = RequestBody::Json(base("text", json!({"body": "Hi"})));
        let error = validate_submit(json_object(&body).unwrap(), true).err().expect("refused");
        assert!(error.message.contains("MMLite"), "{error:?}");
    }

    #[test]
    fn fault_answers_use_the_envelope() {
        let (status, body) = fault_answer(500);
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            String::from_utf8(body).unwrap(),
            r#"{"code":"500","success":false,"message":"Internal Server Error","data":null}"#
        );
        let (status, body) = fault_answer(110);
        assert_eq!(status, StatusCode::OK);
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(body, json!({"code": "110", "success": false, "message": "Insufficient balance", "data": null}));
    }

    #[test]
    fn ids_look_like_innopaas_ids() {
        let id = snowflake();
        assert!((18..=19).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_digit()), "{id}");
        assert_eq!(account_name(0), "IW100001");
    }
}
