//! `Idempotency-Key` (DESIGN.md §3.4): scoped to the API key, kept `engine.idempotency_retention_secs`
//! (24 h). The same key with the same
//! body gets the original response again (`Idempotent-Replayed: true`); with another body, 422;
//! while the first request is still being processed, 409. The key is claimed atomically in Redis,
//! so concurrent duplicates never both proceed.

use std::time::Duration;

use actix_web::http::StatusCode;
use actix_web::{HttpRequest, HttpResponse};
use gateway_core::validate::FieldErrors;
use sha2::{Digest, Sha256};

use crate::engine::{Engine, IdempotencyRecord};
use crate::http::problem::ApiError;

pub const HEADER: &str = "Idempotency-Key";
pub const REPLAYED: &str = "Idempotent-Replayed";
/// How long a key stays claimed by a request that never finishes (a crashed process): after that
/// a retry may proceed.
pub const PROCESSING_TTL: Duration = Duration::from_secs(60);
pub const MAX_KEY_LEN: usize = 255;

/// The key from the request, if any.
///
/// # Errors
/// 422 naming the header when it is empty, too long or not printable ASCII.
pub fn key_of(req: &HttpRequest) -> Result<Option<String>, ApiError> {
    let Some(v) = req.headers().get(HEADER) else { return Ok(None) };
    let bad =
        || ApiError::Validation(FieldErrors::single(HEADER, format!("1 to {MAX_KEY_LEN} printable ASCII characters")));
    let s = v.to_str().map_err(|_| bad())?;
    if s.is_empty() || s.len() > MAX_KEY_LEN || !s.bytes().all(|b| (0x21..0x7f).contains(&b)) {
        return Err(bad());
    }
    Ok(Some(s.to_owned()))
}

/// A fingerprint of the request body that ignores formatting and key order.
pub fn fingerprint(body: &[u8]) -> String {
    let canonical = serde_json::from_slice::<serde_json::Value>(body).ok().and_then(|v| serde_json::to_vec(&v).ok());
    hex::encode(Sha256::digest(canonical.as_deref().unwrap_or(body)))
}

/// A response that can be stored and replayed byte for byte.
pub struct Stored {
    pub status: StatusCode,
    pub body: String,
    pub location: Option<String>,
}

impl Stored {
    pub fn into_response(self, replayed: bool) -> HttpResponse {
        let mut res = HttpResponse::build(self.status);
        let content_type =
            if self.status.is_success() { "application/json" } else { crate::http::problem::PROBLEM_JSON };
        res.content_type(content_type);
        if let Some(l) = self.location {
            res.insert_header((actix_web::http::header::LOCATION, l));
        }
        if replayed {
            res.insert_header((REPLAYED, "true"));
        }
        res.body(self.body)
    }

    /// Errors that are the request's own fault are part of its idempotent answer; outages are not.
    pub fn from_error(e: &ApiError) -> Option<Self> {
        use actix_web::ResponseError;
        let status = e.status_code();
        let deterministic =
            status.is_client_error() && status != StatusCode::TOO_MANY_REQUESTS && status != StatusCode::CONFLICT;
        deterministic.then(|| Self {
            status,
            body: serde_json::to_string(&e.problem()).unwrap_or_default(),
            location: None,
        })
    }
}

/// What to do with a request carrying a key.
pub enum Begin {
    /// The key is ours: process, then `finish`.
    Proceed,
    Replay(Stored),
}

fn location_of(status: u16, body: &str) -> Option<String> {
    if status != 202 {
        return None;
    }
    let v: serde_json::Value = serde_json::from_str(body).ok()?;
    v["id"].as_str().map(|id| format!("/v1/messages/{id}"))
}

/// # Errors
/// 409 while the first request is in progress, 422 when the key was used with another body,
/// 503 when Redis is unreachable.
pub async fn begin(engine: &Engine, api_key: &str, key: &str, fp: &str) -> Result<Begin, ApiError> {
    let held =
        engine.idempotency_begin(api_key, key, fp, PROCESSING_TTL).await.map_err(|_| ApiError::StoreUnavailable)?;
    match held {
        None => Ok(Begin::Proceed),
        Some(IdempotencyRecord::Processing { fingerprint }) | Some(IdempotencyRecord::Done { fingerprint, .. })
            if fingerprint != fp =>
        {
            Err(ApiError::Validation(FieldErrors::single(HEADER, "this key was used with a different request body")))
        }
        Some(IdempotencyRecord::Processing { .. }) => {
            Err(ApiError::Conflict("a request with this Idempotency-Key is still being processed".into()))
        }
        Some(IdempotencyRecord::Done { status, body, .. }) => Ok(Begin::Replay(Stored {
            status: StatusCode::from_u16(status).unwrap_or(StatusCode::ACCEPTED),
            location: location_of(status, &body),
            body,
        })),
    }
}

/// Stores the outcome (or frees the key when the outcome was an outage).
pub async fn finish(engine: &Engine, api_key: &str, key: &str, fp: &str, outcome: Option<&Stored>) {
    let result = match outcome {
        Some(s) => {
            let record =
                IdempotencyRecord::Done { fingerprint: fp.to_owned(), status: s.status.as_u16(), body: s.body.clone() };
            engine.idempotency_complete(api_key, key, &record, engine.idempotency_retention()).await
        }
        None => engine.idempotency_abandon(api_key, key).await,
    };
    if let Err(e) = result {
        // The key expires on its own (PROCESSING_TTL); a retry then proceeds.
        tracing::warn!(error = %e, "could not store the idempotent response");
    }
}
