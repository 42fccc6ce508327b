//! The port every provider adapter implements, and the one error type they all return.

use std::fmt;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use chrono::{DateTime, Utc};

use crate::event::{CallbackError, CallbackEvent, ReportedError};
use crate::message::{MessageId, OutboundMessage};
use crate::status::MessageStatus;

mod manage;

pub use manage::{
    AccountDescription, AccountInfo, BusinessNumber, ProviderTemplate, TemplateDraft, TemplateError, Templates,
};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ProviderKind {
    Incs,
    Innopaas,
}

impl ProviderKind {
    pub const ALL: [ProviderKind; 2] = [Self::Incs, Self::Innopaas];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Incs => "incs",
            Self::Innopaas => "innopaas",
        }
    }
}

impl std::str::FromStr for ProviderKind {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        Self::ALL.into_iter().find(|k| k.as_str() == s).ok_or_else(|| format!("unknown provider `{s}`"))
    }
}

impl fmt::Display for ProviderKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What the provider gave back for an accepted send.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendReceipt {
    /// The provider's id for the message (a wamid for WhatsApp via INCS, a UUID for Viber/RCS).
    pub provider_message_id: String,
}

/// Why a provider cannot carry a message at all, before anything is sent.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{provider} cannot carry this message: {reason}")]
pub struct Unsupported {
    pub provider: ProviderKind,
    pub reason: String,
}

/// How the delivery engine must treat a failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Permanent: the message fails now. `scope` says whether another account could do better.
    Rejected(RejectScope),
    /// The provider asks us to slow down. No attempt is spent.
    Throttled { retry_after: Option<Duration>, scope: ThrottleScope },
    /// Network errors, timeouts, 5xx, bodies that are not JSON, transient provider codes: retry
    /// with backoff.
    Transient,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RejectScope {
    /// The content or the recipient is at fault: it would fail on every provider (no failover).
    Content,
    /// The account is at fault (credentials, balance, sender unknown, policy block): another
    /// account may carry the message.
    Account,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ThrottleScope {
    /// The whole lane (the provider account / business number) must pause.
    Lane,
    /// Only messages to this recipient must wait (WhatsApp pair rate, 131056).
    Recipient,
}

impl ErrorClass {
    pub fn label(&self) -> &'static str {
        match self {
            Self::Rejected(RejectScope::Content) => "rejected",
            Self::Rejected(RejectScope::Account) => "rejected_account",
            Self::Throttled { scope: ThrottleScope::Lane, .. } => "throttled",
            Self::Throttled { scope: ThrottleScope::Recipient, .. } => "throttled_recipient",
            Self::Transient => "transient",
        }
    }
}

/// A failed provider call, classified. Its text never holds a credential.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{title}")]
pub struct ProviderError {
    pub class: ErrorClass,
    /// The HTTP status, when a response came back.
    pub http_status: Option<u16>,
    /// The provider's own code (`10002`, `"110"`), as a string since InnoPaaS codes are strings.
    pub provider_code: Option<String>,
    /// The Meta (WhatsApp) error code found in the provider's answer, if any.
    pub meta_code: Option<u32>,
    /// A short human-readable reason.
    pub title: String,
    /// True when the request may have reached the provider although no answer came back (a
    /// timeout after sending): a retry may produce a duplicate.
    pub outcome_unknown: bool,
}

impl ProviderError {
    pub fn new(class: ErrorClass, title: impl Into<String>) -> Self {
        Self {
            class,
            http_status: None,
            provider_code: None,
            meta_code: None,
            title: title.into(),
            outcome_unknown: false,
        }
    }

    pub fn transient(title: impl Into<String>) -> Self {
        Self::new(ErrorClass::Transient, title)
    }

    pub fn with_http_status(mut self, status: u16) -> Self {
        self.http_status = Some(status);
        self
    }

    pub fn with_provider_code(mut self, code: impl Into<String>) -> Self {
        self.provider_code = Some(code.into());
        self
    }

    pub fn with_meta_code(mut self, code: u32) -> Self {
        self.meta_code = Some(code);
        self
    }

    pub fn with_outcome_unknown(mut self) -> Self {
        self.outcome_unknown = true;
        self
    }

    /// The code shown to API callers: the Meta code when known, else the provider's code.
    pub fn code(&self) -> Option<String> {
        self.meta_code.map(|c| c.to_string()).or_else(|| self.provider_code.clone())
    }

    pub fn is_retryable(&self) -> bool {
        !matches!(self.class, ErrorClass::Rejected(_))
    }
}

