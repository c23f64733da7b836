//! [`StreamStatus`]: the stream's numbers and health as this node sees them, and the edge's readiness rule
//! over them ([`ReadinessPolicy`]). Written by the stream tasks; read by `/ready`, `/health` and `/metrics`.
//!
//! An edge is ready when, in this order:
//! 1. its replica holds a consistent state (its own from before, an empty stream, or a snapshot);
//! 2. it has read the stream's head (newest group number) since it started — until then its lag is
//!    unknown, however far behind it came back;
//! 3. it is at most `stream.max_lag_groups` groups behind that head;
//! 4. with `stream.stale_policy = "unready"` only: it has read from Redis within `stream.stale_after_ms`.
//!    With `"serve"` (the default) a stale edge stays ready and `/health` says how stale it is.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use serde_json::{Value, json};

use kline_config::{StalePolicy, StreamConfig};
use kline_core::stats::LatencyHistogram;

/// Why an edge is not ready to serve clients.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotReady {
    #[error("the replica has not been loaded yet")]
    NoReplica,
    #[error("the stream's head has not been read since start")]
    HeadUnknown,
    #[error("the replica is {lag} groups behind the stream (limit {limit})")]
    Lagging { lag: u64, limit: u64 },
    #[error("no successful read from Redis for {stale_ms} ms (stream.stale_after_ms = {limit_ms})")]
    Stale { stale_ms: u64, limit_ms: u64 },
}

/// What an edge's readiness requires (from `[stream]`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReadinessPolicy {
    pub max_lag_groups: u64,
    pub stale_after: Duration,
    pub stale_policy: StalePolicy,
}

impl ReadinessPolicy {
    pub fn of(config: &StreamConfig) -> ReadinessPolicy {
        ReadinessPolicy {
            max_lag_groups: config.max_lag_groups,
            stale_after: config.stale_after(),
            stale_policy: config.stale_policy,
        }
    }
}

/// When the edge last read from Redis successfully, on a monotonic clock.
#[derive(Debug)]
struct LastRead {
    origin: Instant,
    /// Milliseconds from `origin` to the last read, plus one; 0: never.
    at: AtomicU64,
}

impl Default for LastRead {
    fn default() -> LastRead {
        LastRead {
            origin: Instant::now(),
            at: AtomicU64::new(0),
        }
    }
}

impl LastRead {
    fn note(&self, now: Instant) {
        let at = now.saturating_duration_since(self.origin).as_millis() as u64 + 1;
        self.at.fetch_max(at, Ordering::AcqRel);
    }

    fn age(&self, now: Instant) -> Option<Duration> {
        match self.at.load(Ordering::Acquire) {
            0 => None,
            at => Some(now.saturating_duration_since(self.origin + Duration::from_millis(at - 1))),
        }
    }
}

