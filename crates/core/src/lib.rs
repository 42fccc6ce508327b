//! `gateway-core`: the messaging gateway's domain, free of I/O.
//!
//! - [`request::SendRequest`] is the API's send request; [`request::SendRequest::into_message`]
//!   parses it into an [`message::OutboundMessage`] or names every field at fault.
//! - [`content`] holds the content shapes (WhatsApp Cloud API shapes, Viber, RCS) and
//!   [`validate`] their limits.
//! - [`status::MessageStatus`] is the status model with its never-backwards rule.
//! - [`provider::Provider`] is the port adapters implement; [`provider::ProviderError`] carries
//!   the retry class the delivery engine acts on; [`meta`] classifies Meta error codes.
//! - [`fallback`] holds the cross-channel fallback steps a send may carry.
//! - [`template`] holds template drafts (WhatsApp and RCS) and the rules they are checked against.

pub mod content;
pub mod event;
pub mod fallback;
pub mod message;
pub mod meta;
pub mod phone;
pub mod provider;
pub mod request;
pub mod retry;
pub mod status;
pub mod template;
pub mod transport;
pub mod validate;

pub use message::{Channel, Content, MessageId, OutboundMessage, Priority};
pub use phone::PhoneNumber;
pub use provider::{
    AccountDescription, AccountInfo, BusinessNumber, CallbackDoc, ErrorClass, PolledStatus, Provider, ProviderError,
    ProviderFamily, ProviderKind, ProviderTemplate, RejectScope, SendReceipt, StatusPoll, TemplateDraft, TemplateError,
    Templates, ThrottleScope, Unsupported,
};
pub use status::{MessageStatus, StatusChange};
