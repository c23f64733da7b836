//! `Outbox`: one connection's bounded queue of frames waiting to be written, and its overflow policy.
//!
//! Producers (the hub's fan-out, the connection's request handler) push without blocking; the connection's
//! single writer drains everything ready and flushes once.
//!
//! Overflow policy, in order:
//! 1. A candle update replaces an unsent update of the **same candle** (same series and `time`) in place:
//!    a chart needs only the latest value, and the order of the queue is kept. Counted as `replaced`.
//! 2. Otherwise, if the queue holds `capacity` frames, the client is too slow: the outbox closes with 4008
//!    and the connection ends. Counted as a slow-client close. Nothing else is dropped silently.
//!
//! While a subscription's snapshot is being read, its series is *gated*: its updates wait aside and, when
//! the snapshot is queued, only those newer than the snapshot follow it (see [`Outbox::open_gate`]).

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use axum::extract::ws::Utf8Bytes;
use kline_protocol::{Candle, CloseCode, Interval, Symbol};
use tokio::sync::Notify;

/// A (symbol, interval) pair: what a client subscribes to.
pub type SeriesKey = (Symbol, Interval);

/// A candle update as queued: which candle, its freshness, and the shared serialized bytes.
#[derive(Debug, Clone)]
pub struct UpdateFrame {
    pub series: SeriesKey,
    pub time: i64,
    pub update_count: u32,
    pub is_final: bool,
    /// Unix ms when the update was produced (for the event-to-push latency histogram).
    pub produced_at_ms: i64,
    pub bytes: Utf8Bytes,
}

#[derive(Debug, Clone)]
pub enum Frame {
    /// A reply or notice for this connection only.
    Message(Utf8Bytes),
    /// A candle update shared with other subscribers.
    Update(UpdateFrame),
}

/// Result of pushing an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    Queued,
    Replaced,
    /// The series is gated; the update waits for the snapshot.
    Held,
    /// The outbox is closed (or just closed because it was full).
    Closed,
}

#[derive(Default)]
struct State {
    queue: VecDeque<Frame>,
    gated: HashMap<SeriesKey, Vec<UpdateFrame>>,
    close: Option<CloseCode>,
}

pub struct Outbox {
    capacity: usize,
    state: Mutex<State>,
    ready: Notify,
}

