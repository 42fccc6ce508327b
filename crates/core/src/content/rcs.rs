//! RCS content (INCS `/external/messages/rcs`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use super::Media;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum RcsContent {
    Template(RcsTemplate),
    /// At most 3072 characters.
    Text(String),
    Image(Media),
    Video(Media),
    /// PDF only.
    Document(Media),
}

/// An RCS template send: the template's name and a value for each of its `[var]` placeholders.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RcsTemplate {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parameters: Option<BTreeMap<String, String>>,
}
