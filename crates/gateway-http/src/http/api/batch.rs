//! `POST /v1/messages/batch`: up to 1000 messages in one request, each validated, routed, stored
//! and made idempotent on its own; one result per item, in request order. A batch is a campaign:
//! `GET /v1/batches/{id}` counts its messages by status and `POST /v1/batches/{id}/cancel` stops
//! every one of them no provider has yet.

use std::collections::{BTreeMap, BTreeSet};

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use futures::StreamExt;
use gateway_core::validate::FieldErrors;
use gateway_core::{MessageStatus, Priority};
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::idempotency::{self, Begin, Stored};
use super::messages::{accept_request, MessageOut};
use super::{read_body, AppState};
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::problem::{from_json_error, ApiError, Problem};

pub const MAX_BATCH: usize = 1000;
/// Items processed at once: enough to hide Redis round trips, few enough to keep order cheap.
const CONCURRENCY: usize = 16;

/// A batch: `messages` holds send requests as for `POST /v1/messages`, each optionally with an
/// `idempotency_key`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BatchIn {
    /// 1 to 1000 send requests; each may carry `idempotency_key`.
    #[schema(value_type = Vec<Object>, min_items = 1, max_items = 1000)]
    messages: Vec<Value>,
    /// The priority of every item that names none (an item's own `priority` wins).
    priority: Option<Priority>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchItemOut {
    /// The item's position in the request.
    pub index: usize,
    /// The HTTP status this item would have had on its own (202, 4xx, 503).
    pub status: u16,
    /// The accepted message (status 202).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<MessageOut>)]
    pub message: Option<Value>,
    /// Why the item was refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Problem>)]
    pub problem: Option<Value>,
    /// True when the answer is a replay of an earlier request with the same idempotency key.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub idempotent_replayed: bool,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BatchOut {
    /// The campaign id, also on each accepted message (`batch_id`).
    #[schema(example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e70")]
    pub batch_id: String,
    pub accepted: usize,
    pub refused: usize,
    pub results: Vec<BatchItemOut>,
}

fn item_out(index: usize, stored: &Stored, replayed: bool) -> BatchItemOut {
    let body: Value = serde_json::from_str(&stored.body).unwrap_or(Value::Null);
    let ok = stored.status.is_success();
    BatchItemOut {
        index,
        status: stored.status.as_u16(),
        message: ok.then(|| body.clone()),
        problem: (!ok).then_some(body),
        idempotent_replayed: replayed,
    }
}

fn error_out(index: usize, e: &ApiError) -> BatchItemOut {
    use actix_web::ResponseError;
    let mut problem = e.problem();
    for err in &mut problem.errors {
        err.field = if err.field.is_empty() {
            format!("messages[{index}]")
        } else {
            format!("messages[{index}].{}", err.field)
        };
    }
    BatchItemOut {
        index,
        status: e.status_code().as_u16(),
        message: None,
        problem: serde_json::to_value(problem).ok(),
        idempotent_replayed: false,
    }
}

/// The sender of an item's accepted message, when it was accepted in this batch.
fn sender_in(out: &BatchItemOut, batch_id: &str) -> Option<String> {
    let m = out.message.as_ref()?;
    (m["batch_id"] == batch_id).then(|| m["sender"].as_str().map(str::to_owned)).flatten()
}

async fn one(state: &AppState, caller: &Caller, batch: &Campaign, index: usize, mut item: Value) -> BatchItemOut {
    let key = match item.as_object_mut().map(|o| o.remove("idempotency_key")) {
        Some(Some(Value::String(k))) if !k.is_empty() && k.len() <= 255 => Some(k),
        Some(Some(_)) => {
            let e = ApiError::Validation(FieldErrors::single("idempotency_key", "a string of 1 to 255 characters"));
            return error_out(index, &e);
        }
        _ => None,
    };
    if let Err(errors) = gateway_core::request::tags_and_objects_as_written(&item) {
        return error_out(index, &ApiError::Validation(errors));
    }
    let Some(fields) = item.as_object_mut() else {
        return error_out(index, &ApiError::Validation(FieldErrors::single("", "each item must be a JSON object")));
    };
    if let (Some(p), false) = (batch.priority, fields.contains_key("priority")) {
        fields.insert("priority".into(), Value::from(p.as_str()));
    }
    let request: gateway_core::request::SendRequest = match serde_path_to_error::deserialize(&item) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let message = crate::http::problem::strip_position(&e.into_inner().to_string());
            let field = crate::http::problem::field_of(&path, &message);
            return error_out(index, &ApiError::Validation(FieldErrors::single(&field, message)));
        }
    };
    let Some(key) = key else {
        return match accept_request(state, request, Some(&batch.id)).await {
            Ok(stored) => item_out(index, &stored, false),
            Err(e) => error_out(index, &e),
        };
    };
    let fp = idempotency::fingerprint(item.to_string().as_bytes());
    match idempotency::begin(&state.engine, &caller.name, &key, &fp).await {
        Ok(Begin::Replay(stored)) => return item_out(index, &stored, true),
        Ok(Begin::Proceed) => {}
        Err(e) => return error_out(index, &e),
    }
    match accept_request(state, request, Some(&batch.id)).await {
        Ok(stored) => {
            idempotency::finish(&state.engine, &caller.name, &key, &fp, Some(&stored)).await;
            item_out(index, &stored, false)
        }
        Err(e) => {
            idempotency::finish(&state.engine, &caller.name, &key, &fp, Stored::from_error(&e).as_ref()).await;
            error_out(index, &e)
        }
    }
}

