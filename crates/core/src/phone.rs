//! Recipient phone numbers, parsed once at the edge.

use std::fmt;

use serde::{Deserialize, Serialize};

/// A recipient number in the form every provider wants: country code and number, digits only,
/// 8 to 15 digits (E.164 without the `+`). Once one exists it is valid.
#[derive(Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct PhoneNumber(String);

/// Why a string is not a [`PhoneNumber`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneNumberError {
    #[error("must contain only digits (country code and number, an optional leading '+')")]
    NotDigits,
    #[error("must have 8 to 15 digits, got {0}")]
    Length(usize),
}

impl PhoneNumber {
    pub const MIN_DIGITS: usize = 8;
    pub const MAX_DIGITS: usize = 15;

    /// Parses `85268411234` or `+85268411234`; spaces, dashes and brackets are refused rather than
    /// guessed at, so a caller's formatting bug surfaces at once.
    pub fn parse(input: &str) -> Result<Self, PhoneNumberError> {
        let digits = input.strip_prefix('+').unwrap_or(input);
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(PhoneNumberError::NotDigits);
        }
        if !(Self::MIN_DIGITS..=Self::MAX_DIGITS).contains(&digits.len()) {
            return Err(PhoneNumberError::Length(digits.len()));
        }
        Ok(Self(digits.to_owned()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Whether the number starts with the given country/area prefix (digits).
    pub fn has_prefix(&self, prefix: &str) -> bool {
        self.0.starts_with(prefix.trim_start_matches('+'))
    }
}

impl TryFrom<String> for PhoneNumber {
    type Error = PhoneNumberError;
    fn try_from(value: String) -> Result<Self, Self::Error> {
        Self::parse(&value)
    }
}

impl From<PhoneNumber> for String {
    fn from(value: PhoneNumber) -> Self {
        value.0
    }
}

impl fmt::Display for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Phone numbers are personal data: `Debug` shows only the country-code end.
impl fmt::Debug for PhoneNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let visible = self.0.get(..4).unwrap_or("");
        write!(f, "PhoneNumber({visible}…)")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accepts_digits_and_drops_plus() {
        assert_eq!(PhoneNumber::parse("85268411234").map(|p| p.0), Ok("85268411234".into()));
        assert_eq!(PhoneNumber::parse("+85268411234").map(|p| p.0), Ok("85268411234".into()));
    }

    #[test]
    fn refuses_bad_numbers() {
        let cases = [
            ("", PhoneNumberError::NotDigits),
            ("+", PhoneNumberError::NotDigits),
            ("852 6841 1234", PhoneNumberError::NotDigits),
            ("852-68411234", PhoneNumberError::NotDigits),
            ("++85268411234", PhoneNumberError::NotDigits),
            ("1234567", PhoneNumberError::Length(7)),
            ("1234567890123456", PhoneNumberError::Length(16)),
        ];
        for (input, want) in cases {
            assert_eq!(PhoneNumber::parse(input), Err(want), "{input:?}");
        }
        assert!(PhoneNumber::parse("12345678").is_ok());
        assert!(PhoneNumber::parse("123456789012345").is_ok());
    }

    #[test]
    fn debug_hides_the_number() {
        let p = PhoneNumber::parse("85268411234").map(|p| format!("{p:?}"));
        assert_eq!(p.as_deref(), Ok("PhoneNumber(8526…)"));
    }
}
