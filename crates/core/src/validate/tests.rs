//! Every limit of PROVIDERS.md §3.2 and §3.3 and every rule of this module, driven the way a caller
//! drives them: `SendRequest` JSON through serde and [`SendRequest::into_message`].
//!
//! Each limit is checked at its edge: the value at the limit is accepted, one over is refused
//! with the exact JSON path of the field and a reason that says why. At-limit strings are made of
//! `é` (two bytes in UTF-8) so a limit counted in bytes instead of characters fails the test.
//! Each test is a table; a failing table reports every case that went wrong, not just the first.

use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Map, Value};

use crate::content::rcs::RcsContent;
use crate::content::viber::ViberContent;
use crate::content::whatsapp::{CardAction, Interactive, WhatsAppContent};
use crate::message::{Content, OutboundMessage};
use crate::request::SendRequest;
use crate::validate::FieldError;

// ---------------------------------------------------------------------------------------------
// The harness

/// The clock every case runs at.
fn now() -> DateTime<Utc> {
    DateTime::from_timestamp(1_790_000_000, 0).unwrap_or_default()
}

#[derive(Debug)]
enum Outcome {
    Accepted(Box<OutboundMessage>),
    Refused(Vec<FieldError>),
    /// serde refused the JSON: `path: message`.
    Unparsable(String),
}

fn send(req: &Value) -> Outcome {
    match serde_path_to_error::deserialize::<_, SendRequest>(req.clone()) {
        Err(e) => Outcome::Unparsable(format!("{}: {}", e.path(), e.inner())),
        Ok(r) => match r.into_message(now()) {
            Ok(m) => Outcome::Accepted(Box::new(m)),
            Err(e) => Outcome::Refused(e.into_vec()),
        },
    }
}

enum Want {
    Accepted,
    /// Refused, every error on `field`, one of them with a reason containing the fragment.
    Refused(String, String),
    /// Refused with exactly these errors: each `(field, reason fragment)` matches one error and
    /// every error matches one of them.
    RefusedAll(Vec<(String, String)>),
    /// Refused by serde (unknown field, wrong shape); the error contains the fragment.
    Unparsable(String),
}

struct Case {
    name: String,
    req: Value,
    want: Want,
}

#[derive(Default)]
struct Table(Vec<Case>);

impl Table {
    fn ok(&mut self, name: impl Into<String>, req: Value) -> &mut Self {
        self.0.push(Case { name: name.into(), req, want: Want::Accepted });
        self
    }

    fn err(&mut self, name: impl Into<String>, req: Value, field: &str, reason: &str) -> &mut Self {
        self.0.push(Case { name: name.into(), req, want: Want::Refused(field.into(), reason.into()) });
        self
    }

    fn errs(&mut self, name: impl Into<String>, req: Value, want: &[(&str, &str)]) -> &mut Self {
        let want = want.iter().map(|(f, r)| ((*f).to_owned(), (*r).to_owned())).collect();
        self.0.push(Case { name: name.into(), req, want: Want::RefusedAll(want) });
        self
    }

    fn serde(&mut self, name: impl Into<String>, req: Value, fragment: &str) -> &mut Self {
        self.0.push(Case { name: name.into(), req, want: Want::Unparsable(fragment.into()) });
        self
    }

    /// A text limit: `max` characters at `pointer` accepted, `max + 1` refused on `field`.
    fn chars(&mut self, name: &str, base: &Value, pointer: &str, max: usize, field: &str) -> &mut Self {
        self.limit(name, base, pointer, max, |n| json!(txt(n)), field, &format!("at most {max} characters"))
    }

    /// Any limit: `make(max)` at `pointer` accepted, `make(max + 1)` refused on `field`.
    #[allow(clippy::too_many_arguments)]
    fn limit(
        &mut self,
        name: &str,
        base: &Value,
        pointer: &str,
        max: usize,
        make: impl Fn(usize) -> Value,
        field: &str,
        reason: &str,
    ) -> &mut Self {
        self.ok(format!("{name}: {max} accepted"), with(base, &[(pointer, make(max))]));
        self.err(format!("{name}: {} refused", max + 1), with(base, &[(pointer, make(max + 1))]), field, reason)
    }

    fn run(&self) {
        let failures: Vec<String> = self.0.iter().filter_map(check).collect();
        assert!(
            failures.is_empty(),
            "{} of {} cases failed:\n\n{}",
            failures.len(),
            self.0.len(),
            failures.join("\n\n")
        );
    }
}

/// `None` when the case holds, otherwise what went wrong.
fn check(case: &Case) -> Option<String> {
    let got = send(&case.req);
    let fail = |why: String| Some(format!("[{}] {why}\n  got: {got:?}", case.name));
    match (&case.want, &got) {
        (Want::Accepted, Outcome::Accepted(_)) => None,
        (Want::Accepted, _) => fail("expected it to be accepted".into()),
        (Want::Refused(field, reason), Outcome::Refused(errors)) => {
            let all_on_field = errors.iter().all(|e| &e.field == field);
            let says_why = errors.iter().any(|e| e.reason.contains(reason.as_str()));
            if all_on_field && says_why {
                None
            } else {
                fail(format!("expected errors on `{field}` only, one saying `{reason}`"))
            }
        }
        (Want::RefusedAll(want), Outcome::Refused(errors)) => {
            let matches = |e: &FieldError, (f, r): &(String, String)| &e.field == f && e.reason.contains(r.as_str());
            let each_wanted_found = want.iter().all(|w| errors.iter().any(|e| matches(e, w)));
            let each_error_wanted = errors.iter().all(|e| want.iter().any(|w| matches(e, w)));
            if each_wanted_found && each_error_wanted {
                None
            } else {
                fail(format!("expected exactly {want:?}"))
            }
        }
        (Want::Unparsable(fragment), Outcome::Unparsable(msg)) => {
            if msg.contains(fragment.as_str()) {
                None
            } else {
                fail(format!("expected a serde error containing `{fragment}`"))
            }
        }
        (Want::Refused(field, reason), _) => fail(format!("expected a refusal on `{field}` ({reason})")),
        (Want::RefusedAll(want), _) => fail(format!("expected refusals {want:?}")),
        (Want::Unparsable(fragment), _) => fail(format!("expected a serde error containing `{fragment}`")),
    }
}

/// `n` characters of two bytes each.
fn txt(n: usize) -> String {
    "é".repeat(n)
}

/// `n` distinct ASCII strings (`prefix0`, `prefix1`, …).
fn nth(prefix: &str, i: usize) -> String {
    format!("{prefix}{i}")
}

/// `base` with the values at the given JSON pointers set (the parent must exist; a missing key
/// is added, an array index one past the end is pushed).
fn with(base: &Value, edits: &[(&str, Value)]) -> Value {
    let mut v = base.clone();
    for (pointer, new) in edits {
        let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        let slot = v.pointer_mut(parent);
        let done = match slot {
            Some(Value::Object(m)) => {
                m.insert(last.replace("~1", "/").replace("~0", "~"), new.clone());
                true
            }
            Some(Value::Array(a)) => match last.parse::<usize>() {
                Ok(i) if i < a.len() => {
                    a[i] = new.clone();
                    true
                }
                Ok(i) if i == a.len() => {
                    a.push(new.clone());
                    true
                }
                _ => false,
            },
            _ => false,
        };
        assert!(done, "test fixture: cannot set {pointer} in {base}");
    }
    v
}

/// `base` without the value at `pointer`.
fn without(base: &Value, pointer: &str) -> Value {
    let mut v = base.clone();
    let (parent, last) = pointer.rsplit_once('/').unwrap_or(("", pointer));
    let removed = match v.pointer_mut(parent) {
        Some(Value::Object(m)) => m.remove(last).is_some(),
        _ => false,
    };
    assert!(removed, "test fixture: no {pointer} in {base}");
    v
}

/// A request on `channel` whose `type` is `kind`, carrying `content` under that name.
fn req(channel: &str, kind: &str, content: Value) -> Value {
    let mut m = Map::new();
    m.insert("channel".into(), json!(channel));
    m.insert("to".into(), json!("85268411234"));
    m.insert("type".into(), json!(kind));
    m.insert(kind.into(), content);
    Value::Object(m)
}

fn wa(kind: &str, content: Value) -> Value {
    req("whatsapp", kind, content)
}

fn viber(kind: &str, content: Value) -> Value {
    req("viber", kind, content)
}

fn rcs(kind: &str, content: Value) -> Value {
    req("rcs", kind, content)
}

// ---------------------------------------------------------------------------------------------
// Fixtures: valid messages the cases edit

fn reply_buttons(n: usize) -> Value {
    (0..n).map(|i| json!({"type": "reply", "reply": {"id": nth("id-", i), "title": nth("Choice ", i)}})).collect()
}

fn button_msg() -> Value {
    wa(
        "interactive",
        json!({
            "type": "button",
            "header": {"type": "text", "text": "Workshop"},
            "body": {"text": "Pick one"},
            "footer": {"text": "Lucky Shrub"},
            "action": {"buttons": reply_buttons(3)}
        }),
    )
}

fn cta_msg() -> Value {
    wa(
        "interactive",
        json!({
            "type": "cta_url",
            "header": {"type": "text", "text": "New dates"},
            "body": {"text": "Tap below"},
            "footer": {"text": "Subject to change"},
            "action": {"name": "cta_url", "parameters": {"display_text": "See Dates", "url": "https://www.luckyshrub.com/dates"}}
        }),
    )
}

fn rows(section: usize, n: usize) -> Value {
    (0..n)
        .map(|i| json!({"id": format!("row-{section}-{i}"), "title": format!("Row {section}.{i}"), "description": "desc"}))
        .collect()
}

/// A list with one section per entry of `rows_per_section`, each titled.
fn list_msg(rows_per_section: &[usize]) -> Value {
    let sections: Value = rows_per_section
        .iter()
        .enumerate()
        .map(|(s, &n)| json!({"title": nth("Section ", s), "rows": rows(s, n)}))
        .collect();
    wa(
        "interactive",
        json!({
            "type": "list",
            "header": {"type": "text", "text": "Choose"},
            "body": {"text": "Which option?"},
            "footer": {"text": "Footer"},
            "action": {"button": "Options", "sections": sections}
        }),
    )
}

