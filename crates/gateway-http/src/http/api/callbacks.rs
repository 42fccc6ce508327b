//! `POST /callbacks/{provider}/{token}` (`/callbacks/incs/…`, `/callbacks/innopaas/…`): what
//! providers report.
//!
//! The token in the URL picks the account(s) and authenticates (an unknown token is a 404, so the
//! endpoint reveals nothing); InnoPaaS pushes must also carry the static headers configured for
//! the account, compared in constant time. A callback is applied to Redis (statuses, windows,
//! queued events) before the 200: a provider that gets no 200 sends it again, and applying twice
//! is harmless. Malformed or unknown bodies get a 4xx and are counted, never a 5xx; only an
//! unreachable Redis gets a 503, so that the provider retries.

use actix_web::dev::{AppService, HttpServiceFactory};
use actix_web::{guard, web, HttpRequest, HttpResponse};
use gateway_core::event::{CallbackError, CallbackEvent};
use gateway_core::transport::truncate as cut;
use gateway_core::validate::FieldErrors;
use gateway_core::{Channel, ProviderKind};
use serde::Serialize;
use tracing::Instrument;
use utoipa::ToSchema;

use super::{read_body, AppState};
use crate::accounts::Account;
use crate::http::problem::ApiError;

/// Callback bodies above this are refused.
const MAX_CALLBACK_BYTES: usize = 1024 * 1024;

#[derive(Debug, Serialize, ToSchema)]
pub struct CallbackAck {
    #[schema(example = "ok")]
    pub status: &'static str,
    /// Events found in the body.
    pub events: usize,
}

fn count(state: &AppState, provider: ProviderKind, event: &str, outcome: &str) {
    state.metrics.callbacks.with_label_values(&[provider.as_str(), event, outcome]).inc();
}

/// The account a callback event belongs to, among those behind its URL that serve `channel`: the
/// one whose number (or channel / WABA id) the event names. An event naming neither gets the
/// first of them. `Err(())` when it names a number none of them serves while they have numbers
/// configured: applying it to another sender would open the wrong window or cache.
fn account_for<'a>(
    accounts: &'a [std::sync::Arc<Account>],
    channel: Channel,
    phone: Option<&str>,
    business_account: Option<&str>,
) -> Result<Option<&'a Account>, ()> {
    let serving: Vec<&Account> = accounts.iter().map(AsRef::as_ref).filter(|a| a.channel == channel).collect();
    let candidates = if serving.is_empty() { accounts.iter().map(AsRef::as_ref).collect() } else { serving };
    if phone.is_none() && business_account.is_none() {
        return Ok(candidates.first().copied());
    }
    if let Some(named) = candidates.iter().find(|a| a.names(phone, business_account) == Some(true)) {
        return Ok(Some(named));
    }
    if candidates.iter().any(|a| a.names(phone, business_account).is_some()) {
        return Err(());
    }
    Ok(candidates.first().copied())
}

/// A callback about a number this URL does not serve: refused (422) and counted, never applied
/// to another sender. Events before it in the same body stay applied; the provider's retry
/// applies them again harmlessly.
fn unknown_number(state: &AppState, provider: ProviderKind, kind: &str, named: &str) -> ApiError {
    count(state, provider, kind, "unknown_number");
    ApiError::Validation(FieldErrors::single(
        crate::providers::family(provider).callback_number_field(),
        format!("`{}` is not a number or account this callback URL serves", cut(named, 32)),
    ))
}

