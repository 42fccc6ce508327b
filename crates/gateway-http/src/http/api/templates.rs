//! Template management and account information (DESIGN.md §2): `GET/POST /v1/templates`,
//! `GET/DELETE /v1/templates/{id}` and `GET /v1/senders/{name}/account`.
//!
//! Each provider's templates and account go through its adapter's optional capabilities
//! ([`gateway_core::Templates`], [`gateway_core::AccountInfo`]); this module holds the HTTP.
//!
//! # Decisions
//! - **Which account.** A sender's templates live with its first account (its preferred one):
//!   templates are created, listed and read there. WhatsApp templates go to INCS
//!   (`/external/templates`) or, when that account is InnoPaaS, to InnoPaaS `template/submit`; RCS
//!   templates go to INCS (`/external/templates/rcs`). Viber has no templates.
//! - **Ids.** A template's id is `<account>~<provider template id>` (`incs-whatsapp~4166201267033543`):
//!   stable, readable, and enough to find the template again without a lookup. Account names
//!   cannot hold `~`, so the first `~` splits it.
//! - **Reading.** A provider that can be read (INCS) is read, and what it says is upserted into the
//!   template status cache; the answer shows the cache's status when it is newer than the
//!   provider's (a callback that came after the provider last changed it). A provider without a
//!   read or list API (InnoPaaS) has its templates read from the cache (what was created through
//!   the gateway, and what callbacks reported); one without a delete API answers a delete with 422.
//! - **Listing** walks the senders in configuration order (filtered by `channel` and `sender`),
//!   each sender's account page by page; `next_cursor` is opaque (it names the sender and the last
//!   provider id seen) and absent on the last page. A `status` filter applies after reading, so a
//!   page may hold fewer than `limit` items and still have a `next_cursor`.
//! - **Creating** validates the draft first (`gateway_core::template`, with the limits of the
//!   provider that will create it) and answers 422 naming the field; the provider's own refusal is
//!   a 422 too (`/problems/provider-rejected`), and so is a draft the provider's own shape cannot
//!   hold (InnoPaaS's mapping, in `gateway_innopaas::TemplateSubmit::from_draft`). A provider
//!   failure is a 502, or a 503 with `Retry-After` when it throttled; when a create's outcome is
//!   unknown the problem says so. A provider whose create answers only an id (InnoPaaS) shows the
//!   draft as submitted, `PENDING`.
//! - **Account.** `GET /v1/senders/{name}/account` shows the sender's first account (or the one
//!   named by `?account=`): INCS's `/external/account` map as `details`, or InnoPaaS's phoneInfo
//!   numbers as `phone_numbers`; `messaging_limit_tier` and `quality_rating` are lifted to the top
//!   (InnoPaaS: those of the account's send number).

use actix_web::{delete, get, post, web, HttpRequest, HttpResponse};
use chrono::{DateTime, Utc};
use gateway_core::content::rcs::RcsContent;
use gateway_core::content::whatsapp::WhatsAppContent;
use gateway_core::template::{RcsTemplateDraft, WhatsAppTemplateDraft};
use gateway_core::validate::FieldErrors;
use gateway_core::{
    Channel, Content, ErrorClass, ProviderError, ProviderKind, ProviderTemplate, RejectScope, TemplateDraft,
    TemplateError, Templates,
};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use utoipa::{IntoParams, ToSchema};

use super::{read_body, AppState};
use crate::accounts::Account;
use crate::config::{Scope, SenderConfig};
use crate::http::auth::Caller;
use crate::http::problem::{from_json_error, ApiError};
use crate::inbound::templates::{
    to_seconds, CachedTemplate, MergedStatus, TemplateCache, TemplateSnapshot, TemplateVariables,
};
use gateway_core::template::variables::{rcs_variables, WhatsAppVariables};

/// Separates the account from the provider's template id in a template id.
pub const ID_SEPARATOR: char = '~';
const DEFAULT_LIMIT: u32 = 20;
const MAX_LIMIT: u32 = 100;
/// Provider calls one list page may make (a `status` filter can leave pages thin).
const MAX_CALLS_PER_PAGE: usize = 5;