fn url_card(i: usize) -> Value {
    json!({
        "card_index": i,
        "type": "cta_url",
        "header": {"type": "image", "image": {"link": format!("https://example.com/card-{i}.jpeg")}},
        "body": {"text": "*Card*\n\nA card body."},
        "action": {"name": "cta_url", "parameters": {"display_text": "Buy now", "url": format!("https://shop.example.com/{i}")}}
    })
}

fn quick_replies(card: usize, n: usize) -> Value {
    (0..n)
        .map(|b| json!({"type": "quick_reply", "quick_reply": {"id": format!("card-{card}-{b}"), "title": nth("Reply ", b)}}))
        .collect()
}

fn reply_card(i: usize, buttons: usize) -> Value {
    json!({
        "card_index": i,
        "type": "quick_reply",
        "header": {"type": "video", "video": {"link": format!("https://example.com/card-{i}.mp4")}},
        "action": {"buttons": quick_replies(i, buttons)}
    })
}

fn carousel(cards: Vec<Value>) -> Value {
    wa("interactive", json!({"type": "carousel", "body": {"text": "Our latest arrivals"}, "action": {"cards": cards}}))
}

fn url_carousel(n: usize) -> Value {
    carousel((0..n).map(url_card).collect())
}

fn reply_carousel(n: usize, buttons: usize) -> Value {
    carousel((0..n).map(|i| reply_card(i, buttons)).collect())
}

fn template(components: Value) -> Value {
    wa("template", json!({"name": "order_update", "language": "en_US", "components": components}))
}

fn body_param(text: Value) -> Value {
    template(json!([{"type": "body", "parameters": [{"type": "text", "text": text}]}]))
}

fn header_param(param: Value) -> Value {
    template(json!([{"type": "header", "parameters": [param]}]))
}

fn button_component(sub_type: &str, index: Value, param: Value) -> Value {
    json!({"type": "button", "sub_type": sub_type, "index": index, "parameters": [param]})
}

// ---------------------------------------------------------------------------------------------
// The provider documents' own examples

/// Every request example in seeds/000 and seeds/001 (WhatsApp, Viber, RCS), with `channel`
/// added, is a valid request (DESIGN.md §2.1).
#[test]
fn every_provider_document_example_is_valid() {
    let whatsapp = [
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_button_reply_1"}}),
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_header_image_5", "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {
                "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"}}]}]}}),
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_header_text_2", "components": [
            {"type": "header", "parameters": [{"type": "text", "text": "2025-10-01"}]},
            {"type": "body", "parameters": [
                {"type": "text", "text": "the end of 2025"},
                {"type": "text", "text": "25OFF"},
                {"type": "text", "text": "25%"}]}]}}),
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_button_code_1", "components": [
            {"type": "button", "sub_type": "COPY_CODE", "index": "0",
             "parameters": [{"type": "coupon_code", "coupon_code": "843924"}]}]}}),
        json!({"to": "85268411234", "type": "text", "text": "Hello"}),
        json!({"to": "85268411234", "type": "image", "image": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"}}),
        json!({"to": "85268411234", "type": "video", "video": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/687710788353f.mp4"}}),
        json!({"to": "85268411234", "type": "audio", "audio": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/68771078812f353f.mp3"}}),
        json!({"to": "85268411234", "type": "document", "document": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/files/template.xls"}}),
        json!({"to": "85268411234", "type": "template", "template": {"name": "authentication_ca", "code": "123456"}}),
        json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "cta_url",
            "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/lucky-shrub-banner-logo-v1.png"}},
            "body": {"text": "Tap the button below to see available dates."},
            "action": {"name": "cta_url", "parameters": {"display_text": "See Dates",
                "url": "https://www.luckyshrub.com?clickID=kqDGWd24Q5TRwoEQTICY7W1JKoXvaZOXWAS7h1P76s0R7Paec4"}},
            "footer": {"text": "Dates subject to change."}}}),
        json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "list",
            "header": {"type": "text", "text": "Choose Shipping Option"},
            "body": {"text": "Which shipping option do you prefer?"},
            "footer": {"text": "Lucky Shrub: Your gateway to succulents™"},
            "action": {"button": "Shipping Options", "sections": [
                {"title": "I want it ASAP!", "rows": [
                    {"id": "priority_express", "title": "Priority Mail Express", "description": "Next Day to 2 Days"},
                    {"id": "priority_mail", "title": "Priority Mail", "description": "1–3 Days"}]},
                {"title": "I can wait a bit", "rows": [
                    {"id": "usps_ground_advantage", "title": "USPS Ground Advantage", "description": "2–5 Days"},
                    {"id": "media_mail", "title": "Media Mail", "description": "2–8 Days"}]}]}}}),
        json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "carousel",
            "body": {"text": "Of course! Here are three of our latest arrivals, each under $25:"},
            "action": {"cards": [
                {"card_index": 0, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/blue-echeveria.jpeg"}},
                 "body": {"text": "*Blue Echeveria*\n\nA rosette-shaped succulent with powdery blue leaves, perfect for brightening up any space."},
                 "action": {"name": "cta_url", "parameters": {"display_text": "Buy now", "url": "https://shop.luckyshrub.com/latest/blue-echeveria"}}},
                {"card_index": 1, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/zebra-haworthia.jpeg"}},
                 "body": {"text": "*Zebra Haworthia*\n\nStriking white stripes on deep green leaves give this compact succulent a bold, modern look."},
                 "action": {"name": "cta_url", "parameters": {"display_text": "Buy now", "url": "https://shop.luckyshrub.com/latest/zebra-haworthia"}}},
                {"card_index": 2, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/panda-plant.jpeg"}},
                 "body": {"text": "*Panda Plant*\n\nSoft, fuzzy leaves with chocolate-brown edges—adorable and easy to care for."},
                 "action": {"name": "cta_url", "parameters": {"display_text": "Buy now", "url": "https://shop.luckyshrub.com/latest/panda-plant"}}}]}}}),
        // Quick-reply cards with `"type": "cta_url"`, exactly as the documents send them.
        json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "carousel",
            "body": {"text": "Of course! Here are three of our latest arrivals, each under $25:"},
            "action": {"cards": [
                {"card_index": 0, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/blue-echeveria.jpeg"}},
                 "body": {"text": "*Blue Echeveria*\n\nA rosette-shaped succulent with powdery blue leaves, perfect for brightening up any space."},
                 "action": {"buttons": [
                     {"type": "quick_reply", "quick_reply": {"id": "learn-blue-echeveria", "title": "Learn more"}},
                     {"type": "quick_reply", "quick_reply": {"id": "fav-blue-echeveria", "title": "Add to favorites"}}]}},
                {"card_index": 1, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/zebra-haworthia.jpeg"}},
                 "body": {"text": "*Zebra Haworthia*\n\nStriking white stripes on deep green leaves give this compact succulent a bold, modern look."},
                 "action": {"buttons": [
                     {"type": "quick_reply", "quick_reply": {"id": "learn-zebra-haworthia", "title": "Learn more"}},
                     {"type": "quick_reply", "quick_reply": {"id": "fav-zebra-haworthia", "title": "Add to favorites"}}]}},
                {"card_index": 2, "type": "cta_url",
                 "header": {"type": "image", "image": {"link": "https://www.luckyshrub.com/assets/panda-plant.jpeg"}},
                 "body": {"text": "*Panda Plant*\n\nSoft, fuzzy leaves with chocolate-brown edges—adorable and easy to care for."},
                 "action": {"buttons": [
                     {"type": "quick_reply", "quick_reply": {"id": "learn-panda-plant", "title": "Learn more"}},
                     {"type": "quick_reply", "quick_reply": {"id": "fav-panda-plant", "title": "Add to favorites"}}]}}]}}}),
        json!({"to": "16505551234", "type": "interactive", "interactive": {
            "type": "button",
            "header": {"type": "image", "image": {"link": "https://static.incsapp.com/chat/images/123456.jpg"}},
            "body": {"text": "Hi Pablo! Your gardening workshop is scheduled for 9am tomorrow. Use the buttons if you need to reschedule. Thank you!"},
            "footer": {"text": "Lucky Shrub: Your gateway to succulents!™"},
            "action": {"buttons": [
                {"type": "reply", "reply": {"id": "change-button", "title": "Change"}},
                {"type": "reply", "reply": {"id": "cancel-button", "title": "Cancel"}}]}}}),
    ];
    let viber = [
        json!({"to": "85268411234", "type": "otp", "otp": {"code": "123456", "language": "en", "code_expiration_minutes": 3}}),
        json!({"to": "85268411234", "type": "text", "text": "Hello"}),
        json!({"to": "85268411234", "type": "image", "image": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/images/header-98403274893.png"}}),
        json!({"to": "85268411234", "type": "video", "video": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/videos/687710788353f.mp4"}}),
        json!({"to": "85268411234", "type": "document", "document": {
            "link": "https://incs-saas.oss-ap-southeast-1.aliyuncs.com/chat/files/template.xls"}}),
    ];
    let rcs = [
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_button_reply_1"}}),
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_button_reply_1",
            "parameters": {"username": "jack", "service_name": "promotion"}}}),
        json!({"to": "85268411234", "type": "text", "text": "Hello"}),
        json!({"to": "85268411234", "type": "image", "image": {"link": "https://static.incsapp.com/chat/images/header-98403274893.png"}}),
        json!({"to": "85268411234", "type": "video", "video": {"link": "https://static.incsapp.com/chat/videos/abc.mp4"}}),
        json!({"to": "85268411234", "type": "document", "document": {"link": "https://static.incsapp.com/chat/files/template.pdf"}}),
    ];
    let mut t = Table::default();
    for (channel, examples) in [("whatsapp", &whatsapp[..]), ("viber", &viber[..]), ("rcs", &rcs[..])] {
        for (i, example) in examples.iter().enumerate() {
            let name = format!("{channel} example {i} ({})", example["type"]);
            t.ok(name, with(example, &[("/channel", json!(channel))]));
        }
    }
    t.run();

    // The shapes come out as the documents mean them.
    let content = |v: &Value| match send(&with(v, &[("/channel", json!("whatsapp"))])) {
        Outcome::Accepted(m) => Some(m.content),
        _ => None,
    };
    assert!(
        matches!(content(&whatsapp[9]), Some(Content::Whatsapp(WhatsAppContent::AuthTemplate(a))) if a.code == "123456")
    );
    let quick_reply_cards = match content(&whatsapp[13]) {
        Some(Content::Whatsapp(WhatsAppContent::Interactive(Interactive::Carousel { action, .. }))) => action.cards,
        _ => Vec::new(),
    };
    assert_eq!(quick_reply_cards.len(), 3);
    assert!(quick_reply_cards.iter().all(|c| matches!(&c.action, CardAction::QuickReplies(q) if q.buttons.len() == 2)));
}

