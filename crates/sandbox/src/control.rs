//! The control plane under `/_sandbox`: health, recorded requests, faults, per-recipient behaviour
//! and the webhook consumer.

use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};

use crate::emit::Emit;
use crate::faults::Fault;
use crate::recipients::Setting;
use crate::{Provider, Sandbox};

pub(crate) fn routes(config: &mut web::ServiceConfig) {
    config.service(
        web::scope("/_sandbox")
            .route("/health", web::get().to(health))
            .route("/counts", web::get().to(counts))
            .service(web::resource("/requests").get(list_requests).delete(clear_requests))
            .service(web::resource("/faults").get(list_faults).post(add_fault).delete(clear_faults))
            .service(web::resource("/recipients").get(list_recipients).post(set_recipient).delete(clear_recipients))
            .service(web::resource("/callbacks").post(emit_callback))
            .service(web::resource("/webhooks").get(list_webhooks).post(receive_webhook).delete(clear_webhooks))
            // Without this, unknown control paths would fall through to the provider intake.
            .default_service(web::to(|| async { problem(StatusCode::NOT_FOUND, "no such sandbox endpoint".into()) })),
    );
}

#[derive(Serialize)]
struct Problem {
    error: String,
}

fn problem(status: StatusCode, error: String) -> HttpResponse {
    HttpResponse::build(status).json(Problem { error })
}

fn json_bytes(bytes: serde_json::Result<Vec<u8>>) -> HttpResponse {
    match bytes {
        Ok(bytes) => HttpResponse::Ok().content_type("application/json").body(bytes),
        Err(error) => problem(StatusCode::INTERNAL_SERVER_ERROR, error.to_string()),
    }
}

async fn health() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// Totals since start, which clearing the logs does not reset.
async fn counts(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({
        "requests": sandbox.requests.counts(),
        "webhooks": sandbox.webhooks.count(),
    }))
}

#[derive(Deserialize)]
struct RequestsQuery {
    provider: Option<String>,
}

async fn list_requests(req: HttpRequest, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let provider = match web::Query::<RequestsQuery>::from_query(req.query_string()) {
        Ok(query) => match query.into_inner().provider.as_deref().map(str::parse::<Provider>) {
            None => None,
            Some(Ok(provider)) => Some(provider),
            Some(Err(error)) => return problem(StatusCode::BAD_REQUEST, error),
        },
        Err(error) => return problem(StatusCode::BAD_REQUEST, error.to_string()),
    };
    json_bytes(sandbox.requests.to_json(provider))
}

async fn clear_requests(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.requests.clear();
    HttpResponse::NoContent().finish()
}

async fn list_faults(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.faults.list())
}

async fn add_fault(body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    match Fault::parse(&body) {
        Ok(fault) => {
            sandbox.faults.add(fault.clone());
            HttpResponse::Created().json(fault)
        }
        Err(error) => problem(StatusCode::BAD_REQUEST, error),
    }
}

async fn clear_faults(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.faults.clear();
    HttpResponse::NoContent().finish()
}

async fn receive_webhook(req: HttpRequest, body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.webhooks.record(&req, &body);
    HttpResponse::NoContent().finish()
}

async fn list_webhooks(sandbox: web::Data<Sandbox>) -> HttpResponse {
    json_bytes(sandbox.webhooks.to_json())
}

async fn clear_webhooks(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.webhooks.clear();
    HttpResponse::NoContent().finish()
}

async fn list_recipients(sandbox: web::Data<Sandbox>) -> HttpResponse {
    HttpResponse::Ok().json(sandbox.recipients.list())
}

async fn set_recipient(body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    match Setting::parse(&body) {
        Ok(setting) => {
            sandbox.recipients.set(&setting);
            HttpResponse::Created().json(setting)
        }
        Err(error) => problem(StatusCode::BAD_REQUEST, error),
    }
}

async fn clear_recipients(sandbox: web::Data<Sandbox>) -> HttpResponse {
    sandbox.recipients.clear();
    HttpResponse::NoContent().finish()
}

async fn emit_callback(body: web::Bytes, sandbox: web::Data<Sandbox>) -> HttpResponse {
    let posted = Emit::parse(&body).and_then(|emit| match &emit {
        Emit::Failed { provider: Provider::Innopaas, .. } | Emit::Inbound { provider: Provider::Innopaas, .. } => {
            sandbox.innopaas.emit(emit)
        }
        _ => sandbox.incs.emit(emit),
    });
    match posted {
        Ok(posted) => HttpResponse::Accepted().json(serde_json::json!({"posted": posted})),
        Err((status, error)) => problem(status, error),
    }
}
