//! End-to-end tests: the gateway against a real Redis and the provider sandbox. One binary.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod admission;
mod bad_input;
mod callbacks;
mod capacity;
mod contract;
mod durability;
mod engine;
mod fallback;
mod isolation;
mod observability;
mod outcomes;
mod provider_truth;
mod redis_outage;
mod routing;
mod send;
mod templates;
mod traces;
mod urgency;
