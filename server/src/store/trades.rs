//! The `trades` family: each mint's trades in the chain's order, so "the latest N trades before X" is a
//! bounded reverse scan.

use kline_protocol::{Trade, TradeId};
use rocksdb::{IteratorMode, ReadOptions};

use super::{CF_TRADES, CandleStore, StoreBatch, StoreError, TradePosition, TradesPage, keys};
use crate::event::EventId;

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
        let mut trades = Vec::with_capacity(limit.min(1024) + 1);
        for item in self.db.iterator_cf_opt(self.cf(CF_TRADES), read, direction) {
            if trades.len() > limit {
                break;
            }
            let (_, value) = item?;
            trades.push(decode_trade(&value)?);
        }
        let has_more = trades.len() > limit;
        trades.truncate(limit);
        Ok(TradesPage { trades, has_more })
    }

    /// Where the trade `id` sits in its mint's index, from its stored event.
    pub fn trade_position(&self, id: &TradeId) -> Result<TradePosition, StoreError> {
        let event_id = EventId {
            signature: id.signature_bytes(),
            event_index: id.event_index(),
        };
        let json = self
            .event_json(&event_id)?
            .ok_or_else(|| StoreError::UnknownTrade(id.clone()))?;
        #[derive(serde::Deserialize)]
        struct Position {
            slot: u64,
            tx_index: Option<u32>,
        }
        let position: Position =
            serde_json::from_str(&json).map_err(|err| StoreError::CorruptJson {
                what: "event",
                reason: err.to_string(),
            })?;
        Ok(TradePosition {
            slot: position.slot,
            tx_index: position.tx_index,
            event_index: id.event_index(),
            signature: id.signature_bytes(),
        })
    }
}

impl StoreBatch<'_> {
    /// Adds a trade to its mint's index (`json`: the protocol [`Trade`]).
    pub fn put_trade(&mut self, mint: &[u8; 32], position: &TradePosition, json: &str) {
        self.batch.put_cf(
            self.store.cf(CF_TRADES),
            keys::trade_key(mint, position),
            json,
        );
    }
}

fn decode_trade(value: &[u8]) -> Result<Trade, StoreError> {
    serde_json::from_slice::<Trade>(value).map_err(|err| StoreError::CorruptJson {
        what: "trade",
        reason: err.to_string(),
    })
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
fn mint_end(mint: &[u8; 32]) -> Vec<u8> {
    match next_prefix(mint) {
        Some(next) => keys::trade_key(&next, &FIRST_POSITION).to_vec(),
        None => vec![0xFF; keys::TRADE_KEY_LEN + 1],
    }
}

/// The lowest trade position: every trade of a mint sorts at or after it.
const FIRST_POSITION: TradePosition = TradePosition {
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
