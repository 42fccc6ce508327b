//! Every kind of INCS answer, and the class the engine gets for it (PROVIDERS.md §1.1).

use std::time::{Duration, Instant, SystemTime};

use gateway_core::meta::PAIR_RATE_DELAY;
use gateway_core::{Channel, ErrorClass, MessageId, OutboundMessage, Provider, RejectScope, ThrottleScope};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{account, account_with, config, message, whatsapp_text, CODE};

const CONTENT: ErrorClass = ErrorClass::Rejected(RejectScope::Content);
const ACCOUNT: ErrorClass = ErrorClass::Rejected(RejectScope::Account);
const TRANSIENT: ErrorClass = ErrorClass::Transient;

fn lane(retry_after: Option<Duration>) -> ErrorClass {
    ErrorClass::Throttled { retry_after, scope: ThrottleScope::Lane }
}

fn secs(s: u64) -> Option<Duration> {
    Some(Duration::from_secs(s))
}

enum Body {
    Json(Value),
    Raw(&'static str, &'static str),
}

#[derive(Debug, PartialEq)]
struct Failure {
    class: ErrorClass,
    http_status: Option<u16>,
    provider_code: Option<String>,
    meta_code: Option<u32>,
    outcome_unknown: bool,
}

enum Expect {
    Sent(&'static str),
    Failed { failure: Failure, title: &'static str },
}

struct Case {
    name: &'static str,
    channel: Channel,
    http: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    expect: Expect,
}

fn envelope(code: u64, message: &str) -> Body {
    Body::Json(json!({"status": "error", "code": code, "message": message, "data": {}, "error": {}}))
}

fn failed(
    class: ErrorClass,
    http_status: u16,
    provider_code: Option<&'static str>,
    meta_code: Option<u32>,
    title: &'static str,
) -> Expect {
    Expect::Failed {
        failure: Failure {
            class,
            http_status: Some(http_status),
            provider_code: provider_code.map(String::from),
            meta_code,
            outcome_unknown: false,
        },
        title,
    }
}

fn unknown_outcome(mut e: Expect) -> Expect {
    if let Expect::Failed { failure, .. } = &mut e {
        failure.outcome_unknown = true;
    }
    e
}

fn sample(channel: Channel) -> OutboundMessage {
    match channel {
        Channel::Whatsapp => whatsapp_text(),
        Channel::Viber => {
            message(channel, &json!({"to": "85268411234", "type": "text", "text": "Hello"})).expect("viber")
        }
        Channel::Rcs => message(channel, &json!({"to": "85268411234", "type": "text", "text": "Hello"})).expect("rcs"),
    }
}

fn cases() -> Vec<Case> {
    use Channel::*;
    let http_date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let long = "x".repeat(500);
    let long: &'static str = Box::leak(long.into_boxed_str());
    let case = |name, channel, http, headers: Vec<(&'static str, String)>, body, expect| Case {
        name,
        channel,
        http,
        headers,
        body,
        expect,
    };
    vec![
        // The documents' own answers.
        case(
            "WhatsApp success example",
            Whatsapp,
            200,
            vec![],
            Body::Json(json!({"status": "success", "code": 200, "message": "",
                "data": {"msg_id": "wamid.HBgLODUyNjg0MTUwMjYVAgARGBIyMUQ4RjA5MTY1NUJERjE3NjYA"}, "error": {}})),
            Expect::Sent("wamid.HBgLODUyNjg0MTUwMjYVAgARGBIyMUQ4RjA5MTY1NUJERjE3NjYA"),
        ),
        case(
            "Viber success example",
            Viber,
            200,
            vec![],
            Body::Json(json!({"status": "success", "code": 200, "message": "",
                "data": {"msg_id": "02cda2a2-2cb2-3c47-861c-ab91f5c9872e"}, "error": {}})),
            Expect::Sent("02cda2a2-2cb2-3c47-861c-ab91f5c9872e"),
        ),
        case(
            "RCS success example",
            Rcs,
            200,
            vec![],
            Body::Json(json!({"status": "success", "code": 200, "message": "",
                "data": {"msg_id": "019b8d8e-c4e7-73fe-b333-470c51e61f9f"}, "error": {}})),
            Expect::Sent("019b8d8e-c4e7-73fe-b333-470c51e61f9f"),
        ),
        case(
            "WhatsApp failure example: 10002 (#132012)",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "(#132012) Parameter format does not match format in the created template"),
            failed(CONTENT, 200, Some("10002"), Some(132012), "(#132012) Parameter format does not match format in the created template"),
        ),
        case(
            "Viber failure example: 10003",
            Viber,
            200,
            vec![],
            // The document writes the dash as \u2013.
            Body::Raw(
                r#"{"status": "error", "code": 10003, "message": "Message failed \u2013 detailed reason unknown", "data": {}, "error": {}}"#,
                "application/json",
            ),
            failed(CONTENT, 200, Some("10003"), None, "Message failed – detailed reason unknown"),
        ),
        case(
            "RCS failure example: 10004",
            Rcs,
            200,
            vec![],
            envelope(10004, "Template with the code [api_4_standalone_image] and bot [Wk3rZWBx435KKATY] received with insufficient custom params"),
            failed(CONTENT, 200, Some("10004"), None, "Template with the code [api_4_standalone_image] and bot [Wk3rZWBx435KKATY] received with insufficient custom params"),
        ),
        // Provider codes.
        case(
            "10001 certification code invalid",
            Whatsapp,
            401,
            vec![],
            envelope(10001, "Certification code invalid"),
            failed(ACCOUNT, 401, Some("10001"), None, "Certification code invalid"),
        ),
        case(
            "HTTP 200 with an error body is an error",
            Whatsapp,
            200,
            vec![],
            envelope(10001, "Certification code invalid"),
            failed(ACCOUNT, 200, Some("10001"), None, "Certification code invalid"),
        ),
        case(
            "10002 (#130429) throughput: the lane pauses",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "(#130429) Rate limit hit"),
            failed(lane(None), 200, Some("10002"), Some(130429), "(#130429) Rate limit hit"),
        ),
        case(
            "10002 (#130429) with Retry-After",
            Whatsapp,
            429,
            vec![("retry-after", "5".into())],
            envelope(10002, "(#130429) Rate limit hit"),
            failed(lane(secs(5)), 429, Some("10002"), Some(130429), "(#130429) Rate limit hit"),
        ),
        case(
            "10002 (#131056) pair rate: only the recipient waits",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
            failed(
                ErrorClass::Throttled { retry_after: Some(PAIR_RATE_DELAY), scope: ThrottleScope::Recipient },
                200,
                Some("10002"),
                Some(131056),
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            ),
        ),
        case(
            "10002 (#131000) Meta transient",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "(#131000) Something went wrong"),
            failed(TRANSIENT, 200, Some("10002"), Some(131000), "(#131000) Something went wrong"),
        ),
        case(
            "10002 (#131031) account locked",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "(#131031) Business Account locked"),
            failed(ACCOUNT, 200, Some("10002"), Some(131031), "(#131031) Business Account locked"),
        ),
        case(
            "10002 without a Meta code",
            Whatsapp,
            200,
            vec![],
            envelope(10002, "WhatsApp API error"),
            failed(CONTENT, 200, Some("10002"), None, "WhatsApp API error"),
        ),
        case(
            "400 general api error",
            Whatsapp,
            400,
            vec![],
            envelope(400, "General api error"),
            failed(CONTENT, 400, Some("400"), None, "General api error"),
        ),
        case(
            "404 not found",
            Whatsapp,
            404,
            vec![],
            envelope(404, "Not found"),
            failed(CONTENT, 404, Some("404"), None, "Not found"),
        ),
        case(
            "422 parameter error",
            Whatsapp,
            422,
            vec![],
            envelope(422, "The phone number is invalid."),
            failed(CONTENT, 422, Some("422"), None, "The phone number is invalid."),
        ),
        case(
            "422 with the code as a string",
            Whatsapp,
            422,
            vec![],
            Body::Json(json!({"status": "error", "code": "422", "message": "The phone number is invalid."})),
            failed(CONTENT, 422, Some("422"), None, "The phone number is invalid."),
        ),
        case(
            "429 with Retry-After: 2",
            Whatsapp,
            429,
            vec![("retry-after", "2".into())],
            envelope(429, "Too Many Attempts."),
            failed(lane(secs(2)), 429, Some("429"), None, "Too Many Attempts."),
        ),
        case(
            "429 with an HTTP-date 30 s ahead",
            Whatsapp,
            429,
            vec![("retry-after", http_date)],
            envelope(429, "Too Many Attempts."),
            failed(lane(secs(30)), 429, Some("429"), None, "Too Many Attempts."),
        ),
        case(
            "429 without Retry-After",
            Whatsapp,
            429,
            vec![],
            envelope(429, "Too Many Attempts."),
            failed(lane(None), 429, Some("429"), None, "Too Many Attempts."),
        ),
        case(
            "429 code in an HTTP 200",
            Whatsapp,
            200,
            vec![],
            envelope(429, "Too Many Attempts."),
            failed(lane(None), 200, Some("429"), None, "Too Many Attempts."),
        ),
        case(
            "500 JSON",
            Whatsapp,
            500,
            vec![],
            envelope(500, "Server Error"),
            failed(TRANSIENT, 500, Some("500"), None, "Server Error"),
        ),
        case(
            "an empty message gets a title from the code",
            Whatsapp,
            500,
            vec![],
            envelope(500, ""),
            failed(TRANSIENT, 500, Some("500"), None, "INCS code 500: server error"),
        ),
        case(
            "a long message is cut to 200 characters",
            Whatsapp,
            422,
            vec![],
            envelope(422, long),
            failed(CONTENT, 422, Some("422"), None, &long[..200]),
        ),
        case(
            "an undocumented code in an HTTP 503",
            Whatsapp,
            503,
            vec![],
            envelope(12345, "Maintenance"),
            failed(TRANSIENT, 503, Some("12345"), None, "Maintenance"),
        ),
        case(
            "an undocumented code in an HTTP 200",
            Whatsapp,
            200,
            vec![],
            envelope(12345, "Something else"),
            failed(CONTENT, 200, Some("12345"), None, "Something else"),
        ),
        // Bodies that are not an envelope.
        case(
            "502 HTML from a proxy",
            Whatsapp,
            502,
            vec![],
            Body::Raw("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
            failed(TRANSIENT, 502, None, None, "INCS answered HTTP 502 without a JSON envelope"),
        ),
        case(
            "200 HTML: the outcome is unknown",
            Whatsapp,
            200,
            vec![],
            Body::Raw("<html><body>OK</body></html>", "text/html"),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "INCS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "200 with an empty body",
            Whatsapp,
            200,
            vec![],
            Body::Raw("", "application/json"),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "INCS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "200 JSON that is not an envelope",
            Whatsapp,
            200,
            vec![],
            Body::Json(json!({"ok": true})),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "INCS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "429 plain text with Retry-After",
            Whatsapp,
            429,
            vec![("retry-after", "7".into())],
            Body::Raw("Too Many Requests", "text/plain"),
            failed(lane(secs(7)), 429, None, None, "INCS answered HTTP 429 without a JSON envelope"),
        ),
        case(
            "404 HTML",
            Whatsapp,
            404,
            vec![],
            Body::Raw("<html>Not Found</html>", "text/html"),
            failed(CONTENT, 404, None, None, "INCS answered HTTP 404 without a JSON envelope"),
        ),
        case(
            "403 HTML from a firewall",
            Whatsapp,
            403,
            vec![],
            Body::Raw("<html>Forbidden</html>", "text/html"),
            failed(ACCOUNT, 403, None, None, "INCS answered HTTP 403 without a JSON envelope"),
        ),
        case(
            "408 HTML",
            Whatsapp,
            408,
            vec![],
            Body::Raw("<html>Request Timeout</html>", "text/html"),
            failed(TRANSIENT, 408, None, None, "INCS answered HTTP 408 without a JSON envelope"),
        ),
        case(
            "success without msg_id",
            Whatsapp,
            200,
            vec![],
            Body::Json(json!({"status": "success", "code": 200, "message": "", "data": {}, "error": {}})),
            unknown_outcome(failed(TRANSIENT, 200, Some("200"), None, "INCS answered code 200 without data.msg_id")),
        ),
    ]
}

