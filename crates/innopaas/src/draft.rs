//! A Meta template draft (what `POST /v1/templates` takes) as InnoPaaS's `template/submit`
//! (PROVIDERS.md §2.4 and §2.7).
//!
//! - The header becomes `headerType` and `caption` (its text, or its media sample) with
//!   `headerExample` (`header_text` or `header_handle`); the body `messageBody` with
//!   `bodyExample.body_text`; the footer `footer`; `add_security_recommendation` `safetyAdvice`.
//! - Buttons (`actionType`): `QUICK_REPLY` → 1, `URL` → 2 (`targetUrl`, and `buttonExample` when it
//!   ends in `{{1}}`), `PHONE_NUMBER` → 3, `COPY_CODE` → 4, `OTP` → 4, or 5 for one-tap and
//!   zero-tap (`packageName`, `sigNatureHash`, `autoFill`).
//! - A call button's one international number is split into `phoneArea` (the country calling code)
//!   and `phone` (the national number), as §2.4 lists them; a number with no known calling code is
//!   refused at its `phone_number`.
//! - InnoPaaS has no field for a body without text or for a code expiry, so those are refused.

use gateway_core::template::{ButtonType, DraftComponentType, HeaderFormat, OtpType, WhatsAppTemplateDraft};
use gateway_core::validate::{FieldErrors, Path};

use crate::template::{split_phone_number, HeaderExample, TemplateButton, TemplateHeaderType, TemplateSubmit};

impl TemplateSubmit {
    /// The draft as InnoPaaS takes it. The draft is expected to have passed its own validation
    /// (`WhatsAppTemplateDraft::validate`); what is refused here is what only InnoPaaS cannot take.
    ///
    /// # Errors
    /// The fields InnoPaaS has no place for, or cannot read, named by their path in the draft.
    pub fn from_draft(draft: &WhatsAppTemplateDraft) -> Result<TemplateSubmit, FieldErrors> {
        let mut errors = FieldErrors::default();
        let mut submit = TemplateSubmit {
            name: draft.name.clone(),
            category: draft.category.into(),
            language: draft.language.clone(),
            header_type: TemplateHeaderType::None,
            caption: None,
            body: String::new(),
            footer: None,
            safety_advice: None,
            buttons: Vec::new(),
            header_example: None,
            body_example: None,
        };
        for (i, c) in draft.components.iter().enumerate() {
            let p = Path::root().key("components").index(i);
            match c.kind {
                DraftComponentType::Header => {
                    let handle =
                        || c.example.as_ref().and_then(|e| e.header_handle.as_ref()).and_then(|h| h.first().cloned());
                    (submit.header_type, submit.caption) = match c.format {
                        Some(HeaderFormat::Text) => (TemplateHeaderType::Text, c.text.clone()),
                        Some(HeaderFormat::Image) => (TemplateHeaderType::Image, handle()),
                        Some(HeaderFormat::Video) => (TemplateHeaderType::Video, handle()),
                        Some(HeaderFormat::Document) => (TemplateHeaderType::Document, handle()),
                        None => (TemplateHeaderType::None, None),
                    };
                    let example = c.example.as_ref();
                    submit.header_example = match (example.and_then(|e| e.header_text.clone()), c.format) {
                        (Some(text), _) => Some(HeaderExample::Text(text)),
                        (None, Some(HeaderFormat::Text) | None) => None,
                        (None, Some(_)) => example.and_then(|e| e.header_handle.clone()).map(HeaderExample::Handle),
                    };
                }
                DraftComponentType::Body => {
                    match &c.text {
                        Some(t) => submit.body = t.clone(),
                        None => errors.push(p.key("text"), "InnoPaaS needs the body text"),
                    }
                    submit.safety_advice = c.add_security_recommendation;
                    submit.body_example = c.example.as_ref().and_then(|e| e.body_text.clone());
                }
                DraftComponentType::Footer => {
                    submit.footer = c.text.clone();
                    if c.code_expiration_minutes.is_some() {
                        errors.push(
                            p.key("code_expiration_minutes"),
                            "InnoPaaS has no field for it; write the expiry in the footer text",
                        );
                    }
                }
                DraftComponentType::Buttons => {
                    for (j, b) in c.buttons.iter().flatten().enumerate() {
                        let one_tap = matches!(b.otp_type, Some(OtpType::OneTap | OtpType::ZeroTap));
                        let url = b.url.clone().filter(|_| b.kind == ButtonType::Url);
                        let url_example = match (&url, &b.example) {
                            (Some(_), Some(e)) => e.values().into_iter().map(str::to_owned).collect(),
                            _ => Vec::new(),
                        };
                        let (phone_area, phone) = match b.phone_number.as_deref().map(split_phone_number) {
                            None => (None, None),
                            Some(Ok((area, national))) => (Some(area), Some(national)),
                            Some(Err(reason)) => {
                                errors.push(p.key("buttons").index(j).key("phone_number"), reason);
                                (None, None)
                            }
                        };
                        submit.buttons.push(TemplateButton {
                            action_type: action_type(b.kind, one_tap),
                            target_url: url,
                            button_example: url_example,
                            label: b.text.clone().unwrap_or_else(|| default_label(b.kind).into()),
                            phone_area,
                            phone,
                            package_name: b.package_name.clone().filter(|_| one_tap),
                            signature_hash: b.signature_hash.clone().filter(|_| one_tap),
                            auto_fill: b.autofill_text.clone().filter(|_| one_tap),
                        });
                    }
                }
            }
        }
        if errors.is_empty() {
            Ok(submit)
        } else {
            Err(errors)
        }
    }
}

