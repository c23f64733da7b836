//! Runs the [`Pipeline`] on its own thread behind a bounded queue, and the handle sources use to reach it.
//!
//! Overflow policy: the queue holds `queue_capacity` batches; when it is full, [`IngestHandle::submit`]
//! waits for room (backpressure on the source) rather than dropping events or growing memory. Batches that
//! are waiting together are written as one RocksDB write batch (group commit, up to `max_batch_events`).
//! Between batches the thread wakes at the next finality deadline to finalize candles.

use std::thread;
use std::time::Duration;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{BatchReport, Pipeline};
use crate::event::EventRecord;

/// Why a batch could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    #[error("storage failed: {0}")]
    Store(String),
    #[error("the server is shutting down")]
    ShuttingDown,
}

struct IngestRequest {
    events: Vec<EventRecord>,
    meta: Vec<(String, Vec<u8>)>,
    /// Unix ms when the events reached the server.
    received_at_ms: i64,
    reply: oneshot::Sender<Result<BatchReport, IngestError>>,
}

/// Cheap to clone; every source holds one.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<IngestRequest>,
}

impl IngestHandle {
    /// Stores the events; returns once they are durably written (per `storage.sync_writes`).
    pub async fn submit(&self, events: Vec<EventRecord>) -> Result<BatchReport, IngestError> {
        self.submit_with_meta(events, Vec::new()).await
    }

    /// Stores the events and the `meta` entries (e.g. a source cursor) in the same atomic write.
    pub async fn submit_with_meta(
        &self,
        events: Vec<EventRecord>,
        meta: Vec<(String, Vec<u8>)>,
    ) -> Result<BatchReport, IngestError> {
        self.submit_received(events, meta, now_ms()).await
    }

    /// Like [`IngestHandle::submit_with_meta`], for events that reached the server at `received_at_ms`
    /// (Unix ms; e.g. when the HTTP request or the Solana notification arrived), so the time from receipt
    /// to a client's socket is measured whole (`kline_receipt_to_push_seconds`).
    pub async fn submit_received(
        &self,
        events: Vec<EventRecord>,
        meta: Vec<(String, Vec<u8>)>,
        received_at_ms: i64,
    ) -> Result<BatchReport, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(IngestRequest {
                events,
                meta,
                received_at_ms,
                reply,
            })
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        answer.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// Batches waiting in the queue.
    pub fn queued(&self) -> usize {
        self.tx.max_capacity() - self.tx.capacity()
    }
}

/// Starts the pipeline thread. It stops when `shutdown` is cancelled, after storing every batch that was
/// already queued, and returns the pipeline so the caller can flush the store.
pub fn spawn(
    pipeline: Pipeline,
    queue_capacity: usize,
    max_batch_events: usize,
    shutdown: CancellationToken,
) -> (IngestHandle, thread::JoinHandle<Pipeline>) {
    let (tx, rx) = mpsc::channel(queue_capacity);
    let thread = crate::own_thread::spawn("kline-pipeline", move || {
        run(pipeline, rx, max_batch_events, shutdown)
    });
    (IngestHandle { tx }, thread)
}

async fn run(
    mut pipeline: Pipeline,
    mut rx: mpsc::Receiver<IngestRequest>,
    max_batch_events: usize,
    shutdown: CancellationToken,
) -> Pipeline {
    loop {
        let wake_in = pipeline
            .next_deadline()
            .map(|deadline| (deadline - now_ms()).clamp(0, 1000))
            .unwrap_or(1000);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            request = rx.recv() => match request {
                Some(first) => process_group(&mut pipeline, first, &mut rx, max_batch_events),
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(wake_in as u64)) => {
                if let Err(err) = pipeline.finalize(now_ms()) {
                    tracing::error!(error = %err, "finalizing candles failed");
                }
            }
        }
    }
    // Store what was accepted into the queue before shutdown; refuse anything later.
    rx.close();
    while let Some(request) = rx.recv().await {
        process_group(&mut pipeline, request, &mut rx, max_batch_events);
    }
    if let Err(err) = pipeline.finalize(now_ms()) {
        tracing::error!(error = %err, "finalizing candles at shutdown failed");
    }
    pipeline
}

/// Takes `first` plus whatever else is already queued (up to `max_batch_events`) and writes them together.
fn process_group(
    pipeline: &mut Pipeline,
    first: IngestRequest,
    rx: &mut mpsc::Receiver<IngestRequest>,
    max_batch_events: usize,
) {
    let mut total = first.events.len();
    let mut group = vec![first];
    while total < max_batch_events {
        let Ok(next) = rx.try_recv() else { break };
        total += next.events.len();
        group.push(next);
    }
    let mut meta = Vec::new();
    let mut batches = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut received = Vec::with_capacity(group.len());
    for request in group {
        meta.extend(request.meta);
        batches.push(request.events);
        received.push(request.received_at_ms);
        replies.push(request.reply);
    }
    match pipeline.ingest_received(&batches, &received, &meta, now_ms()) {
        Ok(reports) => {
            for (reply, report) in replies.into_iter().zip(reports) {
                let _ = reply.send(Ok(report));
            }
        }
        Err(err) => {
            tracing::error!(error = %err, events = total, "write batch failed");
            for reply in replies {
                let _ = reply.send(Err(IngestError::Store(err.to_string())));
            }
        }
    }
}

/// Wall-clock Unix milliseconds.
pub fn now_ms() -> i64 {
    kline_protocol::response::unix_millis_now()
}
