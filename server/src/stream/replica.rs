//! The edge's replica task: reads the stream after the newest applied group and hands each read to
//! [`Replica::apply`] (one RocksDB write, then the local hub). When the stream no longer reaches back to the
//! group after the applied one (a new edge after the stream was trimmed, an edge down for long, Redis
//! restarted empty), it loads a snapshot from `stream.snapshot_url` first, then reads on from the snapshot's
//! group. It keeps [`StreamStatus`] up to date for `/ready`: the replica is *loaded* once it holds a
//! consistent state, and the lag is the stream's newest group minus the applied one.

use kline_tls::Redacted;
use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::StreamStatus;
use super::apply::{ApplyError, Replica};
use super::redis::{RedisStream, StreamError};
use super::snapshot;
use crate::config::StreamConfig;
use crate::feed::CandleFeed;
use crate::store::CandleStore;

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
    crate::own_thread::spawn("kline-replica", move || {
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
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(Duration::from_millis(config.reconnect_min_ms)) => {}
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
    loop {
        let applied = replica.applied();
        let entries = tokio::select! {
            _ = shutdown.cancelled() => return Ok(()),
            entries = stream.read_after(applied, count) => entries?,
        };
        let Some(&(first, _)) = entries.first() else {
            // Nothing new for a while: learn where the stream ends (it may be behind us after Redis
            // lost its data; the writer republishes).
            let head = stream.head().await?;
            status.set_head(head);
            if head == 0 {
                match on_empty_stream(
                    applied,
                    status.replica_loaded(),
                    !config.snapshot_url.is_empty(),
                ) {
                    OnEmptyStream::LoadSnapshot => {
                        load_snapshot(replica, config, status, shutdown).await
                    }
                    OnEmptyStream::Loaded => status.set_replica_loaded(true),
                }
            }
            continue;
        };
        if first != applied + 1 {
            tracing::warn!(
                applied,
                stream_from = first,
                "the stream does not reach back to the next group; loading a snapshot"
            );
            status.set_replica_loaded(false);
            status.set_head(entries.last().map_or(first, |(seq, _)| *seq));
            load_snapshot(replica, config, status, shutdown).await;
            continue;
        }
        let last = entries.last().map_or(first, |(seq, _)| *seq);
        let bytes: usize = entries.iter().map(|(_, record)| record.len()).sum();
        let full = entries.len() >= count;
        count = next_read_count(count, bytes, full, config.read_count);
        let head = if full { stream.head().await? } else { last };
        status.set_head(head);
        match replica.apply(&entries) {
            Ok(_) => status.set_replica_loaded(true),
            Err(ApplyError::Record(err)) => {
                tracing::error!(error = %err, after = applied, "a stream entry cannot be applied; loading a snapshot");
                status.set_replica_loaded(false);
                load_snapshot(replica, config, status, shutdown).await;
            }
            Err(err) => return Err(err.into()),
        }
    }
}

/// Loads a snapshot from `stream.snapshot_url`; on failure waits `stream.reconnect_max_ms` (the caller
/// reads the stream again, finds the gap again and comes back).
async fn load_snapshot(
    replica: &mut Replica,
    config: &StreamConfig,
    status: &StreamStatus,
    shutdown: &CancellationToken,
) {
    let outcome = if config.snapshot_url.is_empty() {
        tracing::error!(
            "the replica needs a snapshot but stream.snapshot_url is empty; this edge stays not ready"
        );
        None
    } else {
        let token = (!config.snapshot_token.is_empty()).then_some(config.snapshot_token.as_str());
        match snapshot::load(
            &config.snapshot_url,
            &config.snapshot_ca_file,
            token,
            replica,
        )
        .await
        {
            Ok((seq, changed)) => {
                tracing::info!(seq, series = changed.len(), url = %Redacted(&config.snapshot_url), "snapshot loaded");
                replica.resync(&changed);
                status.set_replica_loaded(true);
                Some(())
            }
            Err(err) => {
                tracing::warn!(error = %err, url = %Redacted(&config.snapshot_url), "loading a snapshot failed");
                None
            }
        }
    };
    if outcome.is_none() {
        tokio::select! {
            _ = shutdown.cancelled() => {}
            _ = tokio::time::sleep(Duration::from_millis(config.reconnect_max_ms)) => {}
        }
    }
}

/// What an edge does when the stream is empty.
#[derive(Debug, PartialEq, Eq)]
enum OnEmptyStream {
    /// A new edge (nothing applied, not loaded yet) with a snapshot source: the writer may hold data the
    /// stream lost (Redis restarted empty while the writer was idle); its snapshot says, and is empty if
    /// not. Once: after it the replica is loaded.
    LoadSnapshot,
    /// Otherwise the replica is as loaded as it can be; the writer republishes into the stream.
    Loaded,
}

fn on_empty_stream(applied: u64, loaded: bool, snapshot_source: bool) -> OnEmptyStream {
    if applied == 0 && !loaded && snapshot_source {
        OnEmptyStream::LoadSnapshot
    } else {
        OnEmptyStream::Loaded
    }
}

/// About how many bytes of records one read should bring: full-speed ingest makes groups of megabytes,
/// and `stream.read_count` of those at once would be gigabytes in memory. Records are deflated and
/// inflate ~4–6× (`stream::record`), so a read is held as ~20 MB once decoded.
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
    fn a_new_edge_loads_one_snapshot_on_an_empty_stream_and_no_more() {
        assert_eq!(on_empty_stream(0, false, true), OnEmptyStream::LoadSnapshot);
        // Loaded by that snapshot (however empty): not again on every empty read.
        assert_eq!(on_empty_stream(0, true, true), OnEmptyStream::Loaded);
        assert_eq!(on_empty_stream(7, false, true), OnEmptyStream::Loaded);
        assert_eq!(on_empty_stream(0, false, false), OnEmptyStream::Loaded);
    }

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
