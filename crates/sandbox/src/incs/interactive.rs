//! Structural checks of a WhatsApp `interactive` object, with Meta's limits (PROVIDERS.md §3.2).
//!
//! INCS hands the object to Meta unchanged, and Meta refuses one that breaks these limits. The
//! sandbox checks them on its own, from the wire JSON, rather than through the gateway's types, so
//! a message the gateway builds wrongly is caught here and not waved through by the same code.

use std::collections::HashSet;

use serde_json::{Map, Value};

const KINDS: [&str; 4] = ["cta_url", "list", "carousel", "button"];

/// Checks an `interactive` object; the error is the message INCS would answer with.
pub(super) fn check(interactive: &Map<String, Value>) -> Result<(), String> {
    let kind = string(interactive, "interactive", "type")?;
    if !KINDS.contains(&kind) {
        return Err(format!("The interactive.type must be one of {}.", KINDS.join(", ")));
    }
    let body = object(interactive, "interactive", "body")?;
    let body_limit = if kind == "list" { 4096 } else { 1024 };
    at_most(string(body, "interactive.body", "text")?, "interactive.body.text", body_limit)?;
    if kind == "carousel" {
        for field in ["header", "footer"] {
            if interactive.get(field).is_some_and(|v| !v.is_null()) {
                return Err(format!("The interactive.{field} is not allowed for a carousel."));
            }
        }
    } else {
        if let Some(header) = optional_object(interactive, "interactive", "header")? {
            check_header(header, kind)?;
        }
        if let Some(footer) = optional_object(interactive, "interactive", "footer")? {
            at_most(string(footer, "interactive.footer", "text")?, "interactive.footer.text", 60)?;
        }
    }
    let action = object(interactive, "interactive", "action")?;
    match kind {
        "cta_url" => check_cta_url(action, "interactive.action"),
        "list" => check_list(action),
        "button" => check_buttons(action),
        _ => check_carousel(action),
    }
}

fn check_header(header: &Map<String, Value>, kind: &str) -> Result<(), String> {
    match string(header, "interactive.header", "type")? {
        "text" => at_most(string(header, "interactive.header", "text")?, "interactive.header.text", 60),
        media @ ("image" | "video" | "document") if kind != "list" => {
            link(object(header, "interactive.header", media)?, &format!("interactive.header.{media}"))
        }
        _ if kind == "list" => Err("The interactive.header.type must be text for a list.".into()),
        _ => Err("The interactive.header.type must be one of text, image, video, document.".into()),
    }
}

fn check_cta_url(action: &Map<String, Value>, path: &str) -> Result<(), String> {
    if string(action, path, "name")? != "cta_url" {
        return Err(format!("The {path}.name must be cta_url."));
    }
    let parameters_path = format!("{path}.parameters");
    let parameters = object(action, path, "parameters")?;
    at_most(string(parameters, &parameters_path, "display_text")?, &format!("{parameters_path}.display_text"), 20)?;
    let url = string(parameters, &parameters_path, "url")?;
    if !(url.starts_with("https://") || url.starts_with("http://")) {
        return Err(format!("The {parameters_path}.url must be a valid URL."));
    }
    Ok(())
}

fn check_list(action: &Map<String, Value>) -> Result<(), String> {
    at_most(string(action, "interactive.action", "button")?, "interactive.action.button", 20)?;
    let sections = array(action, "interactive.action", "sections", 1, 10)?;
    let mut rows_in_all = 0;
    for (i, section) in sections.iter().enumerate() {
        let path = format!("interactive.action.sections.{i}");
        let section = as_object(section, &path)?;
        if let Some(title) = optional_string(section, &path, "title")? {
            at_most(title, &format!("{path}.title"), 24)?;
        }
        let rows = array(section, &path, "rows", 1, 10)?;
        rows_in_all += rows.len();
        for (j, row) in rows.iter().enumerate() {
            let row_path = format!("{path}.rows.{j}");
            let row = as_object(row, &row_path)?;
            at_most(string(row, &row_path, "id")?, &format!("{row_path}.id"), 200)?;
            at_most(string(row, &row_path, "title")?, &format!("{row_path}.title"), 24)?;
            if let Some(description) = optional_string(row, &row_path, "description")? {
                at_most(description, &format!("{row_path}.description"), 72)?;
            }
        }
    }
    if rows_in_all > 10 {
        return Err("The interactive.action.sections may not have more than 10 rows in all.".into());
    }
    Ok(())
}

