//! What providers really do, end to end: statuses found however the provider names the message,
//! failures reported by callback judged like failures answered at send, callbacks attributed to
//! the number they name, Viber and RCS moved by INCS's chat events.

use std::time::Duration;

use gateway_tests::{eventually, TestGateway, TestRedis, TestSandbox};
use serde_json::{json, Value};

/// How long a test watches for a retry that must not happen: several times the test retry
/// schedule (100 ms, 200 ms) plus the workers' idle poll (50 ms).
const NO_RETRY_QUIET_PERIOD: Duration = Duration::from_millis(1200);

/// Waits out a period in which something must NOT happen; `why` names it.
async fn quiet_period(why: &str) {
    gateway_tests::quiet_period(NO_RETRY_QUIET_PERIOD, why).await;
}

fn subscription(sink: &str) -> String {
    gateway_tests::sink_subscription(sink, &["*"], "")
}

async fn events_of(sandbox: &TestSandbox, kind: &str) -> Vec<Value> {
    let all: Vec<Value> =
        sandbox.client.get(format!("{}/_sandbox/webhooks", sandbox.url())).send().await.unwrap().json().await.unwrap();
    all.iter()
        .filter_map(|d| serde_json::from_str::<Value>(d["raw_body"].as_str().unwrap_or("")).ok())
        .filter(|e| e["type"] == kind)
        .collect()
}

async fn post(gw: &TestGateway, path: &str, body: &Value, headers: &[(&str, &str)]) -> u16 {
    let mut req = gw.client.post(format!("{}{path}", gw.base_url)).json(body);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    req.send().await.unwrap().status().as_u16()
}

async fn accepted(gw: &TestGateway, body: Value) -> String {
    let res = gw.send(&body).await;
    assert_eq!(res.status(), 202, "{}", res.text().await.unwrap_or_default());
    res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned()
}

fn history(m: &Value) -> Vec<(String, String)> {
    m["history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["status"].as_str().unwrap_or("").to_owned(), h["source"].as_str().unwrap_or("").to_owned()))
        .collect()
}

const INNOPAAS: &str = r#"
[[accounts]]
name = "innopaas-hk"
provider = "innopaas"
callback_token = "sandbox-innopaas-callback"
webhook_headers = { Authorization = "sandbox-innopaas-callback" }
[accounts.innopaas]
base_url = "SANDBOX"
app_key = "sandbox-innopaas-appkey"
token = "sandbox-innopaas-token"
waba_id = "102290129340398"
send_number = "85230001234"

[[senders]]
name = "inno"
channel = "whatsapp"
accounts = ["innopaas-hk"]
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_innopaas_status_finds_its_message_by_uid_and_a_reply_maps_to_our_id() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let extra = format!("{}{}", INNOPAAS.replace("SANDBOX", &sandbox.url()), subscription(&sandbox.url()));
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &extra)).await;
    let auth = [("Authorization", "sandbox-innopaas-callback")];
    let path = "/callbacks/innopaas/sandbox-innopaas-callback";

    let id = accepted(
        &gw,
        json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "hi", "sender": "inno"}),
    )
    .await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let uid = id.replace('-', "");
    let sent: Vec<Value> = sandbox.requests("innopaas").await;
    assert_eq!(sent[0]["body"]["uid"], uid.as_str(), "our id goes out as the uid");
    assert_ne!(m["provider_message_id"], "335259505606656000");

    // A status whose `id` is not the one the submit answered (PROVIDERS.md §2.7 shape), carrying
    // our uid and a wamid: the uid finds the message.
    let wamid = "wamid.HBgLODUyNjg0MTEyMzQVAgARGBI3QTFDMkQzRTRGNTA2MTcyODMA";
    let status = json!({"id": "b1e0", "type": "whatsapp_message_status_updated", "eventTime": "2026-11-21 10:00:01",
        "body": {"id": "335259505606656000", "accountName": "demo", "wabaId": "102290129340398", "wamid": wamid,
            "sendPhone": "85268411234", "status": "delivered", "uid": uid,
            "conversation": {"id": "c1", "initiateType": "business_initiated", "expireAt": "2026-11-22 10:00:01"}}});
    assert_eq!(post(&gw, path, &status, &auth).await, 200);
    gw.wait_for_status(&id, "delivered", Duration::from_secs(3)).await;

    // A reply to it names the wamid in its context: it maps to our id.
    let reply = json!({"id": "b1e1", "type": "whatsapp_mo_message_received", "eventTime": "2026-11-21 10:00:05",
        "body": {"id": "335259505606656001", "accountName": "demo", "wabaId": "102290129340398",
            "wamid": "wamid.HBgLODUyNjg0MTEyMzQVAgASGBQzQUJDREVGMDEyMzQ1Njc4OTAA", "from": "85268411234",
            "to": "85230001234", "sendTime": "2026-11-21 10:00:04", "customerProfile": {"name": "Lessie"},
            "type": "interactive", "interactive": {"type": "buttonReply", "buttonReply": {"id": "yes", "title": "Yes"}},
            "context": {"from": "85230001234", "id": wamid}}});
    assert_eq!(post(&gw, path, &reply, &auth).await, 200);
    let inbound = eventually(Duration::from_secs(5), || async { events_of(&sandbox, "message.inbound").await.pop() })
        .await
        .expect("a message.inbound event");
    assert_eq!(inbound["data"]["context"]["message_id"], id.as_str(), "the reply maps to our message");
    assert_eq!(inbound["data"]["sender"], "inno");

    // A status for a message nobody knows is buffered, not refused.
    let unknown = json!({"id": "b1e2", "type": "whatsapp_message_status_updated", "eventTime": "2026-11-21 10:00:01",
        "body": {"id": "335259505606656999", "wabaId": "102290129340398", "status": "read", "sendPhone": "85268411234"}});
    assert_eq!(post(&gw, path, &unknown, &auth).await, 200);
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_innopaas_submit_answer_without_an_id_still_lets_statuses_through() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let extra = INNOPAAS.replace("SANDBOX", &sandbox.url());
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &extra)).await;
    sandbox
        .fault(json!({"provider": "innopaas", "status": 200, "count": 1,
            "body": {"code": "0", "success": true, "message": "Success", "data": null}}))
        .await;
    let id = accepted(
        &gw,
        json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "hi", "sender": "inno"}),
    )
    .await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let uid = id.replace('-', "");
    assert_eq!(m["provider_message_id"], uid.as_str());
    let status = json!({"id": "e1", "type": "whatsapp_message_status_updated", "eventTime": "2026-11-21T10:00:01Z",
        "body": {"id": "335259505606656000", "wabaId": "102290129340398", "status": "read", "sendPhone": "85268411234",
            "wamid": "wamid.X", "uid": uid}});
    let auth = [("Authorization", "sandbox-innopaas-callback")];
    assert_eq!(post(&gw, "/callbacks/innopaas/sandbox-innopaas-callback", &status, &auth).await, 200);
    gw.wait_for_status(&id, "read", Duration::from_secs(3)).await;
    gw.stop().await;
}

