//! The HTTP API (DESIGN.md §2).

pub mod batch;
pub mod callbacks;
pub mod dead_letters;
pub mod health;
pub mod idempotency;
pub mod messages;
pub mod search;
pub mod senders;
pub mod subscriptions;
pub mod templates;

use std::sync::Arc;

use actix_web::web;
use futures::StreamExt;
use utoipa_actix_web::service_config::ServiceConfig;

use crate::delivery::worker::Lanes;
use crate::engine::Engine;
use crate::http::problem::ApiError;
use crate::http::routing::Router;
use crate::metrics::Metrics;

/// The route table: every endpoint, registered once, for actix and for the API document alike
/// (`openapi::spec` builds the document from it). A handler here is its route and its operation at
/// once (`#[utoipa::path]` beside the route macro); one without `#[utoipa::path]` does not compile
/// here. Where paths overlap, a literal path comes before a template that also matches it.
pub fn routes(cfg: &mut ServiceConfig) {
    cfg.service(batch::send_batch)
        .service(batch::get_batch)
        .service(batch::cancel_batch)
        .service(messages::send)
        .service(search::search)
        .service(messages::get)
        .service(messages::cancel)
        .service(dead_letters::list)
        .service(dead_letters::replay)
        .service(dead_letters::drop)
        .service(subscriptions::list)
        .service(subscriptions::enable)
        .service(subscriptions::dead_letters)
        .service(subscriptions::replay)
        .service(senders::list)
        .service(senders::pause)
        .service(senders::resume)
        .service(templates::sender_account)
        .service(templates::list)
        .service(templates::create)
        .service(templates::get)
        .service(templates::remove)
        .service(callbacks::Receivers)
        .service(health::live)
        .service(health::ready)
        .service(health::metrics_endpoint);
}

/// What every handler can reach.
pub struct AppState {
    pub engine: Engine,
    pub router: Router,
    pub lanes: Arc<Lanes>,
    pub metrics: Metrics,
    pub max_body_bytes: usize,
    pub max_batch_body_bytes: usize,
    /// Every account with its concrete adapter (templates, account info, callbacks).
    pub accounts: Arc<crate::accounts::Accounts>,
    /// Applies what providers report (over this pool).
    pub reports: crate::inbound::reports::Reports,
    pub senders: Vec<crate::config::SenderConfig>,
    /// The template status cache (template API, template callbacks, send-time refusals).
    pub templates: crate::inbound::templates::TemplateCache,
    /// Event subscriptions (over this pool): their state and dead letters.
    pub events: crate::delivery::events::Events,
    /// Budgets of requests in flight and the Redis memory guard.
    pub admission: Arc<crate::http::admission::Admission>,
    /// Where callbacks are applied: a thread of their own, which also drives their Redis
    /// connection, so a flood of API requests on the HTTP workers does not delay their replies.
    pub callbacks: tokio::runtime::Handle,
}

impl AppState {
    /// Whether a new send may be taken now: not while Redis is above the memory guard.
    ///
    /// # Errors
    /// 503 ([`ApiError::StoreFull`]) with `Retry-After`.
    pub fn admit_send(&self) -> Result<(), ApiError> {
        if self.admission.memory.engaged() {
            self.metrics.requests_shed.with_label_values(&["memory_guard"]).inc();
            return Err(ApiError::StoreFull);
        }
        Ok(())
    }
}

/// Reads a JSON request body up to the configured limit. Done by hand rather than with
/// `web::Json` so that every failure (too large, wrong type, bad JSON) is a problem+json naming
/// the field.
///
/// # Errors
/// 413 over the limit, 415 for a non-JSON content type, 400 for a broken stream.
pub async fn read_body(
    req: &actix_web::HttpRequest,
    mut payload: web::Payload,
    limit: usize,
) -> Result<web::BytesMut, ApiError> {
    if let Some(ct) = req.headers().get(actix_web::http::header::CONTENT_TYPE) {
        let ct = ct.to_str().unwrap_or("").to_ascii_lowercase();
        if !(ct.starts_with("application/json") || ct.contains("+json")) {
            return Err(ApiError::UnsupportedMediaType);
        }
    }
    let declared = req
        .headers()
        .get(actix_web::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return Err(ApiError::PayloadTooLarge { limit });
    }
    let mut body = web::BytesMut::with_capacity(declared.unwrap_or(1024).min(limit));
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::MalformedJson(format!("the body could not be read: {e}")))?;
        if body.len() + chunk.len() > limit {
            return Err(ApiError::PayloadTooLarge { limit });
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}
