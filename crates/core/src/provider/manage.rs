//! What a provider account offers beyond sending, as optional capabilities of the port: managing
//! message templates ([`Templates`]) and describing the account ([`AccountInfo`]). Each answers in
//! provider-neutral types, so the API shows every provider's templates and accounts the same way.

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};

use crate::message::Channel;
use crate::provider::ProviderError;
use crate::template::{RcsTemplateDraft, WhatsAppTemplateDraft};
use crate::validate::FieldErrors;

/// A template to create: a validated draft of one channel.
#[derive(Debug, Clone, Copy)]
pub enum TemplateDraft<'a> {
    Whatsapp(&'a WhatsAppTemplateDraft),
    Rcs(&'a RcsTemplateDraft),
}

impl TemplateDraft<'_> {
    pub fn channel(self) -> Channel {
        match self {
            Self::Whatsapp(_) => Channel::Whatsapp,
            Self::Rcs(_) => Channel::Rcs,
        }
    }
}

/// A provider template: as the provider describes it, or, for a provider whose create answers
/// only an id, as it was submitted. Text fields are `None` when the provider leaves them empty.
#[derive(Debug, Clone, PartialEq)]
pub struct ProviderTemplate {
    /// The provider's id for it.
    pub template_id: String,
    pub name: String,
    /// WhatsApp: the template's language.
    pub language: Option<String>,
    pub category: Option<String>,
    /// RCS: `text`, `richcard` or `carousel`.
    pub kind: Option<String>,
    /// `PENDING`, `APPROVED`, `REJECTED`, ... as the provider spells it.
    pub status: Option<String>,
    /// WhatsApp quality rating: `GREEN`, `YELLOW`, `RED`.
    pub quality: Option<String>,
    /// WhatsApp: Meta template components.
    pub components: Option<Vec<Value>>,
    /// RCS: the template content.
    pub content: Option<Value>,
    pub created_at: Option<DateTime<Utc>>,
    pub updated_at: Option<DateTime<Utc>>,
    pub status_updated_at: Option<DateTime<Utc>>,
    pub category_updated_at: Option<DateTime<Utc>>,
    pub quality_updated_at: Option<DateTime<Utc>>,
    /// True when this is the draft as submitted rather than the provider's description: it says
    /// nothing of what the provider made of it, so sends are not checked against it.
    pub as_submitted: bool,
}

impl ProviderTemplate {
    /// A WhatsApp template the provider accepted for review at `at` (whole seconds) under `id`,
    /// known only from its draft.
    pub fn submitted(template_id: String, draft: &WhatsAppTemplateDraft, at: DateTime<Utc>) -> Self {
        Self {
            template_id,
            name: draft.name.clone(),
            language: Some(draft.language.clone()),
            category: Some(draft.category.as_str().into()),
            kind: None,
            status: Some("PENDING".into()),
            quality: None,
            components: Some(draft.components.iter().filter_map(|c| serde_json::to_value(c).ok()).collect()),
            content: None,
            created_at: Some(at),
            updated_at: None,
            status_updated_at: Some(at),
            category_updated_at: Some(at),
            quality_updated_at: Some(at),
            as_submitted: true,
        }
    }
}

/// Why a template call did not succeed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TemplateError {
    /// The draft cannot be put in the provider's terms; the fields at fault are named.
    #[error("the draft does not fit the provider: {0:?}")]
    Draft(FieldErrors),
    /// The provider has no API for this; the text says where it is done instead.
    #[error("{0}")]
    NotOffered(String),
    #[error(transparent)]
    Provider(#[from] ProviderError),
}

/// A provider account whose message templates the gateway manages.
///
/// # Errors
/// [`TemplateError::Provider`] classified as for a send (`outcome_unknown` when a create may have
/// happened unseen); [`TemplateError::Draft`] for a draft the provider's own shape cannot hold;
/// [`TemplateError::NotOffered`] for what the provider has no API for.
#[async_trait]
pub trait Templates: Send + Sync {
    /// Whether this account keeps templates for `channel`.
    fn keeps(&self, channel: Channel) -> bool;

    /// Whether the provider can be read for its templates ([`Self::get`], [`Self::list`]).
    /// Without, what the gateway created and what callbacks reported is all there is.
    fn readable(&self) -> bool;

    /// Creates a template from a draft already checked against the provider's template limits.
    async fn create(&self, draft: TemplateDraft<'_>) -> Result<ProviderTemplate, TemplateError>;

    /// One template, `None` when the provider has no such template.
    async fn get(&self, channel: Channel, template_id: &str) -> Result<Option<ProviderTemplate>, TemplateError>;

    /// Up to `count` templates after the one with id `after`, in the provider's order.
    async fn list(
        &self,
        channel: Channel,
        after: Option<&str>,
        count: u32,
    ) -> Result<Vec<ProviderTemplate>, TemplateError>;

    /// Deletes a template; `false` when the provider has no such template.
    async fn delete(&self, channel: Channel, template_id: &str) -> Result<bool, TemplateError>;
}

/// What a provider says of an account: the messaging limit tier and quality rating, and the
/// provider's own details.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountDescription {
    /// Meta's messaging limit tier (`TIER_250`, `TIER_1K`, ...), when the provider says.
    pub messaging_limit_tier: Option<String>,
    pub quality_rating: Option<String>,
    /// The provider's description of the account, as it gives it.
    pub details: Option<Map<String, Value>>,
    /// The phone numbers of the account's WhatsApp Business Account, when the provider lists them.
    pub phone_numbers: Option<Vec<BusinessNumber>>,
}

/// One phone number of a WhatsApp Business Account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BusinessNumber {
    pub id: String,
    pub display_phone_number: Option<String>,
    pub verified_name: Option<String>,
    pub status: Option<String>,
    pub quality_rating: Option<String>,
    pub messaging_limit_tier: Option<String>,
}

/// A provider account that can describe itself.
///
/// # Errors
/// A [`ProviderError`] classified as for a send.
#[async_trait]
pub trait AccountInfo: Send + Sync {
    async fn describe(&self) -> Result<AccountDescription, ProviderError>;
}