fn failed_callback(pmid: &str, code: u32, title: &str) -> Value {
    json!({"event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
        "message_id": pmid, "message_status": "failed", "error": {"code": code, "title": title},
        "received_at": chrono::Utc::now().timestamp()})
}

/// A `failed` by callback with a transient Meta code sends the message again; a permanent one
/// ends it. Run on one Redis and on a Redis Cluster (the reopen script keeps to one slot).
async fn a_reported_failure_is_judged_like_a_send_answer(redis: TestRedis) {
    let sandbox = TestSandbox::spawn().await;
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), "")).await;
    let path = "/callbacks/incs/sandbox-incs-callback";

    let (id, pmid, pmid_again) = sent_twice(&gw, "85268411234", None).await;
    let again = gw.get_message(&id).await;
    let h = history(&again);
    let statuses: Vec<&str> = h.iter().map(|(s, _)| s.as_str()).collect();
    assert_eq!(statuses, ["queued", "submitted", "failed", "submitted"], "{h:?}");
    assert_eq!(h[2].1, "incs", "the failed report is in the history, from the provider");
    assert_eq!(sandbox.requests("incs").await.len(), 2, "sent twice");
    // A late repeat of the same report changes nothing: it names the first attempt.
    assert_eq!(post(&gw, path, &failed_callback(&pmid, 131000, "Something went wrong"), &[]).await, 200);
    // Nor does a late `delivered` for the first attempt (reports are applied before the 200).
    let mut late = failed_callback(&pmid, 0, "");
    late["message_status"] = json!("delivered");
    late["error"] = Value::Null;
    assert_eq!(post(&gw, path, &late, &[]).await, 200);
    let m = gw.get_message(&id).await;
    assert_eq!(m["status"], "submitted", "a report about the superseded attempt moved the new one: {m}");
    assert_eq!(history(&m).len(), 4, "nor is it in the history: {m}");
    // The second attempt's own report does.
    let mut current = late.clone();
    current["message_id"] = json!(pmid_again);
    assert_eq!(post(&gw, path, &current, &[]).await, 200);
    gw.wait_for_status(&id, "delivered", Duration::from_secs(3)).await;

    // 131026 (undeliverable) is permanent: failed, no retry.
    let id2 =
        accepted(&gw, json!({"channel": "whatsapp", "to": "85268411235", "type": "text", "text": "no retry"})).await;
    let m = gw.wait_for_status(&id2, "submitted", Duration::from_secs(3)).await;
    let pmid2 = m["provider_message_id"].as_str().unwrap().to_owned();
    assert_eq!(post(&gw, path, &failed_callback(&pmid2, 131026, "Message undeliverable"), &[]).await, 200);
    let m = gw.wait_for_status(&id2, "failed", Duration::from_secs(3)).await;
    assert_eq!(m["error"]["code"], "131026");
    assert_eq!(m["error"]["retryable"], false);
    quiet_period("a permanent failure must not be sent again").await;
    let to_second = sandbox.requests("incs").await.iter().filter(|r| r["body"]["to"] == "85268411235").count();
    assert_eq!(to_second, 1, "a permanent failure is not retried");
    assert_eq!(gw.get_message(&id2).await["status"], "failed");
    // The first message was not touched by the repeat.
    assert_eq!(sandbox.requests("incs").await.iter().filter(|r| r["body"]["to"] == "85268411234").count(), 2);
    gw.stop().await;
}

/// INCS's chat event for one of our sends, linking its chat id to the send's provider id.
fn chat_created(chat_id: u64, channel_msg_id: &str, to: &str) -> Value {
    json!({"event": "message_created", "message": {"id": chat_id, "auth_id": 30058, "conversation_id": 979,
        "session_type": 1, "sender": "incs_1", "receiver": to, "type": 1, "custom_type": 0, "custom_id": 0,
        "channel_msg_id": channel_msg_id, "channel_status": 0, "content": {"content": "hi"}, "error": "",
        "source": 1, "created_at": "2026-04-07T12:02:55.000000Z", "updated_at": "2026-04-07T12:02:55.000000Z"}})
}

