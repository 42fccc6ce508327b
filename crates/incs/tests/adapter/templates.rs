//! Templates and the account on the api host family (PROVIDERS.md §1.6, §1.7): every request and
//! answer shape of the documents, the api family's certification code, and the errors INCS gives
//! (`"category require"`, `"The template is not found."`, both code 400).

use std::time::Duration;

use chrono::DateTime;
use gateway_core::template::{RcsTemplateDraft, WhatsAppTemplateDraft};
use gateway_core::{ErrorClass, RejectScope, ThrottleScope};
use gateway_incs::{IncsAccount, IncsRcsTemplate, IncsTemplate};
use secrecy::SecretString;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path, query_param, query_param_is_missing};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{account_with, config, CODE};

/// The api family's code, distinct from the chat-api one so a test sees which was sent.
const API_CODE: &str = "f484bd42-4a0c-39d1-8e2f-0a1b2c3d4e5f";

const CONTENT: ErrorClass = ErrorClass::Rejected(RejectScope::Content);

fn api_account(server: &MockServer) -> IncsAccount {
    let mut c = config(&server.uri());
    c.chat_base_url = "http://127.0.0.1:9".into();
    c.api_certification_code = Some(SecretString::from(API_CODE));
    account_with(c)
}

fn ok(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "success", "code": 200, "message": "", "data": data, "error": {}}))
}

fn error(code: u64, message: &str) -> ResponseTemplate {
    ResponseTemplate::new(200)
        .set_body_json(json!({"status": "error", "code": code, "message": message, "data": {}, "error": {}}))
}

/// The create request of INCS's "创建模板" page, verbatim.
fn document_draft() -> Value {
    json!({
        "name": "test_api_2",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {
                "type": "BODY",
                "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
                "example": {"body_text": [[1, 2]]}
            },
            {"type": "FOOTER", "text": "Good night"}
        ]
    })
}

/// The page's answer: the template resource.
fn document_resource() -> Value {
    json!({
        "template_id": "4166201267033543",
        "name": "test_api_2",
        "language": "en_US",
        "category": "MARKETING",
        "status": "REJECTED",
        "quality": "",
        "components": [
            {
                "type": "BODY",
                "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
                "example": {"body_text": [[1, 2]]}
            },
            {"type": "FOOTER", "text": "Good night"}
        ],
        "created_time": 1755076187,
        "updated_time": 1755076201,
        "status_updated_time": 1755076201,
        "quality_updated_time": 0,
        "category_updated_time": 0
    })
}

fn at(secs: i64) -> Option<DateTime<chrono::Utc>> {
    DateTime::from_timestamp(secs, 0)
}

fn expected_document_template() -> IncsTemplate {
    IncsTemplate {
        template_id: "4166201267033543".into(),
        name: "test_api_2".into(),
        language: "en_US".into(),
        category: "MARKETING".into(),
        status: "REJECTED".into(),
        quality: None,
        components: document_resource()["components"].as_array().cloned().unwrap_or_default(),
        created_time: at(1755076187),
        updated_time: at(1755076201),
        status_updated_time: at(1755076201),
        quality_updated_time: None,
        category_updated_time: None,
    }
}

fn draft(v: Value) -> WhatsAppTemplateDraft {
    serde_json::from_value(v).expect("a valid draft")
}

fn rcs_draft(v: Value) -> RcsTemplateDraft {
    serde_json::from_value(v).expect("a valid RCS draft")
}

#[tokio::test]
async fn the_document_create_example_goes_out_with_the_api_code() {
    let server = MockServer::start().await;
    // The example values 1 and 2 go out as text, which Meta takes for body examples.
    let mut sent = document_draft();
    sent["components"][0]["example"]["body_text"] = json!([["1", "2"]]);
    Mock::given(method("POST"))
        .and(path("/external/templates"))
        .and(header("certification-code", API_CODE))
        .and(header("content-type", "application/json"))
        .and(body_json(sent))
        .respond_with(ok(document_resource()))
        .expect(1)
        .mount(&server)
        .await;
    let created = api_account(&server).create_template(&draft(document_draft())).await.expect("created");
    assert_eq!(created, expected_document_template());
}

