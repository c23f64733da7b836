//! The WebSocket push service at `/ws`, speaking the protocol crate's contract v1.
//!
//! - [`hub`]: the subscription index and the fan-out (one task, one owner).
//! - [`outbox`]: a connection's bounded frame queue and its overflow policy.
//! - [`writer`]: a connection's single writer (drain, write, flush once; pings; close frames).
//! - [`connection`]: a connection's read loop: requests, rate limit, idle timeout, cleanup.
//! - [`rate_limit`]: the token bucket.

pub mod connection;
pub mod hub;
pub mod outbox;
pub mod rate_limit;
pub mod writer;

use axum::extract::State;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::Response;

use crate::app::AppState;

/// `GET /ws`: upgrades with the configured buffer sizes and message limit.
pub async fn upgrade(ws: WebSocketUpgrade, State(state): State<AppState>) -> Response {
    let config = &state.config.websocket;
    let ws = ws
        .read_buffer_size(config.read_buffer_bytes)
        .write_buffer_size(config.write_buffer_bytes)
        .max_write_buffer_size(config.max_write_buffer_bytes)
        .max_message_size(config.max_message_bytes)
        .max_frame_size(config.max_message_bytes);
    let tracked = state.connections.token();
    ws.on_upgrade(move |socket| async move {
        connection::serve(socket, state).await;
        drop(tracked);
    })
}
