//! The REST reads over the store, as one part: `GET /api/v1/klines`, `/api/v1/symbols`, `/api/v1/trades`
//! and the old server's `GET /api/kline`. Every role serves them (an edge from its replica).

use std::sync::Arc;

use axum::Router;
use axum::routing::get;

use super::{klines, legacy_kline, trades};
use crate::store::CandleStore;

/// What the read routes need: the store and the default history length.
#[derive(Clone)]
pub struct ReadSide {
    pub store: Arc<CandleStore>,
    /// `kline.history_data_limit`: candles answered when a request gives no `limit`.
    pub history_limit: u32,
}

/// The read routes, with their state applied.
pub fn routes(reads: ReadSide) -> Router {
    Router::new()
        .route("/api/v1/klines", get(klines::klines))
        .route("/api/v1/symbols", get(klines::symbols))
        .route("/api/v1/trades", get(trades::trades))
        .route("/api/kline", get(legacy_kline::legacy_kline))
        .with_state(reads)
}
