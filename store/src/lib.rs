//! # kline-store
//!
//! `CandleStore`: events, candles and metadata in one embedded RocksDB. Above `kline-core` (what is
//! stored) and below the pipeline, the stream and the push side (who writes and reads); besides the store
//! itself: [`history`] reads as protocol payloads, the [`symbol_directory`], the retention [`sweeper`], and
//! [`replication`], what the stream to the edges keeps in the store.
//!
//! Column families:
//! - `events`: event identity (the signature's first 16 bytes + index: [`keys`]) → the event in binary, with
//!   the rest of its signature ([`kline_core::event::stored`]). The entry doubles as the dedup marker.
//! - `candles`: (mint, interval, time) → candle state ([`codec`]). Sorted so history is a bounded range scan.
//! - `open_candles`: the keys of candles not yet final, so a restart can resume them.
//! - `symbols`: mint → last price and update time; `mint ++ b'n'` → the token's name ([`names`]).
//! - `trades`: (mint, slot, tx_index, event_index, signature head) → the trade's price ([`TradeValue`]): every
//!   price event of a mint in the chain's order, so "the latest N trades before X" is a bounded reverse
//!   scan; a read builds each trade from the event its key names (`store/trades.rs`).
//! - `meta`: small named values (source cursors; the stream's sequence numbers).
//! - `outbox` (role `writer`): group number → the group's stream record ([`replication`]).
//! - `series_counts`: (mint, interval) → how many candles the series holds ([`series_counts`]), so no
//!   request counts a series by reading it.
//!
//! Everything one batch of events causes (events, trades, candles, open markers, symbols, series counts) is
//! written in one [`StoreBatch`], atomically: after a crash the store never holds an event without its
//! candles, or a candle its count does not include. The pipeline (on an edge, the replica) is the only
//! writer of batches, retention the only deleter; the store's write lock orders the two. Readers (history,
//! symbols) run concurrently and take no lock.

pub mod codec;
pub mod history;
pub mod keys;
mod layout;
pub mod names;
pub mod replication;
mod retention;
mod series;
mod series_counts;

pub mod sweeper;
pub mod symbol_directory;
#[cfg(any(test, feature = "test-support"))]
pub mod test_support;
mod trades;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use kline_protocol::{Trade, TradeId};
use rocksdb::{
    BlockBasedOptions, ColumnFamily, ColumnFamilyDescriptor, DB, DBCompressionType, IteratorMode,
    Options, WriteBatch, WriteOptions,
};

pub use codec::{CorruptValue, SymbolStats};
use kline_config::StorageConfig;
use kline_core::aggregator::{CandleKey, CandleState};
use kline_core::event::stored::{self, StoredEventError};
use kline_core::event::{EventId, EventRecord};

pub use retention::{FamilyBytes, SWEPT_FAMILIES};
use series_counts::CF_SERIES_COUNTS;
pub use trades::{TRADE_VALUE_LEN, TradeValue};

