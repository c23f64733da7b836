//! # kline-config
//!
//! The server's typed configuration and how it is assembled from layers. The bottom of the server's
//! layers: every other crate may read the part of [`Config`] it is given; this crate imports none of them.
//!
//! Layers, later wins: `config/default.toml` (compiled in, so it is the single source of defaults) →
//! `--config FILE` → environment variables `KLINE__SECTION__KEY` → command-line overrides. The merged TOML
//! is then checked against [`Config`]: unknown keys and bad values are errors naming the key's full path.

mod endpoints;
mod layers;
mod rest;
mod retention;
mod stream;

use std::net::SocketAddr;
use std::path::PathBuf;

use kline_protocol::{Interval, MAX_HISTORY_LIMIT};
use serde::Deserialize;

pub use endpoints::HttpHeaders;
pub use layers::{ConfigError, ConfigLayers};
pub use rest::RestConfig;
pub use retention::{Keep, RetentionConfig};
pub use stream::{READ_BLOCK, StalePolicy, StreamConfig};

/// hyper's smallest read buffer (it panics below it): the floor of `server.max_header_bytes`.
pub const MIN_HEAD_BYTES: usize = 8192;

/// The built-in defaults: the text of `config/default.toml`.
pub const DEFAULT_TOML: &str = include_str!("../default.toml");

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    pub server: ServerConfig,
    pub storage: StorageConfig,
    pub retention: RetentionConfig,
    pub rest: RestConfig,
    pub kline: KlineConfig,
    pub websocket: WebSocketConfig,
    pub socketio: SocketIoConfig,
    pub pipeline: PipelineConfig,
    pub ingest: IngestConfig,
    pub source: SourcesConfig,
    pub node: NodeConfig,
    pub stream: StreamConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    pub host: String,
    pub port: u16,
    pub listen_backlog: u32,
    pub shutdown_timeout_secs: u64,
    /// How long a client may take to send an HTTP request's headers before the connection is closed.
    pub header_read_timeout_secs: u64,
    /// Largest HTTP request head (request line and headers), bytes; at least 8192. Larger gets 431.
    pub max_header_bytes: usize,
    /// Most header fields in an HTTP request; more gets 431.
    pub max_headers: usize,
    /// File descriptors kept for what is not a client socket nor a RocksDB table file (see the server's `fds`
    /// module).
    pub fd_reserve: usize,
    pub cors_allowed_origins: CorsOrigins,
    pub tls: ServerTlsConfig,
}

/// TLS on the server's own listener, for operators without a TLS-terminating proxy (README, "TLS"). The
/// certificate and key are read again on SIGHUP.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerTlsConfig {
    pub enabled: bool,
    /// PEM certificate chain, leaf first.
    pub cert_file: PathBuf,
    /// PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key_file: PathBuf,
}

