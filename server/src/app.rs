//! Assembling the server: open the store, start the pipeline, the sources and the retention task, serve
//! HTTP, and shut everything down in order.
//!
//! Shutdown order: stop accepting and close connections → stop the sources → let the pipeline store what
//! is queued → flush RocksDB. Everything is bounded by `server.shutdown_timeout_secs`.

use std::ops::Deref;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::net::{TcpListener, TcpSocket};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::{Config, ConfigError};
use crate::fds;
use crate::feed::CandleFeed;
use crate::pipeline::service::{self, IngestHandle};
use crate::pipeline::{Pipeline, PipelineSettings};
use crate::push::hub::{self, Hub};
use crate::push::trade_hub::{self, TradeHub};
use crate::stats::{PipelineStats, PushStats};
use crate::store::{CandleStore, StoreError};
use crate::{http, memory, retention, source};

/// How long the symbol list sent in `connection_success` is reused before it is read again.
const SYMBOL_LIST_TTL: Duration = Duration::from_secs(5);

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

/// Everything request handlers share. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<AppInner>);

pub struct AppInner {
    pub config: Config,
    pub store: Arc<CandleStore>,
    pub ingest: IngestHandle,
    pub stats: Arc<PipelineStats>,
    pub started_at: Instant,
    pub push_stats: Arc<PushStats>,
    pub hub: Hub,
    /// Trade subscriptions and their delivery.
    pub trade_hub: TradeHub,
    /// Cancelled when the server shuts down: connections close with 1001.
    pub shutdown: CancellationToken,
    /// Every WebSocket connection task, so shutdown can wait for them.
    pub connections: TaskTracker,
    /// Permits for history reads over all WebSocket connections (`websocket.max_concurrent_history_reads`).
    pub history_reads: Arc<tokio::sync::Semaphore>,
    symbol_list: tokio::sync::Mutex<(Option<Instant>, Vec<kline_protocol::Symbol>)>,
    /// The Solana source's state, when it is on.
    pub solana: Option<Arc<source::solana::SolanaStatus>>,
    /// Every metric, registered once (`/metrics`).
    pub metrics: prometheus_client::registry::Registry,
}

impl AppState {
    /// Known mints, most recently updated first (cached for a few seconds: every connection asks).
    pub async fn symbol_list(&self) -> Vec<kline_protocol::Symbol> {
        let mut cache = self.symbol_list.lock().await;
        if cache.0.is_none_or(|at| at.elapsed() > SYMBOL_LIST_TTL) {
            let store = self.store.clone();
            if let Ok(Ok(mut symbols)) = tokio::task::spawn_blocking(move || store.symbols()).await
            {
                symbols.sort_by_key(|(_, stats)| std::cmp::Reverse(stats.updated_at_ms));
                cache.1 = symbols
                    .iter()
                    .map(|(mint, _)| kline_protocol::Symbol::from_bytes(mint))
                    .collect();
                cache.0 = Some(Instant::now());
            }
        }
        cache.1.clone()
    }
}

impl Deref for AppState {
    type Target = AppInner;

    fn deref(&self) -> &AppInner {
        &self.0
    }
}

impl PipelineSettings {
    pub fn from_config(config: &Config) -> PipelineSettings {
        PipelineSettings {
            intervals: config.kline.intervals.clone(),
            finality_grace_ms: config.kline.finality_grace_ms,
            price_scale_decimals: config.kline.price_scale_decimals,
        }
    }
}

