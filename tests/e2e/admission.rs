//! Admission: a nearly full Redis and a burst of callers refuse new sends early, with 503 and
//! `Retry-After`, while provider callbacks are still taken and nothing accepted is lost.

use std::time::Duration;

use futures::StreamExt;
use gateway_tests::{
    eventually, free_port, metric_value, sandbox_calling_back, texts_received, TestGateway, TestRedis, API_KEY,
};
use serde_json::{json, Value};

const INCS_CALLBACK: &str = "/callbacks/incs/sandbox-incs-callback";

fn status_callback(pmid: &str) -> Value {
    json!({"event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
        "message_id": pmid, "message_status": "delivered", "error": null, "received_at": chrono::Utc::now().timestamp()})
}

fn shed(text: &str, reason: &str) -> f64 {
    text.lines()
        .filter(|l| l.starts_with("gateway_requests_shed_total{") && l.contains(&format!("reason=\"{reason}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// A second API key, allowed one send a second (a burst of two).
const SLOW_KEY: &str = "one-a-second-test-key";

fn add_slow_key(config: &mut gateway_http::Config) {
    let mut slow = config.api_keys[0].clone();
    slow.name = "one-a-second".into();
    slow.sha256 = gateway_http::http::auth::hash_key(SLOW_KEY).into();
    slow.rate_per_second = 1;
    config.api_keys.push(slow);
}

/// A send's answer: its status, `Retry-After` and body.
type Answer = (u16, Option<String>, Value);

async fn send(gw: &TestGateway, text: &str) -> Answer {
    let body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": text});
    let res = gw.client.post(format!("{}/v1/messages", gw.base_url)).bearer_auth(API_KEY).json(&body).send().await;
    let res = res.unwrap_or_else(|e| panic!("send: {e}"));
    let status = res.status().as_u16();
    let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
    (status, retry_after, res.json().await.unwrap_or(Value::Null))
}

async fn callback(gw: &TestGateway, pmid: &str) -> u16 {
    let res = gw.client.post(format!("{}{INCS_CALLBACK}", gw.base_url)).json(&status_callback(pmid)).send().await;
    res.map(|r| r.status().as_u16()).unwrap_or(0)
}

/// Redis with a small `maxmemory`, filled by sends while the sender is paused: the guard refuses
/// new sends (503, `Retry-After`) and readiness goes false before Redis refuses any write;
/// callbacks are still answered 200; once the sender resumes and the queue drains, every accepted
/// message has reached the provider and sends are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nearly_full_redis_refuses_new_sends_but_not_callbacks_and_loses_nothing() {
    let redis = TestRedis::single();
    let mut r = redis.client().await;
    let () = r.query(redis::cmd("CONFIG").arg("SET").arg("maxmemory").arg("8mb")).await;
    let port = free_port();
    let sandbox = sandbox_calling_back(port).await;
    let mut config = redis.gateway_config(&sandbox.url(), "");
    config.server.listen = format!("127.0.0.1:{port}").parse().unwrap();
    config.admission.memory_sample_ms = 100;
    // The headroom above the guard must hold what the queued messages grow by as they are sent
    // and reported (attempts, history, provider id links); at 0.9 a write was once refused for memory.
    config.admission.memory_guard = 0.7;
    // Records of sent messages go soon after, so that the queue draining frees memory.
    config.engine.retention_secs = 2;
    config.accounts[0].rate_per_second = 2000;
    config.accounts[0].burst = 200;
    let gw = TestGateway::spawn_config(config).await;
    let pause = gw.client.post(format!("{}/v1/senders/hk-main/pause", gw.base_url)).bearer_auth(API_KEY);
    assert_eq!(pause.json(&json!({"reason": "filling Redis"})).send().await.unwrap().status(), 200);

    // Fill with 3 KB messages until the guard answers.
    let filler = "x".repeat(3000);
    let mut accepted = Vec::new();
    let mut refusal = None;
    'fill: for round in 0..400 {
        let results: Vec<(usize, Answer)> = futures::stream::iter(0..8)
            .map(|i| {
                let text = format!("fill-{round}-{i} {filler}");
                let gw = &gw;
                async move { (i, send(gw, &text).await) }
            })
            .buffer_unordered(8)
            .collect()
            .await;
        for (i, (status, retry_after, body)) in results {
            match status {
                202 => accepted.push(format!("fill-{round}-{i} {filler}")),
                503 => refusal = Some((retry_after, body)),
                other => panic!("send answered {other}: {body}"),
            }
        }
        if refusal.is_some() {
            break 'fill;
        }
    }
    let (retry_after, body) = refusal.expect("the guard never refused a send");
    eprintln!("{} sends accepted before the guard refused", accepted.len());
    assert!(accepted.len() > 100, "the guard refused early: {} accepted", accepted.len());
    assert_eq!(retry_after.as_deref(), Some("5"));
    assert_eq!(body["type"], "/problems/store-full", "{body}");
    assert_eq!(body["status"], 503);
    // Redis itself refused nothing: the guard came first.
    let stats: String = r.query(redis::cmd("INFO").arg("errorstats")).await;
    assert!(!stats.contains("errorstat_OOM"), "Redis refused writes: {stats}");

    let ready = gw.client.get(format!("{}/health/ready", gw.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 503);
    let ready: Value = ready.json().await.unwrap();
    assert_eq!((ready["status"].as_str(), ready["memory"].as_str()), (Some("not_ready"), Some("over_guard")));
    let (status, _, _) = send(&gw, "still refused").await;
    assert_eq!(status, 503);
    // Callbacks are taken while sends are refused.
    for i in 0..20 {
        assert_eq!(callback(&gw, &format!("wamid.while-full-{i}")).await, 200);
    }
    let m = gw.metrics().await;
    assert!(shed(&m, "memory_guard") >= 2.0, "refusals counted");
    assert_eq!(metric_value(&m, "gateway_memory_guard_engaged"), 1.0);

    // The queue drains: every accepted message reaches the provider, and sends are taken again.
    let resume = gw.client.post(format!("{}/v1/senders/hk-main/resume", gw.base_url)).bearer_auth(API_KEY);
    assert_eq!(resume.send().await.unwrap().status(), 200);
    let all_sent = eventually(Duration::from_secs(120), || async {
        let seen = texts_received(&sandbox.requests("incs").await);
        accepted.iter().all(|t| seen.contains_key(t)).then_some(())
    })
    .await;
    let seen = texts_received(&sandbox.requests("incs").await);
    let missing = accepted.iter().filter(|t| !seen.contains_key(*t)).count();
    assert!(all_sent.is_some(), "{missing} of {} accepted messages never reached the provider", accepted.len());
    let resumed = eventually(Duration::from_secs(60), || async {
        let (status, _, body) = send(&gw, "after the drain").await;
        (status == 202).then_some(body)
    })
    .await;
    assert!(resumed.is_some(), "sends were still refused after the queue drained");
    let ready = gw.client.get(format!("{}/health/ready", gw.base_url)).send().await.unwrap();
    assert_eq!(ready.status(), 200);
    let stats: String = r.query(redis::cmd("INFO").arg("errorstats")).await;
    assert!(!stats.contains("errorstat_OOM"), "Redis refused writes: {stats}");
    // The sandbox's own callbacks (sent, delivered, read of every message) were all taken.
    let m = gw.metrics().await;
    let refused_callbacks: f64 = m
        .lines()
        .filter(|l| l.starts_with("gateway_http_requests_total{") && l.contains("/callbacks/incs/{token}"))
        .filter(|l| !l.contains("status=\"200\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(refused_callbacks, 0.0, "callbacks not answered 200");
    gw.stop().await;
}

/// A burst of callers beyond the API's budget of requests in flight: the sends beyond it get 503
/// with `Retry-After` at once, while callbacks, which have a budget of their own, are all taken.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_burst_beyond_the_api_budget_is_shed_and_callbacks_are_still_taken() {
    let redis = TestRedis::single();
    let sandbox = gateway_tests::TestSandbox::spawn().await;
    let mut config = redis.gateway_config(&sandbox.url(), "");
    config.admission.max_in_flight = 2;
    config.admission.max_wait_ms = 0;
    config.admission.callbacks_max_in_flight = 64;
    config.api_keys[0].rate_per_second = 100_000;
    let gw = TestGateway::spawn_config(config).await;

    let sends = async {
        futures::stream::iter(0..300)
            .map(|i| {
                let gw = &gw;
                async move { send(gw, &format!("burst-{i}")).await }
            })
            .buffer_unordered(64)
            .collect::<Vec<_>>()
            .await
    };
    let callbacks = async {
        futures::stream::iter(0..200)
            .map(|i| {
                let gw = &gw;
                async move { callback(gw, &format!("wamid.burst-{i}")).await }
            })
            .buffer_unordered(16)
            .collect::<Vec<_>>()
            .await
    };
    let (sends, callbacks) = tokio::join!(sends, callbacks);
    let accepted = sends.iter().filter(|s| s.0 == 202).count();
    let shed_sends: Vec<_> = sends.iter().filter(|s| s.0 == 503).collect();
    eprintln!("sends: {accepted} accepted, {} shed", shed_sends.len());
    assert!(sends.iter().all(|s| s.0 == 202 || s.0 == 503), "{:?}", sends.iter().map(|s| s.0).collect::<Vec<_>>());
    assert!(accepted > 0, "nothing was accepted");
    assert!(!shed_sends.is_empty(), "nothing was shed with 64 callers and 2 places");
    for (_, retry_after, body) in &shed_sends {
        assert_eq!(retry_after.as_deref(), Some("1"));
        assert_eq!(body["type"], "/problems/overloaded", "{body}");
    }
    assert!(
        callbacks.iter().all(|s| *s == 200),
        "callbacks refused: {:?}",
        callbacks.iter().filter(|s| **s != 200).count()
    );
    let m = gw.metrics().await;
    assert_eq!(shed(&m, "api_busy") as usize, shed_sends.len(), "shed sends counted");
    assert_eq!(shed(&m, "callbacks_busy"), 0.0);
    gw.stop().await;
}

/// The API's budget full (its one place held by a send whose body never comes): a key over its
/// own rate still hears 429, its own fault, checked before the budget and without Redis; a key
/// within its rate hears 503 `overloaded`; provider callbacks, with a budget and Redis connections
/// of their own, are all answered 200. Once the place is free, sends are taken again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_api_budget_full_a_key_over_its_rate_gets_429_and_callbacks_still_get_200() {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let redis = TestRedis::single();
    let sandbox = gateway_tests::TestSandbox::spawn().await;
    let mut config = redis.gateway_config(&sandbox.url(), "");
    config.admission.max_in_flight = 1;
    config.admission.max_wait_ms = 0;
    config.api_keys[0].rate_per_second = 100_000;
    add_slow_key(&mut config);
    let gw = TestGateway::spawn_config(config).await;

    // A send that takes the one place and keeps it: its body is announced and never sent.
    let addr = gw.base_url.trim_start_matches("http://").to_owned();
    let head = format!(
        "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {API_KEY}\r\n\
         Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n{{"
    );
    // The probe may reach the place before the holder does (then the holder is refused, or waits
    // behind it): a fresh holder each time, until the probe is the one refused.
    let (holder, busy) = eventually(Duration::from_secs(10), || async {
        let mut holder = tokio::net::TcpStream::connect(&addr).await.unwrap();
        holder.write_all(head.as_bytes()).await.unwrap();
        let answer = send(&gw, "within its rate").await;
        if answer.0 != 503 {
            return None;
        }
        // Refused because this holder has the place, not an earlier one that has not let go yet:
        // a holder that was itself refused has its answer waiting.
        let mut byte = [0u8; 1];
        let answered = tokio::time::timeout(Duration::from_millis(200), holder.read(&mut byte)).await.is_ok();
        (!answered).then_some((holder, answer))
    })
    .await
    .expect("the API budget never filled");
    assert_eq!(busy.1.as_deref(), Some("1"), "Retry-After");
    assert_eq!(busy.2["type"], "/problems/overloaded", "{}", busy.2);

    let body = json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "over its rate"});
    let mut answers = Vec::new();
    for i in 0..6 {
        let res = gw.client.post(format!("{}/v1/messages", gw.base_url)).bearer_auth(SLOW_KEY).json(&body);
        let res = res.header("x-request-id", format!("over-its-rate-{i}")).send().await.unwrap();
        // A refusal is answered before any span or handler, and still names the request.
        let request_id = res.headers().get("x-request-id").and_then(|v| v.to_str().ok());
        assert_eq!(request_id, Some(format!("over-its-rate-{i}").as_str()), "the refusal's request id");
        let retry_after = res.headers().get("retry-after").and_then(|v| v.to_str().ok()).map(str::to_owned);
        answers.push((res.status().as_u16(), retry_after, res.json::<Value>().await.unwrap_or(Value::Null)));
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    // Its burst (twice its rate of 1/s) lets at most 2 in a second; those meet the full budget.
    assert!(statuses.iter().all(|s| *s == 429 || *s == 503), "{statuses:?}");
    let limited: Vec<_> = answers.iter().filter(|a| a.0 == 429).collect();
    assert!(limited.len() >= 3, "a key over its rate got 503 instead of 429: {statuses:?}");
    for (_, retry_after, body) in &limited {
        assert!(retry_after.as_deref().is_some_and(|s| s.parse::<u64>().is_ok()), "Retry-After {retry_after:?}");
        assert_eq!(body["type"], "/problems/rate-limited", "{body}");
    }

    let callbacks = futures::stream::iter(0..50)
        .map(|i| {
            let gw = &gw;
            async move { callback(gw, &format!("wamid.full-{i}")).await }
        })
        .buffer_unordered(8)
        .collect::<Vec<_>>()
        .await;
    assert!(callbacks.iter().all(|s| *s == 200), "callbacks: {callbacks:?}");

    let m = gw.metrics().await;
    let shed_sends = 1 + statuses.iter().filter(|s| **s == 503).count();
    assert!(shed(&m, "api_busy") as usize >= shed_sends, "shed sends counted");
    assert_eq!(shed(&m, "callbacks_busy"), 0.0);
    let rate_limited: f64 = m
        .lines()
        .filter(|l| l.starts_with("gateway_api_rate_limited_total{") && l.contains("\"one-a-second\""))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum();
    assert_eq!(rate_limited as usize, limited.len(), "429s counted");
    // Refusals are answers like any other in the request metrics, under their route.
    let answered = |status: &str| {
        m.lines()
            .filter(|l| l.starts_with("gateway_http_requests_total{"))
            .filter(|l| l.contains("route=\"/v1/messages\"") && l.contains(&format!("status=\"{status}\"")))
            .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
            .sum::<f64>() as usize
    };
    assert_eq!(answered("429"), limited.len(), "429s in gateway_http_requests_total");
    assert!(answered("503") >= shed_sends, "503s in gateway_http_requests_total");

    drop(holder);
    eventually(Duration::from_secs(10), || async { (send(&gw, "after the holder left").await.0 == 202).then_some(()) })
        .await
        .expect("sends were not taken again once the place was free");
    gw.stop().await;
}

/// One HTTP/1.1 answer read off a raw connection: its status and whether the server said it closes
/// the connection; `None` when the connection ended first.
async fn read_answer(stream: &mut tokio::net::TcpStream) -> Option<(u16, bool)> {
    use tokio::io::AsyncReadExt;
    let mut buf = Vec::new();
    let head_end = loop {
        if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            break i + 4;
        }
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&buf[..head_end]).to_ascii_lowercase();
    let status = head.split(' ').nth(1)?.parse().ok()?;
    let length: usize =
        head.lines().find_map(|l| l.strip_prefix("content-length:")).and_then(|v| v.trim().parse().ok()).unwrap_or(0);
    let closes = head.lines().any(|l| l.trim() == "connection: close");
    while buf.len() < head_end + length {
        let mut chunk = [0u8; 4096];
        let n = stream.read(&mut chunk).await.ok()?;
        if n == 0 {
            return None;
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    Some((status, closes))
}

/// A send refused before its body was read (here for its key's rate) leaves the connection open
/// for the caller's next request. Under overload refusals come by the thousand, and a new
/// connection for each would cost the caller and the gateway more than the refusal itself.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_send_leaves_its_connection_open() {
    use tokio::io::AsyncWriteExt;
    let redis = TestRedis::single();
    let sandbox = gateway_tests::TestSandbox::spawn().await;
    let mut config = redis.gateway_config(&sandbox.url(), "");
    add_slow_key(&mut config);
    let gw = TestGateway::spawn_config(config).await;

    let addr = gw.base_url.trim_start_matches("http://").to_owned();
    let mut stream = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let mut answers = Vec::new();
    for i in 0..6 {
        let body =
            json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": format!("same connection {i}")})
                .to_string();
        let request = format!(
            "POST /v1/messages HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {SLOW_KEY}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        stream.write_all(request.as_bytes()).await.unwrap();
        let answer = read_answer(&mut stream).await;
        assert!(answer.is_some(), "request {i} got no answer on the connection; answers before it: {answers:?}");
        answers.push(answer.unwrap_or_default());
    }
    let statuses: Vec<u16> = answers.iter().map(|a| a.0).collect();
    // Its burst lets at most 2 in; the rest are refused for the rate, on the same connection.
    assert!(statuses.iter().filter(|s| **s == 429).count() >= 4, "{statuses:?}");
    assert!(answers.iter().all(|a| !a.1), "an answer closed the connection: {answers:?}");
}
