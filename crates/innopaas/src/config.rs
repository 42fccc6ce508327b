//! The configuration of one InnoPaaS account (one AppKey and token, one WABA, one business number).

use std::fmt;
use std::time::Duration;

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;
use url::Url;

/// Every v3 endpoint (`/api/whatsapp/v3/...`) sits on this host.
pub const DEFAULT_BASE_URL: &str = "https://api.innopaas.com";
pub const DEFAULT_TIMEOUT_MS: u64 = 10_000;

/// One InnoPaaS account. Deserializes from the gateway's TOML; `app_key`, `token`, `waba_id` and
/// `send_number` are required, every other key has a default. Unknown keys are refused, so nest it
/// as its own table rather than `#[serde(flatten)]`.
#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InnopaasConfig {
    /// Scheme and host (a path prefix, as behind a proxy, is kept); the `/api/whatsapp/v3/...`
    /// paths are appended.
    #[serde(default = "default_base_url")]
    pub base_url: String,
    /// The console's API key, sent as the `AppKey` header.
    pub app_key: SecretString,
    /// The console's token (a JWT), sent as the `Authorization` header as it is: InnoPaaS uses no
    /// `Bearer` prefix (PROVIDERS.md §2.1).
    pub token: SecretString,
    /// The WhatsApp Business Account id (`wabaId`).
    pub waba_id: String,
    /// The business number (`sendNumber`): country code and number, digits only.
    pub send_number: String,
    /// The language of template sends that name none (`en`, `en_US`). Without it such sends are
    /// refused, since InnoPaaS requires a language.
    #[serde(default)]
    pub default_language: Option<String>,
    /// The MMLite send URL, in full. InnoPaaS does not publish it (PROVIDERS.md §2.3).
    #[serde(default)]
    pub mmlite_url: Option<String>,
    /// Send templates whose category is `marketing` through MMLite (`mmlite_url`, required then).
    #[serde(default)]
    pub marketing_via_mmlite: bool,
    /// Per-request timeout, connect to last body byte.
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_base_url() -> String {
    DEFAULT_BASE_URL.to_owned()
}

fn default_timeout_ms() -> u64 {
    DEFAULT_TIMEOUT_MS
}

/// A configuration key with an unusable value. The text names the key and never holds a secret.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("InnoPaaS configuration `{key}`: {reason}")]
pub struct ConfigError {
    pub key: &'static str,
    pub reason: String,
}

impl ConfigError {
    pub(crate) fn new(key: &'static str, reason: impl Into<String>) -> Self {
        Self { key, reason: reason.into() }
    }
}

impl InnopaasConfig {
    /// The default host and timeout, no default language and no MMLite.
    pub fn new(
        app_key: SecretString,
        token: SecretString,
        waba_id: impl Into<String>,
        send_number: impl Into<String>,
    ) -> Self {
        Self {
            base_url: default_base_url(),
            app_key,
            token,
            waba_id: waba_id.into(),
            send_number: send_number.into(),
            default_language: None,
            mmlite_url: None,
            marketing_via_mmlite: false,
            timeout_ms: DEFAULT_TIMEOUT_MS,
        }
    }

    /// Checks every key, so a bad configuration fails at start-up and not at the first send.
    ///
    /// # Errors
    /// The first [`ConfigError`] found, naming its key.
    pub fn validate(&self) -> Result<(), ConfigError> {
        base_url("base_url", &self.base_url)?;
        header_secret("app_key", &self.app_key)?;
        header_secret("token", &self.token)?;
        let waba = self.waba_id.trim();
        if waba.is_empty() || waba.len() != self.waba_id.len() || !waba.bytes().all(|b| b.is_ascii_graphic()) {
            return Err(ConfigError::new("waba_id", "must be the WABA id, printable ASCII without spaces"));
        }
        if !(8..=15).contains(&self.send_number.len()) || !self.send_number.bytes().all(|b| b.is_ascii_digit()) {
            return Err(ConfigError::new(
                "send_number",
                "must be country code and number, 8 to 15 digits only (no `+`, spaces or dashes)",
            ));
        }
        if let Some(language) = &self.default_language {
            if language.is_empty() || !language.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-') {
                return Err(ConfigError::new("default_language", "must be a language code such as `en` or `en_US`"));
            }
        }
        if let Some(url) = &self.mmlite_url {
            endpoint_url("mmlite_url", url)?;
        }
        if self.marketing_via_mmlite && self.mmlite_url.is_none() {
            return Err(ConfigError::new(
                "mmlite_url",
                "required when `marketing_via_mmlite` is true (InnoPaaS does not publish the MMLite URL)",
            ));
        }
        if self.timeout_ms == 0 {
            return Err(ConfigError::new("timeout_ms", "must be at least 1"));
        }
        Ok(())
    }

    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms)
    }
}

/// Parses a URL that ends up in requests and logs: http(s), a host, no credentials, no fragment.
fn checked_url(key: &'static str, value: &str) -> Result<Url, ConfigError> {
    let url = Url::parse(value.trim()).map_err(|e| ConfigError::new(key, format!("not an absolute URL ({e})")))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(ConfigError::new(key, format!("must be an http or https URL, not `{}`", url.scheme())));
    }
    if url.host_str().is_none_or(str::is_empty) {
        return Err(ConfigError::new(key, "must name a host"));
    }
    // URLs end up in logs; credentials belong in `app_key` and `token`.
    if !url.username().is_empty() || url.password().is_some() {
        return Err(ConfigError::new(key, "must not hold a user name or password"));
    }
    if url.fragment().is_some() {
        return Err(ConfigError::new(key, "must not have a fragment"));
    }
    Ok(url)
}

