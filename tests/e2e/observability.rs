//! What operators and callers see (DESIGN.md §7, §2): request ids and spans in the logs, with no
//! secret in them; the OpenAPI document and Swagger UI; every metric family, with route templates.

use std::collections::BTreeSet;
use std::process::{Command, Stdio};
use std::time::Duration;

use gateway_tests::{
    eventually, free_port, gateway_binary, gateway_toml, metric_value, ConfigToml, RedisServer, TestGateway,
    TestSandbox, API_KEY, INCS_CODE,
};
use provider_sandbox::SandboxConfig;
use serde_json::{json, Value};

const CALLBACK_TOKEN: &str = "sandbox-incs-callback";
use gateway_tests::WEBHOOK_SECRET;

async fn gateway() -> (gateway_tests::TestRedis, TestSandbox, TestGateway) {
    gateway_tests::gateway_with_sandbox().await
}

fn request_id_of(res: &reqwest::Response) -> Option<String> {
    res.headers().get("x-request-id").and_then(|v| v.to_str().ok()).map(str::to_owned)
}

fn is_uuid_v7(id: &str) -> bool {
    uuid::Uuid::parse_str(id).is_ok_and(|u| u.get_version_num() == 7)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_request_id_is_echoed() {
    let (_redis, _sandbox, gw) = gateway().await;
    let res = gw
        .client
        .post(format!("{}/v1/messages", gw.base_url))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", "test-123")
        .json(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(request_id_of(&res).as_deref(), Some("test-123"));

    // Refusals carry it too, and so do routes outside the API.
    let refused =
        gw.client.get(format!("{}/v1/senders", gw.base_url)).header("X-Request-Id", "test-124").send().await.unwrap();
    assert_eq!(refused.status(), 401);
    assert_eq!(request_id_of(&refused).as_deref(), Some("test-124"));
    let missing = gw
        .client
        .get(format!("{}/no/such/route", gw.base_url))
        .header("X-Request-Id", "test-125")
        .send()
        .await
        .unwrap();
    assert_eq!(missing.status(), 404);
    assert_eq!(request_id_of(&missing).as_deref(), Some("test-125"));
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_is_generated_when_there_is_none_or_it_is_not_sane() {
    let (_redis, _sandbox, gw) = gateway().await;
    let live = || gw.client.get(format!("{}/health/live", gw.base_url));
    let first = request_id_of(&live().send().await.unwrap()).unwrap();
    let second = request_id_of(&live().send().await.unwrap()).unwrap();
    assert!(is_uuid_v7(&first), "{first}");
    assert!(is_uuid_v7(&second), "{second}");
    assert_ne!(first, second);

    for insane in ["a".repeat(65), "two words".to_owned(), String::new()] {
        let res = live().header("X-Request-Id", insane.as_str()).send().await.unwrap();
        let id = request_id_of(&res).unwrap();
        assert!(is_uuid_v7(&id), "`{insane}` gave {id}");
    }
    gw.stop().await;
}

/// A gateway process logging JSON at debug level to a file: every line of a request has its id,
/// every line of a send attempt has the message id, provider and lane, and no line holds a secret.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logs_carry_request_and_attempt_spans_and_no_secret() {
    let redis = RedisServer::start();
    let port = free_port();
    let sandbox = TestSandbox::spawn_with(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        incs_callback_url: Some(format!("http://127.0.0.1:{port}/callbacks/incs/{CALLBACK_TOKEN}")),
        incs_callback_delays: [Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(150)],
        ..Default::default()
    })
    .await;
    let subscription = gateway_tests::sink_subscription(&sandbox.url(), &["*"], "");
    let toml = ConfigToml::parse(&gateway_toml(&redis.url(), &sandbox.url(), &subscription)).listen(port).text();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("gateway.toml");
    std::fs::write(&config, toml).unwrap();
    let log_path = dir.path().join("gateway.log");
    let log = std::fs::File::create(&log_path).unwrap();
    let mut child = Command::new(gateway_binary())
        .arg("--config")
        .arg(&config)
        .env("LOG_FORMAT", "json")
        .env("RUST_LOG", "debug")
        .stdout(Stdio::from(log.try_clone().unwrap()))
        .stderr(Stdio::from(log))
        .spawn()
        .unwrap();
    let base = format!("http://127.0.0.1:{port}");
    let client = reqwest::Client::new();
    let up = eventually(Duration::from_secs(20), || async {
        client.get(format!("{base}/health/ready")).send().await.ok().filter(|r| r.status().is_success())
    })
    .await;
    assert!(up.is_some(), "the gateway process did not come up");

    let res = client
        .post(format!("{base}/v1/messages"))
        .bearer_auth(API_KEY)
        .header("X-Request-Id", "log-test-1")
        .json(&json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "Hello"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    let read = eventually(Duration::from_secs(10), || async {
        let m: Value =
            client.get(format!("{base}/v1/messages/{id}")).bearer_auth(API_KEY).send().await.ok()?.json().await.ok()?;
        (m["status"] == "read").then_some(())
    })
    .await;
    assert!(read.is_some(), "the message never reached `read` through the sandbox's callbacks");
    let delivered = eventually(Duration::from_secs(10), || async {
        let hooks: Vec<Value> =
            client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.ok()?.json().await.ok()?;
        (hooks.len() >= 3).then_some(())
    })
    .await;
    assert!(delivered.is_some(), "the subscriber never got the status events");
    // A refused callback (wrong body) and an unauthenticated call also log.
    let _ = client.post(format!("{base}/callbacks/incs/{CALLBACK_TOKEN}")).body("{not json").send().await;
    let _ = client.get(format!("{base}/v1/messages/{id}")).bearer_auth("not-a-key").send().await;

    let _ = Command::new("kill").args(["-TERM", &child.id().to_string()]).status();
    let exited = eventually(Duration::from_secs(15), || {
        let done = child.try_wait().ok().flatten().is_some();
        async move { done.then_some(()) }
    })
    .await;
    if exited.is_none() {
        let _ = child.kill();
    }
    let _ = child.wait();

    let text = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<Value> = text.lines().filter_map(|l| serde_json::from_str(l).ok()).collect();
    assert!(lines.len() > 10, "too few JSON log lines:\n{text}");
    let spans = |line: &Value| line["spans"].as_array().cloned().unwrap_or_default();
    let in_span = |line: &Value, name: &str| spans(line).into_iter().find(|s| s["name"] == name);

    let request_lines: Vec<&Value> =
        lines.iter().filter(|l| in_span(l, "request").is_some_and(|s| s["request_id"] == "log-test-1")).collect();
    assert!(!request_lines.is_empty(), "no line in the span of request log-test-1:\n{text}");
    for l in &request_lines {
        let span = in_span(l, "request").unwrap();
        assert_eq!(span["method"], "POST", "{l}");
        assert_eq!(span["route"], "/v1/messages", "{l}");
    }
    assert!(
        request_lines.iter().any(|l| l["message"] == "request" && l["status"] == 202),
        "no closing line for the request"
    );

    let attempt = lines
        .iter()
        .filter_map(|l| in_span(l, "attempt"))
        .find(|s| s["message_id"] == id.as_str())
        .unwrap_or_else(|| panic!("no line in the attempt span of {id}:\n{text}"));
    assert_eq!(attempt["provider"], "incs");
    assert_eq!(attempt["lane"], "incs-whatsapp");

    // Callback lines name the route template, never the token in the path.
    let callback = lines.iter().filter_map(|l| in_span(l, "request")).find(|s| s["route"] == "/callbacks/incs/{token}");
    assert!(callback.is_some(), "no callback request span:\n{text}");

    for secret in [API_KEY, INCS_CODE, CALLBACK_TOKEN, WEBHOOK_SECRET, "c2FuZGJveC13ZWJob29rLXNlY3JldA"] {
        let leaked: Vec<&str> = text.lines().filter(|l| l.contains(secret)).collect();
        assert!(leaked.is_empty(), "the secret `{secret}` is in the log:\n{}", leaked.join("\n"));
    }
}

async fn served_spec(gw: &TestGateway) -> Value {
    let res = gw.client.get(format!("{}/openapi.json", gw.base_url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

fn operations(spec: &Value) -> Vec<(String, String, Value)> {
    let mut ops = Vec::new();
    for (path, item) in spec["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap() {
            if ["get", "put", "post", "delete", "patch", "head", "options", "trace"].contains(&method.as_str()) {
                ops.push((method.to_uppercase(), path.clone(), op.clone()));
            }
        }
    }
    ops
}

fn refs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, v) in m {
                match (k.as_str(), v) {
                    ("$ref", Value::String(r)) => out.push(r.clone()),
                    _ => refs(v, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}

/// Removes what the served document adds for a deployment: the enums of sender and account names.
fn without_deployment_enums(doc: &mut Value) {
    for schema in doc["components"]["schemas"].as_object_mut().unwrap().values_mut() {
        if let Some(sender) = schema.pointer_mut("/properties/sender").and_then(Value::as_object_mut) {
            sender.remove("enum");
        }
    }
    for item in doc["paths"].as_object_mut().unwrap().values_mut() {
        for op in item.as_object_mut().unwrap().values_mut() {
            for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                if ["sender", "name", "account"].contains(&p["name"].as_str().unwrap_or_default()) {
                    p["schema"].as_object_mut().unwrap().remove("enum");
                }
            }
        }
    }
}

/// Operations that take no input and need no key: nothing a caller sends can be refused.
const NO_CLIENT_ERRORS: &[&str] = &["health.live", "health.ready", "metrics"];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_served_openapi_document_is_the_committed_one_and_complete() {
    let (_redis, _sandbox, gw) = gateway().await;
    let served = served_spec(&gw).await;
    let committed_path = concat!(env!("CARGO_MANIFEST_DIR"), "/../openapi/openapi.json");
    let committed: Value = serde_json::from_str(&std::fs::read_to_string(committed_path).unwrap()).unwrap();
    // The served document names this deployment's senders and accounts; otherwise it is the
    // committed one.
    let whatsapp_senders = &served["components"]["schemas"]["WhatsappTextMessage"]["properties"]["sender"]["enum"];
    assert_eq!(whatsapp_senders, &json!(["hk-main", null]), "the WhatsApp senders are not listed");
    assert_eq!(
        served["components"]["schemas"]["ViberTextMessage"]["properties"]["sender"]["enum"],
        json!(["viber-main", null])
    );
    let mut general = served.clone();
    without_deployment_enums(&mut general);
    assert!(general == committed, "the served /openapi.json differs from openapi/openapi.json: run `make openapi`");
    assert_eq!(served["openapi"], "3.1.0");
    assert_eq!(served["components"]["securitySchemes"]["api_key"]["scheme"], "bearer");

    let mut ids = BTreeSet::new();
    for (method, path, op) in operations(&served) {
        let name = format!("{method} {path}");
        let id = op["operationId"].as_str().unwrap_or_else(|| panic!("{name} has no operationId"));
        assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        assert!(op["summary"].is_string() || op["description"].is_string(), "{name} is not described");
        let responses = op["responses"].as_object().unwrap_or_else(|| panic!("{name} has no responses"));
        for (status, res) in responses {
            assert!(res["description"].as_str().is_some_and(|d| !d.is_empty()), "{name} {status} has no description");
            if status.starts_with('4') || status.starts_with('5') {
                let is_problem =
                    res["content"]["application/problem+json"]["schema"]["$ref"] == "#/components/schemas/Problem";
                let is_readiness = id == "health.ready";
                assert!(is_problem || is_readiness, "{name} {status} is not a problem+json Problem");
            }
        }
        if !NO_CLIENT_ERRORS.contains(&id) {
            assert!(responses.keys().any(|s| s.starts_with('4')), "{name} documents no 4xx");
        }
        if op["requestBody"].is_object() {
            for status in ["400", "413", "415"] {
                assert!(responses.contains_key(status), "{name} takes a body but does not document {status}");
            }
        }
        if op["security"].as_array().is_some_and(|s| !s.is_empty()) {
            for status in ["401", "403", "429"] {
                assert!(responses.contains_key(status), "{name} needs an API key but does not document {status}");
            }
            assert!(
                responses["429"]["headers"]["Retry-After"].is_object(),
                "{name}: 429 does not document Retry-After"
            );
            assert!(
                responses["401"]["headers"]["WWW-Authenticate"].is_object(),
                "{name}: 401 does not document WWW-Authenticate"
            );
        }
    }
    assert!(ids.len() >= 13, "{ids:?}");

    let mut all = Vec::new();
    refs(&served, &mut all);
    for r in all {
        let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("external $ref {r}"));
        assert!(served.pointer(pointer).is_some(), "dangling $ref {r}");
    }
    gw.stop().await;
}

/// Every example the document gives for a send is a request the gateway accepts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_documented_examples_are_accepted() {
    let (_redis, _sandbox, gw) = gateway().await;
    let spec = served_spec(&gw).await;
    let examples = spec["paths"]["/v1/messages"]["post"]["requestBody"]["content"]["application/json"]["examples"]
        .as_object()
        .cloned()
        .unwrap_or_default();
    assert!(examples.len() >= 3, "too few send examples: {examples:?}");
    for (name, example) in examples {
        let res = gw.send(&example["value"]).await;
        let status = res.status();
        assert_eq!(status, 202, "example `{name}`: {}", res.text().await.unwrap_or_default());
    }
    let batch = &spec["paths"]["/v1/messages/batch"]["post"]["requestBody"]["content"]["application/json"]["example"];
    let res = gw
        .client
        .post(format!("{}/v1/messages/batch", gw.base_url))
        .bearer_auth(API_KEY)
        .json(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out: Value = res.json().await.unwrap();
    assert_eq!(out["refused"], 0, "{out}");
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn swagger_ui_and_every_asset_it_loads_are_served() {
    let (_redis, _sandbox, gw) = gateway().await;
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let bare = no_redirects.get(format!("{}/docs", gw.base_url)).send().await.unwrap();
    assert_eq!(bare.status(), 302);
    assert_eq!(bare.headers().get("location").and_then(|v| v.to_str().ok()), Some("/docs/"));

    let res = gw.client.get(format!("{}/docs/", gw.base_url)).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let content_type = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
    assert!(content_type.starts_with("text/html"), "{content_type}");
    let html = res.text().await.unwrap();
    let assets: Vec<String> = ["src=\"", "href=\""]
        .iter()
        .flat_map(|attr| {
            html.split(attr).skip(1).filter_map(|rest| rest.split('"').next()).map(str::to_owned).collect::<Vec<_>>()
        })
        .collect();
    let scripts = assets.iter().filter(|a| a.ends_with(".js")).count();
    let styles = assets.iter().filter(|a| a.ends_with(".css")).count();
    assert!(scripts >= 2 && styles >= 1, "the page references too few assets: {assets:?}");
    for asset in &assets {
        assert!(!asset.starts_with("http"), "{asset} is not served by the gateway (offline use)");
        let url = match asset.strip_prefix("./") {
            Some(rel) => format!("{}/docs/{rel}", gw.base_url),
            None if asset.starts_with('/') => format!("{}{asset}", gw.base_url),
            None => format!("{}/docs/{asset}", gw.base_url),
        };
        let res = gw.client.get(&url).send().await.unwrap();
        assert_eq!(res.status(), 200, "{url}");
        assert!(!res.bytes().await.unwrap().is_empty(), "{url} is empty");
    }
    let initializer = gw.client.get(format!("{}/docs/swagger-initializer.js", gw.base_url)).send().await.unwrap();
    assert!(initializer.text().await.unwrap().contains("/openapi.json"), "Swagger UI does not load /openapi.json");
    gw.stop().await;
}

/// Every family DESIGN.md §7 names, with the labels it names.
const FAMILIES: &[(&str, &[&str])] = &[
    ("gateway_http_requests_total", &["method", "route", "status"]),
    ("gateway_http_request_duration_seconds_bucket", &["method", "route"]),
    ("gateway_messages_accepted_total", &["channel", "type"]),
    ("gateway_provider_requests_total", &["provider", "channel", "outcome"]),
    ("gateway_provider_request_duration_seconds_bucket", &["provider", "channel"]),
    ("gateway_status_transitions_total", &["status"]),
    ("gateway_queue_depth", &["state"]),
    ("gateway_retries_total", &["reason"]),
    ("gateway_lane_pauses_total", &["lane"]),
    ("gateway_lane_paused", &["lane"]),
    ("gateway_rate_limit_hits_total", &["lane"]),
    ("gateway_circuit_state", &["lane"]),
    ("gateway_callbacks_total", &["provider", "event", "outcome"]),
    ("gateway_dead_letters_total", &[]),
    ("gateway_possible_duplicates_total", &[]),
    ("gateway_accept_to_submitted_seconds_bucket", &["provider"]),
    ("gateway_accept_to_delivered_seconds_bucket", &["provider"]),
];

fn samples<'a>(text: &'a str, family: &str) -> Vec<&'a str> {
    text.lines().filter(|l| !l.starts_with('#') && l.split([' ', '{']).next() == Some(family)).collect()
}

fn label_values(text: &str, family: &str, label: &str) -> BTreeSet<String> {
    let key = format!("{label}=\"");
    samples(text, family)
        .iter()
        .filter_map(|l| l.split(key.as_str()).nth(1).and_then(|rest| rest.split('"').next()).map(str::to_owned))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_design_metric_family_is_exported_with_route_templates() {
    let redis = RedisServer::start();
    let port = free_port();
    let sandbox = TestSandbox::spawn_with(SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        incs_callback_url: Some(format!("http://127.0.0.1:{port}/callbacks/incs/{CALLBACK_TOKEN}")),
        incs_callback_delays: [Duration::from_millis(50), Duration::from_millis(100), Duration::from_millis(150)],
        ..Default::default()
    })
    .await;
    // The RCS lane at 1 message/s so that a few RCS sends hit its rate; queues sampled often.
    let toml = ConfigToml::parse(&gateway_toml(&redis.url(), &sandbox.url(), ""))
        .listen(port)
        .set("engine", "sample_interval_ms", 100)
        .lane_rate("incs-rcs", 1, 1)
        .text();
    let gw = TestGateway::spawn(&toml).await;
    let accepted = |res: reqwest::Response| async move {
        assert_eq!(res.status(), 202);
        res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
    };
    let text = |to: &str| json!({"channel": "whatsapp", "to": to, "type": "text", "text": "metrics"});

    // Delivered through the sandbox's callbacks.
    let ok = accepted(gw.send(&text("85268411234")).await).await;
    gw.wait_until_passed(&ok, "submitted", Duration::from_secs(5)).await;
    // A 429: the lane pauses. Then 500s until the retries run out: a dead letter.
    sandbox.fault(json!({"provider": "incs", "status": 429, "retry_after": 1, "count": 1})).await;
    let throttled = accepted(gw.send(&text("85268411235")).await).await;
    gw.wait_until_passed(&throttled, "submitted", Duration::from_secs(5)).await;
    sandbox.fault(json!({"provider": "incs", "status": 500, "count": 3})).await;
    let dead = accepted(gw.send(&text("85268411236")).await).await;
    gw.wait_for_status(&dead, "failed", Duration::from_secs(5)).await;
    // Three RCS messages on a 1/s lane.
    let mut rcs = Vec::new();
    for i in 0..3 {
        rcs.push(
            accepted(
                gw.send(&json!({"channel": "rcs", "to": format!("8526841300{i}"), "type": "text", "text": "hi"})).await,
            )
            .await,
        );
    }
    gw.wait_for_status(&ok, "read", Duration::from_secs(5)).await;
    for id in &rcs {
        gw.wait_until_passed(id, "submitted", Duration::from_secs(6)).await;
    }
    // API traffic on templated routes, and a path no route matches.
    let _ = gw.client.post(format!("{}/callbacks/incs/{CALLBACK_TOKEN}", gw.base_url)).body("{}").send().await.unwrap();
    let _ = gw.client.get(format!("{}/v1/messages/{ok}/nothing-here", gw.base_url)).send().await.unwrap();

    // The queue sampler runs on its own clock: wait for a sample that has every family.
    let complete = |metrics: &str| {
        FAMILIES.iter().all(|(family, labels)| {
            !samples(metrics, family).is_empty()
                && labels.iter().all(|label| !label_values(metrics, family, label).is_empty())
        })
    };
    let sampled = eventually(Duration::from_secs(5), || async {
        let text = gw.metrics().await;
        complete(&text).then_some(text)
    });
    // Past the deadline, the assertions below name what is missing.
    let metrics = match sampled.await {
        Some(text) => text,
        None => gw.metrics().await,
    };
    for (family, labels) in FAMILIES {
        assert!(!samples(&metrics, family).is_empty(), "{family} has no sample:\n{metrics}");
        for label in *labels {
            assert!(!label_values(&metrics, family, label).is_empty(), "{family} has no `{label}` label:\n{metrics}");
        }
    }
    let has = |family: &str, label: &str, value: &str| label_values(&metrics, family, label).contains(value);
    assert!(
        has("gateway_messages_accepted_total", "channel", "rcs")
            && has("gateway_messages_accepted_total", "type", "text")
    );
    for outcome in ["submitted", "throttled", "transient"] {
        assert!(has("gateway_provider_requests_total", "outcome", outcome), "no provider outcome {outcome}");
    }
    assert!(has("gateway_callbacks_total", "event", "status"), "no status callback counted");
    for state in ["ready", "scheduled", "in_flight", "dead_letter"] {
        assert!(has("gateway_queue_depth", "state", state), "no queue depth for {state}");
    }
    assert!(has("gateway_rate_limit_hits_total", "lane", "incs-rcs"), "the RCS lane never hit its rate");
    assert!(has("gateway_lane_pauses_total", "lane", "incs-whatsapp"), "the 429 paused no lane");
    assert!(metric_value(&metrics, "gateway_dead_letters_total") >= 1.0, "no dead letter counted");

    // Route labels are the templates the API documents, never a raw id or token.
    let spec = served_spec(&gw).await;
    let mut known: BTreeSet<String> = spec["paths"].as_object().unwrap().keys().cloned().collect();
    known.extend(["/openapi.json", "/docs", "/docs/{_:.*}", "unmatched"].map(str::to_owned));
    let routes = label_values(&metrics, "gateway_http_requests_total", "route");
    for route in &routes {
        assert!(known.contains(route), "route label `{route}` is not a route template");
    }
    for template in ["/v1/messages", "/v1/messages/{id}", "/callbacks/incs/{token}", "unmatched"] {
        assert!(routes.contains(template), "no requests counted for {template}: {routes:?}");
    }
    for raw in [ok.as_str(), dead.as_str(), CALLBACK_TOKEN] {
        assert!(!metrics.contains(raw), "`{raw}` is in /metrics");
    }
    gw.stop().await;
}

/// A method a documented path does not take gets 405 naming the ones it does (RFC 9110 §15.5.6),
/// as a problem; an undocumented path stays a 404.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_wrong_method_gets_405_with_allow() {
    let (_redis, _sandbox, gw) = gateway().await;
    for (method, path, allow) in [
        ("PUT", "/v1/messages", "GET, POST"),
        ("TRACE", "/v1/messages", "GET, POST"),
        ("GET", "/v1/messages/batch", "POST"),
        ("DELETE", "/v1/templates", "GET, POST"),
        ("PUT", "/health/ready", "GET"),
        ("POST", "/callbacks/incs/anything", "POST"),
    ] {
        let res = gw
            .client
            .request(method.parse().unwrap(), format!("{}{path}", gw.base_url))
            .bearer_auth(API_KEY)
            .send()
            .await
            .unwrap();
        if method == "POST" {
            // The callback path does take POST: an unknown token is a 404, not a 405.
            assert_eq!(res.status(), 404, "{method} {path}");
            continue;
        }
        assert_eq!(res.status(), 405, "{method} {path}");
        assert_eq!(res.headers()["allow"], allow, "{method} {path}");
        assert_eq!(res.headers()["content-type"], "application/problem+json");
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["status"], 405);
    }
    let res = gw.client.get(format!("{}/v1/nothing", gw.base_url)).send().await.unwrap();
    assert_eq!(res.status(), 404);
    gw.stop().await;
}