impl Outbox {
    pub fn new(capacity: usize) -> Outbox {
        Outbox {
            capacity: capacity.max(1),
            state: Mutex::new(State::default()),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a reply. Replies count against the capacity too: a client that never reads is closed.
    pub fn push_message(&self, bytes: Utf8Bytes) -> bool {
        let mut state = self.lock();
        if state.close.is_some() {
            return false;
        }
        if state.queue.len() >= self.capacity {
            state.close = Some(CloseCode::TooSlow);
            drop(state);
            self.ready.notify_one();
            return false;
        }
        state.queue.push_back(Frame::Message(bytes));
        drop(state);
        self.ready.notify_one();
        true
    }

    /// Queues a candle update under the overflow policy above.
    pub fn push_update(&self, update: UpdateFrame) -> Pushed {
        let mut state = self.lock();
        if state.close.is_some() {
            return Pushed::Closed;
        }
        if let Some(held) = state.gated.get_mut(&update.series) {
            held.retain(|frame| frame.time != update.time);
            held.push(update);
            return Pushed::Held;
        }
        let same_candle = state.queue.iter_mut().rev().find_map(|frame| match frame {
            Frame::Update(queued)
                if queued.series == update.series && queued.time == update.time =>
            {
                Some(queued)
            }
            _ => None,
        });
        let pushed = if let Some(queued) = same_candle {
            *queued = update;
            Pushed::Replaced
        } else if state.queue.len() >= self.capacity {
            state.close = Some(CloseCode::TooSlow);
            Pushed::Closed
        } else {
            state.queue.push_back(Frame::Update(update));
            Pushed::Queued
        };
        drop(state);
        self.ready.notify_one();
        pushed
    }

    /// Holds back updates of `series` until [`Outbox::open_gate`].
    pub fn close_gate(&self, series: &SeriesKey) {
        self.lock().gated.entry(series.clone()).or_default();
    }

    /// Queues `snapshot_messages` (history, confirmation), then the held updates of `series` that are newer
    /// than the snapshot: a candle the snapshot does not hold (and not older than its oldest), or a later
    /// state of one it holds (more events, or newly final). Later updates flow directly again.
    pub fn open_gate(
        &self,
        series: &SeriesKey,
        snapshot: &[Candle],
        snapshot_messages: Vec<Utf8Bytes>,
    ) {
        let mut state = self.lock();
        let held = state.gated.remove(series).unwrap_or_default();
        if state.gated.is_empty() {
            // A map keeps its table after its last entry goes; most connections gate rarely.
            state.gated.shrink_to_fit();
        }
        if state.close.is_some() {
            return;
        }
        state
            .queue
            .extend(snapshot_messages.into_iter().map(Frame::Message));
        let oldest = snapshot.first().map(|c| c.time);
        for update in held {
            let newer = match snapshot.binary_search_by_key(&update.time, |c| c.time) {
                Ok(index) => {
                    let known = &snapshot[index];
                    (update.update_count, update.is_final) > (known.update_count, known.is_final)
                }
                Err(_) => oldest.is_none_or(|oldest| update.time > oldest),
            };
            if newer {
                state.queue.push_back(Frame::Update(update));
            }
        }
        if state.queue.len() > self.capacity {
            state.close = Some(CloseCode::TooSlow);
        }
        drop(state);
        self.ready.notify_one();
    }

    /// Drops queued and held updates of `series` (after an unsubscribe).
    pub fn purge(&self, series: &SeriesKey) {
        let mut state = self.lock();
        state.gated.remove(series);
        state
            .queue
            .retain(|frame| !matches!(frame, Frame::Update(update) if &update.series == series));
    }

    /// Asks the writer to send a close frame with `code` after what is queued, and stop.
    pub fn close(&self, code: CloseCode) {
        let mut state = self.lock();
        state.close.get_or_insert(code);
        drop(state);
        self.ready.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().close.is_some()
    }

    /// Completes once the outbox has been closed because the client is too slow.
    pub async fn wait_too_slow(&self) {
        loop {
            if self.lock().close == Some(CloseCode::TooSlow) {
                return;
            }
            self.ready.notified().await;
        }
    }

    /// Waits until something is queued or the outbox is closed; returns every queued frame and, if closing,
    /// the close code (a slow client's close skips what is queued: it would not read it anyway).
    pub async fn drain(&self, into: &mut Vec<Frame>) -> Option<CloseCode> {
        loop {
            {
                let mut state = self.lock();
                if state.close == Some(CloseCode::TooSlow) {
                    state.queue.clear();
                    return state.close;
                }
                if !state.queue.is_empty() || state.close.is_some() {
                    into.extend(state.queue.drain(..));
                    return state.close;
                }
            }
            self.ready.notified().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series() -> SeriesKey {
        (Symbol::from_bytes(&[1; 32]), Interval::S1)
    }

    fn update(time: i64, count: u32, is_final: bool) -> UpdateFrame {
        UpdateFrame {
            series: series(),
            time,
            update_count: count,
            is_final,
            produced_at_ms: 0,
            bytes: Utf8Bytes::from(format!("{time}/{count}/{is_final}")),
        }
    }

    fn drained(outbox: &Outbox) -> (Vec<String>, Option<CloseCode>) {
        let mut frames = Vec::new();
        let close =
            futures_util::FutureExt::now_or_never(outbox.drain(&mut frames)).expect("ready");
        let texts = frames
            .into_iter()
            .map(|frame| match frame {
                Frame::Message(bytes) => bytes.to_string(),
                Frame::Update(update) => update.bytes.to_string(),
            })
            .collect();
        (texts, close)
    }

    #[test]
    fn a_newer_update_of_the_same_candle_replaces_the_unsent_one_in_place() {
        let outbox = Outbox::new(8);
        assert_eq!(outbox.push_update(update(1, 1, false)), Pushed::Queued);
        assert!(outbox.push_message("reply".into()));
        assert_eq!(outbox.push_update(update(1, 2, false)), Pushed::Replaced);
        assert_eq!(outbox.push_update(update(2, 1, false)), Pushed::Queued);
        assert_eq!(drained(&outbox).0, ["1/2/false", "reply", "2/1/false"]);
    }

    #[test]
    fn a_full_outbox_closes_with_4008_and_drops_the_backlog() {
        let outbox = Outbox::new(2);
        outbox.push_update(update(1, 1, false));
        outbox.push_update(update(2, 1, false));
        assert_eq!(outbox.push_update(update(3, 1, false)), Pushed::Closed);
        assert!(outbox.is_closed());
        assert_eq!(drained(&outbox), (vec![], Some(CloseCode::TooSlow)));
        assert!(!outbox.push_message("late".into()));
    }

    #[test]
    fn the_gate_keeps_order_and_drops_what_the_snapshot_already_has() {
        let outbox = Outbox::new(16);
        outbox.close_gate(&series());
        assert_eq!(outbox.push_update(update(10, 3, false)), Pushed::Held); // older than snapshot: dropped
        outbox.push_update(update(9, 5, true)); // final of a candle the snapshot has open: kept
        outbox.push_update(update(11, 1, false)); // a new candle: kept
        outbox.push_update(update(5, 1, false)); // older than the snapshot's oldest: dropped
        let snapshot = [
            Candle::new(9, [1.0; 4], 5, false),
            Candle::new(10, [1.0; 4], 4, false),
        ];
        outbox.open_gate(
            &series(),
            &snapshot,
            vec!["history".into(), "confirmed".into()],
        );
        assert_eq!(
            drained(&outbox).0,
            ["history", "confirmed", "9/5/true", "11/1/false"]
        );
        assert_eq!(
            outbox.push_update(update(11, 2, false)),
            Pushed::Queued,
            "the gate is open"
        );
    }

    #[test]
    fn purge_removes_a_series_updates_only() {
        let outbox = Outbox::new(8);
        outbox.push_update(update(1, 1, false));
        outbox.push_message("reply".into());
        outbox.purge(&series());
        assert_eq!(drained(&outbox).0, ["reply"]);
    }

    #[test]
    fn close_is_sent_after_the_queue() {
        let outbox = Outbox::new(8);
        outbox.push_message("bye".into());
        outbox.close(CloseCode::ServerShutdown);
        assert_eq!(
            drained(&outbox),
            (vec!["bye".to_string()], Some(CloseCode::ServerShutdown))
        );
    }
}
