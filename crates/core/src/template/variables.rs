//! What a template send must fill in, read from the template as the provider describes it, and
//! the check of a send against it: `{{n}}` variables per WhatsApp component (PROVIDERS.md §3.2,
//! Meta 132000) and `[var]` placeholders of RCS templates (INCS 10004 "insufficient custom
//! params"). A send that does not fit would fail at the provider; the gateway refuses it first.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::placeholders;
use crate::content::whatsapp::{ComponentType, TemplateComponent};
use crate::validate::{FieldErrors, Path};

/// The variables of a WhatsApp template: how many parameters each component takes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhatsAppVariables {
    /// Distinct `{{n}}` in a text header; `None` for a media header or none (not checked).
    pub header: Option<usize>,
    pub body: usize,
    /// Button index → parameters it takes (a URL button with a `{{1}}`, a copy-code button).
    pub buttons: BTreeMap<usize, usize>,
}

fn count(text: Option<&str>) -> usize {
    let found: BTreeSet<u32> = text.and_then(|t| placeholders(t).ok()).unwrap_or_default().into_iter().collect();
    found.len()
}

fn upper(v: &Value, key: &str) -> String {
    v.get(key).and_then(Value::as_str).unwrap_or_default().to_ascii_uppercase()
}

impl WhatsAppVariables {
    /// From Meta's component list (`[{type: HEADER|BODY|FOOTER|BUTTONS, ...}]`, as INCS returns
    /// it). `None` when the list says nothing a check could rely on (no BODY).
    pub fn from_meta_components(components: &[Value]) -> Option<Self> {
        let mut out = Self::default();
        let mut has_body = false;
        for c in components {
            match upper(c, "type").as_str() {
                "HEADER" if upper(c, "format") == "TEXT" => {
                    out.header = Some(count(c.get("text").and_then(Value::as_str)));
                }
                "BODY" => {
                    has_body = true;
                    out.body = count(c.get("text").and_then(Value::as_str));
                }
                "BUTTONS" => {
                    let buttons = c.get("buttons").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
                    for (i, b) in buttons.iter().enumerate() {
                        let n = match upper(b, "type").as_str() {
                            "URL" => count(b.get("url").and_then(Value::as_str)),
                            "COPY_CODE" => 1,
                            _ => 0,
                        };
                        if n > 0 {
                            out.buttons.insert(i, n);
                        }
                    }
                }
                _ => {}
            }
        }
        has_body.then_some(out)
    }

    /// Checks a send's components against the template; errors name
    /// `template.components[i].parameters` (or `.index`, or `template.components` for a
    /// component the template needs and the send lacks).
    pub fn check(&self, components: &[TemplateComponent], root: &Path, errors: &mut FieldErrors) {
        let list = root.key("components");
        let mut seen_header = false;
        let mut seen_body = false;
        let mut seen_buttons = BTreeSet::new();
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        for (i, c) in components.iter().enumerate() {
            let at = list.index(i);
            let given = c.parameters.len();
            match c.kind {
                ComponentType::Header => {
                    seen_header = true;
                    if let Some(want) = self.header.filter(|w| *w != given) {
                        errors.push(
                            at.key("parameters"),
                            format!("the template's header has {want} variable{}, got {given}", plural(want)),
                        );
                    }
                }
                ComponentType::Body => {
                    seen_body = true;
                    if given != self.body {
                        errors.push(
                            at.key("parameters"),
                            format!("the template's body has {} variable{}, got {given}", self.body, plural(self.body)),
                        );
                    }
                }
                ComponentType::Button => {
                    let Some(index) = c.index.as_deref().and_then(|i| i.trim().parse::<usize>().ok()) else { continue };
                    seen_buttons.insert(index);
                    match self.buttons.get(&index) {
                        Some(want) if *want != given => errors.push(
                            at.key("parameters"),
                            format!("the template's button {index} has {want} variable{}, got {given}", plural(*want)),
                        ),
                        Some(_) => {}
                        None if given > 0 => errors
                            .push(at.key("index"), format!("the template has no button {index} that takes parameters")),
                        None => {}
                    }
                }
            }
        }
        if !seen_header && self.header.is_some_and(|n| n > 0) {
            errors
                .push(list.clone(), "the template's header has variables: add a header component with its parameters");
        }
        if !seen_body && self.body > 0 {
            errors.push(
                list.clone(),
                format!("the template's body has {} variable{}: add a body component", self.body, plural(self.body)),
            );
        }
        for index in self.buttons.keys().filter(|i| !seen_buttons.contains(i)) {
            errors.push(list.clone(), format!("the template's button {index} has a variable: add a button component"));
        }
    }
}

