//! Sending out: the lane dispatcher and what serves it (wake-ups, circuit breakers, the depth
//! sampler), cross-channel fallback chains, and event deliveries to subscribers.

pub mod circuit;
pub mod events;
pub mod fallback;
pub mod sampler;
pub mod wake;
pub mod worker;
