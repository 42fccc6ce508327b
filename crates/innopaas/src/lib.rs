//! `gateway-innopaas`: the InnoPaaS (Chuanglan 创蓝 international) WhatsApp v3 adapter.
//!
//! An [`InnopaasAccount`] is one InnoPaaS credential (`AppKey` + token) with its WABA and business
//! number. It implements [`gateway_core::Provider`]: it says which messages it can carry, sends
//! them to `POST {base_url}/api/whatsapp/v3/msg/submit` (marketing templates optionally to the
//! MMLite URL) with the headers `Content-Type: application/json;charset=utf-8`, `AppKey` and
//! `Authorization`, and turns every answer into a [`gateway_core::SendReceipt`] or a classified
//! [`gateway_core::ProviderError`]. [`InnopaasAccount::phone_info`] reads
//! `account/phoneInfo` (quality rating and messaging limit tier per number);
//! [`InnopaasAccount::submit_template`] creates a template from a [`TemplateSubmit`]. The request
//! bodies follow seeds/004 and PROVIDERS.md §2; the golden tests in `tests/golden/` pin one per
//! content type. (seeds/004 names its request and response examples but holds no JSON for them, so
//! no fixture is a verbatim provider example; each is built from the document's field tables.)
//!
//! # Decisions where InnoPaaS is silent (the gaps in PROVIDERS.md §2)
//! - **Credentials.** `token` goes out as `Authorization: <token>`, with no `Bearer` prefix, as the
//!   docs' example has it. Both credentials live in `secrecy` types and header values marked
//!   sensitive; no `Debug`, log line or error text holds one.
//! - **One recipient per call** (`recipientNumber` could take 1000). `uid` is our message id in 32
//!   hex digits ([`gateway_core::MessageId::simple`]), so callbacks, which echo it, map back to it.
//! - **Capabilities.** WhatsApp only; no interactive `cta_url` or `carousel` (InnoPaaS's
//!   interactive types are `list`, `button`, `product`, `product_list`). `can_carry` builds the
//!   whole body without sending it, so anything the body cannot express is refused up front. A send
//!   of a channel or type InnoPaaS lacks fails before any request as `Rejected(Account)` (another
//!   provider may carry it); a template with no language, when the account has no
//!   `default_language`, as `Rejected(Content)` (the caller must name one).
//! - **Text** goes out as `body`; `preview_url` has no InnoPaaS field and is dropped. A text over
//!   3000 characters is not carried: InnoPaaS refuses it (code 106) though WhatsApp allows 4096,
//!   so routing can give it to a provider that takes it.
//! - **Media** is `{link, caption?, filename?}`: caption for image, video and document (never audio
//!   or sticker); a document without `filename` (which InnoPaaS requires) gets the link's last path
//!   segment, else `document`.
//! - **Location** coordinates are sent as strings (`"22.3193"`), Rust's shortest exact form.
//! - **Contacts** use InnoPaaS's camelCase names (`formattedName`, `waID`, `countryCode`); `name`
//!   and `org` are objects (the field table calls them `Object[]`, but a card has one name, as in
//!   the Cloud API it mirrors).
//! - **Templates.** `language` is the template's, else `default_language`. The header component's
//!   one parameter becomes the HeaderDto (assumed `{type, link?, paramValue?, filename?}`): text →
//!   `paramValue`; image/video → `link`; document → `link` + `filename`; a media caption has no
//!   place there and is dropped. Body text parameters become `bodyParams` in order; currency and
//!   date-time parameters go as their `fallback_value`. Every button component's parameters become
//!   `buttonParams` (assumed ParameterDto `{type, value}`), ordered by button `index`, with the
//!   Cloud API parameter type as `type` (`text` for URL suffixes, `coupon_code` for COPY_CODE,
//!   `payload` for quick replies). `category` is never sent.
//! - **Authentication templates** `{name, code}` become a template whose one body parameter and
//!   copy-code button parameter (`{"type":"text","value":code}`, as public client code sends it)
//!   are the code.
//! - **Interactive.** The InnoPaaS object: reply buttons flat as `{type:"reply", title, id}`,
//!   `sections[{title, rows[{title, id, description}], productItems[{productRetailerId}]}]`,
//!   `catalogId`/`productRetailerId` (the latter only for `product`); the header is
//!   `{type, link?, caption?, paramValue?}`, a text header's text going in `paramValue` since the
//!   object has no `text`; a document header's filename has no place and is dropped.
//! - **MMLite.** With `marketing_via_mmlite` on, a template send whose `category` is `marketing`
//!   goes to `mmlite_url` (configurable and required then: InnoPaaS publishes none) with the same
//!   body and headers; everything else, authentication templates included, uses msg/submit.
//! - **Success** is `code == "0"` (a number is read too) and `success == true`. The message id is
//!   `data` as a string (or number), or `data.messageId`/`msgId`/`id`. Success without an id is
//!   still a success: the receipt carries the `uid` we sent, which every status webhook echoes.
//!   `code "0"` without `success: true` is `Transient` with `outcome_unknown`.
//! - **Codes** (PROVIDERS.md §2.5): 101, 102, 110, 112, 114, 115, 118 reject the account (and log a
//!   warning); 105, 106, 108, 109 reject the content. Any other code: a throttling or transient
//!   Meta code in the message (`(#130429)`, `(#131056)`, `(#131000)`...) decides first, with a
//!   `Retry-After` header lengthening but never shortening its delay; then HTTP 429 (or a code
//!   "429") throttles the lane with `Retry-After` (delta-seconds or HTTP-date) and HTTP 5xx (or a
//!   code "5xx") is transient; then a permanent Meta code in the message classifies as Meta's table
//!   says (131031 → account); anything else rejects the content.
//! - **No envelope** (not JSON, or JSON without `code`): the HTTP status decides, as for INCS: 429
//!   throttles the lane, 401/403 reject the account, 408 and 5xx are transient, other 4xx reject
//!   the content, anything else (2xx included) is transient, and a 2xx leaves a send's outcome
//!   unknown.
//! - **Transport.** A connect error is transient and nothing was sent. A timeout, or a failure
//!   after connecting, is transient, with `outcome_unknown` for sends and template creation.
//! - **phoneInfo** entries without an `id` are skipped (and logged); other fields are optional
//!   strings (numbers are kept as their text). **template/submit** is checked before sending (name,
//!   body ≤ 1024, footer ≤ 60, ≤ 10 buttons, `actionType` 1–5); its answer's template id is `data`
//!   or `data.templateId`/`data.id`. `autoFill` is taken to be the autofill button's text.
//! - Errors carry the provider's message, cut to 200 characters, as their title.
//!
//! # Webhooks
//! [`parse_webhook`] turns a push (`{id, type, eventTime, body}`, PROVIDERS.md §2.6) into
//! [`gateway_core::event::CallbackEvent`]s; [`verify_static_headers`] checks the console's static
//! headers (`UserName`, `Authorization`) in constant time. The `webhook` module's header has the
//! details; in short:
//! - **Status** reports key on `body.id`, the id msg/submit returned (the `wamid` only when `id`
//!   is missing; otherwise the wamid has no field in the core model and stays in the recorded
//!   body). `uid` is the correlation id, `sendPhone` the recipient, `eventTime` the time.
//!   `SMECL:FAILED` is `failed` (ASSUMPTION: a platform failure, permanent) with the error code
//!   `SMECL:FAILED` when InnoPaaS gives no `errorData`. Unknown statuses are ignored, not refused.
//! - **Templates**: both spellings of the event, a status change with `templateStatus` as sent.
//! - **Inbound** (`whatsapp_mo_message_received`, inbox `chat_mo_message_notify`): strict on
//!   `from`, `to`, `wamid`/`id` and a time; lenient on content (Cloud API objects, snake- or
//!   camelCase names, shapes after Chuanglan's public webhook page), anything unreadable being
//!   `Unknown` with the body kept as `raw`.
//! - **Times**: RFC 3339/ISO 8601, `yyyy-MM-dd HH:mm:ss` as UTC (ASSUMPTION: InnoPaaS names no
//!   zone), or Unix seconds/milliseconds.
//! - **Ignored**: account review, phone number name and inbox outbound (`chat_mt_message_notify`)
//!   events. Any other `type` is an unknown event.
//! - The `X-CALLBACK-ID` HMAC some InnoPaaS notes describe is SMS-only and unverified for WhatsApp:
//!   not enforced.