/// A provider template as the gateway shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateOut {
    /// `<account>~<provider template id>`.
    #[schema(example = "incs-whatsapp~4166201267033543")]
    pub id: String,
    #[schema(example = "hk-main")]
    pub sender: String,
    #[schema(example = "incs-whatsapp")]
    pub account: String,
    pub provider: ProviderKind,
    pub channel: Channel,
    /// The provider's id for it.
    #[schema(example = "4166201267033543")]
    pub provider_template_id: String,
    #[schema(example = "test_api_2")]
    pub name: String,
    /// WhatsApp: the template's language.
    #[schema(example = "en_US")]
    pub language: Option<String>,
    /// WhatsApp `MARKETING`, `UTILITY`, `AUTHENTICATION`; RCS `PROMOTION`, `TRANSACTION`, `AUTHENTICATION`.
    #[schema(example = "MARKETING")]
    pub category: Option<String>,
    /// RCS: `text`, `richcard` or `carousel`.
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// `PENDING`, `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, ... as the provider spells it.
    #[schema(example = "APPROVED")]
    pub status: Option<String>,
    /// WhatsApp quality rating: `GREEN`, `YELLOW`, `RED`.
    #[schema(example = "GREEN")]
    pub quality: Option<String>,
    /// WhatsApp: Meta template components, as the provider holds them.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<Object>>)]
    pub components: Option<Vec<Value>>,
    /// RCS: the template content, as INCS holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>)]
    pub content: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub status_updated_at: Option<DateTime<Utc>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TemplateList {
    pub items: Vec<TemplateOut>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// Query of `GET /v1/templates`.
#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct TemplateQuery {
    /// Only this channel's templates (`whatsapp` or `rcs`).
    pub channel: Option<Channel>,
    /// Only this sender's templates.
    #[param(min_length = 1)]
    pub sender: Option<String>,
    /// Only templates with this status (`APPROVED`, `PENDING`, `REJECTED`, ...).
    pub status: Option<String>,
    /// The `next_cursor` of the previous page.
    #[param(min_length = 1)]
    pub cursor: Option<String>,
    /// Page size, 1 to 100 (default 20).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
}

/// The query as it arrives, every value text, so a bad one is a 422 naming it.
#[derive(Debug, Deserialize)]
struct RawQuery {
    channel: Option<String>,
    sender: Option<String>,
    status: Option<String>,
    cursor: Option<String>,
    limit: Option<String>,
}

/// `POST /v1/templates`: `sender` and `channel`, and the draft's own fields beside them.
#[derive(Debug, Serialize, ToSchema)]
#[schema(example = json!({
    "sender": "hk-main",
    "channel": "whatsapp",
    "name": "test_api_2",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
         "example": {"body_text": [["1", "2"]]}},
        {"type": "FOOTER", "text": "Good night"}
    ]
}))]
pub struct TemplateIn {
    /// A configured sender; default: the channel's default sender.
    #[schema(example = "hk-main")]
    pub sender: Option<String>,
    /// `whatsapp` or `rcs`.
    pub channel: Channel,
    /// The rest of the body: a WhatsApp template (`name`, `language`, `category`, `components`) or
    /// an RCS template (`name`, `type`, `category`, `content`).
    #[serde(flatten)]
    pub draft: DraftIn,
}

#[derive(Debug, Serialize, ToSchema)]
#[serde(untagged)]
pub enum DraftIn {
    Whatsapp(WhatsAppTemplateDraft),
    Rcs(Box<RcsTemplateDraft>),
}

/// One phone number of an InnoPaaS WABA.
#[derive(Debug, Serialize, ToSchema)]
pub struct PhoneNumberOut {
    #[schema(example = "110200345501442")]
    pub id: String,
    #[schema(example = "+852 3001 2345")]
    pub display_phone_number: Option<String>,
    #[schema(example = "Lucky Shrub")]
    pub verified_name: Option<String>,
    #[schema(example = "CONNECTED")]
    pub status: Option<String>,
    #[schema(example = "GREEN")]
    pub quality_rating: Option<String>,
    /// InnoPaaS `messageLimit`.
    #[schema(example = "TIER_250")]
    pub messaging_limit_tier: Option<String>,
}

