//! InnoPaaS request and response bodies. Private: the rest of the gateway sees only core types.
//!
//! Unlike INCS, InnoPaaS does not take the WhatsApp Cloud API shapes: a send is one flat camelCase
//! object (`wabaId`, `messageType`, `recipientNumber`, ...) whose template parameters are plain
//! lists (`bodyParams`, `buttonParams`) and whose media, contacts and interactive objects have
//! their own field names (seeds/004). So every shape is mapped here, field by field, from the
//! core content types; the golden tests pin the result.

use std::borrow::Cow;

use gateway_core::content::whatsapp::{
    AuthTemplate, ComponentType, Contact, Interactive, InteractiveHeader, Location, ReplyButton, Template,
    TemplateParameter, WhatsAppContent,
};
use gateway_core::content::{Media, TextObject};
use gateway_core::{Content, OutboundMessage};
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;

use crate::template::{category_code, TemplateSubmit};

/// InnoPaaS refuses longer content with code 106 (PROVIDERS.md §2.5), below WhatsApp's 4096.
pub(crate) const MAX_TEXT_CHARS: usize = 3000;

/// Why a message cannot become an InnoPaaS send body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Refusal {
    /// InnoPaaS does not carry this channel or content type at all; another provider may.
    Unsupported(String),
    /// The message lacks something InnoPaaS needs (a template language) or holds something it
    /// cannot express.
    Content(String),
}

impl Refusal {
    pub(crate) fn reason(&self) -> &str {
        match self {
            Self::Unsupported(r) | Self::Content(r) => r,
        }
    }
}

/// The account-level fields every send carries.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sender<'a> {
    pub waba_id: &'a str,
    pub send_number: &'a str,
    pub default_language: Option<&'a str>,
}

/// `POST /api/whatsapp/v3/msg/submit` (and MMLite), in the document's field order.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct SendBody<'a> {
    waba_id: &'a str,
    message_type: &'static str,
    uid: &'a str,
    send_number: &'a str,
    recipient_number: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    language: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    template_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<TemplateHeader<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    body_params: Vec<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    button_params: Vec<ButtonParam<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    media: Option<WireMedia<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    location: Option<WireLocation<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    contacts: Option<Vec<WireContact<'a>>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    interactive: Option<WireInteractive<'a>>,
}

/// HeaderDto (PROVIDERS.md §2.2 assumption): `{type, link?, paramValue?, filename?}`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateHeader<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    param_value: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<&'a str>,
}

/// ParameterDto (PROVIDERS.md §2.2 assumption): `{type, value}`.
#[derive(Debug, Serialize)]
struct ButtonParam<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    value: &'a str,
}

#[derive(Debug, Serialize)]
struct WireMedia<'a> {
    link: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    filename: Option<Cow<'a, str>>,
}

/// All four are strings in InnoPaaS (`"31.23593"`).
#[derive(Debug, Serialize)]
struct WireLocation<'a> {
    latitude: String,
    longitude: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    address: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireContact<'a> {
    name: WireContactName<'a>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    phones: Vec<WireContactPhone<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    org: Option<WireContactOrg<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    addresses: Vec<WireContactAddress<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    birthday: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    emails: Vec<WireContactEmail<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    urls: Vec<WireContactUrl<'a>>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireContactName<'a> {
    formatted_name: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    first_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    last_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    middle_name: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    suffix: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    prefix: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireContactPhone<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    phone: &'a str,
    #[serde(rename = "waID", skip_serializing_if = "Option::is_none")]
    wa_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireContactOrg<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    company: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    department: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireContactAddress<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    street: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    city: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    state: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    zip: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    country_code: Option<&'a str>,
}

#[derive(Debug, Serialize)]
struct WireContactEmail<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    email: &'a str,
}

#[derive(Debug, Serialize)]
struct WireContactUrl<'a> {
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'a str>,
    url: &'a str,
}

/// `{type, header?, body?, footer?, action}` (seeds/004 "interactive消息").
#[derive(Debug, Serialize)]
struct WireInteractive<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    header: Option<WireInteractiveHeader<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body: Option<&'a TextObject>,
    #[serde(skip_serializing_if = "Option::is_none")]
    footer: Option<&'a TextObject>,
    action: WireAction<'a>,
}

/// InteractiveHeader: `{type, link?, caption?, paramValue?}`; a text header's text is its one
/// `paramValue`, the object having no `text` field.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireInteractiveHeader<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    link: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    param_value: Option<&'a str>,
}

