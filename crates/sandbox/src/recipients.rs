//! Per-recipient behaviour, so tests and internal teams can drive every delivery outcome:
//! `POST /_sandbox/recipients` `{"to", "channel", "behaviour"}` sets how sends to that number on
//! that channel end, `GET` lists the settings, `DELETE` clears them all.
//!
//! - `normal`: the usual callbacks (the default; setting it removes the entry);
//! - `undeliverable`: the send is accepted, then the provider reports `failed` with its own error
//!   for a number not on that channel (below);
//! - `no_receipts`: the send is accepted and nothing more is ever reported (the status poll says
//!   `accepted` for ever);
//! - `outside_window` (WhatsApp): the user has not written in 24 hours, so a free-form send is
//!   accepted and then reported `failed` with Meta's 131047 "Re-engagement message", as Meta
//!   does; template sends end normally.
//!
//! The "not on this channel" errors: WhatsApp, Meta's 131026 "Message undeliverable" (INCS puts
//! Meta's code in `error.code`, InnoPaaS in `errorData.errorCode`); Viber, the Viber service's
//! `SRVC_NOT_VIBER_USER` (PROVIDERS.md §3.5; INCS documents `error.code` as the service
//! provider's own); RCS, RBM's answer for a number without RCS, `404` "Requested entity was not
//! found." (INCS documents no RCS error codes; this is an assumption, like the INCS channel).

use std::collections::HashMap;
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::recording::lock;

/// How sends to one recipient on one channel end.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Behaviour {
    #[default]
    Normal,
    Undeliverable,
    NoReceipts,
    OutsideWindow,
}

impl Behaviour {
    /// How a send of `message_type` to this recipient ends: outside the window, a template is
    /// delivered as usual.
    pub(crate) fn for_send(self, message_type: &str) -> Behaviour {
        match self {
            Behaviour::OutsideWindow if message_type == "template" => Behaviour::Normal,
            other => other,
        }
    }

    /// The error a failing send is reported with: `(code, title)`.
    pub(crate) fn failure(self, channel: Channel) -> Option<(serde_json::Value, &'static str)> {
        match self {
            Behaviour::Undeliverable => Some(channel.not_on_channel()),
            Behaviour::OutsideWindow => Some((131047.into(), "Re-engagement message")),
            Behaviour::Normal | Behaviour::NoReceipts => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub(crate) enum Channel {
    Whatsapp,
    Viber,
    Rcs,
}

impl Channel {
    /// The provider's error for a recipient not on this channel: `(code, title)`.
    pub(crate) fn not_on_channel(self) -> (serde_json::Value, &'static str) {
        match self {
            Channel::Whatsapp => (131026.into(), "Message undeliverable"),
            Channel::Viber => ("SRVC_NOT_VIBER_USER".into(), "The recipient is not a Viber user"),
            Channel::Rcs => (404.into(), "Requested entity was not found."),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Setting {
    pub(crate) to: String,
    pub(crate) channel: Channel,
    pub(crate) behaviour: Behaviour,
}

impl Setting {
    /// Parses a `POST /_sandbox/recipients` body.
    pub(crate) fn parse(body: &[u8]) -> Result<Setting, String> {
        let mut de = serde_json::Deserializer::from_slice(body);
        let mut setting: Setting =
            serde_path_to_error::deserialize(&mut de).map_err(|e| match e.path().to_string() {
                path if path == "." => e.inner().to_string(),
                path => format!("{path}: {}", e.inner()),
            })?;
        let digits = setting.to.strip_prefix('+').unwrap_or(&setting.to);
        if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(format!("to: 8 to 15 digits with the country code, got `{}`", setting.to));
        }
        setting.to = digits.to_owned();
        if setting.behaviour == Behaviour::OutsideWindow && setting.channel != Channel::Whatsapp {
            return Err("behaviour: `outside_window` is a WhatsApp rule; channel must be `whatsapp`".into());
        }
        Ok(setting)
    }
}

#[derive(Default)]
pub(crate) struct Recipients(Mutex<HashMap<(String, Channel), Behaviour>>);

impl Recipients {
    pub(crate) fn set(&self, s: &Setting) {
        let mut book = lock(&self.0);
        if s.behaviour == Behaviour::Normal {
            book.remove(&(s.to.clone(), s.channel));
        } else {
            book.insert((s.to.clone(), s.channel), s.behaviour);
        }
    }

    pub(crate) fn get(&self, to: &str, channel: Channel) -> Behaviour {
        lock(&self.0).get(&(to.to_owned(), channel)).copied().unwrap_or_default()
    }

    pub(crate) fn list(&self) -> Vec<Setting> {
        let mut all: Vec<Setting> = lock(&self.0)
            .iter()
            .map(|((to, channel), behaviour)| Setting { to: to.clone(), channel: *channel, behaviour: *behaviour })
            .collect();
        all.sort_by(|a, b| (&a.to, a.channel as u8).cmp(&(&b.to, b.channel as u8)));
        all
    }

    pub(crate) fn clear(&self) {
        lock(&self.0).clear();
    }
}
