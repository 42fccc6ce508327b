//! The message status model (DESIGN.md §2.3) and its never-backwards rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `queued → sending → submitted → sent → delivered → read`, and the terminal `failed`,
/// `cancelled`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum MessageStatus {
    /// Accepted and stored, waiting for its turn (or its `send_at`, or a retry).
    Queued,
    /// Claimed by a worker; a provider call is under way.
    Sending,
    /// The provider accepted it and gave a message id.
    Submitted,
    Sent,
    Delivered,
    Read,
    Failed,
    Cancelled,
}

/// What applying a reported status to a message does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusChange {
    /// The message moves to the reported status.
    Advance,
    /// The report is kept in the history only: it would move the status backwards, or the
    /// message is already final.
    HistoryOnly,
}

impl MessageStatus {
    pub const ALL: [MessageStatus; 8] = [
        Self::Queued,
        Self::Sending,
        Self::Submitted,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Queued => "queued",
            Self::Sending => "sending",
            Self::Submitted => "submitted",
            Self::Sent => "sent",
            Self::Delivered => "delivered",
            Self::Read => "read",
            Self::Failed => "failed",
            Self::Cancelled => "cancelled",
        }
    }

    /// Progress along the delivery path; `failed` and `cancelled` sit outside it.
    fn progress(self) -> Option<u8> {
        match self {
            Self::Queued => Some(0),
            Self::Sending => Some(1),
            Self::Submitted => Some(2),
            Self::Sent => Some(3),
            Self::Delivered => Some(4),
            Self::Read => Some(5),
            Self::Failed | Self::Cancelled => None,
        }
    }

    /// No further status can replace this one.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Read | Self::Failed | Self::Cancelled)
    }

    /// The provider has the message: from here on only provider reports move it.
    pub fn is_with_provider(self) -> bool {
        matches!(self, Self::Submitted | Self::Sent | Self::Delivered | Self::Read)
    }

    /// Applies a status reported by a provider (callback or status poll) to a message in `self`.
    ///
    /// Providers report out of order and may skip steps (Meta may send `read` without
    /// `delivered`), so any forward step is taken; nothing moves backwards; a `failed` after
    /// `delivered` or `read` does not downgrade; a final status stays.
    pub fn on_report(self, reported: MessageStatus) -> StatusChange {
        if self.is_final() {
            return StatusChange::HistoryOnly;
        }
        match (self.progress(), reported) {
            (Some(current), MessageStatus::Failed) if current < 4 => StatusChange::Advance,
            (Some(current), r) => match r.progress() {
                Some(next) if next > current => StatusChange::Advance,
                _ => StatusChange::HistoryOnly,
            },
            (None, _) => StatusChange::HistoryOnly,
        }
    }
}

impl fmt::Display for MessageStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for MessageStatus {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::ALL
            .into_iter()
            .find(|st| st.as_str() == s)
            .ok_or_else(|| format!("unknown status `{s}`"))
    }
}

#[cfg(test)]
mod tests {
    use super::MessageStatus::*;
    use super::StatusChange::*;
    use super::*;

    #[test]
    fn forward_steps_apply_and_backward_ones_do_not() {
        let cases = [
            (Submitted, Sent, Advance),
            (Submitted, Delivered, Advance),
            (Submitted, Read, Advance),
            (Sent, Delivered, Advance),
            (Delivered, Read, Advance),
            (Sending, Submitted, Advance),
            (Read, Delivered, HistoryOnly),
            (Read, Sent, HistoryOnly),
            (Delivered, Sent, HistoryOnly),
            (Delivered, Delivered, HistoryOnly),
            (Sent, Submitted, HistoryOnly),
            (Submitted, Queued, HistoryOnly),
        ];
        for (from, to, want) in cases {
            assert_eq!(from.on_report(to), want, "{from} -> {to}");
        }
    }

    #[test]
    fn failed_does_not_downgrade_delivered_or_read() {
        assert_eq!(Submitted.on_report(Failed), Advance);
        assert_eq!(Sent.on_report(Failed), Advance);
        assert_eq!(Delivered.on_report(Failed), HistoryOnly);
        assert_eq!(Read.on_report(Failed), HistoryOnly);
    }

    #[test]
    fn final_statuses_stay() {
        for reported in MessageStatus::ALL {
            assert_eq!(Failed.on_report(reported), HistoryOnly);
            assert_eq!(Cancelled.on_report(reported), HistoryOnly);
            assert_eq!(Read.on_report(reported), HistoryOnly);
        }
    }

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse::<MessageStatus>(), Ok(s));
        }
    }
}
