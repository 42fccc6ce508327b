//! Viber content (INCS `/external/messages/viber`).

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::Media;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
pub enum ViberContent {
    Otp(Otp),
    /// At most 1000 characters.
    Text(String),
    Image(Media),
    Video(Media),
    Document(Media),
}

/// A one-time password sent through Viber's OTP template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Otp {
    #[schema(example = "123456")]
    pub code: String,
    #[schema(example = "en")]
    pub language: String,
    #[schema(example = 3)]
    pub code_expiration_minutes: u32,
}
