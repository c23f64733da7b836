//! Per-series candle counts: the `series_counts` family holds, per (mint, interval), how many candles the
//! `candles` family holds of it, so `GET /api/kline`'s `total` and Socket.IO's `total_count` are one point
//! read, not a scan of the series.
//!
//! How a count stays equal to its series' length:
//! 1. Every write goes through [`CandleStore::write`], which holds the store's write lock while it looks up
//!    which of the batch's candle keys are not stored yet and puts, **in the same `WriteBatch`**, the new
//!    count of each series they add to. A newer state of a stored candle adds nothing; a key written twice
//!    in one batch counts once.
//! 2. Retention's range delete ([`CandleStore::prune_series`]) counts the keys it removes and lowers the
//!    count in the same batch as the delete, chunk by chunk, under the same lock: no write can add a key to
//!    the range between the count and the delete.
//! 3. An edge writes candles (stream records, snapshot frames) through the same batches, so 1 covers it.
//! 4. A store written before this family existed has no counts: they are built once when it is opened
//!    ([`CandleStore::build_series_counts`]), one pass over the candle keys holding one series' count in
//!    memory at a time, logged; a marker in `meta` says it is done (an interrupted build starts over).
//!
//! Not replicated: each node counts the candles it holds.

use std::time::{Duration, Instant};

use kline_protocol::Interval;
use rocksdb::{IteratorMode, ReadOptions, Snapshot};

use super::keys::CANDLE_KEY_LEN;
use super::{CF_CANDLES, CandleStore, StoreBatch, StoreError};

pub(super) const CF_SERIES_COUNTS: &str = "series_counts";

/// `meta`: present once every series' count has been built (value: the layout version, 1).
const COUNTS_BUILT: &str = "series_counts_built";

/// A series' key in `series_counts`: the candle keys' prefix, mint (32) + interval index (1).
pub const SERIES_KEY_LEN: usize = 33;

/// Series whose counts one write of the build carries.
const BUILD_BATCH_SERIES: usize = 1024;
/// How often the build logs its progress.
const BUILD_PROGRESS_EVERY: Duration = Duration::from_secs(10);

/// The series a candle key belongs to.
fn series_of(candle_key: &[u8]) -> [u8; SERIES_KEY_LEN] {
    let mut out = [0; SERIES_KEY_LEN];
    out.copy_from_slice(&candle_key[..SERIES_KEY_LEN]);
    out
}

fn series_key(mint: &[u8; 32], interval: Interval) -> [u8; SERIES_KEY_LEN] {
    let mut out = [0; SERIES_KEY_LEN];
    out[..32].copy_from_slice(mint);
    out[32] = interval.index();
    out
}

