//! Template drafts: what a caller submits to have a provider create a message template, and the
//! rules checked before any provider sees it.
//!
//! - [`WhatsAppTemplateDraft`] is a Meta template (`name`, `language`, `category`, `components`) in
//!   the Cloud API's shape, which is also what INCS takes at `POST /external/templates`
//!   (PROVIDERS.md §1.6). InnoPaaS (`template/submit`, §2.4) gets it mapped to its own fields.
//! - [`RcsTemplateDraft`] is an INCS RCS template (`name`, `type`, `category`, `content`, §1.7).
//!
//! Validation reports every problem with the JSON path of the field at fault, relative to the
//! draft (`components[2].buttons[0].text`), so the API can answer 422 naming it.
//!
//! # Decisions where the documents are silent
//! - **Categories.** INCS documents `MARKETING` and `UTILITY` only, so an `AUTHENTICATION` draft is
//!   refused for INCS and accepted for InnoPaaS, whose `template/submit` has a number for it.
//! - **Placeholders.** Meta's rules: body placeholders are `{{1}}` to `{{n}}`, each number used,
//!   none skipped (a number may repeat), and `example.body_text` holds one row of exactly `n`
//!   values; a text header has at most one, `{{1}}`, with one `example.header_text`; footers have
//!   none; a URL button may end in `{{1}}`, with a full example URL. An example without a
//!   placeholder is refused (Meta refuses it too). Example values may be numbers, as in INCS's own
//!   example (`"body_text": [[1, 2]]`); they are kept as text.
//! - **Media headers** need one sample (`example.header_handle`): Meta refuses media headers
//!   without one. InnoPaaS receives it as `caption`.
//! - **Buttons** (Meta's limits): at most 10, at most 2 `URL` and 1 `PHONE_NUMBER`; `text` at most
//!   25 characters (required except on `COPY_CODE` and `OTP`, whose label WhatsApp sets); `url` an
//!   absolute http(s) URL of at most 2000 characters; `phone_number` digits with an optional
//!   leading `+`, 8 to 20 characters; a `COPY_CODE` example at most 15 characters; `OTP` buttons
//!   only in `AUTHENTICATION` templates, which take no other kind, and `ONE_TAP` needs
//!   `package_name` and `signature_hash`.
//! - **Authentication templates** may leave the body text out (WhatsApp supplies it) and use
//!   `add_security_recommendation` on the body and `code_expiration_minutes` (1 to 90) on the
//!   footer, Meta's fields for them.
//! - **RCS.** A carousel has 2 to 10 cards (INCS: "at least two"). A card needs a title, a
//!   description or media. A suggestion needs `text` and `postbackData` (INCS: "required if a
//!   suggestion is used"); `url_action` needs a `url`, `dialer_action` a `phoneNumber` (`+` and 8 to
//!   15 digits). `orientation` (`VERTICAL`, `HORIZONTAL`), `height` (`SHORT`, `MEDIUM`, `TALL`) and
//!   `width` (`SMALL`, `MEDIUM`) take RBM's values, in any case, and go out as given.

use std::collections::BTreeSet;

use serde::{Deserialize, Deserializer, Serialize};
use utoipa::ToSchema;

use crate::content::whatsapp::TemplateCategory;
use crate::provider::ProviderKind;
use crate::validate::{is_language_code, FieldErrors, Path};

/// Template limits (PROVIDERS.md §1.6, §1.7, §2.4 and Meta's template rules).
pub mod limits {
    pub const WA_NAME_INCS: usize = 100;
    pub const WA_NAME_INNOPAAS: usize = 512;
    pub const WA_HEADER_TEXT: usize = 60;
    pub const WA_BODY: usize = 1024;
    pub const WA_FOOTER: usize = 60;
    pub const WA_BUTTONS: usize = 10;
    pub const WA_URL_BUTTONS: usize = 2;
    pub const WA_PHONE_BUTTONS: usize = 1;
    pub const WA_BUTTON_TEXT: usize = 25;
    pub const WA_BUTTON_URL: usize = 2000;
    pub const WA_PHONE_MIN: usize = 8;
    pub const WA_PHONE_MAX: usize = 20;
    pub const WA_COUPON_CODE: usize = 15;
    pub const WA_CODE_EXPIRATION_MAX: u32 = 90;
    pub const RCS_NAME: usize = 25;
    pub const RCS_TEXT: usize = 2500;
    pub const RCS_TEXT_SUGGESTIONS: usize = 11;
    pub const RCS_CARD_TITLE: usize = 200;
    pub const RCS_CARD_DESCRIPTION: usize = 2000;
    pub const RCS_CARD_SUGGESTIONS: usize = 4;
    pub const RCS_CAROUSEL_MIN: usize = 2;
    pub const RCS_CAROUSEL_MAX: usize = 10;
    pub const RCS_SUGGESTION_TEXT: usize = 25;
    pub const RCS_POSTBACK_DATA: usize = 120;
    pub const URL: usize = 2048;
}
use limits::*;

