//! The OpenAPI document, generated from the handlers and types.

use utoipa::openapi::security::{Http, HttpAuthScheme, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::api;

struct ApiKeyAuth;

impl Modify for ApiKeyAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(Http::builder().scheme(HttpAuthScheme::Bearer).description(Some("A gateway API key: `Authorization: Bearer <key>`")).build()),
        );
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
        api::messages::get,
        api::messages::cancel,
        api::dead_letters::list,
        api::dead_letters::replay,
        api::dead_letters::drop,
        api::senders::list,
        api::callbacks::incs,
        api::callbacks::innopaas,
        api::health::live,
        api::health::ready,
    ),
    modifiers(&ApiKeyAuth),
    tags(
        (name = "messages", description = "Send messages and follow their status"),
        (name = "dead letters", description = "Messages that used up their retries"),
        (name = "senders", description = "Configured senders and the live state of their accounts"),
        (name = "callbacks", description = "What providers report: delivery status, inbound messages, template status"),
        (name = "health", description = "Liveness and readiness"),
    )
)]
pub struct ApiDoc;

pub fn spec() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}
