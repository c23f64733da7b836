//! [`PushCore`]: the hub shards, the trade hub, the ticker hub and the memory trimmer, and the
//! [`PushContext`] the transports share. Roles `all` and `edge`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::serve::SocketBudget;
use crate::http::status::PushStatus;
use crate::{http, memory};
use kline_config::Config;
use kline_core::stats::PushStats;
use kline_pipeline::feed::CandleFeed;
use kline_push::PushContext;
use kline_push::context::{PushConfig, PushParts};
use kline_push::hub::{self, HubSettings};
use kline_push::readiness::Readiness;
use kline_push::symbols::SymbolList;
use kline_push::tickers::{self, TickerSettings};
use kline_push::trade_hub;

use kline_store::CandleStore;

/// The running push side.
pub struct PushCore {
    pub context: PushContext,
    hub_stop: CancellationToken,
    /// The hub shards' threads and the trade hub's.
    threads: Vec<JoinHandle<()>>,
    /// The memory trimmer.
    background: TaskTracker,
}

impl PushCore {
    /// The candle feed the hub reads: one inbox per hub shard (`websocket.hub_threads`, 0 = one per core).
    pub fn feed(config: &Config) -> CandleFeed {
        let shards = match config.websocket.hub_threads {
            0 => std::thread::available_parallelism().map_or(1, usize::from),
            n => n,
        };
        CandleFeed::new(shards, config.kline.broadcast_buffer_size)
    }

    /// Starts the hubs on `feed` (made by [`PushCore::feed`]); connections close when `shutdown` is
    /// cancelled, and new ones are taken only while `readiness` holds.
    pub fn start(
        config: &Config,
        store: &Arc<CandleStore>,
        feed: &CandleFeed,
        readiness: Readiness,
        shutdown: &CancellationToken,
    ) -> PushCore {
        let push_stats = Arc::new(PushStats::default());
        let background = TaskTracker::new();
        background.spawn(memory::run(
            push_stats.clone(),
            config.websocket.memory_trim_after_closes,
            shutdown.child_token(),
        ));
        background.close();
        let hub_stop = CancellationToken::new();
        let settings = HubSettings {
            queue_capacity: config.websocket.hub_queue_capacity,
            final_hold: Duration::from_millis(config.websocket.final_hold_ms),
            resync_page: config.websocket.hub_resync_page,
        };
        let (hub, mut threads) = hub::spawn(
            feed,
            store.clone(),
            settings,
            push_stats.clone(),
            hub_stop.clone(),
        );
        let (trade_hub, trade_thread) = trade_hub::spawn(
            feed.trades().clone(),
            store.clone(),
            config.websocket.hub_queue_capacity,
            config.kline.broadcast_buffer_size,
            push_stats.clone(),
            hub_stop.clone(),
        );
        threads.push(trade_thread);
        // The names first: the ticker hub names its mints from them when it loads.
        if let Err(err) = feed.names().reload(store) {
            tracing::error!(error = %err, "cannot read the token names; mints go unnamed");
        }
        let (ticker_hub, ticker_thread) = tickers::spawn(
            feed,
            store.clone(),
            &config.kline.intervals,
            TickerSettings {
                max_subscriptions: config.kline.max_ticker_subscriptions,
                queue_capacity: config.websocket.hub_queue_capacity,
            },
            push_stats.clone(),
            hub_stop.clone(),
        );
        threads.extend(ticker_thread);
        let context = PushContext::new(PushParts {
            config: PushConfig::from_config(config),
            store: store.clone(),
            hub,
            trade_hub,
            ticker_hub,
            names: feed.names().clone(),
            push_stats,
            history_reads: Semaphore::new(config.websocket.max_concurrent_history_reads),
            connections: TaskTracker::new(),
            shutdown: shutdown.clone(),
            readiness,
            symbols: SymbolList::new(
                store.clone(),
                Duration::from_millis(config.rest.symbols_refresh_ms),
                config.websocket.hello_max_symbols,
            ),
        });
        PushCore {
            context,
            hub_stop,
            threads,
            background,
        }
    }

    /// Adds `/ws` and the chart page to `router` (which must hold every other route by now) and serves
    /// Socket.IO on it when `socketio.enabled`.
    pub fn serve_on(&self, router: Router) -> Router {
        let router = router
            .merge(kline_ws::routes(self.context.clone()))
            .merge(http::chart::routes());
        if self.context.config.socketio.enabled {
            kline_socketio::attach(router, &self.context)
        } else {
            router
        }
    }

    /// The accept loop's socket budget: HTTP connections plus these WebSocket connections.
    pub fn socket_budget(&self, max: usize) -> SocketBudget {
        SocketBudget {
            max,
            websockets: self.context.connections.clone(),
            stats: self.context.push_stats.clone(),
        }
    }

    /// The push side as `/health` shows it.
    pub fn status(&self) -> PushStatus {
        PushStatus {
            stats: self.context.push_stats.clone(),
            max_connections: self.context.config.websocket.max_connections,
        }
    }

    /// Waits (at most `grace`) for the connections, which close once the shutdown token is cancelled,
    /// then stops the hubs and waits for their threads.
    pub async fn stop(self, grace: Duration) {
        super::wait_bounded(&self.context.connections, grace, "push connections").await;
        self.hub_stop.cancel();
        let threads = self.threads;
        let _ = tokio::task::spawn_blocking(move || {
            for thread in threads {
                let _ = thread.join();
            }
        })
        .await;
        super::wait_bounded(&self.background, grace, "memory trimmer").await;
    }
}