/// `"permissive"` or a list of origins.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum CorsOrigins {
    Keyword(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    pub data_dir: PathBuf,
    pub sync_writes: bool,
    pub max_open_files: i32,
    /// The write-ahead log's size on disk, MB: past it, the families holding its oldest part are flushed.
    pub max_wal_mb: u64,
    /// All column families' memtables together, MB: past it, the largest is flushed.
    pub memtable_budget_mb: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KlineConfig {
    pub intervals: Vec<Interval>,
    pub finality_grace_ms: u64,
    pub price_scale_decimals: u32,
    pub history_data_limit: u32,
    /// Candles a hub shard's feed inbox holds before a series is re-read from the store instead; also the
    /// trades the trade feed holds (and a trade gate, and a catch-up page) before re-reading a mint.
    pub broadcast_buffer_size: usize,
    /// Seconds without client traffic before a connection is closed (4000).
    pub connection_timeout: u64,
    pub max_subscriptions_per_client: usize,
    /// Connections that may hold the ticker stream at once, per node (beyond: error 1002).
    pub max_ticker_subscriptions: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WebSocketConfig {
    /// Milliseconds between server pings.
    pub ping_interval: u64,
    pub max_connections: usize,
    pub max_message_bytes: usize,
    pub outbox_capacity: usize,
    /// Most bytes one connection may have waiting to be written (beyond: 4008).
    pub outbox_max_bytes: usize,
    pub write_timeout_ms: u64,
    /// A waiting backlog must drain at least this fast, measured over `write_timeout_ms` (else 4008).
    pub min_drain_bytes_per_sec: u64,
    /// History reads (WebSocket `history` and `subscribe` snapshots) running at once, server-wide.
    pub max_concurrent_history_reads: usize,
    /// Most mints listed in `connection_success`.
    pub hello_max_symbols: usize,
    /// After our close frame: how long to wait for the client's, reading what it still sends; 0 = not at all.
    pub close_linger_ms: u64,
    pub rate_limit_per_sec: f64,
    pub rate_limit_burst: u32,
    pub rate_limit_strikes: u32,
    pub read_buffer_bytes: usize,
    /// Answer permessage-deflate offers (RFC 7692, without context takeover).
    pub compression: bool,
    /// Messages shorter than this go uncompressed even when compression was negotiated.
    pub compression_min_bytes: u32,
    /// zlib level of what is compressed: 1 fastest … 9 smallest.
    pub compression_level: u8,
    pub hub_queue_capacity: usize,
    /// Fan-out threads (hub shards); 0 = one per CPU core.
    pub hub_threads: usize,
    /// How long a hub shard may hold a final candle back so it rides along with the series' next update
    /// in one write (ms); 0 = send finals at once.
    pub final_hold_ms: u64,
    /// Candles a hub shard re-reads of a series per round when it catches up from the store.
    pub hub_resync_page: usize,
    /// Return freed heap memory to the OS once this many connections have closed since the peak; 0 = never.
    pub memory_trim_after_closes: u64,
}

/// The Socket.IO endpoint (`/socket.io`, namespace `/kline`) of the existing Spin Pet front-ends.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SocketIoConfig {
    pub enabled: bool,
    /// Seconds between Engine.IO pings.
    pub ping_interval_secs: u64,
    /// Seconds to wait for a pong before the connection is closed.
    pub ping_timeout_secs: u64,
    /// Largest packet accepted from a client, and largest polling payload, in bytes (a larger websocket
    /// message on the server's own transport closes the connection with 1009).
    pub max_payload_bytes: u64,
    /// Packets socketioxide's buffer holds for one socket; beyond, they wait in the socket's backlog.
    pub max_buffer_packets: usize,
    /// Packets one socket's backlog may hold (after newer updates replaced older ones of the same candle);
    /// beyond, the client is too slow and is disconnected (see docs/protocol.md "A slow client"). On the
    /// server's own websocket transport, with `max_backlog_bytes`, the bound of its outbox (then 4008).
    pub max_backlog_packets: usize,
    /// Payload bytes one socket's backlog may hold (a packet is always taken when nothing waits); beyond,
    /// the client is too slow.
    pub max_backlog_bytes: usize,
    /// Requests one socket may have waiting to be handled; beyond, error 1004.
    pub request_queue: usize,
}

/// Which parts of the server this process runs (docs/scaling.md).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    pub role: Role,
    /// Roles `writer` and `edge`: `host:port` of the internal listener, which alone serves `/internal/*`
    /// (the snapshot edges load). Empty: no internal listener.
    pub internal_addr: String,
    /// Bearer token the internal listener requires, and an edge presents to `stream.snapshot_url`; empty:
    /// none. `KLINE_INTERNAL_TOKEN` sets it too.
    pub internal_token: String,
    /// Whether the internal listener speaks TLS, with `server.tls`'s certificate and key.
    pub internal_tls: bool,
    /// Snapshots served at once; more get 503 with `Retry-After`.
    pub snapshot_concurrency: usize,
    /// A snapshot whose reader takes no frame for this long is cut off (the reader sees no end frame).
    pub snapshot_write_timeout_secs: u64,
}

