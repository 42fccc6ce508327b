//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::header::Header;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};
use utoipa_actix_web::AppExt;

use serde_json::{json, Value};

use gateway_core::validate::limits;
use gateway_core::Channel;

use crate::http::api;
use crate::http::problem::PROBLEM_JSON;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                Http::builder()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("A gateway API key: `Authorization: Bearer <key>`"))
                    .build(),
            ),
        );
    }
}

/// The headers that come with every problem of a status (see `ApiError::error_response`),
/// documented here once so that no operation can forget them.
struct ProblemHeaders;

impl Modify for ProblemHeaders {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let seconds = || {
            let mut h = Header::new(
                ObjectBuilder::new()
                    .schema_type(Type::Integer)
                    .format(Some(SchemaFormat::KnownFormat(KnownFormat::Int64)))
                    .minimum(Some(0)),
            );
            h.description = Some("Seconds to wait".into());
            h
        };
        for item in openapi.paths.paths.values_mut() {
            let operations = [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.patch];
            for op in operations.into_iter().flatten() {
                for (status, response) in &mut op.responses.responses {
                    let RefOr::T(response) = response else { continue };
                    if !response.content.contains_key(PROBLEM_JSON) {
                        continue;
                    }
                    let (name, header) = match status.as_str() {
                        "429" | "503" => ("Retry-After", seconds()),
                        "401" => {
                            let mut h = Header::default();
                            h.description = Some("`Bearer`".into());
                            ("WWW-Authenticate", h)
                        }
                        _ => continue,
                    };
                    response.headers.entry(name.to_owned()).or_insert(header);
                }
            }
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(
        title = "Messaging gateway",
        description = "One API for WhatsApp, Viber and RCS messages, carried by INCS or InnoPaaS. \
Every accepted message is stored durably before the 202, sent at least once, retried on transient \
failures and never sent faster than the provider allows. Errors are RFC 9457 problem details.",
    ),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "messages", description = "Send messages and follow their status"),
        (name = "dead letters", description = "Messages that used up their retries"),
        (name = "events", description = "Event subscriptions for internal consumers: their state, and the events they did not take"),
        (name = "senders", description = "Configured senders and the live state of their accounts"),
        (name = "templates", description = "Provider message templates (WhatsApp and RCS): create, list, read, delete"),
        (name = "callbacks", description = "What providers report: delivery status, inbound messages, template status"),
        (name = "health", description = "Liveness, readiness and Prometheus metrics (no API key)"),
    )
)]
pub struct ApiDoc;

/// The document: what the derives say, refined where JSON Schema can say more than a Rust type
/// (see [`refine`]).
/// JSON rather than utoipa's types, which cannot hold everything JSON Schema says.
///
/// # Errors
/// When utoipa's document does not serialize (it always does; the tests show it).
pub fn spec() -> Result<Value, serde_json::Error> {
    serde_json::to_value(document()).map(refine)
}

/// [`ApiDoc`] with the operations of the route table ([`api::routes`]), the one actix serves.
fn document() -> utoipa::openapi::OpenApi {
    let (_, mut doc) =
        actix_web::App::new().into_utoipa_app().openapi(ApiDoc::openapi()).configure(api::routes).split_for_parts();
    // It reads the operations, so it comes after them.
    ProblemHeaders.modify(&mut doc);
    doc
}

/// The document as this deployment serves it at `/openapi.json`: where a value must name a
/// configured sender or account, the schema lists them (per channel where the channel is known),
/// so a caller's tools offer what this gateway accepts. `openapi/openapi.json`, for every
/// deployment, keeps plain strings.
pub fn for_deployment(mut doc: Value, config: &crate::config::Config) -> Value {
    let names = |channel: Option<&str>| -> Vec<Value> {
        config
            .senders
            .iter()
            .filter(|s| channel.is_none_or(|c| s.channel.as_str() == c))
            .map(|s| json!(s.name))
            .collect()
    };
    let accounts: Vec<Value> = config.accounts.iter().map(|a| json!(a.name)).collect();
    let subscriptions: Vec<Value> = config.subscriptions.iter().map(|s| json!(s.name)).collect();
    if let Some(schemas) = schemas(&mut doc) {
        for schema in schemas.values_mut() {
            let channel = schema["properties"]["channel"]["enum"][0].as_str().map(str::to_owned);
            if let (Some(channel), Some(sender)) = (channel, schema.pointer_mut("/properties/sender")) {
                let mut allowed = names(Some(&channel));
                // An optional field may be sent as null, meaning "not given".
                if sender["type"].as_array().is_some_and(|t| t.contains(&json!("null"))) {
                    allowed.push(Value::Null);
                }
                sender["enum"] = json!(allowed);
            }
        }
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|i| i.values_mut()) {
            for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
                match p["name"].as_str() {
                    Some("sender") | Some("name") => p["schema"]["enum"] = json!(names(None)),
                    Some("account") => p["schema"]["enum"] = json!(accounts),
                    Some("subscription") if !subscriptions.is_empty() => {
                        p["schema"]["enum"] = json!(subscriptions);
                    }
                    _ => {}
                }
            }
        }
    }
    doc
}