/// A base URL without a trailing `/`, ready for paths to be appended.
pub(crate) fn base_url(key: &'static str, value: &str) -> Result<String, ConfigError> {
    let url = checked_url(key, value)?;
    if url.query().is_some() {
        return Err(ConfigError::new(key, "must not have a query"));
    }
    Ok(url.as_str().trim_end_matches('/').to_owned())
}

/// A complete endpoint URL, used as it is.
pub(crate) fn endpoint_url(key: &'static str, value: &str) -> Result<String, ConfigError> {
    Ok(checked_url(key, value)?.to_string())
}

fn header_secret(key: &'static str, secret: &SecretString) -> Result<(), ConfigError> {
    let value = secret.expose_secret();
    if value.is_empty() {
        return Err(ConfigError::new(key, "must not be empty"));
    }
    // It travels as an HTTP header value; a space or control character is a paste error.
    if !value.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(ConfigError::new(key, "must be printable ASCII without spaces"));
    }
    Ok(())
}

const REDACTED: &str = "[redacted]";

impl fmt::Debug for InnopaasConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InnopaasConfig")
            .field("base_url", &self.base_url)
            .field("app_key", &REDACTED)
            .field("token", &REDACTED)
            .field("waba_id", &self.waba_id)
            .field("send_number", &self.send_number)
            .field("default_language", &self.default_language)
            .field("mmlite_url", &self.mmlite_url)
            .field("marketing_via_mmlite", &self.marketing_via_mmlite)
            .field("timeout_ms", &self.timeout_ms)
            .finish()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn config() -> InnopaasConfig {
        InnopaasConfig::new(
            SecretString::from("ak-1"),
            SecretString::from("eyJhbGciOi.x.y"),
            "104417182520443",
            "85230012345",
        )
    }

    #[test]
    fn defaults_are_the_documented_host_and_no_mmlite() {
        let c: InnopaasConfig = serde_json::from_value(serde_json::json!({
            "app_key": "a", "token": "t", "waba_id": "1", "send_number": "85230012345"
        }))
        .unwrap();
        assert_eq!(c.base_url, "https://api.innopaas.com");
        assert_eq!(c.timeout_ms, 10_000);
        assert_eq!((c.default_language, c.mmlite_url, c.marketing_via_mmlite), (None, None, false));
    }

    #[test]
    fn unknown_and_missing_keys_are_refused() {
        let base = serde_json::json!({"app_key": "a", "token": "t", "waba_id": "1", "send_number": "85230012345"});
        let mut typo = base.clone();
        typo["appkey"] = "x".into();
        let typo = serde_json::from_value::<InnopaasConfig>(typo);
        assert!(typo.is_err_and(|e| e.to_string().contains("appkey")));
        for key in ["app_key", "token", "waba_id", "send_number"] {
            let mut missing = base.clone();
            missing.as_object_mut().unwrap().remove(key);
            let err = serde_json::from_value::<InnopaasConfig>(missing).expect_err(key);
            assert!(err.to_string().contains(key), "{err}");
        }
    }

    #[test]
    fn bad_values_name_their_key() {
        type Edit = fn(&mut InnopaasConfig);
        let cases: &[(&str, Edit)] = &[
            ("base_url", |c| c.base_url = "api.innopaas.com".into()),
            ("base_url", |c| c.base_url = "ftp://api.innopaas.com".into()),
            ("base_url", |c| c.base_url = "https://u:p@api.innopaas.com".into()),
            ("base_url", |c| c.base_url = "https://api.innopaas.com/?x=1".into()),
            ("app_key", |c| c.app_key = SecretString::from("")),
            ("token", |c| c.token = SecretString::from("Bearer eyJ")),
            ("waba_id", |c| c.waba_id = String::new()),
            ("waba_id", |c| c.waba_id = " 1044".into()),
            ("send_number", |c| c.send_number = "+85230012345".into()),
            ("send_number", |c| c.send_number = "1234567".into()),
            ("default_language", |c| c.default_language = Some("en US".into())),
            ("mmlite_url", |c| c.mmlite_url = Some("mmlite".into())),
            ("mmlite_url", |c| c.marketing_via_mmlite = true),
            ("timeout_ms", |c| c.timeout_ms = 0),
        ];
        for (key, edit) in cases {
            let mut c = config();
            edit(&mut c);
            let err = c.validate().expect_err(key);
            assert_eq!(err.key, *key, "{err}");
            assert!(err.to_string().contains(key), "{err}");
        }
        assert_eq!(config().validate(), Ok(()));
    }

    #[test]
    fn urls_are_normalised() {
        assert_eq!(base_url("k", "https://api.innopaas.com/").unwrap(), "https://api.innopaas.com");
        assert_eq!(base_url("k", "http://127.0.0.1:8090/inno/").unwrap(), "http://127.0.0.1:8090/inno");
        assert_eq!(
            endpoint_url("k", "https://mmlite.example.com/api/submit?v=1").unwrap(),
            "https://mmlite.example.com/api/submit?v=1"
        );
    }

    #[test]
    fn debug_redacts_the_credentials() {
        let text = format!("{:?}", config());
        assert!(!text.contains("ak-1"), "{text}");
        assert!(!text.contains("eyJhbGciOi"), "{text}");
        assert!(text.contains("[redacted]") && text.contains("104417182520443"), "{text}");
    }
}
