//! `POST /v1/messages`, `GET /v1/messages/{id}`.

use std::collections::BTreeMap;
use std::time::Duration;

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::content::ContentType;
use gateway_core::fallback::Step;
use gateway_core::request::SendRequest;
use gateway_core::validate::{FieldErrors, Path};
use gateway_core::{Channel, MessageId, MessageStatus, Priority};
use serde::Serialize;
use utoipa::ToSchema;

use super::idempotency::{self, Begin, Stored};
use super::{read_body, AppState};
use crate::config::Scope;
use crate::engine::record::{
    ms_to_time, AttemptRecord, ChainLink, ChainState, ErrorRecord, MessageRecord, StoredMessage, StoredMessageV1,
    StoredMessageV2, StoredStep,
};
use crate::engine::{CancelOutcome, StoreError};
use crate::http::auth::Caller;
use crate::http::problem::{from_json_error, ApiError};

/// A message and everything known about it.
#[derive(Debug, Serialize, ToSchema)]
pub struct MessageOut {
    /// Gateway id (UUIDv7, time-sortable).
    #[schema(value_type = String, example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f")]
    pub id: String,
    pub channel: Channel,
    #[schema(example = "85268411234")]
    pub to: String,
    #[schema(example = "hk-main")]
    pub sender: String,
    #[serde(rename = "type")]
    pub kind: ContentType,
    pub status: MessageStatus,
    /// The provider that carries (or last tried) the message.
    #[schema(example = "incs")]
    pub provider: Option<String>,
    /// The provider account (lane) the message is queued on or was sent through.
    #[schema(example = "incs-whatsapp")]
    pub account: String,
    #[schema(example = "wamid.HBgLODUyNjg0MTUwMjYVAgARGBIyMUQ4RjA5MTY1NUJERjE3NjYA")]
    pub provider_message_id: Option<String>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    pub send_at: Option<DateTime<Utc>>,
    pub priority: Priority,
    /// The validity it was given, in seconds.
    #[schema(minimum = 1, maximum = 2592000)]
    pub ttl_seconds: Option<u32>,
    /// When its validity ends: not handed to a provider by then, it ends `expired`.
    pub expires_at: Option<DateTime<Utc>>,
    /// The campaign it came in (`POST /v1/messages/batch`).
    #[schema(example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e70")]
    pub batch_id: Option<String>,
    pub metadata: BTreeMap<String, String>,
    pub error: Option<ErrorOut>,
    pub history: Vec<HistoryOut>,
    pub attempts: Vec<AttemptOut>,
    /// A fallback step: the first message of its chain.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f")]
    pub parent_id: Option<String>,
    /// Its place in a fallback chain: 0 for the first message, `i + 1` for `fallback[i]`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub step: Option<u8>,
    /// The first message of a chain: every fallback step and where it is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fallback: Option<Vec<FallbackStepOut>>,
    /// The first message of a chain: the id of the first message of the chain that reached its
    /// `until` status (null while none has).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<String>)]
    pub outcome: Option<Option<String>>,
}