fn check_buttons(action: &Map<String, Value>) -> Result<(), String> {
    let buttons = array(action, "interactive.action", "buttons", 1, 3)?;
    let mut titles = HashSet::new();
    for (i, button) in buttons.iter().enumerate() {
        let path = format!("interactive.action.buttons.{i}");
        let button = as_object(button, &path)?;
        if string(button, &path, "type")? != "reply" {
            return Err(format!("The {path}.type must be reply."));
        }
        let title = check_reply(object(button, &path, "reply")?, &format!("{path}.reply"))?;
        if !titles.insert(title) {
            return Err(format!("The {path}.reply.title must be unique."));
        }
    }
    Ok(())
}

/// A reply or quick-reply button: id ≤ 256, title ≤ 20. Returns the title.
fn check_reply<'a>(reply: &'a Map<String, Value>, path: &str) -> Result<&'a str, String> {
    at_most(string(reply, path, "id")?, &format!("{path}.id"), 256)?;
    let title = string(reply, path, "title")?;
    at_most(title, &format!("{path}.title"), 20)?;
    Ok(title)
}

fn check_carousel(action: &Map<String, Value>) -> Result<(), String> {
    let cards = array(action, "interactive.action", "cards", 2, 10)?;
    let mut first_buttons: Option<(String, usize)> = None;
    for (i, card) in cards.iter().enumerate() {
        let path = format!("interactive.action.cards.{i}");
        let card = as_object(card, &path)?;
        let header_path = format!("{path}.header");
        let header = object(card, &path, "header")?;
        match string(header, &header_path, "type")? {
            media @ ("image" | "video") => {
                link(object(header, &header_path, media)?, &format!("{header_path}.{media}"))?
            }
            _ => return Err(format!("The {header_path}.type must be image or video.")),
        }
        if let Some(body) = optional_object(card, &path, "body")? {
            let text = string(body, &format!("{path}.body"), "text")?;
            at_most(text, &format!("{path}.body.text"), 160)?;
            if text.lines().count() > 2 {
                return Err(format!("The {path}.body.text may not have more than 2 lines."));
            }
        }
        let action_path = format!("{path}.action");
        let card_action = object(card, &path, "action")?;
        // Every card carries the same kind and number of buttons, so the first card sets them.
        let buttons = if card_action.contains_key("buttons") {
            let buttons = array(card_action, &action_path, "buttons", 1, 2)?;
            for (j, button) in buttons.iter().enumerate() {
                let button_path = format!("{action_path}.buttons.{j}");
                let button = as_object(button, &button_path)?;
                if string(button, &button_path, "type")? != "quick_reply" {
                    return Err(format!("The {button_path}.type must be quick_reply."));
                }
                check_reply(object(button, &button_path, "quick_reply")?, &format!("{button_path}.quick_reply"))?;
            }
            ("quick_reply".to_owned(), buttons.len())
        } else {
            check_cta_url(card_action, &action_path)?;
            ("cta_url".to_owned(), 1)
        };
        match &first_buttons {
            None => first_buttons = Some(buttons),
            Some(first) if *first != buttons => {
                return Err(format!("The {action_path} must hold the same button type and count as the first card."))
            }
            Some(_) => {}
        }
    }
    Ok(())
}

fn link(media: &Map<String, Value>, path: &str) -> Result<(), String> {
    let link = string(media, path, "link")?;
    if !(link.starts_with("https://") || link.starts_with("http://")) {
        return Err(format!("The {path}.link must be a valid URL."));
    }
    Ok(())
}

