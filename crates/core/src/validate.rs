//! Content limits (PROVIDERS.md §3.2, §3.3), checked before anything is queued. Every problem is
//! reported with the JSON path of the field at fault.

use std::collections::{BTreeMap, HashSet};
use std::fmt;

use serde::Serialize;
use utoipa::ToSchema;

use crate::content::rcs::RcsContent;
use crate::content::viber::{Otp, ViberContent};
use crate::content::whatsapp::{
    CardAction, CardHeader, ComponentType, Contact, CtaUrlAction, Interactive, InteractiveHeader, Location,
    QuickReplyButton, ReplyButton, Template, TemplateComponent, TemplateParameter, WhatsAppContent,
};
use crate::content::{Media, TextObject};
use crate::message::Content;
use crate::request::{MAX_METADATA_KEY_CHARS, MAX_METADATA_PAIRS, MAX_METADATA_VALUE_CHARS};

/// WhatsApp limits. Sources: the INCS documents (Meta text) and Meta's reference.
pub mod limits {
    pub const WA_TEXT: usize = 4096;
    pub const WA_CAPTION: usize = 1024;
    pub const WA_HEADER_TEXT: usize = 60;
    pub const WA_FOOTER: usize = 60;
    pub const WA_BUTTON_BODY: usize = 1024;
    pub const WA_REPLY_BUTTONS: usize = 3;
    pub const WA_BUTTON_ID: usize = 256;
    pub const WA_BUTTON_TITLE: usize = 20;
    pub const WA_CTA_BODY: usize = 1024;
    pub const WA_CTA_LABEL: usize = 20;
    pub const WA_LIST_BODY: usize = 4096;
    pub const WA_LIST_BUTTON: usize = 20;
    pub const WA_LIST_SECTIONS: usize = 10;
    pub const WA_LIST_ROWS: usize = 10;
    pub const WA_SECTION_TITLE: usize = 24;
    pub const WA_ROW_ID: usize = 200;
    pub const WA_ROW_TITLE: usize = 24;
    pub const WA_ROW_DESCRIPTION: usize = 72;
    pub const WA_CAROUSEL_MIN_CARDS: usize = 2;
    pub const WA_CAROUSEL_MAX_CARDS: usize = 10;
    pub const WA_CAROUSEL_BODY: usize = 1024;
    pub const WA_CARD_BODY: usize = 160;
    /// Card bodies: "at most 2 lines" (INCS table), "2 line breaks" (Meta's English text).
    pub const WA_CARD_BODY_LINES: usize = 2;
    pub const WA_CARD_BODY_LINE_BREAKS: usize = 2;
    pub const WA_PRODUCT_BODY: usize = 1024;
    pub const WA_PRODUCT_ITEMS: usize = 30;
    pub const WA_TEMPLATE_NAME: usize = 512;
    pub const WA_AUTH_CODE: usize = 15;
    /// Template parameter text: Meta refuses newlines, tabs and more than 4 consecutive spaces
    /// (132012); body parameters are bounded by the 1024-character body, header parameters by
    /// the 60-character header ([`WA_HEADER_TEXT`]).
    pub const WA_TEMPLATE_PARAM: usize = 1024;
    pub const WA_TEMPLATE_MAX_SPACES: usize = 4;
    pub const VIBER_TEXT: usize = 1000;
    pub const VIBER_OTP_CODE: usize = 12;
    pub const VIBER_OTP_MAX_MINUTES: u32 = 1440;
    pub const RCS_TEXT: usize = 3072;
    pub const RCS_TEMPLATE_NAME: usize = 25;
    pub const URL: usize = 2048;
}
use limits::*;

/// A JSON path such as `interactive.action.buttons[3].reply.title`.
#[derive(Clone, PartialEq, Eq)]
pub struct Path(String);

impl Path {
    pub fn root() -> Self {
        Self(String::new())
    }

    pub fn key(&self, k: &str) -> Self {
        if self.0.is_empty() {
            Self(k.to_owned())
        } else {
            Self(format!("{}.{k}", self.0))
        }
    }

    pub fn index(&self, i: usize) -> Self {
        Self(format!("{}[{i}]", self.0))
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl fmt::Debug for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}", self.0)
    }
}

/// One problem with one field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, ToSchema)]
pub struct FieldError {
    /// JSON path of the field, e.g. `interactive.action.buttons[3].reply.title`.
    pub field: String,
    pub reason: String,
}

