//! `parse_callback`: every callback example in the INCS documents (seeds/003, and the two reply
//! webhooks in seeds/001), copied verbatim into `tests/callbacks/` (only `// comments` removed),
//! parsed into the exact events they stand for; malformed and unknown bodies; and properties: no
//! input makes the parser panic.
//!
//! `tests/callbacks/rcs_message/` holds the RCS "message 内容示例": `message` objects, not whole
//! bodies. They are posted inside the envelope of the document's RCS example.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Utc};
use gateway_core::event::{
    CallbackError, CallbackEvent, ContactName, ContactPhone, FileThumbnail, InboundContent, InboundContext,
    InboundError, InboundFile, InboundMedia, InboundMessage, InteractiveReply, MessageAlias, OrderItem, ReportedError,
    SharedContact, StatusReport, SuggestionKind, TemplateChange, TemplateReport,
};
use gateway_core::{Channel, MessageStatus, ProviderKind};
use gateway_incs::parse_callback;
use serde_json::{json, Value};

/// 31 examples in seeds/003 (1 status, 3 template, 13 WhatsApp, 1 RCS body and 5 RCS messages,
/// 7 message_created, 1 message_status_updated) and 2 in seeds/001.
const FIXTURES: usize = 33;

const BUSINESS: &str = "6281519236680";
const LESSIE: &str = "85268415026";

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/callbacks")
}

/// Every fixture as `(name, body)`, the name relative to `tests/callbacks/`, sorted.
fn fixtures() -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    let mut dirs = vec![root()];
    while let Some(dir) = dirs.pop() {
        for entry in std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("{}: {e}", dir.display())) {
            let path = entry.expect("directory entry").path();
            if path.is_dir() {
                dirs.push(path);
            } else if path.extension().is_some_and(|x| x == "json") {
                let name = path.strip_prefix(root()).expect("under root").display().to_string();
                let bytes = std::fs::read(&path).expect("readable fixture");
                let body = if name.starts_with("rcs_message/") { rcs_envelope(&bytes) } else { bytes };
                out.push((name, body));
            }
        }
    }
    out.sort();
    out
}

/// The RCS body of seeds/003 around a bare RCS `message` object.
fn rcs_envelope(message: &[u8]) -> Vec<u8> {
    let message: Value = serde_json::from_slice(message).expect("RCS message fixture is JSON");
    serde_json::to_vec(&json!({"event": "new_message", "channel_id": 30058, "business_phone": "", "message": message}))
        .expect("serializable")
}

fn secs(s: i64) -> DateTime<Utc> {
    DateTime::from_timestamp(s, 0).expect("in range")
}

fn rfc3339(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).expect("RFC 3339").with_timezone(&Utc)
}

fn template(change: TemplateChange, new_value: &str) -> Vec<CallbackEvent> {
    vec![CallbackEvent::Template(TemplateReport {
        provider: ProviderKind::Incs,
        template_id: "1287380349540668".into(),
        template_name: "tmp_test".into(),
        language: None,
        change,
        new_value: new_value.into(),
        reason: None,
        at: secs(1754466101),
        business_phone: Some(BUSINESS.into()),
        business_account: Some("30058".into()),
    })]
}

/// A `message_created`: the alias `chat:<id>` of the channel's id, and the status INCS already
/// gives it when that is past `created`.
fn chat_created(id: &str, channel_msg_id: &str, status: Option<MessageStatus>, at: &str) -> Vec<CallbackEvent> {
    let mut events = vec![CallbackEvent::Alias(MessageAlias {
        provider: ProviderKind::Incs,
        provider_message_id: channel_msg_id.into(),
        alias: format!("chat:{id}"),
    })];
    if let Some(status) = status {
        events.push(chat_status(channel_msg_id, status, at));
    }
    events
}

fn chat_status(pmid: &str, status: MessageStatus, at: &str) -> CallbackEvent {
    CallbackEvent::Status(StatusReport {
        provider: ProviderKind::Incs,
        provider_message_id: pmid.into(),
        status,
        at: rfc3339(at),
        error: None,
        correlation_id: None,
        recipient: None,
        business_phone: None,
        conversation: None,
        wamid: None,
    })
}

/// One WhatsApp inbound message from the first `messages[]` entry of `body`.
struct Wa<'a> {
    body: &'a Value,
    business_phone: &'a str,
    from: &'a str,
    profile: &'a str,
    id: &'a str,
    timestamp: i64,
    context: Option<(&'a str, &'a str)>,
}

impl Wa<'_> {
    fn with(&self, content: InboundContent) -> Vec<CallbackEvent> {
        vec![CallbackEvent::Inbound(Box::new(InboundMessage {
            provider: ProviderKind::Incs,
            channel: Channel::Whatsapp,
            business_phone: self.business_phone.into(),
            from: self.from.into(),
            provider_message_id: self.id.into(),
            at: secs(self.timestamp),
            profile_name: Some(self.profile.into()),
            content,
            context: self
                .context
                .map(|(id, from)| InboundContext { provider_message_id: id.into(), from: Some(from.into()) }),
            raw: self.body["message"]["messages"][0].clone(),
        }))]
    }
}

fn lessie<'a>(body: &'a Value, id: &'a str, timestamp: i64) -> Wa<'a> {
    Wa { body, business_phone: BUSINESS, from: LESSIE, profile: "Lessie Laytoya", id, timestamp, context: None }
}

struct Rcs<'a> {
    body: &'a Value,
    agent: &'a str,
    from: &'a str,
    id: &'a str,
    at: &'a str,
    context: Option<&'a str>,
}

impl Rcs<'_> {
    fn with(&self, content: InboundContent) -> Vec<CallbackEvent> {
        vec![CallbackEvent::Inbound(Box::new(InboundMessage {
            provider: ProviderKind::Incs,
            channel: Channel::Rcs,
            business_phone: self.agent.into(),
            from: self.from.into(),
            provider_message_id: self.id.into(),
            at: rfc3339(self.at),
            profile_name: None,
            content,
            context: self.context.map(|id| InboundContext { provider_message_id: id.into(), from: None }),
            raw: self.body["message"].clone(),
        }))]
    }
}

