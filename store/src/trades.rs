//! The `trades` family: each mint's trades in the chain's order, so "the latest N trades before X" is a
//! bounded reverse scan.
//!
//! An entry's key ([`keys::trade_key`]) holds the trade's position and identity (signature, event index),
//! so it also names the trade's stored event; its value ([`TradeValue`]) holds only what the event does not
//! give, the price (scaled when the trade was written), and the trade's time for retention. A read builds each trade from its event
//! ([`EventRecord::to_trade`](kline_core::event::EventRecord::to_trade)), fetched in one multi-get per page.
//! Why: writing the whole trade (a ~400-byte JSON per price event, serialized on the pipeline thread) took
//! half of the pipeline's time at full-speed ingest; a read of a page is rare beside a write per event.
//!
//! Entries written before (the whole protocol [`Trade`] as JSON) are read as they are: no migration.

use kline_protocol::{Trade, TradeId};
use rocksdb::{IteratorMode, ReadOptions};

use super::{CF_EVENTS, CF_TRADES, CandleStore, StoreBatch, StoreError, TradesPage, keys};

use kline_core::event::TradePosition;
use kline_core::event::stored;
use kline_core::event::{EventId, EventRecord};

/// The first byte of a value holding the price only (written by 0.x before retention existed); a JSON
/// value (an older entry still) starts with `{`.
const PRICE_ONLY: u8 = 1;
/// The first byte of this version's values: [`PRICE_AND_TIME`], the price (f64), then the trade's time
/// (Unix milliseconds, i64), little-endian. The time lets retention find a mint's expired trades without
/// reading their events.
const PRICE_AND_TIME: u8 = 2;
/// The length of a value this version writes.
pub const TRADE_VALUE_LEN: usize = 1 + 8 + 8;

/// What a trade-index entry holds besides its key.
#[derive(Debug, Clone, PartialEq)]
pub enum TradeValue {
    /// The trade's price (SOL per whole token) and, when written by this version, its time; the rest of
    /// the trade comes from its event.
    Price { price: f64, time_ms: Option<i64> },
    /// An entry written before [`PRICE_ONLY`] existed (or a stream record of such a writer): the whole
    /// trade.
    Trade(Box<Trade>),
}

impl TradeValue {
    pub fn encode(price: f64, time_ms: i64) -> [u8; TRADE_VALUE_LEN] {
        let mut out = [PRICE_AND_TIME; TRADE_VALUE_LEN];
        out[1..9].copy_from_slice(&price.to_le_bytes());
        out[9..].copy_from_slice(&time_ms.to_le_bytes());
        out
    }

    pub fn decode(bytes: &[u8]) -> Result<TradeValue, StoreError> {
        let corrupt_len = || super::CorruptValue {
            what: "trade",
            len: bytes.len(),
        };
        match bytes.split_first() {
            Some((&PRICE_ONLY, price)) => {
                let price = price.try_into().map_err(|_| corrupt_len())?;
                Ok(TradeValue::Price {
                    price: f64::from_le_bytes(price),
                    time_ms: None,
                })
            }
            Some((&PRICE_AND_TIME, rest)) => {
                let (price, time) = rest
                    .split_first_chunk::<8>()
                    .filter(|(_, time)| time.len() == 8)
                    .ok_or_else(corrupt_len)?;
                Ok(TradeValue::Price {
                    price: f64::from_le_bytes(*price),
                    time_ms: Some(i64::from_le_bytes(time.try_into().expect("8 bytes"))),
                })
            }
            _ => serde_json::from_slice(bytes)
                .map(|trade| TradeValue::Trade(Box::new(trade)))
                .map_err(|err| corrupt("trade", err.to_string())),
        }
    }

    /// The trade's time (Unix milliseconds), when the value holds it.
    pub fn time_ms(&self) -> Option<i64> {
        match self {
            TradeValue::Price { time_ms, .. } => *time_ms,
            TradeValue::Trade(trade) => Some(trade.time),
        }
    }

    /// The trade; `event`, the stored event the entry's key names, is needed only for a
    /// [`TradeValue::Price`].
    pub fn into_trade(self, event: Option<&EventRecord>) -> Result<Trade, StoreError> {
        let price = match self {
            TradeValue::Trade(trade) => return Ok(*trade),
            TradeValue::Price { price, .. } => price,
        };
        let event = event.ok_or_else(|| corrupt("trade", "its event is not stored".into()))?;
        event
            .to_trade(price)
            .ok_or_else(|| corrupt("trade", "its event is not a trade".into()))
    }
}