/// What the provider says of a sender's account.
#[derive(Debug, Serialize, ToSchema)]
pub struct SenderAccountOut {
    #[schema(example = "hk-main")]
    pub sender: String,
    #[schema(example = "incs-whatsapp")]
    pub account: String,
    pub provider: ProviderKind,
    /// Meta's messaging limit tier (`TIER_250`, `TIER_1K`, ...), when the provider says.
    #[schema(example = "TIER_1K")]
    pub messaging_limit_tier: Option<String>,
    #[schema(example = "GREEN")]
    pub quality_rating: Option<String>,
    /// INCS: `GET /external/account`'s `data`, as INCS gives it.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Object>, example = json!({"display_phone_number": "+62 815-1923-6680",
        "verified_name": "Sandbox Business", "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K"}))]
    pub details: Option<Map<String, Value>>,
    /// InnoPaaS: the WABA's phone numbers (`account/phoneInfo`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone_numbers: Option<Vec<PhoneNumberOut>>,
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SenderAccountQuery {
    /// One of the sender's accounts; default: its first.
    pub account: Option<String>,
}

fn invalid(field: &str, reason: impl Into<String>) -> ApiError {
    ApiError::Validation(FieldErrors::single(field, reason))
}

/// A provider failure, as the API answers it.
pub fn provider_error(provider: ProviderKind, e: ProviderError) -> ApiError {
    tracing::warn!(%provider, class = e.class.label(), provider_code = e.provider_code.as_deref(), title = %e.title, "template call failed");
    match e.class {
        ErrorClass::Rejected(RejectScope::Content) => ApiError::ProviderRejected(format!("{provider} refused it: {}", e.title)),
        ErrorClass::Rejected(RejectScope::Account) => ApiError::ProviderFailed {
            detail: format!("{provider} refused this account ({}); check its configuration", e.title),
            retry_after_secs: None,
        },
        ErrorClass::Throttled { retry_after, .. } => ApiError::ProviderFailed {
            detail: format!("{provider} asked us to slow down"),
            retry_after_secs: Some(retry_after.map_or(1, |d| d.as_secs().max(1))),
        },
        ErrorClass::Transient if e.outcome_unknown => ApiError::ProviderFailed {
            detail: format!(
                "{provider} did not answer usefully ({}); the template may have been created, so list the templates before trying again",
                e.title
            ),
            retry_after_secs: None,
        },
        ErrorClass::Transient => ApiError::ProviderFailed {
            detail: format!("{provider} did not answer usefully ({})", e.title),
            retry_after_secs: None,
        },
    }
}

fn template_id(account: &str, provider_id: &str) -> String {
    format!("{account}{ID_SEPARATOR}{provider_id}")
}

/// `<account>~<provider id>` into its parts, or 404.
fn parse_id<'a>(state: &'a AppState, raw: &str) -> Result<(&'a Account, String), ApiError> {
    let not_found = || ApiError::NotFound(format!("template `{raw}`"));
    let (account, provider_id) = raw.split_once(ID_SEPARATOR).ok_or_else(not_found)?;
    if provider_id.is_empty() {
        return Err(not_found());
    }
    let account = state.accounts.get(account).ok_or_else(not_found)?;
    Ok((account.as_ref(), provider_id.to_owned()))
}

fn cache(state: &AppState) -> TemplateCache {
    state.templates.clone()
}

/// The cache's merge of a provider read; a cache that cannot be reached leaves the provider's
/// view as it is (templates are the provider's; the cache only adds what callbacks said).
async fn merged(cache: &TemplateCache, account: &str, snapshot: TemplateSnapshot) -> MergedStatus {
    let provider_view =
        MergedStatus { changed: false, status: snapshot.status.clone(), status_at: Some(snapshot.status_at) };
    match cache.upsert(account, &snapshot).await {
        Ok(m) => m,
        Err(e) => {
            tracing::warn!(error = %e, account, "template cache unavailable; showing the provider's view");
            provider_view
        }
    }
}

/// What a provider's answer says, stamped: the provider's times, else `now` (whole seconds). Only
/// a provider's own description says what a send must fill in.
fn snapshot(t: &ProviderTemplate, now: DateTime<Utc>) -> TemplateSnapshot {
    let created = t.created_at.unwrap_or(now);
    let variables = match (&t.components, &t.content) {
        _ if t.as_submitted => None,
        (Some(components), _) => WhatsAppVariables::from_meta_components(components).map(TemplateVariables::Whatsapp),
        (None, Some(content)) => Some(TemplateVariables::Rcs(rcs_variables(content))),
        (None, None) => None,
    };
    TemplateSnapshot {
        template_id: t.template_id.clone(),
        name: t.name.clone(),
        language: t.language.clone(),
        status: t.status.clone(),
        status_at: t.status_updated_at.or(t.updated_at).unwrap_or(created),
        category: t.category.clone(),
        category_at: t.category_updated_at.unwrap_or(created),
        quality: t.quality.clone(),
        quality_at: t.quality_updated_at.unwrap_or(created),
        variables,
    }
}