/// The methods each documented path takes, so that a request for a path with the wrong method
/// gets 405 with `Allow` (RFC 9110 §15.5.6) rather than a 404.
pub struct MethodTable {
    table: Vec<(actix_web::dev::ResourceDef, String)>,
    /// The paths without parameters, for a lookup with no pattern matching.
    literal: std::collections::HashMap<String, String>,
}

impl MethodTable {
    /// From the spec's paths, plus the documentation routes it does not describe.
    pub fn new(spec: &Value) -> Self {
        let paths = spec["paths"].as_object().into_iter().flatten();
        let mut table: Vec<(actix_web::dev::ResourceDef, String)> = paths
            .map(|(path, item)| {
                let methods: Vec<&str> = ["GET", "PUT", "POST", "DELETE", "PATCH"]
                    .into_iter()
                    .filter(|m| item.get(m.to_ascii_lowercase()).is_some())
                    .collect();
                (actix_web::dev::ResourceDef::new(path.as_str()), methods.join(", "))
            })
            .collect();
        for path in ["/openapi.json", "/docs", "/docs/{_:.*}"] {
            table.push((actix_web::dev::ResourceDef::new(path), "GET".to_owned()));
        }
        let literal = table
            .iter()
            .filter_map(|(def, allow)| Some((def.pattern().filter(|p| !p.contains('{'))?.to_owned(), allow.clone())))
            .collect();
        Self { table, literal }
    }

    /// [`Self::refuses`] for a path without parameters only (`None` for any other): a lookup,
    /// cheap enough for every request. It must come before routing, since the router would give
    /// `GET /v1/messages/batch` to `GET /v1/messages/{id}`.
    pub fn refuses_literal(&self, method: &str, path: &str) -> Option<String> {
        refusal(self.literal.get(path)?, method)
    }

    /// The documented path a request path falls under (`/v1/messages/{id}` for
    /// `/v1/messages/0192…`), as the router would name it: a literal path first.
    /// The route of a literal path (`/v1/messages`), by one hash lookup; `None` for any other.
    pub fn literal_route(&self, path: &str) -> Option<&str> {
        self.literal.get_key_value(path).map(|(pattern, _)| pattern.as_str())
    }

    pub fn route(&self, path: &str) -> Option<&str> {
        match self.literal.get_key_value(path) {
            Some((pattern, _)) => Some(pattern),
            None => self.table.iter().find(|(def, _)| def.is_match(path)).and_then(|(def, _)| def.pattern()),
        }
    }

    /// The `Allow` value when the path is documented but not with this method. A literal path
    /// (`/v1/messages/batch`) wins over a template that also matches it (`/v1/messages/{id}`), as
    /// it does in the router.
    pub fn refuses(&self, method: &str, path: &str) -> Option<String> {
        let allow = match self.literal.get(path) {
            Some(allow) => allow,
            None => &self.table.iter().find(|(def, _)| def.is_match(path))?.1,
        };
        refusal(allow, method)
    }
}

/// `allow` when it does not list `method`.
fn refusal(allow: &str, method: &str) -> Option<String> {
    (!allow.split(", ").any(|m| m == method)).then(|| allow.to_owned())
}