#[tokio::test]
async fn every_component_kind_goes_out_in_metas_shape() {
    let server = MockServer::start().await;
    let full = json!({
        "name": "order_update",
        "language": "en_US",
        "category": "UTILITY",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://cdn.example.com/a.jpg"]}},
            {"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Ann"]]}},
            {"type": "FOOTER", "text": "Thanks"},
            {"type": "BUTTONS", "buttons": [
                {"type": "QUICK_REPLY", "text": "Stop"},
                {"type": "URL", "text": "Track", "url": "https://x.example.com/t/{{1}}", "example": ["https://x.example.com/t/1"]},
                {"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+85230012345"},
                {"type": "COPY_CODE", "example": "SAVE10"}
            ]}
        ]
    });
    Mock::given(method("POST"))
        .and(path("/external/templates"))
        .and(body_json(full.clone()))
        .respond_with(ok(json!({"template_id": "1", "name": "order_update", "language": "en_US",
                                "category": "UTILITY", "status": "PENDING", "quality": "",
                                "components": full["components"].clone()})))
        .expect(1)
        .mount(&server)
        .await;
    let created = api_account(&server).create_template(&draft(full.clone())).await.expect("created");
    assert_eq!((created.status.as_str(), created.components.len()), ("PENDING", 4));
    assert_eq!(created.created_time, None);
}

#[tokio::test]
async fn a_draft_incs_would_refuse_is_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok(document_resource())).expect(0).mount(&server).await;
    let account = api_account(&server);
    let mut auth = document_draft();
    auth["category"] = json!("AUTHENTICATION");
    let err = account.create_template(&draft(auth)).await.expect_err("INCS takes MARKETING or UTILITY");
    assert_eq!(err.class, CONTENT, "{err:?}");
    assert!(err.title.contains("category"), "{err:?}");
    let mut long = document_draft();
    long["name"] = json!("a".repeat(101));
    let err = account.create_template(&draft(long)).await.expect_err("101 characters");
    assert!(err.title.contains("name: at most 100 characters"), "{err:?}");
}

