//! The INCS adapter against a mock INCS (wiremock): one test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "adapter/support.rs"]
mod support;

#[path = "adapter/callbacks.rs"]
mod callbacks;
#[path = "adapter/can_carry.rs"]
mod can_carry;
#[path = "adapter/classification.rs"]
mod classification;
#[path = "adapter/config.rs"]
mod config;
#[path = "adapter/golden.rs"]
mod golden;
#[path = "adapter/status_poll.rs"]
mod status_poll;
#[path = "adapter/templates.rs"]
mod templates;
