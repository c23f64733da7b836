//! Counters shared by the parts of the server and read by `/metrics` and `/health`.
//!
//! Each counter has one writer (the component named in its doc); everyone else only reads.

use std::sync::atomic::{AtomicU64, Ordering};

#[derive(Debug, Default)]
pub struct PipelineStats {
    /// Events stored for the first time (pipeline).
    pub events_accepted: AtomicU64,
    /// Events dropped because their identity was already stored (pipeline).
    pub events_duplicate: AtomicU64,
    /// Events rejected as invalid before reaching the pipeline (the source that parsed them).
    pub events_rejected: AtomicU64,
    /// Events that touched at least one candle that was already final (pipeline).
    pub events_late: AtomicU64,
    /// Candle updates published to the live stream (pipeline).
    pub candle_updates_published: AtomicU64,
    /// Candles marked final (pipeline).
    pub candles_finalized: AtomicU64,
    /// RocksDB write batches committed (pipeline).
    pub batches_written: AtomicU64,
    /// RocksDB write failures (pipeline).
    pub write_errors: AtomicU64,
    /// Candles deleted by retention, counted per pruned series (retention task).
    pub series_pruned: AtomicU64,
}

impl PipelineStats {
    pub fn add(counter: &AtomicU64, n: usize) {
        counter.fetch_add(n as u64, Ordering::Relaxed);
    }

    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }
}
