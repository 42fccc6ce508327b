//! Every template rule, driven the way the API drives it: draft JSON through serde, then
//! `validate`. Each limit is checked at its edge: at the limit accepted, one over refused with the
//! exact JSON path. At-limit strings are made of `é` (two bytes in UTF-8) where the rule allows
//! it, so a limit counted in bytes fails the test. A failing table reports every wrong case.

use serde_json::{json, Value};

use super::*;

enum Want {
    Accepted,
    /// Refused; one error on exactly this field, with a reason containing the fragment.
    Refused(&'static str, &'static str),
    /// serde refused it; the message contains the fragment.
    Unparsable(&'static str),
}

fn long(n: usize) -> String {
    "é".repeat(n)
}

fn run<T, F>(table: &str, cases: Vec<(&str, Value, Want)>, validate: F)
where
    T: serde::de::DeserializeOwned,
    F: Fn(&T) -> Result<(), FieldErrors>,
{
    let mut failures = Vec::new();
    for (name, draft, want) in cases {
        let parsed =
            serde_path_to_error::deserialize::<_, T>(draft.clone()).map_err(|e| format!("{}: {}", e.path(), e.inner()));
        let outcome = parsed.map(|d| validate(&d).map_err(|e| e.into_vec()));
        let ok = match (&want, &outcome) {
            (Want::Accepted, Ok(Ok(()))) => true,
            (Want::Refused(field, fragment), Ok(Err(errors))) => {
                errors.iter().any(|e| e.field == *field && e.reason.contains(fragment))
            }
            (Want::Unparsable(fragment), Err(e)) => e.contains(fragment),
            _ => false,
        };
        if !ok {
            let wanted = match want {
                Want::Accepted => "accepted".to_owned(),
                Want::Refused(f, r) => format!("refused at `{f}` with “{r}”"),
                Want::Unparsable(r) => format!("unparsable with “{r}”"),
            };
            failures.push(format!("{table} / {name}: wanted {wanted}, got {outcome:?}"));
        }
    }
    assert!(failures.is_empty(), "\n{}", failures.join("\n"));
}

// ---------------------------------------------------------------------------------------------
// WhatsApp

/// Header with `{{1}}`, body with two placeholders, footer, and a quick reply, a URL and a phone
/// button: every component kind, valid for both providers.
fn wa_base() -> Value {
    json!({
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1001"]}},
            {"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped.", "example": {"body_text": [["Ann", "A-1001"]]}},
            {"type": "FOOTER", "text": "Thanks for shopping"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop updates"},
                {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}",
                 "example": ["https://shop.example.com/track/A-1001"]},
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+85230012345"}
            ]}
        ]
    })
}

/// An authentication template in Meta's shape, for InnoPaaS.
fn wa_auth() -> Value {
    json!({
        "name": "login_code",
        "language": "en",
        "category": "AUTHENTICATION",
        "components": [
            {"type": "BODY", "add_security_recommendation": true},
            {"type": "FOOTER", "code_expiration_minutes": 10},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}
        ]
    })
}

fn with(base: Value, edit: impl FnOnce(&mut Value)) -> Value {
    let mut v = base;
    edit(&mut v);
    v
}

fn header(v: &mut Value) -> &mut Value {
    &mut v["components"][0]
}
fn body(v: &mut Value) -> &mut Value {
    &mut v["components"][1]
}
fn footer(v: &mut Value) -> &mut Value {
    &mut v["components"][2]
}
fn buttons(v: &mut Value) -> &mut Value {
    &mut v["components"][3]["buttons"]
}

fn otp(v: &mut Value) -> &mut Value {
    &mut v["components"][2]["buttons"][0]
}

fn wa_cases(limits: TemplateLimits) -> impl Fn(&WhatsAppTemplateDraft) -> Result<(), FieldErrors> {
    move |d| d.validate(&limits)
}