/// What the derives cannot say, written into the document so that it says what validation says:
/// - the send request as one schema per channel and content type (`oneOf` the channels, each a
///   `oneOf` discriminated by `type`), each naming only the content object its type carries;
/// - the template request as one schema per channel (`sender` and `channel` beside the draft);
/// - `links` from each response to the operations its ids feed.
fn refine(mut doc: Value) -> Value {
    callback_urls(&mut doc);
    content_limits(&mut doc);
    send_request(&mut doc);
    template_request(&mut doc);
    links(&mut doc);
    // Each item is validated on its own and answered in `results`, whatever it is: the envelope
    // constrains only the count.
    if let Some(batch) = doc.pointer_mut("/components/schemas/BatchIn") {
        batch["additionalProperties"] = json!(false);
    }
    if let Some(messages) = doc.pointer_mut("/components/schemas/BatchIn/properties/messages") {
        messages["minItems"] = json!(1);
        messages["maxItems"] = json!(crate::http::api::batch::MAX_BATCH);
        messages["items"] = json!({ "type": "object",
            "description": "A send request (`SendRequest`), optionally with `idempotency_key`; judged on its own, with its result in `results`." });
    }
    query_problems(&mut doc);
    // Only WhatsApp and RCS have templates.
    if let Some(params) = doc.pointer_mut("/paths/~1v1~1templates/get/parameters").and_then(Value::as_array_mut) {
        for p in params.iter_mut().filter(|p| p["name"] == "channel") {
            p["schema"] = json!({ "type": "string", "enum": ["whatsapp", "rcs"] });
        }
    }
    doc
}

/// One callback URL per provider in the registry, each with its own body and example, from the
/// one handler's description (`/callbacks/{provider}/{token}`): a client or fuzzer then sees
/// each provider's URL and what it takes.
fn callback_urls(doc: &mut Value) {
    let Some(paths) = doc.pointer_mut("/paths").and_then(Value::as_object_mut) else { return };
    let Some(generic) = paths.remove("/callbacks/{provider}/{token}") else { return };
    for family in crate::providers::families() {
        let (kind, about) = (family.kind(), family.callback_doc());
        let mut item = generic.clone();
        let op = &mut item["post"];
        op["operationId"] = json!(format!("callbacks.{kind}"));
        op["summary"] = json!(about.summary);
        if let Some(params) = op["parameters"].as_array_mut() {
            params.retain(|p| p["name"] != "provider");
        }
        op["requestBody"]["description"] = json!(about.body);
        op["requestBody"]["content"]["application/json"]["example"] = about.example;
        if !about.static_headers {
            if let Some(responses) = op["responses"].as_object_mut() {
                responses.remove("401");
            }
        }
        paths.insert(format!("/callbacks/{kind}/{{token}}"), item);
    }
}

fn schemas(doc: &mut Value) -> Option<&mut serde_json::Map<String, Value>> {
    doc.pointer_mut("/components/schemas").and_then(Value::as_object_mut)
}

fn reference(name: &str) -> Value {
    json!({ "$ref": format!("#/components/schemas/{name}") })
}

fn capitalised(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

/// One object schema per channel and content type, named `{Channel}{Type}{suffix}`, from the
/// derived properties `props` of a request: every field that is not a content object as derived,
/// the common ones refined, and the one content object its type carries. Returns the references
/// of the per-channel `oneOf`s (`{Channel}SendRequest` for messages, `{Channel}{suffix}`
/// otherwise), each discriminated by `type`. No discriminator on `channel` above them: a mapping
/// must name object schemas, and `channel`'s enum in every variant keeps the choice unambiguous.
fn per_channel_and_type(
    schemas: &mut serde_json::Map<String, Value>,
    props: &Value,
    suffix: &str,
    what: &str,
    required: &[&str],
) -> Vec<Value> {
    let content_objects: Vec<&str> = gateway_core::content::ContentType::ALL.iter().map(|t| t.as_str()).collect();
    let common = |channel: Channel| {
        let mut p: serde_json::Map<String, Value> = props
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(k, _)| !content_objects.contains(&k.as_str()))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        p.insert("channel".into(), json!({ "type": "string", "enum": [channel.as_str()] }));
        if let Some(sender) = p.get_mut("sender") {
            sender["minLength"] = json!(1);
            sender["pattern"] = json!("\\S");
        }
        if p.contains_key("to") {
            p.insert(
                "to".into(),
                json!({ "type": "string", "pattern": "^\\+?[0-9]{8,15}$",
                    "description": props["to"]["description"], "example": "85268411234" }),
            );
        }
        if p.contains_key("metadata") {
            p.insert(
                "metadata".into(),
                json!({ "type": ["object", "null"], "description": props["metadata"]["description"],
                    "maxProperties": gateway_core::request::MAX_METADATA_PAIRS,
                    "propertyNames": { "minLength": 1, "maxLength": gateway_core::request::MAX_METADATA_KEY_CHARS },
                    "additionalProperties": { "type": "string", "maxLength": gateway_core::request::MAX_METADATA_VALUE_CHARS } }),
            );
        }
        p
    };
    let mut channel_refs = Vec::new();
    for channel in [Channel::Whatsapp, Channel::Viber, Channel::Rcs] {
        let channel_name = if suffix == "Message" {
            format!("{}SendRequest", capitalised(channel.as_str()))
        } else {
            format!("{}{suffix}", capitalised(channel.as_str()))
        };
        let mut type_refs = Vec::new();
        let mut type_mapping = serde_json::Map::new();
        for kind in channel.content_types() {
            let name = format!("{}{}{suffix}", capitalised(channel.as_str()), capitalised(kind.as_str()));
            let mut p = common(channel);
            p.insert("type".into(), json!({ "type": "string", "enum": [kind.as_str()] }));
            p.insert(kind.as_str().into(), content_schema(channel, *kind, props));
            let mut req: Vec<&str> = required.to_vec();
            req.push(kind.as_str());
            schemas.insert(
                name.clone(),
                json!({ "type": "object", "description": format!("A {} {} {what}.", channel.as_str(), kind.as_str()),
                    "required": req, "properties": p, "additionalProperties": false }),
            );
            type_mapping.insert(kind.as_str().into(), json!(format!("#/components/schemas/{name}")));
            type_refs.push(reference(&name));
        }
        schemas.insert(
            channel_name.clone(),
            json!({ "oneOf": type_refs, "discriminator": { "propertyName": "type", "mapping": type_mapping },
                "description": format!("A {} {what}: `type` names the content object it carries.", channel.as_str()) }),
        );
        channel_refs.push(reference(&channel_name));
    }
    channel_refs
}