const RCS_AGENT: &str = "test_vhbgamhn_agent@rbm.goog";
const RCS_ID: &str = "5312df2b-54e3-457d-8654-49a4f3ba1a19";
/// INCS's id of the rich card the suggestions were on (`trackdata.msgId`).
const RCS_CARD: &str = "019cc232-229a-7353-b860-87709fa4d7d4";

fn media(link: &str, mime: &str, sha256: &str, id: &str) -> InboundMedia {
    InboundMedia {
        link: Some(link.into()),
        mime_type: Some(mime.into()),
        sha256: Some(sha256.into()),
        id: Some(id.into()),
        ..InboundMedia::default()
    }
}

/// The events a fixture must parse into; `None` for an INCS chat event, checked by
/// [`expected_ignored`].
fn expected(name: &str, body: &Value) -> Option<Vec<CallbackEvent>> {
    use InboundContent as C;
    Some(match name {
        "message_status_update_failed.json" => vec![CallbackEvent::Status(StatusReport {
            provider: ProviderKind::Incs,
            provider_message_id: "wamid.HBgNNjI4OTY1MjQ1NjU0OBUCABEYEkYxNTY4NkNBRUY...".into(),
            status: MessageStatus::Failed,
            at: secs(1754466101),
            error: Some(ReportedError {
                code: Some("131049".into()),
                title: "This message was not delivered to maintain healthy ecosystem engagement.".into(),
            }),
            correlation_id: None,
            recipient: None,
            business_phone: Some(BUSINESS.into()),
            conversation: None,
            wamid: None,
        })],
        "message_created_audio.json" => chat_created(
            "260400000081",
            "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDMzM1Nzc3RjRDQjkxODc1MzAzMUZFMDlDQTU1QjM4AA==",
            None,
            "2026-04-07T12:54:11Z",
        ),
        "message_created_image.json" => chat_created(
            "260400000079",
            "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEjI2NjgxQjgwMzkyRTQxMzQyMAA=",
            Some(MessageStatus::Sent),
            "2026-04-07T12:46:29Z",
        ),
        "message_created_text.json" => chat_created(
            "260400000076",
            "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDQTgwMEZCMUFERjZDQzhDNUVDQzM0Qzg2Qjg0QkI0AA==",
            None,
            "2026-04-07T12:02:55Z",
        ),
        "message_created_video.json" => chat_created(
            "260400000082",
            "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEjJDQUE4NjU5RkQyRThEM0ZGRQA=",
            Some(MessageStatus::Sent),
            "2026-04-07T12:55:46Z",
        ),
        "message_created_whatsapp_reply_button.json" => chat_created(
            "260400000086",
            "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDNTRDNTVERTE2M0QxNjhGQjQ4RTE4Q0YyMUE1QjE3AA==",
            None,
            "2026-04-07T13:11:29Z",
        ),
        "message_created_whatsapp_template.json" => chat_created(
            "260400000085",
            "wamid.HBgLODUyNjg0MTUwMjYVAgARGBIzRUMxQzAxQzMwMTNFRkVBN0UA",
            Some(MessageStatus::Sent),
            "2026-04-07T13:09:39Z",
        ),
        "message_status_updated.json" => {
            vec![chat_status("chat:260400000084", MessageStatus::Read, "2026-04-07T13:11:27Z")]
        }
        "template_status_update.json" => template(TemplateChange::Status, "APPROVED"),
        "template_category_update.json" => template(TemplateChange::Category, "MARKETING"),
        "template_quality_update.json" => template(TemplateChange::Quality, "YELLOW"),
        "new_message_whatsapp_text.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUY1Qjc4MUQzNjM3OTk1QUVENQA=", 1756109460)
                .with(C::Text { body: "hello".into() })
        }
        "new_message_whatsapp_text_context.json" => Wa {
            context: Some(("wamid.HBgLODUyNjg0MTUwMjYVAgARGBI5RkEyNjU2NEUwMDhBRDMxNTEA", BUSINESS)),
            ..lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTY5OUZERjU5MDZBQzUyN0Y0MgA=", 1756113398)
        }
        .with(C::Text { body: "OK".into() }),
        "new_message_whatsapp_image.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUZCMzlCREIwMDdCMkYzRjZBQgA=", 1756111162).with(C::Image(
                media(
                    "https://static.incsapp.com/chat/images/2173590463051074.jpg",
                    "image/jpeg",
                    "X+rJ8sVYdTYG9nD3JOGjJAb4GE3qw89S8kQNQ2fRj1w=",
                    "2173590463051074",
                ),
            ))
        }
        "new_message_whatsapp_sticker.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUM4MzBCOUIzNTk4RTI1MUE5OQA=", 1756111078).with(
                C::Sticker(InboundMedia {
                    animated: Some(false),
                    ..media(
                        "https://static.incsapp.com/chat/images/782472500814983.webp",
                        "image/webp",
                        "1RgjeZcCQQjyzYnvcvInvzes/n9ThHJ4Ndr3dzGUeP0=",
                        "782472500814983",
                    )
                }),
            )
        }
        "new_message_whatsapp_video.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTA3Qzg2MTAyQTgxRDBCQkQ0RgA=", 1756111347).with(C::Video(
                InboundMedia {
                    caption: Some("beautiful？".into()),
                    ..media(
                        "https://static.incsapp.com/chat/videos/1277927410543839.mp4",
                        "video/mp4",
                        "8m71YIxOHqc3HYGthZiquLeeE0N1Cv0MeTc25ahf4sU=",
                        "1277927410543839",
                    )
                },
            ))
        }
        "new_message_whatsapp_audio.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUFBQzc3RUVCQTRCNDMxOTNBMgA=", 1756112512).with(C::Audio(
                InboundMedia {
                    voice: Some(true),
                    ..media(
                        "https://static.incsapp.com/chat/audios/1082985930630339.ogg",
                        "audio/ogg; codecs=opus",
                        "pp0SvItSzmvP6mRp1mR/4tn9ydbnv72YWiZ9XxaxTZg=",
                        "1082985930630339",
                    )
                },
            ))
        }
        "new_message_whatsapp_document.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTg3MUUyRjA4RDA3RTdFQzUyNwA=", 1756112790).with(
                C::Document(InboundMedia {
                    filename: Some("email_template_en.xls".into()),
                    ..media(
                        "https://static.incsapp.com/chat/files/797337589311657.xls",
                        "application/vnd.ms-excel",
                        "0WWrm0sDQYStNhqArO7uRiViw40SbSP+QALrNGyi4pE=",
                        "797337589311657",
                    )
                }),
            )
        }
        "new_message_whatsapp_contacts.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTdCQzYyMEM0NjcxQkYzN0VFOQA=", 1756112662).with(
                C::Contacts {
                    contacts: vec![SharedContact {
                        name: ContactName {
                            formatted_name: Some("Lessie Laytoya".into()),
                            first_name: Some("Lessie Laytoya".into()),
                            last_name: None,
                        },
                        phones: vec![ContactPhone {
                            phone: Some("+85268415026".into()),
                            wa_id: Some(LESSIE.into()),
                            kind: Some("CELL".into()),
                        }],
                    }],
                },
            )
        }
        "new_message_whatsapp_button.json" => Wa {
            context: Some(("wamid.HBgLODUyNjg0MTUwMjYVAgARGBJGNDY4NjdEN0I3QkZCMzg5QjMA", BUSINESS)),
            ..lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUM5MzJGN0EwRThCNTgyRTVFNAA=", 1756112962)
        }
        .with(C::Button { payload: Some("还有其他问题".into()), text: "还有其他问题".into() }),
        "new_message_whatsapp_location.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQTczMTRCMzNDNjgwMzExNkUyNgA=", 1756113235).with(
                C::Location {
                    latitude: 22.570337295532,
                    longitude: 113.87411499023,
                    name: Some("华丰金融港".into()),
                    address: None,
                },
            )
        }
        "new_message_whatsapp_order.json" => Wa {
            body,
            business_phone: BUSINESS,
            from: "16505551234",
            profile: "Sheena Nelson",
            id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            timestamp: 1750096325,
            context: None,
        }
        .with(C::Order {
            catalog_id: "194836987003835".into(),
            items: vec![
                OrderItem {
                    product_retailer_id: "di9ozbzfi4".into(),
                    quantity: 2,
                    item_price: Some(30.0),
                    currency: Some("USD".into()),
                },
                OrderItem {
                    product_retailer_id: "nqryix03ez".into(),
                    quantity: 1,
                    item_price: Some(25.0),
                    currency: Some("USD".into()),
                },
            ],
            text: Some("Love these!".into()),
        }),
        "new_message_whatsapp_interactive_list_reply.json" => Wa {
            body,
            business_phone: BUSINESS,
            from: "16505551234",
            profile: "Sheena Nelson",
            id: "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQUFERjg0NDEzNDdFODU3MUMxMAA=",
            timestamp: 1749854575,
            context: Some(("wamid.HBgLMTQxMjU1NTA4MjkVAgASGBQzQUNCNjk5RDUwNUZGMUZEM0VBRAA=", "15550783881")),
        }
        .with(C::Interactive {
            kind: InteractiveReply::ListReply,
            id: "priority_express".into(),
            title: "Priority Mail Express".into(),
            description: Some("Next Day to 2 Days".into()),
        }),
        "new_message_whatsapp_unsupported.json" => {
            lessie(body, "wamid.HBgLODUyNjg0MTUwMjYVAgASGBQzQUQ1NzI3MTZFMDlBNEE0RkU4RQA=", 1756113604).with(
                C::Unsupported {
                    errors: vec![InboundError {
                        code: Some("131051".into()),
                        title: "Message type unknown".into(),
                        details: Some("Message type is currently not supported.".into()),
                    }],
                },
            )
        }
        "new_message_whatsapp_interactive_list_reply_seed001.json" => Wa {
            body,
            business_phone: BUSINESS,
            from: "6281519140327",
            profile: "lucasleeve",
            id: "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDOTgzNjhFOTU2NDgxMDI4NEY2NDdCOTg0MkEyMDgzAA==",
            timestamp: 1777368530,
            context: Some(("wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEjI2OTlBQTkxMjkwNjc5N0NGRQA=", BUSINESS)),
        }
        .with(C::Interactive {
            kind: InteractiveReply::ListReply,
            id: "row_1.2".into(),
            title: "row 1.2".into(),
            description: Some("this is row 1.2".into()),
        }),
        "new_message_whatsapp_interactive_button_reply_seed001.json" => Wa {
            body,
            business_phone: BUSINESS,
            from: "6281519140327",
            profile: "lucasleeve",
            id: "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABIYIEFDOUQxMjM5QThFMDMyQkMyQTRGREVERjA2N0NDQUFCAA==",
            timestamp: 1777366826,
            context: Some(("wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEjYwRDc4QjE0M0UyQjI5QTVDMAA=", BUSINESS)),
        }
        .with(C::Interactive {
            kind: InteractiveReply::ButtonReply,
            id: "change-button".into(),
            title: "Change".into(),
            description: None,
        }),
        "new_message_rcs_suggestion_action.json" => Rcs {
            body,
            agent: "infinity_links_indo_test_promo_tqzwtuox_agent@rbm.goog",
            from: "6281519140000",
            id: "da220bf7-e15b-4b2b-90af-1860eb335872",
            at: "2026-02-02T08:11:41.193204Z",
            context: None,
        }
        .with(C::Suggestion {
            kind: SuggestionKind::Action,
            postback_data: "shop_url".into(),
            text: Some("Buy Now at INCS".into()),
        }),
        "rcs_message/text.json" => Rcs {
            body,
            agent: RCS_AGENT,
            from: "628XXXXXXXXX",
            id: RCS_ID,
            at: "2024-04-20T10:11:02.589915Z",
            context: None,
        }
        .with(C::Text { body: "Hiii".into() }),
        "rcs_message/file.json" => Rcs {
            body,
            agent: RCS_AGENT,
            from: "628XXXXXXXXX",
            id: RCS_ID,
            at: "2024-04-20T10:58:29.951141Z",
            context: None,
        }
        .with(C::File(InboundFile {
            file_uri: "https://rcs-user-content-ap.storage.googleapis.com/f7cdd990-83ea-4b8d-ba89-73eacf8d7d8a/d63d8f295248fc67cc1716658c169bba70f98b0513798c3c60f56f52734f".into(),
            mime_type: Some("image/jpeg".into()),
            file_name: Some("1000002217.jpg".into()),
            file_size_bytes: Some(144594),
            thumbnail: Some(FileThumbnail {
                file_uri: "https://rcs-user-content-ap.storage.googleapis.com/baf60d40-f197-497f-83f8-5a52fd081262/54b9a1aae33ff62d14ea58db59f43ff04cf62d2329041b110b724b7447a7".into(),
                mime_type: Some("image/jpeg".into()),
                file_size_bytes: Some(8001),
            }),
        })),
        "rcs_message/suggestion_reply.json" => Rcs {
            body,
            agent: RCS_AGENT,
            from: "628XXXXXXXXX",
            id: RCS_ID,
            at: "2024-04-05T13:15:40.152413Z",
            context: Some(RCS_CARD),
        }
        .with(C::Suggestion {
            kind: SuggestionKind::Reply,
            postback_data: "user_reply_what_is_rcs".into(),
            text: Some("what is RCS?".into()),
        }),
        "rcs_message/suggestion_action.json" => Rcs {
            body,
            agent: RCS_AGENT,
            from: "628XXXXXXXXX",
            id: RCS_ID,
            at: "2024-04-05T13:16:42.183829Z",
            context: Some(RCS_CARD),
        }
        .with(C::Suggestion {
            kind: SuggestionKind::Action,
            postback_data: "user_action_open_url".into(),
            text: Some("visit our website".into()),
        }),
        "rcs_message/location.json" => Rcs {
            body,
            agent: "test_dev_vhbgamhn_agent@rbm.goog",
            from: "62XXXXXXXXXX",
            id: "b0d0ea18-c809-4206-9ca2-5baf02707fe0",
            at: "2025-07-29T06:08:36.741050Z",
            context: None,
        }
        .with(C::Location { latitude: 17.4370557, longitude: 78.3861501, name: None, address: None }),
        _ => return None,
    })
}