#[test]
fn whatsapp_names_languages_and_categories() {
    use Want::*;
    let incs = vec![
        ("the base draft", wa_base(), Accepted),
        (
            "INCS's own example, numbers as examples",
            json!({
                "name": "test_api_2", "language": "en_US", "category": "MARKETING",
                "components": [
                    {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
                     "example": {"body_text": [[1, 2]]}},
                    {"type": "FOOTER", "text": "Good night"}
                ]
            }),
            Accepted,
        ),
        (
            "lowercase enum values",
            with(wa_base(), |v| {
                v["category"] = json!("marketing");
                header(v)["type"] = json!("header");
                header(v)["format"] = json!("text");
            }),
            Accepted,
        ),
        ("name at 100", with(wa_base(), |v| v["name"] = json!("a".repeat(100))), Accepted),
        (
            "name at 101",
            with(wa_base(), |v| v["name"] = json!("a".repeat(101))),
            Refused("name", "at most 100 characters, got 101"),
        ),
        (
            "name with capitals",
            with(wa_base(), |v| v["name"] = json!("Order_Update")),
            Refused("name", "lowercase letters, digits and underscores only"),
        ),
        ("name with a dash", with(wa_base(), |v| v["name"] = json!("order-update")), Refused("name", "lowercase")),
        ("empty name", with(wa_base(), |v| v["name"] = json!("")), Refused("name", "must not be empty")),
        ("language en", with(wa_base(), |v| v["language"] = json!("en")), Accepted),
        (
            "language english",
            with(wa_base(), |v| v["language"] = json!("english")),
            Refused("language", "language code"),
        ),
        ("language en-US", with(wa_base(), |v| v["language"] = json!("en-US")), Refused("language", "language code")),
        ("authentication at INCS", wa_auth(), Refused("category", "MARKETING or UTILITY")),
        ("unknown category", with(wa_base(), |v| v["category"] = json!("PROMOTION")), Unparsable("category")),
        ("unknown field", with(wa_base(), |v| v["colour"] = json!("red")), Unparsable("unknown field `colour`")),
        ("unknown component field", with(wa_base(), |v| body(v)["parameters"] = json!([])), Unparsable("parameters")),
        (
            "no body",
            with(wa_base(), |v| {
                v["components"].as_array_mut().unwrap().remove(1);
            }),
            Refused("components", "a BODY component is required"),
        ),
        ("no components", with(wa_base(), |v| v["components"] = json!([])), Refused("components", "BODY")),
        (
            "two bodies",
            with(wa_base(), |v| {
                let b = body(v).clone();
                v["components"].as_array_mut().unwrap().push(b);
            }),
            Refused("components[4].type", "only one BODY component"),
        ),
    ];
    run("whatsapp names (INCS)", incs, wa_cases(TemplateLimits::INCS));

    let innopaas = vec![
        ("name at 512", with(wa_base(), |v| v["name"] = json!("a".repeat(512))), Accepted),
        (
            "name at 513",
            with(wa_base(), |v| v["name"] = json!("a".repeat(513))),
            Refused("name", "at most 512 characters, got 513"),
        ),
        ("authentication", wa_auth(), Accepted),
    ];
    run("whatsapp names (InnoPaaS)", innopaas, wa_cases(TemplateLimits::INNOPAAS));
}

#[test]
fn whatsapp_headers() {
    use Want::*;
    let cases = vec![
        (
            "text at 60",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "TEXT", "text": long(60)});
            }),
            Accepted,
        ),
        (
            "text at 61",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "TEXT", "text": long(61)});
            }),
            Refused("components[0].text", "at most 60 characters, got 61"),
        ),
        (
            "no format",
            with(wa_base(), |v| {
                header(v).as_object_mut().unwrap().remove("format");
            }),
            Refused("components[0].format", "required"),
        ),
        (
            "text header without text",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "TEXT"});
            }),
            Refused("components[0].text", "required"),
        ),
        (
            "two placeholders",
            with(wa_base(), |v| {
                header(v)["text"] = json!("Order {{1}} {{2}}");
                header(v)["example"] = json!({"header_text": ["a", "b"]});
            }),
            Refused("components[0].text", "at most one placeholder"),
        ),
        (
            "placeholder without example",
            with(wa_base(), |v| {
                header(v).as_object_mut().unwrap().remove("example");
            }),
            Refused("components[0].example.header_text", "required: 1 example value"),
        ),
        (
            "placeholder with two examples",
            with(wa_base(), |v| {
                header(v)["example"] = json!({"header_text": ["a", "b"]});
            }),
            Refused("components[0].example.header_text", "1 example value, one per placeholder, got 2"),
        ),
        (
            "blank example",
            with(wa_base(), |v| {
                header(v)["example"] = json!({"header_text": [" "]});
            }),
            Refused("components[0].example.header_text[0]", "must not be empty"),
        ),
        (
            "example without placeholder",
            with(wa_base(), |v| header(v)["text"] = json!("Your order")),
            Refused("components[0].example.header_text", "no placeholder, so no example"),
        ),
        (
            "image with a sample",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://cdn.example.com/a.jpg"]}});
            }),
            Accepted,
        ),
        (
            "image without a sample",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "IMAGE"});
            }),
            Refused("components[0].example.header_handle", "required"),
        ),
        (
            "video with text",
            with(wa_base(), |v| {
                *header(v) =
                    json!({"type": "HEADER", "format": "VIDEO", "text": "x", "example": {"header_handle": ["h"]}});
            }),
            Refused("components[0].text", "only TEXT headers have text"),
        ),
        (
            "document with header_text",
            with(wa_base(), |v| {
                *header(v) = json!({"type": "HEADER", "format": "DOCUMENT", "example": {"header_handle": ["h"], "header_text": ["x"]}});
            }),
            Refused("components[0].example.header_text", "only TEXT headers"),
        ),
        (
            "text header with header_handle",
            with(wa_base(), |v| {
                header(v)["example"]["header_handle"] = json!(["h"]);
            }),
            Refused("components[0].example.header_handle", "only media headers"),
        ),
        (
            "header with body_text",
            with(wa_base(), |v| {
                header(v)["example"]["body_text"] = json!([["x"]]);
            }),
            Refused("components[0].example.body_text", "only BODY examples"),
        ),
        (
            "two headers",
            with(wa_base(), |v| {
                let h = header(v).clone();
                v["components"].as_array_mut().unwrap().push(h);
            }),
            Refused("components[4].type", "only one HEADER component"),
        ),
        ("location format", with(wa_base(), |v| header(v)["format"] = json!("LOCATION")), Unparsable("format")),
    ];
    run("whatsapp headers", cases, wa_cases(TemplateLimits::INCS));
}

