//! [`PushContext`]: what the push transports (`/ws` and Socket.IO) need and nothing else: the hubs, the
//! store for snapshots, the limits, the connection tracker and the shutdown signal. Cheap to clone (one per
//! connection task).

use std::ops::Deref;
use std::sync::Arc;

use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::hub::Hub;
use super::symbols::SymbolList;
use super::tickers::TickerHub;
use super::trade_hub::TradeHub;
use crate::readiness::Readiness;
use kline_config::{Config, CorsOrigins, KlineConfig, SocketIoConfig, WebSocketConfig};
use kline_core::stats::PushStats;
use kline_store::CandleStore;

/// The configuration sections the push transports read.
#[derive(Debug, Clone)]
pub struct PushConfig {
    pub websocket: WebSocketConfig,
    pub kline: KlineConfig,
    pub socketio: SocketIoConfig,
    /// `server.cors_allowed_origins`: also the Origin allow-list of `/ws`.
    pub cors_allowed_origins: CorsOrigins,
}

impl PushConfig {
    pub fn from_config(config: &Config) -> PushConfig {
        PushConfig {
            websocket: config.websocket.clone(),
            kline: config.kline.clone(),
            socketio: config.socketio.clone(),
            cors_allowed_origins: config.server.cors_allowed_origins.clone(),
        }
    }
}

/// The push side's shared parts, behind one `Arc`.
#[derive(Clone)]
pub struct PushContext(Arc<PushParts>);

pub struct PushParts {
    pub config: PushConfig,
    /// Read for subscription snapshots and history requests.
    pub store: Arc<CandleStore>,
    pub hub: Hub,
    /// Trade subscriptions and their delivery.
    pub trade_hub: TradeHub,
    /// The ticker stream's subscribers and its rounds.
    pub ticker_hub: TickerHub,
    /// Token names, for `connection_success`.
    pub names: Arc<kline_pipeline::names::TokenNames>,
    pub push_stats: Arc<PushStats>,
    /// Permits for history reads over all connections (`websocket.max_concurrent_history_reads`).
    pub history_reads: Semaphore,
    /// Every connection task (WebSocket and Socket.IO), so shutdown can wait for them.
    pub connections: TaskTracker,
    /// Cancelled when the server shuts down: connections close (WebSocket with 1001).
    pub shutdown: CancellationToken,
    /// Whether new connections are taken (an edge whose replica lags refuses them with 503).
    pub readiness: Readiness,
    pub symbols: SymbolList,
}

impl PushContext {
    pub fn new(parts: PushParts) -> PushContext {
        PushContext(Arc::new(parts))
    }

    /// Known mints, most recently updated first, at most `websocket.hello_max_symbols` (cached: every
    /// connection asks).
    pub async fn symbol_list(&self) -> Vec<kline_protocol::Symbol> {
        self.symbols.get().await
    }
}

impl Deref for PushContext {
    type Target = PushParts;

    fn deref(&self) -> &PushParts {
        &self.0
    }
}
