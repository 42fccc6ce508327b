//! One INCS account as a [`Provider`]: sends, and the status poll.

use std::fmt;
use std::time::{Instant, SystemTime};

use async_trait::async_trait;
use chrono::DateTime;
use gateway_core::content::whatsapp::{Interactive, WhatsAppContent};
use gateway_core::{
    Channel, Content, ErrorClass, MessageId, OutboundMessage, PolledStatus, Provider, ProviderError, ProviderKind,
    RejectScope, SendReceipt, StatusPoll, Unsupported,
};
use reqwest::header::{HeaderValue, CONTENT_TYPE};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use url::Url;

use crate::classify::{self, Answer, Call};
use crate::config::{base_url, ConfigError, IncsConfig};
use crate::wire::{Envelope, SendBody, StatusEntry};

/// The header INCS authenticates with.
pub const CERTIFICATION_CODE: &str = "certification-code";
/// At most this many ids per status poll (INCS's limit).
pub const MAX_STATUS_IDS: usize = 100;

/// One INCS credential, that is one business number: a [`Provider`] for the channels it serves.
#[derive(Clone)]
pub struct IncsAccount {
    config: IncsConfig,
    client: reqwest::Client,
    chat_base: String,
    rcs_base: String,
    api_base: String,
    chat_code: HeaderValue,
    rcs_code: HeaderValue,
    api_code: HeaderValue,
}

impl IncsAccount {
    /// Validates the configuration and builds the account. The client is shared; the per-request
    /// timeout comes from `config.timeout_ms`.
    ///
    /// # Errors
    /// [`ConfigError`] naming the first bad key.
    pub fn new(config: IncsConfig, client: reqwest::Client) -> Result<Self, ConfigError> {
        config.validate()?;
        let chat_base = base_url("chat_base_url", &config.chat_base_url)?;
        let rcs_base = base_url("rcs_base_url", &config.rcs_base_url)?;
        let api_base = base_url("api_base_url", &config.api_base_url)?;
        // The RCS send host is documented on both families (PROVIDERS.md §1.1); it carries the code
        // of the family whose host it is.
        let rcs_code = if same_origin(&rcs_base, &api_base) { config.api_code() } else { &config.certification_code };
        let rcs_code = header_value("rcs_base_url", rcs_code)?;
        let chat_code = header_value("certification_code", &config.certification_code)?;
        let api_code = header_value("api_certification_code", config.api_code())?;
        Ok(Self { config, client, chat_base, rcs_base, api_base, chat_code, rcs_code, api_code })
    }

    pub fn config(&self) -> &IncsConfig {
        &self.config
    }

    pub(crate) fn client(&self) -> &reqwest::Client {
        &self.client
    }

    /// The api host family (templates, account): its base URL and certification code.
    pub(crate) fn api(&self) -> (&str, &HeaderValue) {
        (&self.api_base, &self.api_code)
    }

    fn endpoint(&self, channel: Channel) -> (String, &HeaderValue) {
        match channel {
            Channel::Whatsapp => (format!("{}/external/messages/whatsapp", self.chat_base), &self.chat_code),
            Channel::Viber => (format!("{}/external/messages/viber", self.chat_base), &self.chat_code),
            Channel::Rcs => (format!("{}/external/messages/rcs", self.rcs_base), &self.rcs_code),
        }
    }

    /// Asks INCS for the status of up to [`MAX_STATUS_IDS`] messages (its answer may lag by
    /// minutes). Ids INCS does not know are simply absent from the answer; no ids, no request.
    ///
    /// # Errors
    /// `Rejected(Content)` before any request for more than 100 ids or an id that is empty or holds
    /// a comma (the list separator); otherwise the same classes as a send.
    pub async fn poll_status(&self, ids: &[&str]) -> Result<Vec<PolledStatus>, ProviderError> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        if ids.len() > MAX_STATUS_IDS {
            return Err(ProviderError::new(
                ErrorClass::Rejected(RejectScope::Content),
                format!("at most {MAX_STATUS_IDS} message ids per status poll, got {}", ids.len()),
            ));
        }
        if let Some(bad) = ids.iter().position(|id| id.is_empty() || id.contains(',')) {
            return Err(ProviderError::new(
                ErrorClass::Rejected(RejectScope::Content),
                format!("message id #{bad} is empty or holds a comma"),
            ));
        }
        let mut url = Url::parse(&format!("{}/external/messages/status", self.chat_base))
            .map_err(|e| ProviderError::new(ErrorClass::Rejected(RejectScope::Account), format!("status URL: {e}")))?;
        url.query_pairs_mut().append_pair("message_ids", &ids.join(","));

