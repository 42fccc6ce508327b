//! `gateway-http`: the messaging gateway service. See the README for what it is and how to run it.

pub mod accounts;
pub mod admission;
pub mod api;
pub mod auth;
pub mod config;
pub mod engine;
pub mod events;
pub mod fallback;
pub mod metrics;
pub mod openapi;
pub mod problem;
pub mod providers;
pub mod reconcile;
pub mod reports;
pub mod routing;
pub mod startup;
pub mod telemetry;
pub mod templates;

pub use config::Config;
pub use startup::Application;
