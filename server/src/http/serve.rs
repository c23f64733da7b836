//! The accept loop: HTTP/1.1 with upgrades over each accepted TCP connection, until shutdown.
//!
//! Ours rather than `axum::serve` for two reasons: the connection is given to hyper as a plain
//! `TokioIo<TcpStream>` so an upgraded WebSocket can be downcast back to its `TcpStream` (the push path
//! writes to sockets directly, see [`crate::ws::outbox`]), and every accepted socket gets `TCP_NODELAY`
//! (a candle update is one small frame that must not wait for Nagle's algorithm).
//!
//! On shutdown it stops accepting, lets each HTTP connection finish the request it is serving
//! (`graceful_shutdown`), and returns when they have all closed. Upgraded WebSocket connections are not
//! HTTP connections any more: they watch the shutdown token themselves.

use std::io;
use std::time::Duration;

use axum::Router;
use hyper::server::conn::http1;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// Serves `router` on `listener` until `shutdown` is cancelled and every HTTP connection has closed.
/// `header_read_timeout`: how long a client may take to send a request's headers.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    header_read_timeout: Duration,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(header_read_timeout);
    loop {
        let accepted = tokio::select! {
            _ = shutdown.cancelled() => break,
            accepted = listener.accept() => accepted,
        };
        let socket = match accepted {
            Ok((socket, _peer)) => socket,
            Err(err) if is_per_connection(&err) => continue,
            Err(err) => {
                // Typically out of file descriptors: back off instead of spinning on the same error.
                tracing::warn!(error = %err, "accept failed; retrying shortly");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        if let Err(err) = socket.set_nodelay(true) {
            tracing::debug!(error = %err, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = http
            .serve_connection(TokioIo::new(socket), service)
            .with_upgrades();
        let shutdown = shutdown.clone();
        connections.spawn(async move {
            let mut connection = std::pin::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                _ = shutdown.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(err) = result {
                tracing::debug!(error = %err, "HTTP connection ended with an error");
            }
        });
    }
    connections.close();
    connections.wait().await;
}

/// Errors about one incoming connection (it went away before it was accepted), not about the listener.
fn is_per_connection(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}
