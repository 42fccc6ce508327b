//! INCS's api host family: WABA templates (`/external/templates`), RCS templates
//! (`/external/templates/rcs`) and the account (`/external/account`), PROVIDERS.md §1.6–§1.8.
//!
//! A template is `PENDING` when created and reviewed after the configured delay: `APPROVED`, or
//! `REJECTED` (reason `INVALID_FORMAT`) when its name starts with `reject`, so callers can try
//! both outcomes. Like message statuses, a template's status is a pure function of the time since
//! it was created, so what a read shows and what the callback says always agree. A WhatsApp
//! template's review also posts a `template_status_update` callback (seeds/003's shape) to the
//! INCS callback URL; INCS documents template callbacks for WhatsApp only, so RCS reviews post
//! none. A deleted template's pending callback still arrives, as a late one would.
//!
//! A WhatsApp template send (strict) must name a template INCS knows and give each component as
//! many parameters as the template has variables, else INCS's 10002 with Meta's code inside:
//! 132001 for a name that is not an approved template, 132000 for a wrong count (PROVIDERS.md
//! §3.2). Known are the templates created here once approved, and the documents' own examples
//! (seeds/001: `test_button_reply_1`, `test_header_image_5`, `test_header_text_2`,
//! `test_button_code_1`, `authentication_ca`), always approved and not listed.
//!
//! Decisions where INCS is silent: template ids are 16-digit numbers that grow with each create,
//! so `last_id` paging returns the templates created after it, oldest first; every configured
//! certification code sees the same templates (the documents use one code per host family of the
//! same number); a (name, language) pair, or an RCS name, can be created once. Body problems are
//! code 400 in INCS's short style (`"category require"`, `"name is invalid"`), as its template
//! pages show; a missing template is code 400 `"The template is not found."`.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use actix_web::http::Method;
use actix_web::{web, HttpRequest, HttpResponse};
use serde::{Deserialize, Serialize};
use serde_json::{json, Map, Value};

use super::{method_not_allowed, success, EmptyObject, Incs, IncsError, FIRST_BUSINESS_PHONE, FIRST_CHANNEL_ID};
use crate::callbacks::{Callback, CallbackJob};
use crate::recording::{lock, RequestBody};

const WABA_PATH: &str = "/external/templates";
const RCS_PATH: &str = "/external/templates/rcs";
const ACCOUNT_PATH: &str = "/external/account";

pub(crate) const NOT_FOUND: &str = "The template is not found.";
/// Meta's answers for a template send that does not fit, as INCS passes them on in a 10002.
pub(crate) const UNKNOWN_TEMPLATE: &str = "(#132001) Template name does not exist in the translation";
pub(crate) const PARAMETER_COUNT: &str = "(#132000) Number of parameters does not match the expected number of params";
const MAX_WABA_NAME: usize = 100;
const MAX_RCS_NAME: usize = 25;
const DEFAULT_PAGE: u64 = 10;
const MAX_PAGE: u64 = 100;
/// The first template id; ids count up from a 16-digit number like Meta's.
const FIRST_TEMPLATE_ID: u64 = 4_166_201_267_033_543;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Family {
    Waba,
    Rcs,
}

#[derive(Debug, Clone)]
struct Template {
    family: Family,
    name: String,
    /// WABA only.
    language: String,
    category: Option<String>,
    /// RCS only: `text`, `richcard`, `carousel`.
    kind: String,
    /// WABA `components` or RCS `content`, as created.
    body: Value,
    created: Instant,
    created_ms: i64,
    approved: bool,
}

/// The template store and its review delay.
pub(crate) struct Templates {
    review_delay: Duration,
    store: Mutex<BTreeMap<u64, Template>>,
}