fn chat_status(chat_id: u64, status: u8) -> Value {
    json!({"event": "message_status_updated", "message_id": chat_id, "message_status": status, "error": "",
        "updated_at": "2026-04-07T13:11:27.000000Z"})
}

/// A text sent, then failed by callback with a transient code and sent again (INCS's chat id
/// `linked_before` linked to the first attempt before the failure). Returns our id and both
/// attempts' provider ids.
async fn sent_twice(gw: &TestGateway, to: &str, linked_before: Option<u64>) -> (String, String, String) {
    let path = "/callbacks/incs/sandbox-incs-callback";
    let id = accepted(gw, json!({"channel": "whatsapp", "to": to, "type": "text", "text": "hi"})).await;
    let first = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let pmid = first["provider_message_id"].as_str().unwrap().to_owned();
    if let Some(chat_id) = linked_before {
        assert_eq!(post(gw, path, &chat_created(chat_id, &pmid, to), &[]).await, 200);
    }
    assert_eq!(post(gw, path, &failed_callback(&pmid, 131000, "Something went wrong"), &[]).await, 200);
    let again = eventually(Duration::from_secs(5), || async {
        let m = gw.get_message(&id).await;
        (m["status"] == "submitted" && m["provider_message_id"] != pmid.as_str()).then_some(m)
    })
    .await
    .expect("submitted again after a transient failure report");
    let second = again["provider_message_id"].as_str().unwrap().to_owned();
    (id, pmid, second)
}

/// INCS's chat id stands for one attempt: once a reported failure replaced that attempt, its chat
/// events are stale like its other reports, whether INCS linked the chat id before the failure or
/// only after it (its status buffered meanwhile). The new attempt's chat events still move the
/// message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chat_events_about_a_superseded_attempt_are_stale() {
    let (_redis, _sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let path = "/callbacks/incs/sandbox-incs-callback";
    let unmoved = |m: &Value| {
        let statuses: Vec<String> = history(m).into_iter().map(|(s, _)| s).collect();
        assert_eq!(statuses, ["queued", "submitted", "failed", "submitted"], "{m}");
        assert_eq!(m["status"], "submitted", "a chat event about the superseded attempt moved the new one: {m}");
    };

    // The chat id was linked to the first attempt before it failed; its late `delivered` is stale
    // (reports are applied before the 200).
    let (id, _, second) = sent_twice(&gw, "85268411234", Some(260400000084)).await;
    assert_eq!(post(&gw, path, &chat_status(260400000084, 3), &[]).await, 200);
    unmoved(&gw.get_message(&id).await);
    // The second attempt's chat events move it: its status first, then the event linking it.
    assert_eq!(post(&gw, path, &chat_status(260400000085, 3), &[]).await, 200);
    assert_eq!(post(&gw, path, &chat_created(260400000085, &second, "85268411234"), &[]).await, 200);
    gw.wait_for_status(&id, "delivered", Duration::from_secs(3)).await;

    // The first attempt's status arrives, then (after the failure) the event linking its chat id.
    let (id2, first2, _) = sent_twice(&gw, "85268411235", None).await;
    assert_eq!(post(&gw, path, &chat_status(260400000086, 4), &[]).await, 200);
    assert_eq!(post(&gw, path, &chat_created(260400000086, &first2, "85268411235"), &[]).await, 200);
    unmoved(&gw.get_message(&id2).await);
    gw.stop().await;
}

