//! `parse_webhook` and `verify_static_headers`: every fixture in `tests/webhooks/` parsed into
//! the exact events it stands for; statuses, times, templates and inbound shapes beyond the
//! fixtures; ignored, unknown and malformed bodies; the static header check; and properties: no
//! input makes the parser panic, and a success is never empty.
//!
//! Where the fixtures come from (InnoPaaS publishes no JSON we could retrieve, PROVIDERS.md §2.6):
//! - `sandbox_*`: exactly what `provider-sandbox` posts (`crates/sandbox/src/innopaas.rs`,
//!   `StatusEvent`: compact JSON in its field order, `expireAt` as `yyyy-MM-dd HH:mm:ss`).
//! - `status_delivered`, `status_read`, `status_failed`, `template_approved` and every
//!   `inbound_*`: the examples of Chuanglan's public WhatsApp webhook page
//!   (`chuanglan-international/whatsapp`, `api_cn/webhook.md`; InnoPaaS is Chuanglan), verbatim
//!   but for one trailing comma removed from the location example.
//! - `status_delivered_providers`, `status_smecl_failed`, `template_rejected_update_spelling`:
//!   the PROVIDERS.md §2.6 field lists (`sendPhone`, `uid`, `expireAt` as `yyyy-MM-dd HH:mm:ss`,
//!   `SMECL:FAILED`, the `…_update` spelling).
//! - `inbox_*`: the inbox variant's documented fields (`wabaId, from, to, messageType, context,
//!   wamid, conversationId, uid`) with assumed Cloud-API-like content (`body`, `url`).
//! - `ignored_*`: the three event types the gateway does not act on, with made-up bodies.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use chrono::{DateTime, NaiveDateTime, Utc};
use gateway_core::event::{
    CallbackError, CallbackEvent, ContactName, ContactPhone, Conversation, InboundContent, InboundContext,
    InboundError, InboundMedia, InboundMessage, InteractiveReply, OrderItem, ReportedError, SharedContact,
    StatusReport, TemplateChange, TemplateReport,
};
use gateway_core::{Channel, MessageStatus, ProviderKind};
use gateway_innopaas::{parse_webhook, verify_static_headers};
use secrecy::SecretString;
use serde_json::{json, Value};

/// 3 sandbox bodies, 5 statuses, 2 templates, 13 inbound, 2 inbox, 3 ignored.
const FIXTURES: usize = 28;

const UID: &str = "01936f3e8c4a7b219d3e5a1f2b3c4d5e";
const SANDBOX_WAMID: &str = "wamid.HBgLODUyNjg0MTEyMzQVAgARGBIzQTdGMTlDMDRFMkI4RDY2NTEA";
const DOC_WAMID: &str = "wamid.HBgNODYxNjY4NTE3NzYxMhUCABEYEjQ0RTYyQTM5QzAyMkU0QkNERgA=";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/webhooks")
}

/// Every fixture as `(file name, body)`, sorted.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(root())
        .expect("tests/webhooks")
        .map(|entry| entry.expect("directory entry").path())
        .filter(|path| path.extension().is_some_and(|x| x == "json"))
        .map(|path| {
            let name = path.file_name().expect("a file").to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("readable fixture"))
        })
        .collect();
    out.sort();
    out
}

fn rfc3339(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

fn utc(s: &str) -> DateTime<Utc> {
    NaiveDateTime::parse_from_str(s, "%Y-%m-%d %H:%M:%S").expect("yyyy-MM-dd HH:mm:ss").and_utc()
}

/// A status report with the fields every case sets; the rest `None`.
fn report(id: &str, status: MessageStatus, at: DateTime<Utc>) -> StatusReport {
    StatusReport {
        provider: ProviderKind::Innopaas,
        provider_message_id: id.into(),
        status,
        at,
        error: None,
        correlation_id: None,
        recipient: None,
        business_phone: None,
        conversation: None,
        wamid: None,
    }
}

fn conversation(kind: &str, expires_at: DateTime<Utc>) -> Option<Conversation> {
    Some(Conversation { kind: kind.into(), expires_at: Some(expires_at) })
}

fn template(id: &str, name: &str, language: &str, status: &str, reason: Option<&str>) -> TemplateReport {
    TemplateReport {
        provider: ProviderKind::Innopaas,
        template_id: id.into(),
        template_name: name.into(),
        language: Some(language.into()),
        change: TemplateChange::Status,
        new_value: status.into(),
        reason: reason.map(Into::into),
        at: rfc3339("2023-10-16T13:04:57.644Z"),
        business_phone: None,
        business_account: Some("110129512080569".into()),
    }
}

/// An inbound message as the Chuanglan examples have it: from `PHONE-NUMBER` (Jack) to
/// `BUSINESS-PHONE-NUMBER` at noon on 2023-02-22.
struct Mo<'a> {
    body: &'a Value,
    id: &'a str,
    from: &'a str,
    to: &'a str,
    at: DateTime<Utc>,
    profile: Option<&'a str>,
    context: Option<(&'a str, Option<&'a str>)>,
}

impl Mo<'_> {
    fn with(&self, content: InboundContent) -> Vec<CallbackEvent> {
        vec![CallbackEvent::Inbound(Box::new(InboundMessage {
            provider: ProviderKind::Innopaas,
            channel: Channel::Whatsapp,
            business_phone: self.to.into(),
            from: self.from.into(),
            provider_message_id: self.id.into(),
            at: self.at,
            profile_name: self.profile.map(Into::into),
            content,
            context: self
                .context
                .map(|(id, from)| InboundContext { provider_message_id: id.into(), from: from.map(Into::into) }),
            raw: self.body["body"].clone(),
        }))]
    }
}

fn jack(body: &Value) -> Mo<'_> {
    Mo {
        body,
        id: "wamid.HBgNOD...",
        from: "PHONE-NUMBER",
        to: "BUSINESS-PHONE-NUMBER",
        at: rfc3339("2023-02-22T12:00:00Z"),
        profile: Some("Jack"),
        context: None,
    }
}

const REPLY_CONTEXT: Option<(&str, Option<&str>)> = Some(("wamid.ID", Some("PHONE_NUMBER")));

fn media(mime: &str, sha256: &str) -> InboundMedia {
    InboundMedia {
        link: Some("http://xxxxxxxxxx".into()),
        mime_type: Some(mime.into()),
        sha256: Some(sha256.into()),
        ..InboundMedia::default()
    }
}

