//! Per-series candle counts: the `series_counts` family holds, per (mint, interval), how many candles the
//! `candles` family holds of it, so `GET /api/kline`'s `total` and Socket.IO's `total_count` are one point
//! read, not a scan of the series; and the same per *bucket* of [`BUCKET_SLOTS`] candle times, so a page
//! deep in a series ([`CandleStore::rank_start`]) is found by summing bucket counts, then stepping over at
//! most one bucket's candles, instead of stepping over every candle before it.
//!
//! How the counts stay equal to what `candles` holds:
//! 1. Every write goes through [`CandleStore::write`], which holds the store's write lock while it looks up
//!    which of the batch's candle keys are not stored yet and puts, **in the same `WriteBatch`**, the new
//!    counts of the series and buckets they add to. A newer state of a stored candle adds nothing; a key
//!    written twice in one batch counts once.
//! 2. Retention's range delete ([`CandleStore::prune_series`]) counts the keys it removes and lowers the
//!    counts in the same batch as the delete, chunk by chunk, under the same lock: no write can add a key
//!    to the range between the count and the delete. An emptied bucket's entry is deleted.
//! 3. An edge writes candles (stream records, snapshot frames) through the same batches, so 1 covers it.
//! 4. A store written before this family existed has no counts: they are built once when it is opened
//!    ([`CandleStore::build_series_counts`]), one pass over the candle keys holding one series' and one
//!    bucket's count in memory at a time, logged; a marker in `meta` says it is done (an interrupted build
//!    starts over).
//!
//! Keys: a series' total under its 33-byte prefix of the candle keys (mint + interval index); a bucket's
//! count under that prefix + the bucket's number (8 bytes, big-endian, sign bit flipped, as candle times):
//! a series' buckets are one sorted range after its total. Not replicated: each node counts what it holds.

use std::time::{Duration, Instant};

use kline_protocol::Interval;
use rocksdb::{IteratorMode, ReadOptions, Snapshot};

use super::keys::{self, CANDLE_KEY_LEN};
use super::{CF_CANDLES, CandleStore, StoreBatch, StoreError};

pub(super) const CF_SERIES_COUNTS: &str = "series_counts";

/// `meta`: present once every count has been built (value: the layout version, 1).
const COUNTS_BUILT: &str = "series_counts_built";

/// A series' key in `series_counts`: the candle keys' prefix, mint (32) + interval index (1).
pub const SERIES_KEY_LEN: usize = 33;
/// A bucket's key: the series' key + the bucket number (8).
const BUCKET_KEY_LEN: usize = SERIES_KEY_LEN + 8;

/// Candle times per bucket (a bucket spans this many intervals): at most this many candles of a series
/// are stepped over to reach any rank in it, and a series spans one bucket per this many intervals
/// (a year of `s1` is ~7,700 buckets).
pub const BUCKET_SLOTS: i64 = 4096;

/// Count entries one write of the build carries.
const BUILD_BATCH_ENTRIES: usize = 4096;
/// How often the build logs its progress.
const BUILD_PROGRESS_EVERY: Duration = Duration::from_secs(10);

type SeriesKey = [u8; SERIES_KEY_LEN];
type BucketKey = [u8; BUCKET_KEY_LEN];

fn series_key(mint: &[u8; 32], interval: Interval) -> SeriesKey {
    let mut out = [0; SERIES_KEY_LEN];
    out[..32].copy_from_slice(mint);
    out[32] = interval.index();
    out
}

/// The series a candle or bucket key belongs to.
fn series_of(key: &[u8]) -> SeriesKey {
    let mut out = [0; SERIES_KEY_LEN];
    out.copy_from_slice(&key[..SERIES_KEY_LEN]);
    out
}

/// Seconds one bucket of the interval spans.
fn bucket_width(interval: Interval) -> i64 {
    interval.duration_secs().saturating_mul(BUCKET_SLOTS)
}

fn bucket_key(series: &SeriesKey, bucket: i64) -> BucketKey {
    let mut out = [0; BUCKET_KEY_LEN];
    out[..SERIES_KEY_LEN].copy_from_slice(series);
    out[SERIES_KEY_LEN..].copy_from_slice(&((bucket as u64) ^ (1 << 63)).to_be_bytes());
    out
}

fn bucket_number(key: &[u8]) -> Option<i64> {
    let raw = u64::from_be_bytes(key.get(SERIES_KEY_LEN..)?.try_into().ok()?);
    Some((raw ^ (1 << 63)) as i64)
}

/// The bucket a candle key counts in (`None` for a key that is not a candle key).
fn bucket_of_candle(candle_key: &[u8]) -> Option<BucketKey> {
    let candle = keys::decode_candle_key(candle_key)?;
    let bucket = candle.time.div_euclid(bucket_width(candle.interval));
    Some(bucket_key(&series_of(candle_key), bucket))
}

/// A stored count (8 bytes, big-endian); 0 when absent or not 8 bytes.
fn decode_count(value: Option<&[u8]>) -> u64 {
    value
        .and_then(|bytes| bytes.try_into().ok())
        .map_or(0, u64::from_be_bytes)
}

