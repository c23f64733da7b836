//! The pipeline's counters, read by `/metrics` and `/health`. Each has one writer, named in its doc.

use kline_core::stats::Counter;

use super::storage::StorageHealth;

#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events stored for the first time (pipeline).
    pub events_accepted: Counter,
    /// Events dropped because their identity was already stored (pipeline).
    pub events_duplicate: Counter,
    /// Events rejected as invalid before reaching the pipeline (the source that parsed them).
    pub events_rejected: Counter,
    /// Events that touched at least one candle that was already final (pipeline).
    pub events_late: Counter,
    /// Candle updates published to the live stream (pipeline).
    pub candle_updates_published: Counter,
    /// Published candle updates of series some hub shard has subscribers for (pipeline).
    pub candle_updates_watched: Counter,
    /// Candles marked final (pipeline).
    pub candles_finalized: Counter,
    /// RocksDB write batches committed (pipeline).
    pub batches_written: Counter,
    /// RocksDB write failures (pipeline).
    pub write_errors: Counter,
    /// Whether the store takes writes, and why not (pipeline; see `crate::storage`).
    pub storage: StorageHealth,
    /// Events pushed live before their block position was known (pipeline; see `crate::provisional`).
    pub provisional_events: Counter,
    /// Candles published again because provisional events left them (confirmed, expired) (pipeline).
    pub provisional_corrections: Counter,
    /// Provisional-only candles left without ticks, not retracted live (pipeline).
    pub provisional_orphaned: Counter,
}