mod reported_failure {
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn single() {
        super::a_reported_failure_is_judged_like_a_send_answer(gateway_tests::TestRedis::single()).await;
    }
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn cluster() {
        super::a_reported_failure_is_judged_like_a_send_answer(gateway_tests::TestRedis::cluster()).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_transient_reported_failure_fails_over_when_the_account_has_no_attempt_left() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let url = sandbox.url();
    let extra = format!(
        r#"
[[accounts]]
name = "incs-first"
provider = "incs"
[accounts.incs]
chat_base_url = "{url}"
rcs_base_url = "{url}"
api_base_url = "{url}"
certification_code = "{code}"
channels = ["whatsapp"]

[[accounts]]
name = "incs-backup"
provider = "incs"
[accounts.incs]
chat_base_url = "{url}"
rcs_base_url = "{url}"
api_base_url = "{url}"
certification_code = "{code}"
channels = ["whatsapp"]

[[senders]]
name = "hk-failover"
channel = "whatsapp"
accounts = ["incs-first", "incs-backup"]
"#,
        code = gateway_tests::INCS_CODE
    );
    // One retry step: the second transient report finds the first account out of attempts.
    let toml = redis.config(&url, &extra).set("engine", "retry_schedule_ms", vec![100]).text();
    let gw = TestGateway::spawn(&toml).await;
    let id = accepted(
        &gw,
        json!({"channel": "whatsapp", "to": "85268411234", "type": "text", "text": "x", "sender": "hk-failover"}),
    )
    .await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let mut pmid = m["provider_message_id"].as_str().unwrap().to_owned();
    for _ in 0..2 {
        assert_eq!(
            post(
                &gw,
                "/callbacks/incs/sandbox-incs-callback",
                &failed_callback(&pmid, 131016, "Service unavailable"),
                &[]
            )
            .await,
            200
        );
        let m = eventually(Duration::from_secs(5), || async {
            let m = gw.get_message(&id).await;
            (m["status"] == "submitted" && m["provider_message_id"] != pmid.as_str()).then_some(m)
        })
        .await
        .expect("submitted again");
        pmid = m["provider_message_id"].as_str().unwrap().to_owned();
    }
    let m = gw.get_message(&id).await;
    let accounts: Vec<&str> = m["attempts"].as_array().unwrap().iter().filter_map(|a| a["account"].as_str()).collect();
    assert_eq!(accounts, ["incs-first", "incs-first", "incs-backup"]);
    gw.stop().await;
}

const TWO_NUMBERS: &str = r#"
[[accounts]]
name = "incs-wa-a"
provider = "incs"
callback_token = "shared-incs-callback"
[accounts.incs]
chat_base_url = "SANDBOX"
api_base_url = "SANDBOX"
certification_code = "CODE"
channels = ["whatsapp"]
business_phone = "6281519236680"
channel_id = 30058

[[accounts]]
name = "incs-wa-b"
provider = "incs"
callback_token = "shared-incs-callback"
[accounts.incs]
chat_base_url = "SANDBOX"
api_base_url = "SANDBOX"
certification_code = "CODE"
channels = ["whatsapp"]
business_phone = "6281519236681"
channel_id = 30059

[[senders]]
name = "wa-a"
channel = "whatsapp"
accounts = ["incs-wa-a"]
enforce_session_window = true

[[senders]]
name = "wa-b"
channel = "whatsapp"
accounts = ["incs-wa-b"]
enforce_session_window = true
"#;

fn inbound_to(business_phone: &str, user: &str, wamid: &str) -> Value {
    json!({"event": "new_message", "channel_id": 30058, "business_phone": business_phone, "message": {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": business_phone, "phone_number_id": "1"},
        "contacts": [{"profile": {"name": "Lessie"}, "wa_id": user}],
        "messages": [{"from": user, "id": wamid, "timestamp": chrono::Utc::now().timestamp().to_string(),
            "type": "text", "text": {"body": "hello"}}]}})
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_behind_one_url_go_to_the_number_they_name() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let extra = TWO_NUMBERS.replace("SANDBOX", &sandbox.url()).replace("CODE", gateway_tests::INCS_CODE);
    let gw = TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &extra)).await;
    let path = "/callbacks/incs/shared-incs-callback";
    let text = |sender: &str, to: &str| json!({"channel": "whatsapp", "to": to, "type": "text", "text": "hi", "sender": sender});

    // User 1 writes to number B, user 2 to number A: each opens its own sender's window only.
    assert_eq!(post(&gw, path, &inbound_to("6281519236681", "6281500000001", "wamid.in1"), &[]).await, 200);
    assert_eq!(post(&gw, path, &inbound_to("6281519236680", "6281500000002", "wamid.in2"), &[]).await, 200);
    assert_eq!(gw.send(&text("wa-b", "6281500000001")).await.status(), 202);
    assert_eq!(gw.send(&text("wa-a", "6281500000001")).await.status(), 422, "A's window with user 1 is closed");
    assert_eq!(gw.send(&text("wa-a", "6281500000002")).await.status(), 202);
    assert_eq!(gw.send(&text("wa-b", "6281500000002")).await.status(), 422, "B's window with user 2 is closed");

    // A template rejected at B is refused at B only.
    let mut report: Value = serde_json::from_slice(
        &std::fs::read(
            std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("../crates/incs/tests/callbacks/template_status_update.json"),
        )
        .unwrap(),
    )
    .unwrap();
    report["business_phone"] = json!("6281519236681");
    report["channel_id"] = json!(30059);
    report["new_value"] = json!("REJECTED");
    assert_eq!(post(&gw, path, &report, &[]).await, 200);
    let template = |sender: &str| {
        json!({"channel": "whatsapp", "to": "6281500000009", "type": "template", "sender": sender,
        "template": {"name": "tmp_test"}})
    };
    assert_eq!(gw.send(&template("wa-b")).await.status(), 422, "rejected at B");
    assert_eq!(gw.send(&template("wa-a")).await.status(), 202, "A's cache is untouched");

    // A number this URL does not serve: 422, counted, applied nowhere.
    assert_eq!(post(&gw, path, &inbound_to("6281599999999", "6281500000003", "wamid.in3"), &[]).await, 422);
    assert_eq!(gw.send(&text("wa-a", "6281500000003")).await.status(), 422);
    assert_eq!(gw.send(&text("wa-b", "6281500000003")).await.status(), 422);
    let metrics = gw.client.get(format!("{}/metrics", gw.base_url)).send().await.unwrap().text().await.unwrap();
    assert!(
        metrics.lines().any(|l| l.starts_with("gateway_callbacks_total") && l.contains("outcome=\"unknown_number\"")),
        "callbacks for unknown numbers are counted"
    );
    gw.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viber_message_is_delivered_by_incs_chat_events_alone() {
    let (_redis, _sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let path = "/callbacks/incs/sandbox-incs-callback";
    let id = accepted(&gw, json!({"channel": "viber", "to": "85268411234", "type": "text", "text": "hi"})).await;
    let m = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let uuid = m["provider_message_id"].as_str().unwrap().to_owned();

    // The status first (keyed by INCS's chat id, not yet known), then the event that links it.
    let status = json!({"event": "message_status_updated", "message_id": 260400000084_u64, "message_status": 3,
        "error": "", "updated_at": "2026-04-07T13:11:27.000000Z"});
    assert_eq!(post(&gw, path, &status, &[]).await, 200);
    let created = json!({"event": "message_created", "message": {"id": 260400000084_u64, "auth_id": 30058,
        "conversation_id": 979, "session_type": 1, "sender": "incs_1", "receiver": "85268411234", "type": 101,
        "custom_type": 0, "custom_id": 0, "channel_msg_id": uuid, "channel_status": 0,
        "content": {"content": "hi"}, "error": "", "source": 1,
        "created_at": "2026-04-07T12:02:55.000000Z", "updated_at": "2026-04-07T12:02:55.000000Z"}});
    assert_eq!(post(&gw, path, &created, &[]).await, 200);
    gw.wait_for_status(&id, "delivered", Duration::from_secs(3)).await;
    // Later chat statuses apply at once.
    let read = json!({"event": "message_status_updated", "message_id": 260400000084_u64, "message_status": 4,
        "error": "", "updated_at": "2026-04-07T13:12:27.000000Z"});
    assert_eq!(post(&gw, path, &read, &[]).await, 200);
    let m = gw.wait_for_status(&id, "read", Duration::from_secs(3)).await;
    let statuses: Vec<String> = history(&m).into_iter().map(|(s, _)| s).collect();
    assert_eq!(statuses, ["queued", "submitted", "delivered", "read"]);
    gw.stop().await;
}

async fn sends_to_incs(sandbox: &TestSandbox) -> Vec<Value> {
    sandbox.requests("incs").await.into_iter().filter(|r| r["path"] == "/external/messages/whatsapp").collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn template_sends_are_checked_against_the_template_and_take_meta_language_objects() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    // The INCS document's example: a body with two variables. Creating it caches its shape.
    let create = json!({"sender": "hk-main", "channel": "whatsapp", "name": "test_api_2", "language": "en_US",
        "category": "MARKETING", "components": [
            {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
             "example": {"body_text": [[1, 2]]}},
            {"type": "FOOTER", "text": "Good night"}]});
    let res = gw
        .client
        .post(format!("{}/v1/templates", gw.base_url))
        .bearer_auth(gateway_tests::API_KEY)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let template_id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    // INCS (and the strict sandbox) sends only approved templates.
    eventually(Duration::from_secs(5), || async {
        let res = gw
            .client
            .get(format!("{}/v1/templates/{template_id}", gw.base_url))
            .bearer_auth(gateway_tests::API_KEY)
            .send()
            .await
            .ok()?;
        (res.json::<Value>().await.ok()?["status"] == "APPROVED").then_some(())
    })
    .await
    .expect("the template is approved");

    let send = |params: Value, language: Value| {
        json!({"channel": "whatsapp", "to": "85268411234", "type": "template",
        "template": {"name": "test_api_2", "language": language, "components": [{"type": "body", "parameters": params}]}})
    };
    let one = json!([{"type": "text", "text": "1"}]);
    let two = json!([{"type": "text", "text": "1"}, {"type": "text", "text": "2"}]);

    let res = gw.send(&send(one, json!("en_US"))).await;
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["field"], "template.components[0].parameters", "{problem}");
    assert!(problem["errors"][0]["reason"].as_str().unwrap().contains("2 variables"), "{problem}");
    assert!(sends_to_incs(&sandbox).await.is_empty(), "no provider saw the misfit");

    // Meta's language object is accepted; INCS gets its documented shape (no language field).
    let id = accepted(&gw, send(two.clone(), json!({"code": "en_US", "policy": "deterministic"}))).await;
    gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let sent = sends_to_incs(&sandbox).await;
    assert_eq!(sent.len(), 1);
    assert_eq!(
        sent[0]["body"],
        json!({"to": "85268411234", "type": "template", "template": {"name": "test_api_2",
            "components": [{"type": "body", "parameters": [{"type": "text", "text": "1"}, {"type": "text", "text": "2"}]}]}})
    );
    // A policy Meta does not have, or a field it does not know, is named.
    for (language, field) in [
        (json!({"code": "en_US", "policy": "fallback"}), "template.language.policy"),
        (json!({"code": "en_US", "polcy": "deterministic"}), "template.language"),
        (json!({"code": "english"}), "template.language"),
    ] {
        let res = gw.send(&send(two.clone(), language.clone())).await;
        assert_eq!(res.status(), 422, "{language}");
        let problem: Value = res.json().await.unwrap();
        assert!(problem["errors"].as_array().unwrap().iter().any(|e| e["field"] == field), "{language}: {problem}");
    }
    gw.stop().await;
}

