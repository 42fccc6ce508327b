//! `template/submit`: the body of PROVIDERS.md §2.4, the returned id, and refusals before sending.

use std::time::Duration;

use gateway_core::content::whatsapp::TemplateCategory;
use gateway_core::template::WhatsAppTemplateDraft;
use gateway_core::{ErrorClass, RejectScope};
use gateway_innopaas::{TemplateButton, TemplateHeaderType, TemplateSubmit};
use serde_json::json;
use wiremock::matchers::{body_json, header, method, path};
use wiremock::{Mock, MockServer, ResponseTemplate};

use crate::support::{account, account_with, config, APP_KEY, TOKEN, WABA_ID};

fn otp_template() -> TemplateSubmit {
    TemplateSubmit {
        name: "login_code_1".into(),
        category: TemplateCategory::Authentication,
        language: "en_US".into(),
        header_type: TemplateHeaderType::None,
        caption: None,
        body: "{{1}} is your verification code.".into(),
        footer: Some("This code expires in 10 minutes.".into()),
        safety_advice: Some(true),
        buttons: vec![TemplateButton {
            action_type: 5,
            label: "Copy code".into(),
            package_name: Some("com.example.app".into()),
            signature_hash: Some("K8a/AINcGX7".into()),
            auto_fill: Some("Autofill".into()),
            ..TemplateButton::default()
        }],
        header_example: None,
        body_example: Some(vec![vec!["123456".into()]]),
    }
}

fn answer(data: serde_json::Value) -> ResponseTemplate {
    ResponseTemplate::new(200).set_body_json(json!({"code": "0", "success": true, "message": "Success", "data": data}))
}

#[tokio::test]
async fn a_template_goes_out_with_the_documented_fields() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/whatsapp/v3/template/submit"))
        .and(header("content-type", "application/json;charset=utf-8"))
        .and(header("appkey", APP_KEY))
        .and(header("authorization", TOKEN))
        .and(body_json(json!({
            "wabaId": WABA_ID,
            "name": "login_code_1",
            "category": 2,
            "messageLanguage": "en_US",
            "headerType": 1,
            "messageBody": "{{1}} is your verification code.",
            "footer": "This code expires in 10 minutes.",
            "safetyAdvice": 1,
            "bodyExample": {"body_text": [["123456"]]},
            "buttons": [{"actionType": 5, "label": "Copy code", "packageName": "com.example.app",
                         "sigNatureHash": "K8a/AINcGX7", "autoFill": "Autofill"}]
        })))
        .respond_with(answer(json!("1250473582741928")))
        .expect(1)
        .mount(&server)
        .await;
    let id = account(&server).submit_template(&otp_template()).await.expect("created");
    assert_eq!(id, "1250473582741928");
}

#[tokio::test]
async fn a_marketing_template_with_an_image_header_a_call_button_and_website_buttons() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .and(path("/api/whatsapp/v3/template/submit"))
        .and(body_json(json!({
            "wabaId": WABA_ID, "name": "spring_sale", "category": 1, "messageLanguage": "en",
            "headerType": 3, "caption": "https://cdn.example.com/img/sale.jpg",
            "messageBody": "Hi {{1}}, {{2}} off this week.",
            "headerExample": {"header_handle": ["https://cdn.example.com/img/sale.jpg"]},
            "bodyExample": {"body_text": [["Ada", "20%"]]},
            "buttons": [{"actionType": 3, "label": "Call us", "phoneArea": "852", "phone": "30012345"},
                {"actionType": 2, "label": "Shop", "targetUrl": "https://shop.example.com/sale/{{1}}",
                 "buttonExample": ["https://shop.example.com/sale/spring"]},
                {"actionType": 2, "label": "Stores", "targetUrl": "https://shop.example.com/stores"}]
        })))
        .respond_with(answer(json!({"templateId": "987"})))
        .expect(1)
        .mount(&server)
        .await;
    // Meta's draft, as `POST /v1/templates` takes it: the call button's one international number
    // goes out split into phoneArea and phone.
    let draft: WhatsAppTemplateDraft = serde_json::from_value(json!({
        "name": "spring_sale", "language": "en", "category": "MARKETING",
        "components": [
            {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://cdn.example.com/img/sale.jpg"]}},
            {"type": "BODY", "text": "Hi {{1}}, {{2}} off this week.", "example": {"body_text": [["Ada", "20%"]]}},
            {"type": "BUTTONS", "buttons": [
                {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+85230012345"},
                {"type": "URL", "text": "Shop", "url": "https://shop.example.com/sale/{{1}}",
                 "example": ["https://shop.example.com/sale/spring"]},
                {"type": "URL", "text": "Stores", "url": "https://shop.example.com/stores"}]}
        ]
    }))
    .expect("a Meta draft");
    let template = TemplateSubmit::from_draft(&draft).expect("InnoPaaS takes it");
    assert_eq!(account(&server).submit_template(&template).await.expect("created"), "987");
}

#[tokio::test]
async fn a_template_innopaas_would_refuse_is_refused_without_a_request() {
    let server = MockServer::start().await;
    Mock::given(method("POST")).respond_with(answer(json!("1"))).expect(0).mount(&server).await;
    let mut template = otp_template();
    template.name = "Login Code".into();
    let err = account(&server).submit_template(&template).await.expect_err("bad name");
    assert_eq!(err.class, ErrorClass::Rejected(RejectScope::Content), "{err:?}");
    assert!(err.title.contains("name"), "{err:?}");
    // A website button with a variable and no example URL.
    let mut template = otp_template();
    template.buttons = vec![TemplateButton {
        action_type: 2,
        label: "Track".into(),
        target_url: Some("https://example.com/t/{{1}}".into()),
        ..TemplateButton::default()
    }];
    let err = account(&server).submit_template(&template).await.expect_err("no example");
    assert!(err.title.contains("button_example"), "{err:?}");
}

#[tokio::test]
async fn template_failures_are_classified() {
    let server = MockServer::start().await;
    Mock::given(method("POST"))
        .respond_with(ResponseTemplate::new(200).set_body_json(json!({
            "code": "115", "success": false, "message": "No permission", "data": null
        })))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(answer(json!({"status": "PENDING"})))
        .up_to_n_times(1)
        .mount(&server)
        .await;
    Mock::given(method("POST"))
        .respond_with(answer(json!("late")).set_delay(Duration::from_secs(5)))
        .mount(&server)
        .await;
    let mut c = config(&server.uri());
    c.timeout_ms = 200;
    let account = account_with(c);

    let err = account.submit_template(&otp_template()).await.expect_err("115");
    assert_eq!((err.class, err.provider_code.as_deref()), (ErrorClass::Rejected(RejectScope::Account), Some("115")));
    // Created, perhaps, but we cannot tell its id.
    let err = account.submit_template(&otp_template()).await.expect_err("no id");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    assert!(err.outcome_unknown, "{err:?}");
    let err = account.submit_template(&otp_template()).await.expect_err("timeout");
    assert_eq!(err.class, ErrorClass::Transient, "{err:?}");
    assert!(err.outcome_unknown, "{err:?}");
}