/// A provider's template as the API shows it, after merging it into the cache.
async fn provider_out(cache: &TemplateCache, account: &Account, t: ProviderTemplate) -> TemplateOut {
    let merged = merged(cache, &account.name, snapshot(&t, to_seconds(Utc::now()))).await;
    TemplateOut {
        id: template_id(&account.name, &t.template_id),
        sender: account.sender.clone(),
        account: account.name.clone(),
        provider: account.provider,
        channel: account.channel,
        provider_template_id: t.template_id,
        name: t.name,
        language: t.language,
        category: t.category,
        kind: t.kind,
        status: merged.status.or(t.status),
        quality: t.quality,
        components: t.components,
        content: t.content,
        created_at: t.created_at,
        updated_at: t.updated_at.max(merged.status_at),
        status_updated_at: merged.status_at.or(t.status_updated_at),
    }
}

fn cached_out(account: &Account, t: CachedTemplate, components: Option<Vec<Value>>) -> TemplateOut {
    TemplateOut {
        id: template_id(&account.name, &t.template_id),
        sender: account.sender.clone(),
        account: account.name.clone(),
        provider: account.provider,
        channel: account.channel,
        provider_template_id: t.template_id,
        name: t.name,
        language: t.language,
        category: t.category,
        kind: None,
        status: t.status,
        quality: t.quality,
        components,
        content: None,
        created_at: None,
        updated_at: Some(t.updated_at),
        status_updated_at: t.status_at,
    }
}

/// The account's template management, when its provider keeps templates of the account's
/// channel.
fn templates_of(account: &Account) -> Option<&dyn Templates> {
    account.adapter.templates().filter(|t| t.keeps(account.channel))
}

/// A template call's failure, as the API answers it.
fn template_error(provider: ProviderKind, e: TemplateError) -> ApiError {
    match e {
        TemplateError::Draft(fields) => ApiError::Validation(fields),
        TemplateError::NotOffered(what) => ApiError::ProviderRejected(what),
        TemplateError::Provider(e) => provider_error(provider, e),
    }
}

/// One page of one account's templates: the templates and how many the provider returned.
async fn fetch(
    state: &AppState,
    account: &Account,
    after: Option<&str>,
    count: u32,
) -> Result<(Vec<TemplateOut>, usize, Option<String>), ApiError> {
    let cache = cache(state);
    match templates_of(account) {
        Some(templates) if templates.readable() => {
            let page =
                templates.list(account.channel, after, count).await.map_err(|e| template_error(account.provider, e))?;
            let (n, last) = (page.len(), page.last().map(|t| t.template_id.clone()));
            let mut out = Vec::with_capacity(n);
            for t in page {
                out.push(provider_out(&cache, account, t).await);
            }
            Ok((out, n, last))
        }
        Some(_) => {
            let page = cache.page(&account.name, after, count as usize).await?;
            let (n, last) = (page.len(), page.last().map(|t| t.template_id.clone()));
            Ok((page.into_iter().map(|t| cached_out(account, t, None)).collect(), n, last))
        }
        None => Ok((Vec::new(), 0, None)),
    }
}

/// How long a send does not read the provider again for a template it read for already.
pub const LOOKUP_QUIET: std::time::Duration = std::time::Duration::from_secs(600);
/// A send's read of the provider goes through at most this many pages of [`LOOKUP_PAGE`].
const LOOKUP_PAGES: usize = 5;
const LOOKUP_PAGE: u32 = 100;

