//! `GET /external/messages/status?message_ids=a,b`.

use chrono::DateTime;
use gateway_core::{ErrorClass, MessageStatus, RejectScope};
use gateway_incs::{PolledStatus, MAX_STATUS_IDS};
use serde_json::json;
use wiremock::matchers::{header, method, path, query_param};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{account, CODE};

const ID_1: &str = "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEkUwMzZEMDc4RURERDlFQzFBNQA=";
const ID_2: &str = "wamid.HBgLODUyNjg0MTUwMjYVAgARGBI4QTJBNjQ5MzA5NTgwRTBBMkQA";

fn at(secs: i64) -> Option<DateTime<chrono::Utc>> {
    DateTime::from_timestamp(secs, 0)
}

/// The document's example answer.
fn example_answer() -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({
        "status": "success",
        "code": 200,
        "message": "",
        "data": {
            "data": [
                {
                    "message_id": ID_1,
                    "message_status": "read",
                    "created_at": 1774249921,
                    "delivered_at": 0,
                    "read_at": 1774249929
                },
                {
                    "message_id": ID_2,
                    "message_status": "read",
                    "created_at": 1773907696,
                    "delivered_at": 1773907751,
                    "read_at": 1773907751
                }
            ]
        },
        "error": {}
    }))
}

#[tokio::test]
async fn the_document_example_is_read() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .and(path("/external/messages/status"))
        .and(query_param("message_ids", format!("{ID_1},{ID_2}")))
        .and(header("certification-code", CODE))
        .respond_with(example_answer())
        .expect(1)
        .mount(&server)
        .await;
    let got = account(&server).poll_status(&[ID_1, ID_2]).await.expect("polled");
    assert_eq!(
        got,
        vec![
            PolledStatus {
                message_id: ID_1.into(),
                status: Some(MessageStatus::Read),
                provider_status: "read".into(),
                created_at: at(1774249921),
                delivered_at: None,
                read_at: at(1774249929),
            },
            PolledStatus {
                message_id: ID_2.into(),
                status: Some(MessageStatus::Read),
                provider_status: "read".into(),
                created_at: at(1773907696),
                delivered_at: at(1773907751),
                read_at: at(1773907751),
            },
        ]
    );
}

#[tokio::test]
async fn the_query_is_one_comma_joined_form_encoded_list() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(example_answer()).mount(&server).await;
    let with_plus = "wamid.ab+c/d==";
    account(&server).poll_status(&[ID_1, ID_2, with_plus]).await.expect("polled");
    let received = server.received_requests().await.unwrap_or_default();
    assert_eq!(received.len(), 1);
    let url = &received[0].url;
    let pairs: Vec<(String, String)> = url.query_pairs().map(|(k, v)| (k.into_owned(), v.into_owned())).collect();
    assert_eq!(pairs, vec![("message_ids".to_owned(), format!("{ID_1},{ID_2},{with_plus}"))]);
    assert_eq!(
        url.query(),
        Some(
            "message_ids=wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEkUwMzZEMDc4RURERDlFQzFBNQA%3D%2C\
             wamid.HBgLODUyNjg0MTUwMjYVAgARGBI4QTJBNjQ5MzA5NTgwRTBBMkQA%2Cwamid.ab%2Bc%2Fd%3D%3D"
        )
    );
    assert_eq!(received[0].body.len(), 0);
}

#[tokio::test]
async fn more_than_100_ids_are_refused_before_sending() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(example_answer()).expect(1).mount(&server).await;
    let ids: Vec<String> = (0..=MAX_STATUS_IDS).map(|i| format!("id-{i}")).collect();
    let ids: Vec<&str> = ids.iter().map(String::as_str).collect();

    let err = account(&server).poll_status(&ids).await.expect_err("101 ids");
    assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Content), "{err:?}");
    assert!(err.title.contains("100"), "{err:?}");

    // Exactly 100 is fine: the one request the mock expects.
    account(&server).poll_status(&ids[..MAX_STATUS_IDS]).await.expect("100 ids");
}

#[tokio::test]
async fn no_ids_no_request_and_bad_ids_are_refused() {
    let server = MockServer::start().await;
    Mock::given(method("GET")).respond_with(example_answer()).expect(0).mount(&server).await;
    let account = account(&server);
    assert_eq!(account.poll_status(&[]).await, Ok(vec![]));
    for bad in [&["a,b"][..], &["a", ""][..]] {
        let err = account.poll_status(bad).await.expect_err("refused");
        assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Content), "{bad:?}: {err:?}");
    }
}

#[tokio::test]
async fn odd_statuses_are_kept_and_broken_entries_skipped() {
    let server = MockServer::start().await;
    Mock::given(method("GET"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "status": "success", "code": 200, "message": "",
            "data": {"data": [
                {"message_id": "a", "message_status": "accepted", "created_at": 1774249921, "delivered_at": 0, "read_at": 0},
                {"message_id": "b", "message_status": 3, "created_at": 1774249921, "delivered_at": 1774249925, "read_at": 0},
                {"message_status": "read"},
                {"message_id": "c", "message_status": "failed"}
            ]},
            "error": {}
        })))
        .mount(&server)
        .await;
    let got = account(&server).poll_status(&["a", "b", "c", "d"]).await.expect("polled");
    let summary: Vec<(&str, Option<MessageStatus>, &str, bool)> = got
        .iter()
        .map(|s| (s.message_id.as_str(), s.status, s.provider_status.as_str(), s.delivered_at.is_some()))
        .collect();
    assert_eq!(
        summary,
        vec![
            ("a", None, "accepted", false),
            ("b", Some(MessageStatus::Delivered), "3", true),
            ("c", Some(MessageStatus::Failed), "failed", false),
        ]
    );
}

#[tokio::test]
async fn poll_errors_are_classified_like_sends() {
    let cases = [
        (
            "10001",
            ResponseTemplate::new(200)
                .set_body_json(json!({"status": "error", "code": 10001, "message": "Certification code invalid"})),
            ErrorClass::Rejected(RejectScope::Account),
        ),
        ("500 HTML", ResponseTemplate::new(500).set_body_raw("<html/>", "text/html"), ErrorClass::Transient),
        (
            "success without data.data",
            ResponseTemplate::new(200).set_body_json(json!({"status": "success", "code": 200, "data": {}})),
            ErrorClass::Transient,
        ),
    ];
    for (name, response, want) in cases {
        let server = MockServer::start().await;
        Mock::given(method("GET")).respond_with(response).mount(&server).await;
        let err = account(&server).poll_status(&[ID_1]).await.expect_err(name);
        assert_eq!(err.class, want, "{name}: {err:?}");
        assert!(!err.outcome_unknown, "{name}: a poll has no unknown outcome: {err:?}");
    }
}