/// Sums the weights of equal keys next to each other (sorted input gives one entry per key).
fn tally<K: Eq>(items: impl IntoIterator<Item = (K, u64)>) -> Vec<(K, u64)> {
    let mut out: Vec<(K, u64)> = Vec::new();
    for (key, n) in items {
        match out.last_mut() {
            Some((last, sum)) if *last == key => *sum += n,
            _ => out.push((key, n)),
        }
    }
    out
}

impl CandleStore {
    /// How many candles the series holds: one point read.
    pub fn series_count(&self, mint: &[u8; 32], interval: Interval) -> Result<u64, StoreError> {
        self.stored_count(&series_key(mint, interval), None)
    }

    /// The count under `key` (a series' or a bucket's), as of `snapshot` if given.
    fn stored_count(&self, key: &[u8], snapshot: Option<&Snapshot<'_>>) -> Result<u64, StoreError> {
        let cf = self.cf(CF_SERIES_COUNTS);
        let value = match snapshot {
            Some(snapshot) => snapshot.get_cf(cf, key)?,
            None => self.db.get_cf(cf, key)?,
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

    /// Where a scan of the series from one end (`from_newest`) reaches the candle `skip` candles in, as of
    /// `snapshot`: a candle time to start the scan at (going forward, the lower bound; going back, the
    /// exclusive upper bound) and how many candles are left to step over from there (fewer than
    /// [`BUCKET_SLOTS`]). Sums the series' bucket counts from that end. `None` for the bound: the buckets
    /// do not reach that far (scan from the end).
    pub(super) fn rank_start(
        &self,
        mint: &[u8; 32],
        interval: Interval,
        from_newest: bool,
        skip: u64,
        snapshot: &Snapshot<'_>,
    ) -> Result<(Option<i64>, u64), StoreError> {
        let series = series_key(mint, interval);
        let mut read = ReadOptions::default();
        read.set_snapshot(snapshot);
        read.set_iterate_lower_bound(bucket_key(&series, i64::MIN).to_vec());
        read.set_iterate_upper_bound(bucket_key(&series, i64::MAX).to_vec());
        let mode = if from_newest {
            IteratorMode::End
        } else {
            IteratorMode::Start
        };
        let mut before = 0;
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_SERIES_COUNTS), read, mode)
        {
            let (key, value) = item?;
            let count = decode_count(Some(&value));
            if before + count > skip {
                let Some(bucket) = bucket_number(&key) else {
                    break;
                };
                let width = bucket_width(interval);
                let bound = if from_newest {
                    bucket.saturating_add(1).saturating_mul(width)
                } else {
                    bucket.saturating_mul(width)
                };
                return Ok((Some(bound), skip - before));
            }
            before += count;
        }
        Ok((None, skip))
    }