mod account;
mod classify;
mod config;
mod draft;
mod manage;
mod template;
mod webhook;
mod wire;

pub use account::{InnopaasAccount, PhoneInfo, APP_KEY, JSON_UTF8, PHONE_INFO_PATH, SUBMIT_PATH, TEMPLATE_SUBMIT_PATH};
pub use classify::classify_report;
pub use config::{ConfigError, InnopaasConfig, DEFAULT_BASE_URL, DEFAULT_TIMEOUT_MS};
pub use template::{
    split_phone_number, HeaderExample, TemplateButton, TemplateHeaderType, TemplateSubmit, MAX_TEMPLATE_BODY,
    MAX_TEMPLATE_BUTTONS, MAX_TEMPLATE_FOOTER, MAX_TEMPLATE_NAME,
};
pub use webhook::{parse_webhook, verify_static_headers};

/// InnoPaaS, whatever the account, as the gateway's provider registry lists it.
pub struct Innopaas;

impl gateway_core::ProviderFamily for Innopaas {
    fn kind(&self) -> gateway_core::ProviderKind {
        gateway_core::ProviderKind::Innopaas
    }

    fn parse_callback(
        &self,
        body: &[u8],
    ) -> Result<Vec<gateway_core::event::CallbackEvent>, gateway_core::event::CallbackError> {
        parse_webhook(body)
    }

    fn classify_report(&self, error: &gateway_core::event::ReportedError) -> gateway_core::ErrorClass {
        classify_report(error)
    }

    fn callback_number_field(&self) -> &'static str {
        "body.to"
    }

    fn template_limits(&self) -> gateway_core::template::TemplateLimits {
        gateway_core::template::TemplateLimits::INNOPAAS
    }

    fn callback_doc(&self) -> gateway_core::CallbackDoc {
        gateway_core::CallbackDoc {
            summary: "InnoPaaS webhooks: message status, inbound messages, template status.",
            body: "An InnoPaaS webhook envelope `{id, type, eventTime, body}`",
            example: serde_json::json!({
                "id": "0b8f7c1e-2c3d-4e5f-8a9b-0c1d2e3f4a5b", "type": "whatsapp_message_status_updated",
                "eventTime": "2026-11-21T10:00:01.234Z",
                "body": {"id": "740512345678901234", "accountName": "demo", "wabaId": "102290129340398", "status": "delivered",
                    "wamid": "wamid.HBgLODUyNjg0MTUwMjYVAgARGBIyMUQ4RjA5MTY1NUJERjE3NjYA", "sendPhone": "85268411234",
                    "uid": "01a1fe0f558b750d9b81f3002f1e96ca"}}),
            static_headers: true,
        }
    }
}