/// The events a fixture must parse into; `None` for the ignored ones, checked by
/// [`expected_ignored`].
fn expected(name: &str, body: &Value) -> Option<Vec<CallbackEvent>> {
    use InboundContent as C;
    use MessageStatus::{Delivered, Failed, Read};
    let status = |r: StatusReport| Some(vec![CallbackEvent::Status(r)]);
    let template = |t: TemplateReport| Some(vec![CallbackEvent::Template(t)]);
    match name {
        "sandbox_status_delivered.json" => status(StatusReport {
            wamid: Some("wamid.HBgLODUyNjg0MTEyMzQVAgARGBIzQTdGMTlDMDRFMkI4RDY2NTEA".into()),
            correlation_id: Some(UID.into()),
            recipient: Some("85268411234".into()),
            conversation: conversation("business_initiated", utc("2026-04-08 12:02:55")),
            ..report("593716823048192001", Delivered, rfc3339("2026-04-07T12:02:55.300Z"))
        }),
        "sandbox_status_read.json" => status(StatusReport {
            wamid: Some("wamid.HBgLODUyNjg0MTEyMzQVAgARGBIzQTdGMTlDMDRFMkI4RDY2NTEA".into()),
            correlation_id: Some(UID.into()),
            recipient: Some("85268411234".into()),
            ..report("593716823048192001", Read, rfc3339("2026-04-07T12:02:55.600Z"))
        }),
        "sandbox_status_delivered_no_uid.json" => status(StatusReport {
            wamid: Some("wamid.HBgLODUyNjg0MTEyMzQVAgARGBIzQTdGMTlDMDRFMkI4RDY2NTEA".into()),
            recipient: Some("85268411234".into()),
            conversation: conversation("business_initiated", utc("2026-04-08 12:02:55")),
            ..report("593716823048192002", Delivered, rfc3339("2026-04-07T12:02:55.300Z"))
        }),
        "status_delivered.json" => status(StatusReport {
            wamid: Some("wamid.BgNODYxN...".into()),
            conversation: conversation("business_initiated", rfc3339("2023-02-23T12:00:00Z")),
            ..report("356139161272397824", Delivered, rfc3339("2023-02-22T12:00:00Z"))
        }),
        "status_delivered_providers.json" => status(StatusReport {
            wamid: Some("wamid.HBgNODYxNjY4NTE3NzYxMhUCABEYEjQ0RTYyQTM5QzAyMkU0QkNERgA=".into()),
            correlation_id: Some(UID.into()),
            recipient: Some("8616685177612".into()),
            conversation: conversation("referral_conversion", utc("2025-08-07 07:41:41")),
            ..report("356139161272397824", Delivered, utc("2025-08-06 07:41:41"))
        }),
        "status_read.json" => status(StatusReport {
            wamid: Some("wamid.HBgNODYxNjY4NTE3NzYxMhUCABEYEjQ0RTYyQTM5QzAyMkU0QkNERgA=".into()),
            ..report("356139161272397824", Read, rfc3339("2023-05-26T02:18:44.115Z"))
        }),
        "status_failed.json" => status(StatusReport {
            wamid: Some("wamid.HBgNODYxNjY4NTE3NzYxMhUCABEYEjQ0RTYyQTM5QzAyMkU0QkNERgA=".into()),
            error: Some(ReportedError {
                code: Some("131014".into()),
                title: "Request for url https://URL.jpg failed with error: 404 (Not Found)".into(),
            }),
            ..report("356139161272397824", Failed, rfc3339("2023-05-25T10:31:08.167Z"))
        }),
        "status_smecl_failed.json" => status(StatusReport {
            error: Some(ReportedError {
                code: Some("SMECL:FAILED".into()),
                title: "InnoPaaS platform failure (SMECL:FAILED)".into(),
            }),
            correlation_id: Some("01936f3e8c4a7b219d3e5a1f2b3c4d5f".into()),
            recipient: Some("8616685177612".into()),
            ..report("356139161272397825", Failed, rfc3339("2023-05-25T10:31:08.167Z"))
        }),
        "template_approved.json" => {
            template(self::template("998961841525295", "transland_common_otp", "en_US", "APPROVED", None))
        }
        "template_rejected_update_spelling.json" => {
            template(self::template("998961841525296", "promo_august", "id", "REJECTED", Some("INVALID_FORMAT")))
        }
        "inbound_text.json" => Some(Mo { id: "wamid.BgNODYxN...", ..jack(body) }.with(C::Text { body: "OK".into() })),
        "inbound_reaction.json" => Some(
            Mo { context: Some(("wamid.HBgNODY...", None)), ..jack(body) }
                .with(C::Reaction { message_id: "wamid.HBgNODY...".into(), emoji: Some("EMOJI".into()) }),
        ),
        "inbound_image.json" => Some(
            jack(body)
                .with(C::Image(InboundMedia { caption: Some("CAPTION".into()), ..media("image/jpeg", "IMAGE_HASH") })),
        ),
        "inbound_sticker.json" => Some(jack(body).with(C::Sticker(media("image/webp", "HASH")))),
        "inbound_video.json" => {
            Some(jack(body).with(C::Video(media("video/mp4", "G4fboj5cKcAbCdefzhcAcRdnXJqFJAyTSlNmJANhu4M="))))
        }
        "inbound_audio.json" => Some(
            jack(body).with(C::Audio(media("audio/ogg; codecs=opus", "ffRSAbcDeff3mJ2hBhpzuFY7pYEugTfglD+zx4Qv8X4="))),
        ),
        "inbound_document.json" => Some(jack(body).with(C::Document(InboundMedia {
            caption: Some("pdf caption".into()),
            filename: Some("filename.pdf".into()),
            ..media("application/pdf", "TJGGMF5tdw3XApVHbABCdeffI7w4OW7GqYEN736PW0s=")
        }))),
        "inbound_location.json" => Some(jack(body).with(C::Location {
            latitude: 39.90539,
            longitude: 116.39134,
            name: Some("LOCATION_NAME".into()),
            address: Some("LOCATION_ADDRESS".into()),
        })),
        "inbound_button.json" => Some(
            Mo { context: REPLY_CONTEXT, ..jack(body) }
                .with(C::Button { payload: Some("No-Button-Payload".into()), text: "No".into() }),
        ),
        "inbound_unknown.json" => Some(jack(body).with(C::Unsupported {
            errors: vec![InboundError {
                code: Some("131051".into()),
                title: "Unsupported message type".into(),
                details: Some("Message type is not currently supported".into()),
            }],
        })),
        "inbound_interactive_list_reply.json" => {
            Some(Mo { context: REPLY_CONTEXT, ..jack(body) }.with(C::Interactive {
                kind: InteractiveReply::ListReply,
                id: "list_reply_id".into(),
                title: "list_reply_title".into(),
                description: Some("list_reply_description".into()),
            }))
        }
        "inbound_interactive_button_reply.json" => {
            Some(Mo { context: REPLY_CONTEXT, ..jack(body) }.with(C::Interactive {
                kind: InteractiveReply::ButtonReply,
                id: "unique-button-identifier-here".into(),
                title: "button-text".into(),
                description: None,
            }))
        }
        "inbound_contacts.json" => Some(
            Mo {
                body,
                id: "wamid.HBgNODYxODM1NTA5MjE5NxUCABIYIDg3RDVFMzQyRjIwQkM5NDQyMDI5OTRERERGNUYx*****==",
                from: "86183****2197",
                to: "62811****6819",
                at: rfc3339("2024-03-07T10:46:24Z"),
                profile: Some("Jack"),
                context: None,
            }
            .with(C::Contacts {
                contacts: vec![SharedContact {
                    name: ContactName {
                        formatted_name: Some("CONTACT_FORMATTED_NAME1".into()),
                        first_name: Some("CONTACT_FIRST_NAME1".into()),
                        last_name: Some("CONTACT_LAST_NAME1".into()),
                    },
                    phones: vec![ContactPhone {
                        phone: Some("CONTACT_PHONE1".into()),
                        wa_id: Some("CONTACT_WA_ID1".into()),
                        kind: Some("HOME or WORK>1".into()),
                    }],
                }],
            }),
        ),
        "inbox_chat_mo_text.json" => Some(
            Mo {
                body,
                id: "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTY5OUZERjU5MDZBQzUyN0Y0MgA=",
                from: "85268415026",
                to: "85230012345",
                at: rfc3339("2025-08-06T07:41:41Z"),
                profile: None,
                context: Some(("wamid.HBgLODUyNjg0MTUwMjYVAgARGBI5RkEyNjU2NEUwMDhBRDMxNTEA", Some("85230012345"))),
            }
            .with(C::Text { body: "Is my order on its way?".into() }),
        ),
        "inbox_chat_mo_image.json" => Some(
            Mo {
                body,
                id: "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUZCMzlCREIwMDdCMkYzRjZBQgA=",
                from: "85268415026",
                to: "85230012345",
                at: DateTime::from_timestamp_millis(1_754_466_101_000).expect("in range"),
                profile: None,
                context: None,
            }
            .with(C::Image(InboundMedia {
                link: Some("https://files.innopaas.example/chat/2173590463051074.jpg".into()),
                caption: Some("the parcel".into()),
                ..InboundMedia::default()
            })),
        ),
        _ => None,
    }
}

fn expected_ignored(name: &str) -> Option<&'static str> {
    Some(match name {
        "ignored_account_review_updated.json" => "whatsapp_account_review_updated",
        "ignored_phone_number_name_update.json" => "whatsapp_phone_number_name_update",
        "ignored_chat_mt_message_notify.json" => "chat_mt_message_notify",
        _ => return None,
    })
}

fn check_fixture(name: &str, body: &[u8]) -> Result<(), String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("fixture is not JSON: {e}"))?;
    let got = parse_webhook(body).map_err(|e| format!("refused: {e}"))?;
    if let Some(want) = expected(name, &json) {
        return if got == want { Ok(()) } else { Err(format!("got  {got:#?}\nwant {want:#?}")) };
    }
    let Some(want_event) = expected_ignored(name) else {
        return Err("no expectation for this fixture".into());
    };
    match got.as_slice() {
        [CallbackEvent::Ignored { event, reason }] if event == want_event && !reason.is_empty() => Ok(()),
        other => Err(format!("want one Ignored `{want_event}`, got {other:#?}")),
    }
}

