//! Configuration: validation at construction, and no credential in any `Debug`.

use gateway_innopaas::{InnopaasAccount, InnopaasConfig};
use secrecy::SecretString;

use crate::support::{account_with, config, mmlite_config, APP_KEY, TOKEN};

#[test]
fn debug_never_shows_app_key_or_token() {
    let c = mmlite_config("https://api.innopaas.com");
    let config_debug = format!("{c:?}");
    let account_debug = format!("{:?}", account_with(c.clone()));
    let pretty = format!("{:#?}", account_with(c));
    for text in [&config_debug, &account_debug, &pretty] {
        assert!(!text.contains(APP_KEY), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
        // Not even a recognisable part of the JWT.
        assert!(!text.contains("eyJ"), "{text}");
        assert!(text.contains("api.innopaas.com") && text.contains("[redacted]"), "{text}");
    }
}

#[test]
fn marketing_via_mmlite_needs_an_mmlite_url() {
    let mut c = config("https://api.innopaas.com");
    c.marketing_via_mmlite = true;
    let err = InnopaasAccount::new(c.clone(), reqwest::Client::new()).expect_err("no MMLite URL");
    assert_eq!(err.key, "mmlite_url");
    let text = err.to_string();
    assert!(text.contains("mmlite_url") && text.contains("marketing_via_mmlite"), "{text}");

    c.mmlite_url = Some("https://mmlite.example.com/api/whatsapp/mmlite/submit".into());
    assert_eq!(c.validate(), Ok(()));
    // A URL alone does nothing until the flag is on; that is allowed.
    c.marketing_via_mmlite = false;
    assert_eq!(c.validate(), Ok(()));
}

#[test]
fn construction_refuses_a_bad_config_naming_the_key() {
    let mut c = config("api.innopaas.com/api");
    let err = InnopaasAccount::new(c.clone(), reqwest::Client::new()).expect_err("relative URL");
    assert_eq!(err.key, "base_url");
    assert!(err.to_string().contains("base_url"), "{err}");

    c.base_url = "https://api.innopaas.com".into();
    c.token = SecretString::from(format!("Bearer {TOKEN}"));
    let err = InnopaasAccount::new(c.clone(), reqwest::Client::new()).expect_err("space in token");
    assert_eq!(err.key, "token");
    assert!(!err.to_string().contains(TOKEN), "{err}");

    c.token = SecretString::from(TOKEN);
    c.send_number = "+852 3001 2345".into();
    let err = InnopaasAccount::new(c, reqwest::Client::new()).expect_err("send number");
    assert_eq!(err.key, "send_number");
}

#[test]
fn the_gateway_config_can_hold_it() {
    let c: InnopaasConfig = serde_json::from_value(serde_json::json!({
        "base_url": "http://127.0.0.1:8090",
        "app_key": APP_KEY,
        "token": TOKEN,
        "waba_id": "104417182520443",
        "send_number": "85230012345",
        "default_language": "en",
        "mmlite_url": "http://127.0.0.1:8090/mmlite",
        "marketing_via_mmlite": true,
        "timeout_ms": 2500
    }))
    .expect("deserializes");
    assert_eq!((c.timeout_ms, c.default_language.as_deref()), (2500, Some("en")));
    account_with(c);
}
