//! Runs the [`Pipeline`] on its own thread behind a bounded queue, and the handle sources use to reach it.
//!
//! Overflow policy: the queue holds `queue_capacity` requests; when it is full, [`IngestHandle::submit`]
//! waits for room (backpressure on the source) rather than dropping events or growing memory. Batches that
//! are waiting together are written as one RocksDB write batch (group commit, up to `max_batch_events`):
//! concurrent HTTP requests share one write, and each is acknowledged once that write is durable.
//! Provisional pushes ([`IngestHandle::push_provisional`]) share the queue, so they keep their order with
//! the writes; in a group they are applied after its write (an event stored by it is no longer pushed
//! provisionally). Between groups the thread wakes at the next finality deadline to finalize candles.

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

enum Request {
    Store(IngestRequest),
    /// Events to push before they are stored (see [`crate::pipeline::provisional`]), and when they reached
    /// the server.
    Provisional(Vec<EventRecord>, i64),
}

impl Request {
    fn events(&self) -> usize {
        match self {
            Request::Store(request) => request.events.len(),
            Request::Provisional(events, _) => events.len(),
        }
    }
}

struct IngestRequest {
    events: Vec<EventRecord>,
    meta: Vec<(String, Vec<u8>)>,
    /// Unix ms when the events reached the server.
    received_at_ms: i64,
    reply: oneshot::Sender<Result<BatchReport, IngestError>>,
}

/// A write in the queue: resolves once it is durable (or failed).
pub struct PendingWrite(oneshot::Receiver<Result<BatchReport, IngestError>>);

impl PendingWrite {
    pub async fn done(self) -> Result<BatchReport, IngestError> {
        self.0.await.map_err(|_| IngestError::ShuttingDown)?
    }

    /// The outcome if the write is over, without waiting.
    pub fn try_done(&mut self) -> Option<Result<BatchReport, IngestError>> {
        match self.0.try_recv() {
            Ok(outcome) => Some(outcome),
            Err(oneshot::error::TryRecvError::Empty) => None,
            Err(oneshot::error::TryRecvError::Closed) => Some(Err(IngestError::ShuttingDown)),
        }
    }
}

/// Cheap to clone; every source holds one.
#[derive(Clone)]
pub struct IngestHandle {
    tx: mpsc::Sender<Request>,
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
        self.enqueue(events, meta, received_at_ms)
            .await?
            .done()
            .await
    }

    /// Puts the events in the queue (waiting for room) without waiting for the write: a source that keeps
    /// several writes in flight enqueues them in order and awaits each [`PendingWrite`] later.
    pub async fn enqueue(
        &self,
        events: Vec<EventRecord>,
        meta: Vec<(String, Vec<u8>)>,
        received_at_ms: i64,
    ) -> Result<PendingWrite, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Store(IngestRequest {
                events,
                meta,
                received_at_ms,
                reply,
            }))
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok(PendingWrite(answer))
    }

    /// Pushes `events` live before they are stored, as part of their candles (see
    /// [`crate::pipeline::provisional`]); the source stores them later with their block position.
    pub async fn push_provisional(
        &self,
        events: Vec<EventRecord>,
        received_at_ms: i64,
    ) -> Result<(), IngestError> {
        self.tx
            .send(Request::Provisional(events, received_at_ms))
            .await
            .map_err(|_| IngestError::ShuttingDown)
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
    mut rx: mpsc::Receiver<Request>,
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

/// Takes `first` plus whatever else is already queued (up to `max_batch_events`): writes the stores
/// together, then pushes the provisional events.
fn process_group(
    pipeline: &mut Pipeline,
    first: Request,
    rx: &mut mpsc::Receiver<Request>,
    max_batch_events: usize,
) {
    let mut total = first.events();
    let mut group = vec![first];
    while total < max_batch_events {
        let Ok(next) = rx.try_recv() else { break };
        total += next.events();
        group.push(next);
    }
    let mut meta = Vec::new();
    let mut batches = Vec::with_capacity(group.len());
    let mut replies = Vec::with_capacity(group.len());
    let mut received = Vec::with_capacity(group.len());
    let mut provisional = Vec::new();
    for request in group {
        match request {
            Request::Store(request) => {
                meta.extend(request.meta);
                batches.push(request.events);
                received.push(request.received_at_ms);
                replies.push(request.reply);
            }
            Request::Provisional(events, received_at_ms) => {
                provisional.push((events, received_at_ms));
            }
        }
    }
    if !batches.is_empty() {
        store_group(pipeline, &batches, &received, &meta, replies);
    }
    if !provisional.is_empty()
        && let Err(err) = pipeline.push_provisional(&provisional, now_ms())
    {
        tracing::warn!(error = %err, "provisional push failed; the events are pushed when stored");
    }
}

fn store_group(
    pipeline: &mut Pipeline,
    batches: &[Vec<EventRecord>],
    received: &[i64],
    meta: &[(String, Vec<u8>)],
    replies: Vec<oneshot::Sender<Result<BatchReport, IngestError>>>,
) {
    match pipeline.ingest_received(batches, received, meta, now_ms()) {
        Ok(reports) => {
            for (reply, report) in replies.into_iter().zip(reports) {
                let _ = reply.send(Ok(report));
            }
        }
        Err(err) => {
            let events: usize = batches.iter().map(Vec::len).sum();
            tracing::error!(error = %err, events, "write batch failed");
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
