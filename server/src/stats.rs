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
    /// Published candle updates of series some hub shard has subscribers for (pipeline).
    pub candle_updates_watched: AtomicU64,
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
}

/// Counters of the push service. Gauges (`*_active`) go up and down; the rest only grow.
#[derive(Debug, Default)]
pub struct PushStats {
    /// Open WebSocket connections (connection tasks).
    pub connections_active: AtomicU64,
    /// Connections accepted since start (connection tasks).
    pub connections_total: AtomicU64,
    /// Connections refused with 1013 at the connection limit (connection tasks).
    pub connections_rejected: AtomicU64,
    /// Client sockets refused with 503 at the socket budget (the accept loop).
    pub sockets_refused: AtomicU64,
    /// (connection, series) subscriptions in the index (hub).
    pub subscriptions_active: AtomicU64,
    /// Text frames written to clients (writers).
    pub messages_sent: AtomicU64,
    /// Unsent candle updates replaced by a newer one of the same candle (hub).
    pub updates_replaced: AtomicU64,
    /// Times a hub shard's inbox overflowed and a series was re-read from the store to catch up (hub).
    pub feed_lagged: AtomicU64,
    /// Candle states a hub shard skipped because a newer one of the same candle was waiting (hub).
    pub feed_coalesced: AtomicU64,
    /// Clients closed with 4008 (writers).
    pub slow_client_closes: AtomicU64,
    /// Times freed heap memory was returned to the OS after connections fell (memory task).
    pub memory_trims: AtomicU64,
    /// Clients closed with 4000 (connection tasks).
    pub idle_timeouts: AtomicU64,
    /// Clients closed with 1002 for breaking RFC 6455 (connection tasks).
    pub protocol_error_closes: AtomicU64,
    /// Clients closed with 1007 for a text message that is not UTF-8 (connection tasks).
    pub invalid_payload_closes: AtomicU64,
    /// Clients closed with 1009 for a message or frame above `websocket.max_message_bytes` (connection tasks).
    pub message_too_big_closes: AtomicU64,
    /// Requests refused with 1004 (connection tasks).
    pub rate_limited: AtomicU64,
    /// Requests answered with an `error` message of any code (connection tasks).
    pub request_errors: AtomicU64,
    /// Time from an update's production (after its write) to its write on a client socket (writers).
    pub push_latency: LatencyHistogram,
    /// Time from the receipt of the event behind an update (HTTP request read, Solana notification) to its
    /// write on a client socket: queueing, aggregation, storage, feed and fan-out (writers).
    pub receipt_to_push: LatencyHistogram,
}

/// Upper bounds (ms) of the latency histogram's buckets; a last bucket holds everything above.
pub const LATENCY_BUCKETS_MS: [f64; 12] = [
    0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 5000.0,
];

/// A fixed-bucket histogram of milliseconds, lock-free.
#[derive(Debug, Default)]
pub struct LatencyHistogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl LatencyHistogram {
    pub fn observe_ms(&self, ms: f64) {
        let index = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((ms.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Cumulative counts per bucket (Prometheus style), the total count, and the sum in seconds.
    pub fn snapshot(&self) -> (Vec<u64>, u64, f64) {
        let mut running = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|bucket| {
                running += bucket.load(Ordering::Relaxed);
                running
            })
            .collect();
        (
            cumulative,
            running,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}
