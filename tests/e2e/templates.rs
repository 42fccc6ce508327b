//! Template and account management through the gateway (DESIGN.md §2, §5): the API reaches the
//! providers' template endpoints in the sandbox, validation names the field, and template status
//! callbacks feed the template status cache.

use std::time::Duration;

use gateway_tests::{
    eventually, free_port, TestGateway, TestRedis, TestSandbox, API_KEY, INCS_API_CODE, INCS_CODE, READ_ONLY_KEY,
};
use provider_sandbox::SandboxConfig;
use serde_json::{json, Value};

/// INCS's own create example (its "创建模板" page), as a gateway request.
fn incs_example() -> Value {
    json!({
        "sender": "hk-main",
        "channel": "whatsapp",
        "name": "test_api_2",
        "language": "en_US",
        "category": "MARKETING",
        "components": [
            {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
             "example": {"body_text": [[1, 2]]}},
            {"type": "FOOTER", "text": "Good night"}
        ]
    })
}

fn richcard() -> Value {
    json!({
        "channel": "rcs",
        "name": "spring_sale",
        "type": "richcard",
        "category": "PROMOTION",
        "content": {
            "orientation": "VERTICAL",
            "height": "MEDIUM",
            "standaloneCard": {
                "cardTitle": "Spring sale",
                "cardDescription": "Up to 50% off, this week only.",
                "mediaUrl": "https://static.example.com/sale.jpg",
                "suggestions": [
                    {"suggestionType": "url_action", "text": "Shop now", "postbackData": "shop", "url": "https://shop.example.com"},
                    {"suggestionType": "reply", "text": "Not now", "postbackData": "later"}
                ]
            }
        }
    })
}

async fn call(gw: &TestGateway, method: reqwest::Method, path: &str, key: &str, body: Option<&Value>) -> (u16, Value) {
    let mut request = gw.client.request(method, format!("{}{path}", gw.base_url)).bearer_auth(key);
    if let Some(body) = body {
        request = request.json(body);
    }
    let response = request.send().await.unwrap();
    let status = response.status().as_u16();
    let problem = response
        .headers()
        .get("content-type")
        .is_some_and(|v| v.to_str().unwrap_or("").starts_with("application/problem+json"));
    let body: Value = response.json().await.unwrap_or(Value::Null);
    if status >= 400 {
        assert!(problem, "{status} without problem+json: {body}");
    }
    (status, body)
}

async fn get(gw: &TestGateway, path: &str) -> (u16, Value) {
    call(gw, reqwest::Method::GET, path, API_KEY, None).await
}

async fn post(gw: &TestGateway, body: &Value) -> (u16, Value) {
    call(gw, reqwest::Method::POST, "/v1/templates", API_KEY, Some(body)).await
}

async fn delete(gw: &TestGateway, path: &str) -> u16 {
    call(gw, reqwest::Method::DELETE, path, API_KEY, None).await.0
}

/// `(method, path, query)` of every request INCS got.
async fn incs_calls(sandbox: &TestSandbox) -> Vec<(String, String, String)> {
    sandbox
        .requests("incs")
        .await
        .iter()
        .map(|r| {
            // Each host family with its own code: the api family for templates and the account.
            let path = r["path"].as_str().unwrap_or_default();
            let want = if path.starts_with("/external/messages") { INCS_CODE } else { INCS_API_CODE };
            assert_eq!(r["headers"]["certification-code"], want, "{r}");
            (
                r["method"].as_str().unwrap_or_default().to_owned(),
                r["path"].as_str().unwrap_or_default().to_owned(),
                r["query"].as_str().unwrap_or_default().to_owned(),
            )
        })
        .collect()
}

