//! What the stream to the edges (the `kline-stream` crate) needs from the store: the writer's outbox (group
//! number → record, in the same write as the group), raw writes of replicated values on an edge, the newest
//! candle state per key (to apply only newer ones), and a consistent dump of the replicated column families
//! for snapshots.
//!
//! - [`record`]: a stream entry's content (the group's candles, trades, events, symbol stats) and its
//!   encoding.
//! - [`outbox`]: the writer side of the pipeline's write: the group's record and its sequence number go
//!   into the same RocksDB write as the group (no gap, no duplicate after a crash).
//! - [`epoch`]: the numbering's lineage: the writer's store carries an epoch every entry carries, so a
//!   wiped or restored store starts a new one and the edges load a snapshot instead of stalling.
//! - [`status`]: sequence numbers, staleness and readiness, read by `/ready`, `/health` and `/metrics`.
//!
//! Replicated column families: `candles`, `trades`, `events` (those behind trades), `symbols`. Not
//! replicated: `open_candles` (the writer's aggregator state; an edge keeps its own in step through
//! [`StoreBatch::put_candle`]), `meta` (each node's own cursors and numbers), `outbox`.

pub mod epoch;
pub mod outbox;
pub mod record;
pub mod status;

use rocksdb::{Direction, IteratorMode, ReadOptions};

pub use status::{NotReady, ReadinessPolicy, StreamStatus};

use super::{
    CF_CANDLES, CF_EVENTS, CF_META, CF_OUTBOX, CF_SYMBOLS, CF_TRADES, CandleStore, StoreBatch,
    StoreError, codec,
};

/// The writer's newest committed group number (`meta`).
pub const COMMITTED_SEQ: &str = "stream_committed_seq";
/// An edge's newest applied group number (`meta`).
pub const APPLIED_SEQ: &str = "stream_applied_seq";
/// The writer's stream epoch (`meta`, 8 bytes big-endian; [`epoch`]).
pub const EPOCH: &str = "stream_epoch";
/// The epoch of an edge's applied group number (`meta`).
pub const APPLIED_EPOCH: &str = "stream_applied_epoch";

/// A replicated column family, as a snapshot names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, borsh::BorshSerialize, borsh::BorshDeserialize)]
pub enum Replicated {
    Candles,
    Trades,
    Events,
    Symbols,
}

impl Replicated {
    /// In the order a snapshot sends them: events before the trade entries that point at them, so an
    /// edge loading a snapshot never holds a trade whose event it cannot read.
    pub const ALL: [Replicated; 4] = [
        Replicated::Candles,
        Replicated::Events,
        Replicated::Trades,
        Replicated::Symbols,
    ];

    fn cf_name(self) -> &'static str {
        match self {
            Replicated::Candles => CF_CANDLES,
            Replicated::Trades => CF_TRADES,
            Replicated::Events => CF_EVENTS,
            Replicated::Symbols => CF_SYMBOLS,
        }
    }
}

fn outbox_key(seq: u64) -> [u8; 8] {
    seq.to_be_bytes()
}

