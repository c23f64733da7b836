//! The history API shared by the WebSocket service and the REST routes: protocol-level queries answered
//! from the store as `history_data` payloads.

use kline_protocol::{HistoryData, Interval, MAX_HISTORY_LIMIT, SubscriptionId, Symbol};

use crate::{CandleStore, HistoryQuery, StoreError};

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

/// Where a resume's history starts (a `subscribe` with `from` = the `time` of the newest candle the client
/// holds): `from` moved back by the finality window — one interval plus `kline.finality_grace_ms` — so it
/// also carries every older candle the client may hold unfinished. Such a candle can still change after the
/// client's newest one began (an event a little late, then its final) while the client was away; one that
/// was already final when the client last heard from the server is older than the window. Seconds.
pub fn resume_from(from: i64, interval: Interval, finality_grace_ms: u64) -> i64 {
    let window_ms = interval.duration_secs() * 1000 + finality_grace_ms as i64;
    from.saturating_sub((window_ms + 999) / 1000)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_goes_back_one_interval_and_the_grace() {
        assert_eq!(resume_from(1_000, Interval::S1, 2_000), 997);
        assert_eq!(resume_from(1_000, Interval::S1, 2_500), 996);
        assert_eq!(resume_from(1_000, Interval::S1, 0), 999);
        assert_eq!(resume_from(100_000, Interval::D1, 2_000), 100_000 - 86_402);
        assert_eq!(resume_from(i64::MIN, Interval::M1, 2_000), i64::MIN);
    }
}
