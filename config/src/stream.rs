//! `[stream]`: the writer → edges stream over Redis Streams (roles `writer` and `edge`), its limits, the
//! edge's readiness policy and the timeouts of its connections. Design: docs/scaling.md.

use std::path::PathBuf;
use std::time::Duration;

use serde::Deserialize;

/// The stream from the writer to the edges (Redis Streams), used by the roles `writer` and `edge`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StreamConfig {
    /// The Redis server: `redis://host:port/db`, or `rediss://` for TLS.
    pub redis_url: String,
    /// Extra CA certificates (PEM) trusted for `rediss://`, beside the system's; empty: none.
    pub redis_ca_file: PathBuf,
    /// The stream's key.
    pub key: String,
    /// Groups the stream keeps (`XADD … MAXLEN ~`) and the writer's outbox retains for republishing.
    pub max_len: u64,
    /// Edge: most stream entries read and applied in one replica write.
    pub read_count: usize,
    /// Edge: `/ready` fails (and `/ws` refuses) while the edge is more than this many groups behind.
    pub max_lag_groups: u64,
    /// Edge: after this long without a successful read from Redis the edge is *stale* (`/health` says so).
    pub stale_after_ms: u64,
    /// Edge: whether a stale edge stays ready ([`StalePolicy`]).
    pub stale_policy: StalePolicy,
    /// Connecting to Redis, and any reply beyond a blocking read's own wait, may take at most this long.
    pub redis_timeout_ms: u64,
    /// Edge: base URL of a node serving `/internal/snapshot` (the writer or another edge), used when the
    /// stream no longer holds the groups the replica needs. Empty: the edge waits and reports not ready.
    pub snapshot_url: String,
    /// Extra CA certificates (PEM) trusted for an `https://` snapshot URL, beside the system's; empty: none.
    pub snapshot_ca_file: PathBuf,
    /// Bearer token sent to `snapshot_url`; empty: `node.internal_token` (one secret for the cluster).
    pub snapshot_token: String,
    /// Edge: a snapshot download's TCP (and TLS) connect may take at most this long.
    pub snapshot_connect_timeout_ms: u64,
    /// Edge: a snapshot download fails when no byte of it arrives for this long (retried with backoff).
    pub snapshot_read_timeout_ms: u64,
    /// Reconnect backoff towards Redis and between snapshot attempts, milliseconds: doubling from min to
    /// max, each delay jittered up to twice as long.
    pub reconnect_min_ms: u64,
    pub reconnect_max_ms: u64,
}

/// What an edge's readiness does while it is stale (no successful read from Redis for
/// `stream.stale_after_ms`). The trade-off (docs/scaling.md, "Readiness"): Redis going away makes every
/// edge stale at the same moment, so draining stale edges takes the whole service down; serving keeps
/// history and open connections up while updates pause.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StalePolicy {
    /// Stay ready: `/health` reports the staleness; the load balancer keeps the edge. The default.
    Serve,
    /// `/ready` answers 503 while stale: for fleets whose edges read different Redis replicas, where one
    /// replica's edges going stale leaves the others fresh to take their clients.
    Unready,
}

impl StalePolicy {
    pub fn name(self) -> &'static str {
        match self {
            StalePolicy::Serve => "serve",
            StalePolicy::Unready => "unready",
        }
    }
}

/// How long an edge's blocking read waits for new entries before it returns empty (a successful read).
pub const READ_BLOCK: Duration = Duration::from_millis(1000);

impl StreamConfig {
    pub fn stale_after(&self) -> Duration {
        Duration::from_millis(self.stale_after_ms)
    }

    pub fn redis_timeout(&self) -> Duration {
        Duration::from_millis(self.redis_timeout_ms)
    }

    /// The first key whose value is out of range, and why.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        let checks = [
            ("stream.max_len", self.max_len > 0, "must be positive"),
            ("stream.read_count", self.read_count > 0, "must be positive"),
            (
                "stream.reconnect_min_ms",
                self.reconnect_min_ms > 0 && self.reconnect_min_ms <= self.reconnect_max_ms,
                "must be positive and at most stream.reconnect_max_ms",
            ),
            ("stream.key", !self.key.is_empty(), "must not be empty"),
            (
                "stream.stale_after_ms",
                self.stale_after() > READ_BLOCK,
                "must be more than 1000: an idle blocking read succeeds once a second",
            ),
            (
                "stream.redis_timeout_ms",
                self.redis_timeout_ms > 0,
                "must be positive",
            ),
            (
                "stream.snapshot_connect_timeout_ms",
                self.snapshot_connect_timeout_ms > 0,
                "must be positive",
            ),
            (
                "stream.snapshot_read_timeout_ms",
                self.snapshot_read_timeout_ms > 0,
                "must be positive",
            ),
        ];
        checks
            .into_iter()
            .find(|(_, ok, _)| !ok)
            .map(|(key, _, reason)| (key, reason))
    }
}