/// The strict sandbox refuses what INCS would, where the old, lenient one took it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_strict_sandbox_refuses_what_the_lenient_one_took() {
    let strict = TestSandbox::spawn().await;
    let lenient = TestSandbox::spawn_with(provider_sandbox::SandboxConfig {
        listen: "127.0.0.1:0".parse().unwrap(),
        strict: false,
        ..Default::default()
    })
    .await;
    let http = reqwest::Client::new();
    let answer = |base: String, path: &'static str, code: &'static str, body: Value| {
        let http = http.clone();
        async move {
            let res =
                http.post(format!("{base}{path}")).header("certification-code", code).json(&body).send().await.unwrap();
            res.json::<Value>().await.unwrap()
        }
    };
    let misspelt = json!({"to": "85268411234", "type": "template",
        "template": {"name": "test_api_2", "components": [{"type": "body", "paramters": [{"type": "text", "text": "1"}]}]}});
    let extra = json!({"to": "85268411234", "type": "text", "text": "hi", "preview_url": true});
    let chat = gateway_tests::INCS_CODE;
    let api = gateway_tests::INCS_API_CODE;
    let draft = json!({"name": "strict_test", "language": "en_US", "category": "UTILITY",
        "components": [{"type": "BODY", "text": "Hello"}]});
    let cases: Vec<(&str, &'static str, &'static str, Value, i64, &str)> = vec![
        (
            "a misspelt component field",
            "/external/messages/whatsapp",
            chat,
            misspelt,
            422,
            "template.components.0.paramters",
        ),
        ("a field INCS does not have", "/external/messages/whatsapp", chat, extra, 422, "preview_url"),
        ("the chat-api code on the api host", "/external/templates", chat, draft, 10001, ""),
    ];
    for (what, path, code, body, want, names) in cases {
        let refused = answer(strict.url(), path, code, body.clone()).await;
        assert_eq!(refused["code"], want, "strict, {what}: {refused}");
        assert!(refused["message"].as_str().unwrap_or_default().contains(names), "{what}: {refused}");
        let taken = answer(lenient.url(), path, code, body).await;
        assert_eq!(taken["code"], 200, "lenient, {what}: {taken}");
    }
    // The api family's own code is taken on its host.
    let created = answer(
        strict.url(),
        "/external/templates",
        api,
        json!({"name": "strict_ok", "language": "en_US",
        "category": "UTILITY", "components": [{"type": "BODY", "text": "Hello"}]}),
    )
    .await;
    assert_eq!(created["code"], 200, "{created}");
    // A body not sent as JSON is refused by both providers' stand-ins.
    let res = http
        .post(format!("{}/external/messages/whatsapp", strict.url()))
        .header("certification-code", chat)
        .header("content-type", "text/plain")
        .body(json!({"to": "85268411234", "type": "text", "text": "hi"}).to_string())
        .send()
        .await
        .unwrap();
    assert_eq!(res.json::<Value>().await.unwrap()["code"], 422);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_24_hour_window_applies_to_rcs_when_enforced() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    // The RCS account behind the same callback URL as the WhatsApp one, as in the sandbox config.
    let toml = redis
        .config(&sandbox.url(), "")
        .set("senders.rcs-main", "enforce_session_window", true)
        .set("accounts.incs-rcs", "callback_token", "sandbox-incs-callback")
        .text();
    let gw = TestGateway::spawn(&toml).await;
    let user = "6281234567890";
    let text = json!({"channel": "rcs", "to": user, "type": "text", "text": "hi"});
    let res = gw.send(&text).await;
    assert_eq!(res.status(), 422, "outside the window only a template goes");
    let template = json!({"channel": "rcs", "to": user, "type": "template", "template": {"name": "welcome"}});
    assert_eq!(gw.send(&template).await.status(), 202);
    // The user writes (the INCS document's RCS text message).
    let inbound = json!({"event": "new_message", "business_phone": "", "message": {
        "senderPhoneNumber": format!("+{user}"), "messageId": "5312df2b-54e3-457d-8654-49a4f3ba1a19",
        "sendTime": "2024-04-20T10:11:02.589915Z", "text": "Hiii", "agentId": "test_vhbgamhn_agent@rbm.goog"}});
    assert_eq!(post(&gw, "/callbacks/incs/sandbox-incs-callback", &inbound, &[]).await, 200);
    assert_eq!(gw.send(&text).await.status(), 202, "the user's message opened the window");
    gw.stop().await;
}