/// Whole seconds, as providers stamp their times.
pub fn to_seconds(at: chrono::DateTime<chrono::Utc>) -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp(at.timestamp(), 0).unwrap_or(at)
}

/// What one provider accepts in a WhatsApp template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TemplateLimits {
    pub provider: ProviderKind,
    /// Longest template name.
    pub max_name: usize,
    /// The categories the provider creates.
    pub categories: &'static [WhatsAppCategory],
}

impl TemplateLimits {
    pub const INCS: Self = Self {
        provider: ProviderKind::Incs,
        max_name: WA_NAME_INCS,
        categories: &[WhatsAppCategory::Marketing, WhatsAppCategory::Utility],
    };
    pub const INNOPAAS: Self = Self {
        provider: ProviderKind::Innopaas,
        max_name: WA_NAME_INNOPAAS,
        categories: &[WhatsAppCategory::Marketing, WhatsAppCategory::Utility, WhatsAppCategory::Authentication],
    };
}

// ---------------------------------------------------------------------------------------------
// WhatsApp

/// A WhatsApp template to create, in Meta's shape.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "test_api_2",
    "language": "en_US",
    "category": "MARKETING",
    "components": [
        {"type": "BODY", "text": "A API test template, first variable: {{1}}, second variable: {{2}}",
         "example": {"body_text": [["1", "2"]]}},
        {"type": "FOOTER", "text": "Good night"}
    ]
}))]
pub struct WhatsAppTemplateDraft {
    /// Lowercase letters, digits and `_`; at most 100 characters (INCS) or 512 (InnoPaaS).
    #[schema(example = "order_update_1")]
    pub name: String,
    /// A language code such as `en` or `en_US`.
    #[schema(example = "en_US")]
    pub language: String,
    pub category: WhatsAppCategory,
    /// One `BODY`, and at most one each of `HEADER`, `FOOTER` and `BUTTONS`.
    #[serde(default)]
    pub components: Vec<DraftComponent>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum WhatsAppCategory {
    #[serde(alias = "marketing")]
    Marketing,
    #[serde(alias = "utility")]
    Utility,
    #[serde(alias = "authentication")]
    Authentication,
}

impl WhatsAppCategory {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Marketing => "MARKETING",
            Self::Utility => "UTILITY",
            Self::Authentication => "AUTHENTICATION",
        }
    }
}

impl From<WhatsAppCategory> for TemplateCategory {
    fn from(c: WhatsAppCategory) -> Self {
        match c {
            WhatsAppCategory::Marketing => Self::Marketing,
            WhatsAppCategory::Utility => Self::Utility,
            WhatsAppCategory::Authentication => Self::Authentication,
        }
    }
}

/// One template component. Which fields apply depends on `type`: `HEADER` {`format`, `text`,
/// `example.header_text` | `example.header_handle`}, `BODY` {`text`, `example.body_text`,
/// `add_security_recommendation`}, `FOOTER` {`text`, `code_expiration_minutes`}, `BUTTONS`
/// {`buttons`}. A field that does not apply is refused.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftComponent {
    #[serde(rename = "type")]
    pub kind: DraftComponentType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub format: Option<HeaderFormat>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<DraftExample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub buttons: Option<Vec<DraftButton>>,
    /// `BODY` of an `AUTHENTICATION` template: add WhatsApp's "do not share this code" line.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_security_recommendation: Option<bool>,
    /// `FOOTER` of an `AUTHENTICATION` template: "this code expires in N minutes" (1 to 90).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_expiration_minutes: Option<u32>,
}