/// A RocksDB entry: key, value.
type Entry = (Box<[u8]>, Box<[u8]>);

fn corrupt(what: &'static str, reason: String) -> StoreError {
    StoreError::CorruptJson { what, reason }
}

impl CandleStore {
    /// The newest `limit` trades of `mint`, newest first, strictly before the trade `before` if given.
    /// Reads at most `limit + 1` entries, however many trades the mint has.
    pub fn trades(
        &self,
        mint: &[u8; 32],
        before: Option<&TradeId>,
        limit: usize,
    ) -> Result<TradesPage, StoreError> {
        self.trades_between(mint, None, before, limit)
    }

    /// The newest `limit` trades of `mint` strictly after the trade `after` and strictly before `before`
    /// (each bound if given), newest first; `has_more`: more of them exist before the oldest returned.
    pub fn trades_between(
        &self,
        mint: &[u8; 32],
        after: Option<&TradeId>,
        before: Option<&TradeId>,
        limit: usize,
    ) -> Result<TradesPage, StoreError> {
        let lower = match after {
            Some(id) => Some(self.trade_position(id)?),
            None => None,
        };
        let upper = match before {
            Some(id) => keys::trade_key(mint, &self.trade_position(id)?).to_vec(),
            None => mint_end(mint),
        };
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(lower_bound(mint, lower.as_ref()));
        read.set_iterate_upper_bound(upper);
        self.scan_trades(read, IteratorMode::End, limit)
    }

    /// Up to `limit` trades of `mint` from `from` on (inclusive), **oldest first**; `has_more`: more follow.
    /// The trade hub's catch-up read after its inbox dropped trades.
    pub fn trades_from(
        &self,
        mint: &[u8; 32],
        from: &TradePosition,
        limit: usize,
    ) -> Result<TradesPage, StoreError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(keys::trade_key(mint, from).to_vec());
        read.set_iterate_upper_bound(mint_end(mint));
        self.scan_trades(read, IteratorMode::Start, limit)
    }

    /// Up to `limit` trades within `read`'s bounds, scanning in `direction`; `has_more` if more are there.
    fn scan_trades(
        &self,
        read: ReadOptions,
        direction: IteratorMode,
        limit: usize,
    ) -> Result<TradesPage, StoreError> {
        let mut entries = Vec::with_capacity(limit.min(1024) + 1);
        for item in self.db.iterator_cf_opt(self.cf(CF_TRADES), read, direction) {
            if entries.len() > limit {
                break;
            }
            entries.push(item?);
        }
        let has_more = entries.len() > limit;
        entries.truncate(limit);
        Ok(TradesPage {
            trades: self.build_trades(&entries)?,
            has_more,
        })
    }

    /// The trades of index entries (key, value), reading the events of those that hold only a price in one
    /// multi-get. An entry whose event retention has already removed is left out.
    fn build_trades(&self, entries: &[Entry]) -> Result<Vec<Trade>, StoreError> {
        let values = entries
            .iter()
            .map(|(_, value)| TradeValue::decode(value))
            .collect::<Result<Vec<_>, _>>()?;
        let events_cf = self.cf(CF_EVENTS);
        let mut event_keys = Vec::with_capacity(entries.len());
        for ((key, _), value) in entries.iter().zip(&values) {
            if matches!(value, TradeValue::Price { .. }) {
                let event_key = keys::event_key_of_trade(key).ok_or(super::CorruptValue {
                    what: "trade key",
                    len: key.len(),
                })?;
                event_keys.push(event_key);
            }
        }
        let mut events = self
            .db
            .batched_multi_get_cf(events_cf, &event_keys, false)
            .into_iter()
            .zip(&event_keys);
        let mut trades = Vec::with_capacity(values.len());
        for value in values {
            let event = match value {
                TradeValue::Price { time_ms, .. } => {
                    let (found, key) = events.next().expect("one event per price entry");
                    match found? {
                        Some(bytes) => {
                            let (signature, index) =
                                keys::split_event_key(key).expect("an event key");
                            Some(stored::decode(signature, index, &bytes)?)
                        }
                        // Retention removes an expired trade's event lazily (at compaction) and the
                        // entry itself on its next pass: in between, the trade is simply gone.
                        None if time_ms.is_some() => continue,
                        None => None,
                    }
                }
                TradeValue::Trade(_) => None,
            };
            trades.push(value.into_trade(event.as_ref())?);
        }
        Ok(trades)
    }

    /// Where the trade `id` sits in its mint's index, from its stored event.
    pub fn trade_position(&self, id: &TradeId) -> Result<TradePosition, StoreError> {
        let event_id = EventId {
            signature: id.signature_bytes(),
            event_index: id.event_index(),
        };
        let event = self
            .event(&event_id)?
            .ok_or_else(|| StoreError::UnknownTrade(id.clone()))?;
        Ok(event.trade_position())
    }
}

