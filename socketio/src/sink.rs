//! `SocketIoSink`: a Socket.IO socket as a hub subscriber, with the same gating as `/ws` and the same
//! delivery policy: a slow reader gets the newest state of each candle, not a disconnect.
//!
//! Every packet for the socket (replies from its session, `kline_data` from the hub's threads,
//! `event_data` from the trade hub) is emitted under one lock, so a snapshot and the updates gated behind
//! it keep their order. Emitting hands the packet to socketioxide, which keeps it in the socket's bounded
//! buffer (`socketio.max_buffer_packets`) until the transport sends it.
//!
//! When that buffer is full, packets wait here, in order, in the socket's **backlog**, which its session
//! drains ([`SocketIoSink::drain`]) as the buffer empties. Once a backlog exists every packet joins it, so
//! the order is kept. Overflow policy, as `/ws`'s outbox (docs/protocol.md "A slow client"):
//! 1. A candle update replaces a waiting update of the **same candle** (series and `time`) in place: the
//!    client gets the newest state of each candle, and each candle's final state once. Counted as
//!    `replaced` (`kline_updates_replaced_total`).
//! 2. Otherwise, a backlog of `socketio.max_backlog_packets` packets, or of more than
//!    `socketio.max_backlog_bytes` bytes, means the client has stopped reading: the backlog is dropped, the
//!    sink closes (the hub drops it on its next delivery; replies are refused), the close is counted in
//!    `slow_client_closes`, and its session disconnects the socket from `/kline` as soon as the buffer has
//!    room for the disconnect packet (the client sees `disconnect` with reason `io server disconnect`). A
//!    client that never reads again is closed by the Engine.IO heartbeat.
//!
//! socketioxide tells no one when its buffer has room, so the drain tries again after a pause that starts
//! at [`FIRST_RETRY`] and doubles up to [`LAST_RETRY`] while nothing fits; only a socket with a backlog
//! pays for it.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use kline_protocol::Candle;
use kline_protocol::response::unix_millis_now;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::SendError;
use socketioxide::extract::SocketRef;
use tokio::sync::Notify;

use super::wire::{KlineData, LegacyCandle};
use kline_core::stats::PushStats;
use kline_pipeline::feed::CandleUpdate;
use kline_pipeline::feed::trades::LiveTrade;
use kline_push::SeriesKey;
use kline_push::gate::SeriesGates;

/// The first pause before the drain tries socketioxide's full buffer again.
const FIRST_RETRY: Duration = Duration::from_millis(5);
/// The longest pause between two tries.
const LAST_RETRY: Duration = Duration::from_millis(100);

pub struct SocketIoSink {
    socket: SocketRef,
    state: Mutex<SinkState>,
    limits: BacklogLimits,
    /// Notified once when the sink closes as too slow (its session then disconnects the socket).
    too_slow: Notify,
    /// Notified when a backlog starts (its session then drains it).
    backlogged: Notify,
    stats: Arc<PushStats>,
}

/// How much may wait in a socket's backlog (`socketio.max_backlog_packets`, `socketio.max_backlog_bytes`).
#[derive(Debug, Clone, Copy)]
pub struct BacklogLimits {
    pub packets: usize,
    pub bytes: usize,
}

#[derive(Default)]
struct SinkState {
    gates: SeriesGates,
    closed: bool,
    /// Packets waiting for room in socketioxide's buffer, in the order they are due.
    backlog: VecDeque<Waiting>,
    /// The payload bytes of `backlog`.
    backlog_bytes: usize,
}

impl SinkState {
    /// Closes the sink; what waits is dropped (its memory freed).
    fn close_dropping_backlog(&mut self) {
        self.closed = true;
        self.backlog = VecDeque::new();
        self.backlog_bytes = 0;
    }
}

/// A packet waiting for room in socketioxide's buffer.
enum Waiting {
    /// A candle update (its payload shared with every socket); a newer one of its candle replaces it.
    Update(Arc<CandleUpdate>),
    /// Any other event, its payload encoded.
    Event {
        name: Box<str>,
        payload: Box<RawValue>,
    },
}

impl Waiting {
    fn bytes(&self) -> usize {
        match self {
            Waiting::Update(update) => kline_data(update).get().len(),
            Waiting::Event { name, payload } => name.len() + payload.get().len(),
        }
    }
}

/// What became of a packet handed to socketioxide.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Emitted {
    Sent,
    /// The socket's buffer is full: try again later.
    Full,
    /// The socket is closed.
    Gone,
    /// The payload could not be encoded (logged): dropped.
    Unencodable,
}