/// A process's role: everything in one process, or one writer and many edges over a stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Sources, pipeline, store and push in one process (the default).
    All,
    /// Sources, HTTP ingest, pipeline, the authoritative store and the stream publisher; no push.
    Writer,
    /// A replica fed from the stream; `/ws`, Socket.IO and the REST reads.
    Edge,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PipelineConfig {
    pub queue_capacity: usize,
    pub max_batch_events: usize,
    /// Events pushed before their block position is known, at most (see `kline_pipeline::provisional`).
    pub provisional_max_events: usize,
    /// How long a provisional event counts in its candles if it is never stored, in milliseconds.
    pub provisional_ttl_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IngestConfig {
    pub enabled: bool,
    pub token: String,
    pub max_body_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SourcesConfig {
    pub simulator: SimulatorConfig,
    pub solana: SolanaConfig,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SolanaConfig {
    pub enabled: bool,
    /// `ws://` or `wss://`; an API key may sit in its path or query (logged redacted).
    pub ws_url: String,
    /// `http://` or `https://`; an API key may sit in its path or query (logged redacted).
    pub rpc_url: String,
    /// Extra CA certificates (PEM) trusted for the node, beside the system's; empty: none.
    pub ca_file: PathBuf,
    /// HTTP headers sent with every request to the node (the WebSocket handshake and each JSON-RPC call),
    /// e.g. `Authorization` or `x-token`; never logged.
    #[serde(default)]
    pub headers: HttpHeaders,
    pub program_id: String,
    pub commitment: String,
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
    pub ping_interval_secs: u64,
    pub backfill_page: usize,
    /// Most signatures one backfill stores: the older rest of a longer gap is skipped and recorded.
    pub max_backfill: u64,
    pub block_cache_slots: usize,
    /// Slots whose block is fetched at once.
    pub block_concurrency: usize,
    /// Passing RPC errors (429, "Block not available", a lost connection) are retried without limit,
    /// from `retry_min_ms` doubling to `retry_max_ms`, jittered.
    pub retry_min_ms: u64,
    pub retry_max_ms: u64,
    /// JSON-RPC calls per second to the node (a public node's limit); 0: unlimited.
    pub requests_per_sec: u32,
    /// Transactions heard but not yet stored; when full, the source stops reading notifications.
    pub max_waiting_transactions: usize,
    /// A notification joins the provisional push of the previous one if it arrives within this many ms
    /// (0: only those already read); see `kline-server`'s `source::solana::gather`.
    pub gather_idle_ms: u64,
    /// Longest a provisional push waits for more notifications after its first (those already read join
    /// regardless).
    pub gather_max_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SimulatorConfig {
    pub enabled: bool,
    pub mints: usize,
    pub events_per_sec: f64,
    pub seed: u64,
}

impl Config {
    /// The defaults of `config/default.toml`.
    pub fn defaults() -> Config {
        ConfigLayers::new()
            .build()
            .expect("config/default.toml is valid")
    }

    pub fn bind_addr(&self) -> Result<SocketAddr, ConfigError> {
        format!("{}:{}", self.server.host, self.server.port)
            .parse()
            .map_err(|err| ConfigError::invalid("server.host", format!("{err}")))
    }

    /// The ingest token, if ingest is on and a token is set; `None` means the route is off.
    pub fn ingest_token(&self) -> Option<&str> {
        (self.ingest.enabled && !self.ingest.token.is_empty()).then_some(self.ingest.token.as_str())
    }

    /// The internal listener's address, if there is one.
    pub fn internal_addr(&self) -> Result<Option<SocketAddr>, ConfigError> {
        let addr = self.node.internal_addr.trim();
        if addr.is_empty() {
            return Ok(None);
        }
        addr.parse().map(Some).map_err(|err| {
            ConfigError::invalid("node.internal_addr", format!("{err} (want host:port)"))
        })
    }

    /// The token an edge presents to `stream.snapshot_url`: `stream.snapshot_token`, else
    /// `node.internal_token`; `None`: none.
    pub fn snapshot_token(&self) -> Option<&str> {
        [&self.stream.snapshot_token, &self.node.internal_token]
            .into_iter()
            .find(|token| !token.is_empty())
            .map(String::as_str)
    }

    /// The internal listener's token; `None`: requests need none.
    pub fn internal_token(&self) -> Option<&str> {
        (!self.node.internal_token.is_empty()).then_some(self.node.internal_token.as_str())
    }

    fn validate_node(&self) -> Result<(), ConfigError> {
        self.internal_addr()?;
        if self.node.snapshot_concurrency == 0 {
            return Err(ConfigError::invalid(
                "node.snapshot_concurrency",
                "must be positive",
            ));
        }
        if self.node.snapshot_write_timeout_secs == 0 {
            return Err(ConfigError::invalid(
                "node.snapshot_write_timeout_secs",
                "must be positive",
            ));
        }
        Ok(())
    }

    /// Checks what types alone cannot.
    fn validate(&self) -> Result<(), ConfigError> {
        if let Some((key, reason)) = self.retention.problem() {
            return Err(ConfigError::invalid(key, reason));
        }
        if let Some((key, reason)) = self.rest.problem() {
            return Err(ConfigError::invalid(key, reason));
        }
        let ws = &self.websocket;
        let sio = &self.socketio;
        if let Some((key, reason)) = self.stream.problem() {
            return Err(ConfigError::invalid(key, reason));
        }
        let checks: [(&str, bool, &str); 28] = [
            (
                "socketio.ping_interval_secs",
                sio.ping_interval_secs > 0,
                "must be positive",
            ),
            (
                "socketio.ping_timeout_secs",
                sio.ping_timeout_secs > 0,
                "must be positive",
            ),
            (
                "socketio.max_buffer_packets",
                sio.max_buffer_packets > 0,
                "must be positive",
            ),
            (
                "socketio.max_backlog_packets",
                sio.max_backlog_packets > 0,
                "must be positive",
            ),
            (
                "socketio.max_backlog_bytes",
                sio.max_backlog_bytes > 0,
                "must be positive",
            ),
            (
                "socketio.request_queue",
                sio.request_queue > 0,
                "must be positive",
            ),
            (
                "websocket.outbox_max_bytes",
                ws.outbox_max_bytes > 0,
                "must be positive",
            ),
            (
                "websocket.max_concurrent_history_reads",
                ws.max_concurrent_history_reads > 0,
                "must be positive",
            ),
            (
                "server.max_header_bytes",
                self.server.max_header_bytes >= MIN_HEAD_BYTES,
                "must be at least 8192",
            ),
            (
                "server.max_headers",
                self.server.max_headers > 0,
                "must be positive",
            ),
            (
                "server.header_read_timeout_secs",
                self.server.header_read_timeout_secs > 0,
                "must be positive",
            ),
            (
                "kline.connection_timeout",
                self.kline.connection_timeout > 0,
                "must be positive",
            ),
            (
                "websocket.ping_interval",
                ws.ping_interval > 0,
                "must be positive",
            ),
            (
                "websocket.compression_level",
                (1..=9).contains(&ws.compression_level),
                "must be from 1 (fastest) to 9 (smallest)",
            ),
            (
                "websocket.outbox_capacity",
                ws.outbox_capacity > 0,
                "must be positive",
            ),
            (
                "websocket.hub_resync_page",
                ws.hub_resync_page > 0,
                "must be positive",
            ),
            (
                "websocket.hub_queue_capacity",
                ws.hub_queue_capacity > 0,
                "must be positive",
            ),
            (
                "websocket.rate_limit_per_sec",
                ws.rate_limit_per_sec.is_finite() && ws.rate_limit_per_sec > 0.0,
                "must be a positive number",
            ),
            (
                "websocket.rate_limit_burst",
                ws.rate_limit_burst > 0,
                "must be positive",
            ),
            (
                "kline.intervals",
                !self.kline.intervals.is_empty(),
                "must list at least one interval",
            ),
            (
                "kline.history_data_limit",
                (1..=MAX_HISTORY_LIMIT).contains(&self.kline.history_data_limit),
                "must be between 1 and 1000",
            ),
            (
                "kline.price_scale_decimals",
                self.kline.price_scale_decimals <= 38,
                "must be at most 38",
            ),
            (
                "kline.broadcast_buffer_size",
                self.kline.broadcast_buffer_size > 0,
                "must be positive",
            ),
            (
                "pipeline.queue_capacity",
                self.pipeline.queue_capacity > 0,
                "must be positive",
            ),
            (
                "pipeline.max_batch_events",
                self.pipeline.max_batch_events > 0,
                "must be positive",
            ),
            (
                "storage.max_open_files",
                self.storage.max_open_files >= 16,
                "must be at least 16",
            ),
            (
                "source.simulator.events_per_sec",
                self.source.simulator.events_per_sec.is_finite()
                    && self.source.simulator.events_per_sec > 0.0,
                "must be a positive number",
            ),
            (
                "source.simulator.mints",
                self.source.simulator.mints > 0,
                "must be positive",
            ),
        ];
        if let Some((key, _, reason)) = checks.into_iter().find(|(_, ok, _)| !ok) {
            return Err(ConfigError::invalid(key, reason));
        }
        self.validate_node()?;
        let solana = &self.source.solana;
        if !matches!(
            solana.commitment.as_str(),
            "processed" | "confirmed" | "finalized"
        ) {
            return Err(ConfigError::invalid(
                "source.solana.commitment",
                format!(
                    "`{}`: expected processed, confirmed or finalized",
                    solana.commitment
                ),
            ));
        }
        if kline_protocol::Symbol::parse(&solana.program_id).is_err() {
            return Err(ConfigError::invalid(
                "source.solana.program_id",
                "must be a base58 public key",
            ));
        }
        if !(1..=1000).contains(&solana.backfill_page) {
            return Err(ConfigError::invalid(
                "source.solana.backfill_page",
                "must be between 1 and 1000",
            ));
        }
        if solana.block_cache_slots == 0 {
            return Err(ConfigError::invalid(
                "source.solana.block_cache_slots",
                "must be at least 1",
            ));
        }
        if solana.gather_max_ms > 1000 {
            return Err(ConfigError::invalid(
                "source.solana.gather_max_ms",
                "must be at most 1000 (a push held longer is no longer live)",
            ));
        }
        endpoints::validate(self)?;
        if let CorsOrigins::Keyword(word) = &self.server.cors_allowed_origins
            && word != "permissive"
        {
            return Err(ConfigError::invalid(
                "server.cors_allowed_origins",
                format!("`{word}`: expected \"permissive\" or a list of origins"),
            ));
        }
        self.bind_addr().map(|_| ())
    }
}