/// The documents' example templates (seeds/001), in Meta's creation shape: what an INCS account
/// of the documents has, so their send examples go through.
fn documented() -> Vec<(&'static str, Value)> {
    vec![
        (
            "test_button_reply_1",
            json!([{"type": "BODY", "text": "Would you like to hear more?"},
            {"type": "BUTTONS", "buttons": [{"type": "QUICK_REPLY", "text": "Yes"}, {"type": "QUICK_REPLY", "text": "No"}]}]),
        ),
        (
            "test_header_image_5",
            json!([{"type": "HEADER", "format": "IMAGE"}, {"type": "BODY", "text": "Our new collection is here."}]),
        ),
        (
            "test_header_text_2",
            json!([{"type": "HEADER", "format": "TEXT", "text": "Offer of {{1}}"},
            {"type": "BODY", "text": "Until {{1}}, use code {{2}} for {{3}} off."}]),
        ),
        (
            "test_button_code_1",
            json!([{"type": "BODY", "text": "Your coupon is ready."},
            {"type": "BUTTONS", "buttons": [{"type": "COPY_CODE", "example": "843924"}]}]),
        ),
        (
            "authentication_ca",
            json!([{"type": "BODY", "text": "{{1}} is your verification code."},
            {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE", "text": "Copy code"}]}]),
        ),
    ]
}

/// Distinct `{{n}}` in a text.
pub(crate) fn variables_in(text: &str) -> usize {
    let mut seen = std::collections::BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("{{") {
        rest = &rest[start + 2..];
        if let Some(end) = rest.find("}}") {
            seen.insert(rest[..end].trim().to_owned());
            rest = &rest[end + 2..];
        }
    }
    seen.len()
}

/// The parameters a send must give, by component (`header`, `body`, `button/<index>`), read from a
/// template's Meta components: a text header's and the body's variables, one for a media header,
/// one for a URL button with a variable and for a copy-code button.
fn expected_parameters(components: &Value) -> BTreeMap<String, usize> {
    let mut expected = BTreeMap::new();
    for c in components.as_array().into_iter().flatten() {
        let text = c.get("text").and_then(Value::as_str).unwrap_or("");
        match c.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
            Some("HEADER") => {
                let n = match c.get("format").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
                    Some("IMAGE" | "VIDEO" | "DOCUMENT") => 1,
                    _ => variables_in(text),
                };
                expected.insert("header".to_owned(), n);
            }
            Some("BODY") => {
                expected.insert("body".to_owned(), variables_in(text));
            }
            Some("BUTTONS") => {
                for (i, b) in c.get("buttons").and_then(Value::as_array).into_iter().flatten().enumerate() {
                    let n = match b.get("type").and_then(Value::as_str).map(str::to_ascii_uppercase).as_deref() {
                        Some("URL") => variables_in(b.get("url").and_then(Value::as_str).unwrap_or("")),
                        Some("COPY_CODE") => 1,
                        _ => 0,
                    };
                    expected.insert(format!("button/{i}"), n);
                }
            }
            _ => {}
        }
    }
    expected
}

/// The parameters a send gives, by component.
fn given_parameters(components: &[Value]) -> BTreeMap<String, usize> {
    let mut given = BTreeMap::new();
    for c in components {
        let n = c.get("parameters").and_then(Value::as_array).map_or(0, Vec::len);
        let key = match c.get("type").and_then(Value::as_str).map(str::to_ascii_lowercase).as_deref() {
            Some("button") => {
                let index = match c.get("index") {
                    Some(Value::String(i)) => i.clone(),
                    Some(other) => other.to_string(),
                    None => "0".to_owned(),
                };
                format!("button/{index}")
            }
            Some(other) => other.to_owned(),
            None => continue,
        };
        *given.entry(key).or_insert(0) += n;
    }
    given
}

impl Templates {
    pub(crate) fn new(review_delay: Duration) -> Templates {
        Templates { review_delay, store: Mutex::new(BTreeMap::new()) }
    }

    /// A created template's name and the number (certification code position) it belongs to;
    /// every code sees the same templates, so the first number.
    pub(crate) fn name_of(&self, id: &str) -> Option<(String, usize)> {
        let id = id.parse::<u64>().ok()?;
        lock(&self.store).get(&id).map(|t| (t.name.clone(), 0))
    }

    /// Checks a WhatsApp template send (`{name, components?}` or the authentication form
    /// `{name, code}`) against the template it names, as Meta would behind INCS.
    pub(crate) fn check_send(&self, template: &Map<String, Value>) -> Result<(), IncsError> {
        let unknown = || IncsError { code: 10002, message: UNKNOWN_TEMPLATE.into() };
        let name = template.get("name").and_then(Value::as_str).ok_or_else(unknown)?;
        let components = documented().into_iter().find(|(n, _)| *n == name).map(|(_, c)| c).or_else(|| {
            let now = Instant::now();
            let store = lock(&self.store);
            store
                .values()
                .find(|t| t.family == Family::Waba && t.name == name && self.status(t, now) == "APPROVED")
                .map(|t| t.body.clone())
        });
        let components = components.ok_or_else(unknown)?;
        if template.contains_key("code") {
            return Ok(());
        }
        let given = template.get("components").and_then(Value::as_array).map(|c| given_parameters(c));
        let expected = expected_parameters(&components);
        let given = given.unwrap_or_default();
        let fits =
            expected.keys().chain(given.keys()).all(|k| expected.get(k).unwrap_or(&0) == given.get(k).unwrap_or(&0));
        if fits {
            Ok(())
        } else {
            Err(IncsError { code: 10002, message: PARAMETER_COUNT.into() })
        }
    }

    fn status(&self, t: &Template, now: Instant) -> &'static str {
        match (now.duration_since(t.created) >= self.review_delay, t.approved) {
            (false, _) => "PENDING",
            (true, true) => "APPROVED",
            (true, false) => "REJECTED",
        }
    }

    fn resource(&self, id: u64, t: &Template) -> Value {
        let now = Instant::now();
        let created = t.created_ms.div_euclid(1000);
        let reviewed = now.duration_since(t.created) >= self.review_delay;
        let review_ms = i64::try_from(self.review_delay.as_millis()).unwrap_or(i64::MAX);
        let status_time = if reviewed { t.created_ms.saturating_add(review_ms).div_euclid(1000) } else { created };
        match t.family {
            Family::Waba => json!({
                "template_id": id.to_string(),
                "name": t.name,
                "language": t.language,
                "category": t.category,
                "status": self.status(t, now),
                "quality": "",
                "components": t.body,
                "created_time": created,
                "updated_time": status_time,
                "status_updated_time": status_time,
                "quality_updated_time": 0,
                "category_updated_time": 0,
            }),
            Family::Rcs => {
                let mut r = json!({
                    "template_id": id.to_string(),
                    "name": t.name,
                    "type": t.kind,
                    "status": self.status(t, now),
                    "content": t.body,
                    "created_time": created,
                    "updated_time": status_time,
                    "status_updated_time": status_time,
                });
                if let (Some(category), Value::Object(o)) = (&t.category, &mut r) {
                    o.insert("category".into(), json!(category));
                }
                r
            }
        }
    }
}