/// What one pass of [`SocketIoSink::drain`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Drained {
    /// The backlog is empty (or the sink closed).
    All,
    /// Some packets went; others still wait.
    Partly,
    /// The buffer had no room.
    Nothing,
}

impl SocketIoSink {
    pub fn new(socket: SocketRef, stats: Arc<PushStats>, limits: BacklogLimits) -> SocketIoSink {
        SocketIoSink {
            socket,
            state: Mutex::default(),
            limits,
            too_slow: Notify::new(),
            backlogged: Notify::new(),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hub's delivery: each update as `kline_data`, held while its series is gated. `None` once the
    /// sink is closed (the hub then drops it); else how many waiting updates newer ones replaced.
    pub fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        let mut state = self.lock();
        let mut replaced = 0;
        for update in updates {
            if state.closed {
                return None;
            }
            if state.gates.hold(update) {
                continue;
            }
            replaced += usize::from(self.emit_update(&mut state, update));
        }
        (!state.closed).then_some(replaced)
    }

    /// Emits `update`, or queues it (`true`: in place of a waiting update of its candle).
    fn emit_update(&self, state: &mut SinkState, update: &Arc<CandleUpdate>) -> bool {
        if state.closed {
            return false;
        }
        if let Some(sent) = self.try_now(state, "kline_data", kline_data(update)) {
            if sent {
                self.observe_push(update);
            }
            return false;
        }
        if let Some(waiting) = state.backlog.iter_mut().rev().find(
            |waiting| matches!(waiting, Waiting::Update(queued) if queued.same_candle(update)),
        ) {
            let replaced = std::mem::replace(waiting, Waiting::Update(update.clone()));
            state.backlog_bytes =
                state.backlog_bytes + kline_data(update).get().len() - replaced.bytes();
            return true;
        }
        self.enqueue(state, Waiting::Update(update.clone()));
        false
    }

    /// The time from the update's production to the socket's buffer (socketioxide's transport writes it
    /// from there).
    fn observe_push(&self, update: &CandleUpdate) {
        let now = unix_millis_now();
        self.stats
            .push_latency
            .observe_ms((now - update.produced_at_ms) as f64);
        if let Some(received) = update.received_at_ms {
            self.stats
                .receipt_to_push
                .observe_ms((now - received) as f64);
        }
    }

    /// Emits a reply (`false` if the sink is closed, or just closed as too slow).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        let mut state = self.lock();
        self.emit_locked(&mut state, event, data)
    }

    fn emit_locked<T: Serialize + ?Sized>(
        &self,
        state: &mut SinkState,
        event: &str,
        data: &T,
    ) -> bool {
        if state.closed {
            return false;
        }
        if let Some(sent) = self.try_now(state, event, data) {
            return sent;
        }
        match serde_json::value::to_raw_value(data) {
            Ok(payload) => self.enqueue(
                state,
                Waiting::Event {
                    name: event.into(),
                    payload,
                },
            ),
            Err(err) => {
                tracing::error!(error = %err, event, "cannot encode a Socket.IO packet");
                false
            }
        }
    }

    /// Hands the packet to socketioxide at once if nothing waits before it: `Some(sent)` when that settled
    /// it (sent; or dropped, the socket being gone or the payload unencodable), `None` when it must wait.
    fn try_now<T: Serialize + ?Sized>(
        &self,
        state: &mut SinkState,
        event: &str,
        data: &T,
    ) -> Option<bool> {
        if !state.backlog.is_empty() {
            return None;
        }
        match self.try_emit(event, data) {
            Emitted::Sent => Some(true),
            Emitted::Gone => {
                state.closed = true;
                Some(false)
            }
            Emitted::Unencodable => Some(false),
            Emitted::Full => None,
        }
    }

