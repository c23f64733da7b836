//! `Outbox`: the one writer of a connection's socket, its bounded backlog, and its overflow policy.
//!
//! Every frame for a client goes through here: candle updates (pushed by the hub's thread), replies (pushed
//! by the connection's task) and tungstenite's control replies. A frame is written to the socket **at
//! once, by whoever pushes it**, when nothing is waiting before it: a delivery is one non-blocking `write`
//! of bytes shared by every subscriber, with no task to wake. Only what the socket cannot take right away
//! waits in the backlog, which the connection's writer ([`super::writer`]) writes when the socket has room.
//! Frames are never interleaved: a frame partly written is finished before any other.
//!
//! Overflow policy, in order:
//! 1. A candle update replaces a waiting update of the **same candle** (same series and `time`) in place:
//!    a chart needs only the latest value, and the order of the backlog is kept. Counted as `replaced`.
//! 2. A ticker round (`tickers`) that finds the previous round still waiting (not started) is merged into it
//!    in place ([`TickerRound::merged`]): the client gets one message with the newest ticker of every mint
//!    either held, so a slow reader has at most one round waiting, and still the newest state.
//! 3. Otherwise, if `capacity` frames are waiting, or the frame would bring the waiting bytes above
//!    `max_bytes` (a frame is always taken when nothing waits), the client is too slow: the backlog is
//!    dropped (except a frame already partly written), a close frame 4008 follows, and the connection ends.
//!    Nothing else is dropped silently. (The waiting bytes are summed when a backlog exists: it holds at most
//!    `capacity` frames, and only a slow client has one.)
//!
//! While a subscription's snapshot is being read, its series is *gated* ([`crate::gate`]): its updates
//! wait aside and, when the snapshot is queued, only those newer than the snapshot follow it (see
//! [`Outbox::open_gate`]).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::{Arc, Mutex};

use bytes::Bytes;
use kline_protocol::response::unix_millis_now;
use kline_protocol::{Candle, CloseCode};
use tokio::net::TcpStream;
use tokio::sync::Notify;

use super::deflate::Deflate;
use super::frame;
use crate::SeriesKey;
use crate::gate::SeriesGates;
use crate::tickers::TickerRound;
use kline_core::stats::PushStats;
use kline_pipeline::feed::{CandleUpdate, SeriesId};

/// The most frames one vectored write carries.
const MAX_FRAMES_PER_WRITE: usize = 16;

#[derive(Debug, Clone)]
enum Frame {
    /// An encoded frame for this connection only (reply, notice, ping, close, control reply).
    Message(Bytes),
    /// A candle update shared with other subscribers (its frame is encoded once).
    Update(Arc<CandleUpdate>),
    /// A ticker round, shared (or merged for this connection: policy 2).
    Tickers(Arc<TickerRound>),
}

impl Frame {
    /// The bytes to write, for a connection whose shared frames are `framing`.
    fn bytes(&self, framing: Framing) -> &Bytes {
        match self {
            Frame::Message(bytes) => bytes,
            Frame::Update(update) => framing.update(update),
            Frame::Tickers(round) => super::tickers::frame(round, framing.deflate()),
        }
    }
}

/// How the shared frames (candle updates, ticker rounds) are encoded for a connection: every connection of
/// one framing writes the same bytes, encoded once.
#[derive(Debug, Clone, Copy)]
pub enum Framing {
    /// `/ws`'s protocol, compressed if the connection negotiated permessage-deflate (`Some`).
    Protocol(Option<Deflate>),
    /// Another protocol's frame of an update (Socket.IO's `kline_data`, see `kline_socketio::engine`),
    /// made by this function, once per update. Such a connection gets no ticker rounds.
    Updates(fn(&CandleUpdate) -> &Bytes),
}

impl Framing {
    /// The frame of a shared update.
    fn update(self, update: &CandleUpdate) -> &Bytes {
        match self {
            Framing::Protocol(None) => frame::update(update),
            Framing::Protocol(Some(deflate)) => frame::update_deflated(update, deflate),
            Framing::Updates(encode) => encode(update),
        }
    }

