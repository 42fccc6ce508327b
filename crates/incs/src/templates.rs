//! Templates and the account, on the api host family (PROVIDERS.md §1.6, §1.7): WABA templates at
//! `/external/templates`, RCS templates at `/external/templates/rcs` (create, list, get, delete),
//! and `GET /external/account`. Every call carries the api family's certification code and goes
//! through the same envelope parsing and classification as a send.
//!
//! # Decisions where INCS is silent
//! - **Not found.** INCS answers a missing template with code 400 and "The template is not
//!   found."; an error envelope with code 400 or 404 whose message says "not found" is read as
//!   "no such template" (`Ok(None)` from a get, `Ok(false)` from a delete), anything else stays an
//!   error. A 404 without an envelope is a missing route, not a missing template.
//! - **Drafts are checked first.** A draft core refuses ([`WhatsAppTemplateDraft::validate`] with
//!   INCS's limits, [`RcsTemplateDraft::validate`]) fails as `Rejected(Content)` before any
//!   request.
//! - **Paging.** `count` is 1 to 100 (INCS's maximum), refused before any request otherwise;
//!   `last_id` is the last `template_id` of the previous page. A list answer is `data` as an array
//!   (or, leniently, `data.data`).
//! - **Resources** are read leniently: ids and times may be numbers or strings; times are Unix
//!   seconds and 0 means unset; an empty `quality` is `None`. Components and RCS content are kept
//!   as INCS returns them (a template created elsewhere may use fields the drafts do not model).
//!   An entry without a `template_id` fails a get or create as `Transient` and is skipped (and
//!   logged) in a list.
//! - **Outcomes.** A create that times out or gets a 2xx without an envelope is `Transient` with
//!   `outcome_unknown` (the template may exist); reads and deletes never are.

use std::time::Instant;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use gateway_core::template::{RcsTemplateDraft, TemplateLimits, WhatsAppTemplateDraft};
use gateway_core::{
    AccountDescription, AccountInfo, Channel, ErrorClass, ProviderError, ProviderTemplate, RejectScope, TemplateDraft,
    TemplateError, Templates,
};
use reqwest::header::CONTENT_TYPE;
use reqwest::Method;
use serde_json::{Map, Value};
use url::Url;

use crate::account::{IncsAccount, CERTIFICATION_CODE};
use crate::classify::Call;
use crate::wire::Envelope;

mod wire;

use wire::{RcsTemplateBody, RcsTemplateResource, TemplateResource, WabaTemplateBody};

/// At most this many templates per list call (INCS's maximum; its default is 10).
pub const MAX_TEMPLATE_PAGE: u32 = 100;

const WABA_PATH: &str = "/external/templates";
const RCS_PATH: &str = "/external/templates/rcs";
const ACCOUNT_PATH: &str = "/external/account";

/// A WhatsApp template as INCS describes it (PROVIDERS.md §1.6).
#[derive(Debug, Clone, PartialEq)]
pub struct IncsTemplate {
    pub template_id: String,
    pub name: String,
    pub language: String,
    /// `MARKETING`, `UTILITY`, ...
    pub category: String,
    /// `PENDING`, `APPROVED`, `REJECTED`, `PAUSED`, `DISABLED`, ...
    pub status: String,
    /// `GREEN`, `YELLOW`, `RED`; `None` while unrated (INCS sends `""`).
    pub quality: Option<String>,
    /// Meta template components, as INCS returns them.
    pub components: Vec<Value>,
    pub created_time: Option<DateTime<Utc>>,
    pub updated_time: Option<DateTime<Utc>>,
    pub status_updated_time: Option<DateTime<Utc>>,
    pub quality_updated_time: Option<DateTime<Utc>>,
    pub category_updated_time: Option<DateTime<Utc>>,
}

/// An RCS template as INCS describes it (PROVIDERS.md §1.7).
#[derive(Debug, Clone, PartialEq)]
pub struct IncsRcsTemplate {
    pub template_id: String,
    pub name: String,
    /// `text`, `richcard` or `carousel`.
    pub kind: String,
    /// `PROMOTION`, `TRANSACTION`, `AUTHENTICATION`, when INCS reports one.
    pub category: Option<String>,
    pub status: String,
    /// The template content, as INCS returns it.
    pub content: Value,
    pub created_time: Option<DateTime<Utc>>,
    pub updated_time: Option<DateTime<Utc>>,
    pub status_updated_time: Option<DateTime<Utc>>,
}

/// The two template families: where they live and how their resources read.
#[derive(Debug, Clone, Copy)]
enum Family {
    Waba,
    Rcs,
}