#[test]
fn whatsapp_bodies_and_footers() {
    use Want::*;
    let cases = vec![
        ("body at 1024", with(wa_base(), move |v| *body(v) = json!({"type": "BODY", "text": long(1024)})), Accepted),
        (
            "body at 1025",
            with(wa_base(), move |v| *body(v) = json!({"type": "BODY", "text": long(1025)})),
            Refused("components[1].text", "at most 1024 characters, got 1025"),
        ),
        (
            "body without text",
            with(wa_base(), |v| *body(v) = json!({"type": "BODY"})),
            Refused("components[1].text", "required"),
        ),
        (
            "blank body",
            with(wa_base(), |v| *body(v) = json!({"type": "BODY", "text": "  "})),
            Refused("components[1].text", "must not be empty"),
        ),
        (
            "a placeholder used twice",
            with(wa_base(), |v| {
                *body(v) = json!({"type": "BODY", "text": "{{1}} and {{1}} again", "example": {"body_text": [["x"]]}});
            }),
            Accepted,
        ),
        (
            "placeholders out of order",
            with(wa_base(), |v| {
                *body(v) = json!({"type": "BODY", "text": "{{2}} then {{1}}", "example": {"body_text": [["x", "y"]]}});
            }),
            Accepted,
        ),
        (
            "a gap",
            with(wa_base(), |v| {
                *body(v) = json!({"type": "BODY", "text": "{{1}} and {{3}}", "example": {"body_text": [["x", "y"]]}});
            }),
            Refused("components[1].text", "numbered {{1}} to {{2}} without gaps"),
        ),
        (
            "starting at 2",
            with(wa_base(), |v| {
                *body(v) = json!({"type": "BODY", "text": "{{2}}", "example": {"body_text": [["x"]]}});
            }),
            Refused("components[1].text", "without gaps"),
        ),
        (
            "a named placeholder",
            with(wa_base(), |v| *body(v) = json!({"type": "BODY", "text": "Hi {{name}}"})),
            Refused("components[1].text", "placeholders are numbers from 1"),
        ),
        (
            "placeholder zero",
            with(wa_base(), |v| *body(v) = json!({"type": "BODY", "text": "Hi {{0}}"})),
            Refused("components[1].text", "got {{0}}"),
        ),
        (
            "unclosed",
            with(wa_base(), |v| *body(v) = json!({"type": "BODY", "text": "Hi {{1"})),
            Refused("components[1].text", "never closed"),
        ),
        (
            "no example",
            with(wa_base(), |v| {
                body(v).as_object_mut().unwrap().remove("example");
            }),
            Refused("components[1].example.body_text", "required: one row of 2 example values"),
        ),
        (
            "too few examples",
            with(wa_base(), |v| body(v)["example"] = json!({"body_text": [["Ann"]]})),
            Refused("components[1].example.body_text[0]", "2 example values, one per placeholder, got 1"),
        ),
        (
            "too many examples",
            with(wa_base(), |v| body(v)["example"] = json!({"body_text": [["a", "b", "c"]]})),
            Refused("components[1].example.body_text[0]", "got 3"),
        ),
        (
            "two rows",
            with(wa_base(), |v| body(v)["example"] = json!({"body_text": [["a", "b"], ["c", "d"]]})),
            Refused("components[1].example.body_text", "got 2 rows"),
        ),
        (
            "a blank example",
            with(wa_base(), |v| body(v)["example"] = json!({"body_text": [["a", ""]]})),
            Refused("components[1].example.body_text[0][1]", "must not be empty"),
        ),
        (
            "example without placeholders",
            with(wa_base(), move |v| {
                *body(v) = json!({"type": "BODY", "text": "Hello"});
                body(v)["example"] = json!({"body_text": [["x"]]});
            }),
            Refused("components[1].example.body_text", "no placeholder, so no example"),
        ),
        (
            "body with header_text",
            with(wa_base(), |v| body(v)["example"]["header_text"] = json!(["x"])),
            Refused("components[1].example.header_text", "only HEADER examples"),
        ),
        (
            "body with a format",
            with(wa_base(), |v| body(v)["format"] = json!("TEXT")),
            Refused("components[1].format", "only HEADER components have a format"),
        ),
        (
            "body with buttons",
            with(wa_base(), |v| body(v)["buttons"] = json!([])),
            Refused("components[1].buttons", "only BUTTONS components have buttons"),
        ),
        (
            "security line outside authentication",
            with(wa_base(), |v| body(v)["add_security_recommendation"] = json!(true)),
            Refused("components[1].add_security_recommendation", "AUTHENTICATION"),
        ),
        ("footer at 60", with(wa_base(), move |v| footer(v)["text"] = json!(long(60))), Accepted),
        (
            "footer at 61",
            with(wa_base(), move |v| footer(v)["text"] = json!(long(61))),
            Refused("components[2].text", "at most 60 characters, got 61"),
        ),
        (
            "footer with a placeholder",
            with(wa_base(), |v| footer(v)["text"] = json!("Bye {{1}}")),
            Refused("components[2].text", "no placeholders"),
        ),
        (
            "footer without text",
            with(wa_base(), |v| *footer(v) = json!({"type": "FOOTER"})),
            Refused("components[2].text", "required"),
        ),
        (
            "footer with an example",
            with(wa_base(), |v| footer(v)["example"] = json!({})),
            Refused("components[2].example", "no example"),
        ),
        (
            "expiry outside authentication",
            with(wa_base(), |v| footer(v)["code_expiration_minutes"] = json!(5)),
            Refused("components[2].code_expiration_minutes", "AUTHENTICATION"),
        ),
    ];
    run("whatsapp bodies and footers", cases, wa_cases(TemplateLimits::INCS));
}