// ---------------------------------------------------------------------------------------------
// The envelope: recipient, sender, channel and type, metadata, schedule, shape

#[test]
fn recipient_numbers() {
    let base = wa("text", json!("Hello"));
    let to = |n: &str| with(&base, &[("/to", json!(n))]);
    let mut t = Table::default();
    t.ok("8 digits", to("12345678"))
        .ok("15 digits", to("123456789012345"))
        .ok("a leading + is dropped", to("+85268411234"))
        .err("7 digits", to("1234567"), "to", "8 to 15 digits, got 7")
        .err("16 digits", to("1234567890123456"), "to", "8 to 15 digits, got 16")
        .err("+ and 7 digits", to("+1234567"), "to", "8 to 15 digits, got 7")
        .err("empty", to(""), "to", "only digits")
        .err("a lone +", to("+"), "to", "only digits")
        .err("two +", to("++85268411234"), "to", "only digits")
        .err("spaces", to("852 6841 1234"), "to", "only digits")
        .err("dashes", to("852-68411234"), "to", "only digits")
        .err("brackets", to("(852)68411234"), "to", "only digits")
        .err("letters", to("85268411234a"), "to", "only digits")
        .err("non-ASCII digits", to("８５２６８４１１２３４"), "to", "only digits")
        .serde("a number, not a string", with(&base, &[("/to", json!(85268411234_u64))]), "to");
    t.run();

    assert!(matches!(send(&to("+85268411234")), Outcome::Accepted(m) if m.to.as_str() == "85268411234"));
}

#[test]
fn sender_and_provider() {
    let base = wa("text", json!("Hello"));
    let mut t = Table::default();
    t.ok("a sender", with(&base, &[("/sender", json!("hk-main"))]))
        .ok("a pinned provider", with(&base, &[("/provider", json!("innopaas"))]))
        .err("an empty sender", with(&base, &[("/sender", json!(""))]), "sender", "must not be empty")
        .err("a blank sender", with(&base, &[("/sender", json!("  "))]), "sender", "must not be empty")
        .serde("an unknown provider", with(&base, &[("/provider", json!("twilio"))]), "provider")
        .serde("an unknown channel", with(&base, &[("/channel", json!("sms"))]), "channel")
        .serde("an unknown type", with(&base, &[("/type", json!("reaction"))]), "type");
    t.run();
}

#[test]
fn each_channel_carries_only_its_types() {
    let image = json!({"link": "https://example.com/a.png"});
    let mut t = Table::default();
    t.err(
        "location on viber",
        viber("location", json!({"latitude": 1.0, "longitude": 2.0})),
        "type",
        "viber does not carry `location`",
    )
    .err("audio on viber", viber("audio", image.clone()), "type", "viber does not carry `audio`")
    .err("template on viber", viber("template", json!({"name": "x"})), "type", "viber does not carry `template`")
    .err(
        "interactive on rcs",
        with(&button_msg(), &[("/channel", json!("rcs"))]),
        "type",
        "rcs does not carry `interactive`",
    )
    .err("sticker on rcs", rcs("sticker", image.clone()), "type", "rcs does not carry `sticker`")
    .err(
        "otp on rcs",
        rcs("otp", json!({"code": "1", "language": "en", "code_expiration_minutes": 3})),
        "type",
        "rcs does not carry `otp`",
    )
    .err(
        "otp on whatsapp",
        wa("otp", json!({"code": "1", "language": "en", "code_expiration_minutes": 3})),
        "type",
        "whatsapp does not carry `otp`",
    );
    t.run();
}

#[test]
fn the_object_named_by_type_and_no_other() {
    let text = wa("text", json!("Hello"));
    let mut t = Table::default();
    t.err("missing text", without(&text, "/text"), "text", "required when `type` is `text`")
        .err(
            "missing image",
            without(&wa("image", json!({"link": "https://e.com/a.png"})), "/image"),
            "image",
            "required when `type` is `image`",
        )
        .err(
            "missing interactive",
            without(&button_msg(), "/interactive"),
            "interactive",
            "required when `type` is `interactive`",
        )
        .err(
            "missing template (rcs)",
            without(&rcs("template", json!({"name": "t"})), "/template"),
            "template",
            "required when `type` is `template`",
        )
        .err("missing otp (viber)", without(&viber("otp", json!({})), "/otp"), "otp", "required when `type` is `otp`")
        .err(
            "a second object",
            with(&text, &[("/image", json!({"link": "https://e.com/a.png"}))]),
            "image",
            "not allowed when `type` is `text`",
        )
        .err(
            "a second object (viber)",
            with(
                &viber("text", json!("hi")),
                &[("/otp", json!({"code": "1", "language": "en", "code_expiration_minutes": 3}))],
            ),
            "otp",
            "not allowed when `type` is `text`",
        )
        .errs(
            "the wrong object only",
            with(&without(&text, "/text"), &[("/image", json!({"link": "https://e.com/a.png"}))]),
            &[("image", "not allowed when `type` is `text`"), ("text", "required when `type` is `text`")],
        );
    t.run();
}

#[test]
fn metadata() {
    let base = wa("text", json!("Hello"));
    let pairs = |n: usize| -> Value { (0..n).map(|i| (nth("k", i), json!("v"))).collect::<Map<_, _>>().into() };
    let one = |k: String, v: String| with(&base, &[("/metadata", json!({ k: v }))]);
    let mut t = Table::default();
    t.limit("pairs", &base, "/metadata", 16, pairs, "metadata", "at most 16 pairs, got 17")
        .ok("key of 64 characters", one(txt(64), "v".into()))
        .err(
            "key of 65 characters",
            one(txt(65), "v".into()),
            &format!("metadata.{}", txt(65)),
            "keys must have 1 to 64 characters",
        )
        .err("an empty key", one(String::new(), "v".into()), "metadata", "keys must have 1 to 64 characters")
        .ok("value of 512 characters", one("k".into(), txt(512)))
        .err("value of 513 characters", one("k".into(), txt(513)), "metadata.k", "at most 512 characters")
        .ok("an empty value", one("k".into(), String::new()))
        .serde("a non-string value", with(&base, &[("/metadata", json!({"k": 1}))]), "metadata");
    t.run();
}

#[test]
fn send_at_at_most_30_days_ahead() {
    let base = wa("text", json!("Hello"));
    let at = |d: DateTime<Utc>| with(&base, &[("/send_at", json!(d.to_rfc3339()))]);
    let mut t = Table::default();
    t.ok("in the past (sends now)", at(now() - Duration::days(1)))
        .ok("exactly 30 days ahead", at(now() + Duration::days(30)))
        .err(
            "30 days and a second ahead",
            at(now() + Duration::days(30) + Duration::seconds(1)),
            "send_at",
            "at most 30 days ahead",
        )
        .serde("not a time", with(&base, &[("/send_at", json!("tomorrow"))]), "send_at");
    t.run();
}

