//! A process is a composition of parts chosen by its role (`node.role`, docs/scaling.md):
//!
//! | role | parts | HTTP |
//! |---|---|---|
//! | `all` | [`WritePath`] + [`PushCore`] on one store | everything |
//! | `writer` | [`WritePath`] with the stream's outbox, the publisher | ingest, REST reads, status; snapshot (internal) |
//! | `edge` | a replica fed by the stream, [`PushCore`] | `/ws`, Socket.IO, REST reads, chart, status; snapshot (internal) |
//!
//! "internal": on the internal listener (`node.internal_addr`, [`internal`]), never on the public port.
//!
//! Each part owns its state and hands the HTTP layer only what its routes need (`http::reads::ReadSide`,
//! `http::ingest::Ingest`, `kline_push::PushContext`, `http::status::NodeStatus`). A role is its list of
//! parts ([`parts`]); [`run`] starts, serves and stops every role the same way, in the one shutdown order
//! [`parts`] gives, each step bounded by `server.shutdown_timeout_secs`.

mod internal;
mod parts;
mod push_core;
mod write_path;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use parts::Parts;
pub use push_core::PushCore;
pub use write_path::WritePath;

use crate::http::reads::ReadSide;
use crate::http::serve::{HeadLimits, SocketBudget};
use crate::{fds, http};
use kline_config::{Config, ConfigError};
use kline_core::stats::StoreStats;
use kline_store::sweeper;
use kline_store::{CandleStore, StoreError};

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        addr: String,
        source: std::io::Error,
    },
    #[error("HTTP server failed: {0}")]
    Serve(std::io::Error),
}

/// Binds the configured address with the configured listen backlog.
pub fn bind(config: &Config) -> Result<TcpListener, ServerError> {
    bind_addr(config, config.bind_addr()?)
}

/// Binds `addr` with the configured listen backlog.
fn bind_addr(config: &Config, addr: std::net::SocketAddr) -> Result<TcpListener, ServerError> {
    let listen_error = |source| ServerError::Listen {
        addr: addr.to_string(),
        source,
    };
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(listen_error)?;
    socket.set_reuseaddr(true).map_err(listen_error)?;
    socket.bind(addr).map_err(listen_error)?;
    socket
        .listen(config.server.listen_backlog)
        .map_err(listen_error)
}

/// Runs the configured role on `listener` until `shutdown` is cancelled, then stops it in order.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let base = Base::open(&config)?;
    let mut parts = Parts::start(&config, &base, &shutdown)?;
    let background = TaskTracker::new();
    base.start_retention(&config, &background, &shutdown);
    let (router, budget) = parts.public_http(&config, &base);
    let internal_listener = parts.internal.take();
    let (served, internal_served) = tokio::join!(
        serve_http(&config, &base, listener, router, budget, &shutdown),
        internal::serve(
            &config,
            &base,
            internal_listener,
            parts.readiness.clone(),
            &shutdown
        ),
    );
    internal_served?;

    parts.stop(grace(&config), &base.store, &background).await?;
    tracing::info!("store flushed; bye");
    served
}

/// What every role starts with: the open-file budget and the store.
struct Base {
    fd_limit: u64,
    /// Client sockets (HTTP and WebSocket) the process may hold ([`fds::socket_budget`]).
    socket_budget: usize,
    store: Arc<CandleStore>,
    /// Retention's and the snapshot route's counters, the store's size.
    store_stats: Arc<StoreStats>,
    started_at: Instant,
}

impl Base {
    fn open(config: &Config) -> Result<Base, ServerError> {
        let fd_limit = fds::raise_limit().map_err(ServerError::Serve)?;
        fds::check(config, fd_limit)?;
        let store = Arc::new(CandleStore::open(&config.storage)?);
        Ok(Base {
            fd_limit,
            socket_budget: fds::socket_budget(config, fd_limit),
            store_stats: Arc::new(StoreStats {
                candles_read: store.candles_read_counter(),
                ..StoreStats::default()
            }),
            store,
            started_at: Instant::now(),
        })
    }

    fn reads(&self, config: &Config) -> ReadSide {
        ReadSide::new(self.store.clone(), config, &self.store_stats)
    }

    /// Starts the retention task on `background`.
    fn start_retention(
        &self,
        config: &Config,
        background: &TaskTracker,
        shutdown: &CancellationToken,
    ) {
        background.spawn(sweeper::run(
            self.store.clone(),
            config.retention.clone(),
            self.store_stats.clone(),
            shutdown.child_token(),
        ));
    }
}

/// Serves `router` on the public `listener` until `shutdown`, then lets HTTP connections finish what they
/// serve, for at most `server.shutdown_timeout_secs`. With `server.tls` on, `listener` speaks TLS.
async fn serve_http(
    config: &Config,
    base: &Base,
    listener: TcpListener,
    router: Router,
    budget: SocketBudget,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let local_addr = listener.local_addr().map_err(ServerError::Serve)?;
    let tls = config.server.tls.enabled;
    tracing::info!(
        addr = %local_addr,
        tls,
        role = ?config.node.role,
        data_dir = %base.store.path().display(),
        fd_limit = base.fd_limit,
        socket_budget = base.socket_budget,
        "kline-server listening"
    );
    let router = http::with_cors(router, &config.server.cors_allowed_origins);
    serve_listener(config, listener, router, budget, tls, shutdown).await
}

/// Serves `router` on `listener` until `shutdown`, then for at most `server.shutdown_timeout_secs`. With
/// `tls`, `listener` speaks TLS with `server.tls`'s certificate: the [`http::tls::Terminator`] owns it and
/// relays each client to the plain server on a loopback port.
async fn serve_listener(
    config: &Config,
    listener: TcpListener,
    router: Router,
    budget: SocketBudget,
    tls: bool,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let limits = HeadLimits::from_config(&config.server);
    let (plain, terminator) = if tls {
        let tls = &config.server.tls;
        let certificate = kline_tls::ServerCertificate::load(&tls.cert_file, &tls.key_file)
            .map_err(|err| {
                ServerError::Config(ConfigError::invalid("server.tls", err.to_string()))
            })?;
        let backend = TcpListener::bind(("127.0.0.1", 0))
            .await
            .map_err(ServerError::Serve)?;
        let terminator = http::tls::Terminator {
            certificate,
            backend: backend.local_addr().map_err(ServerError::Serve)?,
            handshake_timeout: limits.read_timeout,
            max_clients: budget.max,
        };
        (backend, Some(terminator.run(listener, shutdown.clone())))
    } else {
        (listener, None)
    };
    let served = async {
        let http = http::serve::serve(plain, router, limits, budget, shutdown.clone());
        match terminator {
            Some(terminator) => {
                tokio::join!(http, terminator);
            }
            None => http.await,
        }
    };
    tokio::select! {
        _ = served => {}
        _ = deadline_after(shutdown, grace(config)) => {
            tracing::warn!("connections did not close within the shutdown timeout; closing anyway");
        }
    }
    Ok(())
}

/// `server.shutdown_timeout_secs`: the bound of each shutdown step.
fn grace(config: &Config) -> Duration {
    Duration::from_secs(config.server.shutdown_timeout_secs)
}

/// Waits for `tasks` (closed) for at most `grace`; says which did not finish.
async fn wait_bounded(tasks: &TaskTracker, grace: Duration, what: &str) {
    tasks.close();
    if tokio::time::timeout(grace, tasks.wait()).await.is_err() {
        tracing::warn!(what, "did not finish within the shutdown timeout");
    }
}

/// Completes `grace` after `shutdown` is cancelled.
async fn deadline_after(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}