#[test]
fn whatsapp_buttons() {
    use Want::*;
    let quick = |n: usize| json!(vec![json!({"type": "QUICK_REPLY", "text": "Yes"}); n]);
    let cases = vec![
        ("10 buttons", with(wa_base(), move |v| *buttons(v) = quick(10)), Accepted),
        (
            "11 buttons",
            with(wa_base(), move |v| *buttons(v) = quick(11)),
            Refused("components[3].buttons", "at most 10 buttons, got 11"),
        ),
        (
            "no buttons",
            with(wa_base(), |v| *buttons(v) = json!([])),
            Refused("components[3].buttons", "at least one button"),
        ),
        (
            "buttons missing",
            with(wa_base(), |v| v["components"][3] = json!({"type": "BUTTONS"})),
            Refused("components[3].buttons", "required"),
        ),
        (
            "text on the component",
            with(wa_base(), |v| v["components"][3]["text"] = json!("x")),
            Refused("components[3].text", "no text of their own"),
        ),
        ("label at 25", with(wa_base(), |v| buttons(v)[0]["text"] = json!(long(25))), Accepted),
        (
            "label at 26",
            with(wa_base(), |v| buttons(v)[0]["text"] = json!(long(26))),
            Refused("components[3].buttons[0].text", "at most 25 characters, got 26"),
        ),
        (
            "quick reply without a label",
            with(wa_base(), |v| buttons(v)[0] = json!({"type": "QUICK_REPLY"})),
            Refused("components[3].buttons[0].text", "required"),
        ),
        (
            "quick reply with a url",
            with(wa_base(), |v| buttons(v)[0]["url"] = json!("https://x.com")),
            Refused("components[3].buttons[0].url", "only URL buttons"),
        ),
        (
            "quick reply with an example",
            with(wa_base(), |v| buttons(v)[0]["example"] = json!("x")),
            Refused("components[3].buttons[0].example", "only URL and COPY_CODE"),
        ),
        (
            "two URL buttons",
            with(wa_base(), |v| {
                let u = buttons(v)[1].clone();
                buttons(v).as_array_mut().unwrap().push(u);
            }),
            Accepted,
        ),
        (
            "three URL buttons",
            with(wa_base(), |v| {
                let u = buttons(v)[1].clone();
                buttons(v).as_array_mut().unwrap().extend([u.clone(), u]);
            }),
            Refused("components[3].buttons", "at most 2 URL buttons, got 3"),
        ),
        (
            "URL without placeholder or example",
            with(wa_base(), |v| {
                buttons(v)[1] = json!({"type": "URL", "text": "Shop", "url": "http://shop.example.com"});
            }),
            Accepted,
        ),
        (
            "URL at 2000",
            with(wa_base(), |v| {
                let u = format!("https://shop.example.com/{}", "a".repeat(2000 - 25));
                buttons(v)[1] = json!({"type": "URL", "text": "Shop", "url": u});
            }),
            Accepted,
        ),
        (
            "URL at 2001",
            with(wa_base(), |v| {
                let u = format!("https://shop.example.com/{}", "a".repeat(2001 - 25));
                buttons(v)[1] = json!({"type": "URL", "text": "Shop", "url": u});
            }),
            Refused("components[3].buttons[1].url", "at most 2000 characters, got 2001"),
        ),
        (
            "URL not http",
            with(wa_base(), |v| buttons(v)[1]["url"] = json!("ftp://shop.example.com/{{1}}")),
            Refused("components[3].buttons[1].url", "absolute http(s) URL"),
        ),
        (
            "URL missing",
            with(wa_base(), |v| buttons(v)[1] = json!({"type": "URL", "text": "Shop"})),
            Refused("components[3].buttons[1].url", "required"),
        ),
        (
            "placeholder mid-URL",
            with(wa_base(), |v| buttons(v)[1]["url"] = json!("https://x.com/{{1}}/track")),
            Refused("components[3].buttons[1].url", "at its end"),
        ),
        (
            "placeholder without example",
            with(wa_base(), |v| {
                buttons(v)[1].as_object_mut().unwrap().remove("example");
            }),
            Refused("components[3].buttons[1].example", "required: one full example URL"),
        ),
        (
            "example that is no URL",
            with(wa_base(), |v| buttons(v)[1]["example"] = json!(["A-1001"])),
            Refused("components[3].buttons[1].example[0]", "absolute http(s) URL"),
        ),
        (
            "example without placeholder",
            with(wa_base(), |v| buttons(v)[1]["url"] = json!("https://x.com/track")),
            Refused("components[3].buttons[1].example", "no placeholder, so no example"),
        ),
        (
            "phone at 20",
            with(wa_base(), |v| buttons(v)[2]["phone_number"] = json!(format!("+{}", "8".repeat(19)))),
            Accepted,
        ),
        (
            "phone at 21",
            with(wa_base(), |v| buttons(v)[2]["phone_number"] = json!(format!("+{}", "8".repeat(20)))),
            Refused("components[3].buttons[2].phone_number", "8 to 20 characters"),
        ),
        (
            "phone with a dash",
            with(wa_base(), |v| buttons(v)[2]["phone_number"] = json!("+852-3001-2345")),
            Refused("components[3].buttons[2].phone_number", "digits"),
        ),
        (
            "phone missing",
            with(wa_base(), |v| buttons(v)[2] = json!({"type": "PHONE_NUMBER", "text": "Call"})),
            Refused("components[3].buttons[2].phone_number", "required"),
        ),
        (
            "two phone buttons",
            with(wa_base(), |v| {
                let p = buttons(v)[2].clone();
                buttons(v).as_array_mut().unwrap().push(p);
            }),
            Refused("components[3].buttons", "at most 1 PHONE_NUMBER button, got 2"),
        ),
        (
            "copy code at 15",
            with(wa_base(), |v| buttons(v)[0] = json!({"type": "COPY_CODE", "example": "A".repeat(15)})),
            Accepted,
        ),
        (
            "copy code at 16",
            with(wa_base(), |v| buttons(v)[0] = json!({"type": "COPY_CODE", "example": "A".repeat(16)})),
            Refused("components[3].buttons[0].example", "at most 15 characters, got 16"),
        ),
        (
            "copy code without example",
            with(wa_base(), |v| buttons(v)[0] = json!({"type": "COPY_CODE"})),
            Refused("components[3].buttons[0].example", "required"),
        ),
        (
            "OTP outside authentication",
            with(wa_base(), |v| buttons(v)[0] = json!({"type": "OTP", "otp_type": "COPY_CODE"})),
            Refused("components[3].buttons[0].type", "OTP buttons are for AUTHENTICATION templates"),
        ),
        (
            "otp_type on a quick reply",
            with(wa_base(), |v| buttons(v)[0]["otp_type"] = json!("COPY_CODE")),
            Refused("components[3].buttons[0].otp_type", "only OTP buttons"),
        ),
        ("unknown button type", with(wa_base(), |v| buttons(v)[0]["type"] = json!("FLOW")), Unparsable("type")),
    ];
    run("whatsapp buttons", cases, wa_cases(TemplateLimits::INCS));
}