        let started = Instant::now();
        tracing::debug!(ids = ids.len(), "polling INCS message status");
        let request =
            self.client.get(url).header(CERTIFICATION_CODE, self.chat_code.clone()).timeout(self.config.timeout());
        let (envelope, http_status) = self.exchange(Call::Poll, request, started).await?;
        let entries = match envelope.data.get("data") {
            Some(Value::Array(entries)) => entries,
            _ => {
                return Err(ProviderError::transient("INCS status answer without data.data[]")
                    .with_http_status(http_status)
                    .with_provider_code("200"))
            }
        };
        Ok(entries.iter().filter_map(polled_status).collect())
    }

    /// Sends one request and classifies the answer; `Ok` is a `code: 200` envelope.
    pub(crate) async fn exchange(
        &self,
        call: Call,
        request: reqwest::RequestBuilder,
        started: Instant,
    ) -> Result<(Envelope, u16), ProviderError> {
        let timeout = self.config.timeout();
        let response = request.send().await.map_err(|e| classify::transport(call, &e, timeout, None))?;
        let http_status = response.status().as_u16();
        let retry_after = classify::retry_after(response.headers(), SystemTime::now());
        let body = response.bytes().await.map_err(|e| classify::transport(call, &e, timeout, Some(http_status)))?;
        let result = classify::answer(call, &Answer { http_status, retry_after, body: &body });
        tracing::debug!(
            http_status,
            provider_code = result.as_ref().err().and_then(|e| e.provider_code.as_deref()),
            class = result.as_ref().err().map(|e| e.class.label()),
            latency_ms = started.elapsed().as_millis() as u64,
            "INCS answered"
        );
        result.map(|envelope| (envelope, http_status))
    }
}

#[async_trait]
impl StatusPoll for IncsAccount {
    fn max_ids(&self) -> usize {
        MAX_STATUS_IDS
    }

    async fn poll(&self, ids: &[&str]) -> Result<Vec<PolledStatus>, ProviderError> {
        self.poll_status(ids).await
    }
}

#[async_trait]
impl Provider for IncsAccount {
    fn status_poll(&self) -> Option<&dyn StatusPoll> {
        Some(self)
    }

    fn templates(&self) -> Option<&dyn gateway_core::Templates> {
        Some(self)
    }

    fn account_info(&self) -> Option<&dyn gateway_core::AccountInfo> {
        Some(self)
    }

    fn kind(&self) -> ProviderKind {
        ProviderKind::Incs
    }

    fn can_carry(&self, message: &OutboundMessage) -> Result<(), Unsupported> {
        let unsupported = |reason: String| Err(Unsupported { provider: ProviderKind::Incs, reason });
        let channel = message.channel();
        if !self.config.serves(channel) {
            return unsupported(format!("this INCS account does not serve {channel}"));
        }
        if let Content::Whatsapp(c) = &message.content {
            match c {
                WhatsAppContent::Sticker(_) | WhatsAppContent::Location(_) | WhatsAppContent::Contacts(_) => {
                    return unsupported(format!(
                        "INCS does not carry WhatsApp `{}` messages",
                        message.content.content_type()
                    ));
                }
                WhatsAppContent::Interactive(i @ (Interactive::Product { .. } | Interactive::ProductList { .. })) => {
                    return unsupported(format!("INCS does not carry WhatsApp interactive `{}` messages", i.kind()));
                }
                _ => {}
            }
        }
        Ok(())
    }

