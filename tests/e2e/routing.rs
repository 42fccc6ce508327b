//! Routing, InnoPaaS, failover and batches (DESIGN.md §4).

use std::time::Duration;

use gateway_tests::{eventually, TestGateway, TestRedis, TestSandbox, API_KEY};
use serde_json::{json, Value};

/// A WhatsApp sender `dual` with an INCS account first and an InnoPaaS account second, a fast
/// retry schedule and a circuit that opens after 3 failures for 1 s.
fn dual(sandbox_url: &str) -> String {
    format!(
        r#"
[[accounts]]
name = "incs-dual"
provider = "incs"
[accounts.incs]
chat_base_url = "{sandbox_url}"
rcs_base_url = "{sandbox_url}"
api_base_url = "{sandbox_url}"
certification_code = "{code}"
timeout_ms = 2000
channels = ["whatsapp"]

[[accounts]]
name = "innopaas-dual"
provider = "innopaas"
[accounts.innopaas]
base_url = "{sandbox_url}"
app_key = "sandbox-innopaas-appkey"
token = "sandbox-innopaas-token"
waba_id = "102290129340398"
send_number = "85230001234"
default_language = "en_US"

[[senders]]
name = "dual"
channel = "whatsapp"
accounts = ["incs-dual", "innopaas-dual"]

[[routes]]
sender = "dual"
country_prefixes = ["62"]
accounts = ["innopaas-dual", "incs-dual"]
"#,
        code = gateway_tests::INCS_CODE
    )
}

async fn gateway(redis: &TestRedis, sandbox: &TestSandbox) -> TestGateway {
    let toml = redis
        .config(&sandbox.url(), &dual(&sandbox.url()))
        .set("engine", "circuit_failure_threshold", 3)
        .set("engine", "circuit_open_ms", 1000)
        .text();
    TestGateway::spawn(&toml).await
}

fn on_dual(mut body: Value) -> Value {
    body["channel"] = json!("whatsapp");
    body["to"] = json!("85268411234");
    body["sender"] = json!("dual");
    body
}