/// The stream's sequence numbers as this node sees them. Shared by the stream tasks (writers of it),
/// `/ready`, `/health` and `/metrics`.
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
    /// Edge: snapshot downloads that failed (each is retried).
    pub snapshot_failures: Counter,
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
    head_read: AtomicBool,
    head: AtomicU64,
    /// The writer's epoch, or the epoch of the edge's replica ([`epoch`](super::epoch)).
    epoch: AtomicU64,
    last_read: LastRead,
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

    /// Edge: the stream's head as Redis just answered it (it may be lower than before: Redis lost data,
    /// or the writer started a new epoch).
    pub fn observe_head(&self, seq: u64) {
        self.head.store(seq, Ordering::Release);
        self.head_seq.set(seq as i64);
        self.head_read.store(true, Ordering::Release);
    }

    /// Edge: a read brought groups up to `seq`; the head is at least there (a read that ends early does not
    /// hide a head seen before).
    pub fn raise_head(&self, seq: u64) {
        let head = self.head.fetch_max(seq, Ordering::AcqRel).max(seq);
        self.head_seq.set(head as i64);
    }

    /// Edge: records that groups up to `seq` are applied.
    pub fn set_applied(&self, seq: u64) {
        self.applied_seq.set(seq as i64);
    }

    /// Edge: a read from Redis succeeded now (an empty one too: the stream had nothing newer).
    pub fn note_read(&self) {
        self.last_read.note(Instant::now());
    }

    pub fn set_epoch(&self, epoch: u64) {
        self.epoch.store(epoch, Ordering::Release);
    }

    pub fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// Groups the stream holds that the replica has not applied.
    pub fn lag(&self) -> u64 {
        let applied = self.applied_seq.get().max(0) as u64;
        self.head.load(Ordering::Acquire).saturating_sub(applied)
    }

    /// Edge: whether it may serve clients (`/ready`, `/ws`).
    pub fn readiness(&self, policy: &ReadinessPolicy) -> Result<(), NotReady> {
        self.readiness_at(policy, Instant::now())
    }

    fn readiness_at(&self, policy: &ReadinessPolicy, now: Instant) -> Result<(), NotReady> {
        if !self.replica_loaded() {
            return Err(NotReady::NoReplica);
        }
        if !self.head_read.load(Ordering::Acquire) {
            return Err(NotReady::HeadUnknown);
        }
        let lag = self.lag();
        if lag > policy.max_lag_groups {
            return Err(NotReady::Lagging {
                lag,
                limit: policy.max_lag_groups,
            });
        }
        match self.staleness(policy, now) {
            Some(stale) if policy.stale_policy == StalePolicy::Unready => Err(NotReady::Stale {
                stale_ms: stale.as_millis() as u64,
                limit_ms: policy.stale_after.as_millis() as u64,
            }),
            _ => Ok(()),
        }
    }

    /// How long since the last successful read, once that is more than `stale_after` (or since start,
    /// when the edge never read).
    fn staleness(&self, policy: &ReadinessPolicy, now: Instant) -> Option<Duration> {
        let age = self
            .last_read
            .age(now)
            .unwrap_or_else(|| now.saturating_duration_since(self.last_read.origin));
        (age > policy.stale_after).then_some(age)
    }

    /// The numbers `/health` shows; with the edge's `policy`, its staleness too.
    pub fn health(&self, policy: Option<&ReadinessPolicy>) -> Value {
        let mut body = json!({
            "committed_seq": self.committed_seq.get(),
            "published_seq": self.published_seq.get(),
            "applied_seq": self.applied_seq.get(),
            "head_seq": self.head_seq.get(),
            "lag_groups": self.lag(),
            "snapshots_loaded": self.snapshots_loaded.get(),
            "snapshot_failures": self.snapshot_failures.get(),
            "redis_connected": self.redis_connected.get() == 1,
            "epoch": format!("{:016x}", self.epoch()),
        });
        if let Some(policy) = policy {
            let now = Instant::now();
            let age = self.last_read.age(now);
            body["head_read"] = json!(self.head_read.load(Ordering::Acquire));
            body["last_read_ago_ms"] = json!(age.map(|age| age.as_millis() as u64));
            body["stale"] = json!(self.staleness(policy, now).is_some());
            body["stale_after_ms"] = json!(policy.stale_after.as_millis() as u64);
            body["stale_policy"] = json!(policy.stale_policy.name());
        }
        body
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
        let counters = [
            (
                "stream_candle_updates_applied",
                "Edge: candle states written to the replica",
                &self.candle_updates_applied,
            ),
            (
                "stream_published_bytes",
                "Writer: bytes of group records appended to the stream",
                &self.published_bytes,
            ),
            (
                "stream_snapshot_failures",
                "Edge: snapshot downloads that failed and were retried",
                &self.snapshot_failures,
            ),
        ];
        for (name, help, counter) in counters {
            registry.register(name, help, counter.clone());
        }
        registry.register(
            "stream_hop_seconds",
            "Edge: from the writer sealing a group to its write on this edge's replica",
            self.hop.clone(),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(stale_policy: StalePolicy) -> ReadinessPolicy {
        ReadinessPolicy {
            max_lag_groups: 5,
            stale_after: Duration::from_secs(10),
            stale_policy,
        }
    }

    #[test]
    fn an_edge_is_ready_once_loaded_and_the_head_read_and_only_while_its_lag_is_within_the_bound() {
        let status = StreamStatus::default();
        let policy = policy(StalePolicy::Serve);
        assert_eq!(status.readiness(&policy), Err(NotReady::NoReplica));
        // A restarted edge: its own replica is loaded, but how far the stream went meanwhile is unknown.
        status.set_replica_loaded(true);
        status.set_applied(2);
        assert_eq!(status.readiness(&policy), Err(NotReady::HeadUnknown));
        status.observe_head(10);
        assert_eq!(
            status.readiness(&policy),
            Err(NotReady::Lagging { lag: 8, limit: 5 })
        );
        status.set_applied(5);
        assert_eq!(status.readiness(&policy), Ok(()));
        // A read that ends early does not hide the lag; Redis answering a lower head does (it lost data).
        status.raise_head(3);
        assert_eq!(status.lag(), 5);
        status.observe_head(4);
        assert_eq!(status.lag(), 0);
        status.set_replica_loaded(false);
        assert_eq!(status.readiness(&policy), Err(NotReady::NoReplica));
    }

    #[test]
    fn a_stale_edge_stays_ready_or_not_as_the_policy_says_and_recovers_with_a_read() {
        let status = StreamStatus::default();
        status.set_replica_loaded(true);
        status.observe_head(0);
        let start = status.last_read.origin;
        status.last_read.note(start + Duration::from_secs(1));
        let fresh = start + Duration::from_secs(11);
        let stale = start + Duration::from_secs(12);
        for stale_policy in [StalePolicy::Serve, StalePolicy::Unready] {
            let policy = policy(stale_policy);
            assert_eq!(status.readiness_at(&policy, fresh), Ok(()));
            assert_eq!(
                status.staleness(&policy, stale),
                Some(Duration::from_secs(11))
            );
        }
        assert_eq!(
            status.readiness_at(&policy(StalePolicy::Serve), stale),
            Ok(())
        );
        assert_eq!(
            status.readiness_at(&policy(StalePolicy::Unready), stale),
            Err(NotReady::Stale {
                stale_ms: 11_000,
                limit_ms: 10_000
            })
        );
        status.last_read.note(stale);
        assert_eq!(
            status.readiness_at(&policy(StalePolicy::Unready), stale),
            Ok(())
        );
        // An edge that never read is as stale as it is old.
        let never = StreamStatus::default();
        let later = never.last_read.origin + Duration::from_secs(20);
        assert!(
            never
                .staleness(&policy(StalePolicy::Serve), later)
                .is_some()
        );
    }
}