/// A template send the gateway could not check (it has not read the template) is refused by the
/// strict sandbox as Meta would behind INCS, and the message fails for good with Meta's code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_refuses_unknown_templates_and_wrong_parameter_counts_like_meta() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    let text = |t: &str| json!({"type": "text", "text": t});
    let cases = [
        (json!({"name": "no_such_template"}), "132001"),
        // The documents' example has a header variable and three body variables.
        (
            json!({"name": "test_header_text_2", "components": [{"type": "header", "parameters": [text("2025-10-01")]},
            {"type": "body", "parameters": [text("a"), text("b")]}]}),
            "132000",
        ),
    ];
    for (template, code) in cases {
        let id = accepted(
            &gw,
            json!({"channel": "whatsapp", "to": "85268411234", "type": "template", "template": template}),
        )
        .await;
        let m = gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
        assert_eq!(m["error"]["code"], code, "{m}");
        assert_eq!(m["error"]["retryable"], false, "{m}");
    }
    assert_eq!(sends_to_incs(&sandbox).await.len(), 2, "one request each, no retry");
    gw.stop().await;
}

/// The InnoPaaS stand-in refuses template sends as InnoPaaS would: a template it does not have
/// (its code 143), and one given the wrong parameter count (Meta's 132000); a template created
/// through the gateway, sent with its parameters, goes through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_refuses_innopaas_template_sends_it_has_no_template_for() {
    let redis = TestRedis::single();
    let sandbox = TestSandbox::spawn().await;
    let gw =
        TestGateway::spawn(&redis.gateway_toml(&sandbox.url(), &INNOPAAS.replace("SANDBOX", &sandbox.url()))).await;
    let create = json!({"sender": "inno", "channel": "whatsapp", "name": "order_update", "language": "en_US",
        "category": "UTILITY", "components": [{"type": "BODY", "text": "Hi {{1}}, order {{2}} has shipped.",
        "example": {"body_text": [["Ada", "A-1001"]]}}]});
    let res = gw.client.post(format!("{}/v1/templates", gw.base_url)).bearer_auth(gateway_tests::API_KEY).json(&create);
    assert_eq!(res.send().await.unwrap().status(), 201);
    let text = |t: &str| json!({"type": "text", "text": t});
    let send = |name: &str, params: Value| {
        json!({"channel": "whatsapp", "sender": "inno", "to": "85268411234", "type": "template",
            "template": {"name": name, "language": "en_US", "components": [{"type": "body", "parameters": params}]}})
    };
    let id = accepted(&gw, send("order_update", json!([text("Ada"), text("A-1001")]))).await;
    gw.wait_for_status(&id, "submitted", Duration::from_secs(5)).await;
    for (name, params, code) in [
        ("order_update", json!([text("Ada")]), "132000"),
        ("order_updates", json!([text("Ada"), text("A-1001")]), "143"),
    ] {
        let id = accepted(&gw, send(name, params)).await;
        let m = gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
        assert_eq!(m["error"]["code"], code, "{m}");
        assert_eq!(m["error"]["retryable"], false, "{m}");
    }
    let sends = sandbox.requests_to("innopaas", "/api/whatsapp/v3/msg/submit").await;
    assert_eq!(sends.len(), 3, "one request each, no retry");
    gw.stop().await;
}

