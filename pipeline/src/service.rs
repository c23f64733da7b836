//! Runs the [`Pipeline`] on its own thread behind a bounded queue, and the handle sources use to reach it.
//!
//! Overflow policy: the queue holds `queue_capacity` requests; when it is full, [`IngestHandle::submit`]
//! waits for room (backpressure on the source) rather than dropping events or growing memory. Batches that
//! are waiting together are written as one RocksDB write batch (group commit, up to `max_batch_events`):
//! concurrent HTTP requests share one write, and each is acknowledged once that write is durable.
//! Provisional pushes ([`IngestHandle::push_provisional`]) share the queue, so they keep their order with
//! the writes; in a group they are applied after its write (an event stored by it is no longer pushed
//! provisionally). Between groups the thread wakes at the next finality deadline to finalize candles.
//!
//! A failed write (the disk full) is answered [`IngestError::Unavailable`] and tried again after a pause;
//! the policy is [`super::storage`]'s. Writes of one [`WriteChain`] are stored only while every earlier
//! write of the chain was: a source whose writes advance a cursor never stores a later write after an
//! earlier one was refused.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;
use std::time::Duration;

use kline_core::clock::now_ms;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::storage::WriteGate;
use super::{BatchReport, Pipeline};
use kline_core::event::EventRecord;

/// Why a batch could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IngestError {
    /// The store does not take writes now (e.g. the disk is full); nothing of the batch was stored.
    #[error("storage unavailable: {reason}; try again in {retry_after_ms} ms")]
    Unavailable { reason: String, retry_after_ms: u64 },
    #[error("the server is shutting down")]
    ShuttingDown,
}

enum Request {
    Store(IngestRequest),
    /// Events to push before they are stored (see [`crate::provisional`]), and when they reached
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

/// Writes stored in order, each only while every earlier one of the chain was. Once one is refused, the
/// chain is broken: every later write of it is refused too, and the source starts a new chain from what
/// the store holds.
#[derive(Debug, Clone, Default)]
pub struct WriteChain(Arc<AtomicBool>);

impl WriteChain {
    fn is_broken(&self) -> bool {
        self.0.load(Ordering::Acquire)
    }

    fn mark_broken(&self) {
        self.0.store(true, Ordering::Release);
    }
}

struct IngestRequest {
    events: Vec<EventRecord>,
    meta: Vec<(String, Vec<u8>)>,
    chain: Option<WriteChain>,
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
        self.enqueue_in(None, events, meta, received_at_ms).await
    }

    /// Like [`IngestHandle::enqueue`], as the next write of `chain`: stored only if every earlier write of
    /// the chain was.
    pub async fn enqueue_chained(
        &self,
        chain: &WriteChain,
        events: Vec<EventRecord>,
        meta: Vec<(String, Vec<u8>)>,
        received_at_ms: i64,
    ) -> Result<PendingWrite, IngestError> {
        self.enqueue_in(Some(chain.clone()), events, meta, received_at_ms)
            .await
    }

