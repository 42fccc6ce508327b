//! The templates the InnoPaaS stand-in knows, and the check of template sends against them
//! (strict).
//!
//! A template `template/submit` accepted is known from then on, by name. InnoPaaS has no read API
//! and the sandbox simulates no review for it, so a template is usable at once; only templates
//! created here are known (InnoPaaS's documents publish no example templates, unlike INCS's).
//!
//! A send naming a template the sandbox does not know is refused as the v2 API documents it
//! (PROVIDERS.md §2.7): code `143`, "WhatsApp Tempalte Not Found", InnoPaaS's spelling. InnoPaaS
//! documents no answer for a wrong parameter count; the sandbox mirrors its INCS rule, Meta's
//! `(#132000)` message passed on, here under InnoPaaS's parameter-error code `400`. The counts
//! compared: the text header's `{{n}}` (given as `header.paramValue`) or a media header (given as
//! `header` with a `link`), the body's `{{n}}` (`bodyParams`), and one `buttonParams` entry per
//! website button with a variable, copy-code and autofill button (`actionType` 2 with `{{`, 4, 5).

use std::collections::HashMap;
use std::sync::Mutex;

use serde_json::{Map, Value};

use super::InnopaasError;
use crate::incs::templates::variables_in;
use crate::recording::lock;

/// The v2 API's answer for a template it does not have (PROVIDERS.md §2.7), spelling included.
pub(crate) const NOT_FOUND: &str = "WhatsApp Tempalte Not Found";
const NOT_FOUND_CODE: &str = "143";
/// Meta's answer for a wrong parameter count, as the INCS stand-in passes it on too.
pub(crate) const PARAMETER_COUNT: &str = "(#132000) Number of parameters does not match the expected number of params";

/// The parameters a send of one template must give.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Expected {
    /// A text header's variables (0 or 1), or `None` for a media header, which needs its link.
    header_text: Option<usize>,
    body: usize,
    buttons: usize,
}

/// The templates created here, by name.
#[derive(Default)]
pub(crate) struct Templates {
    known: Mutex<HashMap<String, Expected>>,
}

fn text<'a>(fields: &'a Map<String, Value>, name: &str) -> &'a str {
    fields.get(name).and_then(Value::as_str).unwrap_or("")
}

impl Templates {
    /// Remembers a template `template/submit` accepted (its body already checked).
    pub(crate) fn remember(&self, fields: &Map<String, Value>) {
        let header_text = match fields.get("headerType").and_then(Value::as_u64) {
            Some(3..=5) => None,
            Some(2) => Some(variables_in(text(fields, "caption"))),
            _ => Some(0),
        };
        let buttons = fields
            .get("buttons")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter(|b| match b.get("actionType").and_then(Value::as_u64) {
                Some(2) => b.get("targetUrl").and_then(Value::as_str).is_some_and(|u| u.contains("{{")),
                Some(4 | 5) => true,
                _ => false,
            })
            .count();
        let expected = Expected { header_text, body: variables_in(text(fields, "messageBody")), buttons };
        lock(&self.known).insert(text(fields, "name").to_owned(), expected);
    }

    /// Checks a template send (`templateName`, `header`, `bodyParams`, `buttonParams`, already
    /// checked field by field) against the template it names.
    pub(crate) fn check_send(&self, fields: &Map<String, Value>) -> Result<(), InnopaasError> {
        let expected = lock(&self.known)
            .get(text(fields, "templateName"))
            .copied()
            .ok_or_else(|| InnopaasError::code(NOT_FOUND_CODE, NOT_FOUND))?;
        let count = |name: &str| fields.get(name).and_then(Value::as_array).map_or(0, Vec::len);
        let header = fields.get("header").and_then(Value::as_object);
        let header_fits = match (expected.header_text, header) {
            (None, Some(h)) => h.get("link").is_some(),
            (None, None) => false,
            (Some(0), h) => h.is_none(),
            (Some(_), h) => h.is_some_and(|h| h.get("paramValue").and_then(Value::as_str).is_some()),
        };
        if header_fits && count("bodyParams") == expected.body && count("buttonParams") == expected.buttons {
            Ok(())
        } else {
            Err(InnopaasError::invalid(PARAMETER_COUNT))
        }
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;
    use serde_json::json;

    fn fields(v: Value) -> Map<String, Value> {
        v.as_object().cloned().unwrap()
    }

    #[test]
    fn sends_are_checked_against_the_template_they_name() {
        let templates = Templates::default();
        templates.remember(&fields(
            json!({"name": "order_update", "headerType": 3, "messageBody": "Hi {{1}}, order {{2}}",
            "buttons": [{"actionType": 1, "label": "Stop"},
                {"actionType": 2, "label": "Track", "targetUrl": "https://x.example.com/t/{{1}}"},
                {"actionType": 2, "label": "Shop", "targetUrl": "https://x.example.com"}]}),
        ));
        templates.remember(&fields(json!({"name": "login_code", "headerType": 2, "caption": "Code for {{1}}",
            "messageBody": "{{1}} is your code.", "buttons": [{"actionType": 4, "label": "Copy code"}]})));
        let send = |v: Value| templates.check_send(&fields(v)).map_err(|e| (e.code.to_string(), e.message.to_string()));
        let image = json!({"type": "image", "link": "https://x.example.com/a.png"});
        let one = json!([{"type": "text", "value": "A-1"}]);
        assert_eq!(
            send(
                json!({"templateName": "order_update", "header": image, "bodyParams": ["Ada", "A-1"], "buttonParams": one})
            ),
            Ok(())
        );
        assert_eq!(
            send(json!({"templateName": "login_code", "header": {"type": "text", "paramValue": "Ada"},
                "bodyParams": ["123456"], "buttonParams": [{"type": "text", "value": "123456"}]})),
            Ok(())
        );
        let count = Err(("400".to_owned(), PARAMETER_COUNT.to_owned()));
        for wrong in [
            json!({"templateName": "order_update", "header": image, "bodyParams": ["Ada"], "buttonParams": one}),
            json!({"templateName": "order_update", "bodyParams": ["Ada", "A-1"], "buttonParams": one}),
            json!({"templateName": "order_update", "header": image, "bodyParams": ["Ada", "A-1"]}),
            json!({"templateName": "login_code", "header": {"type": "text"}, "bodyParams": ["1"], "buttonParams": one}),
            json!({"templateName": "login_code", "bodyParams": ["1"], "buttonParams": one}),
        ] {
            assert_eq!(send(wrong.clone()), count, "{wrong}");
        }
        assert_eq!(send(json!({"templateName": "order_updates"})), Err(("143".to_owned(), NOT_FOUND.to_owned())));
    }
}
