//! The edge's replica task: reads the stream after the newest applied group and hands each read to
//! [`Replica::apply`] (one RocksDB write, then the local hub). What it may apply is `crate::continuity`'s
//! rule: the next group of the replica's epoch. At a break — the stream no longer reaches back to the
//! group after the applied one (a new edge after the stream was trimmed, an edge down for long, Redis
//! restarted empty), a gap in the middle of a read, an entry that does not decode, or another epoch (the
//! writer's store was wiped or restored) — it applies what continues, then loads a snapshot from
//! `stream.snapshot_url` (retried with jittered backoff until one loads) and reads on from the snapshot's
//! group.
//!
//! It keeps [`StreamStatus`] up to date for `/ready` and `/health`: the replica is *loaded* once it holds
//! a consistent state; the stream's head is read first thing on every connection (readiness waits for
//! it: a restarted edge does not know how far behind it came back until then), and again whenever a read
//! comes back full or empty; every successful read is noted (staleness).

use kline_tls::Redacted;
use std::sync::Arc;
use std::time::Duration;

use backon::RetryableWithContext;
use tokio_util::sync::CancellationToken;

use super::apply::{ApplyError, Replica};
use super::backoff;
use super::continuity::{self, AtHead};
use super::redis::{RedisStream, StreamError};
use super::snapshot::{self, Loaded, SnapshotError};
use kline_config::StreamConfig;
use kline_pipeline::feed::CandleFeed;
use kline_store::CandleStore;
use kline_store::replication::StreamStatus;

#[derive(Debug, thiserror::Error)]
enum FollowError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Apply(#[from] ApplyError),
}

/// Applies the stream until `shutdown` is cancelled, on a thread of its own with a single-threaded runtime,
/// so reading and applying never queue behind the connection tasks on tokio's shared workers — and the
/// replica's RocksDB writes may block this thread, which does nothing else.
pub fn spawn(
    store: Arc<CandleStore>,
    feed: CandleFeed,
    config: StreamConfig,
    status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) -> std::thread::JoinHandle<()> {
    kline_core::own_thread::spawn("kline-replica", move || {
        run(store, feed, config, status, shutdown)
    })
}

async fn run(
    store: Arc<CandleStore>,
    feed: CandleFeed,
    config: StreamConfig,
    status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) {
    let mut replica = match Replica::open(store, feed, status.clone()) {
        Ok(replica) => replica,
        Err(err) => {
            tracing::error!(error = %err, "cannot open the replica; this edge stays not ready");
            return;
        }
    };
    // Groups applied before (this edge ran earlier) are a consistent state, however old.
    status.set_replica_loaded(replica.applied() > 0);
    loop {
        let Some(mut stream) = RedisStream::connect(&config, &shutdown).await else {
            return;
        };
        status.redis_connected.set(1);
        let outcome = follow(&mut replica, &mut stream, &config, &status, &shutdown).await;
        status.redis_connected.set(0);
        match outcome {
            Ok(()) => return,
            Err(err) => tracing::warn!(error = %err, "following the stream failed; reconnecting"),
        }
        // Every edge loses Redis at the same moment: a jittered pause keeps them from coming back in step.
        if !backoff::pause(backoff::first_delay(&config), &shutdown).await {
            return;
        }
    }
}

/// Reads and applies until shutdown (`Ok`) or a stream error.
async fn follow(
    replica: &mut Replica,
    stream: &mut RedisStream,
    config: &StreamConfig,
    status: &StreamStatus,
    shutdown: &CancellationToken,
) -> Result<(), FollowError> {
    let mut count = config.read_count;
    let snapshot_source = !config.snapshot_url.is_empty();
    // Readiness waits for this first read of the head: how far the stream went while this edge was away.
    let mut head_due = true;
    loop {
        if std::mem::take(&mut head_due) {
            let head = stream.head().await?;
            status.note_read();
            status.observe_head(head.seq);
            let loaded = status.replica_loaded();
            match continuity::at_head(replica.position(), loaded, head, snapshot_source) {
                AtHead::Follow => {}
                AtHead::Loaded => status.set_replica_loaded(true),
                AtHead::Snapshot { epoch } => {
                    if let Some(epoch) = epoch {
                        tracing::warn!(
                            applied = replica.applied(),
                            epoch = %kline_store::replication::epoch::hex(replica.position().epoch),
                            stream_epoch = %kline_store::replication::epoch::hex(epoch),
                            "the stream is of another epoch (the writer's store was wiped or restored); \
                             loading a snapshot"
                        );
                    }
                    if !repair(replica, config, status, shutdown, epoch).await {
                        return Ok(());
                    }
                    head_due = true;
                    continue;
                }
            }
        }
        let at = replica.position();
        let entries = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            entries = stream.read_after(at.seq, count) => entries?,
        };
        status.note_read();
        let Some(last) = entries.last() else {
            // Nothing new for a while: learn where the stream ends (it may be behind us after Redis lost
            // its data while the writer republishes, or of a new epoch).
            head_due = true;
            continue;
        };
        let bytes: usize = entries.iter().map(|entry| entry.record.len()).sum();
        let full = entries.len() >= count;
        count = next_read_count(count, bytes, full, config.read_count);
        if full {
            status.observe_head(stream.head().await?.seq);
        } else {
            status.raise_head(last.seq);
        }
        // What continues the replica is applied; a break after it calls for a snapshot, of its epoch.
        let (taken, broken) = continuity::continuing(at, &entries);
        let mut snapshot = broken.map(|broken| {
            tracing::warn!(
                applied = at.seq + taken as u64,
                reason = %broken,
                "the stream does not continue the replica; loading a snapshot"
            );
            broken.epoch()
        });
        let read = &entries[..taken];
        if !read.is_empty() {
            match replica.apply(read) {
                Ok(_) => status.set_replica_loaded(true),
                Err(ApplyError::Record(err)) => {
                    tracing::error!(error = %err, after = at.seq, "a stream entry cannot be applied; loading a snapshot");
                    snapshot = Some(read[0].epoch);
                }
                Err(err) => return Err(err.into()),
            }
        }
        if let Some(epoch) = snapshot {
            if !repair(replica, config, status, shutdown, Some(epoch)).await {
                return Ok(());
            }
            head_due = true;
        }
    }
}