    /// Hands one packet to socketioxide.
    fn try_emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> Emitted {
        match self.socket.emit(event, data) {
            Ok(()) => {
                kline_core::stats::add(&self.stats.messages_sent, 1);
                Emitted::Sent
            }
            Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) => Emitted::Full,
            Err(SendError::Socket(_closed)) => Emitted::Gone,
            Err(err) => {
                tracing::error!(error = %err, event, "cannot encode a Socket.IO packet");
                Emitted::Unencodable
            }
        }
    }

    /// Puts `waiting` at the end of the backlog, or closes the sink as too slow if the backlog is at its
    /// limits (a packet is always taken when nothing waits). `false` if it closed.
    fn enqueue(&self, state: &mut SinkState, waiting: Waiting) -> bool {
        let bytes = waiting.bytes();
        if !state.backlog.is_empty()
            && (state.backlog.len() >= self.limits.packets
                || state.backlog_bytes + bytes > self.limits.bytes)
        {
            state.close_dropping_backlog();
            kline_core::stats::add(&self.stats.slow_client_closes, 1);
            tracing::warn!(sid = %self.socket.id, "Socket.IO client too slow: its backlog is full");
            self.too_slow.notify_one();
            return false;
        }
        if state.backlog.is_empty() {
            self.backlogged.notify_one();
        }
        state.backlog.push_back(waiting);
        state.backlog_bytes += bytes;
        true
    }

    /// Sends the backlog as socketioxide's buffer empties, pausing between tries (see the module doc).
    /// Runs for the session's life; cancel-safe (what waits stays in the sink).
    pub async fn drain(&self) {
        loop {
            if self.lock().backlog.is_empty() {
                self.backlogged.notified().await;
            }
            let mut pause = FIRST_RETRY;
            loop {
                tokio::time::sleep(pause).await;
                match self.send_backlog() {
                    Drained::All => break,
                    Drained::Partly => pause = FIRST_RETRY,
                    Drained::Nothing => pause = (pause * 2).min(LAST_RETRY),
                }
            }
        }
    }

    /// Hands socketioxide the front of the backlog until its buffer is full.
    fn send_backlog(&self) -> Drained {
        let mut state = self.lock();
        let mut sent = 0;
        while let Some(front) = state.backlog.front() {
            let outcome = match front {
                Waiting::Update(update) => self.try_emit("kline_data", kline_data(update)),
                Waiting::Event { name, payload } => self.try_emit(name, &**payload),
            };
            match outcome {
                Emitted::Full => break,
                Emitted::Gone => state.close_dropping_backlog(),
                Emitted::Sent | Emitted::Unencodable => {
                    let done = state.backlog.pop_front().expect("the front");
                    state.backlog_bytes -= done.bytes();
                    if let (Emitted::Sent, Waiting::Update(update)) = (outcome, &done) {
                        self.observe_push(update);
                    }
                    sent += 1;
                }
            }
        }
        if state.backlog.is_empty() {
            Drained::All
        } else if sent > 0 {
            Drained::Partly
        } else {
            Drained::Nothing
        }
    }

    /// Emits a trade as `event_data` (its payload encoded once, shared by every socket).
    pub fn emit_event_data(&self, trade: &LiveTrade) -> bool {
        self.emit("event_data", event_data(trade))
    }

    /// Starts holding the updates of `series` (see [`kline_push::gate`]).
    pub fn close_gate(&self, series: &SeriesKey) {
        self.lock().gates.close(series_id(series));
    }

    /// Emits `replies` (the snapshot and the confirmation, in order), then the held updates of `series`
    /// newer than `snapshot` (ascending by time); later updates flow directly again.
    pub fn open_gate(
        &self,
        series: &SeriesKey,
        snapshot: &[Candle],
        replies: &[(&str, serde_json::Value)],
    ) {
        let mut state = self.lock();
        let newer = state.gates.open(series_id(series), snapshot);
        for (event, payload) in replies {
            self.emit_locked(&mut state, event, payload);
        }
        for update in newer {
            self.emit_update(&mut state, &update);
        }
    }

    /// Drops the gate of `series` and what it holds (updates already emitted are the socket's).
    pub fn purge(&self, series: &SeriesKey) {
        self.lock().gates.purge(&series_id(series));
    }

    /// Completes when the sink has closed as too slow.
    pub async fn closed_as_too_slow(&self) {
        self.too_slow.notified().await;
    }

    pub fn socket(&self) -> &SocketRef {
        &self.socket
    }
}

/// The `kline_data` payload of an update, encoded by the first Socket.IO delivery and shared by every
/// socket (socketioxide copies it into each socket's packet).
pub(crate) fn kline_data(update: &CandleUpdate) -> &RawValue {
    update.socketio_payload.get_or_init(|| {
        let payload = KlineData {
            symbol: update.symbol.clone(),
            interval: update.interval,
            subscription_id: None,
            data: LegacyCandle::from(&update.candle),
            timestamp: update.produced_at_ms,
        };
        serde_json::value::to_raw_value(&payload).expect("a kline_data payload serializes")
    })
}

/// The `event_data` payload of a trade.
pub(crate) fn event_data(trade: &LiveTrade) -> &RawValue {
    trade.socketio_payload.get_or_init(|| {
        serde_json::value::to_raw_value(&super::wire::event_update(trade))
            .expect("an event_data payload serializes")
    })
}

fn series_id((symbol, interval): &SeriesKey) -> kline_pipeline::feed::SeriesId {
    (symbol.to_bytes(), *interval)
}