impl StoreBatch<'_> {
    /// Adds a trade to its mint's index: its `price` and time, beside its event (put in the same batch).
    pub fn put_trade(
        &mut self,
        mint: &[u8; 32],
        position: &TradePosition,
        price: f64,
        time_ms: i64,
    ) {
        self.batch.put_cf(
            self.store.cf(CF_TRADES),
            keys::trade_key(mint, position),
            TradeValue::encode(price, time_ms),
        );
    }
}

/// The first trade key of `mint`, or (given a position) the first key strictly after that trade's: keys
/// all have one length, so the key with a 0 byte appended sorts right after it.
fn lower_bound(mint: &[u8; 32], after: Option<&TradePosition>) -> Vec<u8> {
    match after {
        Some(position) => {
            let mut key = keys::trade_key(mint, position).to_vec();
            key.push(0);
            key
        }
        None => keys::trade_key(mint, &FIRST_POSITION).to_vec(),
    }
}

/// A key after every trade key of `mint`: the next mint's first key.
pub(super) fn mint_end(mint: &[u8; 32]) -> Vec<u8> {
    match next_prefix(mint) {
        Some(next) => keys::trade_key(&next, &FIRST_POSITION).to_vec(),
        None => vec![0xFF; keys::LEGACY_TRADE_KEY_LEN + 1],
    }
}

/// The lowest trade position: every trade of a mint sorts at or after it.
pub(super) const FIRST_POSITION: TradePosition = TradePosition {
    slot: 0,
    tx_index: Some(0),
    event_index: 0,
    signature: [0; 64],
};

