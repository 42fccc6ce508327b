//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::header::Header;
use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::openapi::RefOr;
use utoipa::{Modify, OpenApi};

use crate::api;
use crate::problem::PROBLEM_JSON;

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
    paths(
        api::messages::send,
        api::batch::send_batch,
        api::batch::get_batch,
        api::batch::cancel_batch,
        api::search::search,
        api::messages::get,
        api::messages::cancel,
        api::dead_letters::list,
        api::dead_letters::replay,
        api::dead_letters::drop,
        api::senders::list,
        api::senders::pause,
        api::senders::resume,
        api::templates::sender_account,
        api::templates::list,
        api::templates::create,
        api::templates::get,
        api::templates::remove,
        api::callbacks::incs,
        api::callbacks::innopaas,
        api::health::live,
        api::health::ready,
        crate::startup::metrics_endpoint,
    ),
    modifiers(&ApiKeyAuth, &ProblemHeaders),
    tags(
        (name = "messages", description = "Send messages and follow their status"),
        (name = "dead letters", description = "Messages that used up their retries"),
        (name = "senders", description = "Configured senders and the live state of their accounts"),
        (name = "templates", description = "Provider message templates (WhatsApp and RCS): create, list, read, delete"),
        (name = "callbacks", description = "What providers report: delivery status, inbound messages, template status"),
        (name = "health", description = "Liveness, readiness and Prometheus metrics (no API key)"),
    )
)]
pub struct ApiDoc;

pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
