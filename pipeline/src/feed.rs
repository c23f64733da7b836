//! The live candle feed: from the pipeline (the one publisher) to the hub shards (its readers).
//!
//! Each shard has an [`Inbox`] that **coalesces** instead of queueing: it holds at most one entry per candle
//! (the newest state; a final state is the last one a candle gets), and only for the series the shard has
//! subscribers for, so nothing is stored or encoded for the intervals nobody watches. A shard reads its inbox
//! at its own pace: when it falls behind, it skips intermediate states of a candle and delivers the newest,
//! and every candle's final state still reaches it exactly once. No shard can make the publisher wait.
//!
//! Overflow policy: an inbox holds at most `capacity` candles (`kline.broadcast_buffer_size`). A candle
//! that does not fit puts its whole series in *resync*: the series' waiting entries are dropped and the
//! shard re-reads the series from the store, from the oldest candle it dropped, when it gets to run (the
//! pipeline publishes only after writing, so the store holds every state the inbox would have), a page of
//! `websocket.hub_resync_page` candles per round until it has read the newest. A slow shard therefore
//! catches up, however far behind; it never closes its subscribers.
//!
//! The feed also carries the committed trades to the trade hub ([`trades`]): a queue, not coalesced; every
//! `h1` candle state to the ticker hub (`kline_push::tickers`), through an inbox of its own that watches the
//! whole interval once the ticker hub starts (same policy; the late corrections, stored but never pushed
//! live, put their series in resync there: [`CandleFeed::stored_late`]); and the names of the tokens created
//! ([`TokenNames`]), after their write like everything else.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use kline_protocol::{Candle, Interval, Symbol};
use tokio::sync::Notify;

pub mod trades;

use trades::TradeFeed;

use crate::names::TokenNames;

/// A series by its mint's 32 bytes and interval: the key of the feed and of the hub's index.
pub type SeriesId = ([u8; 32], Interval);

/// One candle's new state, shared by every shard and every subscriber that delivers it.
#[derive(Debug)]
pub struct CandleUpdate {
    pub symbol: Symbol,
    pub interval: Interval,
    pub candle: Candle,
    /// Unix ms when the pipeline produced the update (after its write).
    pub produced_at_ms: i64,
    /// Unix ms when the event behind this state reached the server (HTTP request, Solana notification);
    /// `None` for a state no event produced (a candle made final by the clock).
    pub received_at_ms: Option<i64>,
    /// The state holds events pushed before their block position was known (`crate::provisional`):
    /// the same candle with the same number of events, stored, is newer.
    pub provisional: bool,
    /// The push transport's encoding of the update (for `/ws`, the whole WebSocket frame), made once by
    /// the first shard that delivers it and shared by all (see `kline_push::websocket::frame::update`).
    pub encoded: OnceLock<Bytes>,
    /// The same, compressed for connections that negotiated permessage-deflate
    /// (`kline_push::websocket::frame::update_deflated`; the plain frame again when compression does not
    /// pay).
    pub compressed: OnceLock<Bytes>,
    /// The Socket.IO `kline_data` payload (JSON), made once by the first Socket.IO delivery and shared (see
    /// `kline_socketio::sink`).
    pub socketio_payload: OnceLock<Box<serde_json::value::RawValue>>,
    /// The whole WebSocket frame of that `kline_data` packet for Socket.IO's direct websocket transport
    /// (`42/kline,["kline_data",{…}]`), made once and shared (see `kline_socketio::engine::frame`).
    pub socketio_frame: OnceLock<Bytes>,
}

impl CandleUpdate {
    /// An update of `candle` in the series (`symbol`, `interval`), with none of its encodings made yet.
    pub fn new(
        symbol: Symbol,
        interval: Interval,
        candle: Candle,
        produced_at_ms: i64,
        received_at_ms: Option<i64>,
        provisional: bool,
    ) -> CandleUpdate {
        CandleUpdate {
            symbol,
            interval,
            candle,
            produced_at_ms,
            received_at_ms,
            provisional,
            encoded: OnceLock::new(),
            compressed: OnceLock::new(),
            socketio_payload: OnceLock::new(),
            socketio_frame: OnceLock::new(),
        }
    }

    #[inline]
    pub fn series(&self) -> SeriesId {
        (self.symbol.to_bytes(), self.interval)
    }

    /// Same candle (series and bucket).
    #[inline]
    pub fn same_candle(&self, other: &CandleUpdate) -> bool {
        self.candle.time == other.candle.time
            && self.interval == other.interval
            && self.symbol == other.symbol
    }

    /// How far along this state of its candle is.
    #[inline]
    pub fn version(&self) -> CandleVersion {
        CandleVersion {
            update_count: self.candle.update_count,
            is_final: self.candle.is_final,
            stored: !self.provisional,
        }
    }