/// A sandbox whose INCS callbacks go to the gateway started after it (with the event sink when
/// `events`).
async fn called_back(redis: &TestRedis, events: bool) -> (TestSandbox, TestGateway) {
    let port = gateway_tests::free_port();
    let sandbox = gateway_tests::sandbox_calling_back(port).await;
    let extra = if events { subscription(&sandbox.url()) } else { String::new() };
    let toml = redis.config(&sandbox.url(), &extra).listen(port).text();
    (sandbox, TestGateway::spawn(&toml).await)
}

/// Asks the sandbox to post a callback now (`/_sandbox/callbacks`); returns what it posted.
async fn emit(sandbox: &TestSandbox, request: Value) -> Value {
    let res = sandbox.client.post(format!("{}/_sandbox/callbacks", sandbox.url())).json(&request).send().await.unwrap();
    assert_eq!(res.status(), 202, "{request}");
    res.json::<Value>().await.unwrap()["posted"].clone()
}

/// What providers do only sometimes, emitted by the sandbox on request and carried through the
/// gateway: a `failed` with a transient code (sent again) and a permanent one (failed), a Viber
/// message moved by INCS chat events alone, an inbound reply mapped to our id, and a template
/// quality update.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callbacks_the_sandbox_emits_on_request_move_messages_through_the_gateway() {
    let redis = TestRedis::single();
    let (sandbox, gw) = called_back(&redis, true).await;
    let (retried, permanent, viber) = ("85268411001", "85268411002", "85268411003");
    sandbox.recipient(retried, "whatsapp", "no_receipts").await;
    sandbox.recipient(permanent, "whatsapp", "no_receipts").await;
    sandbox.recipient(viber, "viber", "no_receipts").await;
    let text = |channel: &str, to: &str| json!({"channel": channel, "to": to, "type": "text", "text": "hi"});

    // A transient failure: sent again, the failure in the history.
    let id = accepted(&gw, text("whatsapp", retried)).await;
    let first = gw.wait_for_status(&id, "submitted", Duration::from_secs(3)).await;
    let pmid = first["provider_message_id"].as_str().unwrap().to_owned();
    let posted = emit(
        &sandbox,
        json!({"event": "failed", "provider": "incs", "message_id": pmid, "code": 131000,
        "title": "Something went wrong"}),
    )
    .await;
    assert_eq!(posted["event"], "message_status_update");
    assert_eq!(posted["error"]["code"], 131000);
    let again = eventually(Duration::from_secs(5), || async {
        let m = gw.get_message(&id).await;
        (m["status"] == "submitted" && m["provider_message_id"] != pmid.as_str()).then_some(m)
    })
    .await
    .expect("sent again after the emitted failure");
    assert!(history(&again).contains(&("failed".to_owned(), "incs".to_owned())), "{again}");

    // A permanent one: failed with the code.
    let id2 = accepted(&gw, text("whatsapp", permanent)).await;
    let m = gw.wait_for_status(&id2, "submitted", Duration::from_secs(3)).await;
    let pmid2 = m["provider_message_id"].as_str().unwrap();
    emit(&sandbox, json!({"event": "failed", "provider": "incs", "message_id": pmid2, "code": 131026})).await;
    let m = gw.wait_for_status(&id2, "failed", Duration::from_secs(3)).await;
    assert_eq!(m["error"]["code"], "131026");

    // Viber by chat events alone: the status first, then the event that links INCS's chat id.
    let id3 = accepted(&gw, text("viber", viber)).await;
    let m = gw.wait_for_status(&id3, "submitted", Duration::from_secs(3)).await;
    let uuid = m["provider_message_id"].as_str().unwrap();
    let status =
        emit(&sandbox, json!({"event": "message_status_updated", "message_id": uuid, "channel_status": 3})).await;
    let created = emit(&sandbox, json!({"event": "message_created", "message_id": uuid})).await;
    assert_eq!(created["message"]["id"], status["message_id"], "one chat id for the message");
    assert_eq!(created["message"]["channel_msg_id"], uuid);
    gw.wait_for_status(&id3, "delivered", Duration::from_secs(3)).await;

    // A user's reply to the first message (an image, with its context): mapped to our id.
    let latest = gw.get_message(&id).await["provider_message_id"].as_str().unwrap().to_owned();
    emit(
        &sandbox,
        json!({"event": "inbound", "provider": "incs", "from": retried, "context_message_id": latest,
        "message": {"type": "image", "image": {"id": "1037543291543636", "mime_type": "image/jpeg",
            "sha256": "aGVsbG8=", "link": "https://static.incsapp.com/chat/images/in.jpg"}}}),
    )
    .await;
    let inbound = eventually(Duration::from_secs(5), || async { events_of(&sandbox, "message.inbound").await.pop() })
        .await
        .expect("a message.inbound event");
    assert_eq!(inbound["data"]["type"], "image", "{inbound}");
    assert_eq!(inbound["data"]["context"]["message_id"], id.as_str(), "{inbound}");

    // A template's quality changes: `template.status` says so.
    let create = json!({"sender": "hk-main", "channel": "whatsapp", "name": "quality_watch", "language": "en_US",
        "category": "UTILITY", "components": [{"type": "BODY", "text": "Your order shipped."}]});
    let res = gw
        .client
        .post(format!("{}/v1/templates", gw.base_url))
        .bearer_auth(gateway_tests::API_KEY)
        .json(&create)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let tid = res.json::<Value>().await.unwrap()["provider_template_id"].as_str().unwrap().to_owned();
    emit(&sandbox, json!({"event": "template_update", "template_id": tid, "change": "quality", "new_value": "YELLOW"}))
        .await;
    let update = eventually(Duration::from_secs(5), || async {
        events_of(&sandbox, "template.status").await.into_iter().find(|e| e["data"]["new_value"] == "YELLOW")
    })
    .await
    .expect("a template.status event for the quality update");
    assert_eq!(update["data"]["template_id"], tid.as_str(), "{update}");
    gw.stop().await;
}

