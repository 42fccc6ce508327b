//! The configuration of one INCS account (one certification code, one business number).

use std::fmt;
use std::time::Duration;

use gateway_core::Channel;
use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Message sends (WhatsApp, Viber) and the status poll.
pub const DEFAULT_CHAT_BASE_URL: &str = "https://chat-api.incsapp.com";
/// Templates, RCS templates and the account endpoint.
pub const DEFAULT_API_BASE_URL: &str = "https://api.incsapp.com";
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// One INCS account. Deserializes from the gateway's TOML; every key but `certification_code` has a
/// default. Unknown keys are refused, so nest it as its own table rather than `#[serde(flatten)]`.
///
/// INCS has two host families (PROVIDERS.md §1.1): `chat-api` for sends and the status poll, `api`
/// for templates and the account. The RCS send host is documented both ways, so it has its own key.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IncsConfig {
    /// WhatsApp and Viber sends, status poll.
    #[serde(default = "default_chat_base_url")]
    pub chat_base_url: String,
    /// RCS sends. When it names the same host as `api_base_url`, RCS sends carry the api family's
    /// certification code.
    #[serde(default = "default_chat_base_url")]
    pub rcs_base_url: String,
    /// Templates and account.
    #[serde(default = "default_api_base_url")]
    pub api_base_url: String,
    /// The `certification-code` for the chat-api family.
    pub certification_code: SecretString,
    /// The `certification-code` for the api family; `certification_code` when absent.
    #[serde(default)]
    pub api_certification_code: Option<SecretString>,
    /// Per-request timeout, connect to last body byte.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// The channels this account's number serves.
    #[serde(default = "default_channels")]
    pub channels: Vec<Channel>,
    /// The business number (digits) INCS names as `business_phone` in callbacks. Where one
    /// callback URL serves several numbers, inbound messages, windows and template reports go to
    /// the account that names theirs.
    #[serde(default)]
    pub business_phone: Option<String>,
    /// The INCS channel id (`channel_id` in callbacks), for the same attribution.
    #[serde(default)]
    pub channel_id: Option<u64>,
}

fn default_chat_base_url() -> String {
    DEFAULT_CHAT_BASE_URL.to_owned()
}

fn default_api_base_url() -> String {
    DEFAULT_API_BASE_URL.to_owned()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

fn default_channels() -> Vec<Channel> {
    Channel::ALL.to_vec()
}

/// A configuration key with an unusable value. The text names the key and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("INCS configuration `{key}`: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl ConfigError {
    fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self { key, reason: reason.into() }
    }
}

impl IncsConfig {
    /// The default hosts, timeout and channels, with this certification code.
    pub fn new(certification_code: SecretString) -> Self {
        Self {
            chat_base_url: default_chat_base_url(),
            rcs_base_url: default_chat_base_url(),
            api_base_url: default_api_base_url(),
            certification_code,
            api_certification_code: None,
            timeout_ms: DEFAULT_TIMEOUT_MS,
            channels: default_channels(),
            business_phone: None,
            channel_id: None,
        }
    }

    /// Checks every key, so a bad configuration fails at start-up and not at the first send.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        base_url("chat_base_url", &self.chat_base_url)?;
        base_url("rcs_base_url", &self.rcs_base_url)?;
        base_url("api_base_url", &self.api_base_url)?;
        certification_code("certification_code", &self.certification_code)?;
        if let Some(code) = &self.api_certification_code {
            certification_code("api_certification_code", code)?;
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("timeout_ms", "must be at least 1"));
        }
        if self.channels.is_empty() {
            return Err(ConfigError::new("channels", "must name at least one of whatsapp, viber, rcs"));
        }
        if let Some(phone) = &self.business_phone {
            if !(8..=15).contains(&phone.len()) || !phone.bytes().all(|b| b.is_ascii_digit()) {
                return Err(ConfigError::new("business_phone", "must be 8 to 15 digits, country code first, no `+`"));
            }
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }

    /// The certification code of the api host family.
    pub fn api_code(&self) -> &SecretString {
        self.api_certification_code.as_ref().unwrap_or(&self.certification_code)
    }

    pub fn serves(&self, channel: Channel) -> bool {
        self.channels.contains(&channel)
    }
}