    fn deflate(self) -> Option<Deflate> {
        match self {
            Framing::Protocol(deflate) => deflate,
            Framing::Updates(_) => None,
        }
    }
}

/// Result of pushing an update.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pushed {
    /// Written to the socket at once.
    Written,
    /// Waiting in the backlog.
    Queued,
    /// Replaced a waiting update of the same candle.
    Replaced,
    /// The series is gated; the update waits for the snapshot.
    Held,
    /// The outbox is closed (or just closed because it was full).
    Closed,
}

/// How the connection ends, once the backlog is written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ending {
    /// A close frame with this code was queued last (the server started the closing handshake).
    Close(CloseCode),
    /// The client started the closing handshake: the echo of its close frame, with this code, was queued
    /// last (RFC 6455 §5.5.1).
    Echo(u16),
    /// No close frame: the client went away without one.
    Finish,
    /// The socket failed: nothing more can be written.
    Failed,
}

/// What [`Outbox::write_backlog`] left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backlog {
    /// Everything is written; the connection goes on.
    Empty,
    /// The socket has no room; `progressed` if some bytes were written in this call.
    Blocked { progressed: bool },
    /// Everything that will ever be written is written (or the socket failed).
    Ended(Ending),
}

pub struct Outbox {
    socket: TcpStream,
    state: Mutex<State>,
    /// Wakes the writer: a backlog to write, or an ending.
    wake_writer: Notify,
    stats: Arc<PushStats>,
}

impl Outbox {
    pub fn new(
        socket: TcpStream,
        capacity: usize,
        max_bytes: usize,
        stats: Arc<PushStats>,
    ) -> Outbox {
        let mut state = State::new(capacity);
        state.max_bytes = max_bytes;
        Outbox {
            socket,
            state: Mutex::new(state),
            wake_writer: Notify::new(),
            stats,
        }
    }

    /// Candle updates go out compressed as `deflate` says (the connection negotiated permessage-deflate).
    pub fn with_deflate(self, deflate: Option<Deflate>) -> Outbox {
        self.with_framing(Framing::Protocol(deflate))
    }

    /// Shared frames are encoded as `framing` says.
    pub fn with_framing(self, framing: Framing) -> Outbox {
        self.lock().framing = framing;
        self
    }

    pub fn socket(&self) -> &TcpStream {
        &self.socket
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Writes `frame` now if nothing waits before it, else queues it; wakes the writer if a backlog remains.
    fn send(&self, state: &mut State, frame: Frame) -> Pushed {
        if !state.queue.is_empty() || state.ending == Some(Ending::Failed) {
            state.queue.push_back(frame);
            return Pushed::Queued;
        }
        // Straight to the socket: the common case touches no queue (an emptied queue keeps its buffer,
        // which would cost every idle connection its capacity).
        let bytes = frame.bytes(state.framing);
        match self.socket.try_write(bytes) {
            Ok(n) if n == bytes.len() => {
                state.written_bytes += n as u64;
                state.wrote(&frame, &self.stats);
                return Pushed::Written;
            }
            Ok(n) if n > 0 => {
                state.written_bytes += n as u64;
                state.front_written = n;
            }
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                ) => {}
            // Ok(0) or an error: the peer is gone.
            _ => {
                state.fail();
                self.wake_writer.notify_one();
                return Pushed::Closed;
            }
        }
        state.queue.push_back(frame);
        self.wake_writer.notify_one();
        Pushed::Queued
    }

    /// Queues an encoded frame for this connection (reply, notice, ping). Frames count against the
    /// capacity too: a client that never reads is closed. `false` if the outbox is closed.
    pub fn push_message(&self, frame: Bytes) -> bool {
        let mut state = self.lock();
        if state.ending.is_some() {
            return false;
        }
        if state.is_full(frame.len()) {
            self.end_too_slow(&mut state);
            return false;
        }
        self.send(&mut state, Frame::Message(frame));
        true
    }