impl DraftComponent {
    /// A component of this type with no fields set.
    pub fn new(kind: DraftComponentType) -> Self {
        Self {
            kind,
            format: None,
            text: None,
            example: None,
            buttons: None,
            add_security_recommendation: None,
            code_expiration_minutes: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum DraftComponentType {
    #[serde(alias = "header")]
    Header,
    #[serde(alias = "body")]
    Body,
    #[serde(alias = "footer")]
    Footer,
    #[serde(alias = "buttons")]
    Buttons,
}

impl DraftComponentType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Header => "HEADER",
            Self::Body => "BODY",
            Self::Footer => "FOOTER",
            Self::Buttons => "BUTTONS",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum HeaderFormat {
    #[serde(alias = "text")]
    Text,
    #[serde(alias = "image")]
    Image,
    #[serde(alias = "video")]
    Video,
    #[serde(alias = "document")]
    Document,
}

/// Sample values Meta reviews the template with.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftExample {
    /// Text header: the value of `{{1}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_text: Option<Vec<String>>,
    /// Media header: one sample (a media handle or URL).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub header_handle: Option<Vec<String>>,
    /// Body: one row with a value per placeholder, in order. Numbers are taken as text.
    #[serde(default, skip_serializing_if = "Option::is_none", deserialize_with = "example_rows")]
    #[schema(value_type = Option<Vec<Vec<String>>>)]
    pub body_text: Option<Vec<Vec<String>>>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct DraftButton {
    #[serde(rename = "type")]
    pub kind: ButtonType,
    /// The label, at most 25 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `URL`: an absolute http(s) URL, optionally ending in `{{1}}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// `PHONE_NUMBER`: country code and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    /// `URL` with `{{1}}`: one full example URL; `COPY_CODE`: the example code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub example: Option<ButtonExample>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub otp_type: Option<OtpType>,
    /// `OTP` `ONE_TAP`: the autofill button's label.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub autofill_text: Option<String>,
    /// `OTP` `ONE_TAP`: the Android app's package name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package_name: Option<String>,
    /// `OTP` `ONE_TAP`: the Android app's signing key hash.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signature_hash: Option<String>,
}

impl DraftButton {
    /// A button of this type with no fields set.
    pub fn new(kind: ButtonType) -> Self {
        Self {
            kind,
            text: None,
            url: None,
            phone_number: None,
            example: None,
            otp_type: None,
            autofill_text: None,
            package_name: None,
            signature_hash: None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum ButtonType {
    QuickReply,
    Url,
    PhoneNumber,
    CopyCode,
    Otp,
}

impl ButtonType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::QuickReply => "QUICK_REPLY",
            Self::Url => "URL",
            Self::PhoneNumber => "PHONE_NUMBER",
            Self::CopyCode => "COPY_CODE",
            Self::Otp => "OTP",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum OtpType {
    CopyCode,
    OneTap,
    ZeroTap,
}

/// A button example: Meta writes a URL button's as a list and a copy-code button's as a string.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum ButtonExample {
    One(String),
    Many(Vec<String>),
}

impl ButtonExample {
    pub fn values(&self) -> Vec<&str> {
        match self {
            Self::One(s) => vec![s.as_str()],
            Self::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

/// Example rows whose values may be strings or numbers (INCS's own example has `[[1, 2]]`).
fn example_rows<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Vec<Vec<String>>>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Scalar {
        Text(String),
        Number(serde_json::Number),
    }
    let rows: Option<Vec<Vec<Scalar>>> = Option::deserialize(d)?;
    Ok(rows.map(|rows| {
        rows.into_iter()
            .map(|row| {
                row.into_iter()
                    .map(|v| match v {
                        Scalar::Text(s) => s,
                        Scalar::Number(n) => n.to_string(),
                    })
                    .collect()
            })
            .collect()
    }))
}

impl WhatsAppTemplateDraft {
    /// Checks the draft against Meta's template rules and the provider's limits.
    ///
    /// # Errors
    /// Every problem found, each naming its field relative to the draft.
    pub fn validate(&self, limits: &TemplateLimits) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        self.check(&Path::root(), limits, &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::validate`], reporting under `root` into `errors`.
    pub fn check(&self, root: &Path, limits: &TemplateLimits, errors: &mut FieldErrors) {
        wa_name(&self.name, limits.max_name, &root.key("name"), errors);
        if !is_language_code(&self.language) {
            errors.push(root.key("language"), "a language code such as `en` or `en_US`");
        }
        if !limits.categories.contains(&self.category) {
            let allowed: Vec<&str> = limits.categories.iter().map(|c| c.as_str()).collect();
            errors.push(
                root.key("category"),
                format!("{} creates {} templates only", limits.provider, allowed.join(" or ")),
            );
        }
        let auth = self.category == WhatsAppCategory::Authentication;
        let mut seen = BTreeSet::new();
        for (i, c) in self.components.iter().enumerate() {
            let p = root.key("components").index(i);
            if !seen.insert(c.kind) {
                errors.push(p.key("type"), format!("only one {} component", c.kind.as_str()));
            }
            component(c, auth, &p, errors);
        }
        if !seen.contains(&DraftComponentType::Body) {
            errors.push(root.key("components"), "a BODY component is required");
        }
    }

    /// The first component of a type.
    pub fn component(&self, kind: DraftComponentType) -> Option<&DraftComponent> {
        self.components.iter().find(|c| c.kind == kind)
    }
}

fn chars(s: &str) -> usize {
    s.chars().count()
}

/// Required, non-blank, at most `max` characters.
fn text(s: &str, max: usize, p: &Path, errors: &mut FieldErrors) -> bool {
    if s.trim().is_empty() {
        errors.push(p.clone(), "must not be empty");
        false
    } else if chars(s) > max {
        errors.push(p.clone(), format!("at most {max} characters, got {}", chars(s)));
        false
    } else {
        true
    }
}

fn required_text(s: &Option<String>, max: usize, p: &Path, errors: &mut FieldErrors) -> Option<String> {
    match s {
        None => {
            errors.push(p.clone(), "required");
            None
        }
        Some(s) => text(s, max, p, errors).then(|| s.clone()),
    }
}

fn http_url(s: &str, max: usize, p: &Path, errors: &mut FieldErrors) {
    match url::Url::parse(s) {
        Ok(u) if matches!(u.scheme(), "http" | "https") && u.host_str().is_some_and(|h| !h.is_empty()) => {
            if chars(s) > max {
                errors.push(p.clone(), format!("at most {max} characters, got {}", chars(s)));
            }
        }
        _ => errors.push(p.clone(), "must be an absolute http(s) URL"),
    }
}

fn not_here<T>(v: &Option<T>, p: Path, reason: &str, errors: &mut FieldErrors) {
    if v.is_some() {
        errors.push(p, reason.to_owned());
    }
}

fn wa_name(name: &str, max: usize, p: &Path, errors: &mut FieldErrors) {
    if text(name, max, p, errors) && !name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_') {
        errors.push(p.clone(), "lowercase letters, digits and underscores only");
    }
}

/// The numbers of the `{{n}}` placeholders in `text`, in order of appearance.
///
/// # Errors
/// The first placeholder that is not `{{` digits `}}` with a number from 1, or a `{{` never closed.
pub fn placeholders(text: &str) -> Result<Vec<u32>, String> {
    let mut found = Vec::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        let after = &rest[start + 2..];
        let Some(end) = after.find("}}") else {
            return Err("a `{{` is never closed".into());
        };
        let inner = &after[..end];
        match inner.parse::<u32>() {
            Ok(n) if n >= 1 && inner.bytes().all(|b| b.is_ascii_digit()) => found.push(n),
            _ => return Err(format!("placeholders are numbers from 1, such as {{{{1}}}}, got {{{{{inner}}}}}")),
        }
        rest = &after[end + 2..];
    }
    Ok(found)
}

/// How many distinct placeholders `text` has, when they run from 1 without a gap.
fn numbered(text: &str, p: &Path, errors: &mut FieldErrors) -> Option<usize> {
    match placeholders(text) {
        Err(e) => {
            errors.push(p.clone(), e);
            None
        }
        Ok(found) => {
            let distinct: BTreeSet<u32> = found.into_iter().collect();
            let n = distinct.len();
            if distinct.iter().copied().eq(1..=n as u32) {
                Some(n)
            } else {
                errors.push(p.clone(), format!("placeholders must be numbered {{{{1}}}} to {{{{{n}}}}} without gaps"));
                None
            }
        }
    }
}

fn component(c: &DraftComponent, auth: bool, p: &Path, errors: &mut FieldErrors) {
    if c.kind != DraftComponentType::Header {
        not_here(&c.format, p.key("format"), "only HEADER components have a format", errors);
    }
    if c.kind != DraftComponentType::Buttons {
        not_here(&c.buttons, p.key("buttons"), "only BUTTONS components have buttons", errors);
    }
    if c.kind != DraftComponentType::Body || !auth {
        not_here(
            &c.add_security_recommendation,
            p.key("add_security_recommendation"),
            "only the BODY of an AUTHENTICATION template has it",
            errors,
        );
    }
    if c.kind != DraftComponentType::Footer || !auth {
        not_here(
            &c.code_expiration_minutes,
            p.key("code_expiration_minutes"),
            "only the FOOTER of an AUTHENTICATION template has it",
            errors,
        );
    }
    let example = c.example.clone().unwrap_or_default();
    let ep = p.key("example");
    match c.kind {
        DraftComponentType::Header => {
            not_here(&example.body_text, ep.key("body_text"), "only BODY examples have body_text", errors);
            match c.format {
                None => errors.push(p.key("format"), "required: TEXT, IMAGE, VIDEO or DOCUMENT"),
                Some(HeaderFormat::Text) => {
                    not_here(
                        &example.header_handle,
                        ep.key("header_handle"),
                        "only media headers have header_handle",
                        errors,
                    );
                    let Some(t) = required_text(&c.text, WA_HEADER_TEXT, &p.key("text"), errors) else { return };
                    let Some(n) = numbered(&t, &p.key("text"), errors) else { return };
                    if n > 1 {
                        errors.push(p.key("text"), "a header has at most one placeholder, {{1}}");
                    } else if n == 1 {
                        examples(example.header_text.as_deref(), 1, &ep.key("header_text"), errors);
                    } else if example.header_text.is_some() {
                        errors.push(ep.key("header_text"), "the header has no placeholder, so no example");
                    }
                }
                Some(_) => {
                    not_here(&c.text, p.key("text"), "only TEXT headers have text", errors);
                    not_here(&example.header_text, ep.key("header_text"), "only TEXT headers have header_text", errors);
                    examples(example.header_handle.as_deref(), 1, &ep.key("header_handle"), errors);
                }
            }
        }
        DraftComponentType::Body => {
            not_here(&example.header_text, ep.key("header_text"), "only HEADER examples have header_text", errors);
            not_here(
                &example.header_handle,
                ep.key("header_handle"),
                "only HEADER examples have header_handle",
                errors,
            );
            let t = match (&c.text, auth) {
                (None, true) => return,
                (t, _) => required_text(t, WA_BODY, &p.key("text"), errors),
            };
            let Some(n) = t.and_then(|t| numbered(&t, &p.key("text"), errors)) else { return };
            match (&example.body_text, n) {
                (None, 0) => {}
                (Some(_), 0) => errors.push(ep.key("body_text"), "the body has no placeholder, so no example"),
                (None, n) => errors.push(ep.key("body_text"), format!("required: one row of {n} example values")),
                (Some(rows), n) if rows.len() != 1 => {
                    errors.push(ep.key("body_text"), format!("one row of {n} example values, got {} rows", rows.len()))
                }
                (Some(rows), n) => examples(Some(&rows[0]), n, &ep.key("body_text").index(0), errors),
            }
        }
        DraftComponentType::Footer => {
            not_here(&c.example, ep, "FOOTER components take no example", errors);
            if let Some(m) = c.code_expiration_minutes {
                if !(1..=WA_CODE_EXPIRATION_MAX).contains(&m) {
                    errors.push(p.key("code_expiration_minutes"), format!("1 to {WA_CODE_EXPIRATION_MAX} minutes"));
                }
            }
            if c.text.is_none() && auth && c.code_expiration_minutes.is_some() {
                return;
            }
            if let Some(t) = required_text(&c.text, WA_FOOTER, &p.key("text"), errors) {
                if placeholders(&t).map_or(true, |f| !f.is_empty()) {
                    errors.push(p.key("text"), "a footer has no placeholders");
                }
            }
        }
        DraftComponentType::Buttons => {
            not_here(&c.text, p.key("text"), "BUTTONS components have no text of their own", errors);
            not_here(&c.example, ep, "BUTTONS components take no example of their own", errors);
            let Some(buttons) = &c.buttons else {
                errors.push(p.key("buttons"), "required: 1 to 10 buttons");
                return;
            };
            buttons_rules(buttons, auth, &p.key("buttons"), errors);
        }
    }
}

/// Exactly `n` non-blank example values.
fn examples(values: Option<&[String]>, n: usize, p: &Path, errors: &mut FieldErrors) {
    match values {
        None => errors.push(p.clone(), format!("required: {n} example value{}", if n == 1 { "" } else { "s" })),
        Some(v) if v.len() != n => errors.push(
            p.clone(),
            format!("{n} example value{}, one per placeholder, got {}", if n == 1 { "" } else { "s" }, v.len()),
        ),
        Some(v) => {
            for (i, s) in v.iter().enumerate() {
                if s.trim().is_empty() {
                    errors.push(p.index(i), "must not be empty");
                }
            }
        }
    }
}

fn buttons_rules(buttons: &[DraftButton], auth: bool, p: &Path, errors: &mut FieldErrors) {
    if buttons.is_empty() {
        errors.push(p.clone(), "at least one button");
    } else if buttons.len() > WA_BUTTONS {
        errors.push(p.clone(), format!("at most {WA_BUTTONS} buttons, got {}", buttons.len()));
    }
    let count = |k: ButtonType| buttons.iter().filter(|b| b.kind == k).count();
    if count(ButtonType::Url) > WA_URL_BUTTONS {
        errors.push(p.clone(), format!("at most {WA_URL_BUTTONS} URL buttons, got {}", count(ButtonType::Url)));
    }
    if count(ButtonType::PhoneNumber) > WA_PHONE_BUTTONS {
        errors.push(
            p.clone(),
            format!("at most {WA_PHONE_BUTTONS} PHONE_NUMBER button, got {}", count(ButtonType::PhoneNumber)),
        );
    }
    for (i, b) in buttons.iter().enumerate() {
        button(b, auth, &p.index(i), errors);
    }
}

fn button(b: &DraftButton, auth: bool, p: &Path, errors: &mut FieldErrors) {
    use ButtonType::*;
    match (b.kind, auth) {
        (Otp, false) => errors.push(p.key("type"), "OTP buttons are for AUTHENTICATION templates"),
        (Otp, true) | (_, false) => {}
        (_, true) => errors.push(p.key("type"), "AUTHENTICATION templates take OTP buttons only"),
    }
    match b.kind {
        QuickReply | Url | PhoneNumber => {
            required_text(&b.text, WA_BUTTON_TEXT, &p.key("text"), errors);
        }
        CopyCode | Otp => {
            if let Some(t) = &b.text {
                text(t, WA_BUTTON_TEXT, &p.key("text"), errors);
            }
        }
    }
    if b.kind != Url {
        not_here(&b.url, p.key("url"), "only URL buttons have a url", errors);
    }
    if b.kind != PhoneNumber {
        not_here(&b.phone_number, p.key("phone_number"), "only PHONE_NUMBER buttons have a phone_number", errors);
    }
    if !matches!(b.kind, Url | CopyCode) {
        not_here(&b.example, p.key("example"), "only URL and COPY_CODE buttons have an example", errors);
    }
    if b.kind != Otp {
        for (v, k) in [
            (&b.autofill_text, "autofill_text"),
            (&b.package_name, "package_name"),
            (&b.signature_hash, "signature_hash"),
        ] {
            not_here(v, p.key(k), "only OTP buttons have it", errors);
        }
        not_here(&b.otp_type, p.key("otp_type"), "only OTP buttons have it", errors);
    }
    match b.kind {
        Url => {
            let Some(u) = &b.url else {
                errors.push(p.key("url"), "required");
                return;
            };
            let base = u.strip_suffix("{{1}}").unwrap_or(u);
            http_url(base, WA_BUTTON_URL, &p.key("url"), errors);
            match placeholders(base) {
                Ok(f) if f.is_empty() => {}
                _ => errors.push(p.key("url"), "a URL may hold one placeholder, {{1}}, at its end"),
            }
            match (u.ends_with("{{1}}"), &b.example) {
                (true, None) => errors.push(p.key("example"), "required: one full example URL"),
                (true, Some(e)) => match e.values().as_slice() {
                    [one] => http_url(one, WA_BUTTON_URL, &p.key("example").index(0), errors),
                    other => errors.push(p.key("example"), format!("one full example URL, got {}", other.len())),
                },
                (false, Some(_)) => errors.push(p.key("example"), "the URL has no placeholder, so no example"),
                (false, None) => {}
            }
        }
        PhoneNumber => match &b.phone_number {
            None => errors.push(p.key("phone_number"), "required"),
            Some(n) => {
                let digits = n.strip_prefix('+').unwrap_or(n);
                if !(WA_PHONE_MIN..=WA_PHONE_MAX).contains(&n.len())
                    || digits.is_empty()
                    || !digits.bytes().all(|b| b.is_ascii_digit())
                {
                    errors.push(
                        p.key("phone_number"),
                        format!("country code and number, digits with an optional leading `+`, {WA_PHONE_MIN} to {WA_PHONE_MAX} characters"),
                    );
                }
            }
        },
        CopyCode => match b.example.as_ref().map(ButtonExample::values).as_deref() {
            None => errors.push(p.key("example"), "required: the example code"),
            Some([one]) => {
                text(one, WA_COUPON_CODE, &p.key("example"), errors);
            }
            Some(other) => errors.push(p.key("example"), format!("one example code, got {}", other.len())),
        },
        Otp => match b.otp_type {
            None => errors.push(p.key("otp_type"), "required: COPY_CODE, ONE_TAP or ZERO_TAP"),
            Some(OtpType::OneTap) | Some(OtpType::ZeroTap) => {
                for (v, k) in [(&b.package_name, "package_name"), (&b.signature_hash, "signature_hash")] {
                    match v {
                        None => errors.push(p.key(k), "required for ONE_TAP and ZERO_TAP buttons"),
                        Some(s) => {
                            text(s, 256, &p.key(k), errors);
                        }
                    }
                }
                if let Some(t) = &b.autofill_text {
                    text(t, WA_BUTTON_TEXT, &p.key("autofill_text"), errors);
                }
            }
            Some(OtpType::CopyCode) => {
                for (v, k) in [
                    (&b.autofill_text, "autofill_text"),
                    (&b.package_name, "package_name"),
                    (&b.signature_hash, "signature_hash"),
                ] {
                    not_here(v, p.key(k), "only ONE_TAP and ZERO_TAP buttons have it", errors);
                }
            }
        },
        QuickReply => {}
    }
}

// ---------------------------------------------------------------------------------------------
// RCS

/// An RCS template to create (INCS `POST /external/templates/rcs`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(example = json!({
    "name": "test_template",
    "type": "text",
    "category": "TRANSACTION",
    "content": {
        "textMessage": "Dear [name], your order [order_id] has been shipped.",
        "suggestions": [{"suggestionType": "reply", "text": "Thanks", "postbackData": "thanks"}]
    }
}))]
pub struct RcsTemplateDraft {
    /// At most 25 letters, digits and `_`.
    #[schema(example = "test_template")]
    pub name: String,
    #[serde(rename = "type")]
    pub kind: RcsTemplateType,
    /// Required for multi-use agents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub category: Option<RcsTemplateCategory>,
    pub content: RcsTemplateContent,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "lowercase")]
pub enum RcsTemplateType {
    Text,
    Richcard,
    Carousel,
}

impl RcsTemplateType {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Text => "text",
            Self::Richcard => "richcard",
            Self::Carousel => "carousel",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
pub enum RcsTemplateCategory {
    Promotion,
    Transaction,
    Authentication,
}

/// The content of an RCS template; which fields apply depends on the template's `type`: `text`
/// {`textMessage`, `suggestions`}, `richcard` {`orientation`, `height`, `standaloneCard`},
/// `carousel` {`height`, `width`, `carouselCard`}.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RcsTemplateContent {
    /// `text`: at most 2500 characters, with `[variable]` placeholders.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text_message: Option<String>,
    /// `text`: at most 11.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<RcsSuggestion>>,
    /// `richcard`: `VERTICAL` or `HORIZONTAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub orientation: Option<String>,
    /// `richcard`, `carousel`: `SHORT`, `MEDIUM` or `TALL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<String>,
    /// `carousel`: `SMALL` or `MEDIUM`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub width: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub standalone_card: Option<RcsCard>,
    /// 2 to 10 cards.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub carousel_card: Option<Vec<RcsCard>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RcsCard {
    /// At most 200 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_title: Option<String>,
    /// At most 2000 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub card_description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub media_url: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thumbnail_url: Option<String>,
    /// At most 4.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Vec<RcsSuggestion>>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RcsSuggestion {
    /// `reply`, `url_action`, `dialer_action`, ...
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestion_type: Option<String>,
    /// At most 25 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// At most 120 characters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postback_data: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub url: Option<String>,
    /// International format, e.g. `+919702012345`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
}

impl RcsTemplateDraft {
    /// Checks the draft against INCS's RCS template rules.
    ///
    /// # Errors
    /// Every problem found, each naming its field relative to the draft.
    pub fn validate(&self) -> Result<(), FieldErrors> {
        let mut errors = FieldErrors::default();
        self.check(&Path::root(), &mut errors);
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors)
        }
    }

    /// [`Self::validate`], reporting under `root` into `errors`.
    pub fn check(&self, root: &Path, errors: &mut FieldErrors) {
        let p = root.key("name");
        if text(&self.name, RCS_NAME, &p, errors) && !self.name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
        {
            errors.push(p, "letters, digits and underscores only");
        }
        let c = &self.content;
        let cp = root.key("content");
        let kind = self.kind.as_str();
        let only = |what: &str| format!("{kind} templates have no {what}");
        match self.kind {
            RcsTemplateType::Text => {
                required_text(&c.text_message, RCS_TEXT, &cp.key("textMessage"), errors);
                suggestions(c.suggestions.as_deref(), RCS_TEXT_SUGGESTIONS, &cp.key("suggestions"), errors);
                not_here(&c.orientation, cp.key("orientation"), &only("orientation"), errors);
                not_here(&c.height, cp.key("height"), &only("height"), errors);
                not_here(&c.width, cp.key("width"), &only("width"), errors);
                not_here(&c.standalone_card, cp.key("standaloneCard"), &only("standaloneCard"), errors);
                not_here(&c.carousel_card, cp.key("carouselCard"), &only("carouselCard"), errors);
            }
            RcsTemplateType::Richcard => {
                not_here(&c.text_message, cp.key("textMessage"), &only("textMessage"), errors);
                not_here(
                    &c.suggestions,
                    cp.key("suggestions"),
                    "a richcard's suggestions go in standaloneCard.suggestions",
                    errors,
                );
                not_here(&c.width, cp.key("width"), &only("width"), errors);
                not_here(&c.carousel_card, cp.key("carouselCard"), &only("carouselCard"), errors);
                one_of(&c.orientation, &["VERTICAL", "HORIZONTAL"], &cp.key("orientation"), errors);
                one_of(&c.height, &["SHORT", "MEDIUM", "TALL"], &cp.key("height"), errors);
                match &c.standalone_card {
                    None => errors.push(cp.key("standaloneCard"), "required for richcard templates"),
                    Some(card) => rcs_card(card, &cp.key("standaloneCard"), errors),
                }
            }
            RcsTemplateType::Carousel => {
                not_here(&c.text_message, cp.key("textMessage"), &only("textMessage"), errors);
                not_here(&c.suggestions, cp.key("suggestions"), "a carousel's suggestions go on its cards", errors);
                not_here(&c.orientation, cp.key("orientation"), &only("orientation"), errors);
                not_here(&c.standalone_card, cp.key("standaloneCard"), &only("standaloneCard"), errors);
                one_of(&c.height, &["SHORT", "MEDIUM", "TALL"], &cp.key("height"), errors);
                one_of(&c.width, &["SMALL", "MEDIUM"], &cp.key("width"), errors);
                let p = cp.key("carouselCard");
                match &c.carousel_card {
                    None => errors.push(p, "required for carousel templates: 2 to 10 cards"),
                    Some(cards) => {
                        if !(RCS_CAROUSEL_MIN..=RCS_CAROUSEL_MAX).contains(&cards.len()) {
                            errors.push(
                                p.clone(),
                                format!("{RCS_CAROUSEL_MIN} to {RCS_CAROUSEL_MAX} cards, got {}", cards.len()),
                            );
                        }
                        for (i, card) in cards.iter().enumerate() {
                            rcs_card(card, &p.index(i), errors);
                        }
                    }
                }
            }
        }
    }
}

fn one_of(v: &Option<String>, allowed: &[&str], p: &Path, errors: &mut FieldErrors) {
    if let Some(v) = v {
        if !allowed.iter().any(|a| a.eq_ignore_ascii_case(v)) {
            errors.push(p.clone(), format!("one of {}", allowed.join(", ")));
        }
    }
}

fn rcs_card(card: &RcsCard, p: &Path, errors: &mut FieldErrors) {
    if card.card_title.is_none() && card.card_description.is_none() && card.media_url.is_none() {
        errors.push(p.clone(), "a card needs a cardTitle, a cardDescription or a mediaUrl");
    }
    if let Some(t) = &card.card_title {
        text(t, RCS_CARD_TITLE, &p.key("cardTitle"), errors);
    }
    if let Some(d) = &card.card_description {
        text(d, RCS_CARD_DESCRIPTION, &p.key("cardDescription"), errors);
    }
    if let Some(u) = &card.media_url {
        http_url(u, URL, &p.key("mediaUrl"), errors);
    }
    if let Some(u) = &card.thumbnail_url {
        http_url(u, URL, &p.key("thumbnailUrl"), errors);
    }
    suggestions(card.suggestions.as_deref(), RCS_CARD_SUGGESTIONS, &p.key("suggestions"), errors);
}

fn suggestions(list: Option<&[RcsSuggestion]>, max: usize, p: &Path, errors: &mut FieldErrors) {
    let Some(list) = list else { return };
    if list.len() > max {
        errors.push(p.clone(), format!("at most {max} suggestions, got {}", list.len()));
    }
    for (i, s) in list.iter().enumerate() {
        let sp = p.index(i);
        required_text(&s.text, RCS_SUGGESTION_TEXT, &sp.key("text"), errors);
        required_text(&s.postback_data, RCS_POSTBACK_DATA, &sp.key("postbackData"), errors);
        if let Some(t) = &s.suggestion_type {
            if t.is_empty() || !t.bytes().all(|b| b.is_ascii_lowercase() || b == b'_') {
                errors.push(
                    sp.key("suggestionType"),
                    "a suggestion type such as `reply`, `url_action` or `dialer_action`",
                );
            }
        }
        match (s.suggestion_type.as_deref(), &s.url) {
            (_, Some(u)) => http_url(u, URL, &sp.key("url"), errors),
            (Some("url_action"), None) => errors.push(sp.key("url"), "required for url_action suggestions"),
            _ => {}
        }
        match (s.suggestion_type.as_deref(), &s.phone_number) {
            (_, Some(n)) => {
                let digits = n.strip_prefix('+').unwrap_or("");
                if !(8..=15).contains(&digits.len()) || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    errors.push(sp.key("phoneNumber"), "international format: `+`, then 8 to 15 digits");
                }
            }
            (Some("dialer_action"), None) => {
                errors.push(sp.key("phoneNumber"), "required for dialer_action suggestions")
            }
            _ => {}
        }
    }
}

pub mod variables;

#[cfg(test)]
mod tests;