/// The `template_status_update` callback (seeds/003), fields in the document's order.
#[derive(Debug, Serialize)]
struct TemplateStatusUpdate<'a> {
    event: &'static str,
    channel_id: u64,
    business_phone: &'a str,
    template_id: &'a str,
    template_name: &'a str,
    new_value: &'static str,
    reason: &'static str,
    received_at: i64,
}

#[derive(Deserialize)]
struct PageQuery {
    last_id: Option<String>,
    count: Option<String>,
}

fn bad(message: &'static str) -> IncsError {
    IncsError { code: 400, message: message.into() }
}

fn not_found() -> IncsError {
    bad(NOT_FOUND)
}

/// Answers a request to a path of the api family; `None` when the path is not one.
pub(super) fn handle(incs: &Incs, req: &HttpRequest, body: &RequestBody) -> Option<Result<HttpResponse, IncsError>> {
    let path = req.path();
    let method = req.method();
    let (family, id) = if path == ACCOUNT_PATH {
        return Some(if method == Method::GET { account(incs, req) } else { Err(method_not_allowed(method, "GET")) });
    } else if path == WABA_PATH {
        (Family::Waba, None)
    } else if path == RCS_PATH {
        (Family::Rcs, None)
    } else if let Some(id) = path.strip_prefix("/external/templates/rcs/") {
        (Family::Rcs, Some(id))
    } else if let Some(id) = path.strip_prefix("/external/templates/") {
        (Family::Waba, Some(id))
    } else {
        return None;
    };
    if id.is_some_and(|id| id.is_empty() || id.contains('/')) {
        return None;
    }
    let templates = &incs.templates;
    Some(match (id, method) {
        (None, m) if m == Method::GET => {
            incs.authenticate_on(req, super::HostFamily::Api).and_then(|_| list(templates, family, req))
        }
        (None, m) if m == Method::POST => {
            incs.authenticate_on(req, super::HostFamily::Api).and_then(|lane| create(incs, family, lane, body))
        }
        (None, m) => Err(method_not_allowed(m, "GET, POST")),
        (Some(id), m) if m == Method::GET => {
            incs.authenticate_on(req, super::HostFamily::Api).and_then(|_| get(templates, family, id))
        }
        (Some(id), m) if m == Method::DELETE => {
            incs.authenticate_on(req, super::HostFamily::Api).and_then(|_| delete(templates, family, id))
        }
        (Some(_), m) => Err(method_not_allowed(m, "GET, DELETE")),
    })
}