#[derive(Debug, Default, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireAction<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    catalog_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    product_retailer_id: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    button: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buttons: Vec<WireReplyButton<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    sections: Vec<WireSection<'a>>,
}

/// Button: `{type: "reply", title, id}`, flat (the Cloud API nests `reply{id, title}`).
#[derive(Debug, Serialize)]
struct WireReplyButton<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    title: &'a str,
    id: &'a str,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireSection<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    title: Option<&'a str>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    rows: Vec<WireRow<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    product_items: Vec<WireProductItem<'a>>,
}

#[derive(Debug, Serialize)]
struct WireRow<'a> {
    title: &'a str,
    id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    description: Option<&'a str>,
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct WireProductItem<'a> {
    product_retailer_id: &'a str,
}

impl<'a> SendBody<'a> {
    /// The body for one message to one recipient, or why InnoPaaS cannot carry it.
    pub(crate) fn new(sender: Sender<'a>, uid: &'a str, message: &'a OutboundMessage) -> Result<Self, Refusal> {
        let Content::Whatsapp(content) = &message.content else {
            return Err(Refusal::Unsupported(format!("InnoPaaS carries WhatsApp only, not {}", message.channel())));
        };
        let mut body = SendBody {
            waba_id: sender.waba_id,
            message_type: "",
            uid,
            send_number: sender.send_number,
            recipient_number: message.to.as_str(),
            body: None,
            language: None,
            template_name: None,
            header: None,
            body_params: Vec::new(),
            button_params: Vec::new(),
            media: None,
            location: None,
            contacts: None,
            interactive: None,
        };
        body.message_type = match content {
            WhatsAppContent::Text(t) => {
                let chars = t.body.chars().count();
                if chars > MAX_TEXT_CHARS {
                    return Err(Refusal::Unsupported(format!(
                        "InnoPaaS takes texts of at most {MAX_TEXT_CHARS} characters (code 106), this one has {chars}"
                    )));
                }
                body.body = Some(&t.body);
                "text"
            }
            WhatsAppContent::Image(m) => media(&mut body, "image", m, true),
            WhatsAppContent::Video(m) => media(&mut body, "video", m, true),
            WhatsAppContent::Audio(m) => media(&mut body, "audio", m, false),
            WhatsAppContent::Sticker(m) => media(&mut body, "sticker", m, false),
            WhatsAppContent::Document(m) => {
                let filename = Some(m.filename.as_deref().map_or_else(|| filename_from_link(&m.link), Cow::Borrowed));
                body.media = Some(WireMedia { link: &m.link, caption: m.caption.as_deref(), filename });
                "document"
            }
            WhatsAppContent::Location(l) => {
                body.location = Some(location(l));
                "location"
            }
            WhatsAppContent::Contacts(cs) => {
                body.contacts = Some(cs.iter().map(contact).collect());
                "contacts"
            }
            WhatsAppContent::Template(t) => {
                template(&mut body, sender, t)?;
                "template"
            }
            WhatsAppContent::AuthTemplate(t) => {
                auth_template(&mut body, sender, t)?;
                "template"
            }
            WhatsAppContent::Interactive(i) => {
                body.interactive = Some(interactive(i)?);
                "interactive"
            }
        };
        Ok(body)
    }
}

fn media<'a>(body: &mut SendBody<'a>, kind: &'static str, m: &'a Media, caption: bool) -> &'static str {
    let caption = if caption { m.caption.as_deref() } else { None };
    body.media = Some(WireMedia { link: &m.link, caption, filename: None });
    kind
}

/// InnoPaaS requires a document's `filename`; without one given, the link's last path segment
/// (what a browser would save it as), else `document`.
fn filename_from_link(link: &str) -> Cow<'static, str> {
    let name = url::Url::parse(link)
        .ok()
        .and_then(|u| u.path_segments().and_then(|mut s| s.next_back().map(str::to_owned)))
        .filter(|s| !s.is_empty());
    name.map_or(Cow::Borrowed("document"), Cow::Owned)
}

fn location(l: &Location) -> WireLocation<'_> {
    WireLocation {
        latitude: l.latitude.to_string(),
        longitude: l.longitude.to_string(),
        name: l.name.as_deref(),
        address: l.address.as_deref(),
    }
}