/// INCS chat events: `(event, what the reason must name)`.
fn expected_ignored(name: &str) -> Option<(&'static str, &'static [&'static str])> {
    Some(match name {
        // The file was stored before its channel id came back: nothing to link yet.
        "message_created_file.json" => ("message_created", &["260400000080", "type 105"]),
        _ => return None,
    })
}

fn check_fixture(name: &str, body: &[u8]) -> Result<(), String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("fixture is not JSON: {e}"))?;
    let got = parse_callback(body).map_err(|e| format!("refused: {e}"))?;
    if let Some(want) = expected(name, &json) {
        if got != want {
            return Err(format!("got  {got:#?}\nwant {want:#?}"));
        }
        return Ok(());
    }
    let Some((want_event, must_name)) = expected_ignored(name) else {
        return Err("no expectation for this fixture".into());
    };
    match got.as_slice() {
        [CallbackEvent::Ignored { event, reason }] if event == want_event => {
            let missing: Vec<_> = must_name.iter().filter(|s| !reason.contains(*s)).collect();
            if missing.is_empty() {
                Ok(())
            } else {
                Err(format!("reason {reason:?} does not name {missing:?}"))
            }
        }
        other => Err(format!("want one Ignored `{want_event}`, got {other:#?}")),
    }
}

#[test]
fn every_documented_callback_parses_into_its_event() {
    let files = fixtures();
    assert_eq!(files.len(), FIXTURES, "fixtures found: {:#?}", files.iter().map(|(n, _)| n).collect::<Vec<_>>());
    let failures: Vec<String> = files
        .iter()
        .filter_map(|(name, body)| check_fixture(name, body).err().map(|e| format!("{name}: {e}")))
        .collect();
    assert!(failures.is_empty(), "{} of {FIXTURES} fixtures failed:\n{}", failures.len(), failures.join("\n\n"));
}