fn account(incs: &Incs, req: &HttpRequest) -> Result<HttpResponse, IncsError> {
    let lane = u64::try_from(incs.authenticate_on(req, super::HostFamily::Api)?).unwrap_or(0);
    let phone = FIRST_BUSINESS_PHONE + lane;
    Ok(success(json!({
        "id": (109_876_543_210_000_u64 + lane).to_string(),
        "display_phone_number": format!("+{phone}"),
        "verified_name": "Sandbox Business",
        "status": "CONNECTED",
        "quality_rating": "GREEN",
        "messaging_limit_tier": "TIER_1K",
        "name_status": "APPROVED",
        "code_verification_status": "VERIFIED",
        "platform_type": "CLOUD_API",
        "throughput": {"level": "STANDARD"},
    })))
}

fn object(body: &RequestBody) -> Result<&Map<String, Value>, IncsError> {
    match body {
        RequestBody::Json(Value::Object(fields)) => Ok(fields),
        _ => Err(IncsError::invalid("The request body must be a JSON object.")),
    }
}

fn string<'a>(fields: &'a Map<String, Value>, key: &str, missing: &'static str) -> Result<&'a str, IncsError> {
    match fields.get(key) {
        Some(Value::String(s)) if !s.trim().is_empty() => Ok(s),
        Some(Value::String(_)) | Some(Value::Null) | None => Err(bad(missing)),
        Some(_) => Err(IncsError { code: 400, message: format!("{key} must be a string").into() }),
    }
}