/// Every problem found in a request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldErrors(Vec<FieldError>);

impl FieldErrors {
    pub fn push(&mut self, field: Path, reason: impl Into<String>) {
        self.0.push(FieldError { field: field.0, reason: reason.into() });
    }

    pub fn single(field: &str, reason: impl Into<String>) -> Self {
        Self(vec![FieldError { field: field.to_owned(), reason: reason.into() }])
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn into_vec(self) -> Vec<FieldError> {
        self.0
    }

    pub fn as_slice(&self) -> &[FieldError] {
        &self.0
    }

    /// The same errors, each field path under `prefix` (`text` under `fallback[1]` becomes
    /// `fallback[1].text`).
    pub fn under(self, prefix: &Path) -> Self {
        Self(
            self.0
                .into_iter()
                .map(|e| FieldError { field: format!("{}.{}", prefix.0, e.field), reason: e.reason })
                .collect(),
        )
    }

    /// The same errors but those on `field`.
    pub fn without(self, field: &str) -> Self {
        Self(self.0.into_iter().filter(|e| e.field != field).collect())
    }

    /// Adds every error of `other`.
    pub fn extend(&mut self, other: FieldErrors) {
        self.0.extend(other.0);
    }

    /// Moves the errors reported on `from` to `to`: the request knows the shape the caller used
    /// (`"text": {"body": …}`), the content validated from it does not.
    pub(crate) fn rename(&mut self, from: &str, to: &str) {
        for e in self.0.iter_mut().filter(|e| e.field == from) {
            e.field = to.to_owned();
        }
    }
}

impl fmt::Display for FieldErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let parts: Vec<String> = self.0.iter().map(|e| format!("{}: {}", e.field, e.reason)).collect();
        f.write_str(&parts.join("; "))
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

fn text(s: &str, max: usize, path: Path, errors: &mut FieldErrors) {
    if s.trim().is_empty() {
        errors.push(path, "must not be empty");
    } else if chars(s) > max {
        errors.push(path, format!("at most {max} characters, got {}", chars(s)));
    }
}

fn opt_text(s: &Option<String>, max: usize, path: Path, errors: &mut FieldErrors) {
    if let Some(s) = s {
        text(s, max, path, errors);
    }
}

fn url(s: &str, path: Path, errors: &mut FieldErrors) {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some() => {
            if s.len() > URL {
                errors.push(path, format!("at most {URL} characters"));
            }
        }
        _ => errors.push(path, "must be an absolute http(s) URL"),
    }
}

/// The extension of the URL's last path segment, lowercased, if it has one.
fn extension(link: &str) -> Option<String> {
    let parsed = url::Url::parse(link).ok()?;
    let segment = parsed.path_segments()?.next_back()?.to_owned();
    let (_, ext) = segment.rsplit_once('.')?;
    (!ext.is_empty()).then(|| ext.to_ascii_lowercase())
}

/// The media rules of one channel and content type.
struct MediaRule {
    what: &'static str,
    /// Allowed file extensions. A URL whose path has no extension is let through: many CDNs
    /// serve by id, and the provider checks the real content type.
    extensions: &'static [&'static str],
    caption: bool,
    filename: bool,
}

const WA_IMAGE: MediaRule =
    MediaRule { what: "WhatsApp images", extensions: &["jpeg", "jpg", "png"], caption: true, filename: false };
const WA_VIDEO: MediaRule =
    MediaRule { what: "WhatsApp videos", extensions: &["mp4", "3gp"], caption: true, filename: false };
const WA_AUDIO: MediaRule = MediaRule {
    what: "WhatsApp audio",
    extensions: &["aac", "amr", "mp3", "m4a", "ogg"],
    caption: false,
    filename: false,
};
const WA_DOCUMENT: MediaRule = MediaRule {
    what: "WhatsApp documents",
    extensions: &["txt", "xls", "xlsx", "doc", "docx", "ppt", "pptx", "pdf"],
    caption: true,
    filename: true,
};
const WA_STICKER: MediaRule =
    MediaRule { what: "WhatsApp stickers", extensions: &["webp"], caption: false, filename: false };
const VIBER_IMAGE: MediaRule =
    MediaRule { what: "Viber images", extensions: &["png", "jpeg", "jpg", "gif"], caption: false, filename: false };
const VIBER_VIDEO: MediaRule =
    MediaRule { what: "Viber videos", extensions: &["mp4"], caption: false, filename: false };
