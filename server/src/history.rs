//! The history API shared by the WebSocket service and the REST routes: protocol-level queries answered
//! from the store as `history_data` payloads.

use kline_protocol::{HistoryData, Interval, MAX_HISTORY_LIMIT, SubscriptionId, Symbol};

use crate::store::{CandleStore, HistoryQuery, StoreError};

/// A validated history request (the protocol's `history`, or a subscription's snapshot).
#[derive(Debug, Clone)]
pub struct HistoryRequest {
    pub symbol: Symbol,
    pub interval: Interval,
    pub subscription_id: Option<SubscriptionId>,
    /// Inclusive.
    pub from: Option<i64>,
    /// Exclusive.
    pub to: Option<i64>,
    /// 1..=1000 (clamped).
    pub limit: u32,
}

/// The newest `limit` candles in `[from, to)`, ascending, with `has_more`.
pub fn history_data(
    store: &CandleStore,
    request: HistoryRequest,
) -> Result<HistoryData, StoreError> {
    let query = HistoryQuery {
        from: request.from,
        to: request.to,
        limit: request.limit.clamp(1, MAX_HISTORY_LIMIT) as usize,
    };
    let page = store.history(&request.symbol.to_bytes(), request.interval, query)?;
    let candles = page.candles.iter().map(|state| state.to_candle()).collect();
    Ok(HistoryData::new(
        request.symbol,
        request.interval,
        request.subscription_id,
        candles,
        page.has_more,
    ))
}