/// The replica cannot go on from the stream: not ready until it has loaded a snapshot from
/// `stream.snapshot_url` (of `epoch`, when given), retried with jittered backoff (`stream.reconnect_*`)
/// until one loads; `false` on shutdown. Without a snapshot URL it logs, waits `stream.reconnect_max_ms`
/// and returns (the caller reads the stream again, finds the break again and comes back): such an edge
/// stays not ready.
async fn repair(
    replica: &mut Replica,
    config: &StreamConfig,
    status: &StreamStatus,
    shutdown: &CancellationToken,
    epoch: Option<u64>,
) -> bool {
    status.set_replica_loaded(false);
    if config.snapshot_url.is_empty() {
        tracing::error!(
            "the replica needs a snapshot but stream.snapshot_url is empty; this edge stays not ready"
        );
        let wait = Duration::from_millis(config.reconnect_max_ms);
        return backoff::pause(wait, shutdown).await;
    }
    let url = Redacted(&config.snapshot_url);
    let retrying = (move |replica| attempt(replica, config, epoch))
        .retry(backoff::policy(config))
        .sleep(tokio::time::sleep)
        .context(replica)
        .notify(|err: &SnapshotError, after: Duration| {
            status.snapshot_failures.inc();
            tracing::warn!(
                error = %err,
                url = %url,
                retry_in_ms = after.as_millis() as u64,
                "loading a snapshot failed; retrying"
            );
        });
    let (replica, loaded) = tokio::select! {
        _ = shutdown.cancelled() => return false,
        outcome = retrying => outcome,
    };
    let Ok(loaded) = loaded else {
        unreachable!("snapshots are retried without limit");
    };
    tracing::info!(
        seq = loaded.at.seq,
        epoch = %kline_store::replication::epoch::hex(loaded.at.epoch),
        series = loaded.changed.len(),
        url = %url,
        "snapshot loaded"
    );
    replica.resync(&loaded.changed);
    status.set_replica_loaded(true);
    true
}

/// One snapshot download into `replica`, which it hands back for the next attempt.
async fn attempt<'a>(
    replica: &'a mut Replica,
    config: &StreamConfig,
    epoch: Option<u64>,
) -> (&'a mut Replica, Result<Loaded, SnapshotError>) {
    let loaded = snapshot::load(config, replica, epoch).await;
    (replica, loaded)
}

/// About how many bytes of records one read should bring: full-speed ingest makes groups of megabytes,
/// and `stream.read_count` of those at once would be gigabytes in memory. Records are deflated and
/// inflate ~4–6× (`kline_store::replication::record`), so a read is held as ~20 MB once decoded.
const READ_BYTES: usize = 4 << 20;

/// The entry count for the next read: halved after a read of more than [`READ_BYTES`], doubled (up to
/// `stream.read_count`) after a full read below it.
fn next_read_count(count: usize, bytes: usize, full: bool, max: usize) -> usize {
    if bytes > READ_BYTES {
        (count / 2).max(1)
    } else if full {
        (count * 2).min(max)
    } else {
        count
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_shrink_while_they_bring_too_many_bytes_and_grow_back_to_the_configured_count() {
        // Full-speed groups, a third of a read's bytes each: a few per read.
        let big = READ_BYTES / 16 * 5;
        let mut count = 512;
        for _ in 0..20 {
            count = next_read_count(count, count * big, true, 512);
        }
        assert!(
            (1..=6).contains(&count) && count * big <= 2 * READ_BYTES,
            "groups of {big} bytes: {count} per read"
        );
        count = next_read_count(2, READ_BYTES - 1, false, 512);
        assert_eq!(
            count, 2,
            "a read that was not full says nothing about the next"
        );
        count = next_read_count(1, 16 * READ_BYTES, true, 512);
        assert_eq!(
            count, 1,
            "never below one: a group larger than the target is read alone"
        );
        // Small groups (a few KB deflated): back to the configured count.
        let small = READ_BYTES / 1024;
        for _ in 0..20 {
            count = next_read_count(count, count * small, true, 512);
        }
        assert_eq!(
            count, 512,
            "groups of {small} bytes: back to stream.read_count"
        );
    }
}
