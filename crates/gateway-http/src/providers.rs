//! The provider registry: the one place that knows which providers exist. Each provider is an
//! adapter crate with a [`ProviderFamily`] (its callbacks, its judgement of reported failures)
//! and an account type implementing [`Provider`]; an account's configuration is a
//! [`ProviderSettings`] variant with that provider's own settings. Everything else in the gateway
//! goes through these, and never asks which provider it has.

use std::sync::Arc;
use std::time::Duration;

use gateway_core::{Channel, Provider, ProviderFamily, ProviderKind};
use gateway_incs::{IncsAccount, IncsConfig};
use gateway_innopaas::{InnopaasAccount, InnopaasConfig};
use secrecy::SecretString;
use serde::Deserialize;

/// The provider family of `kind`: every provider the gateway speaks, one line each (the match
/// is exhaustive, so a new [`ProviderKind`] does not build without its line).
pub fn family(kind: ProviderKind) -> &'static dyn ProviderFamily {
    match kind {
        ProviderKind::Incs => &gateway_incs::Incs,
        ProviderKind::Innopaas => &gateway_innopaas::Innopaas,
    }
}

/// Every provider the gateway speaks, in [`ProviderKind::ALL`]'s order.
pub fn families() -> impl Iterator<Item = &'static dyn ProviderFamily> {
    ProviderKind::ALL.into_iter().map(family)
}

/// One account's provider and that provider's own settings, as the `provider` key and the table
/// named after it give them (`provider = "incs"` with `[accounts.incs]`). A `provider` with
/// another provider's settings cannot be represented.
#[derive(Clone)]
pub enum ProviderSettings {
    Incs(IncsConfig),
    Innopaas(InnopaasConfig),
}

/// A settings problem, with the key (relative to the account) at fault.
pub struct SettingsError {
    pub key: String,
    pub reason: String,
}

impl SettingsError {
    fn new(key: impl Into<String>, reason: impl Into<String>) -> Self {
        Self { key: key.into(), reason: reason.into() }
    }
}

/// An account as written in the file: `provider = "…"` and that provider's settings table.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct WrittenAccount {
    name: String,
    provider: ProviderKind,
    #[serde(default)]
    incs: Option<IncsConfig>,
    #[serde(default)]
    innopaas: Option<InnopaasConfig>,
    #[serde(default = "crate::config::default_rate")]
    rate_per_second: u32,
    #[serde(default = "crate::config::default_burst")]
    burst: u32,
    #[serde(default)]
    callback_token: Option<SecretString>,
    #[serde(default)]
    webhook_headers: std::collections::BTreeMap<String, SecretString>,
}

impl TryFrom<WrittenAccount> for crate::config::AccountConfig {
    type Error = String;

    fn try_from(w: WrittenAccount) -> Result<Self, String> {
        let settings = match w.provider {
            ProviderKind::Incs => (w.incs.map(ProviderSettings::Incs), w.innopaas.is_some().then_some("innopaas")),
            ProviderKind::Innopaas => (w.innopaas.map(ProviderSettings::Innopaas), w.incs.is_some().then_some("incs")),
        };
        let settings = match settings {
            (_, Some(other)) => Err(SettingsError::new(other, format!("this account's provider is `{}`", w.provider))),
            (None, None) => {
                Err(SettingsError::new(w.provider.as_str(), format!("required for provider `{}`", w.provider)))
            }
            (Some(settings), None) => Ok(settings),
        }
        .map_err(|e| format!("account `{}`: `{}`: {}", w.name, e.key, e.reason))?;
        Ok(Self {
            name: w.name,
            settings,
            rate_per_second: w.rate_per_second,
            burst: w.burst,
            callback_token: w.callback_token,
            webhook_headers: w.webhook_headers,
        })
    }
}

impl std::fmt::Debug for ProviderSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The settings hold credentials; their own Debug impls redact them.
        match self {
            Self::Incs(c) => f.debug_tuple("Incs").field(c).finish(),
            Self::Innopaas(c) => f.debug_tuple("Innopaas").field(c).finish(),
        }
    }
}

impl ProviderSettings {
    pub fn kind(&self) -> ProviderKind {
        match self {
            Self::Incs(_) => ProviderKind::Incs,
            Self::Innopaas(_) => ProviderKind::Innopaas,
        }
    }

    /// Checks every key of the provider's table.
    ///
    /// # Errors
    /// The first bad key, relative to the account (`incs.timeout_ms`).
    pub fn validate(&self) -> Result<(), SettingsError> {
        let (table, result) = match self {
            Self::Incs(c) => ("incs", c.validate().map_err(|e| (e.key, e.reason))),
            Self::Innopaas(c) => ("innopaas", c.validate().map_err(|e| (e.key, e.reason))),
        };
        result.map_err(|(key, reason)| SettingsError::new(format!("{table}.{key}"), reason))
    }

    /// The per-request timeout, and its key relative to the account.
    pub fn timeout(&self) -> (&'static str, Duration) {
        match self {
            Self::Incs(c) => ("incs.timeout_ms", c.timeout()),
            Self::Innopaas(c) => ("innopaas.timeout_ms", c.timeout()),
        }
    }

    /// Why this account cannot serve a sender of `channel`, if it cannot.
    pub fn refuses(&self, channel: Channel) -> Option<String> {
        match self {
            Self::Incs(c) => (!c.serves(channel)).then(|| format!("does not serve {channel}")),
            Self::Innopaas(_) => (channel != Channel::Whatsapp).then(|| "is InnoPaaS: WhatsApp only".to_owned()),
        }
    }

    /// The business number and the provider's id of the channel or WABA, as callbacks name them
    /// (INCS `business_phone` / `channel_id`, InnoPaaS `sendNumber` / `wabaId`).
    pub fn identity(&self) -> (Option<String>, Option<String>) {
        match self {
            Self::Incs(c) => (c.business_phone.clone(), c.channel_id.map(|id| id.to_string())),
            Self::Innopaas(c) => (Some(c.send_number.clone()), Some(c.waba_id.clone())),
        }
    }

    /// The account's adapter. `webhook_headers` are the static headers its callbacks must carry.
    ///
    /// # Errors
    /// The adapter's refusal of its configuration, naming the key.
    pub fn build(
        &self,
        http: &reqwest::Client,
        webhook_headers: Vec<(String, SecretString)>,
    ) -> Result<Arc<dyn Provider>, SettingsError> {
        match self {
            Self::Incs(c) => IncsAccount::new(c.clone(), http.clone())
                .map(|a| Arc::new(a) as Arc<dyn Provider>)
                .map_err(|e| SettingsError::new(format!("incs.{}", e.key), e.reason)),
            Self::Innopaas(c) => InnopaasAccount::new(c.clone(), http.clone())
                .map(|a| Arc::new(a.with_webhook_headers(webhook_headers)) as Arc<dyn Provider>)
                .map_err(|e| SettingsError::new(format!("innopaas.{}", e.key), e.reason)),
        }
    }
}

#[cfg(test)]
mod tests {
    use gateway_core::template::TemplateLimits;

    use super::*;

    #[test]
    fn every_provider_kind_has_its_line() {
        for kind in ProviderKind::ALL {
            assert_eq!(family(kind).kind(), kind);
        }
        assert_eq!(families().map(|f| f.kind()).collect::<Vec<_>>(), ProviderKind::ALL);
        assert_eq!(family(ProviderKind::Innopaas).template_limits(), TemplateLimits::INNOPAAS);
        assert_eq!(family(ProviderKind::Incs).template_limits(), TemplateLimits::INCS);
    }
}