const CF_EVENTS: &str = "events";
const CF_CANDLES: &str = "candles";
const CF_OPEN: &str = "open_candles";
const CF_SYMBOLS: &str = "symbols";
const CF_META: &str = "meta";
const CF_TRADES: &str = "trades";
const CF_OUTBOX: &str = "outbox";
const COLUMN_FAMILIES: [&str; 8] = [
    CF_EVENTS,
    CF_CANDLES,
    CF_OPEN,
    CF_SYMBOLS,
    CF_META,
    CF_TRADES,
    CF_OUTBOX,
    CF_SERIES_COUNTS,
];

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(
        "data directory {0} is in use by another process (is a kline-server already running on it?)"
    )]
    Locked(PathBuf),
    #[error("RocksDB: {0}")]
    Rocks(#[from] rocksdb::Error),
    #[error(transparent)]
    Corrupt(#[from] CorruptValue),
    #[error("corrupt stored {what}: {reason}")]
    CorruptJson { what: &'static str, reason: String },
    #[error(transparent)]
    StoredEvent(#[from] StoredEventError),
    #[error("no trade {0} is stored")]
    UnknownTrade(TradeId),
}

impl StoreError {
    /// Whether the store failed for want of disk space (ENOSPC): RocksDB's `IOError` with the sub-code
    /// `NoSpace`, which its text names. After one, RocksDB refuses every write with the same error until it
    /// has resumed on its own (its `SstFileManager` polls the free space) once there is room again.
    pub fn is_no_space(&self) -> bool {
        matches!(self, StoreError::Rocks(err) if names_no_space(err.as_ref()))
    }
}

/// RocksDB's text for `Status::NoSpace` (`util/status.cc`), which `IOError` gives every ENOSPC.
fn names_no_space(message: &str) -> bool {
    message.contains("No space left on device")
}

/// A page of a mint's trades, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TradesPage {
    pub trades: Vec<Trade>,
    /// Older trades exist before the last one returned.
    pub has_more: bool,
}

/// A page of candles answering a history query.
#[derive(Debug, Clone, PartialEq)]
pub struct HistoryPage {
    /// Ascending by time.
    pub candles: Vec<CandleState>,
    /// Older candles exist in the range before the first one returned.
    pub has_more: bool,
}

/// A page of a whole series ([`CandleStore::series_page`]).
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesPage {
    /// In the order asked for.
    pub candles: Vec<CandleState>,
    /// Candles in the whole series (its kept count, consistent with `candles`).
    pub total: usize,
}

/// The newest `limit` candles with `from <= time < to` (either bound optional).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HistoryQuery {
    pub from: Option<i64>,
    pub to: Option<i64>,
    pub limit: usize,
}

/// What bounds the store's write-ahead log on disk and its memtables in memory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryLimits {
    /// When the log passes this, the families holding its oldest part are flushed.
    pub max_wal_bytes: u64,
    /// All families' memtables together; past it, the largest is flushed.
    pub memtable_budget_bytes: u64,
}

impl Default for MemoryLimits {
    fn default() -> Self {
        MemoryLimits {
            max_wal_bytes: 256 << 20,
            memtable_budget_bytes: 256 << 20,
        }
    }
}

pub struct CandleStore {
    db: DB,
    path: PathBuf,
    sync_writes: bool,
    /// Events older than this (Unix ms) are dropped by compactions ([`retention`]).
    event_cutoff: Arc<AtomicI64>,
    /// Held while a write decides what it adds to the series counts and is written, and while retention
    /// counts and deletes a range: the two never interleave ([`series_counts`]).
    write_lock: Mutex<()>,
    /// Candle entries the read paths (history, pages) have stepped over: `/metrics` shows it, tests check
    /// that a request reads what it answers and not its whole series.
    candles_read: kline_core::stats::Counter,
    /// Writes that changed the `symbols` family: a cached symbol list is stale once this moved.
    symbols_writes: AtomicU64,
}

impl CandleStore {
    /// Opens (creating if needed) the store in `config.data_dir`.
    pub fn open(config: &StorageConfig) -> Result<CandleStore, StoreError> {
        let memory = MemoryLimits {
            max_wal_bytes: config.max_wal_mb << 20,
            memtable_budget_bytes: config.memtable_budget_mb << 20,
        };
        Self::open_limited(
            &config.data_dir,
            config.sync_writes,
            config.max_open_files,
            memory,
        )
    }

    /// Opens with the default [`MemoryLimits`].
    pub fn open_at(
        path: &Path,
        sync_writes: bool,
        max_open_files: i32,
    ) -> Result<CandleStore, StoreError> {
        Self::open_limited(path, sync_writes, max_open_files, MemoryLimits::default())
    }