const VIBER_DOCUMENT: MediaRule = MediaRule {
    what: "Viber documents",
    extensions: &["doc", "docx", "xls", "xlsx", "csv", "pdf"],
    caption: false,
    filename: false,
};
const RCS_IMAGE: MediaRule =
    MediaRule { what: "RCS images", extensions: &["jpeg", "jpg", "png", "gif"], caption: false, filename: false };
const RCS_VIDEO: MediaRule = MediaRule {
    what: "RCS videos",
    extensions: &["mp4", "m4v", "mpeg", "webm", "3gp", "h263"],
    caption: false,
    filename: false,
};
const RCS_DOCUMENT: MediaRule =
    MediaRule { what: "RCS documents", extensions: &["pdf"], caption: false, filename: false };

/// The file extensions a channel's media of a type may have, and whether it takes a caption and
/// a file name (for the API document).
pub fn media_rule(
    channel: crate::Channel,
    kind: crate::content::ContentType,
) -> Option<(&'static [&'static str], bool, bool)> {
    use crate::content::ContentType as T;
    use crate::Channel as C;
    let rule = match (channel, kind) {
        (C::Whatsapp, T::Image) => &WA_IMAGE,
        (C::Whatsapp, T::Video) => &WA_VIDEO,
        (C::Whatsapp, T::Audio) => &WA_AUDIO,
        (C::Whatsapp, T::Document) => &WA_DOCUMENT,
        (C::Whatsapp, T::Sticker) => &WA_STICKER,
        (C::Viber, T::Image) => &VIBER_IMAGE,
        (C::Viber, T::Video) => &VIBER_VIDEO,
        (C::Viber, T::Document) => &VIBER_DOCUMENT,
        (C::Rcs, T::Image) => &RCS_IMAGE,
        (C::Rcs, T::Video) => &RCS_VIDEO,
        (C::Rcs, T::Document) => &RCS_DOCUMENT,
        _ => return None,
    };
    Some((rule.extensions, rule.caption, rule.filename))
}

fn media(m: &Media, rule: &MediaRule, path: &Path, errors: &mut FieldErrors) {
    url(&m.link, path.key("link"), errors);
    if let Some(ext) = extension(&m.link) {
        if !rule.extensions.contains(&ext.as_str()) {
            errors.push(
                path.key("link"),
                format!("{} must be one of: {} (got .{ext})", rule.what, rule.extensions.join(", ")),
            );
        }
    }
    match (&m.caption, rule.caption) {
        (Some(_), false) => errors.push(path.key("caption"), format!("{} take no caption", rule.what)),
        (Some(c), true) => text(c, WA_CAPTION, path.key("caption"), errors),
        _ => {}
    }
    match (&m.filename, rule.filename) {
        (Some(_), false) => errors.push(path.key("filename"), format!("{} take no filename", rule.what)),
        (Some(f), true) => text(f, 240, path.key("filename"), errors),
        _ => {}
    }
}

pub(crate) fn metadata(m: &BTreeMap<String, String>, path: &Path, errors: &mut FieldErrors) {
    if m.len() > MAX_METADATA_PAIRS {
        errors.push(path.clone(), format!("at most {MAX_METADATA_PAIRS} pairs, got {}", m.len()));
    }
    for (k, v) in m {
        if k.is_empty() || chars(k) > MAX_METADATA_KEY_CHARS {
            // An empty key has no path of its own (`metadata.` names nothing): report the map.
            let at = if k.is_empty() { path.clone() } else { path.key(k) };
            errors.push(at, format!("keys must have 1 to {MAX_METADATA_KEY_CHARS} characters"));
        }
        if chars(v) > MAX_METADATA_VALUE_CHARS {
            errors.push(path.key(k), format!("at most {MAX_METADATA_VALUE_CHARS} characters"));
        }
    }
}

/// Validates message content against its channel's limits.
pub fn content(c: &Content, root: &Path, errors: &mut FieldErrors) {
    match c {
        Content::Whatsapp(w) => whatsapp(w, root, errors),
        Content::Viber(v) => viber(v, root, errors),
        Content::Rcs(r) => rcs(r, root, errors),
    }
}