/// Before a template send is checked against its template: when no provider read has described
/// the template at any of the route's accounts, the first INCS account of the route is read for it
/// once (InnoPaaS has no read API), every template read on the way going into the cache, so the
/// check that follows has the template's variables. A provider that fails, or a template it does
/// not have, leaves the send to the provider's own judgement, and the read is not repeated for
/// [`LOOKUP_QUIET`].
///
/// # Errors
/// A 503 when Redis is unreachable.
pub async fn describe_once(state: &AppState, lanes: &[String], content: &Content) -> Result<(), ApiError> {
    let (name, language, channel) = match content {
        Content::Whatsapp(WhatsAppContent::Template(t)) => (&t.name, t.language.as_deref(), Channel::Whatsapp),
        Content::Rcs(RcsContent::Template(t)) => (&t.name, None, Channel::Rcs),
        _ => return Ok(()),
    };
    let cache = cache(state);
    for lane in lanes {
        if cache.variables(lane, name, language).await?.is_some() {
            return Ok(());
        }
    }
    let readable = lanes
        .iter()
        .filter_map(|l| state.accounts.get(l))
        .find(|a| a.channel == channel && templates_of(a).is_some_and(|t| t.readable()));
    let Some(account) = readable else { return Ok(()) };
    if cache.recently_looked_up(&account.name, name).await? {
        return Ok(());
    }
    let mut after: Option<String> = None;
    for _ in 0..LOOKUP_PAGES {
        match fetch(state, account, after.as_deref(), LOOKUP_PAGE).await {
            Ok((page, n, last)) => {
                if page.iter().any(|t| &t.name == name) || n < LOOKUP_PAGE as usize {
                    break;
                }
                after = last;
            }
            Err(e) => {
                tracing::warn!(account = %account.name, template = %name, error = ?e, "could not read the provider's templates; the send is not checked");
                break;
            }
        }
    }
    cache.looked_up(&account.name, name, LOOKUP_QUIET).await.map_err(ApiError::from)
}

fn encode_cursor(sender: &str, after: Option<&str>) -> String {
    hex::encode(format!("{sender}\n{}", after.unwrap_or("")))
}

fn decode_cursor(cursor: &str) -> Option<(String, Option<String>)> {
    let text = String::from_utf8(hex::decode(cursor).ok()?).ok()?;
    let (sender, after) = text.split_once('\n')?;
    Some((sender.to_owned(), Some(after.to_owned()).filter(|a| !a.is_empty())))
}

/// The account a sender's templates live with.
fn template_account<'a>(state: &'a AppState, sender: &SenderConfig) -> Option<&'a Account> {
    sender.accounts.first().and_then(|name| state.accounts.get(name)).map(AsRef::as_ref)
}

/// List templates.
///
/// Walks the senders in configuration order (each at its first account), page by page. INCS
/// templates are read from INCS (and refresh the template status cache); InnoPaaS templates come
/// from the cache, since InnoPaaS has no list API.
#[utoipa::path(get, path = "/v1/templates", operation_id = "v1.templates.list", tag = "templates",
    params(TemplateQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "One page of templates", body = TemplateList),
        (status = 422, description = "A bad filter, cursor or limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider throttled us, or the template cache is unavailable", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals,
    ))]
#[get("/v1/templates")]
pub async fn list(req: HttpRequest, caller: Caller, state: web::Data<AppState>) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let query = web::Query::<RawQuery>::from_query(req.query_string())
        .map_err(|e| invalid("query", format!("not a valid query string: {e}")))?
        .into_inner();
    let channel = match query.channel.as_deref() {
        None => None,
        Some("whatsapp") => Some(Channel::Whatsapp),
        Some("rcs") => Some(Channel::Rcs),
        Some(_) => return Err(invalid("channel", "`whatsapp` or `rcs` (only they have templates)")),
    };
    if let Some(s) = &query.sender {
        if !state.senders.iter().any(|c| &c.name == s) {
            return Err(invalid("sender", format!("no sender named `{s}`")));
        }
    }
    let limit = match query.limit.as_deref() {
        None => DEFAULT_LIMIT,
        Some(l) => {
            l.parse::<u32>().ok().filter(|l| (1..=MAX_LIMIT).contains(l)).ok_or_else(|| invalid("limit", "1 to 100"))?
        }
    };
    let status = query.status.as_deref().map(|s| s.trim().to_ascii_uppercase());
    let scope: Vec<(&SenderConfig, &Account)> = state
        .senders
        .iter()
        .filter(|s| matches!(s.channel, Channel::Whatsapp | Channel::Rcs))
        .filter(|s| channel.is_none_or(|c| c == s.channel))
        .filter(|s| query.sender.as_ref().is_none_or(|n| n == &s.name))
        .filter_map(|s| template_account(&state, s).map(|a| (s, a)))
        .collect();
    let (mut index, mut after) = match query.cursor.as_deref() {
        None => (0, None),
        Some(c) => {
            let bad = || invalid("cursor", "not a cursor from this listing");
            let (sender, after) = decode_cursor(c).ok_or_else(bad)?;
            // A cursor is a position in the configured senders, so it stays valid under other
            // filters: the page starts at the first sender in scope at or after it.
            let position = |name: &str| state.senders.iter().position(|s| s.name == name);
            let at = position(&sender).ok_or_else(bad)?;
            let index = scope.iter().position(|(s, _)| position(&s.name) >= Some(at)).unwrap_or(scope.len());
            let same = scope.get(index).is_some_and(|(s, _)| s.name == sender);
            (index, after.filter(|_| same))
        }
    };
    let mut items = Vec::new();
    let mut calls = 0;
    while items.len() < limit as usize && index < scope.len() && calls < MAX_CALLS_PER_PAGE {
        let want = limit - items.len() as u32;
        let (page, returned, last) = fetch(&state, scope[index].1, after.as_deref(), want).await?;
        calls += 1;
        items.extend(page.into_iter().filter(|t| status.as_ref().is_none_or(|s| t.status.as_ref() == Some(s))));
        if returned < want as usize {
            index += 1;
            after = None;
        } else {
            after = last;
        }
    }
    let next_cursor = (index < scope.len()).then(|| encode_cursor(&scope[index].0.name, after.as_deref()));
    Ok(HttpResponse::Ok().json(TemplateList { items, next_cursor }))
}

