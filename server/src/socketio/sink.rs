//! `SocketIoSink`: a Socket.IO socket as a hub subscriber, with the same gating as `/ws` and its own
//! bound and overflow policy.
//!
//! Every packet for the socket (replies from its session, `kline_data` from the hub's threads) is emitted
//! under one lock, so a snapshot and the updates gated behind it keep their order. Emitting hands the
//! packet to socketioxide, which keeps it in the socket's bounded buffer (`socketio.max_buffer_packets`)
//! until the transport sends it.
//!
//! Overflow policy: a socket whose buffer is full when a packet is due is **too slow**. The packet is not
//! sent, the sink closes (the hub drops it on its next delivery; replies are refused), the close is
//! counted in `slow_client_closes`, and its session disconnects the socket from `/kline` as soon as the
//! buffer has room for the disconnect packet (the client sees `disconnect` with reason
//! `io server disconnect`). A client that never reads again is closed by the Engine.IO heartbeat. Unlike
//! `/ws`, a waiting update cannot be replaced by a newer one of the same candle: socketioxide's buffer
//! is opaque once a packet is in it.

use std::sync::{Arc, Mutex, MutexGuard};

use kline_protocol::Candle;
use kline_protocol::response::unix_millis_now;
use serde::Serialize;
use serde_json::value::RawValue;
use socketioxide::SendError;
use socketioxide::extract::SocketRef;
use tokio::sync::Notify;

use super::wire::{KlineData, LegacyCandle};
use crate::feed::CandleUpdate;
use crate::feed::trades::LiveTrade;
use crate::push::SeriesKey;
use crate::push::gate::SeriesGates;
use crate::stats::{PipelineStats, PushStats};

pub struct SocketIoSink {
    socket: SocketRef,
    state: Mutex<SinkState>,
    /// Notified once when the sink closes as too slow (its session then disconnects the socket).
    too_slow: Notify,
    stats: Arc<PushStats>,
}

#[derive(Default)]
struct SinkState {
    gates: SeriesGates,
    closed: bool,
}

impl SocketIoSink {
    pub fn new(socket: SocketRef, stats: Arc<PushStats>) -> SocketIoSink {
        SocketIoSink {
            socket,
            state: Mutex::default(),
            too_slow: Notify::new(),
            stats,
        }
    }

    fn lock(&self) -> MutexGuard<'_, SinkState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The hub's delivery: each update as `kline_data`, held while its series is gated. `None` once the
    /// sink is closed (the hub then drops it); no update is ever replaced here (`Some(0)`).
    pub fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        let mut state = self.lock();
        for update in updates {
            if state.closed {
                return None;
            }
            if state.gates.hold(update) {
                continue;
            }
            self.emit_update(&mut state, update);
        }
        (!state.closed).then_some(0)
    }

    fn emit_update(&self, state: &mut SinkState, update: &CandleUpdate) {
        if self.emit_locked(state, "kline_data", kline_data(update)) {
            // Time to the socket's buffer: socketioxide's transport writes it from there.
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
        match self.socket.emit(event, data) {
            Ok(()) => {
                PipelineStats::add(&self.stats.messages_sent, 1);
                true
            }
            Err(SendError::Socket(socketioxide::SocketError::InternalChannelFull)) => {
                state.closed = true;
                PipelineStats::add(&self.stats.slow_client_closes, 1);
                tracing::warn!(sid = %self.socket.id, "Socket.IO client too slow: its buffer is full");
                self.too_slow.notify_one();
                false
            }
            Err(SendError::Socket(_closed)) => {
                state.closed = true;
                false
            }
            Err(err) => {
                tracing::error!(error = %err, event, "cannot encode a Socket.IO packet");
                false
            }
        }
    }

    /// Emits a trade as `event_data` (its payload encoded once, shared by every socket).
    pub fn emit_event_data(&self, trade: &LiveTrade) -> bool {
        self.emit("event_data", event_data(trade))
    }

    /// Starts holding the updates of `series` (see [`crate::push::gate`]).
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
fn kline_data(update: &CandleUpdate) -> &RawValue {
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
fn event_data(trade: &LiveTrade) -> &RawValue {
    trade.socketio_payload.get_or_init(|| {
        serde_json::value::to_raw_value(&super::wire::event_update(trade))
            .expect("an event_data payload serializes")
    })
}

fn series_id((symbol, interval): &SeriesKey) -> crate::feed::SeriesId {
    (symbol.to_bytes(), *interval)
}