fn whatsapp(c: &WhatsAppContent, root: &Path, errors: &mut FieldErrors) {
    match c {
        WhatsAppContent::Text(t) => text(&t.body, WA_TEXT, root.key("text"), errors),
        WhatsAppContent::Image(m) => media(m, &WA_IMAGE, &root.key("image"), errors),
        WhatsAppContent::Video(m) => media(m, &WA_VIDEO, &root.key("video"), errors),
        WhatsAppContent::Audio(m) => media(m, &WA_AUDIO, &root.key("audio"), errors),
        WhatsAppContent::Document(m) => media(m, &WA_DOCUMENT, &root.key("document"), errors),
        WhatsAppContent::Sticker(m) => media(m, &WA_STICKER, &root.key("sticker"), errors),
        WhatsAppContent::Location(l) => location(l, &root.key("location"), errors),
        WhatsAppContent::Contacts(cs) => contacts(cs, &root.key("contacts"), errors),
        WhatsAppContent::Template(t) => template(t, &root.key("template"), errors),
        WhatsAppContent::AuthTemplate(t) => {
            let p = root.key("template");
            template_name(&t.name, &p.key("name"), errors);
            opt_language(&t.language, &p.key("language"), errors);
            text(&t.code, WA_AUTH_CODE, p.key("code"), errors);
        }
        WhatsAppContent::Interactive(i) => interactive(i, &root.key("interactive"), errors),
    }
}

fn location(l: &Location, p: &Path, errors: &mut FieldErrors) {
    if !(-90.0..=90.0).contains(&l.latitude) {
        errors.push(p.key("latitude"), "must be between -90 and 90");
    }
    if !(-180.0..=180.0).contains(&l.longitude) {
        errors.push(p.key("longitude"), "must be between -180 and 180");
    }
    opt_text(&l.name, 1000, p.key("name"), errors);
    opt_text(&l.address, 1000, p.key("address"), errors);
}

fn contacts(cs: &[Contact], p: &Path, errors: &mut FieldErrors) {
    if cs.is_empty() {
        errors.push(p.clone(), "at least one contact");
    }
    for (i, c) in cs.iter().enumerate() {
        let cp = p.index(i);
        text(&c.name.formatted_name, 1000, cp.key("name").key("formatted_name"), errors);
        for (j, ph) in c.phones.iter().enumerate() {
            text(&ph.phone, 64, cp.key("phones").index(j).key("phone"), errors);
        }
        for (j, u) in c.urls.iter().enumerate() {
            url(&u.url, cp.key("urls").index(j).key("url"), errors);
        }
    }
}

fn template_name(name: &str, p: &Path, errors: &mut FieldErrors) {
    text(name, WA_TEMPLATE_NAME, p.clone(), errors);
    if !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        errors.push(p.clone(), "template names have lowercase letters, digits and underscores only");
    }
}

/// A language code as Meta and Viber write them: `en`, `fil`, `en_US`, `zh_HK`, `sr_Latn`: two or
/// three letters, then optionally `_` and a region or script of two to four letters. Anything
/// else (`__`, `en-US`, `english`) would fail at the provider, so it fails here.
pub(crate) fn is_language_code(code: &str) -> bool {
    let letters =
        |s: &str, min: usize, max: usize| (min..=max).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphabetic());
    match code.split_once('_') {
        Some((language, region)) => letters(language, 2, 3) && letters(region, 2, 4),
        None => letters(code, 2, 3),
    }
}

fn opt_language(lang: &Option<String>, p: &Path, errors: &mut FieldErrors) {
    if let Some(l) = lang {
        if !is_language_code(l) {
            errors.push(p.clone(), "a language code such as `en` or `en_US`");
        }
    }
}

fn template(t: &Template, p: &Path, errors: &mut FieldErrors) {
    template_name(&t.name, &p.key("name"), errors);
    opt_language(&t.language, &p.key("language"), errors);
    let mut seen_header = false;
    let mut seen_body = false;
    let mut button_indexes = HashSet::new();
    for (i, comp) in t.components.iter().enumerate() {
        let cp = p.key("components").index(i);
        component(comp, &cp, errors);
        match comp.kind {
            ComponentType::Header if std::mem::replace(&mut seen_header, true) => {
                errors.push(cp.key("type"), "only one header component")
            }
            ComponentType::Body if std::mem::replace(&mut seen_body, true) => {
                errors.push(cp.key("type"), "only one body component")
            }
            ComponentType::Button => {
                if let Some(idx) = &comp.index {
                    if !button_indexes.insert(idx.clone()) {
                        errors.push(cp.key("index"), format!("button index {idx} given twice"));
                    }
                }
            }
            _ => {}
        }
    }
}