/// Send up to 1000 messages.
///
/// Each item is validated, routed, stored and (with `idempotency_key`) made idempotent on its own;
/// a bad item does not stop the others. The answer is 200 with one result per item, in request
/// order, each with the status it would have had alone. More than 1000 items is a 422.
#[utoipa::path(post, path = "/v1/messages/batch", operation_id = "v1.messages.send_batch", tag = "messages",
    request_body(content = BatchIn, example = json!({"messages": [
        {"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello", "idempotency_key": "order-A-1001-1"},
        {"channel": "viber", "to": "85268411234", "type": "otp", "otp": {"code": "123456", "language": "en", "code_expiration_minutes": 3}}
    ]})),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One result per item, in request order", body = BatchOut),
        (status = 400, description = "Malformed JSON", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the batch size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a batch, empty, or more than 1000 items", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "Nothing was accepted: the message store is unavailable, nearly full (the memory guard), or this instance is at capacity; retry after `Retry-After`", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        crate::http::problem::SendRefusals,
    ))]
#[post("/v1/messages/batch")]
pub async fn send_batch(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Send)?;
    state.admit_send()?;
    let body = read_body(&req, payload, state.max_batch_body_bytes).await?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let batch: serde_json::Map<String, Value> = serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if let Some(unknown) = batch.keys().find(|k| !["messages", "priority"].contains(&k.as_str())) {
        return Err(ApiError::Validation(FieldErrors::single(
            unknown,
            "unknown field; a batch is `{\"messages\": [...], \"priority\": ...}`",
        )));
    }
    let priority = match batch.get("priority") {
        None | Some(Value::Null) => None,
        Some(Value::String(p)) => {
            Some(p.parse::<Priority>().map_err(|e| ApiError::Validation(FieldErrors::single("priority", e)))?)
        }
        Some(_) => return Err(ApiError::Validation(FieldErrors::single("priority", "one of high, normal, bulk"))),
    };
    let items = match batch.get("messages") {
        Some(Value::Array(items)) => items.clone(),
        Some(_) => return Err(ApiError::Validation(FieldErrors::single("messages", "must be an array"))),
        None => return Err(ApiError::Validation(FieldErrors::single("messages", "required"))),
    };
    if items.is_empty() || items.len() > MAX_BATCH {
        return Err(ApiError::Validation(FieldErrors::single(
            "messages",
            format!("1 to {MAX_BATCH} messages, got {}", items.len()),
        )));
    }
    // Something that is not an object is not a message at all: the envelope is at fault, as the
    // document says (`items: object`); an object's content is judged item by item.
    if let Some(i) = items.iter().position(|item| !item.is_object()) {
        return Err(ApiError::Validation(FieldErrors::single(&format!("messages[{i}]"), "must be a JSON object")));
    }
    let campaign = Campaign { id: gateway_core::MessageId::new().to_string(), priority };
    let state_ref = state.get_ref();
    let (caller_ref, campaign_ref) = (&caller, &campaign);
    let results: Vec<BatchItemOut> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| one(state_ref, caller_ref, campaign_ref, i, item))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let accepted = results.iter().filter(|r| r.status == 202).count();
    let members: Vec<String> = results.iter().filter_map(|r| sender_in(r, &campaign.id)).collect();
    let senders: Vec<String> = members.iter().cloned().collect::<BTreeSet<_>>().into_iter().collect();
    // Recorded after its messages: a campaign that exists is complete. Its messages are stored
    // whatever happens here, so a failure is logged, not answered.
    if let Err(e) = state.engine.create_batch(&campaign.id, members.len() as u64, &senders).await {
        tracing::warn!(error = %e, batch_id = %campaign.id, "could not record the campaign");
    }
    Ok(HttpResponse::Ok().json(BatchOut {
        batch_id: campaign.id,
        accepted,
        refused: results.len() - accepted,
        results,
    }))
}