/// The `[var]` placeholders of an RCS template's content (INCS: text `textMessage`, card titles
/// and descriptions), wherever they appear in it.
pub fn rcs_variables(content: &Value) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![content];
    while let Some(v) = stack.pop() {
        match v {
            Value::String(s) => {
                let mut rest = s.as_str();
                while let Some(start) = rest.find('[') {
                    let after = &rest[start + 1..];
                    let Some(end) = after.find(']') else { break };
                    let name = &after[..end];
                    if !name.is_empty() && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_') {
                        out.insert(name.to_owned());
                    }
                    rest = &after[end + 1..];
                }
            }
            Value::Array(items) => stack.extend(items),
            Value::Object(map) => stack.extend(map.values()),
            _ => {}
        }
    }
    out
}

/// Checks that an RCS send's `parameters` cover every variable; errors name
/// `template.parameters`.
pub fn check_rcs(
    variables: &BTreeSet<String>,
    parameters: Option<&BTreeMap<String, String>>,
    root: &Path,
    errors: &mut FieldErrors,
) {
    let missing: Vec<&str> =
        variables.iter().filter(|v| parameters.is_none_or(|p| !p.contains_key(*v))).map(String::as_str).collect();
    if !missing.is_empty() {
        errors.push(root.key("parameters"), format!("the template's variables lack a value: {}", missing.join(", ")));
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::json;

    use super::*;

    fn components(v: Value) -> Vec<TemplateComponent> {
        serde_json::from_value(v).unwrap()
    }

    fn meta() -> WhatsAppVariables {
        WhatsAppVariables::from_meta_components(
            json!([
                {"type": "HEADER", "format": "TEXT", "text": "Order {{1}}"},
                {"type": "BODY", "text": "Hi {{1}}, your order {{2}} ships {{2}}."},
                {"type": "FOOTER", "text": "Thanks"},
                {"type": "BUTTONS", "buttons": [
                    {"type": "QUICK_REPLY", "text": "Stop"},
                    {"type": "URL", "text": "Track", "url": "https://x.example/t/{{1}}"},
                    {"type": "COPY_CODE", "example": "SAVE10"}]}
            ])
            .as_array()
            .unwrap(),
        )
        .unwrap()
    }

    #[test]
    fn variables_are_counted_per_component() {
        let v = meta();
        assert_eq!(v.header, Some(1));
        assert_eq!(v.body, 2, "distinct variables");
        assert_eq!(v.buttons, BTreeMap::from([(1, 1), (2, 1)]));
        assert_eq!(WhatsAppVariables::from_meta_components(&[json!({"type": "FOOTER"})]), None);
    }

    fn errors_of(send: Value) -> Vec<(String, String)> {
        let mut errors = FieldErrors::default();
        meta().check(&components(send), &Path::root().key("template"), &mut errors);
        errors.into_vec().into_iter().map(|e| (e.field, e.reason)).collect()
    }

    #[test]
    fn a_send_that_fits_passes() {
        let ok = errors_of(json!([
            {"type": "header", "parameters": [{"type": "text", "text": "A-1"}]},
            {"type": "body", "parameters": [{"type": "text", "text": "Li"}, {"type": "text", "text": "A-1"}]},
            {"type": "button", "sub_type": "url", "index": "1", "parameters": [{"type": "text", "text": "A-1"}]},
            {"type": "button", "sub_type": "COPY_CODE", "index": 2, "parameters": [{"type": "coupon_code", "coupon_code": "S"}]}
        ]));
        assert_eq!(ok, vec![]);
    }

    #[test]
    fn every_misfit_is_named() {
        let cases: Vec<(Value, &str)> = vec![
            (
                json!([{"type": "body", "parameters": [{"type": "text", "text": "Li"}]}]),
                "template.components[0].parameters",
            ),
            (json!([{"type": "header", "parameters": []}]), "template.components[0].parameters"),
            (
                json!([{"type": "button", "sub_type": "quick_reply", "index": "0", "parameters": [{"type": "payload", "payload": "x"}]}]),
                "template.components[0].index",
            ),
            (json!([]), "template.components"),
        ];
        for (send, field) in cases {
            let errors = errors_of(send.clone());
            assert!(errors.iter().any(|(f, _)| f == field), "{send}: {errors:?}");
        }
    }

    #[test]
    fn rcs_parameters_must_cover_every_variable() {
        let content =
            json!({"textMessage": "Hi [name], code [code]. [not a var] [x-y]", "suggestions": [{"text": "[cta]"}]});
        let vars = rcs_variables(&content);
        assert_eq!(vars, BTreeSet::from(["name".into(), "code".into(), "cta".into()]));
        let mut errors = FieldErrors::default();
        let given = BTreeMap::from([("name".to_owned(), "Li".to_owned())]);
        check_rcs(&vars, Some(&given), &Path::root().key("template"), &mut errors);
        let errors = errors.into_vec();
        assert_eq!(errors.len(), 1);
        assert_eq!(errors[0].field, "template.parameters");
        assert!(errors[0].reason.contains("code") && errors[0].reason.contains("cta"));
    }
}
