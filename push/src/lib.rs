//! # kline-push
//!
//! The transport-neutral push core, and the WebSocket connection plumbing both transports share
//! ([`websocket`]). The transports, `/ws` (`kline-ws`) and Socket.IO (`kline-socketio`), are crates above
//! this one: adapters that parse requests and encode replies; subscriptions, their ordering, limits and
//! fan-out are here, and this crate cannot name either transport.
//!
//! - [`hub`]: the subscription index and the fan-out (one thread per shard, one owner).
//! - [`subscriber`]: what the hubs deliver to: a `/ws` connection's outbox, or another transport's
//!   [`subscriber::Sink`].
//! - [`gate`]: subscribe gating (snapshot first, then only newer updates).
//! - [`session`]: a connection's subscriptions, the subscription limit, the subscribe/unsubscribe steps
//!   and history reads.
//! - [`trade_hub`]: the trade subscriptions and the delivery of every committed trade, once per connection.
//! - [`tickers`]: the ticker stream: every mint's last price and 24-hour numbers, at most once a second.
//! - [`rate_limit`]: the token bucket.
//! - [`context`]: [`PushContext`], the parts the transports share (hubs, store, limits, shutdown).
//! - [`symbols`]: the cached symbol list of `connection_success`.
//! - [`readiness`]: whether the node takes new clients (`/ready`, `/ws`, Socket.IO).
//! - [`origin`]: the Origin allow-list of the push endpoints.

pub mod context;
pub mod gate;
pub mod hub;
pub mod origin;
pub mod rate_limit;
pub mod readiness;
pub mod session;
pub mod subscriber;
pub mod symbols;
pub mod tickers;
pub mod trade_hub;

pub mod websocket;

use kline_protocol::{Interval, Symbol};

pub use context::PushContext;
pub use subscriber::Subscriber;

/// A (symbol, interval) pair: what a client subscribes to.
pub type SeriesKey = (Symbol, Interval);
