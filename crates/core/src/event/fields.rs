//! What the callback parsers share: field types that are strict about what an event cannot do
//! without and lenient about form (a number where a string was documented), and errors that name
//! the field at fault without ever echoing a whole body.

use std::fmt;

use serde::de::{self, Deserializer, Unexpected, Visitor};
use serde::Deserialize;
use serde_json::Value;

use super::CallbackError;
use crate::transport::truncate;

/// Longest error text kept (it goes into a 4xx body).
pub const MAX_ERROR: usize = 300;

/// A string that is not empty or blank.
#[derive(Debug)]
pub struct NonEmpty(pub String);

impl<'de> Deserialize<'de> for NonEmpty {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::invalid_value(Unexpected::Str(&s), &"a non-empty string"));
        }
        Ok(Self(s))
    }
}

/// A string or an integer, kept as text (ids, codes, phone numbers).
#[derive(Debug)]
pub struct Text(pub String);

impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = Text;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or an integer")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
                Ok(Text(v.to_owned()))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> Result<Self::Value, E> {
                Ok(Text(v.to_string()))
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> Result<Self::Value, E> {
                Ok(Text(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

/// A [`Text`] that is not empty or blank.
#[derive(Debug)]
pub struct NonEmptyText(pub String);

impl<'de> Deserialize<'de> for NonEmptyText {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let Text(s) = Text::deserialize(d)?;
        if s.trim().is_empty() {
            return Err(de::Error::invalid_value(Unexpected::Str(&s), &"a non-empty string"));
        }
        Ok(Self(s))
    }
}

/// Deserializes `value`, naming the field at fault (`path` is where `value` sits in the body).
///
/// # Errors
/// [`CallbackError::Malformed`] naming the field.
pub fn decode<'a, T: Deserialize<'a>>(value: &'a Value, path: &str) -> Result<T, CallbackError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let inner = e.path().to_string();
        let at = match (path, inner.as_str()) {
            ("", ".") => String::new(),
            ("", inner) => format!("{inner}: "),
            (path, ".") => format!("{path}: "),
            (path, inner) => format!("{path}.{inner}: "),
        };
        malformed(format!("{at}{}", e.inner()))
    })
}

pub fn malformed(reason: impl AsRef<str>) -> CallbackError {
    CallbackError::Malformed(truncate(reason.as_ref(), MAX_ERROR))
}

pub fn non_empty(s: Option<String>) -> Option<String> {
    s.filter(|s| !s.trim().is_empty())
}
