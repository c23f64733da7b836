//! `GET /ws`: the WebSocket opening handshake (RFC 6455 §4.2) and the hand-over of the raw TCP socket.
//!
//! The handshake is done here rather than by axum's `WebSocketUpgrade` because the push path writes to
//! the socket itself (see [`super::outbox`]): after the 101 response, hyper hands the connection back and
//! it is downcast to the `TcpStream` the accept loop ([`crate::http::serve`]) gave hyper.

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::connection;
use crate::app::AppState;

/// Why an upgrade request was refused (answered with 400, or 426 for a wrong version).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("not a WebSocket upgrade: the `Upgrade` header must be `websocket`")]
    NotWebSocket,
    #[error("the `Connection` header must include `upgrade`")]
    NoConnectionUpgrade,
    #[error("unsupported WebSocket version: `Sec-WebSocket-Version` must be 13")]
    Version,
    #[error("missing `Sec-WebSocket-Key` header")]
    NoKey,
    #[error("this connection cannot be upgraded (HTTP/1.1 is required)")]
    NotUpgradable,
}

impl IntoResponse for HandshakeError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        if self == HandshakeError::Version {
            let version = [(
                header::SEC_WEBSOCKET_VERSION,
                HeaderValue::from_static("13"),
            )];
            return (StatusCode::UPGRADE_REQUIRED, version, message).into_response();
        }
        (StatusCode::BAD_REQUEST, message).into_response()
    }
}

/// The `Sec-WebSocket-Accept` value for a valid upgrade request.
pub fn accept_key(headers: &HeaderMap) -> Result<String, HandshakeError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value.to_str().is_ok_and(|value| {
                value
                    .split(',')
                    .any(|part| part.trim().eq_ignore_ascii_case(token))
            })
        })
    };
    if !has_token(header::UPGRADE, "websocket") {
        return Err(HandshakeError::NotWebSocket);
    }
    if !has_token(header::CONNECTION, "upgrade") {
        return Err(HandshakeError::NoConnectionUpgrade);
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .map(|v| v.as_bytes())
        != Some(b"13")
    {
        return Err(HandshakeError::Version);
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::NoKey)?;
    Ok(derive_accept_key(key.as_bytes()))
}

/// Answers 101 and serves the connection on its own task once hyper hands the socket over.
pub async fn upgrade(State(state): State<AppState>, mut request: Request) -> Response {
    let accept = match accept_key(request.headers()) {
        Ok(accept) => accept,
        Err(err) => return err.into_response(),
    };
    let Some(on_upgrade) = request.extensions_mut().remove::<OnUpgrade>() else {
        return HandshakeError::NotUpgradable.into_response();
    };
    let tracked = state.connections.token();
    tokio::spawn(async move {
        let upgraded = match on_upgrade.await {
            Ok(upgraded) => upgraded,
            Err(err) => {
                tracing::debug!(error = %err, "WebSocket upgrade failed");
                return;
            }
        };
        match upgraded.downcast::<TokioIo<TcpStream>>() {
            Ok(parts) => connection::serve(parts.io.into_inner(), parts.read_buf, state).await,
            Err(_) => tracing::error!("upgraded connection is not a TCP stream; dropping it"),
        }
        drop(tracked);
    });
    (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
        ],
        [(header::SEC_WEBSOCKET_ACCEPT, accept)],
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut headers = HeaderMap::new();
        for (name, value) in pairs {
            headers.append(*name, HeaderValue::from_static(value));
        }
        headers
    }

    const VALID: [(&str, &str); 4] = [
        ("upgrade", "websocket"),
        ("connection", "keep-alive, Upgrade"),
        ("sec-websocket-version", "13"),
        ("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ=="),
    ];

    #[test]
    fn the_rfc_example_key_gives_the_rfc_accept_value() {
        assert_eq!(
            accept_key(&request(&VALID)).unwrap(),
            "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
        );
    }

    #[test]
    fn each_missing_or_wrong_header_is_named() {
        let without = |name: &str| {
            let pairs: Vec<_> = VALID.iter().copied().filter(|(n, _)| *n != name).collect();
            accept_key(&request(&pairs)).unwrap_err()
        };
        assert_eq!(without("upgrade"), HandshakeError::NotWebSocket);
        assert_eq!(without("connection"), HandshakeError::NoConnectionUpgrade);
        assert_eq!(without("sec-websocket-version"), HandshakeError::Version);
        assert_eq!(without("sec-websocket-key"), HandshakeError::NoKey);
        let mut old = request(&VALID);
        old.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert_eq!(accept_key(&old).unwrap_err(), HandshakeError::Version);
    }
}
