//! Configuration: validation at construction, and no secret in any `Debug`.

use gateway_incs::{IncsAccount, IncsConfig};
use secrecy::SecretString;

use crate::support::{account_with, config, CODE};

#[test]
fn debug_never_shows_a_certification_code() {
    let mut c = config("https://chat-api.incsapp.com");
    c.api_certification_code = Some(SecretString::from("f484bd42-8c1e-3b0f-9a55-0123456789ab"));
    let config_debug = format!("{c:?}");
    let account_debug = format!("{:?}", account_with(c.clone()));
    let pretty = format!("{:#?}", account_with(c));
    for text in [&config_debug, &account_debug, &pretty] {
        assert!(!text.contains(CODE), "{text}");
        assert!(!text.contains("f484bd42"), "{text}");
        assert!(text.contains("chat-api.incsapp.com"), "{text}");
    }
}

#[test]
fn construction_refuses_a_bad_config_naming_the_key() {
    let mut c = IncsConfig::new(SecretString::from(CODE));
    c.rcs_base_url = "api.incsapp.com/external".into();
    let err = IncsAccount::new(c, reqwest::Client::new()).expect_err("relative URL");
    assert_eq!(err.key, "rcs_base_url");
    assert!(err.to_string().contains("rcs_base_url"), "{err}");

    let c = IncsConfig::new(SecretString::from("   "));
    let err = IncsAccount::new(c, reqwest::Client::new()).expect_err("blank code");
    assert_eq!(err.key, "certification_code");
    assert!(!err.to_string().contains("   "), "{err}");
}

#[test]
fn the_gateway_config_can_hold_it() {
    let c: IncsConfig = serde_json::from_value(serde_json::json!({
        "chat_base_url": "http://127.0.0.1:8090",
        "certification_code": CODE,
        "timeout_ms": 2500,
        "channels": ["whatsapp", "rcs"]
    }))
    .expect("deserializes");
    assert_eq!(c.timeout_ms, 2500);
    assert_eq!(c.channels, vec![gateway_core::Channel::Whatsapp, gateway_core::Channel::Rcs]);
    account_with(c);
}