#[test]
fn whatsapp_authentication_templates() {
    use Want::*;
    let cases = vec![
        ("Meta's shape", wa_auth(), Accepted),
        (
            "with a body text",
            with(wa_auth(), |v| v["components"][0]["text"] = json!("{{1}} is your code.")),
            Refused("components[0].example.body_text", "required"),
        ),
        (
            "with a body text and example",
            with(wa_auth(), |v| {
                v["components"][0]["text"] = json!("{{1}} is your code.");
                v["components"][0]["example"] = json!({"body_text": [["123456"]]});
            }),
            Accepted,
        ),
        ("expiry at 90", with(wa_auth(), |v| v["components"][1]["code_expiration_minutes"] = json!(90)), Accepted),
        (
            "expiry at 91",
            with(wa_auth(), |v| v["components"][1]["code_expiration_minutes"] = json!(91)),
            Refused("components[1].code_expiration_minutes", "1 to 90 minutes"),
        ),
        (
            "expiry at 0",
            with(wa_auth(), |v| v["components"][1]["code_expiration_minutes"] = json!(0)),
            Refused("components[1].code_expiration_minutes", "1 to 90"),
        ),
        (
            "footer with neither text nor expiry",
            with(wa_auth(), |v| v["components"][1] = json!({"type": "FOOTER"})),
            Refused("components[1].text", "required"),
        ),
        (
            "one tap",
            with(wa_auth(), move |v| {
                *otp(v) = json!({"type": "OTP", "otp_type": "ONE_TAP", "text": "Copy code", "autofill_text": "Autofill",
                             "package_name": "com.example.app", "signature_hash": "K8a/AINcGX7"});
            }),
            Accepted,
        ),
        (
            "one tap without a package",
            with(wa_auth(), move |v| {
                *otp(v) = json!({"type": "OTP", "otp_type": "ONE_TAP", "signature_hash": "K8a/AINcGX7"});
            }),
            Refused("components[2].buttons[0].package_name", "required for ONE_TAP"),
        ),
        (
            "zero tap without a hash",
            with(wa_auth(), move |v| {
                *otp(v) = json!({"type": "OTP", "otp_type": "ZERO_TAP", "package_name": "com.example.app"});
            }),
            Refused("components[2].buttons[0].signature_hash", "required"),
        ),
        (
            "copy code with a package",
            with(wa_auth(), move |v| otp(v)["package_name"] = json!("com.example.app")),
            Refused("components[2].buttons[0].package_name", "only ONE_TAP and ZERO_TAP"),
        ),
        (
            "no otp_type",
            with(wa_auth(), move |v| *otp(v) = json!({"type": "OTP"})),
            Refused("components[2].buttons[0].otp_type", "required"),
        ),
        (
            "OTP label at 26",
            with(wa_auth(), move |v| otp(v)["text"] = json!(long(26))),
            Refused("components[2].buttons[0].text", "at most 25"),
        ),
        (
            "a quick reply",
            with(wa_auth(), move |v| *otp(v) = json!({"type": "QUICK_REPLY", "text": "No"})),
            Refused("components[2].buttons[0].type", "OTP buttons only"),
        ),
    ];
    run("whatsapp authentication", cases, wa_cases(TemplateLimits::INNOPAAS));
}

