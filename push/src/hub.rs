//! The subscription hub: the subscription index (series → subscribers) and the fan-out, in shards.
//!
//! Each shard is a task on a thread of its own and the one owner of the subscriptions of its share of the
//! connections (connection id modulo the shard count), so fan-out writes spread over the cores with no shared
//! index and no lock. Each shard reads its own [`Inbox`] of the candle feed at its own pace (a shard that
//! falls behind gets the newest state of each candle, never a gap: see [`kline_pipeline::feed`]) and its
//! connections' commands. For each update the `kline_data` frame is encoded **once** (shared by every shard)
//! and the updates of a series that one read brought are pushed into every subscriber's outbox together,
//! which writes them to the socket at once, in one write, when it has room (never blocking: see each
//! transport's overflow policy, e.g. [`crate::websocket::outbox::Outbox`]'s). Connections change the index
//! only through [`Hub`] commands over a bounded queue; their writers run on other threads.
//!
//! A final that comes alone (when the candles of a second close, every s1 series gets one at once) is
//! held back for at most `websocket.final_hold_ms` and rides along with its series' next update in the
//! same write, so the closing of a second is not a burst of one write per subscriber. Finals whose hold
//! ran out go a few series at a time, fresh updates first (a burst of lone finals does not delay them).
//!
//! Each shard also remembers the last states it delivered of each series' recent candles (its
//! *frontier*), so whatever path an update takes (the inbox, or a re-read of the store after the inbox
//! overflowed), a subscriber never gets an older state of a candle after a newer one, nor a final twice.
//!
//! A re-read (after an overflow, or after an edge loaded a snapshot) is complete for any lag: it reads the
//! series forward from the oldest candle missed, `websocket.hub_resync_page` candles per round of the
//! shard's loop, and puts the rest back in the inbox's resync, so memory holds one page and the shard's
//! other series and commands are served between pages.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

use kline_protocol::Symbol;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::{SeriesKey, Subscriber};
use kline_core::clock::now_ms;
use kline_core::stats::PushStats;
use kline_pipeline::feed::{CandleFeed, CandleUpdate, CandleVersion, Drained, Inbox, SeriesId};
use kline_store::CandleStore;

/// Identifies one connection in the index.
pub type ConnectionId = u64;

static NEXT_CONNECTION: AtomicU64 = AtomicU64::new(1);

/// A new connection id, unique over every transport (the index tells subscribers apart by it).
pub fn next_connection_id() -> ConnectionId {
    NEXT_CONNECTION.fetch_add(1, Ordering::Relaxed)
}

enum Command {
    Subscribe {
        conn: ConnectionId,
        series: SeriesKey,
        subscriber: Subscriber,
        done: oneshot::Sender<()>,
    },
    Unsubscribe {
        conn: ConnectionId,
        series: SeriesKey,
        done: oneshot::Sender<()>,
    },
    Disconnect {
        conn: ConnectionId,
        series: Vec<SeriesKey>,
        done: oneshot::Sender<()>,
    },
    /// Test hook: the shard does nothing (reads neither commands nor its inbox) until `resume` fires.
    #[cfg(test)]
    Pause { resume: oneshot::Receiver<()> },
}

/// The handle connections use: routes each connection's commands to its shard. Cheap to clone.
#[derive(Clone)]
pub struct Hub {
    shards: Arc<[mpsc::Sender<Command>]>,
}

impl Hub {
    fn shard(&self, conn: ConnectionId) -> &mpsc::Sender<Command> {
        &self.shards[(conn % self.shards.len() as u64) as usize]
    }

