//! INCS's message statuses: the one table the callbacks and the status poll read (PROVIDERS.md
//! §0). INCS names a status (`"delivered"`) or gives its internal integer (3); 0 is "created",
//! which tells us nothing, and has no row.

use gateway_core::MessageStatus;

/// `(name, INCS integer, gateway status)`: a new INCS status is one row here.
const STATUSES: [(&str, i64, MessageStatus); 4] = [
    ("sent", 1, MessageStatus::Sent),
    ("failed", 2, MessageStatus::Failed),
    ("delivered", 3, MessageStatus::Delivered),
    ("read", 4, MessageStatus::Read),
];

/// A status name, in any case and with surrounding blanks.
pub(crate) fn from_name(name: &str) -> Option<MessageStatus> {
    let name = name.trim();
    STATUSES.iter().find(|(n, _, _)| n.eq_ignore_ascii_case(name)).map(|(_, _, s)| *s)
}

/// One of INCS's internal status integers.
pub(crate) fn from_code(code: i64) -> Option<MessageStatus> {
    STATUSES.iter().find(|(_, c, _)| *c == code).map(|(_, _, s)| *s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_by_name_and_by_code() {
        assert_eq!(from_name("read"), Some(MessageStatus::Read));
        assert_eq!(from_name("Delivered"), Some(MessageStatus::Delivered));
        assert_eq!(from_name(" sent "), Some(MessageStatus::Sent));
        assert_eq!(from_name("accepted"), None);
        assert_eq!(from_code(1), Some(MessageStatus::Sent));
        assert_eq!(from_code(2), Some(MessageStatus::Failed));
        assert_eq!(from_code(3), Some(MessageStatus::Delivered));
        assert_eq!(from_code(4), Some(MessageStatus::Read));
        assert_eq!(from_code(0), None);
        assert_eq!(from_code(-1), None);
    }
}