    pub fn open_limited(
        path: &Path,
        sync_writes: bool,
        max_open_files: i32,
        memory: MemoryLimits,
    ) -> Result<CandleStore, StoreError> {
        let mut options = Options::default();
        // Without these, the write-ahead log is kept until every family has flushed; the small families
        // (symbols, meta) fill their memtables only after hours, so the log grew to RocksDB's own bound
        // (4 × all write buffers: ~3.5 GB) before anything was flushed (measured by the soak).
        options.set_max_total_wal_size(memory.max_wal_bytes);
        options.set_db_write_buffer_size(memory.memtable_budget_bytes as usize);
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        options.set_max_open_files(max_open_files);
        // RocksDB's info log (`LOG`): rotated at 16 MB, four kept (unrotated, it grows for the process's life).
        options.set_max_log_file_size(16 << 20);
        options.set_keep_log_file_num(4);
        options.increase_parallelism(2);

        let event_cutoff = Arc::new(AtomicI64::new(i64::MIN));
        let descriptors = COLUMN_FAMILIES.map(|name| {
            let mut cf_options = Options::default();
            // Values (binary events, candle states) and keys (shared mint prefixes) compress: LZ4 where
            // data is young (cheap for flushes and early compactions), ZSTD in the bottommost level, where
            // most of it lives (its entropy coding takes ~15% off binary events, which LZ4 leaves as they
            // are). Measured in docs/operations.md ("Bytes per event").
            cf_options.set_compression_type(DBCompressionType::Lz4);
            cf_options.set_bottommost_compression_type(DBCompressionType::Zstd);
            if name == CF_EVENTS {
                let mut point_lookups = BlockBasedOptions::default();
                point_lookups.set_bloom_filter(10.0, false);
                cf_options.set_block_based_table_factory(&point_lookups);
                retention::filter_expired_events(&mut cf_options, event_cutoff.clone());
            }
            ColumnFamilyDescriptor::new(name, cf_options)
        });
        let db = DB::open_cf_descriptors(&options, path, descriptors).map_err(|err| {
            if err.to_string().contains("lock") {
                StoreError::Locked(path.to_path_buf())
            } else {
                StoreError::Rocks(err)
            }
        })?;
        let store = CandleStore {
            db,
            path: path.to_path_buf(),
            sync_writes,
            event_cutoff,
            write_lock: Mutex::new(()),
            candles_read: kline_core::stats::Counter::default(),
            symbols_writes: AtomicU64::new(0),
        };
        store.build_series_counts()?;
        store.upgrade_layout()?;
        Ok(store)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Candle entries read so far by [`CandleStore::history`], [`CandleStore::series_page`] and
    /// [`CandleStore::candles_after`] (each entry stepped over, answered or skipped).
    pub fn candles_read(&self) -> u64 {
        self.candles_read.get()
    }

    /// The counter behind [`CandleStore::candles_read`], for `/metrics` (clones share the count).
    pub fn candles_read_counter(&self) -> kline_core::stats::Counter {
        self.candles_read.clone()
    }

    /// How many writes have changed the symbol stats since the store was opened.
    pub fn symbols_writes(&self) -> u64 {
        self.symbols_writes.load(Ordering::Relaxed)
    }

    fn lock_writes(&self) -> MutexGuard<'_, ()> {
        self.write_lock
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn cf(&self, name: &str) -> &ColumnFamily {
        self.db
            .cf_handle(name)
            .expect("column families are created on open")
    }

    /// For each id, whether the event is already stored (the value under its key holds the rest of its
    /// signature: see [`keys`]).
    pub fn events_exist(&self, ids: &[EventId]) -> Result<Vec<bool>, StoreError> {
        let cf = self.cf(CF_EVENTS);
        let keys: Vec<_> = ids.iter().map(keys::event_key).collect();
        self.db
            .batched_multi_get_cf(cf, &keys, false)
            .into_iter()
            .zip(ids)
            .map(|(found, id)| {
                Ok(found?.is_some_and(|bytes| stored::holds_signature(&bytes, &id.signature)))
            })
            .collect()
    }

    /// The stored event `id`, if it is stored (under this layout's key, or a legacy one: see [`keys`]).
    pub fn event(&self, id: &EventId) -> Result<Option<EventRecord>, StoreError> {
        let cf = self.cf(CF_EVENTS);
        if let Some(bytes) = self.db.get_pinned_cf(cf, keys::event_key(id))?
            && stored::holds_signature(&bytes, &id.signature)
        {
            return Ok(Some(stored::decode(&id.signature, id.event_index, &bytes)?));
        }
        match self.db.get_pinned_cf(cf, keys::legacy_event_key(id))? {
            Some(bytes) => Ok(Some(stored::decode(&id.signature, id.event_index, &bytes)?)),
            None => Ok(None),
        }
    }

    /// The JSON of the stored event `id` (the form clients are sent), if it is stored.
    pub fn event_json(&self, id: &EventId) -> Result<Option<String>, StoreError> {
        Ok(self.event(id)?.map(|event| event.to_json()))
    }

    /// Calls `visit` with every stored event, in key order (a full scan: for one-time passes such as
    /// indexing, not the hot path). Stops at the first error `visit` returns; an event that does not decode
    /// is passed as its error.
    pub fn for_each_event(
        &self,
        mut visit: impl FnMut(Result<EventRecord, StoredEventError>) -> Result<(), StoreError>,
    ) -> Result<(), StoreError> {
        for item in self.db.iterator_cf(self.cf(CF_EVENTS), IteratorMode::Start) {
            let (key, value) = item?;
            let Some((signature, event_index)) = keys::split_event_key(&key) else {
                continue;
            };
            visit(stored::decode(signature, event_index, &value))?;
        }
        Ok(())
    }

    /// The length of every key of `family`, in key order (tests: which key layout entries are in).
    #[cfg(test)]
    fn key_lengths(&self, family: &str) -> Vec<usize> {
        self.db
            .iterator_cf(self.cf(family), IteratorMode::Start)
            .map(|item| item.unwrap().0.len())
            .collect()
    }

    /// Number of stored events (a full scan: for tests and tools, not the hot path).
    pub fn count_events(&self) -> Result<usize, StoreError> {
        let mut count = 0;
        for item in self.db.iterator_cf(self.cf(CF_EVENTS), IteratorMode::Start) {
            item?;
            count += 1;
        }
        Ok(count)
    }

    pub fn candle(&self, key: &CandleKey) -> Result<Option<CandleState>, StoreError> {
        match self
            .db
            .get_pinned_cf(self.cf(CF_CANDLES), keys::candle_key(key))?
        {
            Some(bytes) => Ok(Some(codec::decode_candle(&bytes)?)),
            None => Ok(None),
        }
    }

    /// Every candle that was open when last written (restored into the aggregator on start).
    pub fn open_candles(&self) -> Result<Vec<(CandleKey, CandleState)>, StoreError> {
        let mut out = Vec::new();
        for item in self.db.iterator_cf(self.cf(CF_OPEN), IteratorMode::Start) {
            let (key_bytes, _) = item?;
            let Some(key) = keys::decode_candle_key(&key_bytes) else {
                continue;
            };
            if let Some(state) = self.candle(&key)? {
                out.push((key, state));
            }
        }
        Ok(out)
    }

    /// Every known mint with its stats (all in memory: for the passes over every mint; a bounded list is
    /// [`CandleStore::for_each_symbol`]'s to keep).
    pub fn symbols(&self) -> Result<Vec<([u8; 32], SymbolStats)>, StoreError> {
        let mut out = Vec::new();
        self.for_each_symbol(|mint, stats| out.push((mint, stats)))?;
        Ok(out)
    }

    /// Calls `visit` with every known mint and its stats, in key order.
    pub fn for_each_symbol(
        &self,
        mut visit: impl FnMut([u8; 32], SymbolStats),
    ) -> Result<(), StoreError> {
        for item in self
            .db
            .iterator_cf(self.cf(CF_SYMBOLS), IteratorMode::Start)
        {
            let (key, value) = item?;
            if let Ok(mint) = <[u8; 32]>::try_from(key.as_ref()) {
                visit(mint, codec::decode_symbol(&value)?);
            }
        }
        Ok(())
    }

    pub fn meta(&self, name: &str) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get_cf(self.cf(CF_META), name)?)
    }

    /// Writes a batch atomically (WAL synced when `sync_writes`), with the new count of every series its
    /// candles add to ([`series_counts`]).
    pub fn write(&self, mut batch: StoreBatch) -> Result<(), StoreError> {
        let _serial = self.lock_writes();
        self.count_new_candles(&mut batch)?;
        self.write_unlocked(batch)
    }

    /// Writes `batch` as it is: the caller holds the write lock, or nothing else writes yet (open).
    fn write_unlocked(&self, batch: StoreBatch) -> Result<(), StoreError> {
        let mut options = WriteOptions::default();
        options.set_sync(self.sync_writes);
        let symbols = batch.changes_symbols;
        self.db.write_opt(batch.batch, &options)?;
        if symbols {
            self.symbols_writes.fetch_add(1, Ordering::Relaxed);
        }
        Ok(())
    }

    pub fn batch(&self) -> StoreBatch<'_> {
        StoreBatch {
            store: self,
            batch: WriteBatch::default(),
            candle_keys: Vec::new(),
            changes_symbols: false,
        }
    }

    /// Flushes memtables to disk (on shutdown, so the next start does not replay the WAL).
    pub fn flush(&self) -> Result<(), StoreError> {
        for name in COLUMN_FAMILIES {
            self.db.flush_cf(self.cf(name))?;
        }
        Ok(())
    }
}