/// `SendRequest` becomes `oneOf` the channels, each `oneOf` its content types.
fn send_request(doc: &mut Value) {
    let Some(schemas) = schemas(doc) else { return };
    let Some(derived) = schemas.get("SendRequest").cloned() else { return };
    let props = derived["properties"].clone();
    let send = per_channel_and_type(schemas, &props, "Message", "message", &["channel", "to", "type"]);
    schemas.insert(
        "SendRequest".into(),
        json!({ "oneOf": send, "description": derived["description"], "example": derived["example"] }),
    );
    // A fallback step is a message of its channel too (without `to`: the first one's recipient).
    if let Some(step) = schemas.get("FallbackStepIn").cloned() {
        let steps =
            per_channel_and_type(schemas, &step["properties"], "FallbackStep", "fallback step", &["channel", "type"]);
        schemas.insert(
            "FallbackStepIn".into(),
            json!({ "oneOf": steps, "description": step["description"], "example": step["example"] }),
        );
    }
    // Optional fields may be sent as null ("not given"); a field of the other form must be.
    let absent = json!({ "type": "null" });
    let category = json!({ "oneOf": [{ "type": "null" }, reference("TemplateCategory")] });
    schemas.insert(
        "TemplateLanguageObject".into(),
        json!({ "type": "object", "description": "Meta's language object; `deterministic` is the only policy.",
            "required": ["code"], "additionalProperties": false, "properties": {
                "code": language(),
                "policy": { "type": ["string", "null"], "enum": ["deterministic", null] } } }),
    );
    schemas.insert(
        "WhatsappTemplateSend".into(),
        json!({ "description": "A WhatsApp template: `{name, language?, components?, category?}`, or the authentication form `{name, code, language?}`.",
            "oneOf": [
                { "type": "object", "required": ["name"], "additionalProperties": false, "properties": {
                    "name": template_name("^[a-z0-9_]+$", limits::WA_TEMPLATE_NAME),
                    "language": whatsapp_template_language(),
                    "components": { "type": ["array", "null"], "items": reference("TemplateComponent") },
                    "category": category,
                    "code": absent, "parameters": absent } },
                { "type": "object", "required": ["name", "code"], "additionalProperties": false, "properties": {
                    "name": template_name("^[a-z0-9_]+$", limits::WA_TEMPLATE_NAME),
                    "language": whatsapp_template_language(),
                    "code": text(limits::WA_AUTH_CODE),
                    "category": category,
                    "components": absent, "parameters": absent } }
            ] }),
    );
    schemas.insert(
        "RcsTemplateSend".into(),
        json!({ "type": "object", "description": "An RCS template and a value per `[var]` placeholder.",
            "required": ["name"], "additionalProperties": false, "properties": {
                "name": template_name("^[A-Za-z0-9_]+$", limits::RCS_TEMPLATE_NAME),
                "parameters": { "type": ["object", "null"], "propertyNames": { "minLength": 1 },
                    "additionalProperties": text(limits::RCS_TEXT) },
                "language": absent, "components": absent, "code": absent, "category": absent } }),
    );
}