    /// Queues a ticker round under the overflow policy above (2: merged into a waiting round; 3: too
    /// slow). `false` if the outbox is closed.
    pub fn push_tickers(&self, round: &Arc<TickerRound>) -> bool {
        let mut state = self.lock();
        if state.ending.is_some() {
            return false;
        }
        if state.merge_waiting_tickers(round) {
            return true;
        }
        let incoming = super::tickers::frame(round, state.framing.deflate()).len();
        if state.queue.len() >= state.capacity || state.is_full(incoming) {
            self.end_too_slow(&mut state);
            return false;
        }
        self.send(&mut state, Frame::Tickers(round.clone())) != Pushed::Closed
    }

    /// Queues a candle update under the overflow policy above.
    pub fn push_update(&self, update: &Arc<CandleUpdate>) -> Pushed {
        let mut state = self.lock();
        match self.admit(&mut state, update, 0) {
            Ok(()) => self.send(&mut state, Frame::Update(update.clone())),
            Err(pushed) => pushed,
        }
    }

    /// Pushes several updates of one delivery round under the overflow policy above; those that go to the
    /// socket now go in **one** vectored write (when the candles of a second become final together, a
    /// client gets its final and the next candle's update in one `send`). Returns how many were replaced
    /// (policy 1), or `Closed`.
    pub fn push_updates(&self, updates: &[Arc<CandleUpdate>]) -> Result<usize, Closed> {
        if let [update] = updates {
            return match self.push_update(update) {
                Pushed::Closed => Err(Closed),
                Pushed::Replaced => Ok(1),
                _ => Ok(0),
            };
        }
        let mut state = self.lock();
        let mut replaced = 0;
        let mut frames = Vec::with_capacity(updates.len());
        for update in updates {
            // Behind a backlog, the frames accepted so far will wait too: they count against the capacity.
            let waiting = if state.queue.is_empty() {
                0
            } else {
                frames.len()
            };
            match self.admit(&mut state, update, waiting) {
                Ok(()) => frames.push(Frame::Update(update.clone())),
                Err(Pushed::Closed) => return Err(Closed),
                Err(Pushed::Replaced) => replaced += 1,
                Err(_) => {}
            }
        }
        if self.send_all(&mut state, frames) == Pushed::Closed {
            return Err(Closed);
        }
        Ok(replaced)
    }

    /// Applies the gate and the overflow policy to `update` (with `waiting` more frames about to join the
    /// backlog): `Ok` if it is to be sent, else what became of it.
    fn admit(
        &self,
        state: &mut State,
        update: &Arc<CandleUpdate>,
        waiting: usize,
    ) -> Result<(), Pushed> {
        if state.ending.is_some() {
            return Err(Pushed::Closed);
        }
        if state.gated.hold(update) {
            return Err(Pushed::Held);
        }
        if state.replace_waiting(update) {
            return Err(Pushed::Replaced);
        }
        // The frames of this batch accepted so far (`waiting`) are about as big as this one.
        let incoming = state.framing.update(update).len() * (waiting + 1);
        if state.queue.len() + waiting >= state.capacity || state.is_full(incoming) {
            self.end_too_slow(state);
            return Err(Pushed::Closed);
        }
        Ok(())
    }

