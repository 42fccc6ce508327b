//! The one table of API errors: each variant maps to an HTTP status and an RFC 9457 problem type
//! here and nowhere else. Causes go to the log; the client gets a clear, safe `detail`.

use actix_web::http::header::{self, HeaderValue};
use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};
use gateway_core::validate::{FieldError, FieldErrors};
use serde::Serialize;
use utoipa::ToSchema;

pub const PROBLEM_JSON: &str = "application/problem+json";

/// An RFC 9457 problem details body.
#[derive(Debug, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the kind of problem, e.g. `/problems/validation`.
    #[serde(rename = "type")]
    #[schema(example = "/problems/validation")]
    pub kind: String,
    #[schema(example = "Validation failed")]
    pub title: String,
    #[schema(example = 422)]
    pub status: u16,
    pub detail: String,
    /// One entry per field at fault (validation problems only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The refusals every endpoint that needs an API key may answer before its handler runs (401,
/// 403 for the scope it needs, 429), for the API document: one type per scope.
macro_rules! refusals {
    ($name:ident, $forbidden:tt) => {
        #[derive(utoipa::IntoResponses)]
        pub enum $name {
            #[response(
                status = 401,
                description = "Missing or unknown API key",
                content_type = "application/problem+json"
            )]
            Unauthenticated(Problem),
            #[response(status = 403, description = $forbidden, content_type = "application/problem+json")]
            Forbidden(Problem),
            #[response(
                status = 429,
                description = "Too many requests for this API key",
                content_type = "application/problem+json"
            )]
            TooManyRequests(Problem),
        }
    };
}

refusals!(ReadRefusals, "The key lacks the `read` scope");
refusals!(SendRefusals, "The key lacks the `send` scope");
refusals!(AdminRefusals, "The key lacks the `admin` scope");

/// A 503 for an endpoint that needs the message store, for the API document.
#[derive(utoipa::IntoResponses)]
pub enum StoreRefusal {
    #[response(
        status = 503,
        description = "The message store is unavailable",
        content_type = "application/problem+json"
    )]
    Unavailable(Problem),
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("the request body is not valid JSON: {0}")]
    MalformedJson(String),
    #[error("{0}")]
    Validation(FieldErrors),
    #[error("{detail}")]
    Unroutable { detail: String, errors: FieldErrors },
    #[error("the request body is larger than {limit} bytes")]
    PayloadTooLarge { limit: usize },
    #[error("the request body must be application/json")]
    UnsupportedMediaType,
    #[error("a valid API key is required (Authorization: Bearer <key>)")]
    Unauthorized,
    #[error("this API key lacks the `{0}` scope")]
    Forbidden(&'static str),
    #[error("{0} not found")]
    NotFound(String),
    /// The path exists with other methods; `allow` lists them (the `Allow` header).
    #[error("this path takes only {allow}")]
    MethodNotAllowed { allow: String },
    #[error("{0}")]
    Conflict(String),
    #[error("the message store is unavailable; retry shortly")]
    StoreUnavailable,
    /// Redis is nearly full (the memory guard) or refused a write for memory: new sends wait
    /// until deliveries have drained the queue.
    #[error("the message store is full; new sends are refused until the queue drains")]
    StoreFull,
    /// More requests at once than this process takes; refused before any work was done.
    #[error("the gateway is at capacity; retry shortly")]
    Overloaded,
    /// `redis.wait_replicas` replicas did not confirm the message in time; it was taken back.
    #[error("the message store's replicas did not confirm the message in time, so it was not accepted; retry shortly")]
    NotReplicated,
    #[error("too many requests for this API key; retry after {retry_after_secs} s")]
    RateLimited { retry_after_secs: u64 },
    #[error("internal error")]
    Internal,
    /// The provider refused what was asked of it (a template it will not create, say).
    #[error("{0}")]
    ProviderRejected(String),
    /// The provider failed, throttled us or answered nothing usable; 503 with `Retry-After` when
    /// it said when to come back, else 502.
    #[error("{detail}")]
    ProviderFailed { detail: String, retry_after_secs: Option<u64> },
}

/// A store call that failed is a 503 to the caller; the cause goes to the log only.
impl From<crate::engine::StoreError> for ApiError {
    fn from(e: crate::engine::StoreError) -> Self {
        tracing::warn!(error = %e, "message store call failed");
        match e {
            crate::engine::StoreError::Full => ApiError::StoreFull,
            _ => ApiError::StoreUnavailable,
        }
    }
}