/// Viber and RCS take plain text: a string, or `{"body": string}` (no link preview).
fn plain_text(max: usize) -> Value {
    json!({ "oneOf": [
        text(max),
        { "type": "object", "required": ["body"], "additionalProperties": false, "properties": { "body": text(max) } }
    ] })
}

fn template_name(pattern: &str, max: usize) -> Value {
    json!({ "type": "string", "pattern": pattern, "minLength": 1, "maxLength": max })
}

/// A code, or the Cloud API's object `{"code", "policy"}` (schema `TemplateLanguageObject`).
fn whatsapp_template_language() -> Value {
    json!({ "oneOf": [{ "type": "null" }, language(), reference("TemplateLanguageObject")] })
}

fn language() -> Value {
    json!({ "type": "string", "pattern": "^[A-Za-z]{2,3}(_[A-Za-z]{2,4})?$", "example": "en_US" })
}

/// Text that must hold something besides spaces, up to `max` characters.
fn text(max: usize) -> Value {
    json!({ "type": "string", "minLength": 1, "maxLength": max, "pattern": "\\S" })
}

fn link() -> Value {
    json!({ "type": "string", "format": "uri", "pattern": "^https?://[^/?#\\s]+", "maxLength": limits::URL })
}

/// A channel's media object: caption and file name only where the channel takes them.
fn media(extensions: &[&str], caption: bool, filename: bool) -> Value {
    let mut link = link();
    link["description"] = json!(format!(
        "Public HTTP(S) URL. A file extension, if the path has one, is one of: {}.",
        extensions.join(", ")
    ));
    let absent = json!({ "type": "null" });
    let mut caption_schema = if caption { text(limits::WA_CAPTION) } else { absent.clone() };
    if caption {
        caption_schema["type"] = json!(["string", "null"]);
    }
    let mut filename_schema = if filename { text(240) } else { absent };
    if filename {
        filename_schema["type"] = json!(["string", "null"]);
    }
    json!({ "type": "object", "required": ["link"], "additionalProperties": false,
        "properties": { "link": link, "caption": caption_schema, "filename": filename_schema } })
}

/// One to `max` items of a schema.
fn list(max: usize, item: &str) -> Value {
    json!({ "type": "array", "minItems": 1, "maxItems": max, "items": reference(item) })
}

/// Limits of the shared content types, written where the derives left plain types.
fn content_limits(doc: &mut Value) {
    let set = |doc: &mut Value, pointer: &str, schema: Value| {
        if let Some(target) = doc.pointer_mut(pointer) {
            let nullable = target["type"].as_array().is_some_and(|t| t.contains(&json!("null")));
            *target = schema;
            if nullable {
                target["type"] = json!([target["type"].clone(), "null"]);
            }
        }
    };
    let s = "/components/schemas";
    set(doc, &format!("{s}/TextInput/oneOf/0"), text(limits::WA_TEXT));
    set(doc, &format!("{s}/TextBody/properties/body"), text(limits::WA_TEXT));
    set(doc, &format!("{s}/TextObject/properties/text"), json!({ "type": "string", "minLength": 1, "pattern": "\\S" }));
    set(doc, &format!("{s}/Location/properties/latitude"), json!({ "type": "number", "minimum": -90, "maximum": 90 }));
    set(
        doc,
        &format!("{s}/Location/properties/longitude"),
        json!({ "type": "number", "minimum": -180, "maximum": 180 }),
    );
    set(
        doc,
        &format!("{s}/Otp/properties/code"),
        json!({ "type": "string", "pattern": format!("^[A-Za-z0-9]{{1,{}}}$", limits::VIBER_OTP_CODE) }),
    );
    set(doc, &format!("{s}/Otp/properties/language"), language());
    set(
        doc,
        &format!("{s}/Otp/properties/code_expiration_minutes"),
        json!({ "type": "integer", "minimum": 1, "maximum": limits::VIBER_OTP_MAX_MINUTES }),
    );
    set(doc, &format!("{s}/ButtonReply/properties/id"), text(limits::WA_BUTTON_ID));
    set(doc, &format!("{s}/ButtonReply/properties/title"), text(limits::WA_BUTTON_TITLE));
    set(doc, &format!("{s}/ButtonAction/properties/buttons"), list(limits::WA_REPLY_BUTTONS, "ReplyButton"));
    set(doc, &format!("{s}/ListAction/properties/button"), text(limits::WA_LIST_BUTTON));
    set(doc, &format!("{s}/ListAction/properties/sections"), list(limits::WA_LIST_SECTIONS, "ListSection"));
    set(doc, &format!("{s}/ListSection/properties/title"), text(limits::WA_SECTION_TITLE));
    set(doc, &format!("{s}/ListSection/properties/rows"), list(limits::WA_LIST_ROWS, "ListRow"));
    set(doc, &format!("{s}/ListRow/properties/id"), text(limits::WA_ROW_ID));
    set(doc, &format!("{s}/ListRow/properties/title"), text(limits::WA_ROW_TITLE));
    set(doc, &format!("{s}/ListRow/properties/description"), text(limits::WA_ROW_DESCRIPTION));
    set(doc, &format!("{s}/CtaUrlAction/properties/name"), json!({ "type": "string", "enum": ["cta_url"] }));
    set(doc, &format!("{s}/CtaUrlParameters/properties/display_text"), text(limits::WA_CTA_LABEL));
    set(doc, &format!("{s}/CtaUrlParameters/properties/url"), link());
    set(
        doc,
        &format!("{s}/ContactName/properties/formatted_name"),
        json!({ "type": "string", "minLength": 1, "pattern": "\\S" }),
    );
}

