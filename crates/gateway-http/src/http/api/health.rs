//! Liveness, readiness and the metrics scrape.

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
    /// `ready` or `not_ready`: ready while Redis answers and is below the memory guard, whatever
    /// the circuits say (an open circuit fails over or waits; the gateway still takes messages).
    #[schema(example = "ready")]
    pub status: &'static str,
    /// `up` or `down`.
    #[schema(example = "up")]
    pub redis: &'static str,
    /// `ok`, or `over_guard` while Redis's memory is above `admission.memory_guard` of its
    /// `maxmemory` and new sends are refused (not ready).
    #[schema(example = "ok")]
    pub memory: &'static str,
    /// Each provider account's circuit breaker.
    pub accounts: Vec<AccountCircuit>,
}

#[derive(Serialize, ToSchema)]
pub struct AccountCircuit {
    #[schema(example = "incs-whatsapp")]
    pub account: String,
    #[schema(example = "incs")]
    pub provider: String,
    /// `closed`, `half_open` or `open`.
    #[schema(example = "closed")]
    pub circuit: &'static str,
}

/// The process is up.
#[utoipa::path(get, path = "/health/live", operation_id = "health.live", tag = "health",
    responses((status = 200, description = "Alive", body = Health)))]
#[get("/health/live")]
pub async fn live() -> HttpResponse {
    HttpResponse::Ok().json(Health { status: "ok" })
}

/// Whether the gateway can take messages (Redis answers and is below the memory guard), and each
/// provider account's circuit.
#[utoipa::path(get, path = "/health/ready", operation_id = "health.ready", tag = "health",
    responses((status = 200, description = "Ready", body = Readiness), (status = 503, description = "Not ready", body = Readiness)))]
#[get("/health/ready")]
pub async fn ready(state: web::Data<AppState>) -> HttpResponse {
    let mut accounts: Vec<AccountCircuit> = state
        .lanes
        .iter()
        .map(|lane| AccountCircuit {
            account: lane.spec.lane.clone(),
            provider: state.accounts.get(&lane.spec.lane).map(|a| a.provider.to_string()).unwrap_or_default(),
            circuit: lane.circuit.state().as_str(),
        })
        .collect();
    accounts.sort_by(|a, b| a.account.cmp(&b.account));
    let memory = if state.admission.memory.engaged() { "over_guard" } else { "ok" };
    match state.engine.ping().await {
        Ok(()) if memory == "ok" => {
            HttpResponse::Ok().json(Readiness { status: "ready", redis: "up", memory, accounts })
        }
        Ok(()) => {
            HttpResponse::ServiceUnavailable().json(Readiness { status: "not_ready", redis: "up", memory, accounts })
        }
        Err(_) => {
            HttpResponse::ServiceUnavailable().json(Readiness { status: "not_ready", redis: "down", memory, accounts })
        }
    }
}

/// Prometheus metrics of this instance, in the text exposition format.
///
/// Unauthenticated, like the health checks: expose it to the scraper's network only.
#[utoipa::path(get, path = "/metrics", operation_id = "metrics", tag = "health",
    responses((status = 200, description = "Every `gateway_*` metric family", body = String,
        content_type = "text/plain; version=0.0.4",
        example = "# HELP gateway_messages_accepted_total Messages accepted (202) by channel and type\n# TYPE gateway_messages_accepted_total counter\ngateway_messages_accepted_total{channel=\"whatsapp\",type=\"text\"} 42\n")))]
#[get("/metrics")]
pub async fn metrics_endpoint(state: web::Data<AppState>) -> HttpResponse {
    HttpResponse::Ok().content_type("text/plain; version=0.0.4").body(state.metrics.render())
}
