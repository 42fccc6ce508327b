//! `gateway-http`: the messaging gateway service. See the README for what it is and how to run it.

pub mod accounts;
pub mod config;
pub mod delivery;
pub mod engine;
pub mod http;
pub mod inbound;
pub mod metrics;
pub mod providers;
pub mod startup;
pub mod telemetry;

pub use config::Config;
pub use startup::Application;
