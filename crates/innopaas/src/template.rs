//! Template creation (`POST /api/whatsapp/v3/template/submit`, PROVIDERS.md §2.4): the typed
//! request and the checks made before it is sent.

use gateway_core::content::whatsapp::TemplateCategory;

/// Longest template name InnoPaaS takes.
pub const MAX_TEMPLATE_NAME: usize = 512;
/// Longest `messageBody`.
pub const MAX_TEMPLATE_BODY: usize = 1024;
/// Longest `footer`.
pub const MAX_TEMPLATE_FOOTER: usize = 60;
/// At most this many buttons per template.
pub const MAX_TEMPLATE_BUTTONS: usize = 10;

/// A template to create. The account's `wabaId` is added when it is sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TemplateSubmit {
    /// Lowercase letters, digits and `_`, at most 512 characters.
    pub name: String,
    /// Sent as `category`: 1 marketing, 2 authentication, 3 utility.
    pub category: TemplateCategory,
    /// `messageLanguage`, e.g. `en_US`.
    pub language: String,
    /// `headerType`: 1 none, 2 text, 3 image, 4 video, 5 document.
    pub header_type: TemplateHeaderType,
    /// `caption`: the header's text, or its media caption.
    pub caption: Option<String>,
    /// `messageBody`, at most 1024 characters, with `{{n}}` placeholders.
    pub body: String,
    /// `footer`, at most 60 characters.
    pub footer: Option<String>,
    /// `safetyAdvice` (authentication templates): sent as 1 or 0; absent when `None`.
    pub safety_advice: Option<bool>,
    /// At most 10.
    pub buttons: Vec<TemplateButton>,
    /// `headerExample`: the sample of a text header's `{{1}}` or of a media header.
    pub header_example: Option<HeaderExample>,
    /// `bodyExample.body_text`: one row with a sample per body placeholder.
    pub body_example: Option<Vec<Vec<String>>>,
}

/// `headerExample` (PROVIDERS.md §2.7): `{header_text: [...]}` or `{header_handle: [...]}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderExample {
    Text(Vec<String>),
    Handle(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum TemplateHeaderType {
    #[default]
    None,
    Text,
    Image,
    Video,
    Document,
}

impl TemplateHeaderType {
    /// InnoPaaS's number for it.
    pub fn code(self) -> u8 {
        match self {
            Self::None => 1,
            Self::Text => 2,
            Self::Image => 3,
            Self::Video => 4,
            Self::Document => 5,
        }
    }
}

/// One template button: `actionType` 1 quick reply, 2 website, 3 call, 4 copy code, 5 autofill
/// (PROVIDERS.md §2.7).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TemplateButton {
    /// `actionType`, 1 to 5.
    pub action_type: u8,
    /// `targetUrl`: a website button's URL, with at most one `{{1}}`, at its end.
    pub target_url: Option<String>,
    /// `buttonExample`: the full example URL of a website button with a variable.
    pub button_example: Vec<String>,
    /// `label`: the button text.
    pub label: String,
    /// `phoneArea`: the country code of a call button.
    pub phone_area: Option<String>,
    /// `phone`: the number of a call button.
    pub phone: Option<String>,
    /// `packageName`: the Android package of a one-tap autofill button.
    pub package_name: Option<String>,
    /// `sigNatureHash` (InnoPaaS's spelling): the app signature hash of a one-tap autofill button.
    pub signature_hash: Option<String>,
    /// `autoFill`: the autofill button's text.
    pub auto_fill: Option<String>,
}

/// A call button's number as `template/submit` takes it (PROVIDERS.md §2.4): `phoneArea`, the
/// country calling code, and `phone`, the national number, both digits only. Meta's drafts give
/// one international number (`+85230012345` or `85230012345`); the calling code is found with
/// libphonenumber's metadata, since calling codes are 1 to 3 digits and no fixed cut works.
///
/// # Errors
/// The reason, when the number has no known calling code or is too short or long after it.
pub fn split_phone_number(number: &str) -> Result<(String, String), String> {
    let digits = number.trim().trim_start_matches('+');
    let parsed = phonenumber::parse(None, format!("+{digits}"))
        .map_err(|e| format!("not an international number InnoPaaS can split into phoneArea and phone ({e})"))?;
    Ok((parsed.code().value().to_string(), parsed.national().to_string()))
}

/// InnoPaaS's number for a category.
pub(crate) fn category_code(category: TemplateCategory) -> u8 {
    match category {
        TemplateCategory::Marketing => 1,
        TemplateCategory::Authentication => 2,
        TemplateCategory::Utility => 3,
    }
}

