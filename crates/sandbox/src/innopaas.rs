//! The InnoPaaS half (PROVIDERS.md §2), not built yet. Its paths already go through the shared
//! intake, so they are recorded and take faults; until the real handlers land here they answer
//! 404 in InnoPaaS's envelope (`code` is a string there).

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use serde::Serialize;

use crate::faults::status_code;

/// Every InnoPaaS path the gateway uses sits under this prefix (`/api/whatsapp/v3/msg/submit`, ...).
pub(crate) const PATH_PREFIX: &str = "/api/whatsapp/";

#[derive(Serialize)]
struct Envelope<'a> {
    code: String,
    success: bool,
    message: &'a str,
    data: Option<()>,
}

fn error_body(code: u32, message: &str) -> Vec<u8> {
    let envelope = Envelope { code: code.to_string(), success: false, message, data: None };
    // Serializing this plain struct cannot fail; an empty body would still be visibly wrong.
    serde_json::to_vec(&envelope).unwrap_or_default()
}

pub(crate) fn handle(req: &HttpRequest) -> HttpResponse {
    tracing::debug!(path = req.path(), "InnoPaaS path not simulated yet");
    HttpResponse::NotFound().content_type("application/json").body(error_body(404, "Not Found"))
}

/// The default answer of an InnoPaaS fault with this HTTP `status` and no `body`.
pub(crate) fn fault_answer(status: u32) -> (StatusCode, Vec<u8>) {
    let http_status = status_code(status);
    let message = http_status.canonical_reason().unwrap_or("Error");
    (http_status, error_body(status, message))
}