fn content_schema(channel: Channel, kind: gateway_core::content::ContentType, props: &Value) -> Value {
    use gateway_core::content::ContentType as T;
    let derived = |name: &str| {
        // The derived property is `oneOf [null, X]`: here the object is required, so X alone.
        let p = &props[name];
        match p["oneOf"].as_array() {
            Some(options) => options.iter().find(|o| o["type"] != "null").cloned().unwrap_or_else(|| p.clone()),
            None => p.clone(),
        }
    };
    match (channel, kind) {
        (Channel::Whatsapp, T::Text) => derived("text"),
        (Channel::Viber, T::Text) => plain_text(limits::VIBER_TEXT),
        (_, T::Text) => plain_text(limits::RCS_TEXT),
        (Channel::Whatsapp, T::Template) => reference("WhatsappTemplateSend"),
        (_, T::Template) => reference("RcsTemplateSend"),
        (_, T::Contacts) => json!({ "type": "array", "minItems": 1, "items": reference("Contact") }),
        (_, other) => match gateway_core::validate::media_rule(channel, other) {
            Some((extensions, caption, filename)) => media(extensions, caption, filename),
            None => derived(other.as_str()),
        },
    }
}

/// `TemplateIn` becomes `oneOf` a WhatsApp and an RCS request, each one object with `sender`
/// and `channel` beside the draft's own fields (what `#[serde(flatten)]` reads).
fn template_request(doc: &mut Value) {
    let Some(schemas) = schemas(doc) else { return };
    let Some(derived) = schemas.get("TemplateIn").cloned() else { return };
    let mut variants = Vec::new();
    let mut mapping = serde_json::Map::new();
    for (channel, draft) in [("whatsapp", "WhatsAppTemplateDraft"), ("rcs", "RcsTemplateDraft")] {
        let Some(mut schema) = schemas.get(draft).cloned() else { return };
        schema["properties"]["channel"] = json!({ "type": "string", "enum": [channel] });
        schema["properties"]["sender"] = json!({ "type": "string", "minLength": 1, "pattern": "\\S",
            "description": "A configured sender; default: the channel's default sender." });
        if let Some(required) = schema["required"].as_array_mut() {
            required.push(json!("channel"));
        }
        if let Some(example) = schema.get_mut("example").and_then(Value::as_object_mut) {
            example.insert("channel".into(), json!(channel));
        }
        let name = format!("{}TemplateIn", capitalised(channel));
        schemas.insert(name.clone(), schema);
        mapping.insert(channel.into(), json!(format!("#/components/schemas/{name}")));
        variants.push(reference(&name));
    }
    schemas.remove("DraftIn");
    schemas.insert(
        "TemplateIn".into(),
        json!({ "oneOf": variants, "discriminator": { "propertyName": "channel", "mapping": mapping },
            "description": derived["description"], "example": derived["example"] }),
    );
}