/// Parses a base URL and returns it without a trailing `/`, ready for paths to be appended (a path
/// prefix, as behind a proxy, is kept).
pub(crate) fn base_url(key: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError::new(key, format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(key, format!("must be an http or https URL, not `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(key, "must name a host"));
    }
    // URLs end up in logs; credentials belong in the certification codes.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(key, "must not hold a user name or password"));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not have a query or fragment"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

fn certification_code(key: &'static str, code: &SecretString) -> Result<(), ConfigError> {
    let code = code.expose_secret();
    if code.is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    // It travels as an HTTP header value; a space or control character is a paste error.
    if !code.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(key, "must be printable ASCII without spaces"));
    }
    Ok(())
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for IncsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("IncsConfig")
            .field("chat_base_url", &self.chat_base_url)
            .field("rcs_base_url", &self.rcs_base_url)
            .field("api_base_url", &self.api_base_url)
            .field("certification_code", &REDACTED)
            .field("api_certification_code", &self.api_certification_code.as_ref().map(|_| REDACTED))
            .field("timeout_ms", &self.timeout_ms)
            .field("channels", &self.channels)
            .field("business_phone", &self.business_phone)
            .field("channel_id", &self.channel_id)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn config() -> IncsConfig {
        IncsConfig::new(SecretString::from("af92196e-0d07-3c1d-a631-a71c00000000"))
    }

    #[test]
    fn defaults_are_the_documented_hosts() {
        let c: IncsConfig = serde_json::from_value(serde_json::json!({"certification_code": "abc"})).unwrap();
        assert_eq!(c.chat_base_url, "https://chat-api.incsapp.com");
        assert_eq!(c.rcs_base_url, "https://chat-api.incsapp.com");
        assert_eq!(c.api_base_url, "https://api.incsapp.com");
        assert_eq!(c.timeout_ms, 10_000);
        assert_eq!(c.channels, Channel::ALL.to_vec());
        assert!(c.api_certification_code.is_none());
        assert_eq!(c.api_code().expose_secret(), "abc");
        assert_eq!(c.validate(), Ok(()));
    }

    #[test]
    fn unknown_keys_and_a_missing_code_are_refused() {
        let typo = serde_json::from_value::<IncsConfig>(serde_json::json!({"certification_code": "a", "timeout": 5}));
        assert!(typo.is_err_and(|e| e.to_string().contains("timeout")));
        let missing = serde_json::from_value::<IncsConfig>(serde_json::json!({}));
        assert!(missing.is_err_and(|e| e.to_string().contains("certification_code")));
    }

    #[test]
    fn bad_values_name_their_key() {
        type Edit = fn(&mut IncsConfig);
        let cases: &[(&str, Edit)] = &[
            ("chat_base_url", |c| c.chat_base_url = "chat-api.incsapp.com".into()),
            ("chat_base_url", |c| c.chat_base_url = "ftp://chat-api.incsapp.com".into()),
            ("rcs_base_url", |c| c.rcs_base_url = "https://user:pw@api.incsapp.com".into()),
            ("api_base_url", |c| c.api_base_url = "https://api.incsapp.com/?x=1".into()),
            ("api_base_url", |c| c.api_base_url = String::new()),
            ("certification_code", |c| c.certification_code = SecretString::from("")),
            ("certification_code", |c| c.certification_code = SecretString::from("abc def")),
            ("api_certification_code", |c| c.api_certification_code = Some(SecretString::from(""))),
            ("timeout_ms", |c| c.timeout_ms = 0),
            ("channels", |c| c.channels.clear()),
            ("business_phone", |c| c.business_phone = Some("+6281519236680".into())),
            ("business_phone", |c| c.business_phone = Some("1234".into())),
        ];
        for (key, edit) in cases {
            let mut c = config();
            edit(&mut c);
            let err = c.validate().expect_err(key);
            assert_eq!(err.key, *key, "{err}");
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn base_urls_lose_their_trailing_slash_and_keep_a_prefix() {
        assert_eq!(base_url("k", "https://chat-api.incsapp.com/").unwrap(), "https://chat-api.incsapp.com");
        assert_eq!(base_url("k", "http://127.0.0.1:8090/incs/").unwrap(), "http://127.0.0.1:8090/incs");
    }

    #[test]
    fn debug_redacts_both_codes() {
        let mut c = config();
        c.api_certification_code = Some(SecretString::from("f484bd42-secret"));
        let text = format!("{c:?}");
        assert!(!text.contains("af92196e"), "{text}");
        assert!(!text.contains("f484bd42"), "{text}");
        assert!(text.contains("[redacted]"), "{text}");
    }
}