    /// Like [`Outbox::send`] for several frames: vectored writes of up to [`MAX_FRAMES_PER_WRITE`] frames
    /// when nothing waits before them; what the socket does not take waits in the backlog.
    fn send_all(&self, state: &mut State, frames: Vec<Frame>) -> Pushed {
        if frames.len() <= 1 || !state.queue.is_empty() || state.ending.is_some() {
            let mut last = Pushed::Queued;
            for frame in frames {
                last = self.send(state, frame);
            }
            return last;
        }
        let mut frames = frames.into_iter().peekable();
        while frames.peek().is_some() {
            let chunk: Vec<Frame> = frames.by_ref().take(MAX_FRAMES_PER_WRITE).collect();
            let mut slices = [IoSlice::new(&[]); MAX_FRAMES_PER_WRITE];
            for (slice, frame) in slices.iter_mut().zip(&chunk) {
                *slice = IoSlice::new(frame.bytes(state.framing));
            }
            let mut written = match self.socket.try_write_vectored(&slices[..chunk.len()]) {
                Ok(n) if n > 0 => n,
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted
                    ) =>
                {
                    0
                }
                // Ok(0) or an error: the peer is gone.
                _ => {
                    state.fail();
                    self.wake_writer.notify_one();
                    return Pushed::Closed;
                }
            };
            for frame in chunk {
                let len = frame.bytes(state.framing).len();
                if state.queue.is_empty() && written >= len {
                    written -= len;
                    state.wrote(&frame, &self.stats);
                    continue;
                }
                if state.queue.is_empty() {
                    // The first frame not written whole: the rest of it is the backlog's front.
                    state.front_written = written;
                    written = 0;
                }
                state.queue.push_back(frame);
            }
            if !state.queue.is_empty() {
                state.queue.extend(frames);
                self.wake_writer.notify_one();
                return Pushed::Queued;
            }
        }
        Pushed::Written
    }

    /// Holds back updates of `series` until [`Outbox::open_gate`], and drops its updates still waiting: the
    /// snapshot read next is newer than all of them. Left in place, one of them would sit before the
    /// snapshot, and a later update of its candle would replace it there: a newer state, then the older
    /// one of the snapshot (a re-subscribe by a slow client).
    pub fn close_gate(&self, series: &SeriesKey) {
        let mut state = self.lock();
        let id = series_id(series);
        state.gated.close(id);
        state.retain_waiting(
            |frame| !matches!(frame, Frame::Update(update) if update.series() == id),
        );
    }

    /// Queues `snapshot_frames` (history, confirmation), then the held updates of `series` that are newer
    /// than the snapshot: a candle the snapshot does not hold (and not older than its oldest), or a later
    /// state of one it holds (more events, or newly final). Later updates flow directly again.
    pub fn open_gate(&self, series: &SeriesKey, snapshot: &[Candle], snapshot_frames: Vec<Bytes>) {
        let mut state = self.lock();
        let newer = state.gated.open(series_id(series), snapshot);
        if state.ending.is_some() {
            return;
        }
        let frames: Vec<Frame> = snapshot_frames
            .into_iter()
            .map(Frame::Message)
            .chain(newer.into_iter().map(Frame::Update))
            .collect();
        let incoming = frames
            .iter()
            .map(|frame| frame.bytes(state.framing).len())
            .sum();
        if state.queue.len() + frames.len() > state.capacity || state.is_full(incoming) {
            self.end_too_slow(&mut state);
            return;
        }
        for frame in frames {
            self.send(&mut state, frame);
        }
    }

    /// Drops waiting and held updates of `series` (after an unsubscribe).
    pub fn purge(&self, series: &SeriesKey) {
        let mut state = self.lock();
        let id = series_id(series);
        state.gated.purge(&id);
        state.retain_waiting(
            |frame| !matches!(frame, Frame::Update(update) if update.series() == id),
        );
    }

    /// Ends the connection with a close frame `code` after what is queued (a slow client's backlog is
    /// dropped instead). Later pushes are refused. The first ending wins.
    pub fn close(&self, code: CloseCode) {
        let mut state = self.lock();
        if state.ending.is_some() {
            return;
        }
        if code == CloseCode::TooSlow {
            self.end_too_slow(&mut state);
        } else {
            state.ending = Some(Ending::Close(code));
            self.send(&mut state, Frame::Message(close_frame(code)));
            self.wake_writer.notify_one();
        }
    }

    /// Answers the client's close frame with one carrying `code` (the client's, or 1000 when it gave none),
    /// after what is queued; later pushes are refused. Nothing is sent if the connection is already ending.
    pub fn echo_close(&self, code: u16) {
        let mut state = self.lock();
        if state.ending.is_some() {
            return;
        }
        state.ending = Some(Ending::Echo(code));
        self.send(&mut state, Frame::Message(frame::close(code, "")));
        self.wake_writer.notify_one();
    }

    /// Ends the connection without a close frame, after what is queued.
    pub fn finish(&self) {
        let mut state = self.lock();
        state.ending.get_or_insert(Ending::Finish);
        drop(state);
        self.wake_writer.notify_one();
    }

    pub fn is_closed(&self) -> bool {
        self.lock().ending.is_some()
    }

    /// Bytes written to the socket so far (the writer measures the drain rate with it).
    pub fn bytes_written(&self) -> u64 {
        self.lock().written_bytes
    }

    fn end_too_slow(&self, state: &mut State) {
        kline_core::stats::add(&self.stats.slow_client_closes, 1);
        state.ending = Some(Ending::Close(CloseCode::TooSlow));
        state.retain_waiting(|_| false);
        self.send(state, Frame::Message(close_frame(CloseCode::TooSlow)));
        self.wake_writer.notify_one();
    }

    /// Marks the socket failed (a write error, or a write that made no progress for too long while ending).
    pub fn fail(&self) {
        self.lock().fail();
        self.wake_writer.notify_one();
    }

    /// Writes as much of the backlog as the socket takes now.
    pub fn write_backlog(&self) -> Backlog {
        let mut state = self.lock();
        state.write(&mut |bytes| self.socket.try_write(bytes), &self.stats)
    }

    /// Completes when the writer has something to do (a backlog, or an ending). A wake-up sent while the
    /// writer was busy is kept, so none is lost.
    pub async fn writer_wanted(&self) {
        self.wake_writer.notified().await;
    }

    /// Sends the TCP FIN after the last frame (the socket itself closes when the connection is dropped).
    pub fn shutdown_socket(&self) {
        let _ = socket2::SockRef::from(&self.socket).shutdown(std::net::Shutdown::Write);
    }
}

