//! Counters shared by the parts of the server and read by `/metrics` and `/health`.
//!
//! Each counter has one writer (the component named in its doc); everyone else only reads. The types are
//! the Prometheus client's own (`prometheus-client`), so `/metrics` registers each of them once
//! (`http/metrics.rs`) and the library writes the exposition format.

use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::{EncodeMetric, MetricEncoder, NoLabelSet};
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::{MetricType, TypedMetric};

/// A monotonically increasing count.
pub type Counter = prometheus_client::metrics::counter::Counter<u64, AtomicU64>;
/// A count that goes up and down.
pub type Gauge = prometheus_client::metrics::gauge::Gauge<u64, AtomicU64>;

/// Decrements a gauge when dropped: held by whatever the gauge counts (an open connection) for its life.
pub struct Decrement<'a>(pub &'a Gauge);

impl Drop for Decrement<'_> {
    fn drop(&mut self) {
        self.0.dec();
    }
}

/// Adds `n` to `counter` (a count of items, as `usize`).
#[inline]
pub fn add(counter: &Counter, n: usize) {
    counter.inc_by(n as u64);
}

/// Retention and the store's size (the retention task; the snapshot route).
#[derive(Debug, Default)]
pub struct StoreStats {
    /// Retention passes completed.
    pub retention_passes: Counter,
    /// Candle series that had candles past their retention deleted.
    pub series_pruned: Counter,
    /// Trades deleted past `retention.trades`.
    pub trades_pruned: Counter,
    /// Bytes per column family, on disk (`where="disk"`) and in memtables (`where="memory"`), refreshed
    /// by the retention task.
    pub family_bytes: Family<Vec<(&'static str, &'static str)>, Gauge>,
    /// Bytes of the whole data directory (write-ahead log and RocksDB's own files included).
    pub data_dir_bytes: Gauge,
    /// The file system holding the data directory: its size and the bytes this process may still write
    /// (`statvfs`), refreshed with the sizes above. "Disk near full" alerts compare the two.
    pub fs_size_bytes: Gauge,
    pub fs_avail_bytes: Gauge,
    /// Snapshots served to edges, and their bytes.
    pub snapshots_served: Counter,
    pub snapshot_bytes: Counter,
    /// Snapshot requests refused: all of `node.snapshot_concurrency` busy.
    pub snapshots_refused: Counter,
    /// Snapshots cut off: the reader took no frame for `node.snapshot_write_timeout_secs`, or went away.
    pub snapshots_cut_off: Counter,
    /// REST reads refused with 503 because no read permit freed in time (`kline-server`'s
    /// `http::read_permits`).
    pub rest_reads_refused: Counter,
    /// Candle entries the read paths stepped over (the store's own counter, shared).
    pub candles_read: Counter,
}