/// Applies a callback's events; how many there were.
async fn handle(
    state: &AppState,
    provider: ProviderKind,
    accounts: &[std::sync::Arc<Account>],
    parsed: Result<Vec<CallbackEvent>, CallbackError>,
) -> Result<usize, ApiError> {
    let events = match parsed {
        Ok(events) => events,
        Err(CallbackError::Malformed(why)) => {
            count(state, provider, "unknown", "malformed");
            return Err(ApiError::MalformedJson(why));
        }
        Err(CallbackError::UnknownEvent(event)) => {
            count(state, provider, "unknown", "unknown_event");
            return Err(ApiError::Validation(FieldErrors::single("event", format!("unknown event `{event}`"))));
        }
    };
    for event in &events {
        let (kind, outcome) = match event {
            CallbackEvent::Status(report) => ("status", state.reports.status(report).await),
            CallbackEvent::Inbound(message) => {
                let outcome = match account_for(accounts, message.channel, Some(&message.business_phone), None) {
                    Ok(Some(account)) => state.reports.inbound(&account.sender, message).await,
                    Ok(None) => Ok("no_account"),
                    Err(()) => return Err(unknown_number(state, provider, "inbound", &message.business_phone)),
                };
                ("inbound", outcome)
            }
            CallbackEvent::Template(report) => {
                let account = match account_for(
                    accounts,
                    Channel::Whatsapp,
                    report.business_phone.as_deref(),
                    report.business_account.as_deref(),
                ) {
                    Ok(a) => a.map(|a| a.name.clone()).unwrap_or_default(),
                    Err(()) => {
                        let named = report.business_phone.as_deref().or(report.business_account.as_deref());
                        return Err(unknown_number(state, provider, "template", named.unwrap_or_default()));
                    }
                };
                // The status cache first: sends of a rejected, paused or disabled template are
                // refused from then on.
                let outcome = match state.templates.record(&account, report).await {
                    Ok(_) => state.reports.template(&account, report).await,
                    Err(e) => Err(e),
                };
                ("template", outcome)
            }
            CallbackEvent::Alias(alias) => ("alias", state.reports.alias(alias).await),
            CallbackEvent::Ignored { .. } => ("ignored", Ok("ignored")),
        };
        match outcome {
            Ok(o) => count(state, provider, kind, o),
            Err(e) => {
                count(state, provider, kind, "store_unavailable");
                tracing::warn!(error = %e, "could not record a callback");
                return Err(ApiError::StoreUnavailable);
            }
        }
    }
    Ok(events.len())
}

/// A callback on a provider's URL (`/callbacks/incs/{token}`, `/callbacks/innopaas/{token}`, one
/// per provider in the registry): the token picks the accounts, each account's adapter checks what
/// else authenticates it, and the provider's family reads the body. The API document lists each
/// provider's URL with its own body and example (see `openapi.rs`), from this description.
#[utoipa::path(post, path = "/callbacks/{provider}/{token}", operation_id = "callbacks.receive", tag = "callbacks",
    impl_for = Receivers,
    params(
        ("provider" = ProviderKind, Path, description = "The provider"),
        ("token" = String, Path, description = "The account's configured callback secret"),
    ),
    request_body(content = Object, description = "A callback as the provider sends it"),
    responses(
        (status = 200, description = "Recorded", body = CallbackAck),
        (status = 400, description = "Malformed body", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 401, description = "The static headers do not match", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 404, description = "Unknown token", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body too large", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Unknown event, or a number this URL does not serve", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "Not recorded; send it again", body = crate::http::problem::Problem, content_type = "application/problem+json"),
    ))]
pub async fn receive(
    provider: ProviderKind,
    req: HttpRequest,
    token: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let state_data = state;
    let state = state_data.get_ref();
    let token = token.as_str();
    let accounts = state.accounts.by_callback_token(provider, token).to_vec();
    if accounts.is_empty() {
        count(state, provider, "unknown", "unknown_token");
        return Err(ApiError::NotFound("callback endpoint".into()));
    }
    let received: Vec<(&str, &[u8])> = req.headers().iter().map(|(n, v)| (n.as_str(), v.as_bytes())).collect();
    if !accounts.iter().any(|a| a.adapter.callback_authentic(&received)) {
        count(state, provider, "unknown", "unauthorized");
        return Err(ApiError::Unauthorized);
    }
    let body = read_body(&req, payload, MAX_CALLBACK_BYTES).await?;
    let parsed = crate::providers::family(provider).parse_callback(&body);
    let owned = state_data.clone();
    let span = tracing::Span::current();
    let applied = state
        .callbacks
        .spawn(async move { handle(owned.get_ref(), provider, &accounts, parsed).await }.instrument(span));
    let events = applied.await.map_err(|_| ApiError::Internal)??;
    Ok(HttpResponse::Ok().json(CallbackAck { status: "ok", events }))
}

/// The callback URLs: one route per provider in the registry, so each provider's URL is its own
/// route template (in metrics and logs as in the API document), documented by [`receive`] as one
/// operation that the document writes out per provider.
pub struct Receivers;

impl HttpServiceFactory for Receivers {
    fn register(self, config: &mut AppService) {
        for kind in crate::providers::families().map(|f| f.kind()) {
            web::resource(format!("/callbacks/{kind}/{{token}}"))
                .guard(guard::Post())
                .to(move |req, token, payload, state| receive(kind, req, token, payload, state))
                .register(config);
        }
    }
}
