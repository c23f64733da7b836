//! The REST reads over the store, as one part: `GET /api/v1/klines`, `/api/v1/symbols`, `/api/v1/trades`
//! and the old server's `GET /api/kline`. Every role serves them (an edge from its replica).
//!
//! What bounds them (`[rest]`): each store read runs under a [`ReadPermits`] permit (at most
//! `rest.max_concurrent_reads` at once; beyond a bounded wait, 503), reads no more candles than it answers
//! (a series' length is its kept count), and the symbol list is a [`SymbolDirectory`] read on a bounded
//! schedule and answered in pages.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;

use super::read_permits::ReadPermits;
use super::{klines, legacy_kline, symbols, trades};
use kline_config::Config;
use kline_core::stats::StoreStats;
use kline_store::CandleStore;
use kline_store::symbol_directory::SymbolDirectory;

/// What the read routes need: the store, its read permits, the symbol list and the limits.
#[derive(Clone)]
pub struct ReadSide {
    pub store: Arc<CandleStore>,
    /// `kline.history_data_limit`: candles answered when a request gives no `limit`.
    pub history_limit: u32,
    pub permits: ReadPermits,
    pub symbols: Arc<SymbolDirectory>,
    /// `rest.symbols_default_limit` and `rest.symbols_max_limit`.
    pub symbols_limits: (usize, usize),
}

impl ReadSide {
    /// The read side of `store` as `config` bounds it; refusals are counted in `stats`.
    pub fn new(store: Arc<CandleStore>, config: &Config, stats: &StoreStats) -> ReadSide {
        let rest = &config.rest;
        ReadSide {
            permits: ReadPermits::new(
                rest.max_concurrent_reads,
                Duration::from_millis(rest.read_wait_ms),
                stats.rest_reads_refused.clone(),
            ),
            symbols: Arc::new(SymbolDirectory::new(
                store.clone(),
                Duration::from_millis(rest.symbols_refresh_ms),
                rest.symbols_max,
            )),
            symbols_limits: (rest.symbols_default_limit, rest.symbols_max_limit),
            history_limit: config.kline.history_data_limit,
            store,
        }
    }
}

/// The read routes, with their state applied.
pub fn routes(reads: ReadSide) -> Router {
    Router::new()
        .route("/api/v1/klines", get(klines::klines))
        .route("/api/v1/symbols", get(symbols::symbols))
        .route("/api/v1/trades", get(trades::trades))
        .route("/api/kline", get(legacy_kline::legacy_kline))
        .with_state(reads)
}

#[cfg(test)]
mod tests;