async fn accepted(res: reqwest::Response) -> String {
    let status = res.status();
    let body: Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{body}");
    body["id"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn innopaas_gets_the_v3_body_with_both_auth_headers() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway(&redis, &sandbox).await;
    sandbox
        .innopaas_template(json!({"name": "order_update", "category": 3, "messageLanguage": "en_US", "headerType": 3,
            "caption": "https://static.example.com/header.png", "messageBody": "Hi {{1}}, order {{2}} has shipped."}))
        .await;
    let pinned = |v: Value| {
        let mut v = on_dual(v);
        v["provider"] = json!("innopaas");
        v
    };
    let cases = [
        pinned(json!({"type": "text", "text": "Hello"})),
        pinned(json!({"type": "template", "template": {"name": "order_update", "language": "en_US", "components": [
            {"type": "header", "parameters": [{"type": "image", "image": {"link": "https://static.example.com/header.png"}}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Ada"}, {"type": "text", "text": "A-1001"}]}
        ]}})),
        pinned(
            json!({"type": "location", "location": {"latitude": 22.2855, "longitude": 114.1577, "name": "Office", "address": "1 Queen's Rd"}}),
        ),
        pinned(json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Confirm?"},
            "action": {"buttons": [{"type": "reply", "reply": {"id": "yes", "title": "Yes"}}, {"type": "reply", "reply": {"id": "no", "title": "No"}}]}}})),
    ];
    let mut ids = Vec::new();
    for c in &cases {
        ids.push(accepted(gw.send(c).await).await);
    }
    for id in &ids {
        let m = gw.wait_for_status(id, "submitted", Duration::from_secs(3)).await;
        assert_eq!(m["provider"], "innopaas");
        assert_eq!(m["account"], "innopaas-dual");
    }
    let reqs = sandbox.requests("innopaas").await;
    assert_eq!(reqs.len(), 4, "{reqs:#?}");
    for r in &reqs {
        assert_eq!(r["path"], "/api/whatsapp/v3/msg/submit");
        assert_eq!(r["headers"]["appkey"], "sandbox-innopaas-appkey");
        assert_eq!(r["headers"]["authorization"], "sandbox-innopaas-token");
        assert_eq!(r["body"]["wabaId"], "102290129340398");
        assert_eq!(r["body"]["sendNumber"], "85230001234");
        assert_eq!(r["body"]["recipientNumber"], "85268411234");
        assert_eq!(r["body"]["uid"].as_str().map(str::len), Some(32));
    }
    let by_type =
        |t: &str| reqs.iter().find(|r| r["body"]["messageType"] == t).map(|r| r["body"].clone()).unwrap_or(Value::Null);
    assert_eq!(by_type("text")["body"], "Hello");
    let template = by_type("template");
    assert_eq!(template["templateName"], "order_update");
    assert_eq!(template["language"], "en_US");
    assert_eq!(template["header"]["type"], "image");
    assert_eq!(template["header"]["link"], "https://static.example.com/header.png");
    assert_eq!(template["bodyParams"], json!(["Ada", "A-1001"]));
    let location = by_type("location");
    assert_eq!(location["location"]["latitude"], "22.2855");
    assert_eq!(location["location"]["longitude"], "114.1577");
    assert_eq!(location["location"]["name"], "Office");
    let interactive = by_type("interactive");
    assert_eq!(interactive["interactive"]["type"], "button");
    assert_eq!(interactive["interactive"]["action"]["buttons"][0]["id"], "yes");
    assert_eq!(interactive["interactive"]["action"]["buttons"][0]["title"], "Yes");
    assert!(sandbox.requests("incs").await.is_empty(), "pinned to InnoPaaS, nothing goes to INCS");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_carousel_goes_only_where_it_can() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway(&redis, &sandbox).await;
    let card = |i: u32| {
        json!({"card_index": i, "type": "cta_url", "header": {"type": "image", "image": {"link": "https://a.example/c.png"}},
        "action": {"name": "cta_url", "parameters": {"display_text": "Buy", "url": "https://a.example/buy"}}})
    };
    let carousel =
        on_dual(json!({"type": "interactive", "interactive": {"type": "carousel", "body": {"text": "New in"},
        "action": {"cards": [card(0), card(1)]}}}));
    let mut pinned = carousel.clone();
    pinned["provider"] = json!("innopaas");
    let res = gw.send(&pinned).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert!(problem["detail"].as_str().unwrap().contains("carousel"), "{problem}");
    let id = accepted(gw.send(&carousel).await).await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    assert_eq!(m["provider"], "incs");
    // A location INCS cannot carry goes to InnoPaaS without being pinned.
    let id =
        accepted(gw.send(&on_dual(json!({"type": "location", "location": {"latitude": 1.5, "longitude": 2.5}}))).await)
            .await;
    assert_eq!(gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await["provider"], "innopaas");
    // A routing rule: Indonesian numbers go to InnoPaaS first.
    let mut id_msg = on_dual(json!({"type": "text", "text": "Halo"}));
    id_msg["to"] = json!("6281519140327");
    let id = accepted(gw.send(&id_msg).await).await;
    assert_eq!(gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await["provider"], "innopaas");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failover_on_outage_and_back_when_the_circuit_closes() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway(&redis, &sandbox).await;
    sandbox.fault(json!({"provider": "incs", "status": 500})).await;
    let mut ids = Vec::new();
    for i in 0..8 {
        ids.push(accepted(gw.send(&on_dual(json!({"type": "text", "text": format!("down-{i}")}))).await).await);
    }
    for id in &ids {
        let m = gw.wait_for_status(id, "submitted", Duration::from_secs(6)).await;
        assert_eq!(m["provider"], "innopaas", "{m}");
    }
    let first = gw.get_message(&ids[0]).await;
    let providers: Vec<&str> =
        first["attempts"].as_array().unwrap().iter().filter_map(|a| a["provider"].as_str()).collect();
    assert_eq!(providers.last(), Some(&"innopaas"));
    assert!(providers.contains(&"incs"), "the first message tried INCS first: {providers:?}");

    // Readiness reports the open circuit and stays ready: Redis answers.
    let open = eventually(Duration::from_secs(5), || async {
        let res = gw.client.get(format!("{}/health/ready", gw.base_url)).send().await.unwrap();
        assert_eq!(res.status(), 200, "an open circuit made the gateway unready");
        let ready: Value = res.json().await.unwrap();
        let accounts = ready["accounts"].as_array().cloned().unwrap_or_default();
        accounts.into_iter().find(|a| a["provider"] == "incs" && a["circuit"] == "open")
    })
    .await;
    assert!(open.is_some(), "readiness never showed the INCS circuit open");

    // INCS recovers; once the circuit has closed, messages go back to INCS.
    sandbox.clear_faults().await;
    let back = eventually(Duration::from_secs(8), || async {
        let id = accepted(gw.send(&on_dual(json!({"type": "text", "text": "back"}))).await).await;
        let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
        (m["provider"] == "incs").then_some(())
    })
    .await;
    assert!(back.is_some(), "messages never returned to INCS");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn account_errors_fail_over_but_content_errors_do_not() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway(&redis, &sandbox).await;
    // A content rejection (Meta 132012 inside 10002): fails, no failover.
    sandbox
        .fault(json!({"provider": "incs", "status": 200, "count": 1, "match": {"path": "/external/messages/whatsapp"},
            "body": {"status": "error", "code": 10002,
            "message": "(#132012) Parameter format does not match format in the created template", "data": {}, "error": {}}}))
        .await;
    let template = on_dual(json!({"type": "template", "template": {"name": "test_header_text_2", "components": [
        {"type": "body", "parameters": [{"type": "text", "text": "x"}]}]}}));
    let id = accepted(gw.send(&template).await).await;
    let m = gw.wait_for_status(&id, "failed", Duration::from_secs(3)).await;
    assert_eq!(m["error"]["code"], "132012");
    assert!(sandbox.requests("innopaas").await.is_empty(), "a content error must not fail over");

    // An account rejection (certification code invalid): the next account carries it.
    sandbox.fault(json!({"provider": "incs", "status": 10001, "count": 1})).await;
    let id = accepted(gw.send(&on_dual(json!({"type": "text", "text": "acct"}))).await).await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    assert_eq!(m["provider"], "innopaas");
    let outcomes: Vec<&str> = m["attempts"].as_array().unwrap().iter().filter_map(|a| a["outcome"].as_str()).collect();
    assert_eq!(outcomes, ["rejected_account", "submitted"]);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_of_1000_with_one_bad_item() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let toml = redis.config(&sandbox.url(), "").lane_rate("incs-whatsapp", 5000, 100).text();
    let gw = TestGateway::spawn(&toml).await;
    let mut messages: Vec<Value> = (0..1000)
        .map(|i| json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("batch-{i}"), "idempotency_key": format!("b-{i}")}))
        .collect();
    messages[417] = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "x".repeat(5000)});
    let url = format!("{}/v1/messages/batch", gw.base_url);
    let res = gw.client.post(&url).bearer_auth(API_KEY).json(&json!({"messages": messages})).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["accepted"], 999);
    assert_eq!(out["refused"], 1);
    let results = out["results"].as_array().unwrap();
    assert!(results.iter().enumerate().all(|(i, r)| r["index"] == i), "results are in request order");
    assert_eq!(results[417]["status"], 422);
    assert_eq!(results[417]["problem"]["errors"][0]["field"], "messages[417].text");
    let sent = eventually(Duration::from_secs(30), || async {
        let n = sandbox.requests("incs").await.len();
        (n >= 999).then_some(n)
    })
    .await;
    assert_eq!(sent, Some(999));

    // The same batch again: every item replays (idempotency per item), nothing new is sent.
    let again = gw.client.post(&url).bearer_auth(API_KEY).json(&json!({"messages": messages})).send().await.unwrap();
    let again: Value = again.json().await.unwrap();
    assert_eq!(again["results"][0]["idempotent_replayed"], true);
    assert_eq!(again["results"][0]["message"]["id"], results[0]["message"]["id"]);

    let too_many: Vec<Value> =
        (0..1001).map(|_| json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "x"})).collect();
    let res = gw.client.post(&url).bearer_auth(API_KEY).json(&json!({"messages": too_many})).send().await.unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "messages");
    let sent = eventually(Duration::from_secs(10), || async {
        let n = sandbox.requests("incs").await.len();
        (n >= 999).then_some(n)
    });
    assert_eq!(sent.await, Some(999), "the refused batch sent nothing, the accepted one everything");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn senders_show_their_accounts_live() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw = gateway(&redis, &sandbox).await;
    let res = gw.client.get(format!("{}/v1/senders", gw.base_url)).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    let dual = out["items"].as_array().unwrap().iter().find(|s| s["name"] == "dual").cloned().unwrap();
    let accounts: Vec<(&str, &str)> = dual["accounts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["name"].as_str().unwrap(), a["provider"].as_str().unwrap()))
        .collect();
    assert_eq!(accounts, [("incs-dual", "incs"), ("innopaas-dual", "innopaas")]);
    assert_eq!(dual["accounts"][0]["circuit"], "closed");
    assert_eq!(dual["accounts"][0]["rate_per_second"], 80);
    assert!(dual["accounts"][0]["paused_until"].is_null());
    gw.stop().await;
}