/// Counters of the push service. Gauges (`*_active`) go up and down; the rest only grow.
#[derive(Debug, Default)]
pub struct PushStats {
    /// Open WebSocket connections (connection tasks).
    pub connections_active: Gauge,
    /// Connections accepted since start (connection tasks).
    pub connections_total: Counter,
    /// Connections refused with 1013 at the connection limit (connection tasks).
    pub connections_rejected: Counter,
    /// Client sockets refused with 503 at the socket budget (the accept loop).
    pub sockets_refused: Counter,
    /// (connection, series) subscriptions in the index (hub).
    pub subscriptions_active: Gauge,
    /// Text frames written to clients (writers).
    pub messages_sent: Counter,
    /// Unsent candle updates replaced by a newer one of the same candle (hub).
    pub updates_replaced: Counter,
    /// Times a hub shard's inbox overflowed and a series was re-read from the store to catch up (hub).
    pub feed_lagged: Counter,
    /// Candle states a hub shard skipped because a newer one of the same candle was waiting (hub).
    pub feed_coalesced: Counter,
    /// (connection, mint) trade subscriptions in the trade hub's index (trade hub).
    pub trade_subscriptions_active: Gauge,
    /// Trades pushed to subscribers, counted once per subscriber (trade hub).
    pub trades_delivered: Counter,
    /// Times the trade feed overflowed and a mint's trades were re-read from the store (trade hub).
    pub trade_feed_lagged: Counter,
    /// Connections subscribed to the ticker stream (ticker hub).
    pub ticker_subscriptions_active: Gauge,
    /// `tickers` messages pushed, counted once per subscriber (ticker hub).
    pub tickers_delivered: Counter,
    /// Clients closed with 4008 (writers).
    pub slow_client_closes: Counter,
    /// Times freed heap memory was returned to the OS after connections fell (memory task).
    pub memory_trims: Counter,
    /// Clients closed with 4000 (connection tasks).
    pub idle_timeouts: Counter,
    /// Clients closed with 1002 for breaking RFC 6455 (connection tasks).
    pub protocol_error_closes: Counter,
    /// Clients closed with 1007 for a text message that is not UTF-8 (connection tasks).
    pub invalid_payload_closes: Counter,
    /// Clients closed with 1009 for a message or frame above `websocket.max_message_bytes` (connection tasks).
    pub message_too_big_closes: Counter,
    /// Requests refused with 1004 (connection tasks).
    pub rate_limited: Counter,
    /// Requests answered with an `error` message of any code (connection tasks).
    pub request_errors: Counter,
    /// Open Socket.IO sockets on `/kline` (Socket.IO sessions).
    pub socketio_connections_active: Gauge,
    /// Socket.IO sockets accepted on `/kline` since start (Socket.IO sessions).
    pub socketio_connections_total: Counter,
    /// Open Socket.IO connections on our own websocket transport (`kline_socketio::engine`), joined to
    /// `/kline` or not; the rest of `socketio_connections_active` is socketioxide's (polling, upgraded).
    pub socketio_websocket_connections_active: Gauge,
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

/// A fixed-bucket histogram of milliseconds, lock-free. Clones share the counts (as the Prometheus
/// client's own metric types do), so `/metrics` registers a clone.
#[derive(Debug, Default, Clone)]
pub struct LatencyHistogram(std::sync::Arc<HistogramCounts>);

#[derive(Debug, Default)]
pub struct HistogramCounts {
    buckets: [AtomicU64; LATENCY_BUCKETS_MS.len() + 1],
    sum_us: AtomicU64,
}

impl std::ops::Deref for LatencyHistogram {
    type Target = HistogramCounts;

    fn deref(&self) -> &HistogramCounts {
        &self.0
    }
}

impl HistogramCounts {
    #[inline]
    pub fn observe_ms(&self, ms: f64) {
        let index = LATENCY_BUCKETS_MS
            .iter()
            .position(|bound| ms <= *bound)
            .unwrap_or(LATENCY_BUCKETS_MS.len());
        self.buckets[index].fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((ms.max(0.0) * 1000.0) as u64, Ordering::Relaxed);
    }

    /// Per-bucket counts with their upper bounds in seconds (the last is `+Inf`), the total count, and
    /// the sum in seconds.
    pub fn buckets_seconds(&self) -> (Vec<(f64, u64)>, u64, f64) {
        let bounds = LATENCY_BUCKETS_MS
            .iter()
            .map(|ms| ms / 1000.0)
            .chain([f64::INFINITY]);
        let buckets: Vec<(f64, u64)> = bounds
            .zip(&self.buckets)
            .map(|(bound, count)| (bound, count.load(Ordering::Relaxed)))
            .collect();
        let count = buckets.iter().map(|(_, n)| n).sum();
        (
            buckets,
            count,
            self.sum_us.load(Ordering::Relaxed) as f64 / 1e6,
        )
    }
}

/// Lock-free on the hot path (one atomic add per observation, written by every hub thread), and encoded by
/// the Prometheus client as a histogram in seconds.
impl EncodeMetric for LatencyHistogram {
    fn encode(&self, mut encoder: MetricEncoder) -> Result<(), std::fmt::Error> {
        let (buckets, count, sum) = self.buckets_seconds();
        encoder.encode_histogram::<NoLabelSet>(sum, count, &buckets, None)
    }

    fn metric_type(&self) -> MetricType {
        Self::TYPE
    }
}

impl TypedMetric for LatencyHistogram {
    const TYPE: MetricType = MetricType::Histogram;
}
