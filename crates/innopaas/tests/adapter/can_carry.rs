//! What an InnoPaaS account carries (DESIGN.md §4), and that `send` refuses the rest without a
//! request, with the scope that lets routing fail over or not.

use gateway_core::{ErrorClass, MessageId, Provider, ProviderKind, RejectScope};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::support::{account, account_with, config, message, success, whatsapp};

fn interactive(object: Value) -> Value {
    whatsapp("interactive", object)
}

fn other_channel(channel: &str, kind: &str, object: Value) -> Value {
    json!({"channel": channel, "to": "85268411234", "type": kind, kind: object})
}

/// (request, `None` = carried, `Some(part of the reason)` = refused), for an account without a
/// default language.
fn cases() -> Vec<(&'static str, Value, Option<&'static str>)> {
    let body = json!({"text": "Pick one"});
    let image = json!({"link": "https://a.io/p.png"});
    let cards: Vec<Value> = (0..2)
        .map(|i| {
            json!({"card_index": i, "type": "cta_url", "header": {"type": "image", "image": image},
                "action": {"name": "cta_url", "parameters": {"display_text": "Buy", "url": "https://a.io"}}})
        })
        .collect();
    vec![
        ("text", whatsapp("text", json!("Hello")), None),
        ("text of 3000 characters", whatsapp("text", json!("x".repeat(3000))), None),
        (
            "text of 3001 characters",
            whatsapp("text", json!("x".repeat(3001))),
            Some("at most 3000 characters (code 106), this one has 3001"),
        ),
        ("image", whatsapp("image", image.clone()), None),
        ("video", whatsapp("video", json!({"link": "https://a.io/v.mp4"})), None),
        ("audio", whatsapp("audio", json!({"link": "https://a.io/a.mp3"})), None),
        ("document", whatsapp("document", json!({"link": "https://a.io/d.pdf"})), None),
        ("sticker", whatsapp("sticker", json!({"link": "https://a.io/s.webp"})), None),
        ("location", whatsapp("location", json!({"latitude": 22.3, "longitude": 114.2})), None),
        ("contacts", whatsapp("contacts", json!([{"name": {"formatted_name": "Ann"}}])), None),
        ("template with language", whatsapp("template", json!({"name": "hello_world", "language": "en"})), None),
        (
            "authentication template with language",
            whatsapp("template", json!({"name": "auth", "code": "123456", "language": "en"})),
            None,
        ),
        (
            "list",
            interactive(json!({"type": "list", "body": body, "action": {"button": "Options",
                "sections": [{"title": "S", "rows": [{"id": "r1", "title": "Row"}]}]}})),
            None,
        ),
        (
            "button",
            interactive(json!({"type": "button", "body": body, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}})),
            None,
        ),
        (
            "product",
            interactive(json!({"type": "product", "action": {"catalog_id": "c1", "product_retailer_id": "p1"}})),
            None,
        ),
        (
            "product_list",
            interactive(json!({"type": "product_list", "header": {"type": "text", "text": "Shop"}, "body": body,
                "action": {"catalog_id": "c1", "sections": [{"title": "S", "product_items": [{"product_retailer_id": "p1"}]}]}})),
            None,
        ),
        (
            "cta_url",
            interactive(json!({"type": "cta_url", "body": body, "action": {"name": "cta_url",
                "parameters": {"display_text": "Go", "url": "https://a.io"}}})),
            Some("does not carry WhatsApp interactive `cta_url`"),
        ),
        (
            "carousel",
            interactive(json!({"type": "carousel", "body": body, "action": {"cards": cards}})),
            Some("does not carry WhatsApp interactive `carousel`"),
        ),
        (
            "template without language",
            whatsapp("template", json!({"name": "hello_world"})),
            Some("needs the language of template `hello_world`"),
        ),
        (
            "authentication template without language",
            whatsapp("template", json!({"name": "auth", "code": "123456"})),
            Some("needs the language of template `auth`"),
        ),
        ("viber text", other_channel("viber", "text", json!("Hello")), Some("WhatsApp only, not viber")),
        (
            "viber otp",
            other_channel("viber", "otp", json!({"code": "123456", "language": "en", "code_expiration_minutes": 3})),
            Some("WhatsApp only, not viber"),
        ),
        ("rcs text", other_channel("rcs", "text", json!("Hello")), Some("WhatsApp only, not rcs")),
        (
            "rcs template",
            other_channel("rcs", "template", json!({"name": "promo", "parameters": {"username": "jack"}})),
            Some("WhatsApp only, not rcs"),
        ),
    ]
}

#[test]
fn innopaas_carries_what_it_documents() {
    let account = account_with(config("https://api.innopaas.com"));
    assert_eq!(account.kind(), ProviderKind::Innopaas);
    let mut failures = Vec::new();
    for (label, request, refused) in cases() {
        let msg = match message(&request) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        match (account.can_carry(&msg), refused) {
            (Ok(()), None) => {}
            (Err(u), Some(why)) if u.provider == ProviderKind::Innopaas && u.reason.contains(why) => {}
            (got, want) => failures.push(format!("{label}: got {got:?}, want {want:?}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn a_default_language_makes_language_less_templates_carriable() {
    let mut c = config("https://api.innopaas.com");
    c.default_language = Some("en".into());
    let account = account_with(c);
    for request in [
        whatsapp("template", json!({"name": "hello_world"})),
        whatsapp("template", json!({"name": "auth", "code": "123456"})),
    ] {
        let msg = message(&request).expect("valid");
        assert_eq!(account.can_carry(&msg), Ok(()), "{request}");
    }
}

#[tokio::test]
async fn send_refuses_what_it_cannot_carry_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("1")).expect(0).mount(&server).await;
    let account = account(&server);
    let body = json!({"text": "Pick one"});
    let cases = [
        (
            interactive(json!({"type": "cta_url", "body": body, "action": {"name": "cta_url",
                "parameters": {"display_text": "Go", "url": "https://a.io"}}})),
            // Another provider (INCS) carries it: routing may fail over.
            ErrorClass::Rejected(RejectScope::Account),
        ),
        (other_channel("viber", "text", json!("Hello")), ErrorClass::Rejected(RejectScope::Account)),
        // WhatsApp allows 4096 characters; INCS may carry what InnoPaaS refuses.
        (whatsapp("text", json!("x".repeat(3001))), ErrorClass::Rejected(RejectScope::Account)),
        // The caller must name a language: no InnoPaaS account can guess it.
        (whatsapp("template", json!({"name": "hello_world"})), ErrorClass::Rejected(RejectScope::Content)),
    ];
    for (request, class) in cases {
        let msg = message(&request).expect("valid");
        let err = account.send(&MessageId::new(), &msg).await.expect_err("refused");
        assert_eq!(err.class, class, "{request}: {err:?}");
        assert_eq!(err.http_status, None);
        assert!(!err.outcome_unknown);
    }
}