/// A template the gateway has not read (made in the provider's console) is read from INCS once,
/// on its first send, and that send is checked against it; a template INCS does not have is left
/// to INCS, and not looked for again on the next send.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_template_the_gateway_never_read_is_fetched_once_and_checked() {
    let (_redis, sandbox, gw) = gateway_tests::gateway_with_sandbox().await;
    // Made at INCS directly, not through the gateway.
    let draft = json!({"name": "console_made", "language": "en_US", "category": "UTILITY", "components": [
        {"type": "BODY", "text": "Order {{1}} ships on {{2}}.", "example": {"body_text": [["A-1", "Monday"]]}}]});
    let made = sandbox
        .client
        .post(format!("{}/external/templates", sandbox.url()))
        .header("certification-code", gateway_tests::INCS_API_CODE)
        .json(&draft)
        .send()
        .await
        .unwrap();
    assert_eq!(made.json::<Value>().await.unwrap()["code"], 200);
    let lists = || async { sandbox.requests_to("incs", "/external/templates").await.len() };
    let before = lists().await;

    let send = |name: &str, params: Value| {
        json!({"channel": "whatsapp", "to": "85268411234", "type": "template",
            "template": {"name": name, "components": [{"type": "body", "parameters": params}]}})
    };
    let one = json!([{"type": "text", "text": "A-1"}]);
    for _ in 0..2 {
        let res = gw.send(&send("console_made", one.clone())).await;
        assert_eq!(res.status(), 422);
        let problem: Value = res.json().await.unwrap();
        assert_eq!(problem["errors"][0]["field"], "template.components[0].parameters", "{problem}");
    }
    assert_eq!(lists().await, before + 1, "read from INCS once, then from the cache");
    assert!(sends_to_incs(&sandbox).await.is_empty(), "no provider saw the misfits");

    // Not at INCS: INCS judges it (132001), and it is not looked for again at once.
    for _ in 0..2 {
        let id = accepted(&gw, send("nowhere_made", one.clone())).await;
        let m = gw.wait_for_status(&id, "failed", Duration::from_secs(5)).await;
        assert_eq!(m["error"]["code"], "132001");
    }
    assert_eq!(lists().await, before + 2, "one read for the unknown template");
    gw.stop().await;
}

/// A free-form WhatsApp message to a user outside the 24-hour window is taken, then reported
/// failed with 131047 (permanent), as Meta does; a template to the same user is delivered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outside_the_window_a_free_form_message_fails_by_callback_with_131047() {
    let redis = TestRedis::single();
    let (sandbox, gw) = called_back(&redis, false).await;
    let user = "85268411777";
    sandbox.recipient(user, "whatsapp", "outside_window").await;
    let text = accepted(&gw, json!({"channel": "whatsapp", "to": user, "type": "text", "text": "hi"})).await;
    let m = gw.wait_for_status(&text, "failed", Duration::from_secs(5)).await;
    assert_eq!((m["error"]["code"].as_str(), m["error"]["retryable"].as_bool()), (Some("131047"), Some(false)), "{m}");
    let template = accepted(
        &gw,
        json!({"channel": "whatsapp", "to": user, "type": "template", "template": {"name": "test_button_reply_1"}}),
    )
    .await;
    gw.wait_for_status(&template, "read", Duration::from_secs(5)).await;
    assert_eq!(sends_to_incs(&sandbox).await.len(), 2, "the failure is not retried");
    gw.stop().await;
}
