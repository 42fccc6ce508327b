//! Shared fixtures: accounts pointed at a mock server, messages built the way the API builds them.

use chrono::Utc;
use gateway_core::request::SendRequest;
use gateway_core::{Channel, OutboundMessage};
use gateway_incs::{IncsAccount, IncsConfig};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::{MockServer, ResponseTemplate};

/// The chat-api certification code every test account uses; no output may ever contain it.
pub const CODE: &str = "af92196e-0d07-3c1d-a631-a71c5e0b7a11";

pub fn config(base: &str) -> IncsConfig {
    let mut c = IncsConfig::new(SecretString::from(CODE));
    c.chat_base_url = base.to_owned();
    c.rcs_base_url = base.to_owned();
    c.api_base_url = base.to_owned();
    c
}

pub fn account_with(config: IncsConfig) -> IncsAccount {
    IncsAccount::new(config, reqwest::Client::new()).expect("valid test config")
}

pub fn account(server: &MockServer) -> IncsAccount {
    account_with(config(&server.uri()))
}

/// A unified API request: an INCS example plus `"channel"`, parsed and validated by core.
pub fn message(channel: Channel, example: &Value) -> Result<OutboundMessage, String> {
    let mut request = example.clone();
    request
        .as_object_mut()
        .ok_or("the example is not a JSON object")?
        .insert("channel".into(), json!(channel.as_str()));
    let parsed: SendRequest = serde_path_to_error::deserialize(request)
        .map_err(|e| format!("not a valid SendRequest at `{}`: {}", e.path(), e.inner()))?;
    parsed.into_message(Utc::now()).map_err(|e| format!("refused by core validation: {e:?}"))
}

pub fn whatsapp_text() -> OutboundMessage {
    message(Channel::Whatsapp, &json!({"to": "85268411234", "type": "text", "text": "Hello"})).expect("valid")
}

/// The documents' WhatsApp success answer.
pub fn success(msg_id: &str) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": "success", "code": 200, "message": "", "data": {"msg_id": msg_id}, "error": {}
    }))
}
