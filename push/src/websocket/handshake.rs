//! `GET /ws`: the WebSocket opening handshake (RFC 6455 §4.2) and the hand-over of the raw TCP socket.
//!
//! The handshake is done here rather than by axum's `WebSocketUpgrade` because the push path writes to the
//! socket itself (see [`super::outbox`]): after the 101 response, hyper hands the connection back and it is
//! downcast to the `TcpStream` the accept loop (`kline-server`'s `http::serve`) gave hyper. A
//! permessage-deflate offer is answered here ([`super::deflate`]) when `websocket.compression` is on. A node
//! that is not ready ([`crate::readiness`]) answers 503 instead.

use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use bytes::Bytes;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::deflate::{self, Deflate};
use crate::PushContext;
use kline_config::CorsOrigins;

/// Why an upgrade request was refused: 400, except a method other than `GET` (405), a wrong version
/// (426) and an origin not on the allow-list (403).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum HandshakeError {
    #[error("a WebSocket upgrade must be a GET request")]
    Method,
    #[error("not a WebSocket upgrade: the `Upgrade` header must be `websocket`")]
    NotWebSocket,
    #[error("the `Connection` header must include `upgrade`")]
    NoConnectionUpgrade,
    #[error("missing `Sec-WebSocket-Version` header (it must be 13)")]
    NoVersion,
    #[error("unsupported WebSocket version: `Sec-WebSocket-Version` must be 13")]
    Version,
    #[error("missing `Sec-WebSocket-Key` header")]
    NoKey,
    #[error("`Sec-WebSocket-Key` must be the base64 encoding of 16 bytes")]
    BadKey,
    #[error("origin `{0}` is not allowed (see server.cors_allowed_origins)")]
    Origin(String),
    #[error("this connection cannot be upgraded (HTTP/1.1 is required)")]
    NotUpgradable,
}

impl IntoResponse for HandshakeError {
    fn into_response(self) -> Response {
        let message = self.to_string();
        match self {
            HandshakeError::Version => {
                let version = [(
                    header::SEC_WEBSOCKET_VERSION,
                    HeaderValue::from_static("13"),
                )];
                (StatusCode::UPGRADE_REQUIRED, version, message).into_response()
            }
            HandshakeError::Method => {
                let allow = [(header::ALLOW, HeaderValue::from_static("GET"))];
                (StatusCode::METHOD_NOT_ALLOWED, allow, message).into_response()
            }
            HandshakeError::Origin(_) => (StatusCode::FORBIDDEN, message).into_response(),
            _ => (StatusCode::BAD_REQUEST, message).into_response(),
        }
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
    match headers.get(header::SEC_WEBSOCKET_VERSION) {
        None => return Err(HandshakeError::NoVersion),
        Some(version) if version.as_bytes() != b"13" => return Err(HandshakeError::Version),
        Some(_) => {}
    }
    let key = headers
        .get(header::SEC_WEBSOCKET_KEY)
        .ok_or(HandshakeError::NoKey)?;
    // RFC 6455 §4.2.1: "a base64-encoded value that, when decoded, is 16 bytes in length".
    let decoded = base64::engine::general_purpose::STANDARD.decode(key.as_bytes());
    if decoded.map(|bytes| bytes.len()) != Ok(16) {
        return Err(HandshakeError::BadKey);
    }
    Ok(derive_accept_key(key.as_bytes()))
}

/// The Origin allow-list ([`crate::origin`]): an origin off `server.cors_allowed_origins` may not open `/ws`.
pub fn check_origin(headers: &HeaderMap, allowed: &CorsOrigins) -> Result<(), HandshakeError> {
    match crate::origin::refused(headers, allowed) {
        Some(origin) => Err(HandshakeError::Origin(origin)),
        None => Ok(()),
    }
}

/// The opening handshake of every WebSocket endpoint that writes to its socket itself (`/ws`, and
/// Socket.IO's websocket transport in `kline_socketio::engine`): the method, readiness, the key and the
/// Origin are checked, permessage-deflate is agreed if `compression` and offered, and `serve` runs on a
/// task of its own (tracked in `state.connections`) once hyper hands the socket over.
pub fn accept<F, Fut>(
    state: PushContext,
    mut request: Request,
    compression: bool,
    serve: F,
) -> Response
where
    F: FnOnce(TcpStream, Bytes, Option<Deflate>, PushContext) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send,
{
    // The route is `get`, which axum also answers for HEAD.
    if request.method() != Method::GET {
        return HandshakeError::Method.into_response();
    }
    if let Err(reason) = state.readiness.check() {
        tracing::debug!(%reason, "WebSocket upgrade refused: not ready");
        return crate::readiness::refusal(&reason);
    }
    let accepted = accept_key(request.headers()).and_then(|accept| {
        check_origin(request.headers(), &state.config.cors_allowed_origins).map(|()| accept)
    });
    let accept = match accepted {
        Ok(accept) => accept,
        Err(err) => {
            tracing::debug!(error = %err, "WebSocket handshake refused");
            return err.into_response();
        }
    };
    let ws_config = &state.config.websocket;
    let deflate = compression
        .then(|| deflate::negotiate(request.headers()))
        .flatten()
        .map(|window_bits| Deflate {
            window_bits,
            min_bytes: ws_config.compression_min_bytes,
            level: ws_config.compression_level,
        });
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
            Ok(parts) => serve(parts.io.into_inner(), parts.read_buf, deflate, state).await,
            Err(_) => tracing::error!("upgraded connection is not a TCP stream; dropping it"),
        }
        drop(tracked);
    });
    let mut response = (
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
        ],
        [(header::SEC_WEBSOCKET_ACCEPT, accept)],
    )
        .into_response();
    if deflate.is_some() {
        response
            .headers_mut()
            .insert(header::SEC_WEBSOCKET_EXTENSIONS, deflate::response_header());
    }
    response
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
        assert_eq!(without("sec-websocket-version"), HandshakeError::NoVersion);
        assert_eq!(without("sec-websocket-key"), HandshakeError::NoKey);
        let mut old = request(&VALID);
        old.insert("sec-websocket-version", HeaderValue::from_static("8"));
        assert_eq!(accept_key(&old).unwrap_err(), HandshakeError::Version);
        for key in [
            "abc",
            "dGhlIHNhbXBsZSBub25jZQ",
            "dGhlIHNhbXBsZSBub25j",
            "AAAAAAAAAAAAAAAAAAAAAAA=",
        ] {
            let mut bad = request(&VALID);
            bad.insert("sec-websocket-key", HeaderValue::from_static(key));
            assert_eq!(
                accept_key(&bad).unwrap_err(),
                HandshakeError::BadKey,
                "{key}"
            );
        }
    }

    #[test]
    fn origins_off_the_list_are_refused_and_requests_without_origin_pass() {
        let list = CorsOrigins::List(vec!["https://app.example".into()]);
        let with = |origin: &'static str| request(&[("origin", origin)]);
        assert_eq!(check_origin(&with("https://app.example"), &list), Ok(()));
        assert_eq!(check_origin(&with("HTTPS://APP.EXAMPLE"), &list), Ok(()));
        assert_eq!(
            check_origin(&with("https://evil.example"), &list),
            Err(HandshakeError::Origin("https://evil.example".into()))
        );
        assert_eq!(check_origin(&HeaderMap::new(), &list), Ok(()));
        let permissive = CorsOrigins::Keyword("permissive".into());
        assert_eq!(
            check_origin(&with("https://evil.example"), &permissive),
            Ok(())
        );
    }
}