/// A provider account able to send messages: one adapter instance per account (credentials and
/// business number).
///
/// # Errors
/// `send` returns a [`ProviderError`] whose [`ErrorClass`] the engine acts on:
/// - `Rejected(Content)` for anything the provider refused because of the message or recipient,
///   including an HTTP 200 whose body says error;
/// - `Rejected(Account)` for credential, balance, permission or sender errors;
/// - `Throttled` for 429 and the throttling codes, with `Retry-After` when the provider gave one;
/// - `Transient` for network errors, timeouts, 5xx and unparseable bodies.
#[async_trait]
pub trait Provider: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// Whether this account can carry the message; checked before queueing and routing.
    ///
    /// # Errors
    /// [`Unsupported`] naming why (channel or content type the provider lacks).
    fn can_carry(&self, message: &OutboundMessage) -> Result<(), Unsupported>;

    /// Sends one message. `id` is the gateway's id, for providers that echo a correlation field.
    async fn send(&self, id: &MessageId, message: &OutboundMessage) -> Result<SendReceipt, ProviderError>;

    /// The status poll, for a provider that answers "what became of these messages?". The engine
    /// polls the messages of such accounts that heard nothing for a while, since callbacks get
    /// lost; without it, callbacks are all there is.
    fn status_poll(&self) -> Option<&dyn StatusPoll> {
        None
    }

    /// Template management, for a provider that keeps message templates.
    fn templates(&self) -> Option<&dyn Templates> {
        None
    }

    /// The account's description (messaging limit tier, quality rating), for a provider that
    /// gives one.
    fn account_info(&self) -> Option<&dyn AccountInfo> {
        None
    }

    /// Whether a callback that came in on this account's URL (whose token already matched) is
    /// authentic by what else the provider sends with it, e.g. static headers set in its console.
    /// `received` is every header, `(name, value bytes)`. Accounts with nothing more to check
    /// accept every callback.
    fn callback_authentic(&self, received: &[(&str, &[u8])]) -> bool {
        let _ = received;
        true
    }
}

/// What a provider is, whatever the account: how its callbacks read and how a failure it reports
/// later is judged. Each adapter crate has one; `gateway-http`'s registry lists them, so nothing
/// outside an adapter and that registry needs to know which provider it deals with.
pub trait ProviderFamily: Send + Sync + 'static {
    fn kind(&self) -> ProviderKind;

    /// Turns a callback body this provider posted into provider-neutral events.
    ///
    /// # Errors
    /// [`CallbackError`] for a body that is not one of the provider's callbacks.
    fn parse_callback(&self, body: &[u8]) -> Result<Vec<CallbackEvent>, CallbackError>;

    /// How a failure reported by callback is treated: the same judgement as the same failure
    /// answered at send (one classification table per provider).
    fn classify_report(&self, error: &ReportedError) -> ErrorClass;

    /// The callback field that names the business number, for the 422 about a number the
    /// callback URL does not serve.
    fn callback_number_field(&self) -> &'static str;

    /// What this provider accepts in a WhatsApp template draft.
    fn template_limits(&self) -> crate::template::TemplateLimits;

    /// How the API document describes this provider's callback URL.
    fn callback_doc(&self) -> CallbackDoc;
}

/// The API document's description of one provider's callback URL.
#[derive(Debug, Clone)]
pub struct CallbackDoc {
    /// One line: what the provider reports there.
    pub summary: &'static str,
    /// What the body is.
    pub body: &'static str,
    /// One body as the provider documents it.
    pub example: serde_json::Value,
    /// The provider's console can add static headers that every callback must carry (a 401 when
    /// they do not match).
    pub static_headers: bool,
}

/// One message's status as a status poll reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolledStatus {
    /// The provider's message id.
    pub message_id: String,
    /// The gateway status, or `None` when the provider reports one the gateway has no name for
    /// (kept, with [`Self::provider_status`], so reconciliation can log it rather than lose it).
    pub status: Option<MessageStatus>,
    /// The status as the provider gave it.
    pub provider_status: String,
    pub created_at: Option<DateTime<Utc>>,
    /// `None` when unset.
    pub delivered_at: Option<DateTime<Utc>>,
    pub read_at: Option<DateTime<Utc>>,
}

/// A provider account that can be asked for the status of messages it accepted.
///
/// # Errors
/// `poll` returns a [`ProviderError`] classified as for a send; ids the provider does not know are
/// absent from the answer, not an error.
#[async_trait]
pub trait StatusPoll: Send + Sync {
    /// The most ids one call may ask about.
    fn max_ids(&self) -> usize;

    /// The status of up to [`Self::max_ids`] messages, by the provider's message ids.
    async fn poll(&self, ids: &[&str]) -> Result<Vec<PolledStatus>, ProviderError>;
}
