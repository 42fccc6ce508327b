//! `GET /v1/senders`: the configured senders with the live state of their accounts.

use actix_web::{get, web, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::{Channel, ProviderKind};
use serde::Serialize;
use utoipa::ToSchema;

use super::messages::store_error;
use super::AppState;
use crate::auth::Caller;
use crate::config::Scope;
use crate::problem::ApiError;

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

#[derive(Debug, Serialize, ToSchema)]
pub struct SenderList {
    pub items: Vec<SenderOut>,
}

/// List senders and the live state of their accounts.
#[utoipa::path(get, path = "/v1/senders", operation_id = "v1.senders.list", tag = "senders",
    security(("api_key" = [])),
    responses(
        (status = 200, description = "Senders", body = SenderList),
        (status = 401, description = "Missing or unknown API key", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 403, description = "The key lacks the `read` scope", body = crate::problem::Problem, content_type = "application/problem+json"),
        (status = 429, description = "Too many requests for this API key", body = crate::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        (status = 503, description = "The message store is unavailable", body = crate::problem::Problem, content_type = "application/problem+json"),
    ))]
#[get("/v1/senders")]
pub async fn list(caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let mut items = Vec::new();
    for s in &state.senders {
        let depth = state.engine.depth(&s.name, &s.accounts).await.map_err(store_error)?;
        let mut accounts = Vec::new();
        for (name, ready) in &depth.ready {
            let Some(lane) = state.lanes.get(name) else { continue };
            let paused = state.engine.paused_for(&s.name, name).await.map_err(store_error)?;
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
        items.push(SenderOut {
            name: s.name.clone(),
            channel: s.channel,
            default: s.default,
            accounts,
            scheduled: depth.scheduled,
            in_flight: depth.in_flight,
            dead_letters: depth.dead_letters,
        });
    }
    Ok(HttpResponse::Ok().json(SenderList { items }))
}