fn call_of(method: &str, path: &str, query: &str) -> (String, String, String) {
    (method.to_owned(), path.to_owned(), query.to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn whatsapp_templates_are_created_listed_read_and_deleted_at_incs() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let (status, created) = post(&gw, &incs_example()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let tid = created["provider_template_id"].as_str().unwrap().to_owned();
    assert_eq!(id, format!("incs-whatsapp~{tid}"));
    assert_eq!((created["sender"].as_str(), created["account"].as_str()), (Some("hk-main"), Some("incs-whatsapp")));
    assert_eq!((created["provider"].as_str(), created["channel"].as_str()), (Some("incs"), Some("whatsapp")));
    assert_eq!((created["name"].as_str(), created["language"].as_str()), (Some("test_api_2"), Some("en_US")));
    assert_eq!((created["category"].as_str(), created["status"].as_str()), (Some("MARKETING"), Some("PENDING")));
    assert_eq!(created["components"][1], json!({"type": "FOOTER", "text": "Good night"}));

    let (status, list) = get(&gw, "/v1/templates?channel=whatsapp").await;
    assert_eq!(status, 200, "{list}");
    let ids: Vec<&str> = list["items"].as_array().unwrap().iter().filter_map(|t| t["id"].as_str()).collect();
    assert_eq!(ids, [id.as_str()]);
    assert_eq!(list["next_cursor"], Value::Null);

    let (status, one) = get(&gw, &format!("/v1/templates/{id}")).await;
    assert_eq!(status, 200, "{one}");
    assert_eq!(one["name"], "test_api_2");

    assert_eq!(delete(&gw, &format!("/v1/templates/{id}")).await, 204);
    let (status, problem) = get(&gw, &format!("/v1/templates/{id}")).await;
    assert_eq!(status, 404, "{problem}");
    assert_eq!(delete(&gw, &format!("/v1/templates/{id}")).await, 404);

    let requests = sandbox.requests("incs").await;
    let mut sent = incs_example();
    sent.as_object_mut().unwrap().retain(|k, _| !matches!(k.as_str(), "sender" | "channel"));
    sent["components"][0]["example"]["body_text"] = json!([["1", "2"]]);
    assert_eq!(requests[0]["body"], sent, "the documented body, without sender and channel");
    let path = format!("/external/templates/{tid}");
    assert_eq!(
        incs_calls(&sandbox).await,
        [
            call_of("POST", "/external/templates", ""),
            call_of("GET", "/external/templates", "count=20"),
            call_of("GET", &path, ""),
            call_of("DELETE", &path, ""),
            call_of("GET", &path, ""),
            call_of("DELETE", &path, ""),
        ]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rcs_richcard_template_goes_to_the_rcs_template_api() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let (status, created) = post(&gw, &richcard()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("incs-rcs~"), "{id}");
    assert_eq!((created["sender"].as_str(), created["type"].as_str()), (Some("rcs-main"), Some("richcard")));
    assert_eq!(created["content"], richcard()["content"]);
    assert_eq!(created["category"], "PROMOTION");

    let (_, list) = get(&gw, "/v1/templates?channel=rcs&sender=rcs-main").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let (status, one) = get(&gw, &format!("/v1/templates/{id}")).await;
    assert_eq!((status, one["name"].as_str()), (200, Some("spring_sale")));
    assert_eq!(delete(&gw, &format!("/v1/templates/{id}")).await, 204);

    let requests = sandbox.requests("incs").await;
    let mut sent = richcard();
    sent.as_object_mut().unwrap().remove("channel");
    assert_eq!(requests[0]["body"], sent);
    let tid = created["provider_template_id"].as_str().unwrap();
    let path = format!("/external/templates/rcs/{tid}");
    assert_eq!(
        incs_calls(&sandbox).await,
        [
            call_of("POST", "/external/templates/rcs", ""),
            call_of("GET", "/external/templates/rcs", "count=20"),
            call_of("GET", &path, ""),
            call_of("DELETE", &path, ""),
        ]
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_template_is_a_422_naming_the_field_and_reaches_no_provider() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let with = |edit: &dyn Fn(&mut Value)| {
        let mut v = incs_example();
        edit(&mut v);
        v
    };
    let cases = [
        (with(&|v| v["components"][0]["text"] = json!("{{1}} and {{3}}")), "components[0].text", "without gaps"),
        (
            with(&|v| v["components"][0]["example"] = json!({"body_text": [["only one"]]})),
            "components[0].example.body_text[0]",
            "2 example values",
        ),
        (with(&|v| v["name"] = json!("a".repeat(101))), "name", "at most 100"),
        (with(&|v| v["category"] = json!("AUTHENTICATION")), "category", "MARKETING or UTILITY"),
        (with(&|v| v["components"][1]["text"] = json!("x".repeat(61))), "components[1].text", "at most 60"),
        (with(&|v| v["colour"] = json!("red")), "colour", "unknown field"),
        (with(&|v| v["channel"] = json!("viber")), "channel", "only they have templates"),
        (with(&|v| v["sender"] = json!("nobody")), "sender", "no sender named"),
        (with(&|v| v["sender"] = json!("rcs-main")), "channel", "rcs sender"),
        (
            json!({"channel": "rcs", "name": "t", "type": "carousel", "content": {"carouselCard": [{"cardTitle": "x"}]}}),
            "content.carouselCard",
            "2 to 10 cards",
        ),
    ];
    for (body, field, reason) in cases {
        let (status, problem) = post(&gw, &body).await;
        assert_eq!(status, 422, "{field}: {problem}");
        assert_eq!(problem["type"], "/problems/validation", "{problem}");
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["field"] == field && e["reason"].as_str().unwrap_or("").contains(reason)),
            "{field}: {problem}"
        );
    }
    let (status, _) = call(&gw, reqwest::Method::POST, "/v1/templates", READ_ONLY_KEY, Some(&incs_example())).await;
    assert_eq!(status, 403, "creating needs the admin scope");
    let (status, _) = call(&gw, reqwest::Method::GET, "/v1/templates", READ_ONLY_KEY, None).await;
    assert_eq!(status, 200, "reading needs the read scope");
    let (status, problem) = get(&gw, "/v1/templates?limit=101").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("limit")));
    let (status, problem) = get(&gw, "/v1/templates?cursor=nonsense").await;
    assert_eq!((status, problem["errors"][0]["field"].as_str()), (422, Some("cursor")));
    assert_eq!(get(&gw, "/v1/templates/no-separator").await.0, 404);
    assert_eq!(get(&gw, "/v1/templates/nobody~1").await.0, 404);
    assert_eq!(
        incs_calls(&sandbox).await,
        [call_of("GET", "/external/templates", "count=20"), call_of("GET", "/external/templates/rcs", "count=20")],
        "nothing invalid reached INCS, only the read-only key's list"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn listing_pages_across_senders_with_a_cursor() {
    let (_redis, _sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let mut expected = Vec::new();
    for name in ["first_one", "second_one", "third_one"] {
        let mut t = incs_example();
        t["name"] = json!(name);
        let (status, created) = post(&gw, &t).await;
        assert_eq!(status, 201, "{created}");
        expected.push(created["id"].as_str().unwrap().to_owned());
    }
    let (_, created) = post(&gw, &richcard()).await;
    expected.push(created["id"].as_str().unwrap().to_owned());

    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..10 {
        let path = match &cursor {
            Some(c) => format!("/v1/templates?limit=2&cursor={c}"),
            None => "/v1/templates?limit=2".to_owned(),
        };
        let (status, page) = get(&gw, &path).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["items"].as_array().unwrap().len() <= 2);
        seen.extend(page["items"].as_array().unwrap().iter().filter_map(|t| t["id"].as_str().map(str::to_owned)));
        cursor = page["next_cursor"].as_str().map(str::to_owned);
        if cursor.is_none() {
            break;
        }
    }
    assert_eq!(seen, expected, "every template once, senders in configuration order");
    let (_, pending) = get(&gw, "/v1/templates?status=approved&channel=whatsapp").await;
    assert!(pending["items"].as_array().unwrap().is_empty(), "none approved yet: {pending}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sender_account_shows_the_incs_account_and_its_tier() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let (status, account) = get(&gw, "/v1/senders/hk-main/account").await;
    assert_eq!(status, 200, "{account}");
    assert_eq!((account["sender"].as_str(), account["account"].as_str()), (Some("hk-main"), Some("incs-whatsapp")));
    assert_eq!(account["messaging_limit_tier"], "TIER_1K");
    assert_eq!(account["quality_rating"], "GREEN");
    assert_eq!(account["details"]["display_phone_number"], "+6281519236680");
    assert_eq!(get(&gw, "/v1/senders/nobody/account").await.0, 404);
    assert_eq!(get(&gw, "/v1/senders/hk-main/account?account=incs-rcs").await.0, 404);
    assert_eq!(incs_calls(&sandbox).await, [call_of("GET", "/external/account", "")]);
    gw.stop().await;
}

fn innopaas_sender(sandbox_url: &str) -> String {
    format!(
        r#"
[[accounts]]
name = "innopaas-wa"
provider = "innopaas"
[accounts.innopaas]
base_url = "{sandbox_url}"
app_key = "sandbox-innopaas-appkey"
token = "sandbox-innopaas-token"
waba_id = "102290129340398"
send_number = "85230012345"

[[senders]]
name = "inno-main"
channel = "whatsapp"
accounts = ["innopaas-wa"]
"#
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_innopaas_sender_submits_templates_and_reports_its_numbers() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &innopaas_sender(&sandbox.url()))).await;

    let mut t = incs_example();
    t["sender"] = json!("inno-main");
    t["name"] = json!("a".repeat(300));
    t["components"].as_array_mut().unwrap().push(json!({"type": "BUTTONS", "buttons": [
        {"type": "QUICK_REPLY", "text": "Stop"}, {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+85230012345"}]}));
    let (status, created) = post(&gw, &t).await;
    assert_eq!(status, 201, "InnoPaaS takes names of up to 512 characters: {created}");
    let id = created["id"].as_str().unwrap().to_owned();
    assert!(id.starts_with("innopaas-wa~"), "{id}");
    assert_eq!((created["provider"].as_str(), created["status"].as_str()), (Some("innopaas"), Some("PENDING")));

    let requests = sandbox.requests("innopaas").await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    assert_eq!(requests[0]["path"], "/api/whatsapp/v3/template/submit");
    assert_eq!(
        requests[0]["body"],
        json!({"wabaId": "102290129340398", "name": "a".repeat(300), "category": 1, "messageLanguage": "en_US",
               "headerType": 1, "messageBody": "A API test template, first variable: {{1}}, second variable: {{2}}",
               "footer": "Good night", "bodyExample": {"body_text": [["1", "2"]]},
               "buttons": [{"actionType": 1, "label": "Stop"}, {"actionType": 3, "label": "Call us", "phoneArea": "852", "phone": "30012345"}]})
    );

    // InnoPaaS has no read API: the template is read from the cache.
    let (status, one) = get(&gw, &format!("/v1/templates/{id}")).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("PENDING")), "{one}");
    let (_, list) = get(&gw, "/v1/templates?sender=inno-main").await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1), "{list}");
    let (status, problem) = call(&gw, reqwest::Method::DELETE, &format!("/v1/templates/{id}"), API_KEY, None).await;
    assert_eq!((status, problem["type"].as_str()), (422, Some("/problems/provider-rejected")));

    // URL buttons go as website buttons (PROVIDERS.md §2.7): `targetUrl`, and `buttonExample`
    // when the URL ends in a variable.
    let url_buttons = |buttons: Value| {
        let mut t = incs_example();
        t["sender"] = json!("inno-main");
        t["name"] = json!("track_order");
        t["components"].as_array_mut().unwrap().push(json!({"type": "BUTTONS", "buttons": buttons}));
        t
    };
    let (status, created) = post(
        &gw,
        &url_buttons(json!([
        {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}",
         "example": ["https://shop.example.com/track/A-1001"]},
        {"type": "URL", "text": "Shop", "url": "https://shop.example.com"}])),
    )
    .await;
    assert_eq!(status, 201, "{created}");
    let sent = sandbox.requests("innopaas").await.last().unwrap()["body"]["buttons"].clone();
    assert_eq!(
        sent,
        json!([{"actionType": 2, "label": "Track", "targetUrl": "https://shop.example.com/track/{{1}}",
                "buttonExample": ["https://shop.example.com/track/A-1001"]},
               {"actionType": 2, "label": "Shop", "targetUrl": "https://shop.example.com"}])
    );
    let (status, problem) = post(
        &gw,
        &url_buttons(json!([
        {"type": "URL", "text": "Track", "url": "https://shop.example.com/track/{{1}}"}])),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("components[2].buttons[0].example")),
        "a variable URL needs its example: {problem}"
    );

    // A call number with no country calling code InnoPaaS could take as `phoneArea`.
    let submits = sandbox.requests_to("innopaas", "/api/whatsapp/v3/template/submit").await.len();
    let (status, problem) = post(
        &gw,
        &url_buttons(json!([{"type": "QUICK_REPLY", "text": "Stop"},
            {"type": "PHONE_NUMBER", "text": "Call us", "phone_number": "+99912345678"}])),
    )
    .await;
    assert_eq!(
        (status, problem["errors"][0]["field"].as_str()),
        (422, Some("components[2].buttons[1].phone_number")),
        "{problem}"
    );
    assert_eq!(sandbox.requests_to("innopaas", "/api/whatsapp/v3/template/submit").await.len(), submits);

    let (status, account) = get(&gw, "/v1/senders/inno-main/account").await;
    assert_eq!(status, 200, "{account}");
    assert_eq!(account["provider"], "innopaas");
    assert_eq!(account["messaging_limit_tier"], "TIER_250");
    assert_eq!(account["phone_numbers"][0]["messaging_limit_tier"], "TIER_250");
    assert_eq!(sandbox.requests("innopaas").await.last().unwrap()["path"], "/api/whatsapp/v3/account/phoneInfo");
    gw.stop().await;
}

/// The sandbox reviews a template after `review` and calls the gateway back.
async fn reviewing_sandbox(port: u16, review: Duration) -> TestSandbox {
    TestSandbox::spawn_with(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        incs_callback_url: Some(format!("http://127.0.0.1:{port}/callbacks/incs/sandbox-incs-callback")),
        incs_template_review_delay: review,
        ..Default::default()
    })
    .await
}

