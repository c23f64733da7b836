//! Helpers for the tests of this crate and of the crates above it (feature `test-support`): candles and
//! series written straight to a store, a store rewritten in the legacy layout, its raw event entries.

use kline_core::aggregator::{CandleKey, CandleState, OrderKey, PriceTick};
use kline_protocol::Interval;
use rocksdb::IteratorMode;

use crate::{CF_EVENTS, CF_META, CF_TRADES, CandleStore, keys, layout};
use kline_core::event::stored;

/// The mint of [`candle`]'s candles.
pub const MINT: [u8; 32] = [7; 32];

/// A candle of `MINT` at `time` (Unix s) with `updates` events, not final (with more than one update, its
/// write leaves the open-candle index alone: a million of them are written fast).
pub fn candle(time: i64, updates: u32) -> CandleState {
    let tick = PriceTick {
        mint: MINT,
        price: 1.0 + time as f64,
        key: OrderKey {
            ts_ms: time * 1000,
            ..OrderKey::default()
        },
        trade: kline_core::event::TradeAmounts::default(),
    };
    let mut state = CandleState::first(time, &tick);
    state.update_count = updates;
    state
}

/// Writes `times` as candles of (`mint`, `interval`), `per_batch` to a batch.
pub fn write_series(
    store: &CandleStore,
    mint: [u8; 32],
    interval: Interval,
    times: impl IntoIterator<Item = i64>,
    per_batch: usize,
) {
    let mut batch = store.batch();
    let mut in_batch = 0;
    for time in times {
        let key = CandleKey {
            mint,
            interval,
            time,
        };
        batch.put_candle(&key, &candle(time, 2));
        in_batch += 1;
        if in_batch == per_batch {
            store
                .write(std::mem::replace(&mut batch, store.batch()))
                .unwrap();
            in_batch = 0;
        }
    }
    store.write(batch).unwrap();
}

/// One raw entry of a column family: key and value, as RocksDB's iterator yields it.
pub type RawEntry = Result<(Box<[u8]>, Box<[u8]>), rocksdb::Error>;

/// The raw entries of the `events` family, in key order.
pub fn event_entries(store: &CandleStore) -> impl Iterator<Item = RawEntry> + '_ {
    store
        .db
        .iterator_cf(store.cf(CF_EVENTS), IteratorMode::Start)
}

/// Rewrites every event and trade entry of `store` as the versions before the signature-head layout
/// stored them (whole signatures in both keys, records without the signature) and forgets the layout mark.
pub fn write_as_legacy(store: &CandleStore) {
    let (events, trades) = (store.cf(CF_EVENTS), store.cf(CF_TRADES));
    let mut batch = store.batch();
    for item in store.db.iterator_cf(events, IteratorMode::Start) {
        let (key, value) = item.unwrap();
        let (head, index) = keys::split_event_key(&key).unwrap();
        let event = stored::decode(head, index, &value).unwrap();
        batch.batch.delete_cf(events, &key);
        let legacy = keys::legacy_event_key(&event.id());
        let record = kline_core::event::stored::test_support::encode_without_signature(&event);
        batch.batch.put_cf(events, legacy, record);
    }
    for item in store.db.iterator_cf(trades, IteratorMode::Start) {
        let (key, value) = item.unwrap();
        let event_key = keys::event_key_of_trade(&key).unwrap();
        let bytes = store.db.get_cf(events, &event_key).unwrap().unwrap();
        let (head, index) = keys::split_event_key(&event_key).unwrap();
        let event = stored::decode(head, index, &bytes).unwrap();
        let mint: [u8; 32] = key[..32].try_into().unwrap();
        batch.batch.delete_cf(trades, &key);
        let legacy = keys::legacy_trade_key(&mint, &event.trade_position());
        batch.batch.put_cf(trades, legacy, value);
    }
    batch.batch.delete_cf(store.cf(CF_META), layout::LAYOUT_KEY);
    store.write(batch).unwrap();
}
