//! Socket.IO's websocket transport, served by the server itself: a client that opens `/socket.io/` as a
//! websocket at once (`?EIO=4&transport=websocket`, no `sid`: what socket.io-client does first with
//! `transports: ['websocket', …]`) gets Engine.IO v4 and Socket.IO v5 from here, over the machinery of `/ws`
//! (its handshake, one task per connection, the [`kline_push::websocket::outbox::Outbox`] for every frame).
//! Polling and the polling→websocket upgrade (requests with a `sid`) stay socketioxide's; both transports run
//! the one session logic of [`super::session`].
//!
//! - [`packet`]: the Engine.IO and Socket.IO packets, parsed and encoded (no I/O).
//! - [`heartbeat`]: Engine.IO's ping/pong deadlines (no I/O).
//! - [`socket`]: the socket as its session and the hubs see it; the shared `kline_data` frame.
//! - [`connection`]: a connection's task.

pub mod connection;
pub mod heartbeat;
pub mod packet;
pub mod socket;

use axum::extract::Request;
use axum::http::Uri;
use axum::response::Response;

use kline_push::PushContext;

/// Whether `uri` opens a Socket.IO websocket directly (Engine.IO v4, transport websocket, no session id):
/// such a request is served here, every other `/socket.io/` request by socketioxide.
pub fn is_direct_websocket(uri: &Uri) -> bool {
    let query = uri.query().unwrap_or_default();
    let has = |pair: &str| query.split('&').any(|p| p == pair);
    let has_sid = query.split('&').any(|p| p.starts_with("sid="));
    has("EIO=4") && has("transport=websocket") && !has_sid
}

/// Answers the WebSocket handshake (`/ws`'s, [`kline_push::websocket::handshake::accept`]) and serves the
/// connection.
pub fn upgrade(state: PushContext, request: Request) -> Response {
    kline_push::websocket::handshake::accept(state, request, false, connection::serve)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_new_engine_io_4_websocket_is_direct() {
        let direct = |uri: &str| is_direct_websocket(&uri.parse().unwrap());
        assert!(direct("/socket.io/?EIO=4&transport=websocket"));
        assert!(direct("/socket.io/?transport=websocket&EIO=4&t=abc"));
        assert!(!direct("/socket.io/?EIO=4&transport=polling"));
        assert!(!direct("/socket.io/?EIO=4&transport=websocket&sid=abc"));
        assert!(!direct("/socket.io/?EIO=3&transport=websocket"));
        assert!(!direct("/socket.io/?transport=websocketx&EIO=4"));
    }
}
