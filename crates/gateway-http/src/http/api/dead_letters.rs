//! `GET /v1/dead-letters`, `POST /v1/dead-letters/{id}/replay`, `DELETE /v1/dead-letters/{id}`:
//! messages that used up their retries.

use actix_web::{delete, get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::MessageId;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::messages::MessageOut;
use super::AppState;
use crate::config::Scope;
use crate::engine::record::ms_to_time;
use crate::http::auth::Caller;
use crate::http::problem::ApiError;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct DeadLetterQuery {
    /// Only this sender's dead letters.
    #[param(min_length = 1)]
    pub sender: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetter {
    pub dead_lettered_at: DateTime<Utc>,
    pub message: MessageOut,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct DeadLetterList {
    pub items: Vec<DeadLetter>,
}

fn parse_id(raw: &str) -> Result<MessageId, ApiError> {
    raw.parse().map_err(|_| ApiError::NotFound(format!("dead letter `{raw}`")))
}

/// A dead-letter listing's `limit` (message or event dead letters): 1 to 500, default 50.
pub(crate) fn page_limit(limit: Option<usize>) -> Result<usize, ApiError> {
    let limit = limit.unwrap_or(50);
    if !(1..=500).contains(&limit) {
        return Err(ApiError::Validation(gateway_core::validate::FieldErrors::single("limit", "1 to 500")));
    }
    Ok(limit)
}

/// List dead letters, newest first.
#[utoipa::path(get, path = "/v1/dead-letters", operation_id = "v1.dead_letters.list", tag = "dead letters",
    params(DeadLetterQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Dead letters", body = DeadLetterList),
        (status = 422, description = "Unknown sender or bad limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/dead-letters")]
pub async fn list(
    caller: Caller,
    query: web::Query<DeadLetterQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let limit = page_limit(query.limit)?;
    let senders: Vec<&str> = match &query.sender {
        Some(s) if state.senders.iter().any(|c| &c.name == s) => vec![s.as_str()],
        Some(s) => {
            return Err(ApiError::Validation(gateway_core::validate::FieldErrors::single(
                "sender",
                format!("no sender named `{s}`"),
            )))
        }
        None => state.senders.iter().map(|s| s.name.as_str()).collect(),
    };
    let mut items = Vec::new();
    for sender in senders {
        for (record, at) in state.engine.dead_letters(sender, limit).await? {
            items.push((at, record));
        }
    }
    items.sort_by_key(|(at, _)| std::cmp::Reverse(*at));
    items.truncate(limit);
    let items = items
        .into_iter()
        .map(|(at, r)| DeadLetter { dead_lettered_at: ms_to_time(at), message: MessageOut::from_record(r) })
        .collect();
    Ok(HttpResponse::Ok().json(DeadLetterList { items }))
}

/// Send a dead letter again, with a fresh retry budget.
#[utoipa::path(post, path = "/v1/dead-letters/{id}/replay", operation_id = "v1.dead_letters.replay", tag = "dead letters",
    params(("id" = String, Path, description = "The gateway message id")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued again", body = MessageOut),
        (status = 404, description = "Not a dead letter", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/dead-letters/{id}/replay")]
pub async fn replay(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let raw = path.into_inner();
    let id = parse_id(&raw)?;
    let lane = state.engine.replay(&id).await?;
    let Some(lane) = lane else { return Err(ApiError::NotFound(format!("dead letter `{raw}`"))) };
    if let Some(l) = state.lanes.get(&lane) {
        l.wake.notify_one();
    }
    let record = state.engine.get(&id).await?;
    let record = record.ok_or_else(|| ApiError::NotFound(format!("dead letter `{raw}`")))?;
    Ok(HttpResponse::Accepted().json(MessageOut::from_record(record)))
}

/// Drop a dead letter and its record.
#[utoipa::path(delete, path = "/v1/dead-letters/{id}", operation_id = "v1.dead_letters.delete", tag = "dead letters",
    params(("id" = String, Path, description = "The gateway message id")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Dropped"),
        (status = 404, description = "Not a dead letter", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[delete("/v1/dead-letters/{id}")]
pub async fn drop(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let raw = path.into_inner();
    let id = parse_id(&raw)?;
    if state.engine.drop_dead_letter(&id).await? {
        Ok(HttpResponse::NoContent().finish())
    } else {
        Err(ApiError::NotFound(format!("dead letter `{raw}`")))
    }
}