/// Create a template.
///
/// The body is `sender` (default: the channel's default sender), `channel` and the template:
/// for WhatsApp Meta's `{name, language, category, components}`, for RCS INCS's
/// `{name, type, category, content}`. It is validated first (422 naming the field), then created
/// at the sender's first account; the provider reviews it and its status arrives by callback.
#[utoipa::path(post, path = "/v1/templates", operation_id = "v1.templates.create", tag = "templates",
    request_body(content = TemplateIn, description = "`sender`, `channel`, and a WhatsApp or RCS template", examples(
        ("whatsapp" = (summary = "A WhatsApp template (INCS's example)", value = json!({
            "sender": "hk-main", "channel": "whatsapp", "name": "test_api_2", "language": "en_US", "category": "MARKETING",
            "components": [
                {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
                 "example": {"body_text": [["1", "2"]]}},
                {"type": "FOOTER", "text": "Good night"}]}))),
        ("rcs" = (summary = "An RCS text template (INCS's example)", value = json!({
            "sender": "rcs-main", "channel": "rcs", "name": "test_template", "type": "text", "category": "TRANSACTION",
            "content": {"textMessage": "Dear [name], your order [order_id] has been shipped.",
                        "suggestions": [{"suggestionType": "reply", "text": "Thanks", "postbackData": "thanks"}]}}))),
    )),
    security(("api_key" = [])),
    responses(
        (status = 201, description = "Created; the provider reviews it", body = TemplateOut,
            headers(("Location" = String, description = "The template's URL"))),
        (status = 400, description = "Malformed JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 413, description = "Body over the size limit", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 415, description = "Body is not JSON", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "Validation failed (the field is named), or the provider refused the template", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed; when its outcome is unknown the detail says so", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider throttled us", body = crate::http::problem::Problem, content_type = "application/problem+json",
            headers(("Retry-After" = u64, description = "Seconds to wait"))),
        crate::http::problem::AdminRefusals,
    ))]
