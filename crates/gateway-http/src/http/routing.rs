//! Which sender and which provider accounts carry a message.
//!
//! A message names a sender (or gets its channel's default); the sender lists its accounts in
//! order of preference. Routing rules (first match wins: channel, sender, recipient prefix, type)
//! may give another order; accounts of other senders in a rule are passed over, and a rule that
//! leaves none does not match. A pinned `provider` keeps only that provider's accounts, and an
//! account whose adapter cannot carry the content is skipped. The message is queued on the first
//! account left and keeps the rest for failover.

use std::collections::HashMap;
use std::sync::Arc;

use gateway_core::validate::{FieldErrors, Path};
use gateway_core::{Channel, OutboundMessage};

use crate::config::{Config, RouteConfig};
use crate::delivery::worker::Lanes;
use crate::http::problem::ApiError;

#[derive(Debug, Clone)]
struct SenderRoute {
    channel: Channel,
    accounts: Vec<String>,
}

/// Where a message goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    pub sender: String,
    /// Accounts able to carry the message, in order; never empty.
    pub lanes: Vec<String>,
}

pub struct Router {
    senders: HashMap<String, SenderRoute>,
    defaults: HashMap<Channel, String>,
    rules: Vec<RouteConfig>,
    lanes: Arc<Lanes>,
}

fn rule_matches(rule: &RouteConfig, sender: &str, message: &OutboundMessage) -> bool {
    let channel_ok = rule.channel.is_none_or(|c| c == message.channel());
    let sender_ok = rule.sender.as_deref().is_none_or(|s| s == sender);
    let prefix_ok = rule.country_prefixes.is_empty() || rule.country_prefixes.iter().any(|p| message.to.has_prefix(p));
    let kind = message.content.content_type().as_str();
    let full = message.content.interactive_kind().map(|sub| format!("{kind}.{sub}"));
    let type_ok = rule.types.is_empty() || rule.types.iter().any(|t| t == kind || Some(t) == full.as_ref());
    channel_ok && sender_ok && prefix_ok && type_ok
}

impl Router {
    pub fn new(config: &Config, lanes: Arc<Lanes>) -> Self {
        let senders = config
            .senders
            .iter()
            .map(|s| (s.name.clone(), SenderRoute { channel: s.channel, accounts: s.accounts.clone() }))
            .collect();
        let defaults = config.senders.iter().filter(|s| s.default).map(|s| (s.channel, s.name.clone())).collect();
        Self { senders, defaults, rules: config.routes.clone(), lanes }
    }

    /// # Errors
    /// A 422 naming the field when the sender is unknown or of another channel, when the pinned
    /// provider has no account for it, or when no account can carry the content.
    pub fn route(&self, message: &OutboundMessage) -> Result<Route, ApiError> {
        let channel = message.channel();
        let sender = match &message.sender {
            Some(name) => name.clone(),
            None => self.defaults.get(&channel).cloned().ok_or_else(|| {
                ApiError::Validation(FieldErrors::single(
                    "sender",
                    format!("no default sender for {channel}; name one"),
                ))
            })?,
        };
        let Some(route) = self.senders.get(&sender) else {
            return Err(ApiError::Validation(FieldErrors::single("sender", format!("no sender named `{sender}`"))));
        };
        if route.channel != channel {
            return Err(ApiError::Validation(FieldErrors::single(
                "sender",
                format!("sender `{sender}` sends {}, not {channel}", route.channel),
            )));
        }
        let order = self
            .rules
            .iter()
            .filter(|r| rule_matches(r, &sender, message))
            .map(|r| r.accounts.iter().filter(|a| route.accounts.contains(a)).cloned().collect::<Vec<_>>())
            .find(|accounts| !accounts.is_empty())
            .unwrap_or_else(|| route.accounts.clone());
        let mut reasons = FieldErrors::default();
        let mut lanes = Vec::new();
        for account in &order {
            let Some(lane) = self.lanes.get(account) else { continue };
            if let Some(pinned) = message.provider {
                if lane.provider.kind() != pinned {
                    continue;
                }
            }
            match lane.provider.can_carry(message) {
                Ok(()) => lanes.push(account.clone()),
                Err(why) => reasons.push(Path::root().key("type"), format!("account `{account}`: {why}")),
            }
        }
        if lanes.is_empty() {
            if let (Some(pinned), true) = (message.provider, reasons.is_empty()) {
                return Err(ApiError::Validation(FieldErrors::single(
                    "provider",
                    format!("sender `{sender}` has no {pinned} account"),
                )));
            }
            let detail = match message.content.interactive_kind() {
                Some(kind) => {
                    format!("no account of sender `{sender}` can carry {channel} interactive `{kind}` messages")
                }
                None => format!(
                    "no account of sender `{sender}` can carry {channel} `{}` messages",
                    message.content.content_type()
                ),
            };
            return Err(ApiError::Unroutable { detail, errors: reasons });
        }
        Ok(Route { sender, lanes })
    }
}
