//! # kline-ws
//!
//! The WebSocket push service at `/ws`, speaking the protocol crate's contract v1: a transport over the push
//! core. The connection plumbing it shares with Socket.IO is in [`kline_push::websocket`].
//!
//! - [`upgrade`]: `GET /ws`: the opening handshake ([`kline_push::websocket::handshake`]), then
//!   [`connection`].
//! - [`connection`]: a connection's task: requests, rate limit, idle timeout, cleanup.

pub mod connection;

use axum::Router;
use axum::extract::{Request, State};
use axum::response::Response;
use axum::routing::get;

use kline_push::PushContext;
use kline_push::websocket::handshake::accept;

/// `GET /ws`, with its state applied.
pub fn routes(push: PushContext) -> Router {
    Router::new().route("/ws", get(upgrade)).with_state(push)
}

/// Answers 101 and serves the connection on its own task once hyper hands the socket over.
pub async fn upgrade(State(state): State<PushContext>, request: Request) -> Response {
    let compression = state.config.websocket.compression;
    accept(state, request, compression, connection::serve)
}
