//! Shared fixtures: accounts pointed at a mock server, messages built the way the API builds them.

use chrono::Utc;
use gateway_core::request::SendRequest;
use gateway_core::{Channel, MessageId, OutboundMessage};
use gateway_innopaas::{InnopaasAccount, InnopaasConfig};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

/// The credentials every test account uses; no output may ever contain them.
pub const APP_KEY: &str = "ak-7c1e0f5a9b3d4e21";
pub const TOKEN: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJnYXRld2F5LXRlc3QifQ.c2lnbmF0dXJlLXRlc3Q";
pub const WABA_ID: &str = "104417182520443";
pub const SEND_NUMBER: &str = "85230012345";
/// Where the test accounts send MMLite, under the mock server.
pub const MMLITE_PATH: &str = "/mmlite/v1/msg/submit";
/// The gateway message id of the golden sends, and its `uid`.
pub const MESSAGE_ID: &str = "01936f3e-8c4a-7b21-9d3e-5a1f2b3c4d5e";
pub const UID: &str = "01936f3e8c4a7b219d3e5a1f2b3c4d5e";

pub fn config(base: &str) -> InnopaasConfig {
    let mut c = InnopaasConfig::new(SecretString::from(APP_KEY), SecretString::from(TOKEN), WABA_ID, SEND_NUMBER);
    c.base_url = base.to_owned();
    c
}

/// MMLite on, at [`MMLITE_PATH`] of the same server.
pub fn mmlite_config(base: &str) -> InnopaasConfig {
    let mut c = config(base);
    c.mmlite_url = Some(format!("{base}{MMLITE_PATH}"));
    c.marketing_via_mmlite = true;
    c
}

pub fn account_with(config: InnopaasConfig) -> InnopaasAccount {
    InnopaasAccount::new(config, reqwest::Client::new()).expect("valid test config")
}

pub fn account(server: &MockServer) -> InnopaasAccount {
    account_with(config(&server.uri()))
}

pub fn message_id() -> MessageId {
    MESSAGE_ID.parse().expect("uuid")
}

/// A unified API request (DESIGN.md §2.1), parsed and validated by core.
pub fn message(request: &Value) -> Result<OutboundMessage, String> {
    let parsed: SendRequest = serde_path_to_error::deserialize(request.clone())
        .map_err(|e| format!("not a valid SendRequest at `{}`: {}", e.path(), e.inner()))?;
    parsed.into_message(Utc::now()).map_err(|e| format!("refused by core validation: {e:?}"))
}

/// `{"channel": "whatsapp", "to": ..., "type": kind, kind: object}`.
pub fn whatsapp(kind: &str, object: Value) -> Value {
    json!({"channel": Channel::Whatsapp.as_str(), "to": "85268411234", "type": kind, kind: object})
}

pub fn text() -> OutboundMessage {
    message(&whatsapp("text", json!("Hello"))).expect("valid")
}

/// InnoPaaS's success answer: a string-coded envelope with the message id as `data`.
pub fn success(message_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "code": "0", "success": true, "message": "Success", "data": message_id
    }))
}
