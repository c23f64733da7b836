//! What the store does for retention: drop records past their window so that the disk really shrinks, and
//! say how many bytes each family holds.
//!
//! - `trades` and `candles` are sorted by mint then time, so what expired is a prefix of each series: one
//!   range delete each ([`CandleStore::prune_trades`], [`CandleStore::prune_series`]), after which reads no
//!   longer see it. A series' candles go in chunks, each counted and deleted in one batch with the lowered
//!   series count, under the store's write lock (`series_counts`).
//! - `events` are keyed by signature head (random order), so no range holds only old ones: a compaction filter
//!   drops every event older than the cutoff the retention task last set ([`CandleStore::set_event_cutoff`];
//!   a token's `TokenCreated` event is kept: it names the token). Until its file is compacted an expired
//!   event can still be read; the trades that point at it are already gone.
//! - Neither a range delete nor a cutoff frees space until compaction rewrites the files concerned, which
//!   RocksDB alone might not do for days; so each pass also compacts one slice of every retained family
//!   ([`CandleStore::compact_slice`]), and a sweep over all slices rewrites each family once.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};

use kline_protocol::Interval;
use rocksdb::compaction_filter::Decision;
use rocksdb::{Direction, IteratorMode, Options, ReadOptions};

use super::{CF_CANDLES, CF_EVENTS, CF_TRADES, COLUMN_FAMILIES, CandleStore, StoreError, keys};
use crate::TradeValue;
use kline_core::event::stored;

/// Families a retention pass compacts slice by slice.
pub const SWEPT_FAMILIES: [&str; 3] = [CF_EVENTS, CF_TRADES, CF_CANDLES];

/// Installs on `options` (the `events` family's) the filter that drops events older than `cutoff`
/// (Unix milliseconds; `i64::MIN` until the retention task sets one).
pub(super) fn filter_expired_events(options: &mut Options, cutoff: Arc<AtomicI64>) {
    options.set_compaction_filter(
        "kline-event-retention",
        move |_level, _key, value: &[u8]| {
            let cutoff = cutoff.load(Ordering::Relaxed);
            match stored::time_ms(value) {
                Some(time) if time < cutoff && !stored::is_token_created(value) => Decision::Remove,
                _ => Decision::Keep,
            }
        },
    );
}

/// Candles one batch of a series' range delete removes (and counts first, holding the write lock: a
/// bounded pause for the writer, however much expired since the last pass).
const PRUNE_CHUNK: usize = 4096;

/// Bytes a family holds on disk (table files) and in memory (memtables).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FamilyBytes {
    pub family: &'static str,
    pub on_disk: u64,
    pub in_memory: u64,
}

impl CandleStore {
    /// From now on, compactions drop events older than `cutoff_ms` (`None`: keep every event).
    pub fn set_event_cutoff(&self, cutoff_ms: Option<i64>) {
        self.event_cutoff
            .store(cutoff_ms.unwrap_or(i64::MIN), Ordering::Relaxed);
    }

    /// Whether a stored event (its bytes) is past the event retention (kept only until compaction).
    pub fn event_expired(&self, value: &[u8]) -> bool {
        let cutoff = self.event_cutoff.load(Ordering::Relaxed);
        stored::time_ms(value).is_some_and(|time| time < cutoff) && !stored::is_token_created(value)
    }

    /// Deletes every candle of the series older than `before_time`, lowering its count by as many.
    /// Returns whether anything was in range.
    pub fn prune_series(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        before_time: i64,
    ) -> Result<bool, StoreError> {
        let start = keys::series_key(mint, interval, i64::MIN);
        let end = keys::series_key(mint, interval, before_time);
        let mut any = false;
        loop {
            let _serial = self.lock_writes();
            let mut read = ReadOptions::default();
            read.set_iterate_upper_bound(end.to_vec());
            read.fill_cache(false);
            let mut keys = self.db.raw_iterator_cf_opt(self.cf(CF_CANDLES), read);
            keys.seek(start);
            let mut chunk = Vec::new();
            while let Some(key) = keys.key().filter(|_| chunk.len() < PRUNE_CHUNK) {
                chunk.push(key.to_vec());
                keys.next();
            }
            keys.status()?;
            // Look before deleting, so passes over already-pruned series add no range tombstones.
            if chunk.is_empty() {
                return Ok(any);
            }
            let chunk_end = match keys.key() {
                Some(next) => next.to_vec(),
                None => end.to_vec(),
            };
            let last_chunk = chunk_end.as_slice() == end.as_slice();
            drop(keys);
            let mut batch = self.batch();
            batch.batch.delete_range_cf(
                self.cf(CF_CANDLES),
                start.as_slice(),
                chunk_end.as_slice(),
            );
            let removed = CandleStore::buckets_of(chunk.iter().map(Vec::as_slice));
            self.uncount(&mut batch, &removed)?;
            self.write_unlocked(batch)?;
            any = true;
            if last_chunk {
                return Ok(true);
            }
        }
    }