/// InnoPaaS's `actionType` (PROVIDERS.md §2.7): 1 quick reply, 2 website, 3 call, 4 copy code,
/// 5 autofill (one-tap and zero-tap OTP buttons).
fn action_type(kind: ButtonType, one_tap: bool) -> u8 {
    match kind {
        ButtonType::QuickReply => 1,
        ButtonType::Url => 2,
        ButtonType::PhoneNumber => 3,
        ButtonType::Otp if one_tap => 5,
        ButtonType::CopyCode | ButtonType::Otp => 4,
    }
}

/// The label WhatsApp shows on buttons whose text it sets.
fn default_label(kind: ButtonType) -> &'static str {
    match kind {
        ButtonType::CopyCode | ButtonType::Otp => "Copy code",
        _ => "",
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
mod tests {
    use super::*;
    use serde_json::json;

    fn draft(value: serde_json::Value) -> WhatsAppTemplateDraft {
        serde_json::from_value(value).unwrap()
    }

    #[test]
    fn drafts_map_to_innopaas_fields() {
        let draft_in = draft(json!({
            "name": "login_code", "language": "en", "category": "AUTHENTICATION",
            "components": [
                {"type": "HEADER", "format": "IMAGE", "example": {"header_handle": ["https://cdn.example.com/a.jpg"]}},
                {"type": "BODY", "text": "{{1}} is your code.", "example": {"body_text": [["123456"]]}, "add_security_recommendation": true},
                {"type": "FOOTER", "text": "Valid for 10 minutes"},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "ONE_TAP", "text": "Copy code",
                    "autofill_text": "Autofill", "package_name": "com.example.app", "signature_hash": "K8a/AINcGX7"}]}
            ]
        }));
        let s = TemplateSubmit::from_draft(&draft_in).unwrap();
        assert_eq!(
            (s.header_type, s.caption.as_deref()),
            (TemplateHeaderType::Image, Some("https://cdn.example.com/a.jpg"))
        );
        assert_eq!(
            (s.body.as_str(), s.footer.as_deref(), s.safety_advice),
            ("{{1}} is your code.", Some("Valid for 10 minutes"), Some(true))
        );
        assert_eq!(s.category, gateway_core::content::whatsapp::TemplateCategory::Authentication);
        let b = &s.buttons[0];
        assert_eq!(
            (b.action_type, b.label.as_str(), b.package_name.as_deref(), b.auto_fill.as_deref()),
            (5, "Copy code", Some("com.example.app"), Some("Autofill"))
        );

        assert_eq!(s.header_example, Some(HeaderExample::Handle(vec!["https://cdn.example.com/a.jpg".into()])));
        assert_eq!(s.body_example, Some(vec![vec!["123456".to_owned()]]));

        // Website and call buttons, with the text header's and the body's examples (§2.7).
        let links = draft(json!({
            "name": "order_links", "language": "en", "category": "UTILITY",
            "components": [
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}", "example": {"header_text": ["A-1001"]}},
                {"type": "BODY", "text": "Hi {{1}}", "example": {"body_text": [["Ada"]]}},
                {"type": "BUTTONS", "buttons": [{"type": "PHONE_NUMBER", "text": "Call", "phone_number": "+85230012345"},
                    {"type": "URL", "text": "Track", "url": "https://x.example.com/t/{{1}}",
                     "example": ["https://x.example.com/t/A-1001"]},
                    {"type": "URL", "text": "Shop", "url": "https://x.example.com"}]}
            ]
        }));
        let s = TemplateSubmit::from_draft(&links).unwrap();
        assert_eq!(s.header_example, Some(HeaderExample::Text(vec!["A-1001".into()])));
        assert_eq!(s.body_example, Some(vec![vec!["Ada".to_owned()]]));
        let b: Vec<_> = s
            .buttons
            .iter()
            .map(|b| {
                (
                    b.action_type,
                    b.phone_area.as_deref(),
                    b.phone.as_deref(),
                    b.target_url.as_deref(),
                    b.button_example.clone(),
                )
            })
            .collect();
        assert_eq!(
            b,
            [
                (3, Some("852"), Some("30012345"), None, vec![]),
                (
                    2,
                    None,
                    None,
                    Some("https://x.example.com/t/{{1}}"),
                    vec!["https://x.example.com/t/A-1001".to_owned()]
                ),
                (2, None, None, Some("https://x.example.com"), vec![]),
            ]
        );

        let refused = draft(json!({
            "name": "login_code", "language": "en", "category": "AUTHENTICATION",
            "components": [
                {"type": "BODY", "text": "{{1}} is your code."},
                {"type": "FOOTER", "code_expiration_minutes": 10},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]}
            ]
        }));
        let errors = TemplateSubmit::from_draft(&refused).unwrap_err().into_vec();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "components[1].code_expiration_minutes");
    }

    #[test]
    fn a_call_number_without_a_known_calling_code_is_refused_at_its_field() {
        let call = |number: &str| {
            draft(json!({
                "name": "call_us", "language": "en", "category": "UTILITY",
                "components": [
                    {"type": "BODY", "text": "Questions?"},
                    {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "No"},
                        {"type": "PHONE_NUMBER", "text": "Call", "phone_number": number}]}
                ]
            }))
        };
        let s = TemplateSubmit::from_draft(&call("15550051310")).unwrap();
        assert_eq!(
            (s.buttons[1].phone_area.as_deref(), s.buttons[1].phone.as_deref()),
            (Some("1"), Some("5550051310"))
        );
        let errors = TemplateSubmit::from_draft(&call("+99912345678")).unwrap_err().into_vec();
        assert_eq!(errors.len(), 1, "{errors:?}");
        assert_eq!(errors[0].field, "components[1].buttons[1].phone_number");
        assert!(errors[0].reason.contains("phoneArea"), "{errors:?}");
    }
}