#[tokio::test]
async fn incs_refusals_of_a_create_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(error(400, "category require")).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .respond_with(error(10002, "(#100) Invalid parameter"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(error(10001, "Certification code invalid"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(error(429, "Too Many Attempts.").insert_header("retry-after", "3"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    let account = api_account(&server);
    let d = draft(document_draft());

    let err = account.create_template(&d).await.expect_err("category require");
    assert_eq!(
        (err.class, err.provider_code.as_deref(), err.title.as_str()),
        (CONTENT, Some("400"), "category require")
    );
    assert!(!err.outcome_unknown);
    let err = account.create_template(&d).await.expect_err("Meta refused");
    assert_eq!((err.class, err.meta_code), (CONTENT, Some(100)), "{err:?}");
    let err = account.create_template(&d).await.expect_err("10001");
    assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Account), "{err:?}");
    let err = account.create_template(&d).await.expect_err("429");
    assert_eq!(
        err.class,
        ErrorClass::Throttled { retry_after: Some(Duration::from_secs(3)), scope: ThrottleScope::Lane },
        "{err:?}"
    );
}

#[tokio::test]
async fn a_create_whose_outcome_is_unknown_says_so() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok(json!({}))).up_to_n_times(1).mount(&server).await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_string("<html>ok</html>"))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(ok(document_resource()).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut c = config(&server.uri());
    c.timeout_ms = 200;
    let account = account_with(c);
    let d = draft(document_draft());
    for what in ["code 200 without template_id", "2xx without an envelope", "timeout"] {
        let err = account.create_template(&d).await.expect_err(what);
        assert_eq!(err.class, ErrorClass::Transient, "{what}: {err:?}");
        assert!(err.outcome_unknown, "{what}: {err:?}");
    }
}

#[tokio::test]
async fn lists_page_with_last_id_and_count() {
    let server = MockServer::start().await;
    let second = json!({"template_id": 4166201267033544_u64, "name": "test_api_3", "language": "zh_HK",
                        "category": "UTILITY", "status": "APPROVED", "quality": "GREEN", "components": [],
                        "created_time": "1755076300", "updated_time": 1755076400, "status_updated_time": 1755076400,
                        "quality_updated_time": 1755076500, "category_updated_time": 0});
    Mock::given(method("GET"))
        .and(path("/external/templates"))
        .and(query_param("last_id", "4166201267033542"))
        .and(query_param("count", "2"))
        .and(header("certification-code", API_CODE))
        .respond_with(ok(json!([document_resource(), second, {"name": "no id: skipped"}])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/external/templates"))
        .and(query_param_is_missing("last_id"))
        .and(query_param("count", "100"))
        .respond_with(ok(json!({"data": [document_resource()]})))
        .expect(1)
        .mount(&server)
        .await;
    let account = api_account(&server);
    let page = account.list_templates(Some("4166201267033542"), 2).await.expect("listed");
    assert_eq!(page.len(), 2);
    assert_eq!(page[0], expected_document_template());
    assert_eq!(page[1].template_id, "4166201267033544");
    assert_eq!(page[1].quality.as_deref(), Some("GREEN"));
    assert_eq!(page[1].created_time, at(1755076300));
    assert_eq!(page[1].quality_updated_time, at(1755076500));
    let first = account.list_templates(None, 100).await.expect("listed");
    assert_eq!(first, vec![expected_document_template()]);
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received[0].url.query(), Some("last_id=4166201267033542&count=2"));
    assert!(received.iter().all(|r| r.body.is_empty()));
}

#[tokio::test]
async fn bad_paging_is_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ok(json!([]))).expect(2).mount(&server).await;
    let account = api_account(&server);
    for (last_id, count) in [(None, 0), (None, 101), (Some(""), 10), (Some(" 1"), 10)] {
        let err = account.list_templates(last_id, count).await.expect_err("refused");
        assert_eq!(err.class, CONTENT, "{last_id:?} {count}: {err:?}");
        let err = account.list_rcs_templates(last_id, count).await.expect_err("refused");
        assert_eq!(err.class, CONTENT, "{last_id:?} {count}: {err:?}");
    }
    assert_eq!(account.list_templates(None, 1).await.expect("1 is fine"), vec![]);
    assert_eq!(account.list_rcs_templates(None, 1).await.expect("1 is fine"), vec![]);
}

#[tokio::test]
async fn a_list_answer_without_an_array_is_transient() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(ok(json!("nope"))).mount(&server).await;
    let err = api_account(&server).list_templates(None, 10).await.expect_err("no array");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    assert!(!err.outcome_unknown, "{err:?}");
}

#[tokio::test]
async fn get_reads_the_resource_and_not_found_is_none() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/external/templates/4166201267033543"))
        .and(header("certification-code", API_CODE))
        .respond_with(ok(document_resource()))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/external/templates/404404"))
        .respond_with(error(400, "The template is not found."))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/external/templates/500500"))
        .respond_with(
            ResponseTemplate::new(500).set_body_json(
                json!({"status": "error", "code": 500, "message": "Server Error", "data": {}, "error": {}}),
            ),
        )
        .expect(1)
        .mount(&server)
        .await;
    let account = api_account(&server);
    assert_eq!(account.get_template("4166201267033543").await.expect("read"), Some(expected_document_template()));
    assert_eq!(account.get_template("404404").await.expect("not found is no error"), None);
    let err = account.get_template("500500").await.expect_err("500");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    let err = account.get_template("").await.expect_err("empty id");
    assert_eq!(err.class, CONTENT, "{err:?}");
}

