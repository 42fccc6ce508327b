//! One InnoPaaS account as a [`Provider`]: sends (msg/submit, MMLite), phone info, template
//! creation.

use std::fmt;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use gateway_core::content::whatsapp::{TemplateCategory, WhatsAppContent};
use gateway_core::{
    Content, ErrorClass, MessageId, OutboundMessage, Provider, ProviderError, ProviderKind, RejectScope, SendReceipt,
    Unsupported,
};
use reqwest::header::{HeaderValue, AUTHORIZATION, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde::Serialize;
use serde_json::Value;

use crate::classify::{self, Answer, Call};
use crate::config::{base_url, endpoint_url, ConfigError, InnopaasConfig};
use crate::template::TemplateSubmit;
use crate::wire::{Envelope, PhoneInfoBody, PhoneInfoEntry, Refusal, SendBody, Sender, TemplateSubmitBody};

/// The header carrying the console's API key.
pub const APP_KEY: &str = "AppKey";
/// The content type every InnoPaaS call declares (PROVIDERS.md §2.1).
pub const JSON_UTF8: &str = "application/json;charset=utf-8";
/// Paths under the base URL.
pub const SUBMIT_PATH: &str = "/api/whatsapp/v3/msg/submit";
pub const PHONE_INFO_PATH: &str = "/api/whatsapp/v3/account/phoneInfo";
pub const TEMPLATE_SUBMIT_PATH: &str = "/api/whatsapp/v3/template/submit";

/// One InnoPaaS credential (AppKey and token) with its WABA and business number: a WhatsApp
/// [`Provider`].
#[derive(Clone)]
pub struct InnopaasAccount {
    config: InnopaasConfig,
    client: reqwest::Client,
    base: String,
    mmlite_url: Option<String>,
    app_key: HeaderValue,
    token: HeaderValue,
    /// The static headers set in the InnoPaaS console for webhook pushes (see
    /// [`crate::verify_static_headers`]).
    webhook_headers: Vec<(String, SecretString)>,
}

/// One phone number of the WABA, as `account/phoneInfo` reports it (`messageLimit` is
/// `messaging_limit_tier`).
pub type PhoneInfo = gateway_core::BusinessNumber;

impl InnopaasAccount {
    /// Validates the configuration and builds the account. The client is shared; the per-request
    /// timeout comes from `config.timeout_ms`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad key.
    pub fn new(config: InnopaasConfig, client: reqwest::Client) -> Result<Self, ConfigError> {
        config.validate()?;
        let base = base_url("base_url", &config.base_url)?;
        let mmlite_url = config.mmlite_url.as_deref().map(|u| endpoint_url("mmlite_url", u)).transpose()?;
        let app_key = header_value("app_key", &config.app_key)?;
        let token = header_value("token", &config.token)?;
        Ok(Self { config, client, base, mmlite_url, app_key, token, webhook_headers: Vec::new() })
    }

    /// The static headers every webhook push of this account must carry.
    #[must_use]
    pub fn with_webhook_headers(mut self, headers: Vec<(String, SecretString)>) -> Self {
        self.webhook_headers = headers;
        self
    }

    pub fn config(&self) -> &InnopaasConfig {
        &self.config
    }

    fn sender(&self) -> Sender<'_> {
        Sender {
            waba_id: &self.config.waba_id,
            send_number: &self.config.send_number,
            default_language: self.config.default_language.as_deref(),
        }
    }

    /// The send URL: MMLite for marketing templates when the account routes them there.
    fn send_url(&self, message: &OutboundMessage) -> (String, bool) {
        let marketing = matches!(
            &message.content,
            Content::Whatsapp(WhatsAppContent::Template(t)) if t.category == Some(TemplateCategory::Marketing)
        );
        match (&self.mmlite_url, marketing && self.config.marketing_via_mmlite) {
            (Some(url), true) => (url.clone(), true),
            _ => (format!("{}{SUBMIT_PATH}", self.base), false),
        }
    }

    /// The phone numbers of this account's WABA (`POST /api/whatsapp/v3/account/phoneInfo`), with
    /// their quality rating and messaging limit tier. An entry without an `id` is logged and
    /// skipped.
    ///
    /// # Errors
    /// The same classes as a send; `Transient` when the answer holds no `data[]`.
    pub async fn phone_info(&self) -> Result<Vec<PhoneInfo>, ProviderError> {
        let body = PhoneInfoBody { waba_id: &self.config.waba_id };
        let (envelope, http_status) =
            self.call(Call::PhoneInfo, format!("{}{PHONE_INFO_PATH}", self.base), &body).await?;
        let Value::Array(entries) = envelope.data else {
            return Err(classify::missing_id(Call::PhoneInfo, http_status, "data[]"));
        };
        Ok(entries.into_iter().filter_map(phone_info).collect())
    }

    /// Creates a template (`POST /api/whatsapp/v3/template/submit`) and returns its id. Meta
    /// reviews it afterwards; the outcome arrives as a template status webhook.
    ///
    /// # Errors
    /// `Rejected(Content)` before any request for a template InnoPaaS would refuse (name, body,
    /// footer, buttons); otherwise the same classes as a send, with `outcome_unknown` when the
    /// template may have been created without us learning its id.
    pub async fn submit_template(&self, template: &TemplateSubmit) -> Result<String, ProviderError> {
        if let Some(problem) = template.problem() {
            return Err(ProviderError::new(ErrorClass::Rejected(RejectScope::Content), problem));
        }
        let body = TemplateSubmitBody::new(&self.config.waba_id, template);
        let url = format!("{}{TEMPLATE_SUBMIT_PATH}", self.base);
        tracing::debug!(template = %template.name, "submitting an InnoPaaS template");
        let (envelope, http_status) = self.call(Call::TemplateSubmit, url, &body).await?;
        envelope.template_id().ok_or_else(|| classify::missing_id(Call::TemplateSubmit, http_status, "a template id"))
    }

    async fn call<B: Serialize + ?Sized>(
        &self,
        call: Call,
        url: String,
        body: &B,
    ) -> Result<(Envelope, u16), ProviderError> {
        let body = serde_json::to_vec(body).map_err(|e| {
            ProviderError::new(ErrorClass::Rejected(RejectScope::Content), format!("could not encode the request: {e}"))
        })?;
        let started = Instant::now();
        let request = self
            .client
            .post(url)
            .header(CONTENT_TYPE, JSON_UTF8)
            .header(APP_KEY, self.app_key.clone())
            .header(AUTHORIZATION, self.token.clone())
            .timeout(self.config.timeout())
            .body(body);
        let timeout = self.config.timeout();
        let response = request.send().await.map_err(|e| classify::transport(call, &e, timeout, None))?;
        let http_status = response.status().as_u16();
        let retry_after = classify::retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.map_err(|e| classify::transport(call, &e, timeout, Some(http_status)))?;
        let result = classify::answer(call, &Answer { http_status, retry_after, body: &body });
        tracing::debug!(
            ?call,
            http_status,
            provider_code = result.as_ref().err().and_then(|e| e.provider_code.as_deref()),
            class = result.as_ref().err().map(|e| e.class.label()),
            latency_ms = started.elapsed().as_millis() as u64,
            "InnoPaaS answered"
        );
        result.map(|envelope| (envelope, http_status))
    }
}

