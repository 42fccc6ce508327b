//! The configured provider accounts with their adapters, for what goes beyond sending (status
//! polls, templates, account info, callback authentication).

use std::collections::HashMap;
use std::sync::Arc;

use gateway_core::{Channel, Provider, ProviderKind};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use crate::config::Config;

pub struct Account {
    pub name: String,
    pub provider: ProviderKind,
    pub sender: String,
    pub channel: Channel,
    pub adapter: Arc<dyn Provider>,
    /// The business number callbacks name for this account (INCS `business_phone`, InnoPaaS
    /// `sendNumber`), when configured.
    pub business_phone: Option<String>,
    /// The provider's id of this account's channel or WABA (INCS `channel_id`, InnoPaaS `wabaId`).
    pub business_account: Option<String>,
}

impl Account {
    /// Whether a callback naming this number or account id is about this account. `None` when
    /// the account has nothing configured to compare with.
    pub fn names(&self, phone: Option<&str>, account: Option<&str>) -> Option<bool> {
        if self.business_phone.is_none() && self.business_account.is_none() {
            return None;
        }
        let same = |mine: &Option<String>, theirs: Option<&str>| matches!((mine, theirs), (Some(m), Some(t)) if m == t.trim_start_matches('+'));
        Some(same(&self.business_phone, phone) || same(&self.business_account, account))
    }
}

/// Every account, by name, and the callback tokens that lead to them.
#[derive(Default)]
pub struct Accounts {
    by_name: HashMap<String, Arc<Account>>,
    /// SHA-256 of (provider, token) → the accounts behind that callback URL. Looking up a hash
    /// means comparing the presented token to a stored one never happens byte by byte.
    by_token: HashMap<String, Vec<Arc<Account>>>,
}

fn token_key(provider: ProviderKind, token: &str) -> String {
    hex::encode(Sha256::digest(format!("{provider}\n{token}").as_bytes()))
}

impl Accounts {
    /// # Errors
    /// A message naming the account whose adapter refuses its configuration.
    pub fn build(config: &Config, http: &reqwest::Client) -> Result<Self, String> {
        let mut out = Accounts::default();
        for sender in &config.senders {
            for name in &sender.accounts {
                let Some(a) = config.account(name) else { continue };
                let (business_phone, business_account) = a.settings.identity();
                let webhook_headers: Vec<(String, SecretString)> =
                    a.webhook_headers.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
                let adapter = a
                    .settings
                    .build(http, webhook_headers)
                    .map_err(|e| format!("accounts.{name}.{}: {}", e.key, e.reason))?;
                let account = Arc::new(Account {
                    name: name.clone(),
                    provider: a.provider(),
                    sender: sender.name.clone(),
                    channel: sender.channel,
                    adapter,
                    business_phone,
                    business_account,
                });
                if let Some(token) = &a.callback_token {
                    out.by_token
                        .entry(token_key(a.provider(), token.expose_secret()))
                        .or_default()
                        .push(account.clone());
                }
                out.by_name.insert(name.clone(), account);
            }
        }
        Ok(out)
    }

    pub fn get(&self, name: &str) -> Option<&Arc<Account>> {
        self.by_name.get(name)
    }

    pub fn iter(&self) -> impl Iterator<Item = &Arc<Account>> {
        self.by_name.values()
    }

    /// The accounts whose callback URL carries this token.
    pub fn by_callback_token(&self, provider: ProviderKind, token: &str) -> &[Arc<Account>] {
        self.by_token.get(&token_key(provider, token)).map(Vec::as_slice).unwrap_or(&[])
    }
}