const BUTTON_SUB_TYPES: [&str; 5] = ["quick_reply", "url", "copy_code", "flow", "catalog"];

fn component(c: &TemplateComponent, p: &Path, errors: &mut FieldErrors) {
    match c.kind {
        ComponentType::Button => {
            match &c.sub_type {
                None => errors.push(p.key("sub_type"), "required for button components"),
                Some(s) if !BUTTON_SUB_TYPES.contains(&s.to_ascii_lowercase().as_str()) => {
                    errors.push(p.key("sub_type"), format!("one of: {}", BUTTON_SUB_TYPES.join(", ")))
                }
                _ => {}
            }
            match &c.index {
                None => errors.push(p.key("index"), "required for button components"),
                Some(i) if i.parse::<u8>().map_or(true, |n| n > 9) => {
                    errors.push(p.key("index"), "a button position from 0 to 9")
                }
                _ => {}
            }
        }
        ComponentType::Header | ComponentType::Body => {
            if c.sub_type.is_some() {
                errors.push(p.key("sub_type"), "only button components have a sub_type");
            }
            if c.index.is_some() {
                errors.push(p.key("index"), "only button components have an index");
            }
        }
    }
    if c.kind == ComponentType::Header && c.parameters.len() > 1 {
        errors.push(p.key("parameters"), "a header takes one parameter");
    }
    for (i, param) in c.parameters.iter().enumerate() {
        let pp = p.key("parameters").index(i);
        match (c.kind, param) {
            // The header's text holds at most 60 characters, so its one parameter can hold no more.
            (ComponentType::Header, TemplateParameter::Text { text: s, .. }) => {
                template_text(s, WA_HEADER_TEXT, &pp.key("text"), errors)
            }
            (_, TemplateParameter::Text { text: s, .. }) => {
                template_text(s, WA_TEMPLATE_PARAM, &pp.key("text"), errors)
            }
            (ComponentType::Header, TemplateParameter::Image { image: m }) => {
                media(m, &WA_IMAGE, &pp.key("image"), errors)
            }
            (ComponentType::Header, TemplateParameter::Video { video: m }) => {
                media(m, &WA_VIDEO, &pp.key("video"), errors)
            }
            (ComponentType::Header, TemplateParameter::Document { document: m }) => {
                media(m, &WA_DOCUMENT, &pp.key("document"), errors)
            }
            (ComponentType::Button, TemplateParameter::CouponCode { coupon_code }) => {
                text(coupon_code, WA_AUTH_CODE, pp.key("coupon_code"), errors)
            }
            (ComponentType::Button, TemplateParameter::Payload { payload }) => {
                text(payload, WA_BUTTON_ID, pp.key("payload"), errors)
            }
            (ComponentType::Body, TemplateParameter::Currency { currency }) => {
                text(&currency.fallback_value, WA_TEMPLATE_PARAM, pp.key("currency").key("fallback_value"), errors)
            }
            (ComponentType::Body, TemplateParameter::DateTime { date_time }) => {
                text(&date_time.fallback_value, WA_TEMPLATE_PARAM, pp.key("date_time").key("fallback_value"), errors)
            }
            (kind, _) => errors.push(
                pp.key("type"),
                format!("this parameter type is not allowed in a {kind:?} component").to_lowercase(),
            ),
        }
    }
}

/// Meta refuses template parameters with newlines, tabs or more than four consecutive spaces
/// (error 132012): better a 422 now than a failed message later.
fn template_text(s: &str, max: usize, p: &Path, errors: &mut FieldErrors) {
    text(s, max, p.clone(), errors);
    if s.contains(['\n', '\r', '\t']) {
        errors.push(p.clone(), "template parameters may not contain newlines or tabs");
    }
    if s.contains(&" ".repeat(WA_TEMPLATE_MAX_SPACES + 1)) {
        errors.push(
            p.clone(),
            format!("template parameters may not contain more than {WA_TEMPLATE_MAX_SPACES} consecutive spaces"),
        );
    }
}

fn body(b: &TextObject, max: usize, p: &Path, errors: &mut FieldErrors) {
    text(&b.text, max, p.key("text"), errors);
}

fn footer(f: &Option<TextObject>, p: &Path, errors: &mut FieldErrors) {
    if let Some(f) = f {
        text(&f.text, WA_FOOTER, p.key("text"), errors);
    }
}

