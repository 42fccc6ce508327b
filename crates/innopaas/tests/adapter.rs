//! The InnoPaaS adapter against a mock InnoPaaS (wiremock): one test binary, one module per concern.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

#[path = "adapter/support.rs"]
mod support;

#[path = "adapter/can_carry.rs"]
mod can_carry;
#[path = "adapter/classification.rs"]
mod classification;
#[path = "adapter/config.rs"]
mod config;
#[path = "adapter/golden.rs"]
mod golden;
#[path = "adapter/phone_info.rs"]
mod phone_info;
#[path = "adapter/templates.rs"]
mod templates;
#[path = "adapter/webhook.rs"]
mod webhook;
