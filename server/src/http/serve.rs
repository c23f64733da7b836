//! The accept loop: HTTP/1.1 with upgrades over each accepted TCP connection, until shutdown.
//!
//! Ours rather than `axum::serve` for two reasons: the connection is given to hyper as a plain
//! `TokioIo<TcpStream>` so an upgraded WebSocket can be downcast back to its `TcpStream` (the push path
//! writes to sockets directly, see [`kline_push::websocket::outbox`]), and every accepted socket gets
//! `TCP_NODELAY` (a candle update is one small frame that must not wait for Nagle's algorithm).
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
use std::sync::Arc;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use kline_config::ServerConfig;
use kline_core::stats::PushStats;

pub use kline_config::MIN_HEAD_BYTES;

/// Limits on a request's head (slowloris, oversized or numerous headers).
#[derive(Debug, Clone, Copy)]
pub struct HeadLimits {
    /// How long a client may take to send a request's headers.
    pub read_timeout: Duration,
    /// Largest request head, bytes (at least 8192, hyper's minimum); larger gets 431.
    pub max_bytes: usize,
    /// Most header fields in a request; more gets 431.
    pub max_headers: usize,
}

impl HeadLimits {
    pub fn from_config(server: &ServerConfig) -> HeadLimits {
        HeadLimits {
            read_timeout: Duration::from_secs(server.header_read_timeout_secs),
            max_bytes: server.max_header_bytes,
            max_headers: server.max_headers,
        }
    }
}

/// How many client sockets may be open at once (see [`crate::fds`]): HTTP connections (counted here) and
/// upgraded WebSocket connections (their tasks, in `websockets`).
#[derive(Clone)]
pub struct SocketBudget {
    pub max: usize,
    pub websockets: TaskTracker,
    pub stats: Arc<PushStats>,
}

/// Clients refused at the socket budget whose 503 is still being delivered; beyond, a socket is dropped.
const MAX_REFUSING: usize = 32;

/// Serves `router` on `listener` until `shutdown` is cancelled and every HTTP connection has closed.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: HeadLimits,
    budget: SocketBudget,
    shutdown: CancellationToken,
) {
    let connections = TaskTracker::new();
    let refusing = TaskTracker::new();
    let mut http = http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.read_timeout)
        .max_buf_size(limits.max_bytes.max(MIN_HEAD_BYTES))
        .max_headers(limits.max_headers);
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
        if connections.len() + budget.websockets.len() >= budget.max {
            kline_core::stats::add(&budget.stats.sockets_refused, 1);
            if refusing.len() < MAX_REFUSING {
                refusing.spawn(refuse(socket));
            }
            continue;
        }
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
    refusing.close();
    connections.wait().await;
    refusing.wait().await;
}

/// Answers a client beyond the socket budget with 503, then reads (and drops) its request until it closes,
/// briefly: closing with its request unread would send a reset that can destroy the answer.
async fn refuse(mut socket: TcpStream) {
    const BODY: &str = "server at its connection limit; try again later\n";
    let response = format!(
        "HTTP/1.1 503 Service Unavailable\r\ncontent-type: text/plain\r\ncontent-length: {}\r\n\
         retry-after: 5\r\nconnection: close\r\n\r\n{BODY}",
        BODY.len()
    );
    let refused = async {
        socket.write_all(response.as_bytes()).await?;
        socket.shutdown().await?;
        let mut scratch = [0u8; 1024];
        while socket.read(&mut scratch).await? > 0 {}
        io::Result::Ok(())
    };
    let _ = tokio::time::timeout(Duration::from_secs(2), refused).await;
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