impl ApiError {
    fn slug_title(&self) -> (&'static str, &'static str) {
        match self {
            Self::MalformedJson(_) => ("malformed-json", "Malformed JSON"),
            Self::Validation(_) => ("validation", "Validation failed"),
            Self::Unroutable { .. } => ("unroutable", "No provider can carry this message"),
            Self::PayloadTooLarge { .. } => ("payload-too-large", "Request body too large"),
            Self::UnsupportedMediaType => ("unsupported-media-type", "Unsupported media type"),
            Self::Unauthorized => ("unauthorized", "Unauthorized"),
            Self::Forbidden(_) => ("forbidden", "Forbidden"),
            Self::NotFound(_) => ("not-found", "Not found"),
            Self::MethodNotAllowed { .. } => ("method-not-allowed", "Method not allowed"),
            Self::Conflict(_) => ("conflict", "Conflict"),
            Self::StoreUnavailable => ("store-unavailable", "Service unavailable"),
            Self::StoreFull => ("store-full", "Service unavailable"),
            Self::Overloaded => ("overloaded", "Service unavailable"),
            Self::NotReplicated => ("not-replicated", "Service unavailable"),
            Self::RateLimited { .. } => ("rate-limited", "Too many requests"),
            Self::Internal => ("internal", "Internal error"),
            Self::ProviderRejected(_) => ("provider-rejected", "The provider refused the request"),
            Self::ProviderFailed { .. } => ("provider-failed", "The provider did not complete the request"),
        }
    }

    pub fn problem(&self) -> Problem {
        let (slug, title) = self.slug_title();
        let errors = match self {
            Self::Validation(e) | Self::Unroutable { errors: e, .. } => e.as_slice().to_vec(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("/problems/{slug}"),
            title: title.to_owned(),
            status: self.status_code().as_u16(),
            detail: self.to_string(),
            errors,
        }
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        match self {
            Self::MalformedJson(_) => StatusCode::BAD_REQUEST,
            Self::Validation(_) | Self::Unroutable { .. } => StatusCode::UNPROCESSABLE_ENTITY,
            Self::PayloadTooLarge { .. } => StatusCode::PAYLOAD_TOO_LARGE,
            Self::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::MethodNotAllowed { .. } => StatusCode::METHOD_NOT_ALLOWED,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::StoreUnavailable | Self::StoreFull | Self::Overloaded | Self::NotReplicated => {
                StatusCode::SERVICE_UNAVAILABLE
            }
            Self::RateLimited { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Self::ProviderRejected(_) => StatusCode::UNPROCESSABLE_ENTITY,
            Self::ProviderFailed { retry_after_secs: Some(_), .. } => StatusCode::SERVICE_UNAVAILABLE,
            Self::ProviderFailed { retry_after_secs: None, .. } => StatusCode::BAD_GATEWAY,
        }
    }

    fn error_response(&self) -> HttpResponse {
        let mut res = HttpResponse::build(self.status_code());
        res.insert_header((header::CONTENT_TYPE, HeaderValue::from_static(PROBLEM_JSON)));
        match self {
            Self::StoreUnavailable | Self::Overloaded | Self::NotReplicated => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("1")));
            }
            // The queue takes longer than a moment to drain.
            Self::StoreFull => {
                res.insert_header((header::RETRY_AFTER, HeaderValue::from_static("5")));
            }
            Self::Unauthorized => {
                res.insert_header((header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer")));
            }
            Self::MethodNotAllowed { allow } => {
                res.insert_header((header::ALLOW, allow.clone()));
            }
            Self::RateLimited { retry_after_secs }
            | Self::ProviderFailed { retry_after_secs: Some(retry_after_secs), .. } => {
                res.insert_header((header::RETRY_AFTER, retry_after_secs.to_string()));
            }
            _ => {}
        }
        res.json(self.problem())
    }
}

/// Turns a serde error (with its JSON path) into the right problem: syntax errors are 400, shape
/// errors (wrong type, unknown or missing field) are 422 naming the field.
pub fn from_json_error(err: serde_path_to_error::Error<serde_json::Error>) -> ApiError {
    let path = err.path().to_string();
    let inner = err.into_inner();
    match inner.classify() {
        serde_json::error::Category::Data => {
            let message = strip_position(&inner.to_string());
            let field = field_of(&path, &message);
            ApiError::Validation(FieldErrors::single(&field, message))
        }
        _ => ApiError::MalformedJson(inner.to_string()),
    }
}

/// serde_json appends " at line 1 column 42"; the field path says more.
pub(crate) fn strip_position(message: &str) -> String {
    match message.rfind(" at line ") {
        Some(i) => message[..i].to_owned(),
        None => message.to_owned(),
    }
}

/// For unknown and missing fields serde points at the parent object; name the field itself.
pub(crate) fn field_of(path: &str, message: &str) -> String {
    let parent = if path == "." { "" } else { path };
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.strip_prefix(p))
        .and_then(|rest| rest.split('`').next());
    match named {
        Some(name) if parent.is_empty() => name.to_owned(),
        Some(name) if !parent.ends_with(name) => format!("{parent}.{name}"),
        _ if parent.is_empty() => "body".to_owned(),
        _ => parent.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_and_missing_fields_are_named() {
        assert_eq!(field_of(".", "unknown field `colour`, expected one of"), "colour");
        assert_eq!(field_of("interactive.action", "unknown field `x`, expected"), "interactive.action.x");
        assert_eq!(field_of(".", "missing field `to`"), "to");
        assert_eq!(field_of("to", "invalid type: integer `5`, expected a string"), "to");
        assert_eq!(field_of(".", "invalid type: string, expected a map"), "body");
    }
}
