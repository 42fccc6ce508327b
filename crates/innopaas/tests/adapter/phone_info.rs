//! `account/phoneInfo`: the request, the mapping of `data[]`, and its failures.

use gateway_core::{ErrorClass, RejectScope};
use gateway_innopaas::PhoneInfo;
use serde_json::{json, Value};
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{account, APP_KEY, TOKEN, WABA_ID};

fn answer(data: Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"code": "0", "success": true, "message": "Success", "data": data}))
}

#[tokio::test]
async fn phone_info_lists_the_numbers_of_the_waba() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/whatsapp/v3/account/phoneInfo"))
        .and(header("content-type", "application/json;charset=utf-8"))
        .and(header("appkey", APP_KEY))
        .and(header("authorization", TOKEN))
        .and(body_json(json!({"wabaId": WABA_ID})))
        .respond_with(answer(json!([
            {"id": "110200345501442", "displayPhoneNumber": "+852 3001 2345", "verifiedName": "Lucky Shrub",
             "status": "CONNECTED", "qualityRating": "GREEN", "messageLimit": "TIER_250"},
            {"id": 110200345501443_u64, "displayPhoneNumber": "+852 3001 2346", "qualityRating": null},
            {"displayPhoneNumber": "no id: skipped"}
        ])))
        .expect(1)
        .mount(&server)
        .await;
    let phones = account(&server).phone_info().await.expect("phone info");
    assert_eq!(
        phones,
        vec![
            PhoneInfo {
                id: "110200345501442".into(),
                display_phone_number: Some("+852 3001 2345".into()),
                verified_name: Some("Lucky Shrub".into()),
                status: Some("CONNECTED".into()),
                quality_rating: Some("GREEN".into()),
                messaging_limit_tier: Some("TIER_250".into()),
            },
            PhoneInfo {
                id: "110200345501443".into(),
                display_phone_number: Some("+852 3001 2346".into()),
                verified_name: None,
                status: None,
                quality_rating: None,
                messaging_limit_tier: None,
            },
        ]
    );
}

#[tokio::test]
async fn phone_info_failures_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": "102", "success": false, "message": "Token invalid", "data": null
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST")).respond_with(answer(json!({"unexpected": true}))).mount(&server).await;
    let account = account(&server);

    let err = account.phone_info().await.expect_err("102");
    assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Account), "{err:?}");
    assert_eq!(err.provider_code.as_deref(), Some("102"));

    let err = account.phone_info().await.expect_err("no data[]");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    assert!(!err.outcome_unknown, "a read changes nothing: {err:?}");
    assert!(err.title.contains("data[]"), "{err:?}");
}
