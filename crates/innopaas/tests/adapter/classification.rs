//! Every kind of InnoPaaS answer, and the class the engine gets for it (PROVIDERS.md §2.1, §2.5).

use std::time::{Duration, Instant, SystemTime};

use gateway_core::meta::PAIR_RATE_DELAY;
use gateway_core::{ErrorClass, MessageId, Provider, RejectScope, ThrottleScope};
use serde_json::{json, Value};
use wiremock::matchers::{method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{
    account, account_with, config, message, mmlite_config, text, whatsapp, APP_KEY, MMLITE_PATH, TOKEN,
};

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
    /// Success with no id in the answer: the receipt carries our `uid`, which webhooks echo.
    SentAsUid,
    Failed {
        failure: Failure,
        title: &'static str,
    },
}

struct Case {
    name: &'static str,
    http: u16,
    headers: Vec<(&'static str, String)>,
    body: Body,
    expect: Expect,
}

/// InnoPaaS's error envelope: a string code, `success: false`, `data: null`.
fn envelope(code: &str, message: &str) -> Body {
    Body::Json(json!({"code": code, "success": false, "message": message, "data": null}))
}

fn ok(data: Value) -> Body {
    Body::Json(json!({"code": "0", "success": true, "message": "Success", "data": data}))
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

fn cases() -> Vec<Case> {
    let http_date = httpdate::fmt_http_date(SystemTime::now() + Duration::from_secs(30));
    let long: &'static str = Box::leak("x".repeat(500).into_boxed_str());
    let case =
        |name, http, headers: Vec<(&'static str, String)>, body, expect| Case { name, http, headers, body, expect };
    let mut cases = vec![
        // Success shapes (PROVIDERS.md §2.2: `data` a string id, or an object).
        case("success, data a string id", 200, vec![], ok(json!("1778123456789012")), Expect::Sent("1778123456789012")),
        case(
            "success, data a numeric id",
            200,
            vec![],
            ok(json!(1778123456789012_u64)),
            Expect::Sent("1778123456789012"),
        ),
        case("success, data.messageId", 200, vec![], ok(json!({"messageId": "m-1"})), Expect::Sent("m-1")),
        case("success, data.msgId", 200, vec![], ok(json!({"msgId": "m-2"})), Expect::Sent("m-2")),
        case("success, data.id", 200, vec![], ok(json!({"id": "m-3"})), Expect::Sent("m-3")),
        case(
            "success with a numeric code 0",
            200,
            vec![],
            Body::Json(json!({"code": 0, "success": true, "message": "Success", "data": "m-4"})),
            Expect::Sent("m-4"),
        ),
        case("success without data: the uid names the message", 200, vec![], ok(Value::Null), Expect::SentAsUid),
        case("success with an empty id", 200, vec![], ok(json!("")), Expect::SentAsUid),
        case("success with an object holding no id", 200, vec![], ok(json!({"batch": "b-1"})), Expect::SentAsUid),
        case(
            "code 0 with success false: the outcome is unknown",
            200,
            vec![],
            Body::Json(json!({"code": "0", "success": false, "message": "Success", "data": "m-5"})),
            unknown_outcome(failed(TRANSIENT, 200, Some("0"), None, "InnoPaaS answered code 0 without success: true")),
        ),
        // Undocumented codes.
        case(
            "an undocumented code in an HTTP 200",
            200,
            vec![],
            envelope("999", "Template not approved"),
            failed(CONTENT, 200, Some("999"), None, "Template not approved"),
        ),
        case(
            "an undocumented code in an HTTP 429 with Retry-After: 2",
            429,
            vec![("retry-after", "2".into())],
            envelope("999", "Too many requests"),
            failed(lane(secs(2)), 429, Some("999"), None, "Too many requests"),
        ),
        case(
            "an undocumented code in an HTTP 429 with an HTTP-date 30 s ahead",
            429,
            vec![("retry-after", http_date)],
            envelope("999", "Too many requests"),
            failed(lane(secs(30)), 429, Some("999"), None, "Too many requests"),
        ),
        case(
            "an undocumented code in an HTTP 429 without Retry-After",
            429,
            vec![],
            envelope("999", "Too many requests"),
            failed(lane(None), 429, Some("999"), None, "Too many requests"),
        ),
        case(
            "an undocumented code in an HTTP 500",
            500,
            vec![],
            envelope("999", "System busy"),
            failed(TRANSIENT, 500, Some("999"), None, "System busy"),
        ),
        case(
            "an undocumented code in an HTTP 503",
            503,
            vec![],
            envelope("999", "Maintenance"),
            failed(TRANSIENT, 503, Some("999"), None, "Maintenance"),
        ),
        case(
            "code 500 in an HTTP 200",
            200,
            vec![],
            envelope("500", "Internal Server Error"),
            failed(TRANSIENT, 200, Some("500"), None, "Internal Server Error"),
        ),
        case(
            "code 429 in an HTTP 200",
            200,
            vec![],
            envelope("429", "Too Many Requests"),
            failed(lane(None), 200, Some("429"), None, "Too Many Requests"),
        ),
        // Meta codes in the message.
        case(
            "(#130429) throughput: the lane pauses",
            200,
            vec![],
            envelope("999", "(#130429) Rate limit hit"),
            failed(lane(None), 200, Some("999"), Some(130429), "(#130429) Rate limit hit"),
        ),
        case(
            "(#130429) with Retry-After: 5",
            200,
            vec![("retry-after", "5".into())],
            envelope("999", "(#130429) Rate limit hit"),
            failed(lane(secs(5)), 200, Some("999"), Some(130429), "(#130429) Rate limit hit"),
        ),
        case(
            "(#131056) pair rate: only the recipient waits, even in an HTTP 429",
            429,
            vec![("retry-after", "1".into())],
            envelope("999", "(#131056) (Business Account, Consumer Account) pair rate limit hit"),
            failed(
                ErrorClass::Throttled { retry_after: Some(PAIR_RATE_DELAY), scope: ThrottleScope::Recipient },
                429,
                Some("999"),
                Some(131056),
                "(#131056) (Business Account, Consumer Account) pair rate limit hit",
            ),
        ),
        case(
            "(#131000) Meta transient",
            200,
            vec![],
            envelope("999", "(#131000) Something went wrong"),
            failed(TRANSIENT, 200, Some("999"), Some(131000), "(#131000) Something went wrong"),
        ),
        case(
            "(#131026) undeliverable",
            200,
            vec![],
            envelope("999", "(#131026) Message undeliverable"),
            failed(CONTENT, 200, Some("999"), Some(131026), "(#131026) Message undeliverable"),
        ),
        case(
            "(#131031) account locked",
            200,
            vec![],
            envelope("999", "(#131031) Business Account locked"),
            failed(ACCOUNT, 200, Some("999"), Some(131031), "(#131031) Business Account locked"),
        ),
        case(
            "(#132001) in a documented content code keeps the code's class",
            200,
            vec![],
            envelope("108", "(#132001) Template name does not exist in the translation"),
            failed(
                CONTENT,
                200,
                Some("108"),
                Some(132001),
                "(#132001) Template name does not exist in the translation",
            ),
        ),
        // Titles.
        case(
            "an empty message gets a title from the code",
            200,
            vec![],
            envelope("110", ""),
            failed(ACCOUNT, 200, Some("110"), None, "InnoPaaS code 110: insufficient balance"),
        ),
        case(
            "a long message is cut to 200 characters",
            200,
            vec![],
            envelope("109", long),
            failed(CONTENT, 200, Some("109"), None, &long[..200]),
        ),
        case(
            "a documented code wins over the HTTP status",
            401,
            vec![],
            envelope("102", "Authentication failed"),
            failed(ACCOUNT, 401, Some("102"), None, "Authentication failed"),
        ),
        // Bodies that are not an envelope.
        case(
            "502 HTML from a proxy",
            502,
            vec![],
            Body::Raw("<html><body><h1>502 Bad Gateway</h1></body></html>", "text/html"),
            failed(TRANSIENT, 502, None, None, "InnoPaaS answered HTTP 502 without a JSON envelope"),
        ),
        case(
            "200 HTML: the outcome is unknown",
            200,
            vec![],
            Body::Raw("<html><body>OK</body></html>", "text/html"),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "InnoPaaS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "200 with an empty body",
            200,
            vec![],
            Body::Raw("", "application/json"),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "InnoPaaS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "200 JSON that is not an envelope",
            200,
            vec![],
            Body::Json(json!({"ok": true})),
            unknown_outcome(failed(TRANSIENT, 200, None, None, "InnoPaaS answered HTTP 200 without a JSON envelope")),
        ),
        case(
            "429 plain text with Retry-After",
            429,
            vec![("retry-after", "7".into())],
            Body::Raw("Too Many Requests", "text/plain"),
            failed(lane(secs(7)), 429, None, None, "InnoPaaS answered HTTP 429 without a JSON envelope"),
        ),
        case(
            "404 HTML",
            404,
            vec![],
            Body::Raw("<html>Not Found</html>", "text/html"),
            failed(CONTENT, 404, None, None, "InnoPaaS answered HTTP 404 without a JSON envelope"),
        ),
        case(
            "403 HTML from a firewall",
            403,
            vec![],
            Body::Raw("<html>Forbidden</html>", "text/html"),
            failed(ACCOUNT, 403, None, None, "InnoPaaS answered HTTP 403 without a JSON envelope"),
        ),
        case(
            "408 HTML",
            408,
            vec![],
            Body::Raw("<html>Request Timeout</html>", "text/html"),
            failed(TRANSIENT, 408, None, None, "InnoPaaS answered HTTP 408 without a JSON envelope"),
        ),
    ];
    // Every code of PROVIDERS.md §2.5, answered with HTTP 200 as InnoPaaS does.
    for (code, class, message) in [
        ("101", ACCOUNT, "Account does not exist"),
        ("102", ACCOUNT, "Wrong password"),
        ("105", CONTENT, "uid is too long"),
        ("106", CONTENT, "Content exceeds 3000 characters"),
        ("108", CONTENT, "Phone number format error"),
        ("109", CONTENT, "Too many phone numbers"),
        ("110", ACCOUNT, "Insufficient balance"),
        ("112", ACCOUNT, "Product configuration error"),
        ("114", ACCOUNT, "Client IP not allowed"),
        ("115", ACCOUNT, "No permission"),
        ("118", ACCOUNT, "Send number does not exist"),
    ] {
        cases.push(case(
            Box::leak(format!("§2.5 code {code}").into_boxed_str()),
            200,
            vec![],
            envelope(code, message),
            failed(class, 200, Some(Box::leak(code.to_owned().into_boxed_str())), None, message),
        ));
    }
    cases
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
            .and(path("/api/whatsapp/v3/msg/submit"))
            .respond_with(response)
            .mount(&server)
            .await;
        let id = MessageId::new();
        let result = account(&server).send(&id, &text()).await;
        let shown = format!("{result:?}");
        if shown.contains(APP_KEY) || shown.contains(TOKEN) {
            failures.push(format!("{}: a credential leaked into {shown}", case.name));
        }
        match (&case.expect, result) {
            (Expect::Sent(want), Ok(receipt)) if receipt.provider_message_id == *want => {}
            (Expect::SentAsUid, Ok(receipt)) if receipt.provider_message_id == id.simple() => {}
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
async fn mmlite_answers_are_classified_the_same_way() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path(MMLITE_PATH))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": "115", "success": false, "message": "No MMLite API permission", "data": null
        })))
        .expect(1)
        .mount(&server)
        .await;
    let marketing = message(&whatsapp("template", json!({"name": "sale", "language": "en", "category": "marketing"})))
        .expect("valid");
    let err = account_with(mmlite_config(&server.uri())).send(&MessageId::new(), &marketing).await.expect_err("115");
    assert_eq!((err.class, err.provider_code.as_deref()), (ACCOUNT, Some("115")), "{err:?}");
    assert_eq!(err.title, "No MMLite API permission");
}

#[tokio::test]
async fn a_timeout_is_transient_and_the_outcome_unknown() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(crate::support::success("late").set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut c = config(&server.uri());
    c.timeout_ms = 200;
    let started = Instant::now();
    let err = account_with(c).send(&MessageId::new(), &text()).await.expect_err("timed out");
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
    let err = account.send(&MessageId::new(), &text()).await.expect_err("refused");
    assert_eq!(err.class, TRANSIENT, "{err:?}");
    assert!(!err.outcome_unknown, "{err:?}");
    assert_eq!(err.http_status, None);
    let shown = format!("{err:?} {err}");
    assert!(!shown.contains(APP_KEY) && !shown.contains(TOKEN), "{shown}");
}