#[tokio::test]
async fn ids_are_one_encoded_path_segment() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(error(400, "The template is not found.")).mount(&server).await;
    let account = api_account(&server);
    assert_eq!(account.get_template("a/b?c").await.expect("not found"), None);
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received[0].url.path(), "/external/templates/a%2Fb%3Fc");
    assert_eq!(received[0].url.query(), None);
}

#[tokio::test]
async fn a_base_url_prefix_is_kept() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/incs/external/templates/7"))
        .respond_with(ok(document_resource()))
        .expect(1)
        .mount(&server)
        .await;
    let mut c = config(&format!("{}/incs/", server.uri()));
    c.api_certification_code = Some(SecretString::from(API_CODE));
    assert!(account_with(c).get_template("7").await.expect("read").is_some());
}

#[tokio::test]
async fn delete_answers_data_object_and_not_found_is_false() {
    let server = MockServer::start().await;
    Mock::given(method("DELETE"))
        .and(path("/external/templates/4166201267033543"))
        .and(header("certification-code", API_CODE))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/external/templates/404404"))
        .respond_with(error(400, "The template is not found."))
        .expect(1)
        .mount(&server)
        .await;
    // A route that does not exist is not a template that does not exist.
    Mock::given(method("DELETE"))
        .and(path("/external/templates/route"))
        .respond_with(ResponseTemplate::new(404).set_body_string("<html>Not Found</html>"))
        .expect(1)
        .mount(&server)
        .await;
    let account = api_account(&server);
    assert!(account.delete_template("4166201267033543").await.expect("deleted"));
    assert!(!account.delete_template("404404").await.expect("not found is no error"));
    let err = account.delete_template("route").await.expect_err("a missing route");
    assert_eq!((err.class, err.http_status), (CONTENT, Some(404)), "{err:?}");
    let received = server.received_requests().await.unwrap_or_default();
    assert!(received.iter().all(|r| r.body.is_empty() && r.headers.get("content-type").is_none()));
}

fn rcs_text() -> Value {
    json!({
        "name": "test_template",
        "type": "text",
        "category": "TRANSACTION",
        "content": {
            "textMessage": "Dear [name], your order [order_id] has been shipped.",
            "suggestions": [
                {"suggestionType": "reply", "text": "Thanks", "postbackData": "thanks"},
                {"suggestionType": "url_action", "text": "Track", "postbackData": "track", "url": "https://brand.com"},
                {"suggestionType": "dialer_action", "text": "Call", "postbackData": "call", "phoneNumber": "+919702012345"}
            ]
        }
    })
}

fn rcs_card() -> Value {
    json!({"cardTitle": "Spring sale", "cardDescription": "Up to 50% off", "mediaUrl": "https://brand.com/a.jpg",
           "thumbnailUrl": "https://brand.com/t.jpg",
           "suggestions": [{"suggestionType": "reply", "text": "More", "postbackData": "more"}]})
}

fn rcs_resource(draft: &Value, id: &str) -> Value {
    json!({"template_id": id, "name": draft["name"], "type": draft["type"], "category": draft.get("category"),
           "status": "PENDING", "content": draft["content"], "created_time": 1755076187,
           "updated_time": 1755076187, "status_updated_time": 1755076187})
}

#[tokio::test]
async fn rcs_templates_of_every_type_go_out_as_drafted() {
    let server = MockServer::start().await;
    let richcard = json!({"name": "spring_sale", "type": "richcard", "category": "PROMOTION",
                          "content": {"orientation": "VERTICAL", "height": "MEDIUM", "standaloneCard": rcs_card()}});
    let carousel = json!({"name": "spring_range", "type": "carousel",
                          "content": {"height": "SHORT", "width": "MEDIUM", "carouselCard": [rcs_card(), rcs_card()]}});
    for (i, body) in [rcs_text(), richcard, carousel].into_iter().enumerate() {
        let id = format!("rcs-{i}");
        Mock::given(method("POST"))
            .and(path("/external/templates/rcs"))
            .and(header("certification-code", API_CODE))
            .and(header("content-type", "application/json"))
            .and(body_json(body.clone()))
            .respond_with(ok(rcs_resource(&body, &id)))
            .expect(1)
            .mount(&server)
            .await;
        let created = api_account(&server).create_rcs_template(&rcs_draft(body.clone())).await.expect("created");
        assert_eq!(
            created,
            IncsRcsTemplate {
                template_id: id,
                name: body["name"].as_str().unwrap_or_default().into(),
                kind: body["type"].as_str().unwrap_or_default().into(),
                category: body["category"].as_str().map(String::from),
                status: "PENDING".into(),
                content: body["content"].clone(),
                created_time: at(1755076187),
                updated_time: at(1755076187),
                status_updated_time: at(1755076187),
            }
        );
    }
}