/// A vectored or single write found the outbox closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Closed;

fn series_id((symbol, interval): &SeriesKey) -> SeriesId {
    (symbol.to_bytes(), *interval)
}

fn close_frame(code: CloseCode) -> Bytes {
    frame::close(code.as_u16(), close_reason(code))
}

fn close_reason(code: CloseCode) -> &'static str {
    match code {
        CloseCode::Normal => "",
        CloseCode::ServerShutdown => "server shutting down",
        CloseCode::ProtocolError => "protocol error",
        CloseCode::InvalidPayload => "invalid UTF-8",
        CloseCode::PolicyViolation => "rate limit abuse",
        CloseCode::MessageTooBig => "message too big",
        CloseCode::ServerAtCapacity => "server at connection limit, try again later",
        CloseCode::IdleTimeout => "idle timeout",
        CloseCode::TooSlow => "client too slow to keep up",
    }
}

/// The backlog and its policy, apart from the socket (so the policy is testable byte for byte).
struct State {
    capacity: usize,
    /// Most bytes waiting in `queue` (see the policy above).
    max_bytes: usize,
    /// Bytes written to the socket since the start.
    written_bytes: u64,
    queue: VecDeque<Frame>,
    /// Bytes of `queue.front()` already written.
    front_written: usize,
    gated: SeriesGates,
    ending: Option<Ending>,
    /// Which encoding of a shared update this connection gets (permessage-deflate, if negotiated).
    framing: Framing,
}

impl State {
    fn new(capacity: usize) -> State {
        State {
            capacity: capacity.max(1),
            max_bytes: usize::MAX,
            written_bytes: 0,
            queue: VecDeque::new(),
            front_written: 0,
            gated: SeriesGates::default(),
            ending: None,
            framing: Framing::Protocol(None),
        }
    }