/// The smallest 32-byte key greater than every key starting with `mint`, if any.
fn next_prefix(mint: &[u8; 32]) -> Option<[u8; 32]> {
    let mut next = *mint;
    for byte in next.iter_mut().rev() {
        if *byte < 0xFF {
            *byte += 1;
            return Some(next);
        }
        *byte = 0;
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_core::event::scaled_price;
    use kline_core::simulated_market::SimulatedMarket;

    #[test]
    fn entries_of_every_form_read_as_the_trades_of_their_events_before_and_after_the_rewrite() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut market = SimulatedMarket::new(4, 1);
        let mint = market.mints()[0].to_bytes();
        let mut expected = Vec::new();
        let mut events_written = Vec::new();
        let mut batch = store.batch();
        for i in 0..9 {
            let event = market.next_event(1_764_000_000_000 + i * 1000);
            let price = scaled_price(event.event.latest_price().unwrap(), 28).unwrap();
            let trade = event.to_trade(price).unwrap();
            let position = event.trade_position();
            let legacy_key = keys::legacy_trade_key(&mint, &position);
            let legacy_event_key = keys::legacy_event_key(&event.id());
            let (events, trades) = (store.cf(CF_EVENTS), store.cf(CF_TRADES));
            match i % 3 {
                0 => {
                    // As the versions before price-only values wrote it: the whole trade, the event as
                    // JSON, both under whole-signature keys.
                    let json = serde_json::to_vec(&trade).unwrap();
                    batch.batch.put_cf(trades, legacy_key, json);
                    batch
                        .batch
                        .put_cf(events, legacy_event_key, event.to_json());
                }
                1 => {
                    // As the versions before retention wrote it: the price only; the event in binary
                    // without its signature (its key held it).
                    let mut value = vec![PRICE_ONLY];
                    value.extend_from_slice(&price.to_le_bytes());
                    batch.batch.put_cf(trades, legacy_key, value);
                    let record = stored::test_support::encode_without_signature(&event);
                    batch.batch.put_cf(events, legacy_event_key, record);
                }
                _ => {
                    batch.put_trade(&mint, &position, price, event.meta.timestamp.unix_millis());
                    batch.put_event(&event);
                }
            }
            expected.push(trade);
            events_written.push(event);
        }
        // As an older version's store: without the layout's mark.
        batch.batch.delete_cf(
            store.cf(super::super::CF_META),
            super::super::layout::LAYOUT_KEY,
        );
        store.write(batch).unwrap();
        expected.sort_by_key(|trade| TradePosition::of_trade(trade).order());
        expected.reverse();
        let ids: Vec<_> = events_written.iter().map(EventRecord::id).collect();
        let read_back = |store: &CandleStore| {
            let page = store.trades(&mint, None, 100).unwrap();
            assert_eq!(page.trades, expected);
            let page = store.trades(&mint, Some(&expected[1].id), 2).unwrap();
            assert_eq!(page.trades, expected[2..4]);
            assert!(page.has_more);
            for event in &events_written {
                assert_eq!(store.event(&event.id()).unwrap().as_ref(), Some(event));
            }
        };
        // Legacy entries as they are (an edge loading an older writer's snapshot meets them so).
        read_back(&store);
        drop(store);

        // Reopened: rewritten into this layout, every legacy key gone, read the same.
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        read_back(&store);
        assert_eq!(store.events_exist(&ids).unwrap(), vec![true; 9]);
        assert_eq!(store.key_lengths(CF_EVENTS), [keys::EVENT_KEY_LEN; 9]);
        assert_eq!(store.key_lengths(CF_TRADES), [keys::TRADE_KEY_LEN; 9]);
        assert_eq!(store.upgrade_layout().unwrap(), Default::default(), "once");
    }

    #[test]
    fn a_price_only_entry_without_its_event_or_a_short_one_is_corrupt() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let position = TradePosition {
            slot: 1,
            tx_index: Some(0),
            event_index: 0,
            signature: [3; 64],
        };
        let mut batch = store.batch();
        let key = keys::trade_key(&[1; 32], &position);
        let mut value = vec![PRICE_ONLY];
        value.extend_from_slice(&2.5f64.to_le_bytes());
        batch.batch.put_cf(store.cf(CF_TRADES), key, value);
        store.write(batch).unwrap();
        let err = store.trades(&[1; 32], None, 10).unwrap_err();
        assert!(err.to_string().contains("its event is not stored"), "{err}");
        assert!(TradeValue::decode(&[PRICE_ONLY, 0, 0]).is_err());
        assert!(TradeValue::decode(&[PRICE_AND_TIME, 0, 0, 0, 0, 0, 0, 0, 0, 1]).is_err());
        assert_eq!(
            TradeValue::decode(&TradeValue::encode(2.5, 7)).unwrap(),
            TradeValue::Price {
                price: 2.5,
                time_ms: Some(7)
            }
        );
    }

    #[test]
    fn retention_dates_an_entry_written_without_its_time_by_its_event() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut market = SimulatedMarket::new(4, 1);
        let mint = market.mints()[0].to_bytes();
        let mut batch = store.batch();
        for time_ms in [1_000, 5_000] {
            // As the versions before retention wrote it: the price only.
            let event = market.next_event(time_ms);
            let mut value = vec![PRICE_ONLY];
            value.extend_from_slice(&1.5f64.to_le_bytes());
            let key = keys::trade_key(&mint, &event.trade_position());
            batch.batch.put_cf(store.cf(CF_TRADES), key, value);
            batch.put_event(&event);
        }
        store.write(batch).unwrap();
        assert_eq!(store.prune_trades(&mint, 3_000).unwrap(), 1, "the old one");
        let page = store.trades(&mint, None, 10).unwrap();
        assert_eq!(page.trades.len(), 1);
        assert_eq!(page.trades[0].time, 5_000, "the recent one is kept");
    }

    #[test]
    fn a_dated_entry_whose_event_expired_is_left_out() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let mut market = SimulatedMarket::new(4, 1);
        let mint = market.mints()[0].to_bytes();
        let mut batch = store.batch();
        let (kept, expired) = (market.next_event(2_000), market.next_event(1_000));
        for event in [&kept, &expired] {
            let price = scaled_price(event.event.latest_price().unwrap(), 28).unwrap();
            let time_ms = event.meta.timestamp.unix_millis();
            batch.put_trade(&mint, &event.trade_position(), price, time_ms);
        }
        batch.put_event(&kept);
        store.write(batch).unwrap();
        let page = store.trades(&mint, None, 10).unwrap();
        assert_eq!(page.trades.len(), 1);
        assert_eq!(page.trades[0].signature, kept.meta.signature.as_str());
    }
}