/// A stored count (8 bytes, big-endian); 0 when absent or not 8 bytes.
fn decode_count(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

impl CandleStore {
    /// How many candles the series holds: one point read.
    pub fn series_count(&self, mint: &[u8; 32], interval: Interval) -> Result<u64, StoreError> {
        self.stored_count(&series_key(mint, interval), None)
    }

    /// The count of `series`, as of `snapshot` if given.
    pub(super) fn stored_count(
        &self,
        series: &[u8; SERIES_KEY_LEN],
        snapshot: Option<&Snapshot<'_>>,
    ) -> Result<u64, StoreError> {
        let cf = self.cf(CF_SERIES_COUNTS);
        let value = match snapshot {
            Some(snapshot) => snapshot.get_cf(cf, series)?,
            None => self.db.get_cf(cf, series)?,
        };
        Ok(decode_count(value.as_deref()))
    }

    /// The count of the series of `mint` and `interval` as of `snapshot`.
    pub(super) fn series_count_at(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        snapshot: &Snapshot<'_>,
    ) -> Result<u64, StoreError> {
        self.stored_count(&series_key(mint, interval), Some(snapshot))
    }

    /// Adds to `batch` the new count of every series its candle keys add to (rule 1 of the module).
    /// Called with the write lock held, right before `batch` is written.
    pub(super) fn count_new_candles(&self, batch: &mut StoreBatch<'_>) -> Result<(), StoreError> {
        let mut keys = std::mem::take(&mut batch.candle_keys);
        if keys.is_empty() {
            return Ok(());
        }
        keys.sort_unstable();
        keys.dedup();
        let found = self
            .db
            .batched_multi_get_cf(self.cf(CF_CANDLES), &keys, true);
        // Sorted keys: a series' keys are next to each other.
        let mut added: Vec<([u8; SERIES_KEY_LEN], u64)> = Vec::new();
        for (key, found) in keys.iter().zip(found) {
            if found?.is_some() {
                continue;
            }
            let series = series_of(key);
            match added.last_mut() {
                Some((last, n)) if *last == series => *n += 1,
                _ => added.push((series, 1)),
            }
        }
        for (series, n) in added {
            let count = self.stored_count(&series, None)? + n;
            batch.put_series_count(&series, count);
        }
        Ok(())
    }

    /// Builds every series' count from the candles, once per store (rule 4 of the module). Runs at open,
    /// before anything else writes.
    pub(super) fn build_series_counts(&self) -> Result<(), StoreError> {
        if self.meta(COUNTS_BUILT)?.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        tracing::info!(
            path = %self.path.display(),
            "store: counting the candles of every series once (a store from before per-series counts)"
        );
        let counts = self.cf(CF_SERIES_COUNTS);
        // Whatever an interrupted build left: every count is written again below.
        self.db
            .delete_range_cf(counts, &[][..], &[0xff; SERIES_KEY_LEN + 1][..])?;
        let mut read = ReadOptions::default();
        read.fill_cache(false);
        let mut batch = self.batch();
        let (mut series, mut candles) = (0usize, 0u64);
        let mut current: Option<([u8; SERIES_KEY_LEN], u64)> = None;
        let mut last_log = Instant::now();
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::Start)
        {
            let (key, _) = item?;
            if key.len() != CANDLE_KEY_LEN {
                continue;
            }
            candles += 1;
            let of = series_of(&key);
            match &mut current {
                Some((known, n)) if *known == of => *n += 1,
                _ => {
                    if let Some((done, n)) = current.replace((of, 1)) {
                        batch.put_series_count(&done, n);
                        series += 1;
                        if series % BUILD_BATCH_SERIES == 0 {
                            self.write_unlocked(std::mem::replace(&mut batch, self.batch()))?;
                        }
                    }
                }
            }
            if last_log.elapsed() >= BUILD_PROGRESS_EVERY {
                last_log = Instant::now();
                tracing::info!(series, candles, "store: counting series candles");
            }
        }
        if let Some((done, n)) = current {
            batch.put_series_count(&done, n);
            series += 1;
        }
        batch.put_meta(COUNTS_BUILT, &[1]);
        self.write_unlocked(batch)?;
        tracing::info!(
            series,
            candles,
            elapsed_ms = started.elapsed().as_millis() as u64,
            "store: series counts built"
        );
        Ok(())
    }

    /// Lowers the count of `series` by `removed` in `batch` (retention's range delete, rule 2).
    pub(super) fn uncount(
        &self,
        batch: &mut StoreBatch<'_>,
        series: &[u8; SERIES_KEY_LEN],
        removed: u64,
    ) -> Result<(), StoreError> {
        let count = self.stored_count(series, None)?.saturating_sub(removed);
        batch.put_series_count(series, count);
        Ok(())
    }

    /// Counts a series' candles the slow way (tests and tools: a full scan), to check the kept counts against.
    pub fn count_series_candles(
        &self,
        mint: &[u8; 32],
        interval: Interval,
    ) -> Result<u64, StoreError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(super::keys::series_key(mint, interval, i64::MIN).to_vec());
        read.set_iterate_upper_bound(super::keys::series_key(mint, interval, i64::MAX).to_vec());
        let mut count = 0;
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::Start)
        {
            item?;
            count += 1;
        }
        Ok(count)
    }
}

impl StoreBatch<'_> {
    fn put_series_count(&mut self, series: &[u8; SERIES_KEY_LEN], count: u64) {
        self.batch
            .put_cf(self.store.cf(CF_SERIES_COUNTS), series, count.to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests;