#[test]
fn every_fixture_parses_into_its_event() {
    let files = fixtures();
    assert_eq!(files.len(), FIXTURES, "fixtures found: {:#?}", files.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(name, body)| check_fixture(name, body).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{} of {FIXTURES} fixtures failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// The sandbox fixtures keep the sandbox's exact key set, so a change there shows up here.
#[test]
fn sandbox_fixtures_have_the_sandbox_keys() {
    for (name, body) in fixtures().iter().filter(|(n, _)| n.starts_with("sandbox_")) {
        let v: Value = serde_json::from_slice(body).expect("JSON");
        let keys = |v: &Value| {
            let mut k: Vec<String> = v.as_object().expect("object").keys().cloned().collect();
            k.sort();
            k
        };
        assert_eq!(keys(&v), ["body", "eventTime", "id", "type"], "{name}");
        let mut want = vec!["accountName", "id", "sendPhone", "status", "wabaId", "wamid"];
        if v["body"]["uid"].is_string() {
            want.push("uid");
        }
        if v["body"]["status"] == "delivered" {
            want.push("conversation");
            assert_eq!(keys(&v["body"]["conversation"]), ["expireAt", "id", "initiateType"], "{name}");
        }
        want.sort_unstable();
        assert_eq!(keys(&v["body"]), want, "{name}");
        assert_eq!(v["body"]["wamid"], SANDBOX_WAMID, "{name}");
        assert!(!String::from_utf8_lossy(body).contains("\n "), "{name}: the sandbox posts compact JSON");
    }
}

fn parse(body: &Value) -> Result<Vec<CallbackEvent>, CallbackError> {
    parse_webhook(&serde_json::to_vec(body).expect("serializable"))
}

fn status_body() -> Value {
    json!({
        "id": "e5cb1bc6-ad90-419d-8f83-aa394c0b7cc7",
        "type": "whatsapp_message_status_updated",
        "eventTime": "2023-02-22T12:00:00.000Z",
        "body": {
            "id": "356139161272397824",
            "accountName": "IW123456",
            "wabaId": "11231231212331",
            "status": "delivered",
            "wamid": DOC_WAMID,
            "sendPhone": "8616685177612",
            "uid": UID,
            "conversation": {"id": "00e5a7e14a588d96bd2343d105d03ec5", "initiateType": "business_initiated",
                "expireAt": "2023-02-23 12:00:00"}
        }
    })
}

fn template_body() -> Value {
    json!({
        "id": "fd201190-50dc-4151-baec-1d16c8a704e1",
        "type": "whatsapp_template_status_updated",
        "eventTime": "2023-10-16T13:04:57.644Z",
        "body": {"accountName": "IW2267527", "category": "UTILITY", "reason": "", "templateId": "998961841525295",
            "templateLanguage": "en_US", "templateName": "order_update", "templateStatus": "PENDING",
            "wabaId": "110129512080569"}
    })
}

fn inbound_body(extra: Value) -> Value {
    let mut body = json!({
        "id": "63f5d602367ea403f8175a6c",
        "accountName": "IW123456",
        "wabaId": "104417182520443",
        "wamid": "wamid.IN",
        "from": "85268415026",
        "customerProfile": {"name": "Lessie"},
        "to": "85230012345",
        "sendTime": "2023-02-22T12:00:00.000Z"
    });
    if let (Value::Object(body), Value::Object(extra)) = (&mut body, extra) {
        body.extend(extra);
    }
    json!({"id": "b5e984b3-21b2-42a9-b08b-72e5a4096ac6", "type": "whatsapp_mo_message_received",
        "eventTime": "2023-02-22T12:00:01.000Z", "body": body})
}

/// Sets (`Some`) or removes (`None`) the node at a JSON pointer.
fn with(mut body: Value, pointer: &str, value: Option<Value>) -> Value {
    let (parent, key) = pointer.rsplit_once('/').expect("a pointer");
    let target = body.pointer_mut(parent).unwrap_or_else(|| panic!("no {parent}"));
    match (target, value) {
        (Value::Object(map), Some(v)) => {
            map.insert(key.to_owned(), v);
        }
        (Value::Object(map), None) => {
            map.remove(key);
        }
        (Value::Array(items), Some(v)) => match key.parse::<usize>().expect("index") {
            i if i == items.len() => items.push(v),
            i => items[i] = v,
        },
        (Value::Array(items), None) => {
            items.remove(key.parse::<usize>().expect("index"));
        }
        _ => panic!("{parent} is not a container"),
    }
    body
}

fn one_status(result: Result<Vec<CallbackEvent>, CallbackError>) -> StatusReport {
    match result {
        Ok(events) => match events.as_slice() {
            [CallbackEvent::Status(s)] => s.clone(),
            other => panic!("want one status report, got {other:#?}"),
        },
        Err(e) => panic!("refused: {e}"),
    }
}

fn one_template(result: Result<Vec<CallbackEvent>, CallbackError>) -> TemplateReport {
    match result {
        Ok(events) => match events.as_slice() {
            [CallbackEvent::Template(t)] => t.clone(),
            other => panic!("want one template report, got {other:#?}"),
        },
        Err(e) => panic!("refused: {e}"),
    }
}

fn one_inbound(result: Result<Vec<CallbackEvent>, CallbackError>) -> InboundMessage {
    match result {
        Ok(events) => match events.as_slice() {
            [CallbackEvent::Inbound(m)] => (**m).clone(),
            other => panic!("want one inbound message, got {other:#?}"),
        },
        Err(e) => panic!("refused: {e}"),
    }
}

fn ignored_event(result: Result<Vec<CallbackEvent>, CallbackError>) -> String {
    match result {
        Ok(events) => match events.as_slice() {
            [CallbackEvent::Ignored { event, reason }] if !reason.is_empty() => event.clone(),
            other => panic!("want one Ignored, got {other:#?}"),
        },
        Err(e) => panic!("refused: {e}"),
    }
}

#[test]
fn statuses_by_name() {
    let cases = [
        ("delivered", MessageStatus::Delivered),
        ("read", MessageStatus::Read),
        ("failed", MessageStatus::Failed),
        ("SMECL:FAILED", MessageStatus::Failed),
        ("smecl:failed", MessageStatus::Failed),
        ("sent", MessageStatus::Sent),
        ("DELIVERED", MessageStatus::Delivered),
        (" Read ", MessageStatus::Read),
    ];
    for (wire, want) in cases {
        let report = one_status(parse(&with(status_body(), "/body/status", Some(json!(wire)))));
        assert_eq!(report.status, want, "{wire}");
        assert_eq!(report.provider, ProviderKind::Innopaas);
        assert_eq!(report.provider_message_id, "356139161272397824");
        assert_eq!(report.correlation_id.as_deref(), Some(UID));
        assert_eq!(report.recipient.as_deref(), Some("8616685177612"));
        assert_eq!(report.at, rfc3339("2023-02-22T12:00:00Z"));
        assert!(StatusReport::REPORTABLE.contains(&report.status));
    }
}

#[test]
fn a_status_the_gateway_does_not_track_is_ignored_not_refused() {
    for wire in ["deleted", "accepted", "", "SMECL:SUCCESS", "undelivered"] {
        let event = ignored_event(parse(&with(status_body(), "/body/status", Some(json!(wire)))));
        assert_eq!(event, "whatsapp_message_status_updated", "{wire}");
    }
}

#[test]
fn errors_in_every_shape() {
    let failed = |error: Option<Value>| {
        let body = with(status_body(), "/body/status", Some(json!("failed")));
        one_status(parse(&with(body, "/body/errorData", error))).error
    };
    let e = |code: Option<&str>, title: &str| Some(ReportedError { code: code.map(Into::into), title: title.into() });
    let cases: Vec<(Option<Value>, Option<ReportedError>)> = vec![
        (None, None),
        (Some(json!(null)), None),
        (Some(json!({})), None),
        (Some(json!({"errorCode": "", "errorMessage": " "})), None),
        (Some(json!({"errorCode": "131049", "errorMessage": "m"})), e(Some("131049"), "m")),
        (Some(json!({"errorCode": 131026, "errorMessage": "m"})), e(Some("131026"), "m")),
        (Some(json!({"errorCode": "131047"})), e(Some("131047"), "")),
        (Some(json!({"errorMessage": "Re-engagement message"})), e(None, "Re-engagement message")),
        (Some(json!("Message undeliverable")), e(None, "Message undeliverable")),
        (Some(json!({"errorCode": "1", "errorMessage": "m", "errorDetail": {"x": 1}})), e(Some("1"), "m")),
    ];
    for (wire, want) in cases {
        assert_eq!(failed(wire.clone()), want, "{wire:?}");
    }
    // SMECL:FAILED keeps InnoPaaS's own error when it gives one.
    let smecl = with(status_body(), "/body/status", Some(json!("SMECL:FAILED")));
    let smecl = with(smecl, "/body/errorData", Some(json!({"errorCode": "999", "errorMessage": "gateway busy"})));
    assert_eq!(one_status(parse(&smecl)).error, e(Some("999"), "gateway busy"));
}

#[test]
fn the_message_id_is_innopaas_id_and_the_wamid_only_without_one() {
    let cases = [
        (Some(json!("356139161272397824")), "356139161272397824"),
        (Some(json!(356139161272397824_u64)), "356139161272397824"),
        (None, DOC_WAMID),
        (Some(json!("")), DOC_WAMID),
        (Some(json!(null)), DOC_WAMID),
    ];
    for (id, want) in cases {
        let report = one_status(parse(&with(status_body(), "/body/id", id.clone())));
        assert_eq!(report.provider_message_id, want, "{id:?}");
    }
}

#[test]
fn conversations_in_every_shape() {
    let noon = rfc3339("2023-02-23T12:00:00Z");
    let cases: Vec<(Option<Value>, Option<Conversation>)> = vec![
        (None, None),
        (Some(json!(null)), None),
        (Some(json!({})), None),
        (Some(json!({"id": "c"})), None),
        (
            Some(json!({"initiateType": "customer_initiated"})),
            Some(Conversation { kind: "customer_initiated".into(), expires_at: None }),
        ),
        (
            Some(json!({"initiateType": "business_initiated", "expireAt": ""})),
            Some(Conversation { kind: "business_initiated".into(), expires_at: None }),
        ),
        (
            Some(json!({"initiateType": "business_initiated", "expireAt": null})),
            Some(Conversation { kind: "business_initiated".into(), expires_at: None }),
        ),
        (
            Some(json!({"expireAt": "2023-02-23 12:00:00"})),
            Some(Conversation { kind: "unknown".into(), expires_at: Some(noon) }),
        ),
    ];
    for (wire, want) in cases {
        assert_eq!(
            one_status(parse(&with(status_body(), "/body/conversation", wire.clone()))).conversation,
            want,
            "{wire:?}"
        );
    }
    for expire_at in [
        json!("2023-02-23 12:00:00"),
        json!("2023-02-23T12:00:00.000Z"),
        json!("2023-02-23T12:00:00Z"),
        json!("2023-02-23T20:00:00+08:00"),
        json!("2023-02-23T20:00:00+0800"),
        json!("2023-02-23T12:00:00"),
        json!(1677153600),
        json!(1677153600000_u64),
        json!("1677153600"),
    ] {
        let body = with(status_body(), "/body/conversation/expireAt", Some(expire_at.clone()));
        assert_eq!(
            one_status(parse(&body)).conversation,
            Some(Conversation { kind: "business_initiated".into(), expires_at: Some(noon) }),
            "{expire_at}"
        );
    }
}

#[test]
fn event_times_in_every_form() {
    let noon = rfc3339("2023-02-22T12:00:00Z");
    for event_time in [
        json!("2023-02-22T12:00:00.000Z"),
        json!("2023-02-22T12:00:00Z"),
        json!("2023-02-22T20:00:00+08:00"),
        json!("2023-02-22T20:00:00.000+0800"),
        json!("2023-02-22 12:00:00"),
        json!("2023-02-22 12:00:00.000"),
        json!(1677067200),
        json!(1677067200000_u64),
        json!("1677067200"),
        json!("1677067200000"),
    ] {
        let body = with(status_body(), "/eventTime", Some(event_time.clone()));
        assert_eq!(one_status(parse(&body)).at, noon, "{event_time}");
        let body = with(template_body(), "/eventTime", Some(event_time.clone()));
        assert_eq!(one_template(parse(&body)).at, noon, "{event_time}");
    }
    let millis = with(status_body(), "/eventTime", Some(json!(1677067200123_u64)));
    assert_eq!(one_status(parse(&millis)).at, rfc3339("2023-02-22T12:00:00.123Z"));
}

#[test]
fn templates_in_both_spellings_and_every_status() {
    for kind in ["whatsapp_template_status_updated", "whatsapp_template_status_update"] {
        for status in ["PENDING", "APPROVED", "REJECTED", "PAUSED", "DISABLED", "IN_APPEAL"] {
            let body =
                with(with(template_body(), "/type", Some(json!(kind))), "/body/templateStatus", Some(json!(status)));
            assert_eq!(
                one_template(parse(&body)),
                TemplateReport {
                    provider: ProviderKind::Innopaas,
                    template_id: "998961841525295".into(),
                    template_name: "order_update".into(),
                    language: Some("en_US".into()),
                    change: TemplateChange::Status,
                    new_value: status.into(),
                    reason: None,
                    at: rfc3339("2023-10-16T13:04:57.644Z"),
                    business_phone: None,
                    business_account: Some("110129512080569".into()),
                },
                "{kind} {status}"
            );
        }
    }
}

#[test]
fn template_details() {
    let t = one_template(parse(&with(template_body(), "/body/templateId", Some(json!(998961841525295_u64)))));
    assert_eq!(t.template_id, "998961841525295");
    let t = one_template(parse(&with(template_body(), "/body/templateName", None)));
    assert_eq!(t.template_name, "");
    let t = one_template(parse(&with(template_body(), "/body/templateLanguage", Some(json!("")))));
    assert_eq!(t.language, None);
    for (reason, want) in [
        (json!("NONE"), None),
        (json!("none"), None),
        (json!(""), None),
        (json!(null), None),
        (json!("INCORRECT_CATEGORY"), Some("INCORRECT_CATEGORY")),
    ] {
        let t = one_template(parse(&with(template_body(), "/body/reason", Some(reason.clone()))));
        assert_eq!(t.reason.as_deref(), want, "{reason}");
    }
}

#[test]
fn inbound_heads() {
    let m = one_inbound(parse(&inbound_body(json!({"type": "text", "text": {"body": "hi"}}))));
    assert_eq!((m.from.as_str(), m.business_phone.as_str()), ("85268415026", "85230012345"));
    assert_eq!(m.provider_message_id, "wamid.IN");
    assert_eq!(m.profile_name.as_deref(), Some("Lessie"));
    assert_eq!(m.at, rfc3339("2023-02-22T12:00:00Z"));
    assert_eq!((m.provider, m.channel), (ProviderKind::Innopaas, Channel::Whatsapp));
    assert_eq!(m.raw["accountName"], "IW123456");

    // `+` prefixes go; numbers are read as text.
    let plus = inbound_body(json!({"from": "+85268415026", "to": 85230012345_u64, "text": "hi"}));
    let m = one_inbound(parse(&plus));
    assert_eq!((m.from.as_str(), m.business_phone.as_str()), ("85268415026", "85230012345"));
    assert_eq!(m.raw["from"], "+85268415026");

    // Without a wamid, InnoPaaS's own id.
    let m = one_inbound(parse(&with(inbound_body(json!({"text": "hi"})), "/body/wamid", None)));
    assert_eq!(m.provider_message_id, "63f5d602367ea403f8175a6c");

    // The time: sendTime, else a Cloud API timestamp, else eventTime.
    let no_send_time = with(inbound_body(json!({"text": "hi"})), "/body/sendTime", None);
    assert_eq!(one_inbound(parse(&no_send_time)).at, rfc3339("2023-02-22T12:00:01Z"));
    let timestamp = with(no_send_time.clone(), "/body/timestamp", Some(json!("1677067200")));
    assert_eq!(one_inbound(parse(&timestamp)).at, rfc3339("2023-02-22T12:00:00Z"));
    let naive = with(no_send_time, "/body/sendTime", Some(json!("2023-02-22 12:00:00")));
    assert_eq!(one_inbound(parse(&naive)).at, rfc3339("2023-02-22T12:00:00Z"));

    // A blank or unreadable profile is no profile.
    for profile in [json!({"name": ""}), json!("Jack"), json!(null), json!({"name": 5})] {
        let body = with(inbound_body(json!({"text": "hi"})), "/body/customerProfile", Some(profile.clone()));
        assert_eq!(one_inbound(parse(&body)).profile_name, None, "{profile}");
    }
}

#[test]
fn inbound_contexts() {
    let ctx = |context: Value| {
        one_inbound(parse(&inbound_body(json!({"type": "text", "text": {"body": "hi"}, "context": context})))).context
    };
    let want = |id: &str, from: Option<&str>| {
        Some(InboundContext { provider_message_id: id.into(), from: from.map(Into::into) })
    };
    assert_eq!(ctx(json!({"id": "wamid.OURS", "from": "85230012345"})), want("wamid.OURS", Some("85230012345")));
    assert_eq!(ctx(json!({"wamid": "wamid.OURS"})), want("wamid.OURS", None));
    assert_eq!(ctx(json!({"messageId": "wamid.OURS"})), want("wamid.OURS", None));
    assert_eq!(ctx(json!("wamid.OURS")), want("wamid.OURS", None));
    for none in [json!(null), json!(""), json!({}), json!({"forwarded": true}), json!(7), json!([1])] {
        assert_eq!(ctx(none.clone()), None, "{none}");
    }
}

#[test]
fn inbound_content_beyond_the_examples() {
    use InboundContent as C;
    let content = |extra: Value| one_inbound(parse(&inbound_body(extra))).content;
    let text = |s: &str| C::Text { body: s.into() };

    // No type: the first content field present decides; uppercase types read too.
    assert_eq!(content(json!({"text": {"body": "hi"}})), text("hi"));
    assert_eq!(content(json!({"messageType": "TEXT", "text": "hi"})), text("hi"));
    assert_eq!(content(json!({"messageType": "text", "body": "hi"})), text("hi"));
    assert_eq!(content(json!({"body": "hi"})), text("hi"));
    assert_eq!(content(json!({"type": "text", "messageType": "image", "text": "hi"})), text("hi"));
    assert_eq!(content(json!({})), C::Unknown { kind: "none".into() });

    // Cloud API (snake_case) names.
    assert_eq!(
        content(
            json!({"type": "image", "image": {"id": "2173590463051074", "mime_type": "image/jpeg", "sha256": "h"}})
        ),
        C::Image(InboundMedia {
            id: Some("2173590463051074".into()),
            mime_type: Some("image/jpeg".into()),
            sha256: Some("h".into()),
            ..InboundMedia::default()
        })
    );
    assert_eq!(
        content(json!({"type": "audio", "audio": {"url": "https://x/a.ogg", "voice": true}})),
        C::Audio(InboundMedia { link: Some("https://x/a.ogg".into()), voice: Some(true), ..InboundMedia::default() })
    );
    assert_eq!(
        content(json!({"type": "interactive", "interactive": {"type": "list_reply",
            "list_reply": {"id": "r1", "title": "Row 1", "description": "d"}}})),
        C::Interactive {
            kind: InteractiveReply::ListReply,
            id: "r1".into(),
            title: "Row 1".into(),
            description: Some("d".into())
        }
    );
    assert_eq!(
        content(json!({"type": "interactive", "interactive": {"button_reply": {"id": 7, "title": "Yes"}}})),
        C::Interactive { kind: InteractiveReply::ButtonReply, id: "7".into(), title: "Yes".into(), description: None }
    );
    // Coordinates as strings, the way InnoPaaS takes them on sends.
    assert_eq!(
        content(json!({"type": "location", "location": {"latitude": "22.3193", "longitude": "114.1694"}})),
        C::Location { latitude: 22.3193, longitude: 114.1694, name: None, address: None }
    );
    assert_eq!(
        content(json!({"type": "order", "order": {"catalogId": "194836987003835", "text": "Love these!",
            "productItems": [{"productRetailerId": "di9ozbzfi4", "quantity": "2", "itemPrice": 30, "currency": "USD"}]}})),
        C::Order {
            catalog_id: "194836987003835".into(),
            items: vec![OrderItem {
                product_retailer_id: "di9ozbzfi4".into(),
                quantity: 2,
                item_price: Some(30.0),
                currency: Some("USD".into())
            }],
            text: Some("Love these!".into())
        }
    );
    assert_eq!(
        content(json!({"type": "reaction", "reaction": {"message_id": "wamid.OURS", "emoji": ""}})),
        C::Reaction { message_id: "wamid.OURS".into(), emoji: None }
    );
    assert_eq!(
        content(json!({"type": "unsupported", "errors": [{"code": "131051", "message": "m",
            "error_data": {"details": "d"}}]})),
        C::Unsupported {
            errors: vec![InboundError { code: Some("131051".into()), title: "m".into(), details: Some("d".into()) }]
        }
    );

    // What the model lacks, or cannot read, is Unknown under the type as sent; `raw` keeps it.
    let unknown = |kind: &str| C::Unknown { kind: kind.into() };
    let cases = [
        (json!({"type": "system", "system": {"body": "changed", "type": "customer_changed_number"}}), "system"),
        (json!({"type": "ephemeral"}), "ephemeral"),
        (json!({"type": "unknown"}), "unknown"),
        (json!({"type": "text"}), "text"),
        (json!({"type": "text", "text": {"body": 5}}), "text"),
        (json!({"type": "image", "image": {"caption": "no link"}}), "image"),
        (json!({"type": "image", "image": "https://x"}), "image"),
        (json!({"type": "location", "location": {"latitude": 200, "longitude": 1}}), "location"),
        (json!({"type": "location", "location": {"latitude": "north", "longitude": 1}}), "location"),
        (json!({"type": "contacts", "contacts": []}), "contacts"),
        (json!({"type": "button", "button": {"payload": "p"}}), "button"),
        (json!({"type": "interactive"}), "interactive"),
        (
            json!({"type": "interactive", "interactive": {"type": "nfm_reply", "nfm_reply": {}}}),
            "interactive.nfm_reply",
        ),
        (
            json!({"type": "interactive", "interactive": {"type": "button_reply", "button_reply": {"title": "no id"}}}),
            "interactive",
        ),
        (json!({"type": "reaction", "reaction": {"emoji": "x"}}), "reaction"),
        (
            json!({"type": "order", "order": {"catalogId": "c", "productItems": [{"productRetailerId": "p", "quantity": -1}]}}),
            "order",
        ),
        (json!({"type": "Video"}), "Video"),
    ];
    for (extra, kind) in cases {
        let m = one_inbound(parse(&inbound_body(extra.clone())));
        assert_eq!(m.content, unknown(kind), "{extra}");
        for (k, v) in extra.as_object().expect("object") {
            assert_eq!(&m.raw[k], v, "{extra}: raw keeps `{k}`");
        }
    }
    let long = content(json!({"type": "x".repeat(1000)}));
    assert!(matches!(&long, C::Unknown { kind } if kind.chars().count() <= 65), "{long:?}");
}

#[test]
fn extra_fields_everywhere_are_tolerated() {
    let mut status = status_body();
    status["newEnvelopeField"] = json!({"x": [1, 2]});
    status["body"]["currency"] = json!("USD");
    status["body"]["pricing"] = json!({"billable": true});
    status["body"]["conversation"]["origin"] = json!({"type": "utility"});
    assert_eq!(one_status(parse(&status)).status, MessageStatus::Delivered);

    let mut template = template_body();
    template["body"]["category"] = json!(3);
    template["body"]["newField"] = json!(null);
    assert_eq!(one_template(parse(&template)).new_value, "PENDING");

    let inbound =
        inbound_body(json!({"type": "text", "text": {"body": "hi", "x": 1}, "referral": {"ctwa_clid": "abc"}}));
    let m = one_inbound(parse(&inbound));
    assert_eq!(m.content, InboundContent::Text { body: "hi".into() });
    assert_eq!(m.raw["referral"]["ctwa_clid"], "abc");
}

#[test]
fn events_the_gateway_does_not_act_on_are_ignored_whatever_their_body() {
    for kind in ["whatsapp_account_review_updated", "whatsapp_phone_number_name_update", "chat_mt_message_notify"] {
        for body in
            [json!({"type": kind}), json!({"type": kind, "body": "x"}), json!({"type": kind, "eventTime": "never"})]
        {
            assert_eq!(ignored_event(parse(&body)), kind, "{body}");
        }
    }
}

#[test]
fn unknown_types_are_unknown_events() {
    let cases = [
        "whatsapp_message_deleted",
        "",
        "WHATSAPP_MESSAGE_STATUS_UPDATED",
        "message_status_update",
        "whatsapp_message_status_updated ",
        "chat_mo_message_notified",
    ];
    for kind in cases {
        let body = with(status_body(), "/type", Some(json!(kind)));
        assert_eq!(parse(&body), Err(CallbackError::UnknownEvent(kind.into())), "{kind}");
    }
    match parse(&json!({"type": "x".repeat(10_000)})) {
        Err(CallbackError::UnknownEvent(name)) => assert!(name.chars().count() <= 65, "{}", name.len()),
        other => panic!("{other:?}"),
    }
}

fn assert_malformed(label: &str, body: &[u8]) {
    match parse_webhook(body) {
        Err(CallbackError::Malformed(reason)) => {
            assert!(!reason.is_empty() && reason.chars().count() <= 301, "{label}: reason {reason:?}");
        }
        other => panic!("{label}: want Malformed, got {other:?}"),
    }
}

#[test]
fn malformed_bodies_are_refused_as_malformed() {
    let raw: &[(&str, &[u8])] = &[
        ("empty", b""),
        ("whitespace", b" \r\n"),
        ("not JSON", b"type=whatsapp_message_status_updated"),
        ("form encoded", b"id=1&type=whatsapp_mo_message_received"),
        ("truncated", br#"{"type": "whatsapp_message_status_updated", "body": {"#),
        ("invalid UTF-8", b"{\"type\": \"whatsapp_\xff\xfe\"}"),
        ("byte order mark", b"\xef\xbb\xbf{\"type\": \"chat_mt_message_notify\"}"),
        ("array", b"[1, 2]"),
        ("string", br#""whatsapp_message_status_updated""#),
        ("number", b"42"),
        ("null", b"null"),
        ("true", b"true"),
        ("two objects", br#"{"type": "chat_mt_message_notify"} {}"#),
        (
            "number out of f64 range",
            br#"{"type": "whatsapp_message_status_updated", "eventTime": 1e400, "body": {"id": "1", "status": "read"}}"#,
        ),
        ("nesting deeper than the recursion limit", &[b'['; 100_000]),
    ];
    for (label, body) in raw {
        assert_malformed(label, body);
    }
    let deep =
        format!("{{\"type\": \"whatsapp_mo_message_received\", \"body\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    assert_malformed("deeply nested body", deep.as_bytes());

    let status = status_body();
    let template = template_body();
    let inbound = inbound_body(json!({"type": "text", "text": {"body": "hi"}}));
    let inbox = with(inbound.clone(), "/type", Some(json!("chat_mo_message_notify")));
    let misspelt = with(template.clone(), "/type", Some(json!("whatsapp_template_status_update")));
    let cases: Vec<(&str, Value)> = vec![
        ("empty object", json!({})),
        ("no type", with(status.clone(), "/type", None)),
        ("type a number", with(status.clone(), "/type", Some(json!(1)))),
        ("type null", with(status.clone(), "/type", Some(json!(null)))),
        ("type an object", with(status.clone(), "/type", Some(json!({"name": "x"})))),
        ("type an array", with(status.clone(), "/type", Some(json!(["whatsapp_message_status_updated"])))),
        ("status: no body", with(status.clone(), "/body", None)),
        ("status: body null", with(status.clone(), "/body", Some(json!(null)))),
        ("status: body a string", with(status.clone(), "/body", Some(json!("{\"status\": \"read\"}")))),
        ("status: body an array", with(status.clone(), "/body", Some(json!([{"status": "read"}])))),
        ("status: no eventTime", with(status.clone(), "/eventTime", None)),
        ("status: eventTime null", with(status.clone(), "/eventTime", Some(json!(null)))),
        ("status: eventTime empty", with(status.clone(), "/eventTime", Some(json!("")))),
        ("status: eventTime words", with(status.clone(), "/eventTime", Some(json!("yesterday")))),
        ("status: eventTime a date", with(status.clone(), "/eventTime", Some(json!("2023-02-22")))),
        ("status: eventTime 30 February", with(status.clone(), "/eventTime", Some(json!("2023-02-30 12:00:00")))),
        ("status: eventTime a float", with(status.clone(), "/eventTime", Some(json!(1677067200.5)))),
        ("status: eventTime negative", with(status.clone(), "/eventTime", Some(json!(-1)))),
        ("status: eventTime a bool", with(status.clone(), "/eventTime", Some(json!(true)))),
        ("status: eventTime u64::MAX", with(status.clone(), "/eventTime", Some(json!(u64::MAX)))),
        ("status: eventTime i64::MAX digits", with(status.clone(), "/eventTime", Some(json!(i64::MAX.to_string())))),
        ("status: eventTime an object", with(status.clone(), "/eventTime", Some(json!({"s": 1})))),
        ("status: no status", with(status.clone(), "/body/status", None)),
        ("status: status a number", with(status.clone(), "/body/status", Some(json!(3)))),
        ("status: status null", with(status.clone(), "/body/status", Some(json!(null)))),
        ("status: no id and no wamid", with(with(status.clone(), "/body/id", None), "/body/wamid", None)),
        (
            "status: id and wamid blank",
            with(with(status.clone(), "/body/id", Some(json!(""))), "/body/wamid", Some(json!(" "))),
        ),
        ("status: id a float", with(status.clone(), "/body/id", Some(json!(1.5)))),
        ("status: id an object", with(status.clone(), "/body/id", Some(json!({"id": "1"})))),
        ("status: wamid a number", with(status.clone(), "/body/wamid", Some(json!(1)))),
        ("status: uid an object", with(status.clone(), "/body/uid", Some(json!({})))),
        ("status: sendPhone a bool", with(status.clone(), "/body/sendPhone", Some(json!(false)))),
        ("status: errorData a number", with(status.clone(), "/body/errorData", Some(json!(131049)))),
        ("status: errorCode a float", with(status.clone(), "/body/errorData", Some(json!({"errorCode": 1.5})))),
        ("status: errorMessage a number", with(status.clone(), "/body/errorData", Some(json!({"errorMessage": 1})))),
        ("status: conversation a string", with(status.clone(), "/body/conversation", Some(json!("c")))),
        ("status: expireAt words", with(status.clone(), "/body/conversation/expireAt", Some(json!("tomorrow")))),
        ("status: expireAt negative", with(status.clone(), "/body/conversation/expireAt", Some(json!(-5)))),
        ("status: expireAt a float", with(status.clone(), "/body/conversation/expireAt", Some(json!(1.5)))),
        ("status: initiateType a number", with(status.clone(), "/body/conversation/initiateType", Some(json!(1)))),
        ("template: no body", with(template.clone(), "/body", None)),
        ("template: body a number", with(template.clone(), "/body", Some(json!(1)))),
        ("template: no eventTime", with(template.clone(), "/eventTime", None)),
        ("template: eventTime words", with(template.clone(), "/eventTime", Some(json!("now")))),
        ("template: no templateId", with(template.clone(), "/body/templateId", None)),
        ("template: templateId blank", with(template.clone(), "/body/templateId", Some(json!(" ")))),
        ("template: templateId a float", with(template.clone(), "/body/templateId", Some(json!(9.5)))),
        ("template: no templateStatus", with(template.clone(), "/body/templateStatus", None)),
        ("template: templateStatus empty", with(template.clone(), "/body/templateStatus", Some(json!("")))),
        ("template: templateStatus a number", with(template.clone(), "/body/templateStatus", Some(json!(2)))),
        ("template: templateName a number", with(template.clone(), "/body/templateName", Some(json!(2)))),
        ("template: reason an object", with(template.clone(), "/body/reason", Some(json!({})))),
        ("misspelt template: no eventTime", with(misspelt.clone(), "/eventTime", None)),
        ("misspelt template: no templateId", with(misspelt, "/body/templateId", None)),
        ("inbound: no body", with(inbound.clone(), "/body", None)),
        ("inbound: body a string", with(inbound.clone(), "/body", Some(json!("hi")))),
        ("inbound: no from", with(inbound.clone(), "/body/from", None)),
        ("inbound: from empty", with(inbound.clone(), "/body/from", Some(json!("")))),
        ("inbound: from an object", with(inbound.clone(), "/body/from", Some(json!({"phone": "1"})))),
        ("inbound: no to", with(inbound.clone(), "/body/to", None)),
        ("inbound: to null", with(inbound.clone(), "/body/to", Some(json!(null)))),
        ("inbound: no wamid and no id", with(with(inbound.clone(), "/body/wamid", None), "/body/id", None)),
        ("inbound: wamid a number", with(inbound.clone(), "/body/wamid", Some(json!(1)))),
        ("inbound: no time at all", with(with(inbound.clone(), "/body/sendTime", None), "/eventTime", None)),
        ("inbound: sendTime words", with(inbound.clone(), "/body/sendTime", Some(json!("just now")))),
        ("inbound: eventTime words", with(inbound.clone(), "/eventTime", Some(json!("just now")))),
        ("inbound: timestamp a float", with(inbound.clone(), "/body/timestamp", Some(json!(1.5)))),
        ("inbox: body an array", with(inbox.clone(), "/body", Some(json!([])))),
        ("inbox: no from", with(inbox.clone(), "/body/from", None)),
        ("inbox: no to", with(inbox, "/body/to", None)),
    ];
    assert!(cases.len() >= 40, "{}", cases.len());
    for (label, body) in &cases {
        assert_malformed(label, &serde_json::to_vec(body).expect("serializable"));
    }
}

#[test]
fn errors_name_the_field_at_fault() {
    let cases = [
        (with(status_body(), "/eventTime", Some(json!("soon"))), "eventTime"),
        (with(status_body(), "/body/status", None), "status"),
        (with(status_body(), "/body/conversation/expireAt", Some(json!("soon"))), "body.conversation.expireAt"),
        (with(status_body(), "/body/errorData", Some(json!(5))), "body.errorData"),
        (with(template_body(), "/body/templateId", None), "templateId"),
        (with(inbound_body(json!({"text": "hi"})), "/body/sendTime", Some(json!("soon"))), "body.sendTime"),
        (with(inbound_body(json!({"text": "hi"})), "/body/from", None), "from"),
    ];
    for (body, field) in cases {
        match parse(&body) {
            Err(CallbackError::Malformed(reason)) => assert!(reason.contains(field), "{field}: {reason}"),
            other => panic!("{field}: {other:?}"),
        }
    }
}

mod headers {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> BTreeMap<String, SecretString> {
        pairs.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(*v))).collect()
    }

    fn sandbox() -> BTreeMap<String, SecretString> {
        config(&[("UserName", "gateway"), ("Authorization", "sandbox-innopaas-callback")])
    }

    /// Received headers: `(name, value)`.
    type Received<'a> = &'a [(&'a str, &'a [u8])];

    fn verify(expected: &BTreeMap<String, SecretString>, received: Received<'_>) -> bool {
        verify_static_headers(expected, received.iter().copied())
    }

    #[test]
    fn every_configured_header_must_match() {
        let ok: &[(&str, &[u8])] = &[
            ("username", b"gateway"),
            ("authorization", b"sandbox-innopaas-callback"),
            ("content-type", b"application/json"),
        ];
        assert!(verify(&sandbox(), ok));

        let cases: &[(&str, Received<'_>, bool)] = &[
            ("names as configured", &[("UserName", b"gateway"), ("Authorization", b"sandbox-innopaas-callback")], true),
            ("names upper case", &[("USERNAME", b"gateway"), ("AUTHORIZATION", b"sandbox-innopaas-callback")], true),
            (
                "extra headers",
                &[
                    ("x-request-id", b"1"),
                    ("username", b"gateway"),
                    ("authorization", b"sandbox-innopaas-callback"),
                    ("user-agent", b"Java/1.8"),
                ],
                true,
            ),
            ("nothing", &[], false),
            ("Authorization missing", &[("username", b"gateway")], false),
            ("UserName missing", &[("authorization", b"sandbox-innopaas-callback")], false),
            (
                "wrong value, same length",
                &[("username", b"gatewaz"), ("authorization", b"sandbox-innopaas-callback")],
                false,
            ),
            (
                "wrong value, shorter",
                &[("username", b"gateway"), ("authorization", b"sandbox-innopaas-callbac")],
                false,
            ),
            (
                "wrong value, longer",
                &[("username", b"gateway"), ("authorization", b"sandbox-innopaas-callbackX")],
                false,
            ),
            ("empty value", &[("username", b""), ("authorization", b"sandbox-innopaas-callback")], false),
            (
                "value in another case",
                &[("username", b"Gateway"), ("authorization", b"sandbox-innopaas-callback")],
                false,
            ),
            (
                "Bearer prefix",
                &[("username", b"gateway"), ("authorization", b"Bearer sandbox-innopaas-callback")],
                false,
            ),
            ("trailing space", &[("username", b"gateway "), ("authorization", b"sandbox-innopaas-callback")], false),
            ("not UTF-8", &[("username", b"gatew\xffy"), ("authorization", b"sandbox-innopaas-callback")], false),
            (
                "repeated, one wrong",
                &[("username", b"gateway"), ("authorization", b"x"), ("authorization", b"sandbox-innopaas-callback")],
                false,
            ),
            (
                "repeated, both right",
                &[
                    ("username", b"gateway"),
                    ("authorization", b"sandbox-innopaas-callback"),
                    ("Authorization", b"sandbox-innopaas-callback"),
                ],
                false,
            ),
            ("values swapped", &[("username", b"sandbox-innopaas-callback"), ("authorization", b"gateway")], false),
        ];
        for (label, received, want) in cases {
            assert_eq!(verify(&sandbox(), received), *want, "{label}");
        }
    }

    #[test]
    fn nothing_configured_lets_every_push_through() {
        assert!(verify(&BTreeMap::new(), &[]));
        assert!(verify(&BTreeMap::new(), &[("authorization", b"anything")]));
    }

    #[test]
    fn configured_names_match_in_any_case() {
        let lower = config(&[("authorization", "s3cret")]);
        let upper = config(&[("AUTHORIZATION", "s3cret")]);
        for expected in [&lower, &upper] {
            assert!(verify(expected, &[("Authorization", b"s3cret")]));
            assert!(!verify(expected, &[("Authorization", b"s3cre")]));
        }
    }

    #[test]
    fn takes_a_header_map_and_a_list_of_pairs() {
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("UserName", reqwest::header::HeaderValue::from_static("gateway"));
        headers.insert("Authorization", reqwest::header::HeaderValue::from_static("sandbox-innopaas-callback"));
        let received = || headers.iter().map(|(n, v)| (n.as_str(), v.as_bytes()));
        assert!(verify_static_headers(&sandbox(), received()));

        let pairs: Vec<(String, SecretString)> =
            vec![("Authorization".into(), SecretString::from("sandbox-innopaas-callback"))];
        assert!(verify_static_headers(pairs.iter().map(|(k, v)| (k.as_str(), v)), received()));
        let wrong: Vec<(String, SecretString)> =
            vec![("Authorization".into(), SecretString::from("sandbox-innopaas-callbacK"))];
        assert!(!verify_static_headers(wrong.iter().map(|(k, v)| (k.as_str(), v)), received()));
    }
}

/// No input makes `parse_webhook` panic; whatever it accepts is a non-empty list of events that
/// survive a JSON round trip; the header check agrees with a plain comparison.
mod properties {
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_json::{Map, Number, Value};

    use super::*;

    const CASES: u32 = 256;

    const TYPES: &[&str] = &[
        "whatsapp_message_status_updated",
        "whatsapp_template_status_updated",
        "whatsapp_template_status_update",
        "whatsapp_mo_message_received",
        "chat_mo_message_notify",
        "whatsapp_account_review_updated",
        "whatsapp_phone_number_name_update",
        "chat_mt_message_notify",
    ];

    const NAMES: &[&str] = &[
        "id",
        "type",
        "eventTime",
        "body",
        "status",
        "wamid",
        "uid",
        "sendPhone",
        "conversation",
        "initiateType",
        "expireAt",
        "errorData",
        "errorCode",
        "errorMessage",
        "templateId",
        "templateName",
        "templateLanguage",
        "templateStatus",
        "reason",
        "from",
        "to",
        "sendTime",
        "timestamp",
        "messageType",
        "customerProfile",
        "name",
        "context",
        "text",
        "image",
        "link",
        "url",
        "mimeType",
        "location",
        "latitude",
        "longitude",
        "contacts",
        "contact",
        "phones",
        "button",
        "payload",
        "interactive",
        "listReply",
        "buttonReply",
        "list_reply",
        "button_reply",
        "title",
        "reaction",
        "messageId",
        "emoji",
        "order",
        "productItems",
        "quantity",
        "errors",
        "code",
        "unknown",
        "delivered",
        "read",
        "failed",
        "SMECL:FAILED",
        "APPROVED",
        "2023-02-22T12:00:00.000Z",
        "2023-02-23 12:00:00",
        "1677067200000",
        "",
    ];

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            3 => prop::sample::select(NAMES).prop_map(str::to_owned),
            1 => prop::sample::select(TYPES).prop_map(str::to_owned),
            1 => ".{0,12}",
        ]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1.0e6..1.0e6f64).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            Just(json!(1677067200)),
            Just(json!(1677067200000_u64)),
        ]
    }

    fn json_value() -> impl Strategy<Value = Value> {
        let leaf = prop_oneof![
            Just(Value::Null),
            any::<bool>().prop_map(Value::Bool),
            number(),
            name().prop_map(Value::String),
        ];
        leaf.prop_recursive(5, 96, 8, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..6).prop_map(Value::Array),
                prop::collection::vec((name(), inner), 0..8).prop_map(|kv| Value::Object(kv.into_iter().collect())),
            ]
        })
    }

    fn fixture_bodies() -> &'static [(String, Vec<u8>)] {
        static BODIES: OnceLock<Vec<(String, Vec<u8>)>> = OnceLock::new();
        BODIES.get_or_init(fixtures)
    }

    fn fixture_values() -> &'static [Value] {
        static VALUES: OnceLock<Vec<Value>> = OnceLock::new();
        VALUES.get_or_init(|| {
            fixture_bodies().iter().map(|(_, b)| serde_json::from_slice(b).expect("fixture JSON")).collect()
        })
    }

    /// JSON pointers to every node under `v`.
    fn pointers(v: &Value, at: String, out: &mut Vec<String>) {
        match v {
            Value::Object(m) => {
                for (k, child) in m {
                    let p = format!("{at}/{}", k.replace('~', "~0").replace('/', "~1"));
                    out.push(p.clone());
                    pointers(child, p, out);
                }
            }
            Value::Array(items) => {
                for (i, child) in items.iter().enumerate() {
                    let p = format!("{at}/{i}");
                    out.push(p.clone());
                    pointers(child, p, out);
                }
            }
            _ => {}
        }
    }

    /// JSON equality, numbers within a relative 1e-12 (serde_json parses floats fast, not exactly).
    fn same(a: &Value, b: &Value) -> bool {
        match (a, b) {
            (Value::Number(x), Value::Number(y)) => match (x.as_f64(), y.as_f64()) {
                _ if x == y => true,
                (Some(x), Some(y)) => (x - y).abs() <= 1e-12 * x.abs().max(y.abs()),
                _ => false,
            },
            (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(x, y)| same(x, y)),
            (Value::Object(x), Value::Object(y)) => {
                x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same(v, w)))
            }
            _ => a == b,
        }
    }

    fn check(body: &[u8]) -> Result<(), TestCaseError> {
        match parse_webhook(body) {
            Ok(events) => {
                prop_assert!(!events.is_empty(), "an accepted body gave no events");
                for event in &events {
                    let text = serde_json::to_string(event).map_err(|e| TestCaseError::fail(e.to_string()))?;
                    let back: CallbackEvent =
                        serde_json::from_str(&text).map_err(|e| TestCaseError::fail(format!("{e}: {text}")))?;
                    let (want, got) = (serde_json::to_value(event), serde_json::to_value(&back));
                    prop_assert!(
                        matches!((&want, &got), (Ok(w), Ok(g)) if same(w, g)),
                        "round trip changed the event:\n{:?}\n{:?}",
                        want,
                        got
                    );
                    match event {
                        CallbackEvent::Status(s) => {
                            prop_assert!(StatusReport::REPORTABLE.contains(&s.status));
                            prop_assert!(!s.provider_message_id.trim().is_empty());
                        }
                        CallbackEvent::Inbound(m) => {
                            prop_assert!(!m.provider_message_id.trim().is_empty());
                            prop_assert!(!m.from.is_empty() && !m.business_phone.is_empty());
                        }
                        CallbackEvent::Template(t) => prop_assert!(!t.new_value.trim().is_empty()),
                        CallbackEvent::Alias(a) => prop_assert!(!a.alias.is_empty()),
                        CallbackEvent::Ignored { reason, .. } => prop_assert!(!reason.is_empty()),
                    }
                }
            }
            Err(CallbackError::Malformed(reason)) => prop_assert!(reason.chars().count() <= 301),
            Err(CallbackError::UnknownEvent(name)) => prop_assert!(name.chars().count() <= 65),
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: CASES, failure_persistence: None, ..ProptestConfig::default() })]

        #[test]
        fn arbitrary_bytes(body in prop::collection::vec(any::<u8>(), 0..512)) {
            check(&body)?;
        }

        #[test]
        fn arbitrary_json(value in json_value()) {
            check(&serde_json::to_vec(&value).expect("serializable"))?;
        }

        #[test]
        fn arbitrary_bodies_under_a_known_type(
            kind in prop::sample::select(TYPES),
            event_time in prop::option::of(json_value()),
            fields in prop::collection::vec((name(), json_value()), 0..12),
        ) {
            let mut envelope = Map::new();
            envelope.insert("type".into(), Value::from(kind));
            if let Some(t) = event_time {
                envelope.insert("eventTime".into(), t);
            }
            envelope.insert("body".into(), Value::Object(fields.into_iter().collect()));
            check(&serde_json::to_vec(&Value::Object(envelope)).expect("serializable"))?;
        }

        #[test]
        fn fixtures_with_one_node_replaced_or_removed(
            which in any::<Index>(),
            node in any::<Index>(),
            replacement in prop::option::weighted(0.8, json_value()),
        ) {
            let mut body = which.get(fixture_values()).clone();
            let mut all = Vec::new();
            pointers(&body, String::new(), &mut all);
            let pointer = node.get(&all).clone();
            let (parent, key) = pointer.rsplit_once('/').expect("pointer");
            let key = key.replace("~1", "/").replace("~0", "~");
            match (body.pointer_mut(parent), replacement) {
                (Some(Value::Object(m)), Some(v)) => { m.insert(key, v); }
                (Some(Value::Object(m)), None) => { m.remove(&key); }
                (Some(Value::Array(items)), Some(v)) => { items[key.parse::<usize>().expect("index")] = v; }
                (Some(Value::Array(items)), None) => { items.remove(key.parse::<usize>().expect("index")); }
                _ => {}
            }
            check(&serde_json::to_vec(&body).expect("serializable"))?;
        }

        #[test]
        fn fixtures_with_bytes_flipped_or_cut(
            which in any::<Index>(),
            edits in prop::collection::vec((any::<Index>(), any::<u8>(), 0..3u8), 1..6),
        ) {
            let mut body = which.get(fixture_bodies()).1.clone();
            for (at, byte, op) in edits {
                if body.is_empty() {
                    break;
                }
                let i = at.index(body.len());
                match op {
                    0 => body[i] = byte,
                    1 => body.truncate(i),
                    _ => body.insert(i, byte),
                }
            }
            check(&body)?;
        }

        #[test]
        fn header_check_agrees_with_a_plain_comparison(
            expected in prop::collection::btree_map(
                prop::sample::select(&["UserName", "Authorization", "X-Token"][..]),
                "[a-c]{0,3}",
                0..3,
            ),
            received in prop::collection::vec(
                (prop::sample::select(&["username", "USERNAME", "authorization", "Authorization", "x-token", "other"][..]), "[a-c]{0,3}"),
                0..6,
            ),
        ) {
            let config: BTreeMap<String, SecretString> =
                expected.iter().map(|(k, v)| ((*k).to_owned(), SecretString::from(v.as_str()))).collect();
            let plain = expected.iter().all(|(name, value)| {
                let got: Vec<_> = received.iter().filter(|(n, _)| n.eq_ignore_ascii_case(name)).collect();
                matches!(got.as_slice(), [(_, v)] if v == value)
            });
            let verified = verify_static_headers(&config, received.iter().map(|(n, v)| (*n, v.as_bytes())));
            prop_assert_eq!(verified, plain);
        }
    }
}