    async fn enqueue_in(
        &self,
        chain: Option<WriteChain>,
        events: Vec<EventRecord>,
        meta: Vec<(String, Vec<u8>)>,
        received_at_ms: i64,
    ) -> Result<PendingWrite, IngestError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Request::Store(IngestRequest {
                events,
                meta,
                chain,
                received_at_ms,
                reply,
            }))
            .await
            .map_err(|_| IngestError::ShuttingDown)?;
        Ok(PendingWrite(answer))
    }

    /// Pushes `events` live before they are stored, as part of their candles (see
    /// [`crate::provisional`]); the source stores them later with their block position.
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
    let thread = kline_core::own_thread::spawn("kline-pipeline", move || {
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
    let mut gate = WriteGate::default();
    loop {
        // While writes fail, the next try is due at the gate's time (finality waits for it too).
        let wake_at = gate.retry_at_ms().or(pipeline.next_deadline());
        let wake_in = wake_at
            .map(|at| (at - now_ms()).clamp(0, 1000))
            .unwrap_or(1000);
        tokio::select! {
            _ = shutdown.cancelled() => break,
            request = rx.recv() => match request {
                Some(first) => {
                    process_group(&mut pipeline, &mut gate, first, &mut rx, max_batch_events);
                }
                None => break,
            },
            _ = tokio::time::sleep(Duration::from_millis(wake_in as u64)) => {
                tick(&mut pipeline, &mut gate);
            }
        }
    }
    // Store what was accepted into the queue before shutdown; refuse anything later.
    rx.close();
    while let Some(request) = rx.recv().await {
        process_group(&mut pipeline, &mut gate, request, &mut rx, max_batch_events);
    }
    if let Err(err) = pipeline.finalize(now_ms()) {
        tracing::error!(error = %err, "finalizing candles at shutdown failed");
    }
    pipeline
}

/// Between groups: finalizes the candles that are due, or, while writes fail and no request came to try,
/// tries a probe write once it is due.
fn tick(pipeline: &mut Pipeline, gate: &mut WriteGate) {
    let now = now_ms();
    if gate.refusal(now).is_some() {
        return;
    }
    let probing = gate.retry_at_ms().is_some();
    let result = if probing {
        pipeline.probe_storage(now)
    } else {
        pipeline.finalize(now).map(drop)
    };
    match result {
        Ok(()) => gate.succeeded(&pipeline.stats().storage),
        Err(err) => {
            gate.failed(&err, now, &pipeline.stats().storage);
        }
    }
}

/// Takes `first` plus whatever else is already queued (up to `max_batch_events`): writes the stores
/// together, then pushes the provisional events.
fn process_group(
    pipeline: &mut Pipeline,
    gate: &mut WriteGate,
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
    let mut chains = Vec::new();
    let mut provisional = Vec::new();
    let refusal = gate.refusal(now_ms());
    for request in group {
        match request {
            Request::Store(request) => {
                if let Some(answer) = refuse(&request, refusal.as_ref()) {
                    let _ = request.reply.send(Err(answer));
                    continue;
                }
                meta.extend(request.meta);
                batches.push(request.events);
                received.push(request.received_at_ms);
                replies.push(request.reply);
                chains.extend(request.chain);
            }
            Request::Provisional(events, received_at_ms) => {
                provisional.push((events, received_at_ms));
            }
        }
    }
    if !batches.is_empty() {
        store_group(pipeline, gate, &batches, &received, &meta, replies, &chains);
    }
    if !provisional.is_empty()
        && let Err(err) = pipeline.push_provisional(&provisional, now_ms())
    {
        tracing::warn!(error = %err, "provisional push failed; the events are pushed when stored");
    }
}

/// The answer for a write that is not tried: while the gate refuses writes, or after an earlier write of
/// its chain was refused. A refused write breaks its chain.
fn refuse(request: &IngestRequest, refusal: Option<&IngestError>) -> Option<IngestError> {
    let chain = request.chain.as_ref();
    let answer = match (refusal, chain.is_some_and(WriteChain::is_broken)) {
        (Some(refusal), _) => refusal.clone(),
        (None, true) => IngestError::Unavailable {
            reason: "an earlier write of this source was not stored".into(),
            retry_after_ms: 0,
        },
        (None, false) => return None,
    };
    chain.inspect(|chain| chain.mark_broken());
    Some(answer)
}

fn store_group(
    pipeline: &mut Pipeline,
    gate: &mut WriteGate,
    batches: &[Vec<EventRecord>],
    received: &[i64],
    meta: &[(String, Vec<u8>)],
    replies: Vec<oneshot::Sender<Result<BatchReport, IngestError>>>,
    chains: &[WriteChain],
) {
    let now = now_ms();
    match pipeline.ingest_received(batches, received, meta, now) {
        Ok(reports) => {
            gate.succeeded(&pipeline.stats().storage);
            for (reply, report) in replies.into_iter().zip(reports) {
                let _ = reply.send(Ok(report));
            }
        }
        Err(err) => {
            let events: usize = batches.iter().map(Vec::len).sum();
            tracing::debug!(error = %err, events, "write batch failed");
            let answer = gate.failed(&err, now, &pipeline.stats().storage);
            chains.iter().for_each(WriteChain::mark_broken);
            for reply in replies {
                let _ = reply.send(Err(answer.clone()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(chain: Option<&WriteChain>) -> IngestRequest {
        let (reply, _) = oneshot::channel();
        IngestRequest {
            events: Vec::new(),
            meta: Vec::new(),
            chain: chain.cloned(),
            received_at_ms: 0,
            reply,
        }
    }

    #[test]
    fn a_refused_write_breaks_its_chain_and_the_later_writes_of_it_are_refused() {
        let (chain, other) = (WriteChain::default(), WriteChain::default());
        let full = IngestError::Unavailable {
            reason: "the disk is full".into(),
            retry_after_ms: 300,
        };
        assert_eq!(refuse(&request(Some(&chain)), None), None, "tried");
        assert_eq!(
            refuse(&request(Some(&chain)), Some(&full)),
            Some(full.clone())
        );
        // The store takes writes again, but this chain's later writes must not pass the refused one.
        assert!(
            matches!(
                refuse(&request(Some(&chain)), None),
                Some(IngestError::Unavailable { .. })
            ),
            "broken chain"
        );
        assert_eq!(
            refuse(&request(Some(&other)), None),
            None,
            "other chains go on"
        );
        assert_eq!(refuse(&request(None), None), None, "unchained writes go on");
    }
}