/// The fixtures are the documents' examples; a stray edit would make the tests prove nothing.
#[test]
fn fixtures_are_the_documents_text() {
    let seeds = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/seeds");
    let Ok(seed3) = std::fs::read_to_string(seeds.join("003_0cef9b55dbc17cec.txt")) else {
        return; // the documents live beside the repository, not in it
    };
    let seed1 = std::fs::read_to_string(seeds.join("001_fee8754d5ec6f645.txt")).unwrap_or_default();
    let strip = |s: &str| {
        s.lines()
            .map(|l| match l.find(" //") {
                Some(i) if !l[i..].contains('"') => l[..i].trim_end(),
                _ => l,
            })
            .collect::<Vec<_>>()
            .join("\n")
    };
    let (seed3, seed1) = (strip(&seed3), strip(&seed1));
    for (name, _) in fixtures() {
        let text = std::fs::read_to_string(root().join(&name)).expect("readable");
        let text = text.trim_end();
        assert!(seed3.contains(text) || seed1.contains(text), "{name} is not verbatim from seeds/003 or seeds/001");
    }
}

fn parse(body: &Value) -> Result<Vec<CallbackEvent>, CallbackError> {
    parse_callback(&serde_json::to_vec(body).expect("serializable"))
}

fn status_body() -> Value {
    json!({
        "event": "message_status_update",
        "channel_id": 30058,
        "business_phone": BUSINESS,
        "message_id": "wamid.A",
        "message_status": "delivered",
        "error": null,
        "received_at": 1754466101
    })
}

fn whatsapp_body(messages: Value) -> Value {
    json!({
        "event": "new_message",
        "channel_id": 30058,
        "business_phone": BUSINESS,
        "message": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": BUSINESS, "phone_number_id": "302702419599374"},
            "contacts": [
                {"profile": {"name": "Lessie Laytoya"}, "wa_id": LESSIE},
                {"profile": {"name": "Sheena Nelson"}, "wa_id": "16505551234"}
            ],
            "messages": messages
        }
    })
}

fn wa_text(from: &str, id: &str, body: &str) -> Value {
    json!({"from": from, "id": id, "timestamp": "1756109460", "type": "text", "text": {"body": body}})
}

fn rcs_body(message: Value) -> Value {
    json!({"event": "new_message", "channel_id": 30058, "business_phone": "", "message": message})
}

