//! The message status model (DESIGN.md §2.3) and its never-backwards rule.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `queued → sending → submitted → sent → delivered → read`, and the terminal `failed`,
/// `cancelled` and `expired` (its validity ended before it reached a provider).
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
    /// Its validity (`ttl_seconds`) ended before it was handed to a provider; it was never sent.
    Expired,
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
    pub const ALL: [MessageStatus; 9] = [
        Self::Queued,
        Self::Sending,
        Self::Submitted,
        Self::Sent,
        Self::Delivered,
        Self::Read,
        Self::Failed,
        Self::Cancelled,
        Self::Expired,
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
            Self::Expired => "expired",
        }
    }

    /// Progress along the delivery path; `failed`, `cancelled` and `expired` sit outside it.
    fn progress(self) -> Option<u8> {
        match self {
            Self::Queued => Some(0),
            Self::Sending => Some(1),
            Self::Submitted => Some(2),
            Self::Sent => Some(3),
            Self::Delivered => Some(4),
            Self::Read => Some(5),
            Self::Failed | Self::Cancelled | Self::Expired => None,
        }
    }

    /// No further status can replace this one.
    pub fn is_final(self) -> bool {
        matches!(self, Self::Read | Self::Failed | Self::Cancelled | Self::Expired)
    }

    /// Final without reaching the person: what makes a cross-channel fallback send its next step.
    /// Every final status but `read` (the only final one on the delivery path).
    pub fn ended_undelivered(self) -> bool {
        self.is_final() && self.progress().is_none()
    }

    /// Whether a message in this status has got at least as far as `target` along the delivery
    /// path (`read` reaches `delivered`; nothing off the path reaches anything).
    pub fn reaches(self, target: MessageStatus) -> bool {
        matches!((self.progress(), target.progress()), (Some(p), Some(t)) if p >= t)
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
        Self::ALL.into_iter().find(|st| st.as_str() == s).ok_or_else(|| format!("unknown status `{s}`"))
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
            assert_eq!(Expired.on_report(reported), HistoryOnly);
            assert_eq!(Read.on_report(reported), HistoryOnly);
        }
    }

    /// Every (current, reported) pair, so no edge is left to inference. Columns follow
    /// `MessageStatus::ALL`: queued, sending, submitted, sent, delivered, read, failed, cancelled,
    /// expired. `cancelled` and `expired` are the gateway's own acts, never provider reports, so a
    /// report of either changes nothing.
    #[test]
    fn every_pair_of_current_and_reported_status() {
        const A: StatusChange = Advance;
        const H: StatusChange = HistoryOnly;
        let matrix: [(MessageStatus, [StatusChange; 9]); 9] = [
            (Queued, [H, A, A, A, A, A, A, H, H]),
            (Sending, [H, H, A, A, A, A, A, H, H]),
            (Submitted, [H, H, H, A, A, A, A, H, H]),
            (Sent, [H, H, H, H, A, A, A, H, H]),
            (Delivered, [H, H, H, H, H, A, H, H, H]),
            (Read, [H; 9]),
            (Failed, [H; 9]),
            (Cancelled, [H; 9]),
            (Expired, [H; 9]),
        ];
        for (current, row) in matrix {
            for (reported, want) in MessageStatus::ALL.into_iter().zip(row) {
                assert_eq!(current.on_report(reported), want, "{current} reported {reported}");
            }
        }
    }

    #[test]
    fn a_repeated_report_is_history_only() {
        for s in MessageStatus::ALL {
            assert_eq!(s.on_report(s), HistoryOnly, "{s} twice");
        }
    }

    /// A late callback for a message whose send call has not returned yet (still `sending`, or
    /// even `queued` again after a lease expired) still moves it on: the provider has it.
    #[test]
    fn callbacks_that_overtake_the_send_response_apply() {
        for current in [Queued, Sending] {
            for reported in [Sent, Delivered, Read, Failed] {
                assert_eq!(current.on_report(reported), Advance, "{current} reported {reported}");
            }
        }
    }

    /// Meta may skip `delivered`; a `delivered` arriving after `read`, or a `failed` after
    /// either, changes nothing, in any arrival order.
    #[test]
    fn out_of_order_reports_end_at_the_furthest_status() {
        let orders: [&[MessageStatus]; 5] = [
            &[Sent, Delivered, Read],
            &[Read, Delivered, Sent],
            &[Delivered, Sent, Failed, Read],
            &[Sent, Read, Failed, Delivered],
            &[Delivered, Failed, Sent],
        ];
        let want = [Read, Read, Read, Read, Delivered];
        for (order, want) in orders.into_iter().zip(want) {
            let end = order.iter().fold(Submitted, |current, &reported| match current.on_report(reported) {
                Advance => reported,
                HistoryOnly => current,
            });
            assert_eq!(end, want, "{order:?}");
        }
    }

    #[test]
    fn final_and_with_provider_sets() {
        let finals: Vec<_> = MessageStatus::ALL.into_iter().filter(|s| s.is_final()).collect();
        assert_eq!(finals, [Read, Failed, Cancelled, Expired]);
        let with_provider: Vec<_> = MessageStatus::ALL.into_iter().filter(|s| s.is_with_provider()).collect();
        assert_eq!(with_provider, [Submitted, Sent, Delivered, Read]);
    }

    #[test]
    fn undelivered_ends_and_reaching_a_target() {
        let undelivered: Vec<_> = MessageStatus::ALL.into_iter().filter(|s| s.ended_undelivered()).collect();
        assert_eq!(undelivered, [Failed, Cancelled, Expired]);
        assert!(Read.reaches(Delivered));
        assert!(Delivered.reaches(Delivered));
        assert!(!Sent.reaches(Delivered));
        assert!(Submitted.reaches(Submitted));
        assert!(!Failed.reaches(Submitted));
        assert!(!Cancelled.reaches(Queued));
    }

    #[test]
    fn json_names_are_the_api_names() {
        for s in MessageStatus::ALL {
            assert_eq!(serde_json::to_value(s).ok(), Some(serde_json::Value::from(s.as_str())));
        }
        assert!("Delivered".parse::<MessageStatus>().is_err());
        assert!("unknown".parse::<MessageStatus>().is_err());
    }

    #[test]
    fn names_round_trip() {
        for s in MessageStatus::ALL {
            assert_eq!(s.as_str().parse::<MessageStatus>(), Ok(s));
        }
    }
}