fn header(h: &InteractiveHeader, p: &Path, errors: &mut FieldErrors) {
    match h {
        InteractiveHeader::Text { text: s } => text(s, WA_HEADER_TEXT, p.key("text"), errors),
        InteractiveHeader::Image { image } => media(image, &WA_IMAGE, &p.key("image"), errors),
        InteractiveHeader::Video { video } => media(video, &WA_VIDEO, &p.key("video"), errors),
        InteractiveHeader::Document { document } => media(document, &WA_DOCUMENT, &p.key("document"), errors),
    }
}

fn cta_url(a: &CtaUrlAction, p: &Path, errors: &mut FieldErrors) {
    if a.name != "cta_url" {
        errors.push(p.key("name"), "must be `cta_url`");
    }
    text(&a.parameters.display_text, WA_CTA_LABEL, p.key("parameters").key("display_text"), errors);
    url(&a.parameters.url, p.key("parameters").key("url"), errors);
}

/// Reply buttons: ids and titles within limits, titles unique (Meta refuses duplicates), ids
/// unique (the reply webhook could not tell them apart).
fn reply_ids_titles<'a>(buttons: impl Iterator<Item = (&'a str, &'a str, Path)>, errors: &mut FieldErrors) {
    let mut ids = HashSet::new();
    let mut titles = HashSet::new();
    for (id, title, bp) in buttons {
        text(id, WA_BUTTON_ID, bp.key("id"), errors);
        text(title, WA_BUTTON_TITLE, bp.key("title"), errors);
        if !ids.insert(id) {
            errors.push(bp.key("id"), format!("duplicate button id `{id}`"));
        }
        if !titles.insert(title.trim().to_lowercase()) {
            errors.push(bp.key("title"), format!("duplicate button title `{title}`"));
        }
    }
}