    /// Whether this state is newer than `known`, a state of the same candle.
    #[inline]
    pub fn is_newer_than(&self, known: CandleVersion) -> bool {
        self.version() > known
    }
}

/// What orders the states of one candle, in this order: more events; final over open; at the same count,
/// the stored state over a provisional one (the correction that brings the block's open and close). A
/// subscriber is never sent a state older than or equal to one it has.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord)]
pub struct CandleVersion {
    pub update_count: u32,
    pub is_final: bool,
    pub stored: bool,
}

impl CandleVersion {
    /// The version of a candle as the store holds it (a history read).
    pub fn stored(candle: &kline_protocol::Candle) -> CandleVersion {
        CandleVersion {
            update_count: candle.update_count,
            is_final: candle.is_final,
            stored: true,
        }
    }
}

/// What a shard takes from its inbox in one go.
#[derive(Debug, Default)]
pub struct Drained {
    /// The newest waiting state of each candle, in the order the candles were first published.
    pub updates: Vec<Arc<CandleUpdate>>,
    /// Series to re-read from the store, each from the oldest candle time (Unix s) its inbox dropped.
    pub resync: Vec<(SeriesId, i64)>,
    /// States that were replaced by a newer one of the same candle before the shard got to them.
    pub coalesced: u64,
}

/// One shard's inbox. The publisher writes, the shard reads; both hold the lock only briefly.
pub struct Inbox {
    state: Mutex<InboxState>,
    ready: Notify,
}

struct InboxState {
    capacity: usize,
    /// Series the shard has subscribers for (kept by the shard); updates of others are not stored.
    watched: HashSet<SeriesId>,
    /// Every series of this interval is watched (the ticker hub's inbox).
    watched_interval: Option<Interval>,
    /// Waiting updates; `None` where an entry was dropped for a resync.
    pending: Vec<Option<Arc<CandleUpdate>>>,
    /// Candle (series, time) → its index in `pending`.
    slots: HashMap<(SeriesId, i64), usize>,
    live: usize,
    resync: HashMap<SeriesId, i64>,
    coalesced: u64,
}