async fn gateway_on(port: u16, redis: &TestRedis, sandbox: &TestSandbox) -> TestGateway {
    let toml = redis.config(&sandbox.url(), "").listen(port).text();
    TestGateway::spawn(&toml).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_created_template_is_approved_after_the_review_callback() {
    let redis = TestRedis::single();
    let port = free_port();
    let sandbox = reviewing_sandbox(port, Duration::from_millis(300)).await;
    let gw = gateway_on(port, &redis, &sandbox).await;

    let (status, created) = post(&gw, &incs_example()).await;
    assert_eq!((status, created["status"].as_str()), (201, Some("PENDING")), "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let approved = eventually(Duration::from_secs(5), || async {
        let (_, t) = get(&gw, &format!("/v1/templates/{id}")).await;
        (t["status"] == "APPROVED").then_some(t)
    })
    .await;
    assert!(approved.is_some(), "never approved");
    // The callback reached the gateway and was accepted.
    let callbacks = eventually(Duration::from_secs(5), || async {
        let text = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.ok()?.text().await.ok()?;
        let n = text
            .lines()
            .filter(|l| {
                l.starts_with("gateway_callbacks_total{")
                    && l.contains("event=\"template\"")
                    && l.contains("outcome=\"ok\"")
            })
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>();
        (n >= 1.0).then_some(n)
    })
    .await;
    assert!(callbacks.is_some(), "the template callback was not recorded");
    gw.stop().await;
}

