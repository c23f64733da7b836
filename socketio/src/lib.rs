//! # kline-socketio
//!
//! The Socket.IO endpoint of the existing Spin Pet front-ends: `/socket.io`, namespace `/kline`, with the
//! old server's events and payloads ([`wire`]), over the same push core as `/ws` (`kline_push`): a
//! subscribed series' candles as `kline_data` (its history and the mint's recent trades first, as
//! `history_data` and `history_event_data`), and the mint's live trades as `event_data`.
//!
//! - [`wire`]: the events' payloads in the old shapes, and request validation.
//! - [`session`]: one socket's requests, in order, and its lifetime, whatever the transport.
//! - [`transport`]: what differs between the transports, behind the one session logic.
//! - [`sink`]: a socketioxide socket as a hub subscriber: gating, its bound and what happens when it is
//!   full.
//! - [`engine`]: our own Engine.IO v4 / Socket.IO v5 over websocket, on `/ws`'s machinery.
//!
//! Two transports serve `/socket.io/` ([`gate_request`] routes by query): a client that opens a websocket
//! at once (`?EIO=4&transport=websocket`, no `sid`) is served by [`engine`]; polling, and a polling
//! session's upgrade to websocket (requests with `sid`), by socketioxide through the router's layer. Both
//! have the Engine.IO heartbeat (`socketio.ping_interval_secs` / `ping_timeout_secs`) that closes dead
//! connections; on shutdown every socket is closed before the hub stops. In front of both: a request from
//! an origin off `server.cors_allowed_origins` gets 403, as `/ws`'s upgrade does ([`kline_push::origin`]);
//! a node that is not ready ([`kline_push::readiness`]) answers a new session with 503; open sessions stay.

pub mod engine;
pub mod session;
pub mod sink;
pub mod transport;
pub mod wire;

use std::time::Duration;

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use socketioxide::SocketIo;
use socketioxide::extract::SocketRef;
use socketioxide::layer::SocketIoLayer;

use kline_config::CorsOrigins;
use kline_push::PushContext;
use kline_push::readiness::Readiness;

/// The namespace the old server's front-ends connect to.
pub const NAMESPACE: &str = "/kline";

/// The path socketioxide serves (its default).
pub const PATH: &str = "/socket.io";

/// Serves Socket.IO on `router` (every route of it must already be there): the layer, and in front of it
/// the gate every `/socket.io` request passes ([`gate_request`]).
pub fn attach(router: Router, state: &PushContext) -> Router {
    let gate = Gate {
        readiness: state.readiness.clone(),
        origins: state.config.cors_allowed_origins.clone(),
        push: state.clone(),
    };
    router
        .layer(layer(state))
        .layer(middleware::from_fn_with_state(gate, gate_request))
}

/// What a `/socket.io` request is checked against before socketioxide sees it.
#[derive(Clone)]
struct Gate {
    readiness: Readiness,
    origins: CorsOrigins,
    /// For the connections [`engine`] serves.
    push: PushContext,
}

/// 403 to a request from an origin off the allow-list (the WebSocket upgrade included: browsers apply no
/// CORS to it); 503 to a new Engine.IO session (a request without `sid`) while the node is not ready. The
/// requests of sessions already open (polling, the upgrade to websocket) pass readiness. A request that
/// opens a websocket directly is then served by [`engine`], the others go on to socketioxide.
async fn gate_request(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    let uri = request.uri();
    if !uri.path().starts_with(PATH) {
        return next.run(request).await;
    }
    if let Some(origin) = kline_push::origin::refused(request.headers(), &gate.origins) {
        tracing::debug!(%origin, "Socket.IO request refused: origin not allowed");
        return (
            StatusCode::FORBIDDEN,
            format!("origin `{origin}` is not allowed (see server.cors_allowed_origins)\n"),
        )
            .into_response();
    }
    let opens_session = !uri
        .query()
        .unwrap_or_default()
        .split('&')
        .any(|pair| pair.starts_with("sid="));
    if opens_session && let Err(reason) = gate.readiness.check() {
        tracing::debug!(%reason, "Socket.IO session refused: not ready");
        return kline_push::readiness::refusal(&reason);
    }
    if engine::is_direct_websocket(uri) {
        return engine::upgrade(gate.push, request);
    }
    next.run(request).await
}

/// The Socket.IO layer for the router, with `/kline` set up; its sockets are closed when `state.shutdown`
/// is cancelled (a task in `state.connections`, so shutdown waits for it).
fn layer(state: &PushContext) -> SocketIoLayer {
    let config = &state.config.socketio;
    let (layer, io) = SocketIo::builder()
        .ping_interval(Duration::from_secs(config.ping_interval_secs))
        .ping_timeout(Duration::from_secs(config.ping_timeout_secs))
        .max_payload(config.max_payload_bytes)
        .max_buffer_size(config.max_buffer_packets)
        .build_layer();
    let connected = state.clone();
    io.ns(NAMESPACE, move |socket: SocketRef| {
        session::on_connect(socket, connected.clone());
        async {}
    });
    let shutdown = state.shutdown.clone();
    state.connections.spawn(async move {
        shutdown.cancelled().await;
        io.close().await;
    });
    layer
}