fn contact(c: &Contact) -> WireContact<'_> {
    let n = &c.name;
    WireContact {
        name: WireContactName {
            formatted_name: &n.formatted_name,
            first_name: n.first_name.as_deref(),
            last_name: n.last_name.as_deref(),
            middle_name: n.middle_name.as_deref(),
            suffix: n.suffix.as_deref(),
            prefix: n.prefix.as_deref(),
        },
        phones: c
            .phones
            .iter()
            .map(|p| WireContactPhone { kind: p.kind.as_deref(), phone: &p.phone, wa_id: p.wa_id.as_deref() })
            .collect(),
        org: c.org.as_ref().map(|o| WireContactOrg {
            company: o.company.as_deref(),
            department: o.department.as_deref(),
            title: o.title.as_deref(),
        }),
        addresses: c
            .addresses
            .iter()
            .map(|a| WireContactAddress {
                kind: a.kind.as_deref(),
                street: a.street.as_deref(),
                city: a.city.as_deref(),
                state: a.state.as_deref(),
                zip: a.zip.as_deref(),
                country: a.country.as_deref(),
                country_code: a.country_code.as_deref(),
            })
            .collect(),
        birthday: c.birthday.as_deref(),
        emails: c.emails.iter().map(|e| WireContactEmail { kind: e.kind.as_deref(), email: &e.email }).collect(),
        urls: c.urls.iter().map(|u| WireContactUrl { kind: u.kind.as_deref(), url: &u.url }).collect(),
    }
}

/// The template's language, else the account's default; InnoPaaS requires one.
fn language<'a>(given: Option<&'a str>, sender: Sender<'a>, name: &str) -> Result<&'a str, Refusal> {
    given.or(sender.default_language).ok_or_else(|| {
        Refusal::Content(format!(
            "InnoPaaS needs the language of template `{name}`: give `template.language` or configure the \
             account's `default_language`"
        ))
    })
}

fn template<'a>(body: &mut SendBody<'a>, sender: Sender<'a>, t: &'a Template) -> Result<(), Refusal> {
    body.template_name = Some(&t.name);
    body.language = Some(language(t.language.as_deref(), sender, &t.name)?);
    let mut buttons = Vec::new();
    for component in &t.components {
        match component.kind {
            ComponentType::Header => {
                if let Some(p) = component.parameters.first() {
                    body.header = Some(template_header(p)?);
                }
            }
            ComponentType::Body => {
                for p in &component.parameters {
                    body.body_params.push(body_param(p)?);
                }
            }
            ComponentType::Button => {
                // Core checks the index is 0-9; an unreadable one sorts last rather than failing.
                let index = component.index.as_deref().and_then(|i| i.parse::<u8>().ok()).unwrap_or(u8::MAX);
                for p in &component.parameters {
                    buttons.push((index, button_param(p)?));
                }
            }
        }
    }
    // Stable: several parameters of one button keep their order.
    buttons.sort_by_key(|(index, _)| *index);
    body.button_params = buttons.into_iter().map(|(_, p)| p).collect();
    Ok(())
}

fn template_header(p: &TemplateParameter) -> Result<TemplateHeader<'_>, Refusal> {
    fn media<'a>(kind: &'static str, m: &'a Media, filename: Option<&'a str>) -> TemplateHeader<'a> {
        TemplateHeader { kind, link: Some(&m.link), param_value: None, filename }
    }
    Ok(match p {
        TemplateParameter::Text { text, .. } => {
            TemplateHeader { kind: "text", link: None, param_value: Some(text), filename: None }
        }
        TemplateParameter::Image { image } => media("image", image, None),
        TemplateParameter::Video { video } => media("video", video, None),
        TemplateParameter::Document { document } => media("document", document, document.filename.as_deref()),
        other => {
            return Err(Refusal::Content(format!(
                "InnoPaaS template headers take a text, image, video or document parameter, not {}",
                parameter_type(other)
            )))
        }
    })
}

/// `bodyParams` are strings: currency and date-time parameters go as their fallback text, which is
/// what WhatsApp shows where it cannot localise them.
fn body_param(p: &TemplateParameter) -> Result<&str, Refusal> {
    match p {
        TemplateParameter::Text { text, .. } => Ok(text),
        TemplateParameter::Currency { currency } => Ok(&currency.fallback_value),
        TemplateParameter::DateTime { date_time } => Ok(&date_time.fallback_value),
        other => {
            Err(Refusal::Content(format!("InnoPaaS template body parameters are text, not {}", parameter_type(other))))
        }
    }
}