    /// Adds `conn` to the subscribers of `series` (again is a no-op); returns once the index has it.
    pub async fn subscribe(&self, conn: ConnectionId, series: SeriesKey, subscriber: Subscriber) {
        let (done, wait) = oneshot::channel();
        let command = Command::Subscribe {
            conn,
            series,
            subscriber,
            done,
        };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Removes `conn` from `series`; once this returns, no further update of it is pushed to `conn`.
    pub async fn unsubscribe(&self, conn: ConnectionId, series: SeriesKey) {
        let (done, wait) = oneshot::channel();
        let command = Command::Unsubscribe { conn, series, done };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Test hook: stalls the shard that serves `conn` until the returned sender is used or dropped.
    #[cfg(test)]
    pub async fn pause_shard_of(&self, conn: ConnectionId) -> oneshot::Sender<()> {
        let (resume_tx, resume) = oneshot::channel();
        let _ = self.shard(conn).send(Command::Pause { resume }).await;
        resume_tx
    }

    /// Removes every subscription of a closed connection; returns once the index no longer has them, so a
    /// client that sees its close frame never finds itself still counted.
    pub async fn disconnect(&self, conn: ConnectionId, series: Vec<SeriesKey>) {
        let (done, wait) = oneshot::channel();
        let command = Command::Disconnect { conn, series, done };
        if self.shard(conn).send(command).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// Starts one hub shard per inbox of `feed`, each on a thread of its own; they end when `shutdown` is
/// cancelled. `store` is read when a shard's inbox overflowed and it catches up.
///
/// Threads of their own, not tasks on the shared runtime: with thousands of connection tasks competing for
/// the worker threads, a hub task was starved under connection churn and fell behind the candle stream
/// (measured: 55,798 updates dropped by the broadcast channel in `kline-bench churn`).
pub fn spawn(
    feed: &CandleFeed,
    store: Arc<CandleStore>,
    settings: HubSettings,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) -> (Hub, Vec<std::thread::JoinHandle<()>>) {
    let mut senders = Vec::new();
    let mut threads = Vec::new();
    for (number, inbox) in feed.inboxes().iter().enumerate() {
        let (tx, rx) = mpsc::channel(settings.queue_capacity);
        let shard = Shard {
            resync_page: settings.resync_page.max(1),
            paging: HashSet::new(),
            index: HashMap::new(),
            frontiers: HashMap::new(),
            held: HeldFinals::new(settings.final_hold),
            inbox: inbox.clone(),
            store: store.clone(),
            stats: stats.clone(),
        };
        let shutdown = shutdown.clone();
        let thread = kline_core::own_thread::spawn(format!("kline-hub-{number}"), move || {
            shard.run(rx, shutdown)
        });
        senders.push(tx);
        threads.push(thread);
    }
    (
        Hub {
            shards: senders.into(),
        },
        threads,
    )
}

/// What the shards need from the configuration.
#[derive(Debug, Clone, Copy)]
pub struct HubSettings {
    /// Capacity of each shard's command queue.
    pub queue_capacity: usize,
    /// How long a lone final may wait for its series' next update (`websocket.final_hold_ms`).
    pub final_hold: Duration,
    /// Candles a re-read of a series reads per round (`websocket.hub_resync_page`).
    pub resync_page: usize,
}

fn series_id((symbol, interval): &SeriesKey) -> SeriesId {
    (symbol.to_bytes(), *interval)
}

/// How many recent candles of a series a shard remembers the delivered state of: more than the candles of
/// one series that can change at once (the open one, and those waiting for finality).
const FRONTIER_CANDLES: usize = 16;

/// The states a shard last delivered of a series' recent candles: `(time, version)`.
#[derive(Default)]
struct Frontier(VecDeque<(i64, CandleVersion)>);

impl Frontier {
    /// Records `update` and says whether it is to be delivered: not an older or equal state of a candle
    /// already delivered.
    fn admit(&mut self, update: &CandleUpdate) -> bool {
        let candle = &update.candle;
        match self.0.iter_mut().find(|(time, _)| *time == candle.time) {
            Some(known) if !update.is_newer_than(known.1) => false,
            Some(known) => {
                known.1 = update.version();
                true
            }
            None => {
                if self.0.len() == FRONTIER_CANDLES {
                    self.0.pop_front();
                }
                self.0.push_back((candle.time, update.version()));
                true
            }
        }
    }
}

/// Series whose due finals one round of a shard's loop sends (the second's close brings one per series
/// at once) before it looks at its inbox again.
const DUE_SERIES_PER_ROUND: usize = 4;

/// Finals waiting to ride along with their series' next update.
struct HeldFinals {
    hold: Duration,
    by_series: HashMap<SeriesId, Vec<Arc<CandleUpdate>>>,
    /// When each series' oldest held final is due, oldest first (entries of series already sent are
    /// skipped when they come up).
    due: VecDeque<(Instant, SeriesId)>,
}

impl HeldFinals {
    fn new(hold: Duration) -> HeldFinals {
        HeldFinals {
            hold,
            by_series: HashMap::new(),
            due: VecDeque::new(),
        }
    }

    /// Holds `finals` (all final) if holding is on; gives them back otherwise.
    fn hold(
        &mut self,
        series: SeriesId,
        finals: Vec<Arc<CandleUpdate>>,
    ) -> Option<Vec<Arc<CandleUpdate>>> {
        if self.hold.is_zero() {
            return Some(finals);
        }
        let held = self.by_series.entry(series).or_default();
        if held.is_empty() {
            self.due.push_back((Instant::now() + self.hold, series));
        }
        held.extend(finals);
        None
    }

    /// The finals held for `series`, to go before its next updates.
    fn take(&mut self, series: &SeriesId) -> Vec<Arc<CandleUpdate>> {
        self.by_series.remove(series).unwrap_or_default()
    }

    fn next_due(&self) -> Option<Instant> {
        self.due.front().map(|(at, _)| *at)
    }

    /// At most `limit` of the series whose held finals are due by `now`, oldest first, with their finals.
    fn take_due(&mut self, now: Instant, limit: usize) -> Vec<(SeriesId, Vec<Arc<CandleUpdate>>)> {
        let mut due = Vec::new();
        while let Some(&(at, series)) = self.due.front() {
            if at > now || due.len() == limit {
                break;
            }
            self.due.pop_front();
            if let Some(finals) = self.by_series.remove(&series) {
                due.push((series, finals));
            }
        }
        if self.by_series.is_empty() {
            self.due.clear();
        }
        due
    }
}

struct Shard {
    /// Candles one re-read of a series reads before the shard serves anything else.
    resync_page: usize,
    /// Series whose re-read goes on at the next round (not a new overflow: not counted again).
    paging: HashSet<SeriesId>,
    index: HashMap<SeriesId, Vec<(ConnectionId, Subscriber)>>,
    frontiers: HashMap<SeriesId, Frontier>,
    held: HeldFinals,
    inbox: Arc<Inbox>,
    store: Arc<CandleStore>,
    stats: Arc<PushStats>,
}

impl Shard {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        loop {
            let finals_due = self.held.next_due();
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.apply(command).await,
                _ = self.inbox.ready() => {
                    let drained = self.inbox.drain();
                    self.deliver(drained);
                }
                _ = tokio::time::sleep_until(finals_due.unwrap_or_else(Instant::now)),
                    if finals_due.is_some() => {
                    // A few series per round: fresh updates (a slot's, above) go first, and the finals
                    // still held then ride along with them in the same write.
                    for (series, finals) in self.held.take_due(Instant::now(), DUE_SERIES_PER_ROUND) {
                        self.deliver_series(series, finals);
                    }
                }
            }
        }
    }

    async fn apply(&mut self, command: Command) {
        match command {
            Command::Subscribe {
                conn,
                series,
                subscriber,
                done,
            } => {
                let id = series_id(&series);
                let list = self.index.entry(id).or_default();
                if list.is_empty() {
                    self.inbox.watch(id);
                }
                if !list.iter().any(|(known, _)| *known == conn) {
                    list.push((conn, subscriber));
                    self.stats.subscriptions_active.inc();
                }
                // Held finals go now: to the new subscriber they arrive behind its gate, where the
                // snapshot it is about to read decides whether it needs them.
                let held = self.held.take(&id);
                self.deliver_series(id, held);
                let _ = done.send(());
            }
            Command::Unsubscribe { conn, series, done } => {
                self.remove(conn, &series_id(&series));
                let _ = done.send(());
            }
            Command::Disconnect { conn, series, done } => {
                for series in &series {
                    self.remove(conn, &series_id(series));
                }
                let _ = done.send(());
            }
            #[cfg(test)]
            Command::Pause { resume } => {
                let _ = resume.await;
            }
        }
    }

    fn remove(&mut self, conn: ConnectionId, series: &SeriesId) {
        let Some(list) = self.index.get_mut(series) else {
            return;
        };
        if let Some(position) = list.iter().position(|(id, _)| *id == conn) {
            list.swap_remove(position);
            self.stats.subscriptions_active.dec_by(1);
        }
        if list.is_empty() {
            self.forget(series);
        }
    }

    /// The series has no subscriber left in this shard.
    fn forget(&mut self, series: &SeriesId) {
        self.index.remove(series);
        self.paging.remove(series);
        self.frontiers.remove(series);
        self.held.take(series);
        self.inbox.unwatch(series);
    }

    /// Delivers what one read of the inbox brought: per series, in order, each subscriber's share in one
    /// push; then the series that overflowed, re-read from the store a page each.
    fn deliver(&mut self, drained: Drained) {
        kline_core::stats::add(&self.stats.feed_coalesced, drained.coalesced as usize);
        // Per series: its updates, and whether lone finals may be held back (not a re-read's).
        let mut groups: Vec<(SeriesId, Vec<Arc<CandleUpdate>>, bool)> = Vec::new();
        let mut group_of: HashMap<SeriesId, usize> = HashMap::new();
        for update in drained.updates {
            let id = update.series();
            let index = *group_of.entry(id).or_insert_with(|| {
                groups.push((id, Vec::new(), true));
                groups.len() - 1
            });
            groups[index].1.push(update);
        }
        for (series, oldest) in drained.resync {
            if !self.index.contains_key(&series) {
                continue;
            }
            if !self.paging.remove(&series) {
                kline_core::stats::add(&self.stats.feed_lagged, 1);
            }
            let (updates, next) = self.reread(series, oldest);
            if let Some(next) = next {
                self.paging.insert(series);
                self.inbox.resync_from(series, next);
            }
            groups.push((series, updates, false));
        }
        for (series, updates, holdable) in groups {
            if !self.index.contains_key(&series) {
                continue;
            }
            let updates = if holdable && updates.iter().all(|update| update.candle.is_final) {
                match self.held.hold(series, updates) {
                    Some(updates) => updates,
                    None => continue,
                }
            } else {
                let mut with_held = self.held.take(&series);
                with_held.extend(updates);
                with_held
            };
            self.deliver_series(series, updates);
        }
    }

    fn deliver_series(&mut self, series: SeriesId, mut updates: Vec<Arc<CandleUpdate>>) {
        let frontier = self.frontiers.entry(series).or_default();
        updates.retain(|update| frontier.admit(update));
        if updates.is_empty() {
            return;
        }
        let Some(list) = self.index.get_mut(&series) else {
            return;
        };
        let mut replaced = 0;
        let before = list.len();
        // A closed subscriber (client gone or too slow) leaves the index here even before its Disconnect.
        list.retain(|(_, subscriber)| match subscriber.deliver(&updates) {
            Some(n) => {
                replaced += n;
                true
            }
            None => false,
        });
        let removed = before - list.len();
        if removed > 0 {
            self.stats.subscriptions_active.dec_by(removed as u64);
        }
        if list.is_empty() {
            self.forget(&series);
        }
        kline_core::stats::add(&self.stats.updates_replaced, replaced);
    }

    /// The current states of the series' candles from `oldest` on, a page of them, read from the store
    /// (the pipeline publishes only after writing, so the store has every state the inbox dropped, or a
    /// newer one), and where the next page starts if the page was full.
    fn reread(
        &self,
        (mint, interval): SeriesId,
        oldest: i64,
    ) -> (Vec<Arc<CandleUpdate>>, Option<i64>) {
        let (candles, next) = match self.store.candles_after(
            &mint,
            interval,
            oldest,
            self.resync_page,
        ) {
            Ok(page) => page,
            Err(err) => {
                tracing::error!(error = %err, "hub: re-reading a series after an inbox overflow failed");
                return (Vec::new(), None);
            }
        };
        let symbol = Symbol::from_bytes(&mint);
        tracing::warn!(
            symbol = %symbol, %interval, from = oldest, candles = candles.len(), more = next.is_some(),
            "hub shard fell behind the candle feed; catching up from the store"
        );
        let produced_at_ms = now_ms();
        let updates = candles
            .iter()
            .map(|state| {
                Arc::new(CandleUpdate::new(
                    symbol.clone(),
                    interval,
                    state.to_candle(),
                    produced_at_ms,
                    None,
                    false,
                ))
            })
            .collect();
        (updates, next)
    }
}

#[cfg(test)]
pub(crate) mod tests;