#[tokio::test]
async fn rcs_list_get_and_delete() {
    let server = MockServer::start().await;
    let text = rcs_text();
    Mock::given(method("GET"))
        .and(path("/external/templates/rcs"))
        .and(query_param("last_id", "10"))
        .and(query_param("count", "10"))
        .respond_with(ok(json!([rcs_resource(&text, "11"), rcs_resource(&text, "12")])))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/external/templates/rcs/11"))
        .respond_with(ok(rcs_resource(&text, "11")))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET"))
        .and(path("/external/templates/rcs/99"))
        .respond_with(error(400, "The template is not found."))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/external/templates/rcs/11"))
        .respond_with(ok(json!({})))
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("DELETE"))
        .and(path("/external/templates/rcs/99"))
        .respond_with(error(400, "The template is not found."))
        .expect(1)
        .mount(&server)
        .await;
    let account = api_account(&server);
    let page = account.list_rcs_templates(Some("10"), 10).await.expect("listed");
    assert_eq!(page.iter().map(|t| t.template_id.as_str()).collect::<Vec<_>>(), ["11", "12"]);
    assert_eq!(account.get_rcs_template("11").await.expect("read").map(|t| t.kind), Some("text".into()));
    assert_eq!(account.get_rcs_template("99").await.expect("not found"), None);
    assert!(account.delete_rcs_template("11").await.expect("deleted"));
    assert!(!account.delete_rcs_template("99").await.expect("not found"));
}

#[tokio::test]
async fn an_rcs_draft_incs_would_refuse_is_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(ok(json!({}))).expect(0).mount(&server).await;
    let mut long = rcs_text();
    long["name"] = json!("a".repeat(26));
    let err = api_account(&server).create_rcs_template(&rcs_draft(long)).await.expect_err("26 characters");
    assert_eq!(err.class, CONTENT, "{err:?}");
    assert!(err.title.contains("name"), "{err:?}");
}

#[tokio::test]
async fn the_account_is_an_opaque_map() {
    let server = MockServer::start().await;
    let data = json!({"display_phone_number": "+62 815-1923-6680", "verified_name": "Lucky Shrub",
                      "quality_rating": "GREEN", "messaging_limit_tier": "TIER_1K", "throughput": {"level": "STANDARD"}});
    Mock::given(method("GET"))
        .and(path("/external/account"))
        .and(header("certification-code", API_CODE))
        .respond_with(ok(data.clone()))
        .up_to_n_times(1)
        .expect(1)
        .mount(&server)
        .await;
    Mock::given(method("GET")).and(path("/external/account")).respond_with(ok(json!([]))).mount(&server).await;
    let account = api_account(&server);
    let map = account.account().await.expect("read");
    assert_eq!(Value::Object(map), data);
    let err = account.account().await.expect_err("not an object");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    assert!(err.title.contains("data{}"), "{err:?}");
}

#[tokio::test]
async fn without_an_api_code_the_chat_code_is_used() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/external/account"))
        .and(header("certification-code", CODE))
        .respond_with(ok(json!({"display_phone_number": "+852 3001 2345"})))
        .expect(1)
        .mount(&server)
        .await;
    account_with(config(&server.uri())).account().await.expect("read");
}
