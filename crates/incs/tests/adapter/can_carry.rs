//! What an INCS account carries (DESIGN.md §4), and that `send` refuses the rest without a request.

use gateway_core::{Channel, ErrorClass, MessageId, Provider, ProviderKind, RejectScope};
use serde_json::{json, Value};
use wiremock::matchers::method;
use wiremock::{Mock, MockServer};

use crate::support::{account_with, config, message, success};

fn req(kind: &str, object: Value) -> Value {
    json!({"to": "85268411234", "type": kind, kind: object})
}

fn interactive(object: Value) -> Value {
    req("interactive", object)
}

fn image() -> Value {
    json!({"link": "https://a.io/p.png"})
}

/// (channel, request, `None` = carried, `Some(part of the reason)` = refused).
fn cases() -> Vec<(Channel, Value, Option<&'static str>)> {
    use Channel::*;
    let body = json!({"text": "Pick one"});
    let cards: Vec<Value> = (0..2)
        .map(|i| {
            json!({"card_index": i, "type": "cta_url", "header": {"type": "image", "image": image()},
                "action": {"name": "cta_url", "parameters": {"display_text": "Buy", "url": "https://a.io"}}})
        })
        .collect();
    vec![
        (Whatsapp, req("text", json!("Hello")), None),
        (Whatsapp, req("image", image()), None),
        (Whatsapp, req("video", json!({"link": "https://a.io/v.mp4"})), None),
        (Whatsapp, req("audio", json!({"link": "https://a.io/a.mp3"})), None),
        (Whatsapp, req("document", json!({"link": "https://a.io/d.pdf"})), None),
        (Whatsapp, req("template", json!({"name": "hello_world"})), None),
        (Whatsapp, req("template", json!({"name": "auth", "code": "123456"})), None),
        (
            Whatsapp,
            interactive(json!({"type": "cta_url", "body": body, "action": {"name": "cta_url",
                "parameters": {"display_text": "Go", "url": "https://a.io"}}})),
            None,
        ),
        (
            Whatsapp,
            interactive(json!({"type": "list", "body": body, "action": {"button": "Options",
                "sections": [{"title": "S", "rows": [{"id": "r1", "title": "Row"}]}]}})),
            None,
        ),
        (
            Whatsapp,
            interactive(json!({"type": "button", "body": body, "action": {"buttons": [
                {"type": "reply", "reply": {"id": "y", "title": "Yes"}}]}})),
            None,
        ),
        (Whatsapp, interactive(json!({"type": "carousel", "body": body, "action": {"cards": cards}})), None),
        (Whatsapp, req("sticker", json!({"link": "https://a.io/s.webp"})), Some("WhatsApp `sticker`")),
        (Whatsapp, req("location", json!({"latitude": 22.3, "longitude": 114.2})), Some("WhatsApp `location`")),
        (Whatsapp, req("contacts", json!([{"name": {"formatted_name": "Ann"}}])), Some("WhatsApp `contacts`")),
        (
            Whatsapp,
            interactive(json!({"type": "product", "body": body,
                "action": {"catalog_id": "c1", "product_retailer_id": "p1"}})),
            Some("interactive `product`"),
        ),
        (
            Whatsapp,
            interactive(json!({"type": "product_list", "header": {"type": "text", "text": "Shop"}, "body": body,
                "action": {"catalog_id": "c1", "sections": [{"title": "S", "product_items": [{"product_retailer_id": "p1"}]}]}})),
            Some("interactive `product_list`"),
        ),
        (Viber, req("otp", json!({"code": "123456", "language": "en", "code_expiration_minutes": 3})), None),
        (Viber, req("text", json!("Hello")), None),
        (Viber, req("image", image()), None),
        (Viber, req("video", json!({"link": "https://a.io/v.mp4"})), None),
        (Viber, req("document", json!({"link": "https://a.io/d.pdf"})), None),
        (Rcs, req("template", json!({"name": "promo", "parameters": {"username": "jack"}})), None),
        (Rcs, req("text", json!("Hello")), None),
        (Rcs, req("image", image()), None),
        (Rcs, req("video", json!({"link": "https://a.io/v.mp4"})), None),
        (Rcs, req("document", json!({"link": "https://a.io/d.pdf"})), None),
    ]
}

#[test]
fn incs_carries_what_it_documents() {
    let account = account_with(config("https://chat-api.incsapp.com"));
    let mut failures = Vec::new();
    for (channel, request, refused) in cases() {
        let label = format!("{channel} {}", request["type"]);
        let msg = match message(channel, &request) {
            Ok(m) => m,
            Err(e) => {
                failures.push(format!("{label}: {e}"));
                continue;
            }
        };
        match (account.can_carry(&msg), refused) {
            (Ok(()), None) => {}
            (Err(u), Some(why)) if u.provider == ProviderKind::Incs && u.reason.contains(why) => {}
            (got, want) => failures.push(format!(
                "{label} {}: got {got:?}, want {want:?}",
                request[request["type"].as_str().unwrap_or("")]
            )),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn an_account_carries_only_its_channels() {
    let mut c = config("https://chat-api.incsapp.com");
    c.channels = vec![Channel::Whatsapp];
    let account = account_with(c);
    let wa = message(Channel::Whatsapp, &req("text", json!("Hello"))).expect("valid");
    let viber = message(Channel::Viber, &req("text", json!("Hello"))).expect("valid");
    assert_eq!(account.can_carry(&wa), Ok(()));
    let err = account.can_carry(&viber).expect_err("viber not served");
    assert!(err.reason.contains("viber"), "{err}");
    assert_eq!(account.kind(), ProviderKind::Incs);
}

#[tokio::test]
async fn send_refuses_what_it_cannot_carry_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(success("wamid.x")).expect(0).mount(&server).await;
    let mut c = config(&server.uri());
    c.channels = vec![Channel::Whatsapp];
    let account = account_with(c);
    let location =
        message(Channel::Whatsapp, &req("location", json!({"latitude": 1.0, "longitude": 2.0}))).expect("valid");
    let viber = message(Channel::Viber, &req("text", json!("Hello"))).expect("valid");
    for msg in [location, viber] {
        let err = account.send(&MessageId::new(), &msg).await.expect_err("refused");
        assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Account), "{err:?}");
        assert_eq!(err.http_status, None);
    }
}