fn at_most(text: &str, path: &str, limit: usize) -> Result<(), String> {
    if text.chars().count() > limit {
        return Err(format!("The {path} may not be greater than {limit} characters."));
    }
    Ok(())
}

fn as_object<'a>(value: &'a Value, path: &str) -> Result<&'a Map<String, Value>, String> {
    value.as_object().ok_or_else(|| format!("The {path} must be an object."))
}

fn optional_object<'a>(
    fields: &'a Map<String, Value>,
    parent: &str,
    name: &str,
) -> Result<Option<&'a Map<String, Value>>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => as_object(value, &format!("{parent}.{name}")).map(Some),
    }
}

fn object<'a>(fields: &'a Map<String, Value>, parent: &str, name: &str) -> Result<&'a Map<String, Value>, String> {
    optional_object(fields, parent, name)?.ok_or_else(|| format!("The {parent}.{name} field is required."))
}

fn optional_string<'a>(fields: &'a Map<String, Value>, parent: &str, name: &str) -> Result<Option<&'a str>, String> {
    match fields.get(name) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(value)) => Ok(Some(value)),
        Some(_) => Err(format!("The {parent}.{name} must be a string.")),
    }
}

fn string<'a>(fields: &'a Map<String, Value>, parent: &str, name: &str) -> Result<&'a str, String> {
    match optional_string(fields, parent, name)? {
        Some(value) if !value.trim().is_empty() => Ok(value),
        _ => Err(format!("The {parent}.{name} field is required.")),
    }
}