fn interactive(i: &Interactive, p: &Path, errors: &mut FieldErrors) {
    match i {
        Interactive::CtaUrl { header: h, body: b, footer: f, action } => {
            if let Some(h) = h {
                header(h, &p.key("header"), errors);
            }
            body(b, WA_CTA_BODY, &p.key("body"), errors);
            footer(f, &p.key("footer"), errors);
            cta_url(action, &p.key("action"), errors);
        }
        Interactive::Button { header: h, body: b, footer: f, action } => {
            if let Some(h) = h {
                header(h, &p.key("header"), errors);
            }
            body(b, WA_BUTTON_BODY, &p.key("body"), errors);
            footer(f, &p.key("footer"), errors);
            let bp = p.key("action").key("buttons");
            if action.buttons.is_empty() || action.buttons.len() > WA_REPLY_BUTTONS {
                errors.push(bp.clone(), format!("1 to {WA_REPLY_BUTTONS} buttons, got {}", action.buttons.len()));
            }
            reply_ids_titles(
                action.buttons.iter().enumerate().map(|(n, ReplyButton::Reply { reply })| {
                    (reply.id.as_str(), reply.title.as_str(), bp.index(n).key("reply"))
                }),
                errors,
            );
        }
        Interactive::List { header: h, body: b, footer: f, action } => {
            match h {
                Some(InteractiveHeader::Text { text: s }) => {
                    text(s, WA_HEADER_TEXT, p.key("header").key("text"), errors)
                }
                Some(_) => errors.push(p.key("header").key("type"), "list messages take a text header only"),
                None => {}
            }
            body(b, WA_LIST_BODY, &p.key("body"), errors);
            footer(f, &p.key("footer"), errors);
            let ap = p.key("action");
            text(&action.button, WA_LIST_BUTTON, ap.key("button"), errors);
            let sp = ap.key("sections");
            if action.sections.is_empty() || action.sections.len() > WA_LIST_SECTIONS {
                errors.push(sp.clone(), format!("1 to {WA_LIST_SECTIONS} sections, got {}", action.sections.len()));
            }
            let total_rows: usize = action.sections.iter().map(|s| s.rows.len()).sum();
            if total_rows == 0 || total_rows > WA_LIST_ROWS {
                errors.push(sp.clone(), format!("1 to {WA_LIST_ROWS} rows in all sections together, got {total_rows}"));
            }
            let mut row_ids = HashSet::new();
            for (si, s) in action.sections.iter().enumerate() {
                let sip = sp.index(si);
                match &s.title {
                    Some(t) => text(t, WA_SECTION_TITLE, sip.key("title"), errors),
                    None if action.sections.len() > 1 => {
                        errors.push(sip.key("title"), "required when there is more than one section")
                    }
                    None => {}
                }
                if s.rows.is_empty() {
                    errors.push(sip.key("rows"), "at least one row");
                }
                for (ri, r) in s.rows.iter().enumerate() {
                    let rp = sip.key("rows").index(ri);
                    text(&r.id, WA_ROW_ID, rp.key("id"), errors);
                    text(&r.title, WA_ROW_TITLE, rp.key("title"), errors);
                    opt_text(&r.description, WA_ROW_DESCRIPTION, rp.key("description"), errors);
                    if !row_ids.insert(r.id.as_str()) {
                        errors.push(rp.key("id"), format!("duplicate row id `{}`", r.id));
                    }
                }
            }
        }
        Interactive::Carousel { body: b, action } => carousel(b, action, p, errors),
        Interactive::Product { body: b, footer: f, action } => {
            if let Some(b) = b {
                body(b, WA_PRODUCT_BODY, &p.key("body"), errors);
            }
            footer(f, &p.key("footer"), errors);
            text(&action.catalog_id, 128, p.key("action").key("catalog_id"), errors);
            text(&action.product_retailer_id, 128, p.key("action").key("product_retailer_id"), errors);
        }
        Interactive::ProductList { header: h, body: b, footer: f, action } => {
            match h {
                InteractiveHeader::Text { text: s } => text(s, WA_HEADER_TEXT, p.key("header").key("text"), errors),
                _ => errors.push(p.key("header").key("type"), "product lists take a text header only"),
            }
            body(b, WA_PRODUCT_BODY, &p.key("body"), errors);
            footer(f, &p.key("footer"), errors);
            let ap = p.key("action");
            text(&action.catalog_id, 128, ap.key("catalog_id"), errors);
            let sp = ap.key("sections");
            if action.sections.is_empty() || action.sections.len() > WA_LIST_SECTIONS {
                errors.push(sp.clone(), format!("1 to {WA_LIST_SECTIONS} sections, got {}", action.sections.len()));
            }
            let items: usize = action.sections.iter().map(|s| s.product_items.len()).sum();
            if items == 0 || items > WA_PRODUCT_ITEMS {
                errors.push(sp.clone(), format!("1 to {WA_PRODUCT_ITEMS} products in all, got {items}"));
            }
            for (si, s) in action.sections.iter().enumerate() {
                opt_text(&s.title, WA_SECTION_TITLE, sp.index(si).key("title"), errors);
                for (ii, item) in s.product_items.iter().enumerate() {
                    let ip = sp.index(si).key("product_items").index(ii).key("product_retailer_id");
                    text(&item.product_retailer_id, 128, ip, errors);
                }
            }
        }
    }
}