#[post("/v1/templates")]
pub async fn create(
    req: HttpRequest,
    caller: Caller,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let body = read_body(&req, payload, state.max_body_bytes).await?;
    let mut fields = match serde_json::from_slice::<Value>(&body) {
        Ok(Value::Object(fields)) => fields,
        Ok(_) => return Err(invalid("body", "must be a JSON object")),
        Err(e) if e.classify() == serde_json::error::Category::Data => {
            return Err(invalid("body", "must be a JSON object"))
        }
        Err(e) => return Err(ApiError::MalformedJson(e.to_string())),
    };
    let channel = match fields.remove("channel") {
        None => return Err(invalid("channel", "required: `whatsapp` or `rcs`")),
        Some(Value::String(c)) if c == "whatsapp" => Channel::Whatsapp,
        Some(Value::String(c)) if c == "rcs" => Channel::Rcs,
        Some(_) => return Err(invalid("channel", "`whatsapp` or `rcs` (only they have templates)")),
    };
    let sender = match fields.remove("sender") {
        None | Some(Value::Null) => state
            .senders
            .iter()
            .find(|s| s.channel == channel && s.default)
            .ok_or_else(|| invalid("sender", format!("required: there is no default {channel} sender")))?,
        Some(Value::String(name)) => state
            .senders
            .iter()
            .find(|s| s.name == name)
            .ok_or_else(|| invalid("sender", format!("no sender named `{name}`")))?,
        Some(_) => return Err(invalid("sender", "must be a string")),
    };
    if sender.channel != channel {
        return Err(invalid("channel", format!("sender `{}` is a {} sender", sender.name, sender.channel)));
    }
    let account = template_account(&state, sender).ok_or(ApiError::Internal)?;
    let Some(templates) = templates_of(account) else {
        return Err(invalid("channel", format!("{} has no {channel} templates", account.provider)));
    };
    let rest = Value::Object(fields);
    let created = match channel {
        Channel::Rcs => {
            let draft: RcsTemplateDraft = serde_path_to_error::deserialize(rest).map_err(from_json_error)?;
            draft.validate().map_err(ApiError::Validation)?;
            templates.create(TemplateDraft::Rcs(&draft)).await
        }
        _ => {
            let draft: WhatsAppTemplateDraft = serde_path_to_error::deserialize(rest).map_err(from_json_error)?;
            draft
                .validate(&crate::providers::family(account.provider).template_limits())
                .map_err(ApiError::Validation)?;
            templates.create(TemplateDraft::Whatsapp(&draft)).await
        }
    };
    let created = created.map_err(|e| template_error(account.provider, e))?;
    let out = provider_out(&cache(&state), account, created).await;
    tracing::info!(template = %out.id, name = %out.name, "template created");
    Ok(HttpResponse::Created().insert_header(("Location", format!("/v1/templates/{}", out.id))).json(out))
}

/// Get a template.
///
/// INCS templates are read from INCS; the status shown is the template status cache's when a
/// callback brought a newer one. InnoPaaS templates are read from the cache.
#[utoipa::path(get, path = "/v1/templates/{id}", operation_id = "v1.templates.get", tag = "templates",
    params(("id" = String, Path, description = "`<account>~<provider template id>`", example = "incs-whatsapp~4166201267033543")),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The template", body = TemplateOut),
        (status = 404, description = "No such template", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider throttled us, or the template cache is unavailable", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals,
    ))]
#[get("/v1/templates/{id}")]
pub async fn get(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let raw = path.into_inner();
    let (account, provider_id) = parse_id(&state, &raw)?;
    let not_found = || ApiError::NotFound(format!("template `{raw}`"));
    let cache = cache(&state);
    let Some(templates) = templates_of(account) else { return Err(not_found()) };
    let out = if templates.readable() {
        let read = templates.get(account.channel, &provider_id).await;
        match read.map_err(|e| template_error(account.provider, e))? {
            Some(t) => provider_out(&cache, account, t).await,
            None => return Err(forget(&cache, account, &provider_id, not_found()).await),
        }
    } else {
        let t = cache.by_id(&account.name, &provider_id).await?.ok_or_else(not_found)?;
        cached_out(account, t, None)
    };
    Ok(HttpResponse::Ok().json(out))
}

/// A template the provider no longer has leaves the cache too.
async fn forget(cache: &TemplateCache, account: &Account, provider_id: &str, e: ApiError) -> ApiError {
    if let Err(err) = cache.remove(&account.name, provider_id).await {
        tracing::warn!(error = %err, "could not drop a deleted template from the cache");
    }
    e
}

/// Delete a template.
#[utoipa::path(delete, path = "/v1/templates/{id}", operation_id = "v1.templates.delete", tag = "templates",
    params(("id" = String, Path, description = "`<account>~<provider template id>`", example = "incs-whatsapp~4166201267033543")),
    security(("api_key" = [])),
    responses(
        (status = 204, description = "Deleted at the provider"),
        (status = 404, description = "No such template", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 422, description = "The provider refused, or offers no deletion (InnoPaaS)", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider throttled us", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::AdminRefusals,
    ))]
#[delete("/v1/templates/{id}")]
pub async fn remove(
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Admin)?;
    let raw = path.into_inner();
    let (account, provider_id) = parse_id(&state, &raw)?;
    let not_found = || ApiError::NotFound(format!("template `{raw}`"));
    let Some(templates) = templates_of(account) else { return Err(not_found()) };
    let deleted =
        templates.delete(account.channel, &provider_id).await.map_err(|e| template_error(account.provider, e))?;
    let cache = cache(&state);
    if !deleted {
        return Err(forget(&cache, account, &provider_id, not_found()).await);
    }
    if let Err(e) = cache.remove(&account.name, &provider_id).await {
        tracing::warn!(error = %e, "could not drop a deleted template from the cache");
    }
    tracing::info!(template = %raw, "template deleted");
    Ok(HttpResponse::NoContent().finish())
}

