//! Meta (WhatsApp Cloud API) error codes and their retry class (PROVIDERS.md §3.4). Both providers
//! pass these through: INCS inside a 10002 message, InnoPaaS in `errorData.errorCode`.

use std::time::Duration;

use crate::provider::{ErrorClass, RejectScope, ThrottleScope};

/// WhatsApp's pair rate: at most about one message per 6 s to the same user.
pub const PAIR_RATE_DELAY: Duration = Duration::from_secs(6);

/// The class of a Meta error code.
pub fn classify(code: u32) -> ErrorClass {
    match code {
        // Throughput (130429), application/API-level throttling (80007, 4): pause the lane.
        130429 | 80007 | 4 => ErrorClass::Throttled { retry_after: None, scope: ThrottleScope::Lane },
        // Pair rate: only this recipient must wait.
        131056 => ErrorClass::Throttled { retry_after: Some(PAIR_RATE_DELAY), scope: ThrottleScope::Recipient },
        1 | 2 | 131000 | 131016 | 133004 => ErrorClass::Transient,
        // Authentication and permission (0, 10, 190, 200-299), spam limit (131048), policy blocks
        // (368, 131031), payment (131042): the account is at fault, another may carry the message.
        0 | 10 | 190 | 200..=299 | 131048 | 368 | 131031 | 131042 => ErrorClass::Rejected(RejectScope::Account),
        // Everything else, including 131047 (window), 131026, 131049-131053, 100, 131008,
        // 131009 and the template codes 132xxx: the content or recipient is at fault.
        _ => ErrorClass::Rejected(RejectScope::Content),
    }
}

/// Finds the Meta code in a message such as `"(#132012) Parameter format does not match…"`.
pub fn code_in_message(message: &str) -> Option<u32> {
    let start = message.find("(#")? + 2;
    let rest = &message[start..];
    let end = rest.find(')')?;
    rest[..end].parse().ok()
}

/// The Meta code of a failure a provider reported by callback: its code, when that is a number
/// (both providers send Meta codes as text there), or else a `(#code)` in its title.
pub fn code_of_report(code: Option<&str>, title: &str) -> Option<u32> {
    code.and_then(|c| c.trim().parse().ok()).or_else(|| code_in_message(title))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reported_code_is_read_from_the_code_then_the_title() {
        assert_eq!(code_of_report(Some("131000"), "Something went wrong"), Some(131000));
        assert_eq!(code_of_report(Some(" 131026 "), ""), Some(131026));
        assert_eq!(code_of_report(None, "(#131016) Service unavailable"), Some(131016));
        assert_eq!(code_of_report(Some("SMECL:FAILED"), "platform"), None);
        assert_eq!(code_of_report(None, "no code"), None);
    }

    #[test]
    fn classes_follow_the_table() {
        let lane = ErrorClass::Throttled { retry_after: None, scope: ThrottleScope::Lane };
        let cases: &[(u32, ErrorClass)] = &[
            (130429, lane),
            (80007, lane),
            (4, lane),
            (131056, ErrorClass::Throttled { retry_after: Some(PAIR_RATE_DELAY), scope: ThrottleScope::Recipient }),
            (1, ErrorClass::Transient),
            (2, ErrorClass::Transient),
            (131000, ErrorClass::Transient),
            (131016, ErrorClass::Transient),
            (133004, ErrorClass::Transient),
            (131047, ErrorClass::Rejected(RejectScope::Content)),
            (131026, ErrorClass::Rejected(RejectScope::Content)),
            (131049, ErrorClass::Rejected(RejectScope::Content)),
            (131050, ErrorClass::Rejected(RejectScope::Content)),
            (131051, ErrorClass::Rejected(RejectScope::Content)),
            (131052, ErrorClass::Rejected(RejectScope::Content)),
            (131053, ErrorClass::Rejected(RejectScope::Content)),
            (100, ErrorClass::Rejected(RejectScope::Content)),
            (131008, ErrorClass::Rejected(RejectScope::Content)),
            (131009, ErrorClass::Rejected(RejectScope::Content)),
            (132000, ErrorClass::Rejected(RejectScope::Content)),
            (132001, ErrorClass::Rejected(RejectScope::Content)),
            (132005, ErrorClass::Rejected(RejectScope::Content)),
            (132007, ErrorClass::Rejected(RejectScope::Content)),
            (132012, ErrorClass::Rejected(RejectScope::Content)),
            (132015, ErrorClass::Rejected(RejectScope::Content)),
            (132016, ErrorClass::Rejected(RejectScope::Content)),
            (131048, ErrorClass::Rejected(RejectScope::Account)),
            (368, ErrorClass::Rejected(RejectScope::Account)),
            (131031, ErrorClass::Rejected(RejectScope::Account)),
            (131042, ErrorClass::Rejected(RejectScope::Account)),
            (0, ErrorClass::Rejected(RejectScope::Account)),
            (10, ErrorClass::Rejected(RejectScope::Account)),
            (190, ErrorClass::Rejected(RejectScope::Account)),
            (200, ErrorClass::Rejected(RejectScope::Account)),
            (299, ErrorClass::Rejected(RejectScope::Account)),
        ];
        for (code, want) in cases {
            assert_eq!(classify(*code), *want, "meta code {code}");
        }
    }

    #[test]
    fn finds_the_code_in_an_incs_message() {
        assert_eq!(
            code_in_message("(#132012) Parameter format does not match format in the created template"),
            Some(132012)
        );
        assert_eq!(code_in_message("Error (#130429) Rate limit hit"), Some(130429));
        assert_eq!(code_in_message("no code here"), None);
        assert_eq!(code_in_message("(#abc) nonsense"), None);
        assert_eq!(code_in_message("(#"), None);
    }
}