impl Family {
    fn path(self) -> &'static str {
        match self {
            Family::Waba => WABA_PATH,
            Family::Rcs => RCS_PATH,
        }
    }
}

fn content_error(title: impl Into<String>) -> ProviderError {
    ProviderError::new(ErrorClass::Rejected(RejectScope::Content), title)
}

/// INCS's answer for a template it does not have (code 400, "The template is not found.").
fn is_not_found(e: &ProviderError) -> bool {
    matches!(e.provider_code.as_deref(), Some("400" | "404")) && e.title.to_ascii_lowercase().contains("not found")
}

fn checked_id(id: &str) -> Result<&str, ProviderError> {
    let trimmed = id.trim();
    if trimmed.is_empty() || trimmed.len() != id.len() {
        return Err(content_error("a template id must not be empty or padded with spaces"));
    }
    Ok(id)
}

fn checked_count(count: u32) -> Result<u32, ProviderError> {
    if !(1..=MAX_TEMPLATE_PAGE).contains(&count) {
        return Err(content_error(format!("count must be 1 to {MAX_TEMPLATE_PAGE}, got {count}")));
    }
    Ok(count)
}

/// `data` of a list answer: an array, or leniently `{data: [...]}`.
fn entries(data: Value, http_status: u16) -> Result<Vec<Value>, ProviderError> {
    match data {
        Value::Array(entries) => Ok(entries),
        Value::Object(mut o) => match o.remove("data") {
            Some(Value::Array(entries)) => Ok(entries),
            _ => Err(malformed("a template list answer without data[]", http_status)),
        },
        Value::Null => Ok(Vec::new()),
        _ => Err(malformed("a template list answer without data[]", http_status)),
    }
}

fn malformed(what: &str, http_status: u16) -> ProviderError {
    ProviderError::transient(format!("INCS answered {what}")).with_http_status(http_status).with_provider_code("200")
}

impl IncsAccount {
    /// Creates a WhatsApp template (`POST /external/templates`). Meta reviews it afterwards; the
    /// outcome arrives as a `template_status_update` callback.
    ///
    /// # Errors
    /// `Rejected(Content)` before any request for a draft INCS would refuse; otherwise the classes
    /// of a send (`"category require"` is code 400: `Rejected(Content)`), `Transient` with
    /// `outcome_unknown` when the template may have been created without us learning so.
    pub async fn create_template(&self, draft: &WhatsAppTemplateDraft) -> Result<IncsTemplate, ProviderError> {
        draft.validate(&TemplateLimits::INCS).map_err(|e| content_error(format!("template draft refused: {e}")))?;
        let body = WabaTemplateBody::new(draft);
        let (data, http_status) =
            self.api_json(Call::Create, Method::POST, Family::Waba, None, &[], Some(&body)).await?;
        TemplateResource::parse(data).ok_or_else(|| created_without_id(http_status))
    }

    /// One page of WhatsApp templates (`GET /external/templates?last_id=&count=`), after the
    /// template `last_id` (the last of the previous page), `count` at most 100.
    ///
    /// # Errors
    /// `Rejected(Content)` before any request for a `count` outside 1 to 100 or a blank `last_id`;
    /// otherwise the classes of a send, never `outcome_unknown`.
    pub async fn list_templates(&self, last_id: Option<&str>, count: u32) -> Result<Vec<IncsTemplate>, ProviderError> {
        let data = self.list(Family::Waba, last_id, count).await?;
        Ok(data.into_iter().filter_map(TemplateResource::parse_entry).collect())
    }