#[test]
fn whatsapp_drafts_serialize_in_metas_shape() {
    let draft: WhatsAppTemplateDraft = serde_json::from_value(json!({
        "name": "test_api_2", "language": "en_US", "category": "marketing",
        "components": [{"type": "BODY", "text": "{{1}}, {{2}}", "example": {"body_text": [[1, "2"]]}}]
    }))
    .unwrap();
    assert_eq!(
        serde_json::to_value(&draft).unwrap(),
        json!({"name": "test_api_2", "language": "en_US", "category": "MARKETING",
               "components": [{"type": "BODY", "text": "{{1}}, {{2}}", "example": {"body_text": [["1", "2"]]}}]})
    );
    assert_eq!(draft.component(DraftComponentType::Body).and_then(|c| c.text.as_deref()), Some("{{1}}, {{2}}"));
    assert_eq!(TemplateCategory::from(WhatsAppCategory::Marketing), TemplateCategory::Marketing);
}

#[test]
fn placeholders_are_found_in_order() {
    assert_eq!(placeholders("{{2}} {{1}} {{2}}"), Ok(vec![2, 1, 2]));
    assert_eq!(placeholders("none { } }}"), Ok(vec![]));
    assert!(placeholders("{{ 1 }}").is_err());
    assert!(placeholders("{{-1}}").is_err());
    assert!(placeholders("{{+1}}").is_err());
}

// ---------------------------------------------------------------------------------------------
// RCS

fn reply(text: &str) -> Value {
    json!({"suggestionType": "reply", "text": text, "postbackData": "yes"})
}

fn rcs_text() -> Value {
    json!({
        "name": "test_template",
        "type": "text",
        "category": "TRANSACTION",
        "content": {
            "textMessage": "Dear [name], your order [order_id] has been shipped.",
            "suggestions": [reply("Thanks")]
        }
    })
}

fn card() -> Value {
    json!({
        "cardTitle": "Spring sale",
        "cardDescription": "Up to 50% off, this week only.",
        "mediaUrl": "https://cdn.example.com/sale.jpg",
        "thumbnailUrl": "https://cdn.example.com/sale-thumb.jpg",
        "suggestions": [
            {"suggestionType": "url_action", "text": "Shop now", "postbackData": "shop", "url": "https://shop.example.com"},
            {"suggestionType": "dialer_action", "text": "Call us", "postbackData": "call", "phoneNumber": "+919702012345"}
        ]
    })
}

fn rcs_richcard() -> Value {
    json!({"name": "spring_sale", "type": "richcard", "category": "PROMOTION",
           "content": {"orientation": "VERTICAL", "height": "MEDIUM", "standaloneCard": card()}})
}

fn rcs_carousel(cards: usize) -> Value {
    json!({"name": "spring_range", "type": "carousel",
           "content": {"height": "SHORT", "width": "MEDIUM", "carouselCard": vec![card(); cards]}})
}

fn sc(v: &mut Value) -> &mut Value {
    &mut v["content"]["standaloneCard"]
}

fn rcs_validate(d: &RcsTemplateDraft) -> Result<(), FieldErrors> {
    d.validate()
}

