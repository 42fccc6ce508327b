//! What comes back from providers: status reports, inbound messages and template reports applied
//! (from callbacks and from reconciliation's polls), and the template status cache.

pub mod reconcile;
pub mod reports;
pub mod templates;