/// Every operation with query parameters can be sent a query it cannot read (a duplicated or
/// malformed parameter): 422 naming it. The `Idempotency-Key` header's own rule is written out.
fn query_problems(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for op in paths.values_mut().filter_map(Value::as_object_mut).flat_map(|i| i.values_mut()) {
        let mut has_query = false;
        for p in op.get_mut("parameters").and_then(Value::as_array_mut).into_iter().flatten() {
            has_query |= p["in"] == "query";
            if p["name"] == crate::http::api::idempotency::HEADER {
                p["schema"] = json!({ "type": "string", "minLength": 1, "maxLength": crate::http::api::idempotency::MAX_KEY_LEN,
                    "pattern": "^[!-~]+$" });
            }
        }
        let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else { continue };
        if has_query && !responses.contains_key("422") {
            responses.insert(
                "422".into(),
                json!({ "description": "A query parameter is malformed, repeated or out of range",
                    "content": { crate::http::problem::PROBLEM_JSON: { "schema": reference("Problem") } } }),
            );
        }
    }
}

/// Which response values feed which operations, so a client (or a stateful fuzzer) can chain
/// them: `(operation, status, link name, target operation, parameter, runtime expression)`.
const LINKS: &[(&str, &str, &str, &str, &str, &str)] = &[
    ("v1.messages.send", "202", "GetMessage", "v1.messages.get", "id", "$response.body#/id"),
    ("v1.messages.send", "202", "CancelMessage", "v1.messages.cancel", "id", "$response.body#/id"),
    ("v1.messages.get", "200", "CancelMessage", "v1.messages.cancel", "id", "$response.body#/id"),
    ("v1.messages.cancel", "200", "GetMessage", "v1.messages.get", "id", "$response.body#/id"),
    (
        "v1.messages.send_batch",
        "200",
        "GetFirstMessage",
        "v1.messages.get",
        "id",
        "$response.body#/results/0/message/id",
    ),
    (
        "v1.dead_letters.list",
        "200",
        "ReplayFirst",
        "v1.dead_letters.replay",
        "id",
        "$response.body#/items/0/message/id",
    ),
    ("v1.messages.send_batch", "200", "GetBatch", "v1.batches.get", "id", "$response.body#/batch_id"),
    ("v1.messages.send_batch", "200", "CancelBatch", "v1.batches.cancel", "id", "$response.body#/batch_id"),
    ("v1.batches.get", "200", "CancelBatch", "v1.batches.cancel", "id", "$response.body#/id"),
    ("v1.messages.search", "200", "GetFirstMessage", "v1.messages.get", "id", "$response.body#/items/0/id"),
    ("v1.messages.search", "200", "NextPage", "v1.messages.search", "cursor", "$response.body#/next_cursor"),
    ("v1.dead_letters.list", "200", "DropFirst", "v1.dead_letters.delete", "id", "$response.body#/items/0/message/id"),
    ("v1.dead_letters.replay", "202", "GetMessage", "v1.messages.get", "id", "$response.body#/id"),
    (
        "v1.event_dead_letters.list",
        "200",
        "ReplayFirst",
        "v1.event_dead_letters.replay",
        "id",
        "$response.body#/items/0/id",
    ),
    (
        "v1.subscriptions.list",
        "200",
        "EnableFirst",
        "v1.subscriptions.enable",
        "subscription",
        "$response.body#/items/0/name",
    ),
    ("v1.templates.create", "201", "GetTemplate", "v1.templates.get", "id", "$response.body#/id"),
    ("v1.templates.create", "201", "DeleteTemplate", "v1.templates.delete", "id", "$response.body#/id"),
    ("v1.templates.list", "200", "GetFirstTemplate", "v1.templates.get", "id", "$response.body#/items/0/id"),
    ("v1.templates.list", "200", "NextPage", "v1.templates.list", "cursor", "$response.body#/next_cursor"),
    ("v1.senders.list", "200", "FirstSenderAccount", "v1.senders.account", "name", "$response.body#/items/0/name"),
];