#[test]
fn rcs_text_templates() {
    use Want::*;
    let cases = vec![
        ("the documents' example", rcs_text(), Accepted),
        (
            "no category",
            with(rcs_text(), |v| {
                v.as_object_mut().unwrap().remove("category");
            }),
            Accepted,
        ),
        ("name at 25", with(rcs_text(), |v| v["name"] = json!("A".repeat(25))), Accepted),
        (
            "name at 26",
            with(rcs_text(), |v| v["name"] = json!("A".repeat(26))),
            Refused("name", "at most 25 characters, got 26"),
        ),
        (
            "name with a dash",
            with(rcs_text(), |v| v["name"] = json!("test-template")),
            Refused("name", "letters, digits and underscores"),
        ),
        ("empty name", with(rcs_text(), |v| v["name"] = json!("")), Refused("name", "must not be empty")),
        ("text at 2500", with(rcs_text(), |v| v["content"]["textMessage"] = json!(long(2500))), Accepted),
        (
            "text at 2501",
            with(rcs_text(), |v| v["content"]["textMessage"] = json!(long(2501))),
            Refused("content.textMessage", "at most 2500 characters, got 2501"),
        ),
        ("no text", with(rcs_text(), |v| v["content"] = json!({})), Refused("content.textMessage", "required")),
        ("11 suggestions", with(rcs_text(), |v| v["content"]["suggestions"] = json!(vec![reply("a"); 11])), Accepted),
        (
            "12 suggestions",
            with(rcs_text(), |v| v["content"]["suggestions"] = json!(vec![reply("a"); 12])),
            Refused("content.suggestions", "at most 11 suggestions, got 12"),
        ),
        (
            "suggestion text at 25",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["text"] = json!(long(25))),
            Accepted,
        ),
        (
            "suggestion text at 26",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["text"] = json!(long(26))),
            Refused("content.suggestions[0].text", "at most 25 characters, got 26"),
        ),
        (
            "postback at 120",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["postbackData"] = json!(long(120))),
            Accepted,
        ),
        (
            "postback at 121",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["postbackData"] = json!(long(121))),
            Refused("content.suggestions[0].postbackData", "at most 120 characters, got 121"),
        ),
        (
            "no postback",
            with(rcs_text(), |v| v["content"]["suggestions"][0] = json!({"text": "Hi"})),
            Refused("content.suggestions[0].postbackData", "required"),
        ),
        (
            "no suggestion text",
            with(rcs_text(), |v| v["content"]["suggestions"][0] = json!({"postbackData": "x"})),
            Refused("content.suggestions[0].text", "required"),
        ),
        (
            "odd suggestion type",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["suggestionType"] = json!("Reply!")),
            Refused("content.suggestions[0].suggestionType", "suggestion type"),
        ),
        (
            "url action without url",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["suggestionType"] = json!("url_action")),
            Refused("content.suggestions[0].url", "required for url_action"),
        ),
        (
            "dialer without number",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["suggestionType"] = json!("dialer_action")),
            Refused("content.suggestions[0].phoneNumber", "required for dialer_action"),
        ),
        (
            "number without +",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["phoneNumber"] = json!("919702012345")),
            Refused("content.suggestions[0].phoneNumber", "international format"),
        ),
        (
            "url not http",
            with(rcs_text(), |v| v["content"]["suggestions"][0]["url"] = json!("brand.com")),
            Refused("content.suggestions[0].url", "absolute http(s) URL"),
        ),
        (
            "a card on a text template",
            with(rcs_text(), |v| v["content"]["standaloneCard"] = card()),
            Refused("content.standaloneCard", "text templates have no standaloneCard"),
        ),
        (
            "a height on a text template",
            with(rcs_text(), |v| v["content"]["height"] = json!("TALL")),
            Refused("content.height", "text templates have no height"),
        ),
        ("unknown type", with(rcs_text(), |v| v["type"] = json!("video")), Unparsable("type")),
        ("unknown category", with(rcs_text(), |v| v["category"] = json!("MARKETING")), Unparsable("category")),
        ("unknown content field", with(rcs_text(), |v| v["content"]["message"] = json!("x")), Unparsable("message")),
    ];
    run("rcs text", cases, rcs_validate);
}

