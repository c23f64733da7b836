//! The writer's publisher: appends the outbox's records to the stream in group order, as the pipeline
//! commits them, each under its own number.
//!
//! On every (re)connection it asks the stream for its newest number and resumes after it, so after a crash
//! of the writer, a lost acknowledgement or a Redis restart that lost data it republishes exactly the
//! missing tail with the same content under the same numbers (from the outbox, which holds the newest
//! `stream.max_len` records). When Redis comes back empty it republishes everything the outbox holds; an
//! edge that needs older groups than that loads a snapshot. While Redis is unreachable nothing queues in
//! memory: the records wait in the outbox.
//!
//! Every entry carries the store's epoch (`kline_store::replication::epoch`). A stream of another epoch (this
//! store was wiped or replaced) is replaced by this store's outbox; a stream of this epoch past the store's
//! newest group (the store was restored from a backup) makes the publisher start a new epoch first. The edges
//! see the new epoch and load a snapshot, so the new groups reach them instead of being numbered below the
//! stream's head, where no edge would read them.

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::backoff;
use super::redis::{RedisStream, StreamError};
use kline_config::StreamConfig;
use kline_store::replication::StreamStatus;
use kline_store::replication::epoch::{self, ResumePlan};
use kline_store::{CandleStore, StoreError};

/// Records appended per round trip, and about how many bytes of them (groups of full-speed ingest are
/// megabytes each).
const APPEND_BATCH: usize = 256;
const APPEND_BYTES: usize = 16 << 20;
/// While nothing is committed, how often the publisher checks that the stream still holds its groups.
const HEAD_CHECK: std::time::Duration = std::time::Duration::from_secs(2);