    async fn send(&self, id: &MessageId, message: &OutboundMessage) -> Result<SendReceipt, ProviderError> {
        // Routing checks this first; a message that got here anyway fails before any request, and
        // another account or provider may still carry it.
        let refuse = |reason: String| ProviderError::new(ErrorClass::Rejected(RejectScope::Account), reason);
        self.can_carry(message).map_err(|u| refuse(u.to_string()))?;
        let body = SendBody::new(message).ok_or_else(|| refuse("INCS cannot carry this message".into()))?;
        let body = serde_json::to_vec(&body).map_err(|e| {
            ProviderError::new(ErrorClass::Rejected(RejectScope::Content), format!("could not encode the message: {e}"))
        })?;

        let channel = message.channel();
        let (url, code) = self.endpoint(channel);
        let started = Instant::now();
        tracing::debug!(
            message_id = %id,
            channel = channel.as_str(),
            content_type = message.content.content_type().as_str(),
            "sending to INCS"
        );
        let request = self
            .client
            .post(url)
            .header(CERTIFICATION_CODE, code.clone())
            .header(CONTENT_TYPE, "application/json")
            .timeout(self.config.timeout())
            .body(body);
        let (envelope, http_status) = self.exchange(Call::Send, request, started).await?;
        match envelope.msg_id() {
            Some(msg_id) => Ok(SendReceipt { provider_message_id: msg_id.to_owned() }),
            None => Err(classify::missing_msg_id(http_status)),
        }
    }
}

/// One `data.data[]` entry; an entry without a `message_id` is logged and skipped.
fn polled_status(entry: &Value) -> Option<PolledStatus> {
    let entry: StatusEntry = match serde_json::from_value(entry.clone()) {
        Ok(e) => e,
        Err(e) => {
            tracing::warn!(error = %e, "skipping an unreadable INCS status entry");
            return None;
        }
    };
    let (status, provider_status) = match &entry.message_status {
        Value::String(s) => (crate::status::from_name(s), s.clone()),
        Value::Number(n) => (n.as_i64().and_then(crate::status::from_code), n.to_string()),
        Value::Null => (None, String::new()),
        other => (None, other.to_string()),
    };
    if status.is_none() {
        tracing::debug!(provider_status, "INCS status without a gateway equivalent");
    }
    let at = |secs: Option<i64>| secs.and_then(|s| DateTime::from_timestamp(s, 0));
    Some(PolledStatus {
        message_id: entry.message_id,
        status,
        provider_status,
        created_at: at(entry.created_at),
        delivered_at: at(entry.delivered_at),
        read_at: at(entry.read_at),
    })
}

fn same_origin(a: &str, b: &str) -> bool {
    match (Url::parse(a), Url::parse(b)) {
        (Ok(a), Ok(b)) => a.origin() == b.origin(),
        _ => false,
    }
}

fn header_value(key: &'static str, code: &SecretString) -> Result<HeaderValue, ConfigError> {
    let mut value = HeaderValue::from_str(code.expose_secret())
        .map_err(|_| ConfigError { key, reason: "not usable as an HTTP header value".into() })?;
    value.set_sensitive(true);
    Ok(value)
}

impl fmt::Debug for IncsAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncsAccount").field("config", &self.config).finish_non_exhaustive()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn account(rcs: &str, api: &str, api_code: Option<&str>) -> IncsAccount {
        let mut c = IncsConfig::new(SecretString::from("chat-code"));
        c.rcs_base_url = rcs.into();
        c.api_base_url = api.into();
        c.api_certification_code = api_code.map(SecretString::from);
        IncsAccount::new(c, reqwest::Client::new()).unwrap()
    }

    #[test]
    fn rcs_carries_the_code_of_its_host_family() {
        let a = account("https://chat-api.incsapp.com", "https://api.incsapp.com", Some("api-code"));
        assert_eq!(a.rcs_code.to_str().unwrap(), "chat-code");
        let a = account("https://api.incsapp.com/", "https://api.incsapp.com", Some("api-code"));
        assert_eq!(a.rcs_code.to_str().unwrap(), "api-code");
        let a = account("https://api.incsapp.com", "https://api.incsapp.com", None);
        assert_eq!(a.rcs_code.to_str().unwrap(), "chat-code");
        assert!(a.chat_code.is_sensitive() && a.rcs_code.is_sensitive());
    }

    #[test]
    fn endpoints_follow_the_families() {
        let a = account("https://api.incsapp.com", "https://api.incsapp.com", None);
        assert_eq!(a.endpoint(Channel::Whatsapp).0, "https://chat-api.incsapp.com/external/messages/whatsapp");
        assert_eq!(a.endpoint(Channel::Viber).0, "https://chat-api.incsapp.com/external/messages/viber");
        assert_eq!(a.endpoint(Channel::Rcs).0, "https://api.incsapp.com/external/messages/rcs");
    }
}