/// ParameterDto `{type, value}`, with the Cloud API's parameter type as `type`.
fn button_param(p: &TemplateParameter) -> Result<ButtonParam<'_>, Refusal> {
    match p {
        TemplateParameter::Text { text, .. } => Ok(ButtonParam { kind: "text", value: text }),
        TemplateParameter::CouponCode { coupon_code } => Ok(ButtonParam { kind: "coupon_code", value: coupon_code }),
        TemplateParameter::Payload { payload } => Ok(ButtonParam { kind: "payload", value: payload }),
        other => Err(Refusal::Content(format!(
            "InnoPaaS template button parameters are text, coupon codes or payloads, not {}",
            parameter_type(other)
        ))),
    }
}

fn parameter_type(p: &TemplateParameter) -> &'static str {
    match p {
        TemplateParameter::Text { .. } => "text",
        TemplateParameter::Image { .. } => "image",
        TemplateParameter::Video { .. } => "video",
        TemplateParameter::Document { .. } => "document",
        TemplateParameter::CouponCode { .. } => "coupon_code",
        TemplateParameter::Payload { .. } => "payload",
        TemplateParameter::Currency { .. } => "currency",
        TemplateParameter::DateTime { .. } => "date_time",
    }
}

/// An authentication template: the code fills the body's one placeholder and the copy-code button,
/// the way Meta's authentication templates take it (`[{"type":"text","value":"<otp>"}]` in
/// InnoPaaS client code).
fn auth_template<'a>(body: &mut SendBody<'a>, sender: Sender<'a>, t: &'a AuthTemplate) -> Result<(), Refusal> {
    body.template_name = Some(&t.name);
    body.language = Some(language(t.language.as_deref(), sender, &t.name)?);
    body.body_params = vec![&t.code];
    body.button_params = vec![ButtonParam { kind: "text", value: &t.code }];
    Ok(())
}

fn interactive(i: &Interactive) -> Result<WireInteractive<'_>, Refusal> {
    let unsupported = |kind: &str| {
        Err(Refusal::Unsupported(format!("InnoPaaS does not carry WhatsApp interactive `{kind}` messages")))
    };
    let mut action = WireAction::default();
    let (kind, header, body, footer) = match i {
        Interactive::CtaUrl { .. } | Interactive::Carousel { .. } => return unsupported(i.kind()),
        Interactive::List { header, body, footer, action: a } => {
            action.button = Some(&a.button);
            action.sections = a
                .sections
                .iter()
                .map(|s| WireSection {
                    title: s.title.as_deref(),
                    rows: s
                        .rows
                        .iter()
                        .map(|r| WireRow { title: &r.title, id: &r.id, description: r.description.as_deref() })
                        .collect(),
                    product_items: Vec::new(),
                })
                .collect();
            ("list", header.as_ref(), Some(body), footer.as_ref())
        }
        Interactive::Button { header, body, footer, action: a } => {
            action.buttons = a
                .buttons
                .iter()
                .map(|ReplyButton::Reply { reply }| WireReplyButton {
                    kind: "reply",
                    title: &reply.title,
                    id: &reply.id,
                })
                .collect();
            ("button", header.as_ref(), Some(body), footer.as_ref())
        }
        Interactive::Product { body, footer, action: a } => {
            action.catalog_id = Some(&a.catalog_id);
            action.product_retailer_id = Some(&a.product_retailer_id);
            ("product", None, body.as_ref(), footer.as_ref())
        }
        Interactive::ProductList { header, body, footer, action: a } => {
            action.catalog_id = Some(&a.catalog_id);
            action.sections = a
                .sections
                .iter()
                .map(|s| WireSection {
                    title: s.title.as_deref(),
                    rows: Vec::new(),
                    product_items: s
                        .product_items
                        .iter()
                        .map(|p| WireProductItem { product_retailer_id: &p.product_retailer_id })
                        .collect(),
                })
                .collect();
            ("product_list", Some(header), Some(body), footer.as_ref())
        }
    };
    Ok(WireInteractive { kind, header: header.map(interactive_header), body, footer, action })
}

fn interactive_header(h: &InteractiveHeader) -> WireInteractiveHeader<'_> {
    fn media<'a>(kind: &'static str, m: &'a Media) -> WireInteractiveHeader<'a> {
        WireInteractiveHeader { kind, link: Some(&m.link), caption: m.caption.as_deref(), param_value: None }
    }
    match h {
        InteractiveHeader::Text { text } => {
            WireInteractiveHeader { kind: "text", link: None, caption: None, param_value: Some(text) }
        }
        InteractiveHeader::Image { image } => media("image", image),
        InteractiveHeader::Video { video } => media("video", video),
        InteractiveHeader::Document { document } => media("document", document),
    }
}