#[test]
fn rcs_richcards_and_carousels() {
    use Want::*;
    let cases = vec![
        ("a richcard", rcs_richcard(), Accepted),
        (
            "lowercase layout values",
            with(rcs_richcard(), |v| {
                v["content"]["orientation"] = json!("horizontal");
                v["content"]["height"] = json!("tall");
            }),
            Accepted,
        ),
        ("title at 200", with(rcs_richcard(), move |v| sc(v)["cardTitle"] = json!(long(200))), Accepted),
        (
            "title at 201",
            with(rcs_richcard(), move |v| sc(v)["cardTitle"] = json!(long(201))),
            Refused("content.standaloneCard.cardTitle", "at most 200 characters, got 201"),
        ),
        ("description at 2000", with(rcs_richcard(), move |v| sc(v)["cardDescription"] = json!(long(2000))), Accepted),
        (
            "description at 2001",
            with(rcs_richcard(), move |v| sc(v)["cardDescription"] = json!(long(2001))),
            Refused("content.standaloneCard.cardDescription", "at most 2000 characters, got 2001"),
        ),
        ("4 suggestions", with(rcs_richcard(), move |v| sc(v)["suggestions"] = json!(vec![reply("a"); 4])), Accepted),
        (
            "5 suggestions",
            with(rcs_richcard(), move |v| sc(v)["suggestions"] = json!(vec![reply("a"); 5])),
            Refused("content.standaloneCard.suggestions", "at most 4 suggestions, got 5"),
        ),
        (
            "a bad suggestion",
            with(rcs_richcard(), move |v| sc(v)["suggestions"][1]["phoneNumber"] = json!("+12")),
            Refused("content.standaloneCard.suggestions[1].phoneNumber", "international format"),
        ),
        (
            "media that is no URL",
            with(rcs_richcard(), move |v| sc(v)["mediaUrl"] = json!("sale.jpg")),
            Refused("content.standaloneCard.mediaUrl", "absolute http(s) URL"),
        ),
        (
            "thumbnail that is no URL",
            with(rcs_richcard(), move |v| sc(v)["thumbnailUrl"] = json!("thumb")),
            Refused("content.standaloneCard.thumbnailUrl", "absolute http(s) URL"),
        ),
        (
            "an empty card",
            with(rcs_richcard(), move |v| *sc(v) = json!({})),
            Refused("content.standaloneCard", "a card needs a cardTitle, a cardDescription or a mediaUrl"),
        ),
        (
            "media only",
            with(rcs_richcard(), move |v| *sc(v) = json!({"mediaUrl": "https://cdn.example.com/a.mp4"})),
            Accepted,
        ),
        (
            "no card",
            with(rcs_richcard(), |v| {
                v["content"].as_object_mut().unwrap().remove("standaloneCard");
            }),
            Refused("content.standaloneCard", "required for richcard templates"),
        ),
        (
            "a diagonal card",
            with(rcs_richcard(), |v| v["content"]["orientation"] = json!("DIAGONAL")),
            Refused("content.orientation", "one of VERTICAL, HORIZONTAL"),
        ),
        (
            "a huge card",
            with(rcs_richcard(), |v| v["content"]["height"] = json!("HUGE")),
            Refused("content.height", "one of SHORT, MEDIUM, TALL"),
        ),
        (
            "richcard with a text",
            with(rcs_richcard(), |v| v["content"]["textMessage"] = json!("x")),
            Refused("content.textMessage", "richcard templates have no textMessage"),
        ),
        (
            "richcard with top-level suggestions",
            with(rcs_richcard(), |v| v["content"]["suggestions"] = json!([reply("a")])),
            Refused("content.suggestions", "standaloneCard.suggestions"),
        ),
        (
            "richcard with a width",
            with(rcs_richcard(), |v| v["content"]["width"] = json!("SMALL")),
            Refused("content.width", "richcard templates have no width"),
        ),
        ("2 cards", rcs_carousel(2), Accepted),
        ("10 cards", rcs_carousel(10), Accepted),
        ("1 card", rcs_carousel(1), Refused("content.carouselCard", "2 to 10 cards, got 1")),
        ("11 cards", rcs_carousel(11), Refused("content.carouselCard", "2 to 10 cards, got 11")),
        (
            "no cards",
            with(rcs_carousel(2), |v| {
                v["content"].as_object_mut().unwrap().remove("carouselCard");
            }),
            Refused("content.carouselCard", "required for carousel templates"),
        ),
        (
            "a card with 5 suggestions",
            with(rcs_carousel(3), |v| v["content"]["carouselCard"][1]["suggestions"] = json!(vec![reply("a"); 5])),
            Refused("content.carouselCard[1].suggestions", "at most 4 suggestions, got 5"),
        ),
        (
            "a card title at 201",
            with(rcs_carousel(2), |v| v["content"]["carouselCard"][0]["cardTitle"] = json!(long(201))),
            Refused("content.carouselCard[0].cardTitle", "at most 200"),
        ),
        (
            "a wide carousel",
            with(rcs_carousel(2), |v| v["content"]["width"] = json!("LARGE")),
            Refused("content.width", "one of SMALL, MEDIUM"),
        ),
        (
            "a carousel with an orientation",
            with(rcs_carousel(2), |v| v["content"]["orientation"] = json!("VERTICAL")),
            Refused("content.orientation", "carousel templates have no orientation"),
        ),
        (
            "a carousel with a standalone card",
            with(rcs_carousel(2), |v| v["content"]["standaloneCard"] = card()),
            Refused("content.standaloneCard", "carousel templates have no standaloneCard"),
        ),
    ];
    run("rcs cards", cases, rcs_validate);
}

#[test]
fn rcs_drafts_serialize_in_incs_shape() {
    let v = rcs_richcard();
    let draft: RcsTemplateDraft = serde_json::from_value(v.clone()).unwrap();
    assert_eq!(serde_json::to_value(&draft).unwrap(), v);
    assert_eq!(draft.kind.as_str(), "richcard");
}
