//! `POST /v1/messages/batch`: up to 1000 messages in one request, each validated, routed, stored
//! and made idempotent on its own; one result per item, in request order.

use actix_web::{post, web, HttpRequest, HttpResponse};
use futures::StreamExt;
use gateway_core::validate::FieldErrors;
use serde::Serialize;
use serde_json::Value;
use utoipa::ToSchema;

use super::idempotency::{self, Begin, Stored};
use super::messages::{accept_request, MessageOut};
use super::{read_body, AppState};
use crate::auth::Caller;
use crate::config::Scope;
use crate::problem::{from_json_error, ApiError, Problem};

pub const MAX_BATCH: usize = 1000;
/// Items processed at once: enough to hide Redis round trips, few enough to keep order cheap.
const CONCURRENCY: usize = 16;

/// A batch: `messages` holds send requests as for `POST /v1/messages`, each optionally with an
/// `idempotency_key`.
#[derive(Debug, ToSchema)]
#[allow(dead_code)]
pub struct BatchIn {
    /// 1 to 1000 send requests; each may carry `idempotency_key`.
    #[schema(value_type = Vec<Object>)]
    messages: Vec<Value>,
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

async fn one(state: &AppState, caller: &Caller, index: usize, mut item: Value) -> BatchItemOut {
    let key = match item.as_object_mut().map(|o| o.remove("idempotency_key")) {
        Some(Some(Value::String(k))) if !k.is_empty() && k.len() <= 255 => Some(k),
        Some(Some(_)) => {
            let e = ApiError::Validation(FieldErrors::single("idempotency_key", "a string of 1 to 255 characters"));
            return error_out(index, &e);
        }
        _ => None,
    };
    if !item.is_object() {
        return error_out(index, &ApiError::Validation(FieldErrors::single("", "each item must be a JSON object")));
    }
    let request: gateway_core::request::SendRequest = match serde_path_to_error::deserialize(&item) {
        Ok(r) => r,
        Err(e) => {
            let path = e.path().to_string();
            let message = crate::problem::strip_position(&e.into_inner().to_string());
            let field = crate::problem::field_of(&path, &message);
            return error_out(index, &ApiError::Validation(FieldErrors::single(&field, message)));
        }
    };
    let Some(key) = key else {
        return match accept_request(state, request).await {
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
    match accept_request(state, request).await {
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
        (status = 401, description = "Missing or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `send` scope", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the batch size limit", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "Not a batch, empty, or more than 1000 items", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
    ))]
#[post("/v1/messages/batch")]
pub async fn send_batch(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Send)?;
    let body = read_body(&req, payload, state.max_batch_body_bytes).await?;
    let mut de = serde_json::Deserializer::from_slice(&body);
    let batch: serde_json::Map<String, Value> = serde_path_to_error::deserialize(&mut de).map_err(from_json_error)?;
    de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
    if let Some(unknown) = batch.keys().find(|k| k.as_str() != "messages") {
        return Err(ApiError::Validation(FieldErrors::single(
            unknown,
            "unknown field; a batch is `{\"messages\": [...]}`",
        )));
    }
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
    let state_ref = state.get_ref();
    let caller_ref = &caller;
    let results: Vec<BatchItemOut> = futures::stream::iter(items.into_iter().enumerate())
        .map(|(i, item)| one(state_ref, caller_ref, i, item))
        .buffered(CONCURRENCY)
        .collect()
        .await;
    let accepted = results.iter().filter(|r| r.status == 202).count();
    Ok(HttpResponse::Ok().json(BatchOut { accepted, refused: results.len() - accepted, results }))
}