/// What the provider says of a sender's account: messaging limit tier, quality rating, and the
/// provider's own details.
#[utoipa::path(get, path = "/v1/senders/{name}/account", operation_id = "v1.senders.account", tag = "senders",
    params(("name" = String, Path, description = "The sender", example = "hk-main"), SenderAccountQuery),
    security(("api_key" = [])),
    responses(
        (status = 200, description = "The account as the provider reports it", body = SenderAccountOut),
        (status = 404, description = "No such sender, or the account is not one of its", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 502, description = "The provider failed", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        (status = 503, description = "The provider throttled us", body = crate::http::problem::Problem, content_type = "application/problem+json"),
        crate::http::problem::ReadRefusals,
    ))]
#[get("/v1/senders/{name}/account")]
pub async fn sender_account(
    req: HttpRequest,
    caller: Caller,
    path: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    caller.require(Scope::Read)?;
    let name = path.into_inner();
    let query = web::Query::<SenderAccountQuery>::from_query(req.query_string())
        .map_err(|e| invalid("query", format!("not a valid query string: {e}")))?
        .into_inner();
    let sender =
        state.senders.iter().find(|s| s.name == name).ok_or_else(|| ApiError::NotFound(format!("sender `{name}`")))?;
    let account_name = match &query.account {
        Some(a) if sender.accounts.contains(a) => a,
        Some(a) => return Err(ApiError::NotFound(format!("account `{a}` of sender `{name}`"))),
        None => sender.accounts.first().ok_or(ApiError::Internal)?,
    };
    let account = state.accounts.get(account_name).ok_or(ApiError::Internal)?;
    let Some(info) = account.adapter.account_info() else {
        return Err(ApiError::NotFound(format!("a description of account `{}`", account.name)));
    };
    let about = info.describe().await.map_err(|e| provider_error(account.provider, e))?;
    let out = SenderAccountOut {
        sender: name,
        account: account.name.clone(),
        provider: account.provider,
        messaging_limit_tier: about.messaging_limit_tier,
        quality_rating: about.quality_rating,
        details: about.details,
        phone_numbers: about.phone_numbers.map(|numbers| {
            numbers
                .into_iter()
                .map(|p| PhoneNumberOut {
                    id: p.id,
                    display_phone_number: p.display_phone_number,
                    verified_name: p.verified_name,
                    status: p.status,
                    quality_rating: p.quality_rating,
                    messaging_limit_tier: p.messaging_limit_tier,
                })
                .collect()
        }),
    };
    Ok(HttpResponse::Ok().json(out))
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn provider_failures_map_to_statuses() {
        let incs = || "incs".parse::<ProviderKind>().unwrap();
        use actix_web::ResponseError;
        use std::time::Duration;
        let status = |e: ProviderError| {
            let api = provider_error(incs(), e);
            let res = api.error_response();
            (api.status_code().as_u16(), res.headers().get("retry-after").map(|v| v.to_str().unwrap_or("").to_owned()))
        };
        let content = ProviderError::new(ErrorClass::Rejected(RejectScope::Content), "category require");
        assert_eq!(status(content), (422, None));
        let account = ProviderError::new(ErrorClass::Rejected(RejectScope::Account), "Certification code invalid");
        assert_eq!(status(account), (502, None));
        let throttled = ProviderError::new(
            ErrorClass::Throttled {
                retry_after: Some(Duration::from_secs(7)),
                scope: gateway_core::ThrottleScope::Lane,
            },
            "Too Many Attempts.",
        );
        assert_eq!(status(throttled), (503, Some("7".into())));
        assert_eq!(status(ProviderError::transient("Server Error")), (502, None));
        let unknown = provider_error(incs(), ProviderError::transient("timeout").with_outcome_unknown());
        assert!(unknown.to_string().contains("may have been created"), "{unknown}");
    }

    #[test]
    fn cursors_round_trip() {
        assert_eq!(
            decode_cursor(&encode_cursor("hk-main", Some("41662"))),
            Some(("hk-main".into(), Some("41662".into())))
        );
        assert_eq!(decode_cursor(&encode_cursor("rcs-main", None)), Some(("rcs-main".into(), None)));
        assert_eq!(decode_cursor("zz"), None);
        assert_eq!(decode_cursor(&hex::encode("no newline")), None);
    }
}