/// Equal, except that a retry-after computed from an HTTP-date may be a second or two short.
fn same_class(got: ErrorClass, want: ErrorClass) -> bool {
    match (got, want) {
        (
            ErrorClass::Throttled { retry_after: Some(g), scope: gs },
            ErrorClass::Throttled { retry_after: Some(w), scope: ws },
        ) => gs == ws && g <= w && g + Duration::from_secs(2) >= w,
        _ => got == want,
    }
}

#[tokio::test]
async fn answers_are_classified() {
    let cases = cases();
    let mut failures = Vec::new();
    for case in &cases {
        let server = MockServer::start().await;
        let mut response = ResponseTemplate::new(case.http);
        for (name, value) in &case.headers {
            response = response.insert_header(*name, value.as_str());
        }
        response = match &case.body {
            Body::Json(v) => response.set_body_json(v),
            Body::Raw(text, mime) => response.set_body_raw(text.as_bytes().to_vec(), mime),
        };
        Mock::given(method("POST"))
            .and(path(format!("/external/messages/{}", case.channel.as_str())))
            .respond_with(response)
            .mount(&server)
            .await;
        let result = account(&server).send(&MessageId::new(), &sample(case.channel)).await;
        if format!("{result:?}").contains(CODE) {
            failures.push(format!("{}: the certification code leaked into {result:?}", case.name));
        }
        match (&case.expect, result) {
            (Expect::Sent(id), Ok(receipt)) if receipt.provider_message_id == *id => {}
            (Expect::Failed { failure, title }, Err(err)) => {
                let got = Failure {
                    class: err.class,
                    http_status: err.http_status,
                    provider_code: err.provider_code.clone(),
                    meta_code: err.meta_code,
                    outcome_unknown: err.outcome_unknown,
                };
                let fields_match = same_class(got.class, failure.class)
                    && (got.http_status, &got.provider_code, got.meta_code, got.outcome_unknown)
                        == (failure.http_status, &failure.provider_code, failure.meta_code, failure.outcome_unknown);
                let title_matches = err.title.strip_suffix('…').unwrap_or(&err.title) == *title;
                if !fields_match || !title_matches {
                    failures.push(format!(
                        "{}:\n    got  {got:?} title {:?}\n    want {failure:?} title {title:?}",
                        case.name, err.title
                    ));
                }
            }
            (_, got) => failures.push(format!("{}: got {got:?}", case.name)),
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n{}", failures.len(), cases.len(), failures.join("\n"));
}

#[tokio::test]
async fn a_timeout_is_transient_and_the_outcome_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(crate::support::success("wamid.late").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut c = config(&server.uri());
    c.timeout_ms = 200;
    let started = Instant::now();
    let err = account_with(c).send(&MessageId::new(), &whatsapp_text()).await.expect_err("timed out");
    assert!(started.elapsed() < Duration::from_secs(3), "the timeout did not apply: {:?}", started.elapsed());
    assert_eq!(err.class, TRANSIENT, "{err:?}");
    assert!(err.outcome_unknown, "{err:?}");
    assert_eq!(err.http_status, None);
    assert!(err.title.contains("200 ms"), "{err:?}");
}

#[tokio::test]
async fn connection_refused_is_transient_and_nothing_was_sent() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        listener.local_addr().expect("addr").port()
    };
    let account = account_with(config(&format!("http://127.0.0.1:{port}")));
    let err = account.send(&MessageId::new(), &whatsapp_text()).await.expect_err("refused");
    assert_eq!(err.class, TRANSIENT, "{err:?}");
    assert!(!err.outcome_unknown, "{err:?}");
    assert_eq!(err.http_status, None);
    assert!(!format!("{err:?}").contains(CODE));
}