#[async_trait]
impl Provider for InnopaasAccount {
    fn kind(&self) -> ProviderKind {
        ProviderKind::Innopaas
    }

    fn templates(&self) -> Option<&dyn gateway_core::Templates> {
        Some(self)
    }

    fn account_info(&self) -> Option<&dyn gateway_core::AccountInfo> {
        Some(self)
    }

    /// Builds the send body without sending it: whatever InnoPaaS could not be sent is refused
    /// here, so the API answers 422 (or routes elsewhere) up front.
    fn can_carry(&self, message: &OutboundMessage) -> Result<(), Unsupported> {
        SendBody::new(self.sender(), "", message)
            .map(|_| ())
            .map_err(|r| Unsupported { provider: ProviderKind::Innopaas, reason: r.reason().to_owned() })
    }

    async fn send(&self, id: &MessageId, message: &OutboundMessage) -> Result<SendReceipt, ProviderError> {
        let uid = id.simple();
        // Routing checks `can_carry` first; a message that got here anyway fails before any
        // request. A channel or type InnoPaaS lacks may go elsewhere; a missing language may not.
        let body = SendBody::new(self.sender(), &uid, message).map_err(|r| match r {
            Refusal::Unsupported(reason) => ProviderError::new(ErrorClass::Rejected(RejectScope::Account), reason),
            Refusal::Content(reason) => ProviderError::new(ErrorClass::Rejected(RejectScope::Content), reason),
        })?;
        let (url, mmlite) = self.send_url(message);
        tracing::debug!(
            message_id = %id,
            content_type = message.content.content_type().as_str(),
            mmlite,
            "sending to InnoPaaS"
        );
        let (envelope, _) = self.call(Call::Send, url, &body).await?;
        // InnoPaaS took it (code "0", success). Without an id in `data`, the `uid` we sent names
        // the message: every status webhook echoes it.
        Ok(SendReceipt { provider_message_id: envelope.message_id().unwrap_or(uid) })
    }

    fn callback_authentic(&self, received: &[(&str, &[u8])]) -> bool {
        crate::verify_static_headers(
            self.webhook_headers.iter().map(|(k, v)| (k.as_str(), v)),
            received.iter().copied(),
        )
    }
}

fn phone_info(entry: Value) -> Option<PhoneInfo> {
    match serde_json::from_value::<PhoneInfoEntry>(entry) {
        Ok(e) => Some(PhoneInfo {
            id: e.id,
            display_phone_number: e.display_phone_number,
            verified_name: e.verified_name,
            status: e.status,
            quality_rating: e.quality_rating,
            messaging_limit_tier: e.message_limit,
        }),
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable InnoPaaS phoneInfo entry");
            None
        }
    }
}

fn header_value(key: &'static str, secret: &SecretString) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(secret.expose_secret())
        .map_err(|_| ConfigError::new(key, "not usable as an HTTP header value"))?;
    value.set_sensitive(true);
    Ok(value)
}

impl fmt::Debug for InnopaasAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnopaasAccount").field("config", &self.config).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    #[test]
    fn credentials_are_sensitive_header_values() {
        let c = InnopaasConfig::new(SecretString::from("ak"), SecretString::from("tok"), "1", "85230012345");
        let a = InnopaasAccount::new(c, reqwest::Client::new()).unwrap();
        assert!(a.app_key.is_sensitive() && a.token.is_sensitive());
        assert_eq!(a.token.to_str().unwrap(), "tok", "sent as it is, without `Bearer`");
    }
}