    /// Deletes every trade of `mint` older than `before_ms` (one range delete). Returns how many it deleted.
    pub fn prune_trades(&self, mint: &[u8; 32], before_ms: i64) -> Result<usize, StoreError> {
        let start = keys::trade_key(mint, &super::trades::FIRST_POSITION).to_vec();
        let mut read = ReadOptions::default();
        read.set_iterate_upper_bound(super::trades::mint_end(mint));
        let mut expired = 0;
        let mut end = None;
        for item in self.db.iterator_cf_opt(
            self.cf(CF_TRADES),
            read,
            IteratorMode::From(&start, Direction::Forward),
        ) {
            let (key, value) = item?;
            let time = match TradeValue::decode(&value)?.time_ms() {
                Some(time) => Some(time),
                // Written before values held the time: its event's (gone: expired with it).
                None => self.trade_event_time(&key)?,
            };
            match time {
                Some(time) if time >= before_ms => {
                    end = Some(key);
                    break;
                }
                _ => expired += 1,
            }
        }
        let Some(end) = end else {
            // Every trade of the mint is older: delete up to the mint's end (nothing newer is there).
            if expired > 0 {
                self.db.delete_range_cf(
                    self.cf(CF_TRADES),
                    start,
                    super::trades::mint_end(mint),
                )?;
            }
            return Ok(expired);
        };
        if expired > 0 {
            self.db
                .delete_range_cf(self.cf(CF_TRADES), start, end.to_vec())?;
        }
        Ok(expired)
    }

    /// The time of the event a trade key names, if it is stored.
    fn trade_event_time(&self, trade_key: &[u8]) -> Result<Option<i64>, StoreError> {
        let Some(event_key) = keys::event_key_of_trade(trade_key) else {
            return Ok(None);
        };
        let event = self.db.get_pinned_cf(self.cf(CF_EVENTS), event_key)?;
        Ok(event.and_then(|bytes| stored::time_ms(&bytes)))
    }

    /// Compacts slice `slice` of `slices` of `family`'s keys (split by their first byte), so that what range
    /// deletes and the event filter removed leaves the disk.
    pub fn compact_slice(
        &self,
        family: &str,
        slice: usize,
        slices: usize,
    ) -> Result<(), StoreError> {
        let slices = slices.clamp(1, 256);
        let slice = slice % slices;
        let from = (slice > 0).then(|| vec![(slice * 256 / slices) as u8]);
        let to = (slice + 1 < slices).then(|| vec![((slice + 1) * 256 / slices) as u8]);
        self.db.compact_range_cf(self.cf(family), from, to);
        Ok(())
    }

    /// Compacts every family whole (tests and measurements: the on-disk size after compaction).
    pub fn compact_all(&self) -> Result<(), StoreError> {
        self.flush()?;
        for name in COLUMN_FAMILIES {
            self.db
                .compact_range_cf(self.cf(name), None::<&[u8]>, None::<&[u8]>);
        }
        Ok(())
    }

    /// Each family's size.
    pub fn family_bytes(&self) -> Result<Vec<FamilyBytes>, StoreError> {
        COLUMN_FAMILIES
            .iter()
            .map(|&family| {
                let cf = self.cf(family);
                let property = |name: &str| -> Result<u64, StoreError> {
                    Ok(self.db.property_int_value_cf(cf, name)?.unwrap_or(0))
                };
                Ok(FamilyBytes {
                    family,
                    on_disk: property("rocksdb.total-sst-files-size")?,
                    in_memory: property("rocksdb.cur-size-all-mem-tables")?,
                })
            })
            .collect()
    }
}