fn create(incs: &Incs, family: Family, lane: usize, body: &RequestBody) -> Result<HttpResponse, IncsError> {
    let fields = object(body)?;
    let name = string(fields, "name", "name require")?;
    let template = match family {
        Family::Waba => {
            let name_ok = |b: u8| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_';
            if name.chars().count() > MAX_WABA_NAME || !name.bytes().all(name_ok) {
                return Err(bad("name is invalid"));
            }
            let language = string(fields, "language", "language require")?;
            let category = string(fields, "category", "category require")?;
            if !["MARKETING", "UTILITY"].contains(&category) {
                return Err(bad("category is invalid"));
            }
            let components = match fields.get("components") {
                None | Some(Value::Null) => Value::Array(Vec::new()),
                Some(c @ Value::Array(_)) => c.clone(),
                Some(_) => return Err(bad("components must be an array")),
            };
            Template {
                family,
                name: name.to_owned(),
                language: language.to_owned(),
                category: Some(category.to_owned()),
                kind: String::new(),
                body: components,
                created: Instant::now(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                approved: !name.starts_with("reject"),
            }
        }
        Family::Rcs => {
            let name_ok = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
            if name.chars().count() > MAX_RCS_NAME || !name.bytes().all(name_ok) {
                return Err(bad("name is invalid"));
            }
            let kind = string(fields, "type", "type require")?;
            let category = match fields.get("category") {
                None | Some(Value::Null) => None,
                Some(Value::String(c)) if ["PROMOTION", "TRANSACTION", "AUTHENTICATION"].contains(&c.as_str()) => {
                    Some(c.clone())
                }
                Some(_) => return Err(bad("category is invalid")),
            };
            let Some(Value::Object(content)) = fields.get("content") else {
                return Err(bad("content require"));
            };
            rcs_content(kind, content)?;
            Template {
                family,
                name: name.to_owned(),
                language: String::new(),
                category,
                kind: kind.to_owned(),
                body: Value::Object(content.clone()),
                created: Instant::now(),
                created_ms: chrono::Utc::now().timestamp_millis(),
                approved: !name.starts_with("reject"),
            }
        }
    };

    let templates = &incs.templates;
    let (id, resource) = {
        let mut store = lock(&templates.store);
        let taken =
            store.values().any(|t| t.family == family && t.name == template.name && t.language == template.language);
        if taken {
            return Err(bad("template name already exists"));
        }
        let id = store.keys().next_back().map_or(FIRST_TEMPLATE_ID, |last| last + 1);
        let resource = templates.resource(id, &template);
        store.insert(id, template.clone());
        (id, resource)
    };

    if let (Family::Waba, Some(callbacks)) = (family, &incs.callbacks) {
        let lane = u64::try_from(lane).unwrap_or(0);
        let review_ms = i64::try_from(templates.review_delay.as_millis()).unwrap_or(i64::MAX);
        let template_id = id.to_string();
        let new_value = if template.approved { "APPROVED" } else { "REJECTED" };
        let update = TemplateStatusUpdate {
            event: "template_status_update",
            channel_id: FIRST_CHANNEL_ID + lane,
            business_phone: &(FIRST_BUSINESS_PHONE + lane).to_string(),
            template_id: &template_id,
            template_name: &template.name,
            new_value,
            reason: if template.approved { "" } else { "INVALID_FORMAT" },
            received_at: template.created_ms.saturating_add(review_ms).div_euclid(1000),
        };
        // Serializing this plain struct cannot fail; an empty body would still be visibly wrong.
        let body = serde_json::to_vec(&update).unwrap_or_default();
        callbacks.enqueue(CallbackJob {
            message_id: template_id.clone(),
            callbacks: vec![Callback { due: template.created + templates.review_delay, status: new_value, body }],
        });
    }
    tracing::debug!(template_id = id, name = %template.name, "template created");
    Ok(success(resource))
}

/// The content a template type needs, checked as far as INCS documents it.
fn rcs_content(kind: &str, content: &Map<String, Value>) -> Result<(), IncsError> {
    match kind {
        "text" => match content.get("textMessage") {
            Some(Value::String(t)) if !t.trim().is_empty() => Ok(()),
            _ => Err(bad("content.textMessage require")),
        },
        "richcard" => match content.get("standaloneCard") {
            Some(Value::Object(_)) => Ok(()),
            _ => Err(bad("content.standaloneCard require")),
        },
        "carousel" => match content.get("carouselCard") {
            Some(Value::Array(cards)) if (2..=10).contains(&cards.len()) => Ok(()),
            Some(Value::Array(_)) => Err(bad("content.carouselCard must have 2 to 10 cards")),
            _ => Err(bad("content.carouselCard require")),
        },
        _ => Err(bad("type is invalid")),
    }
}

fn list(templates: &Templates, family: Family, req: &HttpRequest) -> Result<HttpResponse, IncsError> {
    let query = web::Query::<PageQuery>::from_query(req.query_string()).map_err(|_| bad("the query is invalid"))?;
    let count = match query.count.as_deref().map(str::trim) {
        None | Some("") => DEFAULT_PAGE,
        Some(c) => c.parse::<u64>().ok().filter(|c| *c >= 1).ok_or_else(|| bad("count is invalid"))?,
    };
    if count > MAX_PAGE {
        return Err(bad("count may not be greater than 100"));
    }
    let after = match query.last_id.as_deref().map(str::trim) {
        None | Some("") => None,
        Some(id) => Some(id.parse::<u64>().map_err(|_| bad("last_id is invalid"))?),
    };
    let store = lock(&templates.store);
    let start = after.map_or(std::ops::Bound::Unbounded, std::ops::Bound::Excluded);
    let page: Vec<Value> = store
        .range((start, std::ops::Bound::Unbounded))
        .filter(|(_, t)| t.family == family)
        .take(usize::try_from(count).unwrap_or(usize::MAX))
        .map(|(id, t)| templates.resource(*id, t))
        .collect();
    Ok(success(page))
}

fn find(templates: &Templates, family: Family, id: &str) -> Option<u64> {
    let id = id.parse::<u64>().ok()?;
    lock(&templates.store).get(&id).filter(|t| t.family == family).map(|_| id)
}

fn get(templates: &Templates, family: Family, id: &str) -> Result<HttpResponse, IncsError> {
    let id = find(templates, family, id).ok_or_else(not_found)?;
    let store = lock(&templates.store);
    let t = store.get(&id).ok_or_else(not_found)?;
    Ok(success(templates.resource(id, t)))
}

fn delete(templates: &Templates, family: Family, id: &str) -> Result<HttpResponse, IncsError> {
    let id = find(templates, family, id).ok_or_else(not_found)?;
    lock(&templates.store).remove(&id).ok_or_else(not_found)?;
    tracing::debug!(template_id = id, "template deleted");
    Ok(success(EmptyObject {}))
}