impl Inbox {
    fn new(capacity: usize) -> Inbox {
        Inbox {
            state: Mutex::new(InboxState {
                capacity: capacity.max(1),
                watched: HashSet::new(),
                watched_interval: None,
                pending: Vec::new(),
                slots: HashMap::new(),
                live: 0,
                resync: HashMap::new(),
                coalesced: 0,
            }),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, InboxState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The shard gained its first subscriber of `series`: store its updates from now on.
    pub fn watch(&self, series: SeriesId) {
        self.lock().watched.insert(series);
    }

    /// Watches every series of `interval` from now on (the ticker hub).
    pub fn watch_interval(&self, interval: Interval) {
        self.lock().watched_interval = Some(interval);
    }

    /// The shard lost its last subscriber of `series`.
    pub fn unwatch(&self, series: &SeriesId) {
        let mut state = self.lock();
        state.watched.remove(series);
        state.resync.remove(series);
        if state.watched.is_empty() {
            state.watched.shrink_to_fit();
        }
    }

    /// Makes the shard re-read `series` from the store from candle time `time` (Unix s) on, at its next
    /// round (with whatever resync of it is already due, from the older of the two times). For changes that
    /// reached the store without [`CandleFeed::publish`], and for the rest of a catch-up the shard reads a
    /// page at a time. Nothing happens if the shard does not watch the series.
    pub fn resync_from(&self, series: SeriesId, time: i64) {
        let mut state = self.lock();
        if !state.watches(&series) {
            return;
        }
        let from = state.resync.get(&series).map_or(time, |&t| t.min(time));
        state.start_resync(series, from);
        drop(state);
        self.ready.notify_one();
    }

    /// Completes when something was published since the last [`Inbox::drain`]. A wake-up that comes
    /// while the shard is busy is kept, so none is lost.
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    /// Takes everything waiting.
    pub fn drain(&self) -> Drained {
        let mut state = self.lock();
        let updates = std::mem::take(&mut state.pending)
            .into_iter()
            .flatten()
            .collect();
        state.slots.clear();
        state.live = 0;
        let resync = state.resync.drain().collect();
        let coalesced = std::mem::take(&mut state.coalesced);
        Drained {
            updates,
            resync,
            coalesced,
        }
    }
}

impl InboxState {
    fn watches(&self, series: &SeriesId) -> bool {
        self.watched_interval == Some(series.1) || self.watched.contains(series)
    }

    /// Stores `update` if the shard watches its series. `true` if the shard has something new to do.
    fn offer(&mut self, series: SeriesId, update: &mut dyn FnMut() -> Arc<CandleUpdate>) -> bool {
        if !self.watches(&series) {
            return false;
        }
        let update = update();
        let time = update.candle.time;
        if let Some(oldest) = self.resync.get_mut(&series) {
            *oldest = (*oldest).min(time);
            return true;
        }
        if let Some(&index) = self.slots.get(&(series, time)) {
            self.pending[index] = Some(update);
            self.coalesced += 1;
            return true;
        }
        if self.live >= self.capacity {
            self.start_resync(series, time);
            return true;
        }
        self.slots.insert((series, time), self.pending.len());
        self.pending.push(Some(update));
        self.live += 1;
        true
    }

    /// Drops the waiting entries of `series`; the shard re-reads it from the oldest candle dropped.
    fn start_resync(&mut self, series: SeriesId, time: i64) {
        let mut oldest = time;
        let dropped: Vec<_> = self
            .slots
            .iter()
            .filter(|((s, _), _)| *s == series)
            .map(|(key, index)| (*key, *index))
            .collect();
        for ((_, candle_time), index) in dropped {
            oldest = oldest.min(candle_time);
            self.slots.remove(&(series, candle_time));
            self.pending[index] = None;
            self.live -= 1;
        }
        self.resync.insert(series, oldest);
    }
}

/// The publisher's handle: the pipeline holds it, each hub shard reads one [`Inbox`], the ticker hub one.
#[derive(Clone)]
pub struct CandleFeed {
    inboxes: Arc<[Arc<Inbox>]>,
    tickers: Arc<Inbox>,
    trades: Arc<TradeFeed>,
    names: Arc<TokenNames>,
}

impl CandleFeed {
    /// A feed read by `shards` readers (at least one), each inbox holding at most `capacity` candles (the
    /// ticker hub's too), and a trade feed holding at most `capacity` trades.
    pub fn new(shards: usize, capacity: usize) -> CandleFeed {
        CandleFeed {
            inboxes: (0..shards.max(1))
                .map(|_| Arc::new(Inbox::new(capacity)))
                .collect(),
            tickers: Arc::new(Inbox::new(capacity)),
            trades: Arc::new(TradeFeed::new(capacity)),
            names: Arc::default(),
        }
    }

    /// The committed trades, for the trade hub.
    pub fn trades(&self) -> &Arc<TradeFeed> {
        &self.trades
    }

    /// The ticker hub's inbox (it watches nothing until the hub starts).
    pub fn tickers(&self) -> &Arc<Inbox> {
        &self.tickers
    }

    /// The token names, added to after each write that stores some.
    pub fn names(&self) -> &Arc<TokenNames> {
        &self.names
    }

    /// The shards' inboxes, then the ticker hub's.
    fn every_inbox(&self) -> impl Iterator<Item = &Arc<Inbox>> {
        self.inboxes.iter().chain(std::iter::once(&self.tickers))
    }

    /// Changes the store took but the live stream does not push (late corrections of final candles, given as
    /// series → oldest candle time): the ticker hub re-reads those series from the store, as after an
    /// overflow; the shards do not (a late correction is not pushed live).
    pub fn stored_late(&self, late: impl IntoIterator<Item = (SeriesId, i64)>) {
        for (id, time) in late {
            self.tickers.resync_from(id, time);
        }
    }

    /// A feed nobody reads (tools that run the pipeline without a push service).
    pub fn unread() -> CandleFeed {
        CandleFeed::new(1, 1)
    }

    pub fn inboxes(&self) -> &[Arc<Inbox>] {
        &self.inboxes
    }

    /// Makes every shard that watches one of `series` re-read it from the store from the given candle time
    /// (Unix s) on, as after an overflow: for changes that reached the store other than through
    /// [`CandleFeed::publish`] (an edge loading a snapshot).
    pub fn resync(&self, series: &HashMap<SeriesId, i64>) {
        for inbox in self.every_inbox() {
            for (id, &time) in series {
                inbox.resync_from(*id, time);
            }
        }
    }

    /// Publishes a committed group's candle changes, in order. `make` builds a change's update; it is
    /// called at most once per change, and only if some shard watches the series. Returns how many
    /// changes some shard watched.
    pub fn publish<C>(
        &self,
        changes: impl IntoIterator<Item = C>,
        series: impl Fn(&C) -> SeriesId,
        make: impl Fn(&C) -> CandleUpdate,
    ) -> usize {
        let mut states: Vec<_> = self.every_inbox().map(|inbox| inbox.lock()).collect();
        let mut woken = vec![false; states.len()];
        let mut watched = 0;
        for change in changes {
            let id = series(&change);
            let mut built: Option<Arc<CandleUpdate>> = None;
            let mut update = || built.get_or_insert_with(|| Arc::new(make(&change))).clone();
            let mut any = false;
            for (state, woken) in states.iter_mut().zip(woken.iter_mut()) {
                if state.offer(id, &mut update) {
                    *woken = true;
                    any = true;
                }
            }
            watched += usize::from(any);
        }
        drop(states);
        for (inbox, woken) in self.every_inbox().zip(woken) {
            if woken {
                inbox.ready.notify_one();
            }
        }
        watched
    }
}

#[cfg(test)]
mod tests;