fn rcs_text() -> Value {
    json!({
        "senderPhoneNumber": "+6281519140000",
        "messageId": "5312df2b-54e3-457d-8654-49a4f3ba1a19",
        "sendTime": "2024-04-20T10:11:02.589915Z",
        "text": "Hiii",
        "agentId": RCS_AGENT
    })
}

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

fn one_inbound(result: Result<Vec<CallbackEvent>, CallbackError>) -> InboundMessage {
    match result {
        Ok(events) => match events.as_slice() {
            [CallbackEvent::Inbound(m)] => (**m).clone(),
            other => panic!("want one inbound message, got {other:#?}"),
        },
        Err(e) => panic!("refused: {e}"),
    }
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

#[test]
fn statuses_by_name_and_by_incs_number() {
    let cases: &[(Value, MessageStatus)] = &[
        (json!("sent"), MessageStatus::Sent),
        (json!("delivered"), MessageStatus::Delivered),
        (json!("read"), MessageStatus::Read),
        (json!("failed"), MessageStatus::Failed),
        (json!("DELIVERED"), MessageStatus::Delivered),
        (json!(1), MessageStatus::Sent),
        (json!(2), MessageStatus::Failed),
        (json!(3), MessageStatus::Delivered),
        (json!(4), MessageStatus::Read),
    ];
    for (wire, want) in cases {
        let report = one_status(parse(&with(status_body(), "/message_status", Some(wire.clone()))));
        assert_eq!(report.status, *want, "{wire}");
        assert_eq!(report.provider_message_id, "wamid.A");
        assert_eq!(report.at, secs(1754466101));
        assert_eq!(report.error, None);
        assert!(StatusReport::REPORTABLE.contains(&report.status));
    }
}

#[test]
fn a_status_the_gateway_does_not_track_is_ignored_not_refused() {
    for wire in [json!("deleted"), json!("warning"), json!(0), json!(7), json!("")] {
        match parse(&with(status_body(), "/message_status", Some(wire.clone()))) {
            Ok(events) => assert!(
                matches!(events.as_slice(), [CallbackEvent::Ignored { event, .. }] if event == "message_status_update"),
                "{wire}: {events:?}"
            ),
            Err(e) => panic!("{wire}: {e}"),
        }
    }
}

#[test]
fn status_errors_in_every_shape() {
    let cases: &[(Value, Option<ReportedError>)] = &[
        (json!(null), None),
        (json!({}), None),
        (json!({"code": 131049, "title": "t"}), Some(ReportedError { code: Some("131049".into()), title: "t".into() })),
        (
            json!({"code": "131026", "title": "t"}),
            Some(ReportedError { code: Some("131026".into()), title: "t".into() }),
        ),
        (json!({"title": "t"}), Some(ReportedError { code: None, title: "t".into() })),
        (json!({"code": 1}), Some(ReportedError { code: Some("1".into()), title: String::new() })),
        (json!("Message undeliverable"), Some(ReportedError { code: None, title: "Message undeliverable".into() })),
    ];
    for (wire, want) in cases {
        let body = with(with(status_body(), "/error", Some(wire.clone())), "/message_status", Some(json!("failed")));
        assert_eq!(one_status(parse(&body)).error, *want, "{wire}");
    }
    let no_error_field = with(status_body(), "/error", None);
    assert_eq!(one_status(parse(&no_error_field)).error, None);
}

#[test]
fn status_timestamps_as_numbers_or_strings() {
    let report = one_status(parse(&with(status_body(), "/received_at", Some(json!("1754466101")))));
    assert_eq!(report.at, secs(1754466101));
    let no_phone = one_status(parse(&with(status_body(), "/business_phone", None)));
    assert_eq!(no_phone.business_phone, None);
}

#[test]
fn several_messages_in_one_callback_are_several_events_in_order() {
    let body = whatsapp_body(json!([
        wa_text(LESSIE, "wamid.1", "first"),
        wa_text("16505551234", "wamid.2", "second"),
        wa_text("19999999999", "wamid.3", "third")
    ]));
    let events = parse(&body).expect("parsed");
    let got: Vec<_> = events
        .iter()
        .map(|e| match e {
            CallbackEvent::Inbound(m) => {
                (m.provider_message_id.as_str(), m.profile_name.as_deref(), m.raw["text"]["body"].clone())
            }
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(
        got,
        [
            ("wamid.1", Some("Lessie Laytoya"), json!("first")),
            ("wamid.2", Some("Sheena Nelson"), json!("second")),
            ("wamid.3", None, json!("third")),
        ]
    );
}

#[test]
fn a_whatsapp_value_without_messages_is_ignored() {
    let empty = parse(&whatsapp_body(json!([]))).expect("parsed");
    assert!(matches!(empty.as_slice(), [CallbackEvent::Ignored { event, .. }] if event == "new_message"), "{empty:?}");
    let statuses = with(whatsapp_body(json!([])), "/message/messages", None);
    let statuses = with(statuses, "/message/statuses", Some(json!([{"id": "wamid.A", "status": "read"}])));
    let got = parse(&statuses).expect("parsed");
    assert!(matches!(got.as_slice(), [CallbackEvent::Ignored { .. }]), "{got:?}");
}

#[test]
fn business_phone_falls_back_to_the_metadata() {
    let body = with(whatsapp_body(json!([wa_text(LESSIE, "wamid.1", "hi")])), "/business_phone", None);
    assert_eq!(one_inbound(parse(&body)).business_phone, BUSINESS);
    let body = with(whatsapp_body(json!([wa_text(LESSIE, "wamid.1", "hi")])), "/business_phone", Some(json!("")));
    assert_eq!(one_inbound(parse(&body)).business_phone, BUSINESS);
    let no_product = with(whatsapp_body(json!([wa_text(LESSIE, "wamid.1", "hi")])), "/message/messaging_product", None);
    assert_eq!(one_inbound(parse(&no_product)).channel, Channel::Whatsapp);
}

#[test]
fn whatsapp_types_beyond_the_documents() {
    let entry = |kind: &str, extra: Value| {
        let mut m = json!({"from": LESSIE, "id": "wamid.1", "timestamp": "1756109460", "type": kind});
        if let (Value::Object(m), Value::Object(extra)) = (&mut m, extra) {
            m.extend(extra);
        }
        whatsapp_body(json!([m]))
    };
    let reaction =
        one_inbound(parse(&entry("reaction", json!({"reaction": {"message_id": "wamid.OURS", "emoji": "👍"}}))));
    assert_eq!(
        reaction.content,
        InboundContent::Reaction { message_id: "wamid.OURS".into(), emoji: Some("👍".into()) }
    );
    assert_eq!(reaction.context, Some(InboundContext { provider_message_id: "wamid.OURS".into(), from: None }));
    let removed =
        one_inbound(parse(&entry("reaction", json!({"reaction": {"message_id": "wamid.OURS", "emoji": ""}}))));
    assert_eq!(removed.content, InboundContent::Reaction { message_id: "wamid.OURS".into(), emoji: None });

    let system = entry("system", json!({"system": {"body": "changed", "type": "customer_changed_number"}}));
    let system_msg = one_inbound(parse(&system));
    assert_eq!(system_msg.content, InboundContent::Unknown { kind: "system".into() });
    assert_eq!(system_msg.raw["system"]["type"], "customer_changed_number");

    let flow =
        entry("interactive", json!({"interactive": {"type": "nfm_reply", "nfm_reply": {"response_json": "{}"}}}));
    assert_eq!(one_inbound(parse(&flow)).content, InboundContent::Unknown { kind: "interactive.nfm_reply".into() });

    let old_unknown = entry("unknown", json!({"errors": [{"code": 131051, "message": "Unsupported message type"}]}));
    assert_eq!(
        one_inbound(parse(&old_unknown)).content,
        InboundContent::Unsupported {
            errors: vec![InboundError {
                code: Some("131051".into()),
                title: "Unsupported message type".into(),
                details: None
            }]
        }
    );

    // The order table says strings; the example has numbers. Both are taken.
    let order = entry(
        "order",
        json!({"order": {"catalog_id": 194836987003835_u64, "product_items": [
            {"product_retailer_id": "x", "quantity": "3", "item_price": "12.5", "currency": "HKD"}
        ]}}),
    );
    assert_eq!(
        one_inbound(parse(&order)).content,
        InboundContent::Order {
            catalog_id: "194836987003835".into(),
            items: vec![OrderItem {
                product_retailer_id: "x".into(),
                quantity: 3,
                item_price: Some(12.5),
                currency: Some("HKD".into())
            }],
            text: None
        }
    );

    // A forwarded message has a context without an id: no context.
    let forwarded = entry("text", json!({"text": {"body": "fw"}, "context": {"forwarded": true}}));
    assert_eq!(one_inbound(parse(&forwarded)).context, None);
}

#[test]
fn extra_fields_everywhere_are_tolerated() {
    let mut entry = wa_text(LESSIE, "wamid.1", "hi");
    entry["text"]["new_meta_field"] = json!({"x": [1, 2]});
    entry["referral"] = json!({"source_url": "https://fb.me/x", "ctwa_clid": "abc"});
    let mut body = whatsapp_body(json!([entry]));
    body["new_incs_field"] = json!(true);
    body["message"]["metadata"]["extra"] = json!(1);
    let m = one_inbound(parse(&body));
    assert_eq!(m.content, InboundContent::Text { body: "hi".into() });
    assert_eq!(m.raw["referral"]["ctwa_clid"], "abc");

    let mut status = status_body();
    status["conversation"] = json!({"id": "c"});
    status["error"] = json!({"code": 1, "title": "t", "error_data": {"details": "d"}});
    assert_eq!(one_status(parse(&status)).status, MessageStatus::Delivered);
}

#[test]
fn rcs_details() {
    let mut message = rcs_text();
    message["agentId"] = json!("agent@rbm.goog");
    let m = one_inbound(parse(&rcs_body(message.clone())));
    assert_eq!((m.business_phone.as_str(), m.from.as_str()), ("agent@rbm.goog", "6281519140000"));
    assert_eq!(m.raw["senderPhoneNumber"], "+6281519140000");

    // A business number from INCS wins over the agent id.
    let mut body = rcs_body(message.clone());
    body["business_phone"] = json!("6281519236680");
    assert_eq!(one_inbound(parse(&body)).business_phone, BUSINESS);

    // Something RBM sends that the model does not know.
    let mut unknown = message.clone();
    unknown.as_object_mut().expect("object").remove("text");
    unknown["richCardResponse"] = json!({});
    assert_eq!(
        one_inbound(parse(&rcs_body(unknown))).content,
        InboundContent::Unknown { kind: "richCardResponse".into() }
    );

    let mut untyped = message;
    untyped.as_object_mut().expect("object").remove("text");
    untyped["suggestionResponse"] = json!({"postbackData": "p", "text": "t"});
    assert_eq!(
        one_inbound(parse(&rcs_body(untyped))).content,
        InboundContent::Unknown { kind: "suggestionResponse.untyped".into() }
    );
}

#[test]
fn template_events_without_name_or_with_a_reason() {
    let body = json!({
        "event": "template_status_update", "channel_id": 30058, "business_phone": BUSINESS,
        "template_id": 1287380349540668_u64, "new_value": "REJECTED", "reason": "INVALID_FORMAT", "received_at": 1754466101
    });
    match parse(&body).expect("parsed").as_slice() {
        [CallbackEvent::Template(t)] => {
            assert_eq!(t.template_id, "1287380349540668");
            assert_eq!(t.template_name, "");
            assert_eq!(t.reason.as_deref(), Some("INVALID_FORMAT"));
            assert_eq!(t.change, TemplateChange::Status);
        }
        other => panic!("{other:?}"),
    }
}

fn assert_malformed(label: &str, body: &[u8]) {
    match parse_callback(body) {
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
        ("whitespace", b"  \n"),
        ("not JSON", b"event=new_message"),
        ("truncated", br#"{"event": "new_message", "message": {"#),
        ("invalid UTF-8", b"{\"event\": \"new_\xff\xfe\"}"),
        ("array", b"[1, 2]"),
        ("string", br#""message_status_update""#),
        ("null", b"null"),
        (
            "number out of f64 range",
            br#"{"event": "message_status_update", "message_id": "w", "message_status": "read", "received_at": 1e400}"#,
        ),
        ("nesting deeper than the recursion limit", &[b'['; 100_000]),
    ];
    for (label, body) in raw {
        assert_malformed(label, body);
    }

    let deep = format!("{{\"event\": \"new_message\", \"message\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    assert_malformed("deeply nested message", deep.as_bytes());

    let status = status_body();
    let wa = whatsapp_body(json!([wa_text(LESSIE, "wamid.1", "hi")]));
    let rcs = rcs_body(rcs_text());
    let template = json!({
        "event": "template_quality_update", "template_id": "1", "template_name": "t", "new_value": "RED",
        "reason": "", "received_at": 1754466101
    });
    let created = json!({"event": "message_created", "message": {
        "id": 260400000076_u64, "type": 101, "channel_msg_id": "wamid.A", "channel_status": 0,
        "created_at": "2026-04-07T12:02:55.000000Z"}});
    let updated = json!({"event": "message_status_updated", "message_id": 260400000084_u64, "message_status": 4,
        "error": "", "updated_at": "2026-04-07T13:11:27.000000Z"});
    let cases: Vec<(&str, Value)> = vec![
        ("empty object", json!({})),
        ("no event", with(status.clone(), "/event", None)),
        ("event not a string", with(status.clone(), "/event", Some(json!(5)))),
        ("event null", with(status.clone(), "/event", Some(Value::Null))),
        ("status: no message_id", with(status.clone(), "/message_id", None)),
        ("status: message_id a number", with(status.clone(), "/message_id", Some(json!(123)))),
        ("status: message_id empty", with(status.clone(), "/message_id", Some(json!("")))),
        ("status: no message_status", with(status.clone(), "/message_status", None)),
        ("status: message_status a bool", with(status.clone(), "/message_status", Some(json!(true)))),
        ("status: message_status an object", with(status.clone(), "/message_status", Some(json!({"s": 1})))),
        ("status: no received_at", with(status.clone(), "/received_at", None)),
        ("status: received_at words", with(status.clone(), "/received_at", Some(json!("yesterday")))),
        ("status: received_at a float", with(status.clone(), "/received_at", Some(json!(1754466101.5)))),
        ("status: received_at past u64", with(status.clone(), "/received_at", Some(json!(1e20)))),
        ("status: received_at i64::MAX", with(status.clone(), "/received_at", Some(json!(i64::MAX)))),
        ("status: received_at u64::MAX", with(status.clone(), "/received_at", Some(json!(u64::MAX)))),
        ("status: received_at i64::MIN", with(status.clone(), "/received_at", Some(json!(i64::MIN)))),
        ("status: error code a float", with(status.clone(), "/error", Some(json!({"code": 1.5, "title": "t"})))),
        ("status: error a number", with(status.clone(), "/error", Some(json!(131049)))),
        ("status: business_phone a number", with(status.clone(), "/business_phone", Some(json!(6281519236680_u64)))),
        ("template: no template_id", with(template.clone(), "/template_id", None)),
        ("template: new_value null", with(template.clone(), "/new_value", Some(Value::Null))),
        ("template: new_value empty", with(template.clone(), "/new_value", Some(json!("")))),
        ("template: received_at missing", with(template.clone(), "/received_at", None)),
        ("new_message: no message", with(wa.clone(), "/message", None)),
        ("new_message: message a string", with(wa.clone(), "/message", Some(json!("hi")))),
        ("new_message: message empty", with(wa.clone(), "/message", Some(json!({})))),
        ("new_message: messaging_product a number", with(wa.clone(), "/message/messaging_product", Some(json!(1)))),
        ("whatsapp: no messages", with(wa.clone(), "/message/messages", None)),
        ("whatsapp: messages an object", with(wa.clone(), "/message/messages", Some(json!({"0": {}})))),
        ("whatsapp: contacts a string", with(wa.clone(), "/message/contacts", Some(json!("x")))),
        ("whatsapp: message not an object", with(wa.clone(), "/message/messages/0", Some(json!(7)))),
        ("whatsapp: no id", with(wa.clone(), "/message/messages/0/id", None)),
        ("whatsapp: no from", with(wa.clone(), "/message/messages/0/from", None)),
        ("whatsapp: no type", with(wa.clone(), "/message/messages/0/type", None)),
        ("whatsapp: timestamp words", with(wa.clone(), "/message/messages/0/timestamp", Some(json!("soon")))),
        (
            "whatsapp: timestamp huge",
            with(wa.clone(), "/message/messages/0/timestamp", Some(json!("99999999999999999999"))),
        ),
        ("whatsapp: text without text", with(wa.clone(), "/message/messages/0/text", None)),
        ("whatsapp: text body a number", with(wa.clone(), "/message/messages/0/text", Some(json!({"body": 1})))),
        (
            "whatsapp: image is a string",
            with(
                with(wa.clone(), "/message/messages/0/type", Some(json!("image"))),
                "/message/messages/0/image",
                Some(json!("x")),
            ),
        ),
        (
            "whatsapp: list_reply without list_reply",
            with(
                with(wa.clone(), "/message/messages/0/type", Some(json!("interactive"))),
                "/message/messages/0/interactive",
                Some(json!({"type": "list_reply"})),
            ),
        ),
        (
            "whatsapp: latitude out of range",
            with(
                with(wa.clone(), "/message/messages/0/type", Some(json!("location"))),
                "/message/messages/0/location",
                Some(json!({"latitude": 200.0, "longitude": 1.0})),
            ),
        ),
        (
            "whatsapp: negative order quantity",
            with(
                with(wa.clone(), "/message/messages/0/type", Some(json!("order"))),
                "/message/messages/0/order",
                Some(json!({"catalog_id": "c", "product_items": [{"product_retailer_id": "p", "quantity": -1}]})),
            ),
        ),
        (
            "whatsapp: order quantity past u64",
            with(
                with(wa.clone(), "/message/messages/0/type", Some(json!("order"))),
                "/message/messages/0/order",
                Some(json!({"catalog_id": "c", "product_items": [{"product_retailer_id": "p", "quantity": 1e30}]})),
            ),
        ),
        (
            "whatsapp: one good and one bad message",
            with(wa.clone(), "/message/messages/1", Some(json!({"from": LESSIE, "type": "text"}))),
        ),
        (
            "whatsapp: no business phone anywhere",
            with(with(wa.clone(), "/business_phone", None), "/message/metadata", None),
        ),
        ("rcs: no messageId", with(rcs.clone(), "/message/messageId", None)),
        ("rcs: sendTime words", with(rcs.clone(), "/message/sendTime", Some(json!("yesterday")))),
        ("rcs: sendTime Unix seconds", with(rcs.clone(), "/message/sendTime", Some(json!(1713607862)))),
        ("rcs: text an object", with(rcs.clone(), "/message/text", Some(json!({"body": "x"})))),
        ("rcs: no agent and no business phone", with(rcs.clone(), "/message/agentId", None)),
        (
            "rcs: file without uri",
            with(rcs.clone(), "/message/userFile", Some(json!({"payload": {"mimeType": "image/png"}}))),
        ),
        ("message_created: no message", with(created.clone(), "/message", None)),
        ("message_created: no id", with(created.clone(), "/message/id", None)),
        ("message_created: negative id", with(created.clone(), "/message/id", Some(json!(-1)))),
        ("message_created: bad created_at", with(created.clone(), "/message/created_at", Some(json!("2026-04-07")))),
        ("message_status_updated: status a string", with(updated.clone(), "/message_status", Some(json!("read")))),
        ("message_status_updated: no updated_at", with(updated.clone(), "/updated_at", None)),
    ];
    for (label, body) in &cases {
        assert_malformed(label, &serde_json::to_vec(body).expect("serializable"));
    }
}

#[test]
fn errors_name_the_field_at_fault() {
    let body = with(
        whatsapp_body(json!([wa_text(LESSIE, "wamid.1", "hi")])),
        "/message/messages/0/timestamp",
        Some(json!("soon")),
    );
    match parse(&body) {
        Err(CallbackError::Malformed(reason)) => {
            assert!(reason.contains("message.messages[0].timestamp"), "{reason}");
        }
        other => panic!("{other:?}"),
    }
    match parse(&with(status_body(), "/message_id", None)) {
        Err(CallbackError::Malformed(reason)) => assert!(reason.contains("message_id"), "{reason}"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn unknown_events_are_unknown() {
    let cases = [
        (json!({"event": "message_deleted", "message_id": "x"}), "message_deleted"),
        (json!({"event": ""}), ""),
        (json!({"event": "MESSAGE_STATUS_UPDATE"}), "MESSAGE_STATUS_UPDATE"),
        (with(whatsapp_body(json!([])), "/message/messaging_product", Some(json!("viber"))), "new_message (viber)"),
    ];
    for (body, want) in cases {
        assert_eq!(parse(&body), Err(CallbackError::UnknownEvent(want.into())), "{body}");
    }
    let long = "x".repeat(10_000);
    match parse(&json!({"event": long})) {
        Err(CallbackError::UnknownEvent(name)) => assert!(name.chars().count() <= 65, "{}", name.len()),
        other => panic!("{other:?}"),
    }
}

/// No input makes `parse_callback` panic; whatever it accepts is a non-empty list of events that
/// survive a JSON round trip (what the gateway stores and forwards).
mod properties {
    use std::sync::OnceLock;

    use proptest::prelude::*;
    use proptest::sample::Index;
    use serde_json::{Map, Number, Value};

    use super::*;

    const CASES: u32 = 384;

    const NAMES: &[&str] = &[
        "event",
        "message",
        "messages",
        "messaging_product",
        "whatsapp",
        "metadata",
        "contacts",
        "wa_id",
        "profile",
        "name",
        "from",
        "id",
        "timestamp",
        "type",
        "text",
        "body",
        "image",
        "link",
        "interactive",
        "list_reply",
        "button_reply",
        "title",
        "order",
        "product_items",
        "quantity",
        "item_price",
        "reaction",
        "message_id",
        "emoji",
        "context",
        "errors",
        "code",
        "location",
        "latitude",
        "longitude",
        "message_status",
        "received_at",
        "error",
        "template_id",
        "new_value",
        "new_message",
        "message_status_update",
        "template_status_update",
        "template_category_update",
        "template_quality_update",
        "message_created",
        "message_status_updated",
        "senderPhoneNumber",
        "messageId",
        "sendTime",
        "agentId",
        "userFile",
        "payload",
        "fileUri",
        "suggestionResponse",
        "postbackData",
        "REPLY",
        "ACTION",
        "trackdata",
        "msgId",
        "business_phone",
        "updated_at",
        "created_at",
        "statuses",
        "unsupported",
        "sticker",
        "button",
        "2026-02-02T08:11:41Z",
        "1756109460",
        "read",
        "failed",
        "",
    ];

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![3 => prop::sample::select(NAMES).prop_map(str::to_owned), 1 => ".{0,12}"]
    }

    fn number() -> impl Strategy<Value = Value> {
        prop_oneof![
            any::<i64>().prop_map(Value::from),
            any::<u64>().prop_map(Value::from),
            (-1.0e6..1.0e6f64).prop_map(Value::from),
            any::<f64>().prop_filter_map("finite", |f| Number::from_f64(f).map(Value::Number)),
            Just(json!(1754466101)),
            Just(json!(i64::MAX)),
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

    fn known_event() -> impl Strategy<Value = &'static str> {
        prop::sample::select(
            &[
                "new_message",
                "message_status_update",
                "template_status_update",
                "template_category_update",
                "template_quality_update",
                "message_created",
                "message_status_updated",
            ][..],
        )
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

    /// JSON equality, numbers within a relative 1e-12: serde_json parses floats fast rather than
    /// exactly (its `float_roundtrip` feature is off), so a float may come back one ulp away.
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
        match parse_callback(body) {
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
                    if let CallbackEvent::Status(s) = event {
                        prop_assert!(StatusReport::REPORTABLE.contains(&s.status));
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
        fn arbitrary_fields_under_a_known_event(event in known_event(), fields in prop::collection::vec((name(), json_value()), 0..10)) {
            let mut body: Map<String, Value> = fields.into_iter().collect();
            body.insert("event".into(), Value::from(event));
            check(&serde_json::to_vec(&Value::Object(body)).expect("serializable"))?;
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
    }
}