/// `POST /api/whatsapp/v3/account/phoneInfo`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhoneInfoBody<'a> {
    pub waba_id: &'a str,
}

/// `POST /api/whatsapp/v3/template/submit`.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct TemplateSubmitBody<'a> {
    waba_id: &'a str,
    name: &'a str,
    category: u8,
    message_language: &'a str,
    header_type: u8,
    #[serde(skip_serializing_if = "Option::is_none")]
    caption: Option<&'a str>,
    message_body: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    footer: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    safety_advice: Option<u8>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    buttons: Vec<TemplateButtonBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    header_example: Option<HeaderExampleBody<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    body_example: Option<BodyExampleBody<'a>>,
}

/// `headerExample`, in Meta's example keys (PROVIDERS.md §2.7).
#[derive(Debug, Serialize)]
enum HeaderExampleBody<'a> {
    #[serde(rename = "header_text")]
    Text(&'a [String]),
    #[serde(rename = "header_handle")]
    Handle(&'a [String]),
}

#[derive(Debug, Serialize)]
struct BodyExampleBody<'a> {
    body_text: &'a [Vec<String>],
}

#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
struct TemplateButtonBody<'a> {
    action_type: u8,
    label: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    target_url: Option<&'a str>,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    button_example: &'a [String],
    #[serde(skip_serializing_if = "Option::is_none")]
    phone_area: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    phone: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    package_name: Option<&'a str>,
    #[serde(rename = "sigNatureHash", skip_serializing_if = "Option::is_none")]
    signature_hash: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    auto_fill: Option<&'a str>,
}

impl<'a> TemplateSubmitBody<'a> {
    pub(crate) fn new(waba_id: &'a str, t: &'a TemplateSubmit) -> Self {
        Self {
            waba_id,
            name: &t.name,
            category: category_code(t.category),
            message_language: &t.language,
            header_type: t.header_type.code(),
            caption: t.caption.as_deref(),
            message_body: &t.body,
            footer: t.footer.as_deref(),
            safety_advice: t.safety_advice.map(u8::from),
            buttons: t
                .buttons
                .iter()
                .map(|b| TemplateButtonBody {
                    action_type: b.action_type,
                    label: &b.label,
                    target_url: b.target_url.as_deref(),
                    button_example: &b.button_example,
                    phone_area: b.phone_area.as_deref(),
                    phone: b.phone.as_deref(),
                    package_name: b.package_name.as_deref(),
                    signature_hash: b.signature_hash.as_deref(),
                    auto_fill: b.auto_fill.as_deref(),
                })
                .collect(),
            header_example: t.header_example.as_ref().map(|e| match e {
                crate::template::HeaderExample::Text(v) => HeaderExampleBody::Text(v),
                crate::template::HeaderExample::Handle(v) => HeaderExampleBody::Handle(v),
            }),
            body_example: t.body_example.as_deref().map(|rows| BodyExampleBody { body_text: rows }),
        }
    }
}

/// `{code, success, message, data}`. `code` is a string in InnoPaaS's documents; a number is read
/// too, as is a `success` given as a string, since an envelope we cannot read would otherwise be
/// classified by the HTTP status alone.
#[derive(Debug, Deserialize)]
pub(crate) struct Envelope {
    #[serde(deserialize_with = "code_text")]
    pub code: String,
    #[serde(default, deserialize_with = "lenient_bool")]
    pub success: bool,
    #[serde(default, deserialize_with = "lenient_text")]
    pub message: String,
    #[serde(default)]
    pub data: Value,
}

impl Envelope {
    /// `None` when the body is not JSON or not an InnoPaaS envelope.
    pub(crate) fn parse(body: &[u8]) -> Option<Self> {
        // serde reads a struct from an array too; an envelope is an object.
        match serde_json::from_slice(body).ok()? {
            v @ Value::Object(_) => serde_json::from_value(v).ok(),
            _ => None,
        }
    }

    /// `code == "0"` and `success == true`.
    pub(crate) fn is_success(&self) -> bool {
        self.code == "0" && self.success
    }

