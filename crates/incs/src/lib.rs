//! `gateway-incs`: the INCS adapter (incsapp.com, Infin8Linx).
//!
//! An [`IncsAccount`] is one INCS credential, that is one business number. It implements
//! [`gateway_core::Provider`]: it says which messages it can carry, sends WhatsApp, Viber and RCS
//! messages to `POST /external/messages/{whatsapp|viber|rcs}` with the `certification-code` header,
//! and turns every answer into a [`gateway_core::SendReceipt`] or a classified
//! [`gateway_core::ProviderError`]. [`IncsAccount::poll_status`] reads
//! `GET /external/messages/status` for reconciliation. The request bodies are the ones in the INCS
//! documents, checked example by example by the golden tests in `tests/golden/`. [`parse_callback`]
//! turns the callbacks INCS posts to us into provider-neutral [`gateway_core::event::CallbackEvent`]s.
//! On the api host family it manages WhatsApp and RCS templates ([`IncsAccount::create_template`],
//! [`IncsAccount::create_rcs_template`] and their list, get and delete) and reads the WABA account
//! ([`IncsAccount::account`]); see `templates.rs` for the decisions made there.
//!
//! # Decisions where INCS is silent (the gaps in PROVIDERS.md §1)
//! - **Hosts.** `chat_base_url` serves WhatsApp and Viber sends and the status poll;
//!   `rcs_base_url` (default: the chat-api host) serves RCS sends, since the documents put them on
//!   both hosts. RCS sends carry the api family's code (`api_certification_code`, else
//!   `certification_code`) when `rcs_base_url` has the same origin as `api_base_url`, otherwise the
//!   chat-api code. A base URL may carry a path prefix; it may not carry credentials.
//! - **Body before status.** The JSON envelope decides; `code: 200` with a non-empty `data.msg_id`
//!   is the only success, so an HTTP 200 with an error envelope is an error. The HTTP status decides
//!   only when the body is not an envelope (not JSON, or JSON without a numeric `code`): 429
//!   throttles the lane, 401/403 reject the account (INCS reports its own credential check as
//!   10001, so a bare 401/403 comes from something in front of it), 408 and 5xx are transient,
//!   other 4xx reject the content, and everything else (2xx included) is transient. A 2xx without an
//!   envelope, and a `code: 200` without `msg_id`, leave a send's outcome unknown.
//! - **Codes.** 400/404/422 and 10003/10004 reject the content; 429 throttles the lane with
//!   `Retry-After` (delta-seconds or HTTP-date; a past date is zero); 500–599 are transient; 10001
//!   rejects the account (and logs a warning); 10002 is classified by the Meta code in its message
//!   (`(#131056)` etc., PROVIDERS.md §3.4), a `Retry-After` header lengthening a Meta throttle but
//!   never shortening the pair-rate floor, and rejects the content when no code is found. An
//!   undocumented code falls back to the HTTP status for 429 and 5xx, else rejects the content.
//! - **Transport.** A connect error is transient and the message was not sent. A timeout, or any
//!   failure after connecting, is transient with `outcome_unknown`: INCS has no idempotency key, so
//!   the engine decides whether to risk a duplicate.
//! - **Content.** WhatsApp `text` goes out as the plain string INCS documents, so `preview_url` is
//!   dropped; WhatsApp templates go out without `language` (INCS resolves it from the name), and
//!   authentication templates as `{name, code}`. WhatsApp media pass `caption` and `filename`
//!   through when set (INCS documents only `link`; these are the Cloud API's own fields); Viber and
//!   RCS media are `{link}` only. INCS does not carry WhatsApp `sticker`, `location`, `contacts`
//!   or interactive `product`/`product_list` (DESIGN.md §4). A send of something this account cannot
//!   carry fails before any request as `Rejected(Account)`, since another account may carry it.
//! - **Status poll.** At most 100 ids; an id that is empty or holds a comma is refused before any
//!   request; no ids, no request. The ids are joined with commas and form-encoded (so `=` and `+`
//!   in wamids survive). Statuses are the documented strings or INCS's internal integers
//!   (1 sent, 2 failed, 3 delivered, 4 read); any other status is kept with `status: None`.
//!   Timestamps of 0 are `None`.
//! - **Secrets.** Certification codes live in `secrecy` types and in header values marked
//!   sensitive; no `Debug`, log line or error text holds one. Errors carry the provider's message,
//!   cut to 200 characters, as their title.

mod account;
mod callbacks;
mod classify;
mod config;
mod status;
mod templates;
mod wire;

pub use account::{IncsAccount, CERTIFICATION_CODE, MAX_STATUS_IDS};
pub use callbacks::{parse_callback, CHAT_ID_PREFIX};
pub use classify::classify_report;
pub use config::{ConfigError, IncsConfig, DEFAULT_API_BASE_URL, DEFAULT_CHAT_BASE_URL, DEFAULT_TIMEOUT_MS};
pub use gateway_core::PolledStatus;
pub use templates::{IncsRcsTemplate, IncsTemplate, MAX_TEMPLATE_PAGE};

/// INCS, whatever the account, as the gateway's provider registry lists it.
pub struct Incs;

impl gateway_core::ProviderFamily for Incs {
    fn kind(&self) -> gateway_core::ProviderKind {
        gateway_core::ProviderKind::Incs
    }

    fn parse_callback(
        &self,
        body: &[u8],
    ) -> Result<Vec<gateway_core::event::CallbackEvent>, gateway_core::event::CallbackError> {
        parse_callback(body)
    }

    fn classify_report(&self, error: &gateway_core::event::ReportedError) -> gateway_core::ErrorClass {
        classify_report(error)
    }

    fn callback_number_field(&self) -> &'static str {
        "business_phone"
    }

    fn template_limits(&self) -> gateway_core::template::TemplateLimits {
        gateway_core::template::TemplateLimits::INCS
    }

    fn callback_doc(&self) -> gateway_core::CallbackDoc {
        gateway_core::CallbackDoc {
            summary: "INCS callbacks: message status, template status/category/quality, new messages.",
            body: "An INCS callback event, as INCS sends it",
            example: serde_json::json!({
                "event": "message_status_update", "channel_id": 30058, "business_phone": "6281519236680",
                "message_id": "wamid.HBgNNjI4MTUxOTE0MDMyNxUCABEYEkUwMzZEMDc4RURERDlFQzFBNQA=",
                "message_status": "delivered", "error": null, "received_at": 1774249929}),
            static_headers: false,
        }
    }
}