/// This request's campaign.
struct Campaign {
    id: String,
    priority: Option<Priority>,
}

/// A campaign and its messages by status.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchStatusOut {
    #[schema(example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e70")]
    pub id: String,
    pub created_at: DateTime<Utc>,
    /// Messages accepted in the batch.
    pub total: u64,
    /// Messages per status, every status named (0 when none); messages whose retention ended are
    /// no longer counted.
    #[schema(value_type = BTreeMap<String, u64>, example = json!({"queued": 600, "submitted": 400, "cancelled": 0}))]
    pub counts: BTreeMap<&'static str, u64>,
}

/// What cancelling a campaign found.
#[derive(Debug, Serialize, ToSchema)]
pub struct BatchCancelOut {
    #[schema(example = "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e70")]
    pub id: String,
    /// Messages of the batch that are cancelled and will never reach a provider (by this call or
    /// an earlier one).
    pub cancelled: u64,
    /// Messages that were already with a worker or a provider, or had failed there.
    pub already_sent: u64,
    /// Messages whose validity had ended before the cancel.
    pub expired: u64,
}

fn batch_id(raw: &str) -> Result<String, ApiError> {
    raw.parse::<uuid::Uuid>().map(|u| u.to_string()).map_err(|_| ApiError::NotFound(format!("batch `{raw}`")))
}

fn all_counts(found: &BTreeMap<String, u64>) -> BTreeMap<&'static str, u64> {
    MessageStatus::ALL.into_iter().map(|s| (s.as_str(), found.get(s.as_str()).copied().unwrap_or(0))).collect()
}

/// Get a campaign: its size and its messages by status.
#[utoipa::path(get, path = "/v1/batches/{id}", operation_id = "v1.batches.get", tag = "messages",
    params(("id" = String, Path, description = "The `batch_id` from `POST /v1/messages/batch`", format = Uuid)),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The campaign", body = BatchStatusOut),
        (status = 404, description = "No such batch (or its retention ended)", body = Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/batches/{id}")]
pub async fn get_batch(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let id = batch_id(&path)?;
    let record = state.engine.batch(&id).await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("batch `{id}`")))?;
    let mut found = BTreeMap::new();
    for sender in &record.senders {
        for (status, n) in state.engine.batch_counts(sender, &id).await? {
            *found.entry(status).or_insert(0) += n;
        }
    }
    Ok(HttpResponse::Ok().json(BatchStatusOut {
        id,
        created_at: crate::engine::record::ms_to_time(record.created_ms),
        total: record.total,
        counts: all_counts(&found),
    }))
}

/// Cancel a campaign: every message of the batch not yet handed to a provider.
///
/// Atomic per sender: once this answers, no cancelled message reaches a provider, from any
/// instance. Messages already with a worker or a provider go on. Cancelling again is harmless.
#[utoipa::path(post, path = "/v1/batches/{id}/cancel", operation_id = "v1.batches.cancel", tag = "messages",
    params(("id" = String, Path, description = "The `batch_id` from `POST /v1/messages/batch`", format = Uuid)),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "What was cancelled", body = BatchCancelOut),
        (status = 404, description = "No such batch (or its retention ended)", body = Problem, content_type = "application/problem+json"),
        crate::http::problem::SendRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/batches/{id}/cancel")]
pub async fn cancel_batch(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Send)?;
    let id = batch_id(&path)?;
    let record = state.engine.batch(&id).await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("batch `{id}`")))?;
    let mut found = BTreeMap::new();
    for sender in &record.senders {
        let done = state.engine.cancel_batch(sender, &id).await?;
        state.metrics.transitions.with_label_values(&["cancelled"]).inc_by(done.cancelled_now.len() as u64);
        for (status, n) in done.counts {
            *found.entry(status).or_insert(0) += n;
        }
    }
    let count = |s: MessageStatus| found.get(s.as_str()).copied().unwrap_or(0);
    let cancelled = count(MessageStatus::Cancelled);
    let expired = count(MessageStatus::Expired);
    let already_sent = found.values().sum::<u64>() - cancelled - expired - count(MessageStatus::Queued);
    Ok(HttpResponse::Ok().json(BatchCancelOut { id, cancelled, already_sent, expired }))
}
