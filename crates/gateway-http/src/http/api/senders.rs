//! `GET /v1/senders`: the configured senders with the live state of their accounts;
//! `POST /v1/senders/{name}/pause` and `/resume`: an operator's stop of everything a sender sends.

use actix_web::{get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::{Channel, ProviderKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::{read_body, AppState};
use crate::config::Scope;
use crate::http::auth::Caller;
use crate::http::problem::ApiError;

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderOut {
    #[schema(example = "hk-main")]
    pub name: String,
    pub channel: Channel,
    /// The channel's default sender.
    pub default: bool,
    /// Accounts in order of preference.
    pub accounts: Vec<AccountOut>,
    /// Messages waiting for a due time (retries, `send_at`).
    pub scheduled: u64,
    /// Messages with a worker right now.
    pub in_flight: u64,
    pub dead_letters: u64,
    /// Paused by an operator: messages are accepted and queued, none is sent, by any instance.
    pub paused: bool,
    pub paused_at: Option<DateTime<Utc>>,
    /// Why, as the operator said.
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AccountOut {
    #[schema(example = "incs-whatsapp")]
    pub name: String,
    pub provider: ProviderKind,
    /// The lane's rate, messages per second, shared by all gateway instances.
    pub rate_per_second: u32,
    pub burst: u32,
    /// Set while the provider has throttled the lane.
    pub paused_until: Option<DateTime<Utc>>,
    /// `closed`, `half_open` or `open` (this instance's view).
    #[schema(example = "closed")]
    pub circuit: String,
    /// Messages ready to send on this lane.
    pub queue_depth: u64,
}

/// Why a sender is paused.
#[derive(Debug, Default, serde::Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PauseIn {
    /// Shown in `GET /v1/senders` (up to 200 characters).
    #[schema(max_length = 200, example = "campaign template has a wrong link")]
    pub reason: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderList {
    pub items: Vec<SenderOut>,
}

/// List senders and the live state of their accounts.
#[utoipa::path(get, path = "/v1/senders", operation_id = "v1.senders.list", tag = "senders",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Senders", body = SenderList),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/senders")]
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let mut items = Vec::new();
    for s in &state.senders {
        items.push(sender_out(&state, s).await?);
    }
    Ok(HttpResponse::Ok().json(SenderList { items }))
}

async fn sender_out(state: &AppState, s: &crate::config::SenderConfig) -> Result<SenderOut, ApiError> {
    {
        let depth = state.engine.depth(&s.name, &s.accounts).await?;
        let hold = state.engine.held(&s.name).await?;
        let mut accounts = Vec::new();
        for (name, ready) in &depth.ready {
            let Some(lane) = state.lanes.get(name) else { continue };
            let paused = state.engine.paused_for(&s.name, name).await?;
            accounts.push(AccountOut {
                name: name.clone(),
                provider: lane.provider.kind(),
                rate_per_second: lane.spec.rate_per_second,
                burst: lane.spec.burst,
                paused_until: paused.and_then(|d| chrono::Duration::from_std(d).ok()).map(|d| Utc::now() + d),
                circuit: lane.circuit.state().as_str().to_owned(),
                queue_depth: *ready,
            });
        }
        Ok(SenderOut {
            name: s.name.clone(),
            channel: s.channel,
            default: s.default,
            accounts,
            scheduled: depth.scheduled,
            in_flight: depth.in_flight,
            dead_letters: depth.dead_letters,
            paused: hold.is_some(),
            paused_at: hold.as_ref().map(|h| crate::engine::record::ms_to_time(h.at_ms)),
            reason: hold.and_then(|h| h.reason),
        })
    }
}

fn configured<'a>(state: &'a AppState, name: &str) -> Result<&'a crate::config::SenderConfig, ApiError> {
    state.senders.iter().find(|s| s.name == name).ok_or_else(|| ApiError::NotFound(format!("sender `{name}`")))
}

/// Pause a sender.
///
/// Its messages are still accepted and queued, but none is sent, by any gateway instance, until
/// it is resumed; the pause survives restarts. Messages whose validity ends meanwhile end
/// `expired`. Pausing a paused sender keeps the first pause's time and takes the new reason.
#[utoipa::path(post, path = "/v1/senders/{name}/pause", operation_id = "v1.senders.pause", tag = "senders",
    params(("name" = String, Path, description = "A configured sender")),
    request_body(content = Option<PauseIn>, description = "Optional"),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The paused sender", body = SenderOut),
        (status = 400, description = "Malformed JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such sender", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Bad `reason`", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/senders/{name}/pause")]
pub async fn pause(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let sender = configured(&state, &path)?;
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    // No body and `null` (as the document allows) both mean no reason.
    let input: PauseIn = if body.iter().all(u8::is_ascii_whitespace) {
        PauseIn::default()
    } else {
        let mut de = serde_json::Deserializer::from_slice(&body);
        let input: Option<PauseIn> =
            serde_path_to_error::deserialize(&mut de).map_err(crate::http::problem::from_json_error)?;
        de.end().map_err(|e| ApiError::MalformedJson(e.to_string()))?;
        input.unwrap_or_default()
    };
    if input.reason.as_ref().is_some_and(|r| r.chars().count() > 200) {
        return Err(ApiError::Validation(gateway_core::validate::FieldErrors::single(
            "reason",
            "at most 200 characters",
        )));
    }
    state.engine.hold(&sender.name, input.reason.as_deref()).await?;
    tracing::info!(sender = %sender.name, "sender paused by an operator");
    Ok(HttpResponse::Ok().json(sender_out(&state, sender).await?))
}

/// Resume a paused sender: its queued messages go out again (resuming a sender that is not
/// paused changes nothing).
#[utoipa::path(post, path = "/v1/senders/{name}/resume", operation_id = "v1.senders.resume", tag = "senders",
    params(("name" = String, Path, description = "A configured sender")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The sender", body = SenderOut),
        (status = 404, description = "No such sender", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals, crate::http::problem::StoreRefusal,
    ))]
#[post("/v1/senders/{name}/resume")]
pub async fn resume(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let sender = configured(&state, &path)?;
    if state.engine.resume(&sender.name).await? {
        tracing::info!(sender = %sender.name, "sender resumed by an operator");
    }
    for account in &sender.accounts {
        if let Some(lane) = state.lanes.get(account) {
            lane.wake.notify_one();
        }
    }
    Ok(HttpResponse::Ok().json(sender_out(&state, sender).await?))
}
