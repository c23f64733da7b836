//! The transport-neutral push core: the subscription hub and the request rate limit, shared by the
//! transports (`/ws` in [`crate::ws`]).
//!
//! - [`hub`]: the subscription index and the fan-out (one thread, one owner).
//! - [`rate_limit`]: the token bucket.

pub mod hub;
pub mod rate_limit;
