//! TLS on the server's own listener (`server.tls`): a terminator in front of the plain HTTP server.
//!
//! The push path writes WebSocket frames straight to each client's `TcpStream`
//! ([`kline_push::websocket::outbox`]), which a TLS session cannot be. So the terminator accepts on the
//! public address, completes the TLS handshake (within `server.header_read_timeout_secs`), opens a loopback
//! connection to the plain server ([`super::serve`], on `127.0.0.1:<ephemeral>`) and relays bytes both ways
//! until either side closes. The HTTP server and everything behind it see an ordinary TCP client and behave
//! exactly as on a plain listener (limits, Origin checks, the socket budget, slow-reader closes).
//!
//! Costs, written down: each TLS client holds 3 file descriptors (its socket and both ends of the loopback
//! pair; [`crate::fds`] counts them) and every byte is copied once more through loopback. For 10,000+
//! connections a TLS-terminating proxy in front (nginx, HAProxy, a cloud load balancer) is cheaper; this
//! is for a node without one.
//!
//! Bounded: at most `max_clients` relays at once (beyond, a new client's TCP connection is closed before
//! the handshake: there is no way to tell it why in plain text), and a handshake that has not finished
//! within the timeout is dropped. SIGHUP reloads the certificate and key ([`ServerCertificate::reload`]).
//! On shutdown it stops accepting; each relay ends when the plain server closes its side.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use kline_tls::ServerCertificate;
use tokio::net::{TcpListener, TcpStream};
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

/// What the terminator needs besides its listener.
pub struct Terminator {
    pub certificate: Arc<ServerCertificate>,
    /// The plain server's loopback address.
    pub backend: SocketAddr,
    pub handshake_timeout: Duration,
    /// Relays (TLS clients) at once.
    pub max_clients: usize,
}

impl Terminator {
    /// Accepts TLS clients on `public` and relays them to the backend until `shutdown`; returns when every
    /// relay has ended.
    pub async fn run(self, public: TcpListener, shutdown: CancellationToken) {
        let acceptor = TlsAcceptor::from(self.certificate.server_config());
        let relays = TaskTracker::new();
        let mut hangups = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
            .map_err(|err| tracing::warn!(error = %err, "cannot watch SIGHUP; certificates will not reload"))
            .ok();
        loop {
            let accepted = tokio::select! {
                _ = shutdown.cancelled() => break,
                Some(()) = async { hangups.as_mut()?.recv().await } => {
                    self.reload();
                    continue;
                }
                accepted = public.accept() => accepted,
            };
            let socket = match accepted {
                Ok((socket, _)) => socket,
                Err(err) => {
                    tracing::debug!(error = %err, "TLS accept failed");
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
            };
            if relays.len() >= self.max_clients {
                continue; // dropped: at the socket budget
            }
            let _ = socket.set_nodelay(true);
            relays.spawn(relay(
                socket,
                acceptor.clone(),
                self.backend,
                self.handshake_timeout,
            ));
        }
        relays.close();
        relays.wait().await;
    }

    fn reload(&self) {
        match self.certificate.reload() {
            Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
            Err(err) => {
                tracing::error!(error = %err, "SIGHUP: TLS certificate not reloaded; still serving the old one")
            }
        }
    }
}

/// One client: handshake, then bytes both ways between it and the plain server.
async fn relay(socket: TcpStream, acceptor: TlsAcceptor, backend: SocketAddr, timeout: Duration) {
    let mut client = match tokio::time::timeout(timeout, acceptor.accept(socket)).await {
        Ok(Ok(client)) => client,
        Ok(Err(err)) => {
            tracing::debug!(error = %err, "TLS handshake with a client failed");
            return;
        }
        Err(_) => {
            tracing::debug!("TLS handshake with a client timed out");
            return;
        }
    };
    let mut plain = match TcpStream::connect(backend).await {
        Ok(plain) => plain,
        Err(err) => {
            tracing::warn!(error = %err, "cannot reach the plain listener behind TLS");
            return;
        }
    };
    let _ = plain.set_nodelay(true);
    if let Err(err) = tokio::io::copy_bidirectional(&mut client, &mut plain).await {
        tracing::debug!(error = %err, "TLS relay ended with an error");
    }
}