    /// The message id of a send answer: `data` as a string, or an object's `messageId`, `msgId`
    /// or `id` (PROVIDERS.md §2.2 assumption).
    pub(crate) fn message_id(&self) -> Option<String> {
        id_in(&self.data, &["messageId", "msgId", "id"])
    }

    /// The template id of a template/submit answer: `data` as a string, or an object's
    /// `templateId` or `id`.
    pub(crate) fn template_id(&self) -> Option<String> {
        id_in(&self.data, &["templateId", "id"])
    }
}

fn id_in(data: &Value, keys: &[&str]) -> Option<String> {
    let non_empty = |v: &Value| scalar_text(v).filter(|s| !s.is_empty());
    match data {
        Value::Object(fields) => keys.iter().find_map(|k| fields.get(*k).and_then(non_empty)),
        other => non_empty(other),
    }
}

/// A string as it is, a number in its decimal form; anything else is no id.
fn scalar_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.trim().to_owned()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn code_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    match Value::deserialize(d)? {
        Value::String(s) if !s.trim().is_empty() => Ok(s.trim().to_owned()),
        Value::Number(n) => Ok(n.to_string()),
        other => Err(serde::de::Error::custom(format!("code is {other}"))),
    }
}

fn lenient_bool<'de, D: Deserializer<'de>>(d: D) -> Result<bool, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Bool(b) => b,
        Value::String(s) => s.trim().eq_ignore_ascii_case("true"),
        _ => false,
    })
}

fn lenient_text<'de, D: Deserializer<'de>>(d: D) -> Result<String, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => String::new(),
        Value::String(s) => s,
        other => other.to_string(),
    })
}

fn lenient_opt_text<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    Ok(match Value::deserialize(d)? {
        Value::Null => None,
        Value::String(s) => Some(s),
        other => Some(other.to_string()),
    })
}

/// One `data[]` entry of phoneInfo.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct PhoneInfoEntry {
    #[serde(deserialize_with = "code_text")]
    pub id: String,
    #[serde(default, deserialize_with = "lenient_opt_text")]
    pub display_phone_number: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_text")]
    pub verified_name: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_text")]
    pub status: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_text")]
    pub quality_rating: Option<String>,
    #[serde(default, deserialize_with = "lenient_opt_text")]
    pub message_limit: Option<String>,
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn envelopes_are_read_leniently() {
        let e = Envelope::parse(br#"{"code":"0","success":true,"message":"Success","data":"m1"}"#).unwrap();
        assert!(e.is_success());
        assert_eq!(e.message_id().as_deref(), Some("m1"));
        let e = Envelope::parse(br#"{"code":102,"success":"false","message":null}"#).unwrap();
        assert_eq!((e.code.as_str(), e.success, e.message.as_str()), ("102", false, ""));
        let e = Envelope::parse(br#"{"code":"0","message":{"k":1}}"#).unwrap();
        assert!(!e.is_success(), "success must be stated");
        assert_eq!(e.message, r#"{"k":1}"#);
        assert!(Envelope::parse(b"<html></html>").is_none());
        assert!(Envelope::parse(br#"{"success":true}"#).is_none());
        assert!(Envelope::parse(br#"{"code":""}"#).is_none());
        assert!(Envelope::parse(br#"[{"code":"0"}]"#).is_none());
    }

    #[test]
    fn ids_come_from_a_string_or_an_object() {
        let id = |data: Value| Envelope { code: "0".into(), success: true, message: String::new(), data }.message_id();
        assert_eq!(id(json!("1778123456789")), Some("1778123456789".into()));
        assert_eq!(id(json!(1778123456789_u64)), Some("1778123456789".into()));
        assert_eq!(id(json!({"messageId": "a"})), Some("a".into()));
        assert_eq!(id(json!({"msgId": "b"})), Some("b".into()));
        assert_eq!(id(json!({"id": 7})), Some("7".into()));
        assert_eq!(id(json!({"messageId": "", "id": "c"})), Some("c".into()));
        assert_eq!(id(json!(" ")), None);
        assert_eq!(id(json!({})), None);
        assert_eq!(id(Value::Null), None);
        assert_eq!(id(json!(["a"])), None);
    }

    #[test]
    fn document_names_fall_back_to_the_link() {
        assert_eq!(filename_from_link("https://a.io/files/Invoice%20May.pdf?x=1"), "Invoice%20May.pdf");
        assert_eq!(filename_from_link("https://a.io/"), "document");
        assert_eq!(filename_from_link("not a url"), "document");
    }
}
