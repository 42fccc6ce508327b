//! The HTTP API: handlers, authentication, admission, problem responses, the OpenAPI document,
//! and routing a message to its sender's accounts as it is accepted.

pub mod admission;
pub mod api;
pub mod auth;
pub mod openapi;
pub mod problem;
pub mod routing;