/// Binds the configured address with the configured listen backlog.
pub fn bind(config: &Config) -> Result<TcpListener, ServerError> {
    let addr = config.bind_addr()?;
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

/// Runs the server on `listener` until `shutdown` is cancelled, then stops everything in order.
pub async fn run(
    config: Config,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let fd_limit = fds::raise_limit().map_err(ServerError::Serve)?;
    fds::check(&config, fd_limit)?;
    let socket_budget = fds::socket_budget(&config, fd_limit);
    let store = Arc::new(CandleStore::open(&config.storage)?);
    let stats = Arc::new(PipelineStats::default());
    let hub_threads = match config.websocket.hub_threads {
        0 => std::thread::available_parallelism().map_or(1, usize::from),
        n => n,
    };
    let feed = CandleFeed::new(hub_threads, config.kline.broadcast_buffer_size);
    let pipeline = Pipeline::open(
        store.clone(),
        PipelineSettings::from_config(&config),
        feed.clone(),
        stats.clone(),
    )?;
    let pipeline_stop = CancellationToken::new();
    let (ingest, pipeline_thread) = service::spawn(
        pipeline,
        config.pipeline.queue_capacity,
        config.pipeline.max_batch_events,
        pipeline_stop.clone(),
    );

    let background = TaskTracker::new();
    if config.source.simulator.enabled {
        background.spawn(source::simulator::run(
            config.source.simulator.clone(),
            ingest.clone(),
            shutdown.child_token(),
        ));
    }
    let solana = config
        .source
        .solana
        .enabled
        .then(|| Arc::new(source::solana::SolanaStatus::default()));
    if let Some(status) = &solana {
        background.spawn(source::solana::run(
            config.source.solana.clone(),
            config.kline.price_scale_decimals,
            ingest.clone(),
            store.clone(),
            status.clone(),
            shutdown.child_token(),
        ));
    }
    background.spawn(retention::run(
        store.clone(),
        config.storage.clone(),
        stats.clone(),
        shutdown.child_token(),
    ));
    let push_stats = Arc::new(PushStats::default());
    background.spawn(memory::run(
        push_stats.clone(),
        config.websocket.memory_trim_after_closes,
        shutdown.child_token(),
    ));
    background.close();

    let hub_stop = CancellationToken::new();
    let hub_settings = hub::HubSettings {
        queue_capacity: config.websocket.hub_queue_capacity,
        final_hold: Duration::from_millis(config.websocket.final_hold_ms),
    };
    let (hub, hub_threads) = hub::spawn(
        &feed,
        store.clone(),
        hub_settings,
        push_stats.clone(),
        hub_stop.clone(),
    );
    let (trade_hub, trade_hub_thread) = trade_hub::spawn(
        feed.trades().clone(),
        store.clone(),
        config.websocket.hub_queue_capacity,
        config.kline.broadcast_buffer_size,
        push_stats.clone(),
        hub_stop.clone(),
    );
    let grace = Duration::from_secs(config.server.shutdown_timeout_secs);
    let connections = TaskTracker::new();
    let metrics = http::metrics::registry(&stats, &push_stats, solana.as_ref());
    let history_reads = Arc::new(tokio::sync::Semaphore::new(
        config.websocket.max_concurrent_history_reads,
    ));
    let state = AppState(Arc::new(AppInner {
        config,
        store: store.clone(),
        ingest,
        stats,
        started_at: Instant::now(),
        push_stats,
        hub,
        trade_hub,
        shutdown: shutdown.clone(),
        connections: connections.clone(),
        history_reads,
        symbol_list: Default::default(),
        metrics,
        solana,
    }));
    let local_addr = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!(
        addr = %local_addr,
        data_dir = %store.path().display(),
        fd_limit,
        socket_budget,
        "kline-server listening"
    );

    let served = tokio::select! {
        _ = http::serve::serve(
            listener,
            http::app(state.clone()),
            http::serve::HeadLimits::from_config(&state.config.server),
            http::serve::SocketBudget {
                max: socket_budget,
                websockets: connections.clone(),
                stats: state.push_stats.clone(),
            },
            shutdown.clone(),
        ) => Ok(()),
        _ = deadline_after(&shutdown, grace) => {
            tracing::warn!("connections did not close within the shutdown timeout; closing anyway");
            Ok(())
        }
    };
    connections.close();
    if tokio::time::timeout(grace, connections.wait())
        .await
        .is_err()
    {
        tracing::warn!("WebSocket connections did not finish within the shutdown timeout");
    }
    hub_stop.cancel();
    let _ = tokio::task::spawn_blocking(move || {
        for thread in hub_threads {
            let _ = thread.join();
        }
        let _ = trade_hub_thread.join();
    })
    .await;
    tracing::info!("stopping sources");
    let _ = tokio::time::timeout(grace, background.wait()).await;
    drop(state);
    pipeline_stop.cancel();
    let pipeline = tokio::task::spawn_blocking(move || pipeline_thread.join())
        .await
        .ok()
        .and_then(Result::ok);
    match pipeline {
        Some(pipeline) => pipeline.store().flush()?,
        None => tracing::error!("the pipeline thread panicked"),
    }
    tracing::info!("store flushed; bye");
    served
}

/// Completes `grace` after `shutdown` is cancelled.
async fn deadline_after(shutdown: &CancellationToken, grace: Duration) {
    shutdown.cancelled().await;
    tokio::time::sleep(grace).await;
}