#[test]
fn unknown_fields_are_refused_everywhere() {
    let mut t = Table::default();
    t.serde("top level", with(&wa("text", json!("hi")), &[("/colour", json!("red"))]), "unknown field `colour`")
        .serde("in a text object", wa("text", json!({"body": "hi", "previewUrl": true})), "text")
        .serde(
            "in a media object",
            wa("image", json!({"link": "https://e.com/a.png", "size": 123})),
            "unknown field `size`",
        )
        .serde("in a template", wa("template", json!({"name": "t", "namespace": "x"})), "unknown field `namespace`")
        .serde(
            "in a template component",
            template(json!([{"type": "body", "parameters": [], "extra": 1}])),
            "unknown field `extra`",
        )
        .serde(
            "in a template parameter",
            template(json!([{"type": "body", "parameters": [{"type": "text", "text": "x", "extra": 1}]}])),
            "extra",
        )
        .serde("in an interactive message", with(&button_msg(), &[("/interactive/bogus", json!(1))]), "bogus")
        .serde(
            "in a reply button",
            with(&button_msg(), &[("/interactive/action/buttons/0/reply/emoji", json!(1))]),
            "unknown field `emoji`",
        )
        .serde(
            "in a list row",
            with(&list_msg(&[1]), &[("/interactive/action/sections/0/rows/0/image", json!(1))]),
            "image",
        )
        .serde(
            "in a carousel card",
            with(&url_carousel(2), &[("/interactive/action/cards/1/footer", json!({"text": "f"}))]),
            "footer",
        )
        .serde("in a location", wa("location", json!({"latitude": 1.0, "longitude": 2.0, "zoom": 3})), "zoom")
        .serde("in a contact", wa("contacts", json!([{"name": {"formatted_name": "A", "nick": "a"}}])), "nick")
        .serde(
            "in a viber otp",
            viber("otp", json!({"code": "1", "language": "en", "code_expiration_minutes": 3, "ttl": 1})),
            "ttl",
        )
        .serde("in metadata's place", with(&wa("text", json!("hi")), &[("/metadata", json!(["a"]))]), "metadata");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Text

#[test]
fn text_as_a_string_or_an_object() {
    let mut t = Table::default();
    t.ok("a string", wa("text", json!("Hello")))
        .ok("{body}", wa("text", json!({"body": "Hello"})))
        .ok("{body, preview_url}", wa("text", json!({"body": "https://example.com", "preview_url": true})))
        .ok("viber {body}", viber("text", json!({"body": "Hello"})))
        .ok("rcs {body}", rcs("text", json!({"body": "Hello"})))
        .err(
            "viber {body, preview_url}",
            viber("text", json!({"body": "Hello", "preview_url": true})),
            "text.preview_url",
            "only WhatsApp",
        )
        .err(
            "rcs {body, preview_url}",
            rcs("text", json!({"body": "Hello", "preview_url": false})),
            "text.preview_url",
            "only WhatsApp",
        )
        .serde("{} without body", wa("text", json!({})), "text")
        .serde("a number", wa("text", json!(5)), "text");
    t.run();

    let body = |v: Value| match send(&v) {
        Outcome::Accepted(m) => match m.content {
            Content::Whatsapp(WhatsAppContent::Text(t)) => Some((t.body, t.preview_url)),
            Content::Viber(ViberContent::Text(s)) | Content::Rcs(RcsContent::Text(s)) => Some((s, None)),
            _ => None,
        },
        _ => None,
    };
    assert_eq!(body(wa("text", json!("Hello"))), Some(("Hello".into(), None)));
    assert_eq!(body(wa("text", json!({"body": "Hi", "preview_url": true}))), Some(("Hi".into(), Some(true))));
    assert_eq!(body(viber("text", json!({"body": "Hi"}))), Some(("Hi".into(), None)));
}

#[test]
fn text_limits_per_channel_in_characters() {
    let mut t = Table::default();
    t.chars("whatsapp text", &wa("text", json!("")), "/text", 4096, "text")
        .chars("whatsapp text as {body}", &wa("text", json!({"body": ""})), "/text/body", 4096, "text.body")
        .chars("viber text", &viber("text", json!("")), "/text", 1000, "text")
        .chars("viber text as {body}", &viber("text", json!({"body": ""})), "/text/body", 1000, "text.body")
        .chars("rcs text", &rcs("text", json!("")), "/text", 3072, "text")
        .chars("rcs text as {body}", &rcs("text", json!({"body": ""})), "/text/body", 3072, "text.body")
        .ok("4096 emoji", wa("text", json!("😀".repeat(4096))))
        .err("4097 emoji", wa("text", json!("😀".repeat(4097))), "text", "at most 4096 characters, got 4097")
        .ok("1000 CJK characters on viber", viber("text", json!("你".repeat(1000))))
        .err("empty", wa("text", json!("")), "text", "must not be empty")
        .err("blank", wa("text", json!(" \n\t")), "text", "must not be empty")
        .err("empty {body}", wa("text", json!({"body": ""})), "text.body", "must not be empty")
        .err("empty on viber", viber("text", json!("")), "text", "must not be empty")
        .err("empty on rcs", rcs("text", json!(" ")), "text", "must not be empty");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Media

#[test]
fn media_extensions_per_channel_and_type() {
    let accepted: &[(&str, &str, &[&str])] = &[
        ("whatsapp", "image", &["jpeg", "jpg", "png", "PNG", "JPEG"]),
        ("whatsapp", "video", &["mp4", "3gp", "MP4"]),
        ("whatsapp", "audio", &["aac", "amr", "mp3", "m4a", "ogg"]),
        ("whatsapp", "document", &["txt", "xls", "xlsx", "doc", "docx", "ppt", "pptx", "pdf"]),
        ("whatsapp", "sticker", &["webp"]),
        ("viber", "image", &["png", "jpeg", "jpg", "gif"]),
        ("viber", "video", &["mp4"]),
        ("viber", "document", &["doc", "docx", "xls", "xlsx", "csv", "pdf"]),
        ("rcs", "image", &["jpeg", "jpg", "png", "gif"]),
        ("rcs", "video", &["mp4", "3gp"]),
        ("rcs", "document", &["pdf"]),
    ];
    let refused: &[(&str, &str, &[&str], &str)] = &[
        ("whatsapp", "image", &["gif", "webp", "bmp", "heic"], "WhatsApp images must be one of: jpeg, jpg, png"),
        ("whatsapp", "video", &["mov", "avi", "webm"], "WhatsApp videos must be one of: mp4, 3gp"),
        (
            "whatsapp",
            "audio",
            &["wav", "flac", "opus", "mp4"],
            "WhatsApp audio must be one of: aac, amr, mp3, m4a, ogg",
        ),
        ("whatsapp", "document", &["csv", "zip", "exe", "html"], "WhatsApp documents must be one of"),
        ("whatsapp", "sticker", &["png", "gif"], "WhatsApp stickers must be one of: webp"),
        ("viber", "image", &["webp", "bmp"], "Viber images must be one of"),
        ("viber", "video", &["3gp", "mov"], "Viber videos must be one of: mp4"),
        ("viber", "document", &["txt", "ppt", "pptx"], "Viber documents must be one of"),
        ("rcs", "image", &["bmp"], "RCS images must be one of"),
        ("rcs", "document", &["docx", "txt", "xls"], "RCS documents must be one of: pdf"),
    ];
    let mut t = Table::default();
    for (channel, kind, exts) in accepted {
        for ext in *exts {
            t.ok(
                format!("{channel} {kind} .{ext}"),
                req(channel, kind, json!({"link": format!("https://cdn.example.com/m/file.{ext}")})),
            );
        }
        // Many CDNs serve by id; the provider checks the real content type.
        for link in [
            "https://cdn.example.com/media/12345",
            "https://cdn.example.com/media/",
            "https://cdn.example.com/m/a?format=exe",
        ] {
            t.ok(format!("{channel} {kind} without an extension: {link}"), req(channel, kind, json!({ "link": link })));
        }
        t.ok(
            format!("{channel} {kind}: query strings do not hide the extension"),
            req(channel, kind, json!({"link": format!("https://cdn.example.com/f.{}?sig=a.b", exts[0])})),
        );
    }
    for (channel, kind, exts, reason) in refused {
        for ext in *exts {
            let r = req(channel, kind, json!({"link": format!("https://cdn.example.com/m/file.{ext}")}));
            t.err(format!("{channel} {kind} .{ext}"), r, &format!("{kind}.link"), reason).err(
                format!("{channel} {kind} .{ext} reason names the extension"),
                req(channel, kind, json!({"link": format!("https://cdn.example.com/m/file.{ext}")})),
                &format!("{kind}.link"),
                &format!("(got .{})", ext.to_ascii_lowercase()),
            );
        }
    }
    t.run();
}

#[test]
fn media_links_are_absolute_http_urls() {
    let image = |link: Value| wa("image", json!({ "link": link }));
    let long = |n: usize| json!(format!("https://example.com/{}", "a".repeat(n - "https://example.com/".len())));
    let mut t = Table::default();
    t.ok("http", image(json!("http://example.com/a.png")))
        .ok("https with port and query", image(json!("https://example.com:8443/a.png?x=1")))
        .err("ftp", image(json!("ftp://example.com/a.png")), "image.link", "absolute http(s) URL")
        .err("file", image(json!("file:///tmp/a.png")), "image.link", "absolute http(s) URL")
        .err("relative", image(json!("/images/a.png")), "image.link", "absolute http(s) URL")
        .err("no scheme", image(json!("www.example.com/a.png")), "image.link", "absolute http(s) URL")
        .err("empty", image(json!("")), "image.link", "absolute http(s) URL")
        .err("data URL", image(json!("data:image/png;base64,AAAA")), "image.link", "absolute http(s) URL")
        .limit("link length", &image(json!("")), "/image/link", 2048, long, "image.link", "at most 2048 characters")
        .err("viber", viber("video", json!({"link": "ftp://e.com/a.mp4"})), "video.link", "absolute http(s) URL")
        .err("rcs", rcs("document", json!({"link": "nope"})), "document.link", "absolute http(s) URL")
        .serde("no link", wa("image", json!({"caption": "c"})), "link");
    t.run();
}

#[test]
fn captions_and_filenames() {
    let m = |kind: &str, extra: Value| {
        let mut media = json!({"link": "https://cdn.example.com/m/12345"});
        if let (Some(o), Value::Object(e)) = (media.as_object_mut(), extra) {
            o.extend(e);
        }
        wa(kind, media)
    };
    let mut t = Table::default();
    for kind in ["image", "video", "document"] {
        t.chars(
            &format!("{kind} caption"),
            &m(kind, json!({"caption": ""})),
            &format!("/{kind}/caption"),
            1024,
            &format!("{kind}.caption"),
        )
        .err(
            format!("{kind} empty caption"),
            m(kind, json!({"caption": " "})),
            &format!("{kind}.caption"),
            "must not be empty",
        );
    }
    for (kind, what) in [("audio", "WhatsApp audio"), ("sticker", "WhatsApp stickers")] {
        t.err(
            format!("{kind} caption"),
            m(kind, json!({"caption": "c"})),
            &format!("{kind}.caption"),
            &format!("{what} take no caption"),
        );
    }
    t.chars(
        "document filename",
        &m("document", json!({"filename": ""})),
        "/document/filename",
        240,
        "document.filename",
    );
    for (kind, what) in [
        ("image", "WhatsApp images"),
        ("video", "WhatsApp videos"),
        ("audio", "WhatsApp audio"),
        ("sticker", "WhatsApp stickers"),
    ] {
        t.err(
            format!("{kind} filename"),
            m(kind, json!({"filename": "a.bin"})),
            &format!("{kind}.filename"),
            &format!("{what} take no filename"),
        );
    }
    t.ok("document with caption and filename", m("document", json!({"caption": "Invoice", "filename": "invoice.pdf"})));
    // Viber and RCS media are a link, nothing more.
    for (channel, kind) in [
        ("viber", "image"),
        ("viber", "video"),
        ("viber", "document"),
        ("rcs", "image"),
        ("rcs", "video"),
        ("rcs", "document"),
    ] {
        let link = "https://cdn.example.com/m/12345";
        t.err(
            format!("{channel} {kind} caption"),
            req(channel, kind, json!({"link": link, "caption": "c"})),
            &format!("{kind}.caption"),
            "take no caption",
        )
        .err(
            format!("{channel} {kind} filename"),
            req(channel, kind, json!({"link": link, "filename": "f"})),
            &format!("{kind}.filename"),
            "take no filename",
        );
    }
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Location and contacts

#[test]
fn location() {
    let base = wa("location", json!({"latitude": 22.3, "longitude": 114.2, "name": "HQ", "address": "1 Main St"}));
    let at =
        |lat: f64, long: f64| with(&base, &[("/location/latitude", json!(lat)), ("/location/longitude", json!(long))]);
    let mut t = Table::default();
    t.ok("90, 180", at(90.0, 180.0))
        .ok("-90, -180", at(-90.0, -180.0))
        .ok("integers", with(&base, &[("/location/latitude", json!(0)), ("/location/longitude", json!(0))]))
        .ok("name and address optional", wa("location", json!({"latitude": 1.0, "longitude": 2.0})))
        .err("latitude 90.0001", at(90.0001, 0.0), "location.latitude", "between -90 and 90")
        .err("latitude -91", at(-91.0, 0.0), "location.latitude", "between -90 and 90")
        .err("longitude 180.5", at(0.0, 180.5), "location.longitude", "between -180 and 180")
        .err("longitude -181", at(0.0, -181.0), "location.longitude", "between -180 and 180")
        .chars("name", &base, "/location/name", 1000, "location.name")
        .chars("address", &base, "/location/address", 1000, "location.address")
        .err("empty name", with(&base, &[("/location/name", json!(""))]), "location.name", "must not be empty")
        .serde("latitude as a string", with(&base, &[("/location/latitude", json!("22.3"))]), "latitude")
        .serde("no longitude", without(&base, "/location/longitude"), "longitude");
    t.run();
}

#[test]
fn contacts() {
    let base = wa(
        "contacts",
        json!([{"name": {"formatted_name": "Ada Lovelace", "first_name": "Ada"},
                "phones": [{"phone": "+44 20 7946 0000", "type": "WORK"}],
                "urls": [{"url": "https://example.com"}]}]),
    );
    let mut t = Table::default();
    t.ok("one contact", base.clone())
        .ok("two contacts", with(&base, &[("/contacts/1", json!({"name": {"formatted_name": "B"}}))]))
        .err("no contacts", wa("contacts", json!([])), "contacts", "at least one contact")
        .err(
            "empty formatted_name",
            with(&base, &[("/contacts/0/name/formatted_name", json!(""))]),
            "contacts[0].name.formatted_name",
            "must not be empty",
        )
        .chars("formatted_name", &base, "/contacts/0/name/formatted_name", 1000, "contacts[0].name.formatted_name")
        .err(
            "empty phone",
            with(&base, &[("/contacts/0/phones/1", json!({"phone": ""}))]),
            "contacts[0].phones[1].phone",
            "must not be empty",
        )
        .chars("phone", &base, "/contacts/0/phones/0/phone", 64, "contacts[0].phones[0].phone")
        .err(
            "a bad url",
            with(&base, &[("/contacts/0/urls/0/url", json!("example.com"))]),
            "contacts[0].urls[0].url",
            "absolute http(s) URL",
        )
        .serde("no name", wa("contacts", json!([{"phones": []}])), "name");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Templates

#[test]
fn template_name_and_language() {
    let base = wa("template", json!({"name": "order_update", "language": "en_US"}));
    let name = |n: Value| with(&base, &[("/template/name", n)]);
    let lang = |l: &str| with(&base, &[("/template/language", json!(l))]);
    let mut t = Table::default();
    t.limit("name", &base, "/template/name", 512, |n| json!("a".repeat(n)), "template.name", "at most 512 characters")
        .ok("lowercase, digits, underscores", name(json!("order_update_2")))
        .ok("no language (INCS resolves it)", without(&base, "/template/language"))
        .err(
            "uppercase",
            name(json!("Order_Update")),
            "template.name",
            "lowercase letters, digits and underscores only",
        )
        .err("a dash", name(json!("order-update")), "template.name", "lowercase letters, digits and underscores only")
        .err("a space", name(json!("order update")), "template.name", "lowercase letters, digits and underscores only")
        .err("non-ASCII", name(json!("ordér")), "template.name", "lowercase letters, digits and underscores only")
        .err("empty", name(json!("")), "template.name", "must not be empty");
    for ok in ["en", "fil", "en_US", "zh_CN", "pt_BR", "sr_Latn"] {
        t.ok(format!("language {ok}"), lang(ok));
    }
    for bad in ["", "e", "__", "en-US", "en_", "_US", "english", "en_US_x", "e1", "en_U"] {
        t.err(format!("language {bad:?}"), lang(bad), "template.language", "a language code such as `en` or `en_US`");
    }
    t.run();
}

#[test]
fn template_components() {
    let header = json!({"type": "header", "parameters": [{"type": "text", "text": "h"}]});
    let body = json!({"type": "body", "parameters": [{"type": "text", "text": "b"}]});
    let copy_code = button_component("COPY_CODE", json!("0"), json!({"type": "coupon_code", "coupon_code": "843924"}));
    let mut t = Table::default();
    t.ok("header, body, two buttons", template(json!([header, body, copy_code,
            button_component("url", json!(1), json!({"type": "text", "text": "track/123"}))])))
        .ok("quick reply with payload", template(json!([button_component("quick_reply", json!("2"), json!({"type": "payload", "payload": "stop"}))])))
        .ok("sub_type in any case", template(json!([button_component("Copy_Code", json!("9"), json!({"type": "coupon_code", "coupon_code": "1"}))])))
        .ok("flow and catalog buttons", template(json!([
            {"type": "button", "sub_type": "flow", "index": "0"}, {"type": "button", "sub_type": "catalog", "index": "1"}])))
        .ok("no components", wa("template", json!({"name": "hello_world"})))
        .err("button without sub_type", template(json!([{"type": "button", "index": "0"}])), "template.components[0].sub_type", "required for button components")
        .err("button without index", template(json!([{"type": "button", "sub_type": "url"}])), "template.components[0].index", "required for button components")
        .errs("button with neither", template(json!([body, {"type": "button"}])), &[
            ("template.components[1].sub_type", "required for button components"),
            ("template.components[1].index", "required for button components")])
        .err("unknown sub_type", template(json!([{"type": "button", "sub_type": "call", "index": "0"}])), "template.components[0].sub_type", "one of: quick_reply, url, copy_code, flow, catalog")
        .err("index 10", template(json!([{"type": "button", "sub_type": "url", "index": "10"}])), "template.components[0].index", "a button position from 0 to 9")
        .err("index not a number", template(json!([{"type": "button", "sub_type": "url", "index": "first"}])), "template.components[0].index", "a button position from 0 to 9")
        .err("index negative", template(json!([{"type": "button", "sub_type": "url", "index": "-1"}])), "template.components[0].index", "a button position from 0 to 9")
        .err("the same button index twice", template(json!([copy_code, button_component("url", json!(0), json!({"type": "text", "text": "x"}))])),
            "template.components[1].index", "button index 0 given twice")
        .err("two headers", template(json!([header, body, header])), "template.components[2].type", "only one header component")
        .err("two bodies", template(json!([body, body])), "template.components[1].type", "only one body component")
        .err("a header with a sub_type", template(json!([{"type": "header", "sub_type": "url"}])), "template.components[0].sub_type", "only button components have a sub_type")
        .err("a body with an index", template(json!([{"type": "body", "index": "0"}])), "template.components[0].index", "only button components have an index")
        .err("a header with two parameters", template(json!([{"type": "header", "parameters": [
            {"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}])), "template.components[0].parameters", "a header takes one parameter")
        .serde("an unknown component type", template(json!([{"type": "footer"}])), "footer")
        .serde("an unknown parameter type", template(json!([{"type": "body", "parameters": [{"type": "location", "location": {}}]}])), "location");
    t.run();
}

#[test]
fn template_parameters() {
    let media_header = |kind: &str, link: &str| header_param(json!({"type": kind, kind: {"link": link}}));
    let coupon = |c: String| {
        template(json!([button_component("copy_code", json!("0"), json!({"type": "coupon_code", "coupon_code": c}))]))
    };
    let payload = |p: String| {
        template(json!([button_component("quick_reply", json!("0"), json!({"type": "payload", "payload": p}))]))
    };
    let mut t = Table::default();
    t.chars(
        "body text parameter",
        &body_param(json!("")),
        "/template/components/0/parameters/0/text",
        1024,
        "template.components[0].parameters[0].text",
    )
    .chars(
        "header text parameter",
        &header_param(json!({"type": "text", "text": ""})),
        "/template/components/0/parameters/0/text",
        60,
        "template.components[0].parameters[0].text",
    )
    .err(
        "empty text parameter",
        body_param(json!("")),
        "template.components[0].parameters[0].text",
        "must not be empty",
    )
    .err(
        "a newline",
        body_param(json!("a\nb")),
        "template.components[0].parameters[0].text",
        "may not contain newlines or tabs",
    )
    .err(
        "a carriage return",
        body_param(json!("a\rb")),
        "template.components[0].parameters[0].text",
        "may not contain newlines or tabs",
    )
    .err(
        "a tab",
        body_param(json!("a\tb")),
        "template.components[0].parameters[0].text",
        "may not contain newlines or tabs",
    )
    .err(
        "a newline in the header",
        header_param(json!({"type": "text", "text": "a\nb"})),
        "template.components[0].parameters[0].text",
        "newlines or tabs",
    )
    .ok("4 consecutive spaces", body_param(json!("a    b")))
    .ok("spaces apart", body_param(json!("a  b  c    d")))
    .err(
        "5 consecutive spaces",
        body_param(json!("a     b")),
        "template.components[0].parameters[0].text",
        "more than 4 consecutive spaces",
    )
    .ok("a header image", media_header("image", "https://e.com/h.png"))
    .ok("a header video", media_header("video", "https://e.com/h.mp4"))
    .ok("a header document", media_header("document", "https://e.com/h.pdf"))
    .err(
        "a header image .gif",
        media_header("image", "https://e.com/h.gif"),
        "template.components[0].parameters[0].image.link",
        "WhatsApp images must be one of",
    )
    .err(
        "a header video .mov",
        media_header("video", "https://e.com/h.mov"),
        "template.components[0].parameters[0].video.link",
        "WhatsApp videos must be one of",
    )
    .err(
        "a header document .zip",
        media_header("document", "https://e.com/h.zip"),
        "template.components[0].parameters[0].document.link",
        "WhatsApp documents must be one of",
    )
    .err(
        "a header image not http",
        media_header("image", "ftp://e.com/h.png"),
        "template.components[0].parameters[0].image.link",
        "absolute http(s) URL",
    )
    .ok("coupon code of 15", coupon("A".repeat(15)))
    .err(
        "coupon code of 16",
        coupon("A".repeat(16)),
        "template.components[0].parameters[0].coupon_code",
        "at most 15 characters",
    )
    .err(
        "empty coupon code",
        coupon(String::new()),
        "template.components[0].parameters[0].coupon_code",
        "must not be empty",
    )
    .ok("payload of 256", payload(txt(256)))
    .err("payload of 257", payload(txt(257)), "template.components[0].parameters[0].payload", "at most 256 characters")
    .ok(
        "currency and date_time in a body",
        template(json!([{"type": "body", "parameters": [
            {"type": "currency", "currency": {"fallback_value": "$100.99", "code": "USD", "amount_1000": 100990}},
            {"type": "date_time", "date_time": {"fallback_value": "February 25, 1977"}}]}])),
    )
    .err(
        "empty currency fallback",
        template(json!([{"type": "body", "parameters": [
            {"type": "currency", "currency": {"fallback_value": "", "code": "USD", "amount_1000": 1}}]}])),
        "template.components[0].parameters[0].currency.fallback_value",
        "must not be empty",
    )
    .err(
        "empty date_time fallback",
        template(json!([{"type": "body", "parameters": [
            {"type": "date_time", "date_time": {"fallback_value": " "}}]}])),
        "template.components[0].parameters[0].date_time.fallback_value",
        "must not be empty",
    )
    .err(
        "an image in a body",
        template(
            json!([{"type": "body", "parameters": [{"type": "image", "image": {"link": "https://e.com/a.png"}}]}]),
        ),
        "template.components[0].parameters[0].type",
        "not allowed in a body component",
    )
    .err(
        "a coupon code in a header",
        header_param(json!({"type": "coupon_code", "coupon_code": "1"})),
        "template.components[0].parameters[0].type",
        "not allowed in a header component",
    )
    .err(
        "a payload in a body",
        template(json!([{"type": "body", "parameters": [{"type": "payload", "payload": "p"}]}])),
        "template.components[0].parameters[0].type",
        "not allowed in a body component",
    )
    .err(
        "a currency in a header",
        header_param(
            json!({"type": "currency", "currency": {"fallback_value": "$1", "code": "USD", "amount_1000": 1000}}),
        ),
        "template.components[0].parameters[0].type",
        "not allowed in a header component",
    )
    .err(
        "an image in a button",
        template(json!([button_component(
            "url",
            json!("0"),
            json!({"type": "image", "image": {"link": "https://e.com/a.png"}})
        )])),
        "template.components[0].parameters[0].type",
        "not allowed in a button component",
    )
    .err(
        "the second parameter at fault",
        template(json!([{"type": "body", "parameters": [
            {"type": "text", "text": "ok"}, {"type": "text", "text": "tab\there"}]}])),
        "template.components[0].parameters[1].text",
        "newlines or tabs",
    )
    .ok("text parameters counted in characters", body_param(json!("你好".repeat(512))));
    t.run();
}

#[test]
fn authentication_templates() {
    let base = wa("template", json!({"name": "authentication_ca", "code": "123456"}));
    let mut t = Table::default();
    t.ok("{name, code}", base.clone())
        .ok("with a language", with(&base, &[("/template/language", json!("en_US"))]))
        .limit("code", &base, "/template/code", 15, |n| json!("9".repeat(n)), "template.code", "at most 15 characters")
        .err("empty code", with(&base, &[("/template/code", json!(""))]), "template.code", "must not be empty")
        .err(
            "code and components",
            with(&base, &[("/template/components", json!([]))]),
            "template.code",
            "takes `code` and no `components`",
        )
        .err("a bad name", with(&base, &[("/template/name", json!("Auth"))]), "template.name", "lowercase letters")
        .err(
            "a bad language",
            with(&base, &[("/template/language", json!("en-US"))]),
            "template.language",
            "a language code",
        )
        .err(
            "rcs parameters on whatsapp",
            with(&base, &[("/template/parameters", json!({"a": "b"}))]),
            "template.parameters",
            "RCS templates only",
        )
        .err(
            "rcs parameters on a whatsapp component template",
            with(&template(json!([])), &[("/template/parameters", json!({"a": "b"}))]),
            "template.parameters",
            "RCS templates only",
        );
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Interactive: reply buttons

#[test]
fn reply_buttons_message() {
    let base = button_msg();
    let title = |i: usize| format!("/interactive/action/buttons/{i}/reply/title");
    let id = |i: usize| format!("/interactive/action/buttons/{i}/reply/id");
    let buttons = |n: usize| with(&base, &[("/interactive/action/buttons", reply_buttons(n))]);
    let mut t = Table::default();
    t.ok("1 button", buttons(1))
        .ok("3 buttons", buttons(3))
        .err("no buttons", buttons(0), "interactive.action.buttons", "1 to 3 buttons, got 0")
        .err("4 buttons", buttons(4), "interactive.action.buttons", "1 to 3 buttons, got 4")
        .errs(
            "4 buttons, the fourth title too long",
            with(&buttons(4), &[(&title(3), json!(txt(21)))]),
            &[
                ("interactive.action.buttons", "1 to 3 buttons, got 4"),
                ("interactive.action.buttons[3].reply.title", "at most 20 characters, got 21"),
            ],
        )
        .chars("button id", &base, &id(2), 256, "interactive.action.buttons[2].reply.id")
        .chars("button title", &base, &title(2), 20, "interactive.action.buttons[2].reply.title")
        .ok("20 emoji titles", with(&base, &[(&title(0), json!("🎉".repeat(20))), (&title(1), json!("👍".repeat(20)))]))
        .err(
            "21 emoji title",
            with(&base, &[(&title(0), json!("🎉".repeat(21)))]),
            "interactive.action.buttons[0].reply.title",
            "at most 20 characters, got 21",
        )
        .err(
            "empty title",
            with(&base, &[(&title(1), json!(""))]),
            "interactive.action.buttons[1].reply.title",
            "must not be empty",
        )
        .err(
            "empty id",
            with(&base, &[(&id(1), json!(""))]),
            "interactive.action.buttons[1].reply.id",
            "must not be empty",
        )
        .err(
            "duplicate titles",
            with(&base, &[(&title(2), json!("Choice 0"))]),
            "interactive.action.buttons[2].reply.title",
            "duplicate button title `Choice 0`",
        )
        .err(
            "duplicate titles differing in case and spaces",
            with(&base, &[(&title(1), json!(" choice 0 "))]),
            "interactive.action.buttons[1].reply.title",
            "duplicate button title",
        )
        .err(
            "duplicate ids",
            with(&base, &[(&id(1), json!("id-0"))]),
            "interactive.action.buttons[1].reply.id",
            "duplicate button id `id-0`",
        )
        .ok("ids differing in case are distinct", with(&base, &[(&id(1), json!("ID-0"))]))
        .chars("body", &base, "/interactive/body/text", 1024, "interactive.body.text")
        .err(
            "empty body",
            with(&base, &[("/interactive/body/text", json!(""))]),
            "interactive.body.text",
            "must not be empty",
        )
        .chars("header text", &base, "/interactive/header/text", 60, "interactive.header.text")
        .chars("footer", &base, "/interactive/footer/text", 60, "interactive.footer.text")
        .ok("no header or footer", without(&without(&base, "/interactive/header"), "/interactive/footer"))
        .ok(
            "image header",
            with(&base, &[("/interactive/header", json!({"type": "image", "image": {"link": "https://e.com/a.jpg"}}))]),
        )
        .ok(
            "video header",
            with(&base, &[("/interactive/header", json!({"type": "video", "video": {"link": "https://e.com/a.mp4"}}))]),
        )
        .ok(
            "document header",
            with(
                &base,
                &[("/interactive/header", json!({"type": "document", "document": {"link": "https://e.com/a.pdf"}}))],
            ),
        )
        .err(
            "image header .gif",
            with(&base, &[("/interactive/header", json!({"type": "image", "image": {"link": "https://e.com/a.gif"}}))]),
            "interactive.header.image.link",
            "WhatsApp images must be one of",
        )
        .serde("no body", without(&base, "/interactive/body"), "body")
        .serde("a button of another type", with(&base, &[("/interactive/action/buttons/0/type", json!("url"))]), "url");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Interactive: call-to-action URL

#[test]
fn cta_url_message() {
    let base = cta_msg();
    let mut t = Table::default();
    t.chars("body", &base, "/interactive/body/text", 1024, "interactive.body.text")
        .chars(
            "label",
            &base,
            "/interactive/action/parameters/display_text",
            20,
            "interactive.action.parameters.display_text",
        )
        .chars("header text", &base, "/interactive/header/text", 60, "interactive.header.text")
        .chars("footer", &base, "/interactive/footer/text", 60, "interactive.footer.text")
        .ok("20 emoji label", with(&base, &[("/interactive/action/parameters/display_text", json!("🛒".repeat(20)))]))
        .err(
            "empty label",
            with(&base, &[("/interactive/action/parameters/display_text", json!(""))]),
            "interactive.action.parameters.display_text",
            "must not be empty",
        )
        .ok("http url", with(&base, &[("/interactive/action/parameters/url", json!("http://example.com"))]))
        .err(
            "ftp url",
            with(&base, &[("/interactive/action/parameters/url", json!("ftp://example.com/x"))]),
            "interactive.action.parameters.url",
            "absolute http(s) URL",
        )
        .err(
            "javascript url",
            with(&base, &[("/interactive/action/parameters/url", json!("javascript:alert(1)"))]),
            "interactive.action.parameters.url",
            "absolute http(s) URL",
        )
        .err(
            "url without scheme",
            with(&base, &[("/interactive/action/parameters/url", json!("www.example.com"))]),
            "interactive.action.parameters.url",
            "absolute http(s) URL",
        )
        .err(
            "action name not cta_url",
            with(&base, &[("/interactive/action/name", json!("url"))]),
            "interactive.action.name",
            "must be `cta_url`",
        )
        .ok(
            "document header",
            with(
                &base,
                &[("/interactive/header", json!({"type": "document", "document": {"link": "https://e.com/a.pdf"}}))],
            ),
        )
        .ok(
            "video header",
            with(&base, &[("/interactive/header", json!({"type": "video", "video": {"link": "https://e.com/a.3gp"}}))]),
        )
        .err(
            "video header .mkv",
            with(&base, &[("/interactive/header", json!({"type": "video", "video": {"link": "https://e.com/a.mkv"}}))]),
            "interactive.header.video.link",
            "WhatsApp videos must be one of",
        )
        .serde("no action", without(&base, "/interactive/action"), "action")
        .serde(
            "a list action",
            with(&base, &[("/interactive/action", json!({"button": "b", "sections": []}))]),
            "unknown field `button`",
        );
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Interactive: list

#[test]
fn list_message() {
    let base = list_msg(&[2, 2]);
    let single = list_msg(&[1]);
    let mut t = Table::default();
    t.chars("body", &base, "/interactive/body/text", 4096, "interactive.body.text")
        .chars("button", &base, "/interactive/action/button", 20, "interactive.action.button")
        .chars("header text", &base, "/interactive/header/text", 60, "interactive.header.text")
        .chars("footer", &base, "/interactive/footer/text", 60, "interactive.footer.text")
        .err(
            "empty button",
            with(&base, &[("/interactive/action/button", json!(""))]),
            "interactive.action.button",
            "must not be empty",
        )
        .err(
            "image header",
            with(&base, &[("/interactive/header", json!({"type": "image", "image": {"link": "https://e.com/a.png"}}))]),
            "interactive.header.type",
            "text header only",
        )
        .err(
            "video header",
            with(&base, &[("/interactive/header", json!({"type": "video", "video": {"link": "https://e.com/a.mp4"}}))]),
            "interactive.header.type",
            "text header only",
        )
        .err(
            "document header",
            with(
                &base,
                &[("/interactive/header", json!({"type": "document", "document": {"link": "https://e.com/a.pdf"}}))],
            ),
            "interactive.header.type",
            "text header only",
        )
        .ok("no header", without(&base, "/interactive/header"))
        // Sections and rows.
        .ok("10 sections of one row", list_msg(&[1; 10]))
        .errs(
            "11 sections of one row",
            list_msg(&[1; 11]),
            &[
                ("interactive.action.sections", "1 to 10 sections, got 11"),
                ("interactive.action.sections", "1 to 10 rows in all sections together, got 11"),
            ],
        )
        .errs(
            "no sections",
            list_msg(&[]),
            &[
                ("interactive.action.sections", "1 to 10 sections, got 0"),
                ("interactive.action.sections", "1 to 10 rows in all sections together, got 0"),
            ],
        )
        .ok("10 rows in one section", list_msg(&[10]))
        .ok("10 rows over three sections", list_msg(&[3, 3, 4]))
        .err(
            "11 rows in one section",
            list_msg(&[11]),
            "interactive.action.sections",
            "1 to 10 rows in all sections together, got 11",
        )
        .err(
            "11 rows over two sections",
            list_msg(&[5, 6]),
            "interactive.action.sections",
            "1 to 10 rows in all sections together, got 11",
        )
        .err("a section without rows", list_msg(&[2, 0]), "interactive.action.sections[1].rows", "at least one row")
        .chars(
            "section title",
            &base,
            "/interactive/action/sections/1/title",
            24,
            "interactive.action.sections[1].title",
        )
        .err(
            "empty section title",
            with(&base, &[("/interactive/action/sections/0/title", json!(""))]),
            "interactive.action.sections[0].title",
            "must not be empty",
        )
        .ok("one section needs no title", without(&single, "/interactive/action/sections/0/title"))
        .err(
            "two sections need titles",
            without(&base, "/interactive/action/sections/1/title"),
            "interactive.action.sections[1].title",
            "required when there is more than one section",
        )
        // Rows.
        .chars(
            "row id",
            &base,
            "/interactive/action/sections/1/rows/0/id",
            200,
            "interactive.action.sections[1].rows[0].id",
        )
        .chars(
            "row title",
            &base,
            "/interactive/action/sections/0/rows/1/title",
            24,
            "interactive.action.sections[0].rows[1].title",
        )
        .chars(
            "row description",
            &base,
            "/interactive/action/sections/1/rows/1/description",
            72,
            "interactive.action.sections[1].rows[1].description",
        )
        .ok("no row description", without(&base, "/interactive/action/sections/0/rows/0/description"))
        .ok(
            "24 emoji row title",
            with(&base, &[("/interactive/action/sections/0/rows/0/title", json!("📦".repeat(24)))]),
        )
        .err(
            "empty row id",
            with(&base, &[("/interactive/action/sections/0/rows/0/id", json!(""))]),
            "interactive.action.sections[0].rows[0].id",
            "must not be empty",
        )
        .err(
            "empty row title",
            with(&base, &[("/interactive/action/sections/0/rows/0/title", json!(""))]),
            "interactive.action.sections[0].rows[0].title",
            "must not be empty",
        )
        .err(
            "duplicate row id in a section",
            with(&base, &[("/interactive/action/sections/0/rows/1/id", json!("row-0-0"))]),
            "interactive.action.sections[0].rows[1].id",
            "duplicate row id `row-0-0`",
        )
        .err(
            "duplicate row id across sections",
            with(&base, &[("/interactive/action/sections/1/rows/0/id", json!("row-0-1"))]),
            "interactive.action.sections[1].rows[0].id",
            "duplicate row id `row-0-1`",
        )
        .ok("row titles may repeat", with(&base, &[("/interactive/action/sections/1/rows/0/title", json!("Row 0.0"))]))
        .serde("no sections field", without(&base, "/interactive/action/sections"), "sections");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Interactive: carousel

#[test]
fn carousel_message() {
    let base = url_carousel(2);
    let replies = reply_carousel(2, 2);
    let card = |i: usize, rest: &str| format!("/interactive/action/cards/{i}{rest}");
    let qr = |c: usize, b: usize, f: &str| format!("/interactive/action/cards/{c}/action/buttons/{b}/quick_reply/{f}");
    let mut t = Table::default();
    t.ok("2 cards", url_carousel(2))
        .ok("10 cards", url_carousel(10))
        .err("1 card", url_carousel(1), "interactive.action.cards", "2 to 10 cards, got 1")
        .err("no cards", url_carousel(0), "interactive.action.cards", "2 to 10 cards, got 0")
        .err("11 cards", url_carousel(11), "interactive.action.cards", "2 to 10 cards, got 11")
        .chars("main body", &base, "/interactive/body/text", 1024, "interactive.body.text")
        .err(
            "empty main body",
            with(&base, &[("/interactive/body/text", json!(""))]),
            "interactive.body.text",
            "must not be empty",
        )
        .serde("no main body", without(&base, "/interactive/body"), "body")
        .serde("a main header", with(&base, &[("/interactive/header", json!({"type": "text", "text": "h"}))]), "header")
        .serde("a main footer", with(&base, &[("/interactive/footer", json!({"text": "f"}))]), "footer")
        // Card bodies: 160 characters, 2 lines.
        .chars("card body", &base, &card(1, "/body/text"), 160, "interactive.action.cards[1].body.text")
        .ok("no card body", without(&base, &card(0, "/body")))
        .ok("two lines", with(&base, &[(&card(0, "/body/text"), json!("one\ntwo"))]))
        .ok(
            "two lines around a blank one (the documents' example)",
            with(&base, &[(&card(0, "/body/text"), json!("*Title*\n\nText"))]),
        )
        .err(
            "three lines",
            with(&base, &[(&card(1, "/body/text"), json!("one\ntwo\nthree"))]),
            "interactive.action.cards[1].body.text",
            "at most 2 lines of text",
        )
        .err(
            "three line breaks",
            with(&base, &[(&card(1, "/body/text"), json!("one\n\n\ntwo"))]),
            "interactive.action.cards[1].body.text",
            "2 line breaks",
        )
        .err(
            "empty card body",
            with(&base, &[(&card(0, "/body/text"), json!(""))]),
            "interactive.action.cards[0].body.text",
            "must not be empty",
        )
        // Card indexes.
        .ok(
            "indexes in any order",
            with(&base, &[(&card(0, "/card_index"), json!(1)), (&card(1, "/card_index"), json!(0))]),
        )
        .err(
            "a repeated index",
            with(&base, &[(&card(1, "/card_index"), json!(0))]),
            "interactive.action.cards[1].card_index",
            "0 to 1 and each used once",
        )
        .err(
            "an index past the end",
            with(&base, &[(&card(1, "/card_index"), json!(2))]),
            "interactive.action.cards[1].card_index",
            "0 to 1 and each used once",
        )
        .serde("a negative index", with(&base, &[(&card(0, "/card_index"), json!(-1))]), "-1")
        // Card headers: image or video.
        .ok("video headers", reply_carousel(3, 1))
        .err(
            "an image header .gif",
            with(&base, &[(&card(1, "/header/image/link"), json!("https://e.com/a.gif"))]),
            "interactive.action.cards[1].header.image.link",
            "WhatsApp images must be one of",
        )
        .err(
            "a video header .mov",
            with(&replies, &[(&card(0, "/header/video/link"), json!("https://e.com/a.mov"))]),
            "interactive.action.cards[0].header.video.link",
            "WhatsApp videos must be one of",
        )
        .serde("a text header", with(&base, &[(&card(0, "/header"), json!({"type": "text", "text": "t"}))]), "text")
        .serde(
            "a document header",
            with(
                &base,
                &[(&card(0, "/header"), json!({"type": "document", "document": {"link": "https://e.com/a.pdf"}}))],
            ),
            "document",
        )
        .serde("no header", without(&base, &card(0, "/header")), "header")
        // URL buttons.
        .chars(
            "URL button label",
            &base,
            &card(1, "/action/parameters/display_text"),
            20,
            "interactive.action.cards[1].action.parameters.display_text",
        )
        .err(
            "URL button not http",
            with(&base, &[(&card(0, "/action/parameters/url"), json!("mailto:a@b.c"))]),
            "interactive.action.cards[0].action.parameters.url",
            "absolute http(s) URL",
        )
        .err(
            "URL button name",
            with(&base, &[(&card(0, "/action/name"), json!("url"))]),
            "interactive.action.cards[0].action.name",
            "must be `cta_url`",
        )
        // Quick replies.
        .ok("1 quick reply per card", reply_carousel(2, 1))
        .ok("2 quick replies per card", replies.clone())
        .errs(
            "3 quick replies per card",
            reply_carousel(2, 3),
            &[
                ("interactive.action.cards[0].action.buttons", "1 or 2 quick-reply buttons, got 3"),
                ("interactive.action.cards[1].action.buttons", "1 or 2 quick-reply buttons, got 3"),
            ],
        )
        .errs(
            "no quick replies",
            reply_carousel(2, 0),
            &[
                ("interactive.action.cards[0].action.buttons", "1 or 2 quick-reply buttons, got 0"),
                ("interactive.action.cards[1].action.buttons", "1 or 2 quick-reply buttons, got 0"),
            ],
        )
        .chars(
            "quick-reply id",
            &replies,
            &qr(1, 1, "id"),
            256,
            "interactive.action.cards[1].action.buttons[1].quick_reply.id",
        )
        .chars(
            "quick-reply title",
            &replies,
            &qr(1, 0, "title"),
            20,
            "interactive.action.cards[1].action.buttons[0].quick_reply.title",
        )
        .ok(
            "10 ❤️ (20 characters with their variation selectors)",
            with(&replies, &[(&qr(0, 0, "title"), json!("❤️".repeat(10)))]),
        )
        .err(
            "duplicate quick-reply titles in a card",
            with(&replies, &[(&qr(0, 1, "title"), json!("Reply 0"))]),
            "interactive.action.cards[0].action.buttons[1].quick_reply.title",
            "duplicate button title",
        )
        .err(
            "duplicate quick-reply ids in a card",
            with(&replies, &[(&qr(1, 1, "id"), json!("card-1-0"))]),
            "interactive.action.cards[1].action.buttons[1].quick_reply.id",
            "duplicate button id",
        )
        .ok("the same titles on different cards", replies.clone())
        .ok(
            "quick-reply cards typed cta_url (the documents' example)",
            with(&replies, &[(&card(0, "/type"), json!("cta_url")), (&card(1, "/type"), json!("cta_url"))]),
        )
        .serde("an unknown card type", with(&base, &[(&card(0, "/type"), json!("url"))]), "unknown variant `url`")
        // Every card: the same button type and count.
        .err(
            "a URL card and a quick-reply card",
            carousel(vec![url_card(0), reply_card(1, 1)]),
            "interactive.action.cards[1].action",
            "every card must have the same buttons as the first (1 a URL button)",
        )
        .err(
            "a quick-reply card and a URL card",
            carousel(vec![reply_card(0, 2), url_card(1)]),
            "interactive.action.cards[1].action",
            "every card must have the same buttons as the first (2 quick-reply buttons)",
        )
        .err(
            "2 and 1 quick replies",
            carousel(vec![reply_card(0, 2), reply_card(1, 2), reply_card(2, 1)]),
            "interactive.action.cards[2].action",
            "every card must have the same buttons as the first (2 quick-reply buttons)",
        )
        .serde(
            "an action that is neither",
            with(&base, &[(&card(0, "/action"), json!({"name": "cta_url"}))]),
            "CardAction",
        );
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Interactive: product and product list

#[test]
fn product_messages() {
    let product = wa(
        "interactive",
        json!({"type": "product", "body": {"text": "Look"}, "footer": {"text": "f"},
        "action": {"catalog_id": "cat-1", "product_retailer_id": "sku-1"}}),
    );
    let items = |n: usize| -> Value { (0..n).map(|i| json!({"product_retailer_id": nth("sku-", i)})).collect() };
    let list = wa(
        "interactive",
        json!({"type": "product_list", "header": {"type": "text", "text": "Our range"}, "body": {"text": "Pick"},
        "action": {"catalog_id": "cat-1", "sections": [{"title": "Plants", "product_items": items(2)}]}}),
    );
    let mut t = Table::default();
    t.ok("product without body", without(&product, "/interactive/body"))
        .chars("product body", &product, "/interactive/body/text", 1024, "interactive.body.text")
        .chars("product footer", &product, "/interactive/footer/text", 60, "interactive.footer.text")
        .chars("catalog id", &product, "/interactive/action/catalog_id", 128, "interactive.action.catalog_id")
        .err(
            "empty product id",
            with(&product, &[("/interactive/action/product_retailer_id", json!(""))]),
            "interactive.action.product_retailer_id",
            "must not be empty",
        )
        .chars("product list header", &list, "/interactive/header/text", 60, "interactive.header.text")
        .err(
            "product list image header",
            with(&list, &[("/interactive/header", json!({"type": "image", "image": {"link": "https://e.com/a.png"}}))]),
            "interactive.header.type",
            "text header only",
        )
        .chars("product list body", &list, "/interactive/body/text", 1024, "interactive.body.text")
        .chars(
            "product list section title",
            &list,
            "/interactive/action/sections/0/title",
            24,
            "interactive.action.sections[0].title",
        )
        .limit(
            "products",
            &list,
            "/interactive/action/sections/0/product_items",
            30,
            items,
            "interactive.action.sections",
            "1 to 30 products in all, got 31",
        )
        .err(
            "no products",
            with(&list, &[("/interactive/action/sections/0/product_items", json!([]))]),
            "interactive.action.sections",
            "1 to 30 products in all, got 0",
        )
        .err(
            "11 sections",
            with(
                &list,
                &[("/interactive/action/sections", (0..11).map(|_| json!({"product_items": items(1)})).collect())],
            ),
            "interactive.action.sections",
            "1 to 10 sections, got 11",
        )
        .chars(
            "product item id",
            &list,
            "/interactive/action/sections/0/product_items/1/product_retailer_id",
            128,
            "interactive.action.sections[0].product_items[1].product_retailer_id",
        )
        .serde("product list without header", without(&list, "/interactive/header"), "header");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// Viber

#[test]
fn viber_otp() {
    let base = viber("otp", json!({"code": "123456", "language": "en", "code_expiration_minutes": 3}));
    let set = |p: &str, v: Value| with(&base, &[(p, v)]);
    let mut t = Table::default();
    t.limit("code", &base, "/otp/code", 12, |n| json!("7".repeat(n)), "otp.code", "at most 12 characters")
        .ok("letters in the code", set("/otp/code", json!("AB12cd")))
        .err("a dash in the code", set("/otp/code", json!("123-456")), "otp.code", "letters and digits only")
        .err("a space in the code", set("/otp/code", json!("123 456")), "otp.code", "letters and digits only")
        .err("empty code", set("/otp/code", json!("")), "otp.code", "must not be empty")
        .ok("language en_US", set("/otp/language", json!("en_US")))
        .err("language e", set("/otp/language", json!("e")), "otp.language", "a language code")
        .err("language english", set("/otp/language", json!("english")), "otp.language", "a language code")
        .err("language empty", set("/otp/language", json!("")), "otp.language", "a language code")
        .ok("1 minute", set("/otp/code_expiration_minutes", json!(1)))
        .limit(
            "expiry",
            &base,
            "/otp/code_expiration_minutes",
            1440,
            |n| json!(n),
            "otp.code_expiration_minutes",
            "1 to 1440 minutes",
        )
        .err(
            "0 minutes",
            set("/otp/code_expiration_minutes", json!(0)),
            "otp.code_expiration_minutes",
            "1 to 1440 minutes",
        )
        .serde("negative minutes", set("/otp/code_expiration_minutes", json!(-1)), "code_expiration_minutes")
        .serde("no language", without(&base, "/otp/language"), "language");
    t.run();
}

// ---------------------------------------------------------------------------------------------
// RCS

#[test]
fn rcs_templates() {
    let base = rcs("template", json!({"name": "test_button_reply_1", "parameters": {"username": "jack"}}));
    let name = |n: &str| with(&base, &[("/template/name", json!(n))]);
    let mut t = Table::default();
    t.limit("name", &base, "/template/name", 25, |n| json!("a".repeat(n)), "template.name", "at most 25 characters")
        .ok("uppercase and digits", name("Promo_2025"))
        .err("a dash", name("promo-2025"), "template.name", "letters, digits and underscores only")
        .err("a space", name("promo 2025"), "template.name", "letters, digits and underscores only")
        .err("non-ASCII", name("promoé"), "template.name", "letters, digits and underscores only")
        .err("empty name", name(""), "template.name", "must not be empty")
        .ok("no parameters", without(&base, "/template/parameters"))
        .chars("parameter value", &base, "/template/parameters/username", 3072, "template.parameters.username")
        .err(
            "an empty parameter value",
            with(&base, &[("/template/parameters/username", json!(""))]),
            "template.parameters.username",
            "must not be empty",
        )
        .err(
            "a blank parameter value",
            with(&base, &[("/template/parameters/username", json!("  "))]),
            "template.parameters.username",
            "must not be empty",
        )
        .err(
            "an empty parameter name",
            with(&base, &[("/template/parameters", json!({"": "x"}))]),
            "template.parameters",
            "parameter names must not be empty",
        )
        .err(
            "a WhatsApp language",
            with(&base, &[("/template/language", json!("en"))]),
            "template.language",
            "not used by RCS templates",
        )
        .err(
            "WhatsApp components",
            with(&base, &[("/template/components", json!([]))]),
            "template.components",
            "not used by RCS templates",
        )
        .err(
            "a WhatsApp code",
            with(&base, &[("/template/code", json!("1"))]),
            "template.code",
            "not used by RCS templates",
        )
        .serde("a non-string parameter", with(&base, &[("/template/parameters/username", json!(1))]), "parameters");
    t.run();
}