/// Before any message, callback or event, every family a dashboard reads has its known series
/// at 0: per account, per API key, per provider outcome, per status, per documented route.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_exist_at_zero_before_the_first_event() {
    let (_redis, _sandbox, gw) = gateway().await;
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    let has = |family: &str, label: &str, value: &str| label_values(&metrics, family, label).contains(value);
    for (family, label, value) in [
        ("gateway_messages_accepted_total", "type", "otp"),
        ("gateway_status_transitions_total", "status", "delivered"),
        ("gateway_retries_total", "reason", "server_error"),
        ("gateway_provider_requests_total", "outcome", "throttled"),
        ("gateway_provider_requests_total", "channel", "viber"),
        ("gateway_queue_depth", "lane", "incs-whatsapp"),
        ("gateway_queue_depth", "state", "dead_letter"),
        ("gateway_circuit_state", "lane", "incs-rcs"),
        ("gateway_lane_paused", "lane", "incs-whatsapp"),
        ("gateway_api_rate_limited_total", "key", "reader"),
        ("gateway_rate_limit_hits_total", "lane", "incs-viber"),
        ("gateway_callbacks_total", "event", "status"),
        ("gateway_webhook_deliveries_total", "outcome", "delivered"),
        ("gateway_http_requests_total", "status", "503"),
        ("gateway_accept_to_delivered_seconds_count", "provider", "incs"),
    ] {
        assert!(has(family, label, value), "{family} has no {label}=\"{value}\" series at start-up:\n{metrics}");
    }
    assert_eq!(metric_value(&metrics, "gateway_messages_accepted_total"), 0.0);
    gw.stop().await;
}
