//! Filling the trade index from events stored before it existed: once per store, when the pipeline
//! opens it (marked done in `meta` under [`TRADE_INDEX_KEY`]).
//!
//! Events stored by this version get their trade-index entry in the same batch as the event; this pass
//! adds the entries of older events, reading each stored event once and writing in batches of
//! [`BATCH`]. An event that no longer parses (which cannot happen for what the server stored) is logged
//! and skipped.

use kline_core::event::scaled_price;
use kline_store::{CandleStore, StoreError};

/// `meta` key set once every stored event is in the trade index.
pub const TRADE_INDEX_KEY: &str = "trades.indexed";
/// Trades written per RocksDB batch.
const BATCH: usize = 10_000;

/// Indexes every stored price event if the store has not been indexed yet. Returns how many trades it
/// added (0 when the store was already indexed).
pub fn index_stored_trades(store: &CandleStore, price_scale: u32) -> Result<usize, StoreError> {
    if store.meta(TRADE_INDEX_KEY)?.is_some() {
        return Ok(0);
    }
    let mut added = 0;
    let mut batch = store.batch();
    let mut pending = 0;
    let mut skipped = 0;
    store.for_each_event(|event| {
        let Ok(event) = event else {
            skipped += 1;
            return Ok(());
        };
        let Some(raw) = event.event.latest_price() else {
            return Ok(());
        };
        let Some(price) = scaled_price(raw, price_scale)
            .ok()
            .filter(|&price| event.to_trade(price).is_some())
        else {
            return Ok(());
        };
        batch.put_trade(
            &event.event.mint().to_bytes(),
            &event.trade_position(),
            price,
            event.meta.timestamp.unix_millis(),
        );
        pending += 1;
        added += 1;
        if pending == BATCH {
            store.write(std::mem::replace(&mut batch, store.batch()))?;
            pending = 0;
        }
        Ok(())
    })?;
    batch.put_meta(TRADE_INDEX_KEY, b"1");
    store.write(batch)?;
    if added > 0 || skipped > 0 {
        tracing::info!(
            trades = added,
            skipped,
            "indexed the trades of events stored before the trade index existed"
        );
    }
    Ok(added)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_core::simulated_market::SimulatedMarket;

    #[test]
    fn events_stored_without_index_entries_are_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut market = SimulatedMarket::new(4, 1);
        // Events as an older version stored them: in the events family only.
        let mut batch = store.batch();
        for i in 0..25 {
            let event = market.next_event(1_764_000_000_000 + i * 1000);
            batch.put_event(&event);
        }
        store.write(batch).unwrap();
        let mint = market.mints()[0].to_bytes();
        assert!(store.trades(&mint, None, 100).unwrap().trades.is_empty());

        assert_eq!(index_stored_trades(&store, 28).unwrap(), 25);
        let page = store.trades(&mint, None, 100).unwrap();
        assert_eq!(page.trades.len(), 25);
        assert!(
            page.trades.windows(2).all(|w| w[0].slot >= w[1].slot),
            "newest first"
        );
        assert_eq!(index_stored_trades(&store, 28).unwrap(), 0, "only once");
    }
}
