//! The WebSocket push service at `/ws`, speaking the protocol crate's contract v1.
//!
//! - [`handshake`]: the opening handshake and the hand-over of the raw TCP socket.
//! - [`outbox`]: a connection's socket writer: immediate writes, the bounded backlog, the overflow policy.
//! - [`frame`]: server frames, encoded once and shared.
//! - [`deflate`]: permessage-deflate: the negotiation, compressing a message once for every subscriber.
//! - [`inflate`]: the client's compressed messages, inflated below tungstenite.
//! - [`socket`]: the stream tungstenite reads client frames from.
//! - [`writer`]: writes a connection's backlog when the socket has room; pings; the close.
//! - [`close`]: the closing handshake: close codes for protocol violations, reading after our close.
//! - [`connection`]: a connection's task: requests, rate limit, idle timeout, cleanup.
//! - [`trades`]: a live trade's frame.
//! - [`tickers`]: a ticker round's frame.

pub mod close;
pub mod connection;
pub mod deflate;
pub mod frame;
pub mod handshake;
pub mod inflate;
pub mod outbox;
pub mod socket;
pub mod tickers;
pub mod trades;
pub mod writer;

pub use handshake::upgrade;

use axum::Router;
use axum::routing::get;

use crate::push::PushContext;

/// `GET /ws`, with its state applied.
pub fn routes(push: PushContext) -> Router {
    Router::new().route("/ws", get(upgrade)).with_state(push)
}