    /// One WhatsApp template (`GET /external/templates/{id}`); `None` when INCS does not have it.
    ///
    /// # Errors
    /// The classes of a send, never `outcome_unknown`.
    pub async fn get_template(&self, id: &str) -> Result<Option<IncsTemplate>, ProviderError> {
        match self.api_json(Call::Manage, Method::GET, Family::Waba, Some(checked_id(id)?), &[], None::<&()>).await {
            Ok((data, http_status)) => TemplateResource::parse(data)
                .map(Some)
                .ok_or_else(|| malformed("a template without template_id", http_status)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes a WhatsApp template (`DELETE /external/templates/{id}`); `false` when INCS does not
    /// have it.
    ///
    /// # Errors
    /// The classes of a send, never `outcome_unknown`.
    pub async fn delete_template(&self, id: &str) -> Result<bool, ProviderError> {
        self.delete(Family::Waba, id).await
    }

    /// Creates an RCS template (`POST /external/templates/rcs`).
    ///
    /// # Errors
    /// As [`Self::create_template`], with [`RcsTemplateDraft::validate`]'s rules.
    pub async fn create_rcs_template(&self, draft: &RcsTemplateDraft) -> Result<IncsRcsTemplate, ProviderError> {
        draft.validate().map_err(|e| content_error(format!("template draft refused: {e}")))?;
        let body = RcsTemplateBody::new(draft);
        let (data, http_status) =
            self.api_json(Call::Create, Method::POST, Family::Rcs, None, &[], Some(&body)).await?;
        RcsTemplateResource::parse(data).ok_or_else(|| created_without_id(http_status))
    }

    /// One page of RCS templates (`GET /external/templates/rcs?last_id=&count=`).
    ///
    /// # Errors
    /// As [`Self::list_templates`].
    pub async fn list_rcs_templates(
        &self,
        last_id: Option<&str>,
        count: u32,
    ) -> Result<Vec<IncsRcsTemplate>, ProviderError> {
        let data = self.list(Family::Rcs, last_id, count).await?;
        Ok(data.into_iter().filter_map(RcsTemplateResource::parse_entry).collect())
    }

    /// One RCS template (`GET /external/templates/rcs/{id}`); `None` when INCS does not have it.
    ///
    /// # Errors
    /// As [`Self::get_template`].
    pub async fn get_rcs_template(&self, id: &str) -> Result<Option<IncsRcsTemplate>, ProviderError> {
        match self.api_json(Call::Manage, Method::GET, Family::Rcs, Some(checked_id(id)?), &[], None::<&()>).await {
            Ok((data, http_status)) => RcsTemplateResource::parse(data)
                .map(Some)
                .ok_or_else(|| malformed("an RCS template without template_id", http_status)),
            Err(e) if is_not_found(&e) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// Deletes an RCS template (`DELETE /external/templates/rcs/{id}`); `false` when INCS does not
    /// have it.
    ///
    /// # Errors
    /// As [`Self::delete_template`].
    pub async fn delete_rcs_template(&self, id: &str) -> Result<bool, ProviderError> {
        self.delete(Family::Rcs, id).await
    }

    /// The WABA account behind this certification code (`GET /external/account`): INCS documents
    /// only `display_phone_number`, so the whole `data` object is returned as it is.
    ///
    /// # Errors
    /// The classes of a send, never `outcome_unknown`; `Transient` when `data` is not an object.
    pub async fn account(&self) -> Result<Map<String, Value>, ProviderError> {
        let (data, http_status) = self.api_call(Call::Manage, Method::GET, ACCOUNT_PATH, None, &[], None).await?;
        match data {
            Value::Object(map) => Ok(map),
            _ => Err(malformed("an account answer without data{}", http_status)),
        }
    }

    async fn list(&self, family: Family, last_id: Option<&str>, count: u32) -> Result<Vec<Value>, ProviderError> {
        let count = checked_count(count)?.to_string();
        let mut query = Vec::new();
        if let Some(last) = last_id {
            query.push(("last_id", checked_id(last)?));
        }
        query.push(("count", count.as_str()));
        let (data, http_status) = self.api_json(Call::Manage, Method::GET, family, None, &query, None::<&()>).await?;
        entries(data, http_status)
    }

    async fn delete(&self, family: Family, id: &str) -> Result<bool, ProviderError> {
        match self.api_json(Call::Manage, Method::DELETE, family, Some(checked_id(id)?), &[], None::<&()>).await {
            Ok(_) => Ok(true),
            Err(e) if is_not_found(&e) => Ok(false),
            Err(e) => Err(e),
        }
    }

    async fn api_json<B: serde::Serialize>(
        &self,
        call: Call,
        method: Method,
        family: Family,
        id: Option<&str>,
        query: &[(&str, &str)],
        body: Option<&B>,
    ) -> Result<(Value, u16), ProviderError> {
        let body = body
            .map(serde_json::to_vec)
            .transpose()
            .map_err(|e| content_error(format!("could not encode the template: {e}")))?;
        self.api_call(call, method, family.path(), id, query, body).await
    }

    /// One call on the api family: `{api_base}{path}[/{id}][?query]`, with the api family's code.
    async fn api_call(
        &self,
        call: Call,
        method: Method,
        path: &str,
        id: Option<&str>,
        query: &[(&str, &str)],
        body: Option<Vec<u8>>,
    ) -> Result<(Value, u16), ProviderError> {
        let (base, code) = self.api();
        let mut url = Url::parse(&format!("{base}{path}")).map_err(|e| {
            ProviderError::new(ErrorClass::Rejected(RejectScope::Account), format!("template URL: {e}"))
        })?;
        if let Some(id) = id {
            url.path_segments_mut()
                .map_err(|()| {
                    ProviderError::new(ErrorClass::Rejected(RejectScope::Account), "api_base_url cannot take a path")
                })?
                .push(id);
        }
        if !query.is_empty() {
            url.query_pairs_mut().extend_pairs(query);
        }
        tracing::debug!(%method, path, id, "calling the INCS api family");
        let mut request = self
            .client()
            .request(method, url)
            .header(CERTIFICATION_CODE, code.clone())
            .timeout(self.config().timeout());
        if let Some(body) = body {
            request = request.header(CONTENT_TYPE, "application/json").body(body);
        }
        let (Envelope { data, .. }, http_status) = self.exchange(call, request, Instant::now()).await?;
        Ok((data, http_status))
    }
}

/// A create answered `code: 200` without a readable template: it probably exists, under an id we
/// cannot tell.
fn created_without_id(http_status: u16) -> ProviderError {
    malformed("a created template without template_id", http_status).with_outcome_unknown()
}

/// INCS's text, `None` when it leaves it empty.
fn text(s: &str) -> Option<String> {
    Some(s.trim()).filter(|s| !s.is_empty()).map(str::to_owned)
}

impl From<IncsTemplate> for ProviderTemplate {
    fn from(t: IncsTemplate) -> Self {
        Self {
            language: text(&t.language),
            category: text(&t.category),
            kind: None,
            status: text(&t.status),
            quality: t.quality,
            components: Some(t.components),
            content: None,
            created_at: t.created_time,
            updated_at: t.updated_time,
            status_updated_at: t.status_updated_time,
            category_updated_at: t.category_updated_time,
            quality_updated_at: t.quality_updated_time,
            as_submitted: false,
            template_id: t.template_id,
            name: t.name,
        }
    }
}

impl From<IncsRcsTemplate> for ProviderTemplate {
    fn from(t: IncsRcsTemplate) -> Self {
        Self {
            language: None,
            category: t.category,
            kind: text(&t.kind),
            status: text(&t.status),
            quality: None,
            components: None,
            content: Some(t.content),
            created_at: t.created_time,
            updated_at: t.updated_time,
            status_updated_at: t.status_updated_time,
            category_updated_at: None,
            quality_updated_at: None,
            as_submitted: false,
            template_id: t.template_id,
            name: t.name,
        }
    }
}

fn all<T: Into<ProviderTemplate>>(page: Vec<T>) -> Vec<ProviderTemplate> {
    page.into_iter().map(Into::into).collect()
}

/// WhatsApp and RCS templates, read, created and deleted at INCS.
#[async_trait]
impl Templates for IncsAccount {
    fn keeps(&self, channel: Channel) -> bool {
        matches!(channel, Channel::Whatsapp | Channel::Rcs)
    }

    fn readable(&self) -> bool {
        true
    }

    async fn create(&self, draft: TemplateDraft<'_>) -> Result<ProviderTemplate, TemplateError> {
        Ok(match draft {
            TemplateDraft::Whatsapp(d) => self.create_template(d).await?.into(),
            TemplateDraft::Rcs(d) => self.create_rcs_template(d).await?.into(),
        })
    }

    async fn get(&self, channel: Channel, template_id: &str) -> Result<Option<ProviderTemplate>, TemplateError> {
        Ok(match channel {
            Channel::Whatsapp => self.get_template(template_id).await?.map(Into::into),
            Channel::Rcs => self.get_rcs_template(template_id).await?.map(Into::into),
            Channel::Viber => None,
        })
    }

    async fn list(
        &self,
        channel: Channel,
        after: Option<&str>,
        count: u32,
    ) -> Result<Vec<ProviderTemplate>, TemplateError> {
        Ok(match channel {
            Channel::Whatsapp => all(self.list_templates(after, count).await?),
            Channel::Rcs => all(self.list_rcs_templates(after, count).await?),
            Channel::Viber => Vec::new(),
        })
    }

    async fn delete(&self, channel: Channel, template_id: &str) -> Result<bool, TemplateError> {
        Ok(match channel {
            Channel::Whatsapp => self.delete_template(template_id).await?,
            Channel::Rcs => self.delete_rcs_template(template_id).await?,
            Channel::Viber => false,
        })
    }
}

/// The WABA behind the certification code: INCS's `data` as the details, with the tier and the
/// rating lifted out of it.
#[async_trait]
impl AccountInfo for IncsAccount {
    async fn describe(&self) -> Result<AccountDescription, ProviderError> {
        let details = self.account().await?;
        let text = |k: &str| details.get(k).and_then(Value::as_str).map(str::to_owned);
        Ok(AccountDescription {
            messaging_limit_tier: text("messaging_limit_tier"),
            quality_rating: text("quality_rating"),
            details: Some(details),
            phone_numbers: None,
        })
    }
}
