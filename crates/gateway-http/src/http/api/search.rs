//! `GET /v1/messages`: messages still within their retention, newest first, found through the
//! engine's per-sender search indexes, with cursor paging.

use actix_web::{get, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::validate::FieldErrors;
use gateway_core::{MessageStatus, PhoneNumber};
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use super::messages::MessageOut;
use super::AppState;
use crate::config::Scope;
use crate::engine::{SearchPosition, SearchQuery};
use crate::http::auth::Caller;
use crate::http::problem::{ApiError, Problem};

pub const MAX_LIMIT: usize = 200;
const DEFAULT_LIMIT: usize = 50;
const CURSOR_VERSION: &str = "m1";

/// Query of `GET /v1/messages`. Every filter given must match.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
#[allow(dead_code)]
pub struct SearchParams {
    /// The recipient (country code and number; a leading `+` is dropped).
    #[param(pattern = r"^\+?[0-9]{8,15}$", example = "85268411234")]
    to: Option<String>,
    /// A configured sender; default: every sender.
    #[param(pattern = "^[A-Za-z0-9_-]{1,64}$", example = "hk-main")]
    sender: Option<String>,
    /// The message's current status.
    status: Option<MessageStatus>,
    /// The campaign (`batch_id` from `POST /v1/messages/batch`).
    #[param(format = Uuid)]
    batch_id: Option<String>,
    /// Accepted at or after this time (RFC 3339).
    since: Option<DateTime<Utc>>,
    /// Accepted before this time (RFC 3339).
    until: Option<DateTime<Utc>>,
    /// Page size, 1 to 200 (default 50).
    #[param(minimum = 1, maximum = 200)]
    limit: Option<u32>,
    /// The `next_cursor` of the previous page.
    #[param(pattern = "^[0-9a-f]{1,200}$")]
    cursor: Option<String>,
}

/// The query as it arrives, every value text, so a bad one is a 422 naming it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawParams {
    to: Option<String>,
    sender: Option<String>,
    status: Option<String>,
    batch_id: Option<String>,
    since: Option<String>,
    until: Option<String>,
    limit: Option<String>,
    cursor: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct MessagePage {
    /// Newest first.
    pub items: Vec<MessageOut>,
    /// Pass as `cursor` for the next page; absent when there is none.
    pub next_cursor: Option<String>,
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Validation(FieldErrors::single(field, reason))
}

/// The cursor is opaque to callers: a versioned position (acceptance time, id), hex-encoded.
fn encode_cursor(p: &SearchPosition) -> String {
    hex::encode(format!("{CURSOR_VERSION}|{}|{}", p.accepted_ms, p.id))
}

fn decode_cursor(raw: &str) -> Result<SearchPosition, ApiError> {
    let bad = || invalid("cursor", "not a cursor this API gave out");
    let bytes = hex::decode(raw).map_err(|_| bad())?;
    let text = String::from_utf8(bytes).map_err(|_| bad())?;
    let mut parts = text.split('|');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(CURSOR_VERSION), Some(ms), Some(id), None) => {
            let accepted_ms = ms.parse::<i64>().map_err(|_| bad())?;
            let id = id.parse::<uuid::Uuid>().map_err(|_| bad())?.to_string();
            Ok(SearchPosition { accepted_ms, id })
        }
        _ => Err(bad()),
    }
}

fn time(field: &str, raw: &str) -> Result<i64, ApiError> {
    DateTime::parse_from_rfc3339(raw)
        .map(|t| t.timestamp_millis())
        .map_err(|_| invalid(field, "an RFC 3339 time, e.g. 2026-11-30T08:00:00Z"))
}

fn query(state: &AppState, req: &HttpRequest) -> Result<SearchQuery, ApiError> {
    let raw = web::Query::<RawParams>::from_query(req.query_string())
        .map_err(|e| {
            let text = e.to_string();
            match text.split('`').nth(1) {
                Some(name) if text.contains("unknown field") => invalid(name, "unknown query parameter"),
                _ => invalid("query", format!("not a valid query string: {text}")),
            }
        })?
        .into_inner();
    let mut q = SearchQuery { limit: DEFAULT_LIMIT, ..SearchQuery::default() };
    q.senders = match raw.sender {
        Some(name) => {
            if !state.senders.iter().any(|s| s.name == name) {
                return Err(invalid("sender", format!("no sender named `{name}`")));
            }
            vec![name]
        }
        None => state.senders.iter().map(|s| s.name.clone()).collect(),
    };
    if let Some(to) = raw.to {
        q.to = Some(PhoneNumber::parse(&to).map_err(|e| invalid("to", e.to_string()))?.as_str().to_owned());
    }
    if let Some(st) = raw.status {
        q.status = Some(st.parse().map_err(|e: String| invalid("status", e))?);
    }
    if let Some(b) = raw.batch_id {
        q.batch = Some(b.parse::<uuid::Uuid>().map_err(|_| invalid("batch_id", "a batch id (UUID)"))?.to_string());
    }
    q.since_ms = raw.since.as_deref().map(|t| time("since", t)).transpose()?;
    q.until_ms = raw.until.as_deref().map(|t| time("until", t)).transpose()?;
    if let Some(l) = raw.limit {
        q.limit = l
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=MAX_LIMIT).contains(n))
            .ok_or_else(|| invalid("limit", format!("1 to {MAX_LIMIT}")))?;
    }
    q.after = raw.cursor.as_deref().map(decode_cursor).transpose()?;
    Ok(q)
}

/// Search messages.
///
/// Messages still within their retention, newest first (by acceptance), filtered by recipient,
/// sender, current status, campaign and acceptance time; `limit` per page and `next_cursor` for
/// the next. Served from per-sender indexes in Redis, never by scanning.
#[utoipa::path(get, path = "/v1/messages", operation_id = "v1.messages.search", tag = "messages",
    params(SearchParams),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "A page of messages, newest first", body = MessagePage),
        (status = 422, description = "A bad parameter (named in `errors`)", body = Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals, crate::http::problem::StoreRefusal,
    ))]
#[get("/v1/messages")]
pub async fn search(req: HttpRequest, caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let q = query(&state, &req)?;
    let page = state.engine.search(&q).await?;
    Ok(HttpResponse::Ok().json(MessagePage {
        items: page.items.into_iter().map(MessageOut::from_record).collect(),
        next_cursor: page.next.as_ref().map(encode_cursor),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_strangers_are_refused() {
        let p = SearchPosition { accepted_ms: 1_764_489_600_123, id: "019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f".into() };
        assert_eq!(decode_cursor(&encode_cursor(&p)).ok(), Some(p));
        for bad in
            ["", "zz", "00", &hex::encode("m1|x|019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f"), &hex::encode("m1|1|nope")]
        {
            assert!(decode_cursor(bad).is_err(), "{bad}");
        }
    }
}