/// Changes to be written together. Built by the pipeline, written by [`CandleStore::write`].
pub struct StoreBatch<'a> {
    store: &'a CandleStore,
    batch: WriteBatch,
    /// Every candle key put, so the write can tell which are new to their series' counts.
    candle_keys: Vec<[u8; keys::CANDLE_KEY_LEN]>,
    /// A symbol's stats are in the batch.
    changes_symbols: bool,
}

impl StoreBatch<'_> {
    /// Stores an event in its binary form ([`stored`]).
    pub fn put_event(&mut self, event: &EventRecord) {
        self.batch.put_cf(
            self.store.cf(CF_EVENTS),
            keys::event_key(&event.id()),
            stored::encode(event),
        );
    }

    /// Stores a candle and keeps the open-candle index in step with its finality: a candle's first state
    /// (`update_count` 1: every candle starts from one event) adds it, its final state removes it. The
    /// states in between leave the index alone (it was rewritten on every update: ~5% of the server's CPU
    /// at 1,000 events/s went to those memtable inserts).
    pub fn put_candle(&mut self, key: &CandleKey, state: &CandleState) {
        let key_bytes = keys::candle_key(key);
        self.batch.put_cf(
            self.store.cf(CF_CANDLES),
            key_bytes,
            codec::encode_candle(state),
        );
        self.candle_keys.push(key_bytes);
        if state.is_final {
            self.batch.delete_cf(self.store.cf(CF_OPEN), key_bytes);
        } else if state.update_count <= 1 {
            self.batch.put_cf(self.store.cf(CF_OPEN), key_bytes, []);
        }
    }

    pub fn put_symbol(&mut self, mint: &[u8; 32], stats: &SymbolStats) {
        self.batch
            .put_cf(self.store.cf(CF_SYMBOLS), mint, codec::encode_symbol(stats));
        self.changes_symbols = true;
    }

    pub fn put_meta(&mut self, name: &str, value: &[u8]) {
        self.batch.put_cf(self.store.cf(CF_META), name, value);
    }

    pub fn is_empty(&self) -> bool {
        self.batch.is_empty()
    }
}

#[cfg(test)]
mod tests;