#[derive(Debug, thiserror::Error)]
enum PublishError {
    #[error(transparent)]
    Stream(#[from] StreamError),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("the stream ends at group {head} but held group {published}: Redis lost data")]
    StreamLost { head: u64, published: u64 },
}

/// Publishes committed groups until `shutdown` is cancelled.
pub async fn run(
    store: Arc<CandleStore>,
    config: StreamConfig,
    mut committed: watch::Receiver<u64>,
    status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) {
    loop {
        let connected = tokio::select! {
            connected = RedisStream::connect(&config, &shutdown) => connected,
            () = pipeline_gone(&mut committed) => {
                tracing::info!("the pipeline stopped while Redis is unreachable; the unpublished groups stay in the outbox for the next start");
                return;
            }
        };
        let Some(mut stream) = connected else {
            return;
        };
        status.redis_connected.set(1);
        let outcome = tokio::select! {
            _ = shutdown.cancelled() => return,
            outcome = publish(&store, &mut stream, &mut committed, &status) => outcome,
        };
        status.redis_connected.set(0);
        match outcome {
            Ok(()) => return,
            Err(err) => {
                tracing::warn!(error = %err, "publishing to the stream failed; reconnecting")
            }
        }
        if !backoff::pause(backoff::first_delay(&config), &shutdown).await {
            return;
        }
    }
}

/// Completes once the pipeline is gone (the writer is shutting down). Marks the commits it sees as seen,
/// which costs nothing: [`publish`] starts from the newest committed group.
async fn pipeline_gone(committed: &mut watch::Receiver<u64>) {
    while committed.changed().await.is_ok() {}
}

/// Publishes from where the stream ends, then each newly committed group. Returns `Ok` once the pipeline
/// is gone and everything it committed is sent, an error when the stream fails.
async fn publish(
    store: &Arc<CandleStore>,
    stream: &mut RedisStream,
    committed: &mut watch::Receiver<u64>,
    status: &StreamStatus,
) -> Result<(), PublishError> {
    let committed_now = *committed.borrow();
    let (mut published, epoch) = resume_after(store, stream, committed_now, status).await?;
    status.published_seq.set(published as i64);
    let mut pipeline_gone = false;
    loop {
        let target = *committed.borrow_and_update();
        while published < target {
            let from = published + 1;
            let reader = store.clone();
            let records =
                blocking(move || reader.outbox_from(from, APPEND_BATCH, APPEND_BYTES)).await?;
            let Some(&(first, _)) = records.first() else {
                break;
            };
            if first > from {
                tracing::warn!(
                    missing_from = from,
                    missing_to = first - 1,
                    "the outbox no longer holds these groups; edges that need them load a snapshot"
                );
            }
            stream.append(&records, epoch).await?;
            let bytes: usize = records.iter().map(|(_, record)| record.len()).sum();
            status.published_bytes.inc_by(bytes as u64);
            published = records.last().map_or(published, |(seq, _)| *seq);
            status.published_seq.set(published as i64);
        }
        if pipeline_gone {
            return Ok(());
        }
        tokio::select! {
            // The pipeline is gone (shutting down): one more pass sends what it committed last.
            changed = committed.changed() => pipeline_gone = changed.is_err(),
            _ = tokio::time::sleep(HEAD_CHECK) => {
                // Idle: make sure Redis still holds what it acknowledged (it may have restarted empty,
                // on a connection that only breaks at the next command).
                let head = stream.head().await?.seq;
                if head < published {
                    return Err(PublishError::StreamLost { head, published });
                }
            }
        }
    }
}

/// Where to publish from, and under which epoch: after the newest group the stream already holds, or —
/// when it holds none of this store's (new, Redis lost its data, or replaced: [`epoch::resume_plan`]) —
/// from the oldest group the outbox still holds, so all of those are published again.
async fn resume_after(
    store: &Arc<CandleStore>,
    stream: &mut RedisStream,
    committed: u64,
    status: &StreamStatus,
) -> Result<(u64, u64), PublishError> {
    let head = stream.head().await?;
    let reader = store.clone();
    let ours = blocking(move || epoch::open_writer(&reader)).await?;
    let epoch = match epoch::resume_plan(head, ours, committed) {
        ResumePlan::After(seq) => {
            status.set_epoch(ours);
            return Ok((seq, ours));
        }
        ResumePlan::Republish => ours,
        ResumePlan::Replace => {
            tracing::warn!(
                stream_head = head.seq,
                stream_epoch = %epoch::hex(head.epoch),
                epoch = %epoch::hex(ours),
                committed,
                "the stream is of another epoch (this store was wiped or replaced); replacing it with this \
                 store's groups: edges load a snapshot"
            );
            stream.reset().await?;
            ours
        }
        ResumePlan::NewEpoch => {
            let writer = store.clone();
            let new = blocking(move || epoch::start_new(&writer)).await?;
            tracing::error!(
                stream_head = head.seq,
                committed,
                old_epoch = %epoch::hex(ours),
                epoch = %epoch::hex(new),
                "the stream holds groups past this store's newest (a store restored from a backup?); \
                 started a new epoch and replacing the stream: edges load a snapshot, and the groups \
                 only the stream held are lost"
            );
            stream.reset().await?;
            new
        }
    };
    status.set_epoch(epoch);
    let reader = store.clone();
    let oldest = blocking(move || reader.oldest_outbox_seq()).await?;
    let resume = oldest.map_or(committed, |seq| seq - 1);
    if resume < committed {
        tracing::info!(
            from = resume + 1,
            to = committed,
            epoch = %epoch::hex(epoch),
            "publishing the outbox into an empty stream"
        );
    }
    Ok((resume, epoch))
}

/// A store read or write, off the async workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> Result<T, StoreError> + Send + 'static,
) -> Result<T, StoreError> {
    tokio::task::spawn_blocking(work)
        .await
        .expect("store calls do not panic")
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_config::Config;

    #[tokio::test]
    async fn without_redis_it_stops_once_the_pipeline_is_gone() {
        let dir = tempfile::tempdir().unwrap();
        let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
        // A port nothing listens on: every connection attempt fails.
        let unused = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let redis_url = format!("redis://{}/", unused.local_addr().unwrap());
        drop(unused);
        let config = StreamConfig {
            redis_url,
            reconnect_min_ms: 20,
            reconnect_max_ms: 200,
            ..Config::defaults().stream
        };
        let (commits, committed) = watch::channel(0);
        let publisher = tokio::spawn(run(
            store,
            config,
            committed,
            Arc::default(),
            CancellationToken::new(),
        ));
        drop(commits);
        // Never cancelled: only the pipeline's end can stop it (before, it retried until cancelled).
        tokio::time::timeout(std::time::Duration::from_secs(60), publisher)
            .await
            .expect("the publisher ends when the pipeline is gone")
            .unwrap();
    }
}