/// Where a fallback step is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum FallbackStepState {
    /// Not sent, and it still may be.
    Pending,
    /// Sent: it is a message of its own (`message_id`).
    Sent,
    /// Will not be sent: an earlier message reached its status, or the chain was cancelled.
    Skipped,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct FallbackStepOut {
    /// 1 for `fallback[0]`.
    pub step: u8,
    pub channel: Channel,
    #[schema(example = "viber-main")]
    pub sender: String,
    /// The step's message, once sent.
    pub message_id: Option<String>,
    pub state: FallbackStepState,
    /// Why it was sent: `failed`, `cancelled` (the step before ended so) or `timeout` (it did not
    /// reach `until` within `after_seconds`).
    pub reason: Option<String>,
    pub after_seconds: u32,
    pub until: MessageStatus,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ErrorOut {
    /// The provider's (or Meta's) error code.
    #[schema(example = "132012")]
    pub code: Option<String>,
    pub title: String,
    pub retryable: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HistoryOut {
    pub status: MessageStatus,
    pub at: DateTime<Utc>,
    /// Who reported it: `api`, a provider (`incs`, `innopaas`), or `gateway`.
    pub source: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AttemptOut {
    pub n: u32,
    pub provider: String,
    pub account: String,
    pub at: DateTime<Utc>,
    /// `submitted`, `rejected`, `rejected_account`, `throttled`, `throttled_recipient`, `transient`.
    pub outcome: String,
    pub http_status: Option<u16>,
    pub provider_code: Option<String>,
    pub latency_ms: u64,
}

impl From<ErrorRecord> for ErrorOut {
    fn from(e: ErrorRecord) -> Self {
        Self { code: e.code, title: e.title, retryable: e.retryable }
    }
}

impl From<AttemptRecord> for AttemptOut {
    fn from(a: AttemptRecord) -> Self {
        Self {
            n: a.n,
            provider: a.provider,
            account: a.account,
            at: a.at,
            outcome: a.outcome,
            http_status: a.http_status,
            provider_code: a.provider_code,
            latency_ms: a.latency_ms,
        }
    }
}

fn chain_out(m: &StoredMessageV1, state: Option<&ChainState>) -> Option<Vec<FallbackStepOut>> {
    if m.fallback.is_empty() {
        return None;
    }
    let steps = m.fallback.iter().enumerate().map(|(i, s)| {
        let sent = state.and_then(|c| c.sent.get(i).cloned().flatten());
        let done = state.is_some_and(|c| c.done);
        FallbackStepOut {
            step: u8::try_from(i + 1).unwrap_or(u8::MAX),
            channel: s.message.channel(),
            sender: s.sender.clone(),
            state: match (&sent, done) {
                (Some(_), _) => FallbackStepState::Sent,
                (None, true) => FallbackStepState::Skipped,
                (None, false) => FallbackStepState::Pending,
            },
            message_id: sent,
            reason: state.and_then(|c| c.reasons.get(i).cloned().flatten()),
            after_seconds: s.after_seconds,
            until: s.until,
        }
    });
    Some(steps.collect())
}

impl MessageOut {
    pub fn from_record(r: MessageRecord) -> Self {
        let fallback = chain_out(r.body.v1(), r.chain.as_ref());
        let outcome = fallback.as_ref().map(|_| r.chain.as_ref().and_then(|c| c.outcome.clone()));
        let (priority, ttl_seconds) = (r.body.priority(), r.body.ttl_seconds());
        let batch_id = r.body.batch_id().map(str::to_owned);
        let m = match r.body {
            StoredMessage::V1(m) => m,
            StoredMessage::V2(m) => m.base,
        };
        Self {
            parent_id: m.chain.as_ref().filter(|c| c.step > 0).map(|c| c.parent_id.to_string()),
            step: m.chain.as_ref().map(|c| c.step),
            fallback,
            outcome,
            id: m.id.to_string(),
            channel: m.message.channel(),
            to: m.message.to.to_string(),
            sender: m.sender,
            kind: m.message.content.content_type(),
            status: r.status,
            provider: r.provider,
            account: r.lane,
            provider_message_id: r.provider_message_id,
            created_at: ms_to_time(r.created_ms),
            updated_at: ms_to_time(r.updated_ms),
            send_at: m.message.send_at,
            priority,
            ttl_seconds,
            expires_at: r.expires_ms.map(ms_to_time),
            batch_id,
            metadata: m.message.metadata,
            error: r.error.map(Into::into),
            history: r
                .history
                .into_iter()
                .map(|h| HistoryOut { status: h.status, at: ms_to_time(h.at), source: h.source })
                .collect(),
            attempts: r.attempts.into_iter().map(Into::into).collect(),
        }
    }

    fn accepted(stored: StoredMessageV2, now_ms: i64) -> Self {
        let StoredMessageV2 { base: m, priority, ttl_seconds, batch_id, .. } = stored;
        let lane = m.lanes.first().cloned().unwrap_or_default();
        let fallback = chain_out(&m, None);
        let start_ms = m.message.send_at.map_or(now_ms, |t| t.timestamp_millis().max(now_ms));
        let expires_at = ttl_seconds.map(|s| ms_to_time(start_ms + i64::from(s) * 1000));
        Self {
            parent_id: None,
            step: m.chain.as_ref().map(|c| c.step),
            outcome: fallback.as_ref().map(|_| None),
            fallback,
            id: m.id.to_string(),
            channel: m.message.channel(),
            to: m.message.to.to_string(),
            sender: m.sender,
            kind: m.message.content.content_type(),
            status: MessageStatus::Queued,
            provider: None,
            account: lane,
            provider_message_id: None,
            created_at: ms_to_time(now_ms),
            updated_at: ms_to_time(now_ms),
            send_at: m.message.send_at,
            priority,
            ttl_seconds,
            expires_at,
            batch_id,
            metadata: m.message.metadata,
            error: None,
            history: vec![HistoryOut { status: MessageStatus::Queued, at: ms_to_time(now_ms), source: "api".into() }],
            attempts: Vec::new(),
        }
    }
}

/// Send a message.
///
/// Validates the request, routes it to a provider account, stores it durably and answers 202.
/// The message is then sent by the delivery engine; follow it with `GET /v1/messages/{id}`.
#[utoipa::path(post, path = "/v1/messages", operation_id = "v1.messages.send", tag = "messages",
    request_body(content = SendRequest, examples(
        ("text" = (summary = "A WhatsApp text", value = json!(
            {"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello", "metadata": {"order_id": "A-1001"}}))),
        ("template" = (summary = "A WhatsApp template with header and body parameters", value = json!(
            {"channel": "whatsapp", "to": "85268411234", "type": "template", "template": {"name": "order_update", "language": "en_US",
                "components": [
                    {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://static.example.com/header.png"}}]},
                    {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-1001"}]}]}}))),
        ("buttons" = (summary = "WhatsApp reply buttons", value = json!(
            {"channel": "whatsapp", "to": "85268411234", "type": "interactive", "interactive": {"type": "button",
                "body": {"text": "Confirm your booking?"},
                "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}, {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}}))),
        ("viber_otp" = (summary = "A Viber OTP", value = json!(
            {"channel": "viber", "to": "85268411234", "type": "otp", "otp": {"code": "123456", "language": "en", "code_expiration_minutes": 3}}))),
        ("rcs_template" = (summary = "An RCS template with its variables", value = json!(
            {"channel": "rcs", "to": "85268411234", "type": "template",
                "template": {"name": "test_button_reply_1", "parameters": {"username": "jack", "service_name": "promotion"}}}))),
    )),
    params(("Idempotency-Key" = Option<String>, Header, description = "Makes retries safe: the same key and body within 24 h get the original response again (with `Idempotent-Replayed: true`); another body with the same key is a 422; while the first is in progress, 409. Scoped to the API key.")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Accepted and stored; it will be sent", body = MessageOut,
            headers(("Location" = String, description = "The message's URL"))),
        (status = 409, description = "A request with this Idempotency-Key is still in progress", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 400, description = "Malformed JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed, or no provider can carry the message", body = crate::http::problem::Problem, content_type = "application/problem+json",
            example = json!({"type": "/problems/validation", "title": "Validation failed", "status": 422,
                "detail": "to: 8 to 15 digits with the country code, got 3",
                "errors": [{"field": "to", "reason": "8 to 15 digits with the country code, got 3"}]})),
        (status = 503, description = "Nothing was accepted: the message store is unavailable, nearly full (the memory guard), or this instance is at capacity, or (with `redis.wait_replicas`) its replicas did not confirm the message in time; retry after `Retry-After`", body = crate::http::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        crate::http::problem::SendRefusals,
    ))]
#[post("/v1/messages")]
pub async fn send(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Send)?;
    state.admit_send()?;
    let key = idempotency::key_of(&req)?;
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let Some(key) = key else {
        return accept(&state, &body).await.map(|s| s.into_response(false));
    };
    let fp = idempotency::fingerprint(&body);
    if let Begin::Replay(stored) = idempotency::begin(&state.engine, &caller.name, &key, &fp).await? {
        return Ok(stored.into_response(true));
    }
    match accept(&state, &body).await {
        Ok(stored) => {
            idempotency::finish(&state.engine, &caller.name, &key, &fp, Some(&stored)).await;
            Ok(stored.into_response(false))
        }
        Err(e) => {
            idempotency::finish(&state.engine, &caller.name, &key, &fp, Stored::from_error(&e).as_ref()).await;
            Err(e)
        }
    }
}

/// Parses a send request body into a message.
///
/// # Errors
/// 400/422 naming the field.
pub fn parse_request(body: &[u8]) -> Result<SendRequest, ApiError> {
    if body.iter().find(|b| !b.is_ascii_whitespace()).is_some_and(|b| *b != b'{') {
        return Err(ApiError::Validation(FieldErrors::single("body", "must be a JSON object")));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let request: SendRequest = serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    // Read twice: the typed read keeps its strictness (duplicate fields), the untyped one shows
    // the tags as written.
    let value: serde_json::Value = serde_json::from_slice(body).map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    gateway_core::request::tags_and_objects_as_written(&value).map_err(ApiError::Validation)?;
    Ok(request)
}

/// Validates, routes and stores one message; the 202 answer as it will be sent (and replayed).
///
/// # Errors
/// 4xx for the request's faults, 503 when the store is unavailable.
pub async fn accept_request(
    state: &AppState,
    request: SendRequest,
    batch_id: Option<&str>,
) -> Result<Stored, ApiError> {
    let now = Utc::now();
    let (priority, ttl_seconds) = (request.priority, request.ttl_seconds);
    let (message, steps) = request.into_chain(now).map_err(ApiError::Validation)?;
    let mut route = state.router.route(&message)?;
    let sender = state.senders.iter().find(|s| s.name == route.sender);
    let priority = priority.or_else(|| sender.and_then(|s| s.default_priority)).unwrap_or_default();
    let ttl_seconds = ttl_seconds.or_else(|| sender.and_then(|s| s.default_ttl_seconds));
    let steps = route_steps(state, steps, priority, ttl_seconds)?;
    let channel = message.channel();
    if let gateway_core::Content::Whatsapp(gateway_core::content::whatsapp::WhatsAppContent::Template(t)) =
        &message.content
    {
        // Accounts where the template status cache knows it as unusable are dropped; if none is
        // left, refuse now rather than fail later (Meta 132001/132015/132016).
        let mut usable = Vec::new();
        let mut refusal = None;
        for lane in &route.lanes {
            match state.templates.refuses(lane, &t.name, t.language.as_deref()).await? {
                Some(status) => refusal = Some(format!("template `{}` is {status} at account `{lane}`", t.name)),
                None => usable.push(lane.clone()),
            }
        }
        if usable.is_empty() {
            let reason = refusal.unwrap_or_else(|| "the template cannot be used".into());
            return Err(ApiError::Validation(FieldErrors::single("template.name", reason)));
        }
        route.lanes = usable;
    }
    super::templates::describe_once(state, &route.lanes, &message.content).await?;
    let misfit = state.templates.check_send(&route.lanes, &message.content).await?;
    if !misfit.is_empty() {
        return Err(ApiError::Validation(misfit));
    }
    let enforce = state.senders.iter().any(|s| s.name == route.sender && s.enforce_session_window);
    // WhatsApp and RCS (seeds/000) take anything but a template only within 24 h of the user's
    // last message.
    let windowed = matches!(channel, gateway_core::Channel::Whatsapp | gateway_core::Channel::Rcs);
    if enforce && windowed && !message.content.is_template() {
        let open = state.reports.in_session(&route.sender, message.to.as_str()).await?;
        if !open {
            return Err(ApiError::Validation(FieldErrors::single(
                "type",
                "the user has not written to this sender in the last 24 hours; only a template may be sent",
            )));
        }
    }
    let kind = message.content.content_type();
    let due_ms = message.send_at.map_or(0, |t| t.timestamp_millis());
    let id = MessageId::new();
    let lane = route.lanes[0].clone();
    let chain = steps.first().map(|first| ChainLink {
        parent_sender: route.sender.clone(),
        parent_id: id,
        step: 0,
        until: first.until,
    });
    let first_wait = Duration::from_secs(steps.first().map_or(0, |s| u64::from(s.after_seconds)));
    let n = steps.len();
    // A chain stays out of campaigns: a campaign's cancel and counts know nothing of its steps.
    let batch_id = if chain.is_some() { None } else { batch_id.map(str::to_owned) };
    let stored = StoredMessageV2 {
        base: StoredMessageV1 { id, sender: route.sender.clone(), lanes: route.lanes, message, fallback: steps, chain },
        priority,
        ttl_seconds,
        batch_id,
        traceparent: crate::telemetry::traceparent(&tracing::Span::current()),
    };
    let body = StoredMessage::V2(stored.clone());
    let accepted_ms = match &stored.base.chain {
        None => state.engine.accept(&id, &route.sender, &lane, &body, due_ms).await?,
        Some(link) => state
            .engine
            .accept_chained(&id, &route.sender, &lane, &body, due_ms, link, n, first_wait, "api")
            .await?
            .ok_or_else(|| ApiError::from(StoreError::Corrupt(format!("message {id} already exists"))))?,
    };
    if !state.engine.replicated(&route.sender, &id).await? {
        take_back(state, &route.sender, &id, n > 0).await?;
    }

    if let Some(l) = state.lanes.get(&lane) {
        l.wake.notify_one();
    }
    state.metrics.accepted.with_label_values(&[channel.as_str(), kind.as_str()]).inc();
    state.metrics.transitions.with_label_values(&["queued"]).inc();
    let out = MessageOut::accepted(stored, accepted_ms);
    Ok(Stored {
        status: actix_web::http::StatusCode::ACCEPTED,
        body: serde_json::to_string(&out).map_err(|_| ApiError::Internal)?,
        location: Some(format!("/v1/messages/{id}")),
    })
}

/// A message its replicas did not confirm is cancelled, so that the 503 means what it says:
/// nothing was accepted, and a retry sends it once. One a worker already took is on its way and
/// stays accepted (`Ok`).
async fn take_back(state: &AppState, sender: &str, id: &MessageId, chained: bool) -> Result<(), ApiError> {
    let raw = id.to_string();
    if chained {
        // Closed first, so that the cancel does not hand the chain to its next step.
        state.engine.fallback_close(sender, &raw, None).await?;
    }
    match state.engine.cancel(id).await? {
        CancelOutcome::TooLate(status) => {
            tracing::warn!(message_id = %raw, %status, "replicas did not confirm a message a worker already has");
            Ok(())
        }
        CancelOutcome::Cancelled | CancelOutcome::NotFound => Err(ApiError::NotReplicated),
    }
}

/// Routes every fallback step now, so a step no configured sender can carry is a 422 naming it.
/// A step without its own priority or validity takes the first message's, as resolved with its
/// sender's defaults: the chain is one piece of urgent news, whatever sender each step uses.
fn route_steps(
    state: &AppState,
    steps: Vec<Step>,
    priority: Priority,
    ttl_seconds: Option<u32>,
) -> Result<Vec<StoredStep>, ApiError> {
    let mut errors = FieldErrors::default();
    let mut out = Vec::with_capacity(steps.len());
    for (i, step) in steps.into_iter().enumerate() {
        match state.router.route(&step.message) {
            Ok(route) => out.push(StoredStep {
                id: MessageId::new(),
                sender: route.sender,
                lanes: route.lanes,
                message: step.message,
                after_seconds: step.after_seconds,
                until: step.until.status(),
                priority: step.priority.unwrap_or(priority),
                ttl_seconds: step.ttl_seconds.or(ttl_seconds),
            }),
            Err(ApiError::Validation(e)) => errors.extend(e.under(&Path::root().key("fallback").index(i))),
            Err(e) => return Err(e),
        }
    }
    if errors.is_empty() {
        Ok(out)
    } else {
        Err(ApiError::Validation(errors))
    }
}

async fn accept(state: &AppState, body: &[u8]) -> Result<Stored, ApiError> {
    accept_request(state, parse_request(body)?, None).await
}

/// Get a message: status, history, attempts, provider and provider message id, error.
#[utoipa::path(get, path = "/v1/messages/{id}", operation_id = "v1.messages.get", tag = "messages",
    params(("id" = String, Path, description = "The gateway message id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The message", body = MessageOut),
        (status = 404, description = "No such message (or its retention ended)", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/messages/{id}")]
pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let raw = path.into_inner();
    let id: MessageId = raw.parse().map_err(|_| ApiError::NotFound(format!("message `{raw}`")))?;
    let record = state.engine.get(&id).await?;
    match record {
        Some(r) => Ok(HttpResponse::Ok().json(MessageOut::from_record(r))),
        None => Err(ApiError::NotFound(format!("message `{raw}`"))),
    }
}

/// Cancel a message that is still queued or scheduled, or the fallback steps of a chain not yet
/// sent.
#[utoipa::path(post, path = "/v1/messages/{id}/cancel", operation_id = "v1.messages.cancel", tag = "messages",
    params(("id" = String, Path, description = "The gateway message id")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Cancelled; it will not be sent. For the first message of a fallback chain, also when the message itself is already with the provider: its steps not yet sent are then skipped (and a step still queued is cancelled)", body = MessageOut),
        (status = 404, description = "No such message", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Too late: the message is being sent, was sent, or is final", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::SendRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/messages/{id}/cancel")]
pub async fn cancel(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Send)?;
    let raw = path.into_inner();
    let id: MessageId = raw.parse().map_err(|_| ApiError::NotFound(format!("message `{raw}`")))?;
    let not_found = || ApiError::NotFound(format!("message `{raw}`"));
    let record = state.engine.get(&id).await?.ok_or_else(not_found)?;
    let m = record.body.v1();
    // The chain closes before the message is cancelled, so nothing the cancel races with sends
    // another step.
    let chain_closed = if m.fallback.is_empty() {
        false
    } else {
        let closed = state.engine.fallback_close(&m.sender, &raw, None).await?;
        let in_play = usize::from(closed.current).checked_sub(1).and_then(|i| m.fallback.get(i));
        // A step being handed off is cancelled by the hand-off itself, which sees the chain closed.
        if let (true, false, Some(step)) = (closed.now, closed.handing_off, in_play) {
            if state.engine.cancel(&step.id).await? == CancelOutcome::Cancelled {
                state.metrics.transitions.with_label_values(&["cancelled"]).inc();
            }
        }
        closed.now
    };
    let outcome = state.engine.cancel(&id).await?;
    match outcome {
        CancelOutcome::Cancelled => {
            state.metrics.transitions.with_label_values(&["cancelled"]).inc();
            // A step cancelled on its own is a step that ended undelivered: the next one goes.
            state.reports.chain_moved(&raw, m.chain.as_ref(), MessageStatus::Cancelled).await;
        }
        CancelOutcome::NotFound => return Err(not_found()),
        CancelOutcome::TooLate(_) if chain_closed => {}
        CancelOutcome::TooLate(status) => {
            return Err(ApiError::Conflict(format!("the message is `{status}` and can no longer be cancelled")))
        }
    }
    let record = state.engine.get(&id).await?.ok_or_else(not_found)?;
    Ok(HttpResponse::Ok().json(MessageOut::from_record(record)))
}