fn array<'a>(
    fields: &'a Map<String, Value>,
    parent: &str,
    name: &str,
    min: usize,
    max: usize,
) -> Result<&'a [Value], String> {
    let path = format!("{parent}.{name}");
    match fields.get(name) {
        None | Some(Value::Null) => Err(format!("The {path} field is required.")),
        Some(Value::Array(items)) if items.len() < min => Err(format!("The {path} must have at least {min} items.")),
        Some(Value::Array(items)) if items.len() > max => {
            Err(format!("The {path} may not have more than {max} items."))
        }
        Some(Value::Array(items)) => Ok(items),
        Some(_) => Err(format!("The {path} must be an array.")),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use serde_json::{json, Value};

    use super::check;

    fn verdict(interactive: Value) -> Result<(), String> {
        check(interactive.as_object().unwrap())
    }

    fn buttons(n: usize) -> Value {
        let buttons: Vec<Value> = (0..n)
            .map(|i| json!({"type": "reply", "reply": {"id": format!("b{i}"), "title": format!("Option {i}")}}))
            .collect();
        json!({"type": "button", "body": {"text": "Pick one"}, "action": {"buttons": buttons}})
    }

    fn card(index: usize, action: Value) -> Value {
        json!({"card_index": index, "type": "cta_url",
               "header": {"type": "image", "image": {"link": "https://example.com/c.png"}},
               "body": {"text": "Card"}, "action": action})
    }

    fn quick_replies(n: usize) -> Value {
        let buttons: Vec<Value> = (0..n)
            .map(|i| json!({"type": "quick_reply", "quick_reply": {"id": format!("q{i}"), "title": format!("Reply {i}")}}))
            .collect();
        json!({"buttons": buttons})
    }

    fn cta() -> Value {
        json!({"name": "cta_url", "parameters": {"display_text": "Open", "url": "https://example.com"}})
    }

    fn list(rows_per_section: &[usize]) -> Value {
        let sections: Vec<Value> = rows_per_section
            .iter()
            .enumerate()
            .map(|(s, &n)| {
                let rows: Vec<Value> =
                    (0..n).map(|r| json!({"id": format!("r{s}-{r}"), "title": format!("Row {r}")})).collect();
                json!({"title": format!("Section {s}"), "rows": rows})
            })
            .collect();
        json!({"type": "list", "header": {"type": "text", "text": "Menu"}, "body": {"text": "Choose"},
               "action": {"button": "Options", "sections": sections}})
    }

    /// The shapes of the INCS documents' examples, and Meta's limits on each side of the line.
    #[test]
    fn meta_limits_hold_on_each_kind() {
        let long = |n: usize| "x".repeat(n);
        let mut duplicate_titles = buttons(2);
        duplicate_titles["action"]["buttons"][1]["reply"]["title"] = json!("Option 0");
        let mut long_title = buttons(1);
        long_title["action"]["buttons"][0]["reply"]["title"] = json!(long(21));
        let mut long_footer = buttons(1);
        long_footer["footer"] = json!({"text": long(61)});
        let mut list_image_header = list(&[1]);
        list_image_header["header"] = json!({"type": "image", "image": {"link": "https://example.com/a.png"}});
        let mut long_row = list(&[1]);
        long_row["action"]["sections"][0]["rows"][0]["description"] = json!(long(73));
        let cta_url = json!({"type": "cta_url", "body": {"text": "See"}, "action": cta()});
        let mut long_label = cta_url.clone();
        long_label["action"]["parameters"]["display_text"] = json!(long(21));
        let carousel =
            |cards: Vec<Value>| json!({"type": "carousel", "body": {"text": "Offers"}, "action": {"cards": cards}});
        let mut carousel_with_header = carousel(vec![card(0, cta()), card(1, cta())]);
        carousel_with_header["header"] = json!({"type": "text", "text": "No"});
        let mut three_line_card = card(1, cta());
        three_line_card["body"]["text"] = json!("a\nb\nc");

        let cases: Vec<(&str, Value, Option<&str>)> = vec![
            ("3 reply buttons", buttons(3), None),
            ("4 reply buttons", buttons(4), Some("interactive.action.buttons may not have more than 3 items")),
            ("no buttons", buttons(0), Some("interactive.action.buttons must have at least 1 items")),
            ("duplicate titles", duplicate_titles, Some("interactive.action.buttons.1.reply.title must be unique")),
            ("title of 21", long_title, Some("interactive.action.buttons.0.reply.title may not be greater than 20")),
            ("footer of 61", long_footer, Some("interactive.footer.text may not be greater than 60")),
            ("list of 10 rows", list(&[5, 5]), None),
            ("list of 11 rows", list(&[5, 6]), Some("more than 10 rows in all")),
            ("11 sections", list(&[1; 11]), Some("interactive.action.sections may not have more than 10 items")),
            ("list with image header", list_image_header, Some("interactive.header.type must be text for a list")),
            ("row description of 73", long_row, Some("rows.0.description may not be greater than 72")),
            ("cta_url", cta_url, None),
            ("cta label of 21", long_label, Some("display_text may not be greater than 20")),
            ("carousel of 2", carousel(vec![card(0, cta()), card(1, cta())]), None),
            ("carousel of 1", carousel(vec![card(0, cta())]), Some("cards must have at least 2 items")),
            ("carousel of 11", carousel((0..11).map(|i| card(i, cta())).collect()), Some("more than 10 items")),
            ("carousel header", carousel_with_header, Some("interactive.header is not allowed for a carousel")),
            (
                "mixed cards",
                carousel(vec![card(0, quick_replies(2)), card(1, quick_replies(1))]),
                Some("cards.1.action must hold the same button type and count"),
            ),
            ("quick-reply cards", carousel(vec![card(0, quick_replies(2)), card(1, quick_replies(2))]), None),
            (
                "three-line card",
                carousel(vec![card(0, cta()), three_line_card]),
                Some("may not have more than 2 lines"),
            ),
            ("product", json!({"type": "product", "action": {}}), Some("interactive.type must be one of")),
        ];
        for (name, interactive, refusal) in cases {
            match (verdict(interactive), refusal) {
                (Ok(()), None) => {}
                (Err(message), Some(expected)) => assert!(message.contains(expected), "{name}: {message}"),
                (outcome, expected) => panic!("{name}: got {outcome:?}, expected refusal {expected:?}"),
            }
        }
    }
}
