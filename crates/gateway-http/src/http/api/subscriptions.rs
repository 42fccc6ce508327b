//! Event subscriptions and their dead letters: `GET /v1/subscriptions`,
//! `POST /v1/subscriptions/{subscription}/enable`, `GET /v1/event-dead-letters`,
//! `POST /v1/event-dead-letters/{id}/replay`.

use actix_web::{get, post, web, HttpResponse};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::AppState;
use crate::config::Scope;
use crate::delivery::events::{DropReason, EventDeadLetter, ReplayError, SubscriptionState};
use crate::engine::record::ms_to_time;
use crate::http::auth::Caller;
use crate::http::problem::ApiError;

/// A subscription and its delivery state.
#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionOut {
    pub name: String,
    /// `active`, `failing` (no delivery has succeeded since `failing_since`) or `disabled`.
    #[schema(example = "active")]
    pub state: String,
    pub failing_since: Option<DateTime<Utc>>,
    pub disabled_at: Option<DateTime<Utc>>,
    /// Events waiting for delivery (not counting those in flight).
    pub pending: u64,
    pub max_pending: u64,
    pub max_age_secs: u64,
    pub disable_after_secs: u64,
}

impl From<SubscriptionState> for SubscriptionOut {
    fn from(s: SubscriptionState) -> Self {
        let state = if s.health.disabled_at_ms.is_some() {
            "disabled"
        } else if s.health.failing_since_ms.is_some() {
            "failing"
        } else {
            "active"
        };
        Self {
            name: s.name,
            state: state.to_owned(),
            failing_since: s.health.failing_since_ms.map(ms_to_time),
            disabled_at: s.health.disabled_at_ms.map(ms_to_time),
            pending: s.pending,
            max_pending: s.max_pending,
            max_age_secs: s.max_age_secs,
            disable_after_secs: s.disable_after_secs,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SubscriptionList {
    pub items: Vec<SubscriptionOut>,
}

/// An event that was dead-lettered instead of delivered.
#[derive(Debug, Serialize, ToSchema)]
pub struct EventDeadLetterOut {
    /// The dead letter's id (for replay).
    pub id: String,
    pub subscription: String,
    pub reason: DropReason,
    /// The subscriber's last HTTP status, when it answered at all.
    pub last_status: Option<u16>,
    /// Delivery attempts made.
    pub attempts: u32,
    pub created_at: DateTime<Utc>,
    pub dead_lettered_at: DateTime<Utc>,
    /// The `webhook-id` the event is delivered with (the same on a replay).
    pub event_id: String,
    /// `message.status`, `message.inbound`, `template.status` or `message.fallback`.
    #[serde(rename = "type")]
    pub kind: String,
    /// The event as it is delivered.
    pub payload: serde_json::Value,
}

impl From<EventDeadLetter> for EventDeadLetterOut {
    fn from(d: EventDeadLetter) -> Self {
        Self {
            id: d.id,
            subscription: d.subscription,
            reason: d.reason,
            last_status: d.last_status,
            attempts: d.attempts,
            created_at: ms_to_time(d.created_ms),
            dead_lettered_at: ms_to_time(d.dead_lettered_ms),
            event_id: d.event_id,
            kind: d.kind,
            payload: d.payload,
        }
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct EventDeadLetterList {
    pub items: Vec<EventDeadLetterOut>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventDeadLetterQuery {
    /// Only this subscription's dead letters.
    #[param(min_length = 1)]
    pub subscription: Option<String>,
    /// At most this many, newest first (default 50, at most 500).
    #[param(minimum = 1, maximum = 500)]
    pub limit: Option<usize>,
}

/// List the event subscriptions and their delivery state.
#[utoipa::path(get, path = "/v1/subscriptions", operation_id = "v1.subscriptions.list", tag = "events",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Subscriptions", body = SubscriptionList),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/subscriptions")]
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let mut items = Vec::new();
    for name in state.events.names() {
        if let Some(s) = state.events.state(&name).await? {
            items.push(s.into());
        }
    }
    Ok(HttpResponse::Ok().json(SubscriptionList { items }))
}

/// Enable a subscription that was disabled after failing continuously: its deliveries start
/// again on every instance (events dead-lettered meanwhile stay dead letters; replay them).
#[utoipa::path(post, path = "/v1/subscriptions/{subscription}/enable", operation_id = "v1.subscriptions.enable", tag = "events",
    params(("subscription" = String, Path, description = "A configured subscription's name")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Enabled (also when it was not disabled)", body = SubscriptionOut),
        (status = 404, description = "No subscription has this name", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/subscriptions/{subscription}/enable")]
pub async fn enable(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let name = path.into_inner();
    if !state.events.enable(&name).await? {
        return Err(ApiError::NotFound(format!("subscription `{name}`")));
    }
    let s = state.events.state(&name).await?;
    let s = s.ok_or_else(|| ApiError::NotFound(format!("subscription `{name}`")))?;
    Ok(HttpResponse::Ok().json(SubscriptionOut::from(s)))
}

/// List event dead letters, newest first: events a subscriber refused on every attempt, pushed
/// out of a full or too old backlog, or dropped while their subscription was disabled.
#[utoipa::path(get, path = "/v1/event-dead-letters", operation_id = "v1.event_dead_letters.list", tag = "events",
    params(EventDeadLetterQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Event dead letters", body = EventDeadLetterList),
        (status = 422, description = "Unknown subscription or bad limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/event-dead-letters")]
pub async fn dead_letters(
    caller: Caller,
    query: web::Query<EventDeadLetterQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let limit = super::dead_letters::page_limit(query.limit)?;
    if let Some(s) = query.subscription.as_deref().filter(|s| !state.events.names().iter().any(|n| n == s)) {
        return Err(ApiError::Validation(gateway_core::validate::FieldErrors::single(
            "subscription",
            format!("no subscription named `{s}`"),
        )));
    }
    let items = state.events.dead_letters(query.subscription.as_deref(), limit).await?;
    Ok(HttpResponse::Ok().json(EventDeadLetterList { items: items.into_iter().map(Into::into).collect() }))
}

/// Deliver an event dead letter again: it goes to the front of its partition with a fresh retry
/// budget, and keeps its `webhook-id`, so a subscriber that did get it can tell.
#[utoipa::path(post, path = "/v1/event-dead-letters/{id}/replay", operation_id = "v1.event_dead_letters.replay", tag = "events",
    params(("id" = String, Path, description = "The dead letter's id")),
    security(("api_key" = [])),
    responses(
        (status = 202, description = "Queued for delivery again", body = EventDeadLetterOut),
        (status = 404, description = "Not an event dead letter", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 409, description = "Its subscription is disabled: enable it first", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/event-dead-letters/{id}/replay")]
pub async fn replay(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let id = path.into_inner();
    if uuid::Uuid::parse_str(&id).is_err() {
        return Err(ApiError::NotFound(format!("event dead letter `{id}`")));
    }
    match state.events.replay(&id).await {
        Ok(d) => Ok(HttpResponse::Accepted().json(EventDeadLetterOut::from(d))),
        Err(ReplayError::NotFound) => Err(ApiError::NotFound(format!("event dead letter `{id}`"))),
        Err(e @ ReplayError::Disabled(_)) => Err(ApiError::Conflict(e.to_string())),
        Err(ReplayError::Store(e)) => Err(e.into()),
    }
}