/// A group number stored in `meta` (8 bytes, big-endian); 0 when absent.
pub fn decode_seq(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl CandleStore {
    /// A group number kept in `meta` under `name` (0 when none was stored).
    pub fn seq(&self, name: &str) -> Result<u64, StoreError> {
        Ok(decode_seq(self.meta(name)?.as_deref()))
    }

    /// Outbox records from group `from` on, in order: `(seq, record)`; at most `max` of them, and no more
    /// once they add up to `max_bytes` (at least one, however large).
    pub fn outbox_from(
        &self,
        from: u64,
        max: usize,
        max_bytes: usize,
    ) -> Result<Vec<(u64, Vec<u8>)>, StoreError> {
        let start = outbox_key(from);
        let mut out = Vec::new();
        let mut bytes = 0;
        for item in self.db.iterator_cf(
            self.cf(CF_OUTBOX),
            IteratorMode::From(&start, Direction::Forward),
        ) {
            if out.len() >= max || (bytes >= max_bytes && !out.is_empty()) {
                break;
            }
            let (key, value) = item?;
            bytes += value.len();
            out.push((decode_seq(Some(&key)), value.into_vec()));
        }
        Ok(out)
    }

    /// The oldest group the outbox still holds.
    pub fn oldest_outbox_seq(&self) -> Result<Option<u64>, StoreError> {
        match self
            .db
            .iterator_cf(self.cf(CF_OUTBOX), IteratorMode::Start)
            .next()
        {
            Some(item) => Ok(Some(decode_seq(Some(&item?.0)))),
            None => Ok(None),
        }
    }

    /// For each candle key (`keys::candle_key`), the stored state's `(update_count, is_final)`.
    pub fn candle_versions(&self, keys: &[&[u8]]) -> Result<Vec<Option<(u32, bool)>>, StoreError> {
        let cf = self.cf(CF_CANDLES);
        self.db
            .batched_multi_get_cf(cf, keys, false)
            .into_iter()
            .map(|found| match found? {
                Some(bytes) => {
                    let state = codec::decode_candle(&bytes)?;
                    Ok(Some((state.update_count, state.is_final)))
                }
                None => Ok(None),
            })
            .collect()
    }

    /// Visits every entry of the replicated column families as of one point in time, and returns the group
    /// number that point is consistent with (the writer's committed or the edge's applied number); `None`
    /// when `start` or `visit` asked to stop (returned `false`). `start` is first told the epoch of that
    /// number; `visit` is then called in key order per family, families in [`Replicated::ALL`] order.
    pub fn dump_replicated(
        &self,
        start: impl FnOnce(u64) -> bool,
        mut visit: impl FnMut(Replicated, &[u8], &[u8]) -> bool,
    ) -> Result<Option<u64>, StoreError> {
        let snapshot = self.db.snapshot();
        // A writer's store has a committed number and an epoch, an edge's an applied number and its epoch.
        let meta = |name: &str| -> Result<u64, StoreError> {
            Ok(decode_seq(
                snapshot.get_cf(self.cf(CF_META), name)?.as_deref(),
            ))
        };
        let seq = meta(COMMITTED_SEQ)?.max(meta(APPLIED_SEQ)?);
        let epoch = match meta(EPOCH)? {
            0 => meta(APPLIED_EPOCH)?,
            epoch => epoch,
        };
        if !start(epoch) {
            return Ok(None);
        }
        for family in Replicated::ALL {
            let mut read = ReadOptions::default();
            read.set_snapshot(&snapshot);
            read.fill_cache(false);
            for item in
                self.db
                    .iterator_cf_opt(self.cf(family.cf_name()), read, IteratorMode::Start)
            {
                let (key, value) = item?;
                if !visit(family, &key, &value) {
                    return Ok(None);
                }
            }
        }
        Ok(Some(seq))
    }
}

impl StoreBatch<'_> {
    /// Writer: the group's stream record under its number, and the number as the newest committed.
    pub fn put_outbox(&mut self, seq: u64, record: &[u8]) {
        self.batch
            .put_cf(self.store.cf(CF_OUTBOX), outbox_key(seq), record);
        self.put_meta(COMMITTED_SEQ, &seq.to_be_bytes());
    }

    /// Writer: drops a group from the outbox (past its retention).
    pub fn delete_outbox(&mut self, seq: u64) {
        self.batch
            .delete_cf(self.store.cf(CF_OUTBOX), outbox_key(seq));
    }

    /// Edge: a value of a replicated family as the writer stored it (an event or trade of a writer still
    /// on the legacy key layout is stored in this one: [`super::layout`]). Candles go through
    /// [`StoreBatch::put_candle`] instead, which keeps the open-candle index in step (one put here is
    /// still counted in its series' count).
    pub fn put_replicated(&mut self, family: Replicated, key: &[u8], value: &[u8]) {
        let current = match family {
            Replicated::Events => super::layout::legacy_event(key, value),
            Replicated::Trades => super::layout::legacy_trade(key, value),
            Replicated::Candles | Replicated::Symbols => None,
        };
        let (key, value) = match &current {
            Some((key, value)) => (key.as_slice(), value.as_slice()),
            None => (key, value),
        };
        self.batch
            .put_cf(self.store.cf(family.cf_name()), key, value);
        match family {
            Replicated::Candles => {
                if let Ok(key) = key.try_into() {
                    self.candle_keys.push(key);
                }
            }
            Replicated::Symbols => self.changes_symbols = true,
            Replicated::Trades | Replicated::Events => {}
        }
    }

    /// Edge: a trade (under its `keys::trade_key`) and its event, as the writer stored them.
    pub fn put_replicated_trade(
        &mut self,
        trade_key: &[u8],
        trade_value: &[u8],
        event_key: &[u8],
        event_json: &str,
    ) {
        self.put_replicated(Replicated::Trades, trade_key, trade_value);
        // The stream carries the event as JSON; it is stored in binary as on the writer, under its key in
        // this layout (whichever the writer's). (JSON that does not parse, which a writer never sends, is
        // kept as it came: reads report it.)
        match kline_core::event::parse_stored(event_json) {
            Ok(event) => self.put_replicated(
                Replicated::Events,
                &super::keys::event_key(&event.id()),
                &kline_core::event::stored::encode(&event),
            ),
            Err(_) => self.put_replicated(Replicated::Events, event_key, event_json.as_bytes()),
        }
    }
}
