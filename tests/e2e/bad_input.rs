//! Every bad input gets a 4xx problem+json naming the field: never a 202, a 5xx or a crash.

use gateway_tests::{gateway_toml, RedisServer, TestGateway, TestSandbox, API_KEY, READ_ONLY_KEY};
use serde_json::{json, Value};

struct Case {
    name: &'static str,
    body: String,
    status: u16,
    /// The field the problem must name (None: no field list expected).
    field: Option<&'static str>,
}

fn case(name: &'static str, body: Value, status: u16, field: Option<&'static str>) -> Case {
    Case { name, body: body.to_string(), status, field }
}

fn wa(extra: Value) -> Value {
    let mut base = json!({"channel": "whatsapp", "to": "85268411234"});
    if let (Some(b), Some(e)) = (base.as_object_mut(), extra.as_object()) {
        b.extend(e.clone());
    }
    base
}

fn buttons(n: usize) -> Value {
    let list: Vec<Value> = (0..n)
        .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("Button {i}")}}))
        .collect();
    json!({"type": "interactive", "interactive": {"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": list}}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_get_problem_details_naming_the_field() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;

    let long = |n: usize| "x".repeat(n);
    let mut cases = vec![
        Case { name: "malformed JSON", body: "{\"channel\": \"whatsapp\",".into(), status: 400, field: None },
        Case { name: "not an object", body: "[1,2]".into(), status: 422, field: Some("body") },
        Case {
            name: "trailing garbage",
            body: format!("{} x", wa(json!({"type": "text", "text": "hi"}))),
            status: 400,
            field: None,
        },
        case("wrong type for to", wa(json!({"to": 85268411234u64, "type": "text", "text": "hi"})), 422, Some("to")),
        case(
            "unknown top-level field",
            wa(json!({"type": "text", "text": "hi", "colour": "red"})),
            422,
            Some("colour"),
        ),
        case(
            "unknown nested field",
            wa(json!({"type": "image", "image": {"link": "https://a.example/x.png", "size": 3}})),
            422,
            Some("image.size"),
        ),
        case(
            "media by uploaded id",
            wa(json!({"type": "image", "image": {"id": "1037543291543636"}})),
            422,
            Some("image.id"),
        ),
        case(
            "media by uploaded id beside a link",
            wa(json!({"type": "document", "document": {"link": "https://a.example/x.pdf", "id": "1037543291543636"}})),
            422,
            Some("document.id"),
        ),
        case(
            "unknown channel",
            json!({"channel": "telegram", "to": "85268411234", "type": "text", "text": "hi"}),
            422,
            Some("channel"),
        ),
        case("missing type", wa(json!({"text": "hi"})), 422, Some("type")),
        case("missing content object", wa(json!({"type": "image"})), 422, Some("image")),
        case(
            "second content object",
            wa(json!({"type": "text", "text": "hi", "image": {"link": "https://a.example/x.png"}})),
            422,
            Some("image"),
        ),
        case("letters in phone", wa(json!({"to": "85268abc234", "type": "text", "text": "hi"})), 422, Some("to")),
        case("short phone", wa(json!({"to": "1234567", "type": "text", "text": "hi"})), 422, Some("to")),
        case("long phone", wa(json!({"to": "1234567890123456", "type": "text", "text": "hi"})), 422, Some("to")),
        case(
            "viber does not carry location",
            json!({"channel": "viber", "to": "85268411234", "type": "location",
            "location": {"latitude": 1.0, "longitude": 2.0}}),
            422,
            Some("type"),
        ),
        case(
            "rcs does not carry interactive",
            json!({"channel": "rcs", "to": "85268411234", "type": "interactive",
            "interactive": {"type": "button", "body": {"text": "b"}, "action": {"buttons": []}}}),
            422,
            Some("type"),
        ),
        case("whatsapp text over 4096", wa(json!({"type": "text", "text": long(4097)})), 422, Some("text")),
        case(
            "viber text over 1000",
            json!({"channel": "viber", "to": "85268411234", "type": "text", "text": long(1001)}),
            422,
            Some("text"),
        ),
        case(
            "rcs text over 3072",
            json!({"channel": "rcs", "to": "85268411234", "type": "text", "text": long(3073)}),
            422,
            Some("text"),
        ),
        case("four reply buttons", wa(buttons(4)), 422, Some("interactive.action.buttons")),
        case(
            "image of the wrong kind",
            wa(json!({"type": "image", "image": {"link": "https://a.example/x.gif"}})),
            422,
            Some("image.link"),
        ),
        case("not a URL", wa(json!({"type": "video", "video": {"link": "not a url"}})), 422, Some("video.link")),
        case(
            "metadata over 16 pairs",
            wa(json!({"type": "text", "text": "hi",
            "metadata": (0..17).map(|i| (format!("k{i}"), json!("v"))).collect::<serde_json::Map<_, _>>()})),
            422,
            Some("metadata"),
        ),
        case(
            "send_at too far ahead",
            wa(json!({"type": "text", "text": "hi", "send_at": "2099-01-01T00:00:00Z"})),
            422,
            Some("send_at"),
        ),
        case("unknown sender", wa(json!({"type": "text", "text": "hi", "sender": "nobody"})), 422, Some("sender")),
        case(
            "sender of another channel",
            wa(json!({"type": "text", "text": "hi", "sender": "viber-main"})),
            422,
            Some("sender"),
        ),
        case(
            "INCS cannot carry a WhatsApp location",
            wa(json!({"type": "location",
            "location": {"latitude": 22.3, "longitude": 114.2}})),
            422,
            Some("type"),
        ),
        case(
            "pinned provider without an account",
            wa(json!({"type": "text", "text": "hi", "provider": "innopaas"})),
            422,
            Some("provider"),
        ),
    ];
    let mut title = json!({"type": "reply", "reply": {"id": "b1", "title": long(21)}});
    let mut b = buttons(2);
    b["interactive"]["action"]["buttons"][1] = title.take();
    cases.push(case("button title over 20", wa(b), 422, Some("interactive.action.buttons[1].reply.title")));

    for c in &cases {
        let res = gw
            .client
            .post(format!("{}/v1/messages", gw.base_url))
            .bearer_auth(API_KEY)
            .header("content-type", "application/json")
            .body(c.body.clone())
            .send()
            .await
            .unwrap();
        let status = res.status().as_u16();
        let ct = res.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_owned();
        let problem: Value = res.json().await.unwrap_or(Value::Null);
        assert_eq!(status, c.status, "{}: {problem}", c.name);
        assert_eq!(ct, "application/problem+json", "{}", c.name);
        assert_eq!(problem["status"], c.status, "{}: {problem}", c.name);
        assert!(problem["type"].as_str().is_some_and(|t| t.starts_with("/problems/")), "{}: {problem}", c.name);
        if let Some(field) = c.field {
            let fields: Vec<&str> =
                problem["errors"].as_array().into_iter().flatten().filter_map(|e| e["field"].as_str()).collect();
            assert!(fields.contains(&field), "{}: expected field {field}, got {fields:?} in {problem}", c.name);
        }
    }

    // Nothing of the above reached the provider.
    assert!(sandbox.requests("incs").await.is_empty());
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn size_media_type_and_keys_are_enforced() {
    let (_redis, _sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let url = format!("{}/v1/messages", gw.base_url);
    let ok_body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "hi"});

    let huge = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "x".repeat(1024 * 1024 + 1)});
    let res = gw.client.post(&url).bearer_auth(API_KEY).json(&huge).send().await.unwrap();
    assert_eq!(res.status(), 413);
    assert_eq!(res.headers()["content-type"], "application/problem+json");

    let res = gw
        .client
        .post(&url)
        .bearer_auth(API_KEY)
        .header("content-type", "text/plain")
        .body(ok_body.to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 415);

    let res = gw.client.post(&url).json(&ok_body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let res = gw.client.post(&url).bearer_auth("not-a-key").json(&ok_body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = gw.client.post(&url).header("authorization", "Basic abc").json(&ok_body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let res = gw.client.post(&url).bearer_auth(READ_ONLY_KEY).json(&ok_body).send().await.unwrap();
    assert_eq!(res.status(), 403);

    let res = gw.client.get(format!("{url}/not-a-uuid")).bearer_auth(API_KEY).send().await.unwrap();
    assert_eq!(res.status(), 404);
    let res = gw
        .client
        .get(format!("{url}/019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f"))
        .bearer_auth(READ_ONLY_KEY)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(res.headers()["content-type"], "application/problem+json");
    let res = gw.client.get(format!("{url}/019a7c1e-5b8e-7d2a-9f3c-1a2b3c4d5e6f")).send().await.unwrap();
    assert_eq!(res.status(), 401);

    // The gateway still serves.
    let res = gw.client.post(&url).bearer_auth(API_KEY).json(&ok_body).send().await.unwrap();
    assert_eq!(res.status(), 202);
    gw.stop().await;
}

/// Each API key has its own request rate (governor): past it, 429 with `Retry-After`; other keys
/// are unaffected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_api_key_over_its_rate_gets_429() {
    let redis = RedisServer::start();
    let sandbox = TestSandbox::spawn().await;
    let slow = "slow-key-for-rate-test";
    let hash = {
        use sha2::Digest;
        hex::encode(sha2::Sha256::digest(slow.as_bytes()))
    };
    let extra =
        format!("\n[[api_keys]]\nname = \"slow\"\nsha256 = \"{hash}\"\nscopes = [\"read\"]\nrate_per_second = 1\n");
    let gw = TestGateway::spawn(&gateway_toml(&redis.url(), &sandbox.url(), &extra)).await;
    let url = format!("{}/v1/senders", gw.base_url);
    let mut statuses = Vec::new();
    for _ in 0..4 {
        let res = gw.client.get(&url).bearer_auth(slow).send().await.unwrap();
        statuses
            .push((res.status().as_u16(), res.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned())));
    }
    assert_eq!(statuses[0].0, 200);
    let limited = statuses.iter().find(|(s, _)| *s == 429).expect("a 429 after the burst");
    assert!(limited.1.as_deref().is_some_and(|r| r.parse::<u64>().is_ok_and(|n| n >= 1)), "{statuses:?}");
    assert_eq!(
        gw.client.get(&url).bearer_auth(API_KEY).send().await.unwrap().status(),
        200,
        "other keys are unaffected"
    );
    gw.stop().await;
}
