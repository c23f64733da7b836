//! The Origin allow-list of the push endpoints (`/ws`, Socket.IO): `server.cors_allowed_origins`.
//!
//! Browsers apply CORS to `fetch`, not to a WebSocket upgrade: a page anywhere could open a socket with its
//! visitor's browser. With a list, only those origins may connect. A request without `Origin` is not from
//! a browser page and passes; `permissive` lets every origin pass.

use axum::http::{HeaderMap, header};

use kline_config::CorsOrigins;

/// The request's origin when the allow-list refuses it; `None` when it may pass.
pub fn refused(headers: &HeaderMap, allowed: &CorsOrigins) -> Option<String> {
    let CorsOrigins::List(list) = allowed else {
        return None;
    };
    let origin = String::from_utf8_lossy(headers.get(header::ORIGIN)?.as_bytes());
    let listed = list
        .iter()
        .any(|allowed| allowed.eq_ignore_ascii_case(&origin));
    (!listed).then(|| origin.into_owned())
}