/// The template status cache takes the callback, and a read shows the cache's status when it is
/// newer than the provider's (here INCS answers a stale `PENDING` after the review).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cache_keeps_the_callback_status_over_a_stale_provider_read() {
    let redis = TestRedis::single();
    let port = free_port();
    // Over a second, so the review lands in a later second than the creation.
    let sandbox = reviewing_sandbox(port, Duration::from_millis(1200)).await;
    let gw = gateway_on(port, &redis, &sandbox).await;

    let (status, created) = post(&gw, &incs_example()).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let tid = created["provider_template_id"].as_str().unwrap().to_owned();
    let key = format!("gw:tpl:{{incs-whatsapp}}:id:{tid}");
    let mut client = redis.client().await;
    let mut cached = None;
    for _ in 0..250 {
        let status: Option<String> = client.query(redis::cmd("HGET").arg(&key).arg("status")).await;
        if status.as_deref() == Some("APPROVED") {
            cached = status;
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(cached.as_deref(), Some("APPROVED"), "the callback never reached the cache");

    let mut stale = created.clone();
    stale["status"] = json!("PENDING");
    let created_time =
        chrono::DateTime::parse_from_rfc3339(created["created_at"].as_str().unwrap()).unwrap().timestamp();
    sandbox
        .fault(json!({
            "provider": "incs", "status": 200, "match": {"path": format!("/external/templates/{tid}")},
            "body": {"status": "success", "code": 200, "message": "", "error": {}, "data": {
                "template_id": tid, "name": "test_api_2", "language": "en_US", "category": "MARKETING",
                "status": "PENDING", "quality": "", "components": created["components"],
                "created_time": created_time, "updated_time": created_time, "status_updated_time": created_time}}
        }))
        .await;
    let (status, one) = get(&gw, &format!("/v1/templates/{id}")).await;
    assert_eq!((status, one["status"].as_str()), (200, Some("APPROVED")), "{one}");
    gw.stop().await;
}

/// The template status cache against a real Redis: ordering of callbacks and provider reads,
/// lookups by id and name, refusals, paging and removal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_template_cache_orders_changes_and_refuses_unusable_templates() {
    use gateway_core::event::{TemplateChange, TemplateReport};
    use gateway_core::ProviderKind;
    use gateway_http::inbound::templates::{TemplateCache, TemplateSnapshot};

    let redis = TestRedis::single();
    let config = gateway_http::Config::from_toml(&redis.gateway_toml("http://127.0.0.1:9", "")).unwrap();
    let engine = gateway_http::engine::Engine::new(&config.redis, &config.engine).unwrap();
    let cache = TemplateCache::new(engine);
    let at = |s: i64| chrono::DateTime::from_timestamp(s, 0).unwrap();
    let report = |id: &str, name: &str, change: TemplateChange, value: &str, s: i64| TemplateReport {
        provider: ProviderKind::Incs,
        template_id: id.into(),
        template_name: name.into(),
        language: None,
        change,
        new_value: value.into(),
        reason: None,
        at: at(s),
        business_phone: None,
        business_account: None,
    };
    let snapshot = |id: &str, language: &str, status: &str, s: i64| TemplateSnapshot {
        template_id: id.into(),
        name: "order_update".into(),
        language: Some(language.into()),
        status: Some(status.into()),
        status_at: at(s),
        category: Some("UTILITY".into()),
        category_at: at(s),
        quality: None,
        quality_at: at(s),
        variables: None,
    };

    // Created PENDING at second 100; the review lands in the same second: it wins.
    let merged = cache.upsert("acct", &snapshot("1", "en_US", "PENDING", 100)).await.unwrap();
    assert_eq!((merged.changed, merged.status.as_deref()), (true, Some("PENDING")));
    assert!(cache.record("acct", &report("1", "", TemplateChange::Status, "approved", 100)).await.unwrap());
    // A stale provider read of the same second does not undo it; a repeated callback is harmless.
    let merged = cache.upsert("acct", &snapshot("1", "en_US", "PENDING", 100)).await.unwrap();
    assert_eq!((merged.changed, merged.status.as_deref()), (false, Some("APPROVED")));
    assert!(cache.record("acct", &report("1", "", TemplateChange::Status, "APPROVED", 100)).await.unwrap());
    // A late callback never undoes a newer change.
    assert!(cache.record("acct", &report("1", "order_update", TemplateChange::Status, "PAUSED", 200)).await.unwrap());
    assert!(!cache
        .record("acct", &report("1", "order_update", TemplateChange::Status, "APPROVED", 150))
        .await
        .unwrap());
    assert!(cache.record("acct", &report("1", "", TemplateChange::Quality, "YELLOW", 210)).await.unwrap());
    let t = cache.by_id("acct", "1").await.unwrap().unwrap();
    assert_eq!((t.name.as_str(), t.language.as_deref()), ("order_update", Some("en_US")));
    assert_eq!(
        (t.status.as_deref(), t.quality.as_deref(), t.category.as_deref()),
        (Some("PAUSED"), Some("YELLOW"), Some("UTILITY"))
    );
    assert_eq!((t.status_at, t.updated_at), (Some(at(200)), at(210)));

    // A second language, approved; a callback for a template the cache never saw.
    cache.upsert("acct", &snapshot("2", "es", "APPROVED", 300)).await.unwrap();
    assert!(cache.record("acct", &report("3", "welcome", TemplateChange::Status, "REJECTED", 400)).await.unwrap());
    assert_eq!(
        cache.by_name("acct", "order_update", Some("es")).await.unwrap().map(|t| t.template_id),
        Some("2".into())
    );
    assert_eq!(cache.by_name("acct", "order_update", None).await.unwrap().map(|t| t.template_id), Some("2".into()));
    assert_eq!(cache.by_name("acct", "welcome", Some("en")).await.unwrap().map(|t| t.template_id), Some("3".into()));
    assert_eq!(cache.refuses("acct", "order_update", Some("en_US")).await.unwrap().as_deref(), Some("PAUSED"));
    assert_eq!(cache.refuses("acct", "order_update", Some("es")).await.unwrap(), None);
    assert_eq!(cache.refuses("acct", "order_update", None).await.unwrap(), None, "the es variant is usable");
    assert_eq!(cache.refuses("acct", "welcome", None).await.unwrap().as_deref(), Some("REJECTED"));
    assert_eq!(cache.refuses("acct", "unknown", None).await.unwrap(), None);
    assert_eq!(cache.refuses("other-acct", "welcome", None).await.unwrap(), None, "accounts are apart");

    let ids = |page: Vec<gateway_http::inbound::templates::CachedTemplate>| {
        page.into_iter().map(|t| t.template_id).collect::<Vec<_>>()
    };
    assert_eq!(ids(cache.page("acct", None, 2).await.unwrap()), ["1", "2"]);
    assert_eq!(ids(cache.page("acct", Some("2"), 2).await.unwrap()), ["3"]);

    cache.remove("acct", "1").await.unwrap();
    assert_eq!(cache.by_id("acct", "1").await.unwrap(), None);
    assert_eq!(cache.refuses("acct", "order_update", Some("en_US")).await.unwrap(), None);
    assert_eq!(ids(cache.page("acct", None, 10).await.unwrap()), ["2", "3"]);
    let mut client = redis.client().await;
    let keys: Vec<String> = client.query(redis::cmd("KEYS").arg("gw:tpl:*")).await;
    assert!(keys.iter().all(|k| k.starts_with("gw:tpl:{acct}:")), "{keys:?}");
}