fn carousel(b: &TextObject, action: &crate::content::whatsapp::CarouselAction, p: &Path, errors: &mut FieldErrors) {
    body(b, WA_CAROUSEL_BODY, &p.key("body"), errors);
    let cp = p.key("action").key("cards");
    let n = action.cards.len();
    if !(WA_CAROUSEL_MIN_CARDS..=WA_CAROUSEL_MAX_CARDS).contains(&n) {
        errors.push(cp.clone(), format!("{WA_CAROUSEL_MIN_CARDS} to {WA_CAROUSEL_MAX_CARDS} cards, got {n}"));
    }
    // Every card must have the same kind and number of buttons (Meta rule).
    let shape = |a: &CardAction| match a {
        CardAction::CtaUrl(_) => ("a URL button", 1),
        CardAction::QuickReplies(q) => ("quick-reply buttons", q.buttons.len()),
    };
    let first = action.cards.first().map(|c| shape(&c.action));
    let mut indexes = HashSet::new();
    for (i, card) in action.cards.iter().enumerate() {
        let kp = cp.index(i);
        if card.card_index as usize >= n || !indexes.insert(card.card_index) {
            errors.push(
                kp.key("card_index"),
                format!("card indexes must be 0 to {} and each used once", n.saturating_sub(1)),
            );
        }
        match &card.header {
            CardHeader::Image { image } => media(image, &WA_IMAGE, &kp.key("header").key("image"), errors),
            CardHeader::Video { video } => media(video, &WA_VIDEO, &kp.key("header").key("video"), errors),
        }
        if let Some(cb) = &card.body {
            let bp = kp.key("body").key("text");
            text(&cb.text, WA_CARD_BODY, bp.clone(), errors);
            // The documents' own example, "*Blue Echeveria*\n\nA rosette…", has two breaks around
            // a blank line: blank lines are spacing, not lines of text. Both readings of the limit
            // ("2 lines", "2 line breaks") hold for it, so both are enforced.
            let breaks = cb.text.matches('\n').count();
            let lines = cb.text.lines().filter(|l| !l.trim().is_empty()).count();
            if lines > WA_CARD_BODY_LINES || breaks > WA_CARD_BODY_LINE_BREAKS {
                errors.push(
                    bp,
                    format!(
                        "at most {WA_CARD_BODY_LINES} lines of text and {WA_CARD_BODY_LINE_BREAKS} line breaks, got {lines} lines and {breaks} breaks"
                    ),
                );
            }
        }
        let ap = kp.key("action");
        match &card.action {
            CardAction::CtaUrl(a) => cta_url(a, &ap, errors),
            CardAction::QuickReplies(q) => {
                let bp = ap.key("buttons");
                if q.buttons.is_empty() || q.buttons.len() > 2 {
                    errors.push(bp.clone(), format!("1 or 2 quick-reply buttons, got {}", q.buttons.len()));
                }
                reply_ids_titles(
                    q.buttons.iter().enumerate().map(|(n, QuickReplyButton::QuickReply { quick_reply })| {
                        (quick_reply.id.as_str(), quick_reply.title.as_str(), bp.index(n).key("quick_reply"))
                    }),
                    errors,
                );
            }
        }
        if let Some((kind, count)) = first {
            if shape(&card.action) != (kind, count) {
                errors.push(ap, format!("every card must have the same buttons as the first ({count} {kind})"));
            }
        }
    }
}

fn viber(c: &ViberContent, root: &Path, errors: &mut FieldErrors) {
    match c {
        ViberContent::Otp(o) => otp(o, &root.key("otp"), errors),
        ViberContent::Text(t) => text(t, VIBER_TEXT, root.key("text"), errors),
        ViberContent::Image(m) => media(m, &VIBER_IMAGE, &root.key("image"), errors),
        ViberContent::Video(m) => media(m, &VIBER_VIDEO, &root.key("video"), errors),
        ViberContent::Document(m) => media(m, &VIBER_DOCUMENT, &root.key("document"), errors),
    }
}

fn otp(o: &Otp, p: &Path, errors: &mut FieldErrors) {
    text(&o.code, VIBER_OTP_CODE, p.key("code"), errors);
    if !o.code.bytes().all(|b| b.is_ascii_alphanumeric()) {
        errors.push(p.key("code"), "letters and digits only");
    }
    opt_language(&Some(o.language.clone()), &p.key("language"), errors);
    if !(1..=VIBER_OTP_MAX_MINUTES).contains(&o.code_expiration_minutes) {
        errors.push(p.key("code_expiration_minutes"), format!("1 to {VIBER_OTP_MAX_MINUTES} minutes"));
    }
}

fn rcs(c: &RcsContent, root: &Path, errors: &mut FieldErrors) {
    match c {
        RcsContent::Template(t) => {
            let p = root.key("template");
            text(&t.name, RCS_TEMPLATE_NAME, p.key("name"), errors);
            if !t.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                errors.push(p.key("name"), "RCS template names have letters, digits and underscores only");
            }
            for (k, v) in t.parameters.iter().flatten() {
                if k.is_empty() {
                    errors.push(p.key("parameters"), "parameter names must not be empty");
                }
                if v.trim().is_empty() {
                    errors.push(p.key("parameters").key(k), "must not be empty");
                } else if chars(v) > RCS_TEXT {
                    errors.push(p.key("parameters").key(k), format!("at most {RCS_TEXT} characters"));
                }
            }
        }
        RcsContent::Text(t) => text(t, RCS_TEXT, root.key("text"), errors),
        RcsContent::Image(m) => media(m, &RCS_IMAGE, &root.key("image"), errors),
        RcsContent::Video(m) => media(m, &RCS_VIDEO, &root.key("video"), errors),
        RcsContent::Document(m) => media(m, &RCS_DOCUMENT, &root.key("document"), errors),
    }
}

#[cfg(test)]
mod tests;