    /// Adds to `batch` the new counts of every series and bucket its candle keys add to (rule 1 of the
    /// module). Called with the write lock held, right before `batch` is written.
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
        let mut new = Vec::new();
        for (key, found) in keys.iter().zip(found) {
            if found?.is_none()
                && let Some(bucket) = bucket_of_candle(key)
            {
                new.push((bucket, 1));
            }
        }
        self.adjust_counts(batch, &tally(new), true)
    }

    /// Lowers the counts by the candles `removed` from each bucket (sorted; retention's range delete,
    /// rule 2).
    pub(super) fn uncount(
        &self,
        batch: &mut StoreBatch<'_>,
        removed: &[(BucketKey, u64)],
    ) -> Result<(), StoreError> {
        self.adjust_counts(batch, removed, false)
    }

    /// Puts in `batch` the counts of `buckets` (sorted, each with a number of candles) and of their series,
    /// raised (`add`) or lowered by those numbers. An emptied bucket's entry is deleted.
    fn adjust_counts(
        &self,
        batch: &mut StoreBatch<'_>,
        buckets: &[(BucketKey, u64)],
        add: bool,
    ) -> Result<(), StoreError> {
        let series = tally(buckets.iter().map(|(bucket, n)| (series_of(bucket), *n)));
        let keys = series
            .iter()
            .map(|(key, n)| (&key[..], *n))
            .chain(buckets.iter().map(|(key, n)| (&key[..], *n)));
        for (key, n) in keys {
            let stored = self.stored_count(key, None)?;
            let count = if add {
                stored + n
            } else {
                stored.saturating_sub(n)
            };
            if count == 0 && key.len() == BUCKET_KEY_LEN {
                batch.batch.delete_cf(self.cf(CF_SERIES_COUNTS), key);
            } else {
                batch.put_count(key, count);
            }
        }
        Ok(())
    }

    /// The buckets of a run of candle keys, with the candles of each (for [`CandleStore::uncount`]).
    pub(super) fn buckets_of<'k>(
        candle_keys: impl IntoIterator<Item = &'k [u8]>,
    ) -> Vec<(BucketKey, u64)> {
        tally(
            candle_keys
                .into_iter()
                .filter_map(|key| Some((bucket_of_candle(key)?, 1))),
        )
    }

    /// Builds every series' and bucket's count from the candles, once per store (rule 4 of the module).
    /// Runs at open, before anything else writes.
    pub(super) fn build_series_counts(&self) -> Result<(), StoreError> {
        if self.meta(COUNTS_BUILT)?.is_some() {
            return Ok(());
        }
        let started = Instant::now();
        tracing::info!(
            path = %self.path.display(),
            "store: counting the candles of every series once (a store from before per-series counts)"
        );
        // Whatever an interrupted build left: every count is written again below.
        self.db.delete_range_cf(
            self.cf(CF_SERIES_COUNTS),
            &[][..],
            &[0xff; BUCKET_KEY_LEN + 1][..],
        )?;
        let mut read = ReadOptions::default();
        read.fill_cache(false);
        let mut batch = self.batch();
        let (mut series, mut candles) = (0usize, 0u64);
        let mut totals = Running::default();
        let mut buckets = Running::default();
        let mut last_log = Instant::now();
        for item in self
            .db
            .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::Start)
        {
            let (key, _) = item?;
            let Some(bucket) = (key.len() == CANDLE_KEY_LEN)
                .then(|| bucket_of_candle(&key))
                .flatten()
            else {
                continue;
            };
            candles += 1;
            if let Some((done, n)) = buckets.add(bucket) {
                batch.put_count(&done, n);
            }
            if let Some((done, n)) = totals.add(series_of(&key)) {
                batch.put_count(&done, n);
                series += 1;
            }
            if batch.batch.len() >= BUILD_BATCH_ENTRIES {
                self.write_unlocked(std::mem::replace(&mut batch, self.batch()))?;
            }
            if last_log.elapsed() >= BUILD_PROGRESS_EVERY {
                last_log = Instant::now();
                tracing::info!(series, candles, "store: counting series candles");
            }
        }
        if let Some((done, n)) = buckets.finish() {
            batch.put_count(&done, n);
        }
        if let Some((done, n)) = totals.finish() {
            batch.put_count(&done, n);
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

    /// Counts a series' candles the slow way (tests and tools: a full scan), to check the kept counts against.
    pub fn count_series_candles(
        &self,
        mint: &[u8; 32],
        interval: Interval,
    ) -> Result<u64, StoreError> {
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(keys::series_key(mint, interval, i64::MIN).to_vec());
        read.set_iterate_upper_bound(keys::series_key(mint, interval, i64::MAX).to_vec());
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

/// `(bucket number, candles)` per bucket, ascending.
#[cfg(test)]
type BucketCounts = Vec<(i64, u64)>;

#[cfg(test)]
impl CandleStore {
    /// The series' kept bucket counts, `(bucket number, candles)` ascending, and the same counted from the
    /// candles themselves.
    pub(crate) fn bucket_counts(
        &self,
        mint: &[u8; 32],
        interval: Interval,
    ) -> (BucketCounts, BucketCounts) {
        let series = series_key(mint, interval);
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(bucket_key(&series, i64::MIN).to_vec());
        read.set_iterate_upper_bound(bucket_key(&series, i64::MAX).to_vec());
        let kept = self
            .db
            .iterator_cf_opt(self.cf(CF_SERIES_COUNTS), read, IteratorMode::Start)
            .map(|item| {
                let (key, value) = item.unwrap();
                (bucket_number(&key).unwrap(), decode_count(Some(&value)))
            })
            .collect();
        let mut read = ReadOptions::default();
        read.set_iterate_lower_bound(keys::series_key(mint, interval, i64::MIN).to_vec());
        read.set_iterate_upper_bound(keys::series_key(mint, interval, i64::MAX).to_vec());
        let counted = tally(
            self.db
                .iterator_cf_opt(self.cf(CF_CANDLES), read, IteratorMode::Start)
                .map(|item| {
                    let key = item.unwrap().0;
                    let bucket = bucket_of_candle(&key).unwrap();
                    (bucket_number(&bucket).unwrap(), 1)
                }),
        );
        (kept, counted)
    }
}

/// The count of the key being counted in a sorted pass.
struct Running<K>(Option<(K, u64)>);

impl<K> Default for Running<K> {
    fn default() -> Self {
        Running(None)
    }
}

impl<K: Eq> Running<K> {
    /// Counts one more of `key`; gives back the previous key's count when `key` is a new one.
    fn add(&mut self, key: K) -> Option<(K, u64)> {
        match &mut self.0 {
            Some((known, n)) if *known == key => {
                *n += 1;
                None
            }
            _ => self.0.replace((key, 1)),
        }
    }

    fn finish(self) -> Option<(K, u64)> {
        self.0
    }
}

impl StoreBatch<'_> {
    fn put_count(&mut self, key: &[u8], count: u64) {
        self.batch
            .put_cf(self.store.cf(CF_SERIES_COUNTS), key, count.to_be_bytes());
    }
}

#[cfg(test)]
pub(crate) mod tests;
