//! The stream from the writer to the edges (issue 16, docs/scaling.md): each committed write group of the
//! writer becomes one numbered entry of a Redis stream; edges apply the entries to their replica in order.
//!
//! - [`record`]: the entry's content (the group's candles, trades, events, symbol stats) and its encoding.
//! - [`outbox`]: the writer side of the pipeline's write: the group's record and its sequence number go
//!   into the same RocksDB write as the group (no gap, no duplicate after a crash).
//! - [`publisher`]: the writer's task that appends the outbox to the stream, in order, and republishes the
//!   missing tail after a crash or a Redis restart.
//! - [`apply`]: the edge's replica: records and snapshot frames into the local store, then to the local hub.
//! - [`replica`]: the edge's task: reads the stream (or a snapshot when the stream has a gap) into [`apply`].
//! - [`redis`]: the stream engine (Redis Streams), four operations.
//! - [`snapshot`]: `GET /internal/snapshot`, what a new or far-behind edge loads before reading the stream.
//! - [`StreamStatus`]: sequence numbers and readiness, read by `/ready` and `/metrics`.

pub mod apply;
pub mod outbox;
pub mod publisher;
pub mod record;
pub mod redis;
pub mod replica;
pub mod snapshot;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;

use crate::stats::LatencyHistogram;

/// Why an edge is not ready to serve clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the replica has not been loaded yet")]
    NoReplica,
    #[error("the replica is {lag} groups behind the stream (limit {limit})")]
    Lagging { lag: u64, limit: u64 },
}

/// The stream's sequence numbers as this node sees them. Shared by the stream tasks (writers of it),
/// `/ready` and `/metrics`.
#[derive(Debug, Default)]
pub struct StreamStatus {
    /// Writer: the newest group number committed to the outbox.
    pub committed_seq: Gauge,
    /// Writer: the newest group number Redis acknowledged.
    pub published_seq: Gauge,
    /// Edge: the newest group number applied to the replica.
    pub applied_seq: Gauge,
    /// Edge: the newest group number the stream holds, as last seen.
    pub head_seq: Gauge,
    /// Edge: snapshots loaded since start.
    pub snapshots_loaded: Gauge,
    /// Whether the connection to Redis is up.
    pub redis_connected: Gauge,
    /// Edge: candle states written to the replica (newer than the stored ones).
    pub candle_updates_applied: Counter,
    /// Writer: bytes of records appended to the stream (republished ones included).
    pub published_bytes: Counter,
    /// Edge: from the writer sealing a group to the edge's write of it (outbox, publisher, Redis, read,
    /// apply): the hop the stream adds before the edge's hub. Clocks of different machines must agree.
    pub hop: LatencyHistogram,
    replica_loaded: AtomicBool,
    head: AtomicU64,
}

impl StreamStatus {
    /// Edge: whether the replica holds a consistent state (its own from before, or a snapshot).
    pub fn set_replica_loaded(&self, loaded: bool) {
        self.replica_loaded.store(loaded, Ordering::Release);
    }

    /// Edge: whether the replica holds a consistent state.
    pub fn replica_loaded(&self) -> bool {
        self.replica_loaded.load(Ordering::Acquire)
    }

    /// Edge: records the newest group number the stream holds.
    pub fn set_head(&self, seq: u64) {
        let head = self.head.fetch_max(seq, Ordering::AcqRel).max(seq);
        self.head_seq.set(head as i64);
    }

    /// Edge: records that groups up to `seq` are applied.
    pub fn set_applied(&self, seq: u64) {
        self.applied_seq.set(seq as i64);
        self.set_head(seq);
    }

    /// Groups the stream holds that the replica has not applied.
    pub fn lag(&self) -> u64 {
        let applied = self.applied_seq.get().max(0) as u64;
        self.head.load(Ordering::Acquire).saturating_sub(applied)
    }

    /// Edge: whether it may serve clients (`/ready`, `/ws`).
    pub fn readiness(&self, max_lag_groups: u64) -> Result<(), NotReady> {
        if !self.replica_loaded() {
            return Err(NotReady::NoReplica);
        }
        match self.lag() {
            lag if lag > max_lag_groups => Err(NotReady::Lagging {
                lag,
                limit: max_lag_groups,
            }),
            _ => Ok(()),
        }
    }

    /// Registers the gauges under `stream_*`.
    pub fn register(&self, registry: &mut Registry) {
        let gauges = [
            (
                "stream_committed_seq",
                "Writer: newest group number in the outbox",
                &self.committed_seq,
            ),
            (
                "stream_published_seq",
                "Writer: newest group number Redis acknowledged",
                &self.published_seq,
            ),
            (
                "stream_applied_seq",
                "Edge: newest group number applied to the replica",
                &self.applied_seq,
            ),
            (
                "stream_head_seq",
                "Edge: newest group number the stream holds, as last seen",
                &self.head_seq,
            ),
            (
                "stream_snapshots_loaded",
                "Edge: snapshots loaded since start",
                &self.snapshots_loaded,
            ),
            (
                "stream_redis_connected",
                "1 while the connection to Redis is up",
                &self.redis_connected,
            ),
        ];
        for (name, help, gauge) in gauges {
            registry.register(name, help, gauge.clone());
        }
        registry.register(
            "stream_candle_updates_applied",
            "Edge: candle states written to the replica",
            self.candle_updates_applied.clone(),
        );
        registry.register(
            "stream_hop_seconds",
            "Edge: from the writer sealing a group to its write on this edge's replica",
            self.hop.clone(),
        );
        registry.register(
            "stream_published_bytes",
            "Writer: bytes of group records appended to the stream",
            self.published_bytes.clone(),
        );
    }
}

#[cfg(test)]
mod tests;

#[cfg(test)]
mod readiness_tests {
    use super::*;

    #[test]
    fn an_edge_is_ready_once_loaded_and_only_while_its_lag_is_within_the_bound() {
        let status = StreamStatus::default();
        assert_eq!(status.readiness(5), Err(NotReady::NoReplica));
        status.set_replica_loaded(true);
        status.set_head(10);
        status.set_applied(2);
        assert_eq!(
            status.readiness(5),
            Err(NotReady::Lagging { lag: 8, limit: 5 })
        );
        status.set_applied(5);
        assert_eq!(status.readiness(5), Ok(()));
        // The head never goes back (a stream read that ends early does not hide the lag).
        status.set_head(3);
        assert_eq!(status.lag(), 5);
        status.set_replica_loaded(false);
        assert_eq!(status.readiness(5), Err(NotReady::NoReplica));
    }
}