impl TemplateSubmit {
    /// The first problem InnoPaaS would refuse, so it is reported before any request.
    pub(crate) fn problem(&self) -> Option<String> {
        let name_ok = |c: char| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_';
        if self.name.is_empty() || self.name.chars().count() > MAX_TEMPLATE_NAME || !self.name.chars().all(name_ok) {
            return Some(format!(
                "template `name` must have 1 to {MAX_TEMPLATE_NAME} lowercase letters, digits and underscores"
            ));
        }
        if self.language.trim().is_empty() {
            return Some("template `language` must not be empty".into());
        }
        let body = self.body.chars().count();
        if self.body.trim().is_empty() || body > MAX_TEMPLATE_BODY {
            return Some(format!("template `body` must have 1 to {MAX_TEMPLATE_BODY} characters, got {body}"));
        }
        if let Some(footer) = &self.footer {
            if footer.chars().count() > MAX_TEMPLATE_FOOTER {
                return Some(format!("template `footer` may have at most {MAX_TEMPLATE_FOOTER} characters"));
            }
        }
        if self.buttons.len() > MAX_TEMPLATE_BUTTONS {
            return Some(format!("at most {MAX_TEMPLATE_BUTTONS} template buttons, got {}", self.buttons.len()));
        }
        for (i, button) in self.buttons.iter().enumerate() {
            if !(1..=5).contains(&button.action_type) {
                return Some(format!("buttons[{i}].action_type must be 1 to 5, got {}", button.action_type));
            }
            if button.label.trim().is_empty() {
                return Some(format!("buttons[{i}].label must not be empty"));
            }
            match (button.action_type, button.target_url.as_deref()) {
                (2, None) => return Some(format!("buttons[{i}].target_url is required on a website button")),
                (2, Some(url)) if url.ends_with("{{1}}") && button.button_example.len() != 1 => {
                    return Some(format!("buttons[{i}].button_example: one full example URL for `{{{{1}}}}`"));
                }
                (2, _) => {}
                (_, Some(_)) => return Some(format!("buttons[{i}].target_url is for website buttons only")),
                (_, None) => {}
            }
        }
        None
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;

    fn template() -> TemplateSubmit {
        TemplateSubmit {
            name: "order_update_1".into(),
            category: TemplateCategory::Utility,
            language: "en_US".into(),
            header_type: TemplateHeaderType::None,
            caption: None,
            body: "Your order {{1}} has shipped.".into(),
            footer: None,
            safety_advice: None,
            buttons: vec![],
            header_example: None,
            body_example: None,
        }
    }

    #[test]
    fn codes_follow_the_documented_numbers() {
        assert_eq!(category_code(TemplateCategory::Marketing), 1);
        assert_eq!(category_code(TemplateCategory::Authentication), 2);
        assert_eq!(category_code(TemplateCategory::Utility), 3);
        let headers = [
            TemplateHeaderType::None,
            TemplateHeaderType::Text,
            TemplateHeaderType::Image,
            TemplateHeaderType::Video,
            TemplateHeaderType::Document,
        ];
        assert_eq!(headers.map(TemplateHeaderType::code), [1, 2, 3, 4, 5]);
    }

    #[test]
    fn call_numbers_split_into_calling_code_and_national_number() {
        let split = |n: &str| split_phone_number(n).map(|(a, p)| format!("{a} {p}"));
        let cases = [
            ("+85230012345", "852 30012345"),
            ("85230012345", "852 30012345"),
            ("+15550051310", "1 5550051310"),
            ("6281519236680", "62 81519236680"),
            ("+8613800138000", "86 13800138000"),
            // Italian fixed lines keep their leading zero after the calling code.
            ("+390612345678", "39 0612345678"),
            ("+447911123456", "44 7911123456"),
        ];
        for (number, expected) in cases {
            assert_eq!(split(number).as_deref(), Ok(expected), "{number}");
        }
        for unassigned in ["+99912345678", "+0012345678", "+8521"] {
            let reason = split(unassigned).expect_err(unassigned);
            assert!(reason.contains("phoneArea"), "{unassigned}: {reason}");
        }
    }

    #[test]
    fn problems_are_found_before_sending() {
        assert_eq!(template().problem(), None);
        type Edit = fn(&mut TemplateSubmit);
        let button = TemplateButton { action_type: 1, label: "Call".into(), ..TemplateButton::default() };
        let cases: &[(&str, Edit)] = &[
            ("name", |t| t.name = "Order-Update".into()),
            ("name", |t| t.name = "x".repeat(513)),
            ("language", |t| t.language = " ".into()),
            ("body", |t| t.body = "x".repeat(1025)),
            ("footer", |t| t.footer = Some("x".repeat(61))),
        ];
        for (what, edit) in cases {
            let mut t = template();
            edit(&mut t);
            assert!(t.problem().is_some_and(|p| p.contains(what)), "{what}: {:?}", t.problem());
        }
        let mut t = template();
        t.buttons = vec![button.clone(); 11];
        assert!(t.problem().is_some_and(|p| p.contains("at most 10")));
        t.buttons = vec![TemplateButton { action_type: 6, ..button.clone() }];
        assert!(t.problem().is_some_and(|p| p.contains("action_type")));
        t.buttons = vec![TemplateButton { label: String::new(), ..button.clone() }];
        assert!(t.problem().is_some_and(|p| p.contains("label")));
        // Website buttons carry their URL, and an example when it has a variable.
        let site = TemplateButton { action_type: 2, label: "Track".into(), ..TemplateButton::default() };
        t.buttons = vec![site.clone()];
        assert!(t.problem().is_some_and(|p| p.contains("target_url")));
        t.buttons = vec![TemplateButton { target_url: Some("https://example.com/t/{{1}}".into()), ..site.clone() }];
        assert!(t.problem().is_some_and(|p| p.contains("button_example")));
        t.buttons = vec![TemplateButton {
            target_url: Some("https://example.com/t/{{1}}".into()),
            button_example: vec!["https://example.com/t/A-1001".into()],
            ..site
        }];
        assert_eq!(t.problem(), None);
        t.buttons = vec![TemplateButton { target_url: Some("https://example.com".into()), ..button }];
        assert!(t.problem().is_some_and(|p| p.contains("website buttons only")));
    }
}