    /// Whether `incoming` more bytes would overflow the backlog (in frames or bytes).
    fn is_full(&self, incoming: usize) -> bool {
        if self.queue.is_empty() {
            return false;
        }
        let waiting: usize = self
            .queue
            .iter()
            .map(|frame| frame.bytes(self.framing).len())
            .sum();
        self.queue.len() >= self.capacity
            || (waiting - self.front_written).saturating_add(incoming) > self.max_bytes
    }

    /// Frames not yet started: all of the queue but a partly written front.
    fn first_waiting(&self) -> usize {
        usize::from(self.front_written > 0)
    }

    fn replace_waiting(&mut self, update: &Arc<CandleUpdate>) -> bool {
        let start = self.first_waiting();
        let same_candle = self.queue.range_mut(start..).rev().find(|frame| {
            matches!(frame, Frame::Update(queued)
                if queued.same_candle(update))
        });
        match same_candle {
            Some(queued) => {
                *queued = Frame::Update(update.clone());
                true
            }
            None => false,
        }
    }

    /// Policy 2: merges `round` into a ticker round waiting (not started). `false` if none waits.
    fn merge_waiting_tickers(&mut self, round: &TickerRound) -> bool {
        let start = self.first_waiting();
        let waiting = self
            .queue
            .range_mut(start..)
            .rev()
            .find_map(|frame| match frame {
                Frame::Tickers(waiting) => Some(waiting),
                _ => None,
            });
        match waiting {
            Some(waiting) => {
                *waiting = Arc::new(waiting.merged(round));
                true
            }
            None => false,
        }
    }

    fn retain_waiting(&mut self, mut keep: impl FnMut(&Frame) -> bool) {
        let start = self.first_waiting();
        let mut index = 0;
        self.queue.retain(|frame| {
            index += 1;
            index <= start || keep(frame)
        });
    }

    /// Counts a frame written whole (and, for an update, its event-to-push latency).
    fn wrote(&self, frame: &Frame, stats: &PushStats) {
        if let Frame::Update(update) = frame {
            let now = unix_millis_now();
            stats
                .push_latency
                .observe_ms((now - update.produced_at_ms) as f64);
            if let Some(received) = update.received_at_ms {
                stats.receipt_to_push.observe_ms((now - received) as f64);
            }
        }
        kline_core::stats::add(&stats.messages_sent, 1);
    }

    /// The socket failed: nothing more is written.
    fn fail(&mut self) {
        self.ending = Some(Ending::Failed);
        self.queue = VecDeque::new();
        self.front_written = 0;
    }

    /// Writes queued frames in order through `write` until the queue is empty or the socket has no room.
    fn write(
        &mut self,
        write: &mut dyn FnMut(&[u8]) -> io::Result<usize>,
        stats: &PushStats,
    ) -> Backlog {
        if self.ending == Some(Ending::Failed) {
            return Backlog::Ended(Ending::Failed);
        }
        let mut progressed = false;
        let blocked = loop {
            let Some(front) = self.queue.front() else {
                break None;
            };
            let bytes = front.bytes(self.framing);
            match write(&bytes[self.front_written..]) {
                Ok(n) if n > 0 => {
                    progressed = true;
                    self.written_bytes += n as u64;
                    self.front_written += n;
                    if self.front_written < bytes.len() {
                        continue;
                    }
                    if let Some(frame) = self.queue.pop_front() {
                        self.wrote(&frame, stats);
                    }
                    self.front_written = 0;
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break Some(progressed),
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // Ok(0) or an error: the peer is gone.
                _ => {
                    self.fail();
                    break None;
                }
            }
        };
        if self.queue.is_empty() {
            // The backlog is gone: give its buffer back (most connections never have one).
            self.queue = VecDeque::new();
        }
        match (blocked, self.ending) {
            (Some(progressed), _) => Backlog::Blocked { progressed },
            (None, Some(ending)) => Backlog::Ended(ending),
            (None, None) => Backlog::Empty,
        }
    }
}

#[cfg(test)]
mod tests;