fn links(doc: &mut Value) {
    let Some(paths) = doc["paths"].as_object_mut() else { return };
    for item in paths.values_mut() {
        let Some(item) = item.as_object_mut() else { continue };
        for op in item.values_mut() {
            let id = op["operationId"].as_str().unwrap_or_default().to_owned();
            for (_, status, name, to, param, expr) in LINKS.iter().filter(|l| l.0 == id) {
                if let Some(response) = op.pointer_mut(&format!("/responses/{status}")) {
                    response["links"][*name] = json!({ "operationId": to, "parameters": { *param: expr } });
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refined() -> Value {
        spec().unwrap()
    }

    #[test]
    fn the_send_request_is_one_schema_per_channel_and_type() {
        let doc = refined();
        let s = &doc["components"]["schemas"];
        assert_eq!(s["SendRequest"]["oneOf"].as_array().unwrap().len(), 3);
        let rcs = s["RcsSendRequest"]["oneOf"].as_array().unwrap();
        assert_eq!(rcs.len(), Channel::Rcs.content_types().len());
        assert!(s.get("RcsOtpMessage").is_none(), "RCS carries no OTP");
        assert_eq!(s["ViberOtpMessage"]["required"], json!(["channel", "to", "type", "otp"]));
        assert_eq!(s["ViberOtpMessage"]["additionalProperties"], json!(false));
        assert_eq!(s["RcsTemplateMessage"]["properties"]["template"], reference("RcsTemplateSend"));
    }

    #[test]
    fn the_template_request_has_no_conflicting_combinators() {
        let doc = refined();
        let t = &doc["components"]["schemas"]["TemplateIn"];
        assert!(t.get("allOf").is_none());
        assert_eq!(t["oneOf"].as_array().unwrap().len(), 2);
        let wa = &doc["components"]["schemas"]["WhatsappTemplateIn"];
        assert!(wa["required"].as_array().unwrap().contains(&json!("channel")));
    }

    #[test]
    fn responses_link_to_the_operations_their_ids_feed() {
        let doc = refined();
        let link = &doc["paths"]["/v1/messages"]["post"]["responses"]["202"]["links"]["GetMessage"];
        assert_eq!(link["operationId"], "v1.messages.get");
        let ids: Vec<&str> = doc["paths"]
            .as_object()
            .unwrap()
            .values()
            .flat_map(|i| i.as_object().unwrap().values())
            .filter_map(|o| o["operationId"].as_str())
            .collect();
        for (from, _, _, to, _, _) in LINKS {
            assert!(ids.contains(from) && ids.contains(to), "link {from} -> {to} names an unknown operation");
        }
    }

    /// The document is built from the route table; this shows that actix, given the same table,
    /// serves exactly the operations it lists: a request for any documented path, with any method,
    /// reaches a handler exactly when the document has an operation for that method whose path
    /// matches it (`GET /v1/messages/batch` is `GET /v1/messages/{id}`).
    #[actix_web::test]
    async fn the_route_table_serves_what_the_document_lists() {
        use actix_web::http::{Method, StatusCode};
        use actix_web::{test, web, App, HttpResponse};
        let app = test::init_service(
            App::new()
                .into_utoipa_app()
                .configure(api::routes)
                .into_app()
                .default_service(web::to(|| async { HttpResponse::ImATeapot().finish() })),
        )
        .await;
        let doc = refined();
        let paths = doc["paths"].as_object().unwrap();
        assert!(paths.keys().filter(|p| p.starts_with("/v1/")).count() >= 15, "{:?}", paths.keys());
        for path in paths.keys() {
            let concrete: String = path
                .split('/')
                .map(|segment| if segment.starts_with('{') { "x" } else { segment })
                .collect::<Vec<_>>()
                .join("/");
            for method in ["GET", "PUT", "POST", "DELETE", "PATCH"] {
                let request =
                    test::TestRequest::default().method(Method::from_bytes(method.as_bytes()).unwrap()).uri(&concrete);
                let served = test::call_service(&app, request.to_request()).await.status() != StatusCode::IM_A_TEAPOT;
                let documented = paths.iter().any(|(other, item)| {
                    item.get(method.to_ascii_lowercase()).is_some()
                        && actix_web::dev::ResourceDef::new(other.as_str()).is_match(&concrete)
                });
                assert_eq!(served, documented, "{method} {concrete}: served {served}, documented {documented}");
            }
        }
    }

    #[test]
    fn a_wrong_method_on_a_documented_path_names_the_right_ones() {
        let table = MethodTable::new(&refined());
        assert_eq!(table.refuses("PUT", "/v1/messages").as_deref(), Some("GET, POST"));
        assert_eq!(table.refuses("GET", "/v1/messages/batch").as_deref(), Some("POST"));
        assert_eq!(table.refuses("TRACE", "/v1/templates").as_deref(), Some("GET, POST"));
        assert_eq!(table.refuses("GET", "/v1/messages/0190a0b0"), None);
        assert_eq!(table.refuses("GET", "/nowhere"), None);
    }
}
