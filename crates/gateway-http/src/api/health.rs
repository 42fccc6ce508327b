//! Liveness and readiness.

use actix_web::{get, web, HttpResponse};
use serde::Serialize;
use utoipa::ToSchema;

use super::AppState;

#[derive(Serialize, ToSchema)]
pub struct Health {
    #[schema(example = "ok")]
    pub status: &'static str,
}

#[derive(Serialize, ToSchema)]
pub struct Readiness {
    /// `ready` or `not_ready`.
    pub status: &'static str,
    /// `up` or `down`.
    pub redis: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", operation_id = "health.live", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Whether the gateway can take messages: Redis must answer.
#[utoipa::path(get, path = "/health/ready", operation_id = "health.ready", tag = "health",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    match state.engine.ping().await {
        Ok(()) => HttpResponse::Ok().json(Readiness { status: "ready", redis: "up" }),
        Err(_) => HttpResponse::ServiceUnavailable().json(Readiness { status: "not_ready", redis: "down" }),
    }
}
