//! The ticker hub: every mint's last price and 24-hour numbers ([`kline_protocol::ticker`]), pushed to the
//! connections that subscribed the ticker stream as a snapshot, then at most one message a second.
//!
//! One task on a thread of its own (like the trade hub) owns the [`TickerBook`] and the subscribers;
//! connections change the subscribers only through [`TickerHub`] commands over a bounded queue
//! (`websocket.hub_queue_capacity`; a full queue makes the connection wait, as for the other hubs). It
//! reads the `h1` candles from an inbox of the live feed that watches the whole interval, loads the book
//! from the store when it starts, and re-reads a mint's window from the store when its inbox overflowed or
//! a late correction was stored (`feed::CandleFeed::stored_late`).
//!
//! Rules, per subscriber (one connection; a second `subscribe_tickers` re-joins: a new snapshot):
//! 1. **Snapshot first.** A join runs the connection's reply with every mint's ticker on the hub's thread;
//!    every later round is queued after it, so nothing older than the snapshot follows it.
//! 2. **One message a round.** Every [`ROUND`] the hub takes the mints whose ticker changed since the last
//!    round and sends one [`TickerRound`] holding all of them, encoded once, to every subscriber: at most one
//!    message a second per connection, however fast events come.
//! 3. **Limits.** At most `kline.max_ticker_subscriptions` subscribers per node; a join beyond gets
//!    [`TickerRefused::Full`]. The stream needs `h1` among `kline.intervals` (else no hub runs).
//! 4. **Slow readers.** Delivery goes through the transport's bounded buffer with its policy: on `/ws` a
//!    round that finds the previous one still unsent is merged into it (the reader gets the newest ticker
//!    of every mint that changed); a reader that stops reading is closed with 4008 like for candles, and
//!    leaves the hub.

mod book;
mod round;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use kline_protocol::ticker::{WINDOW_HOURS, window_start};
use kline_protocol::{Interval, Ticker};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

pub use book::TickerBook;
pub use round::TickerRound;

use super::Subscriber;
use super::hub::ConnectionId;
use kline_core::clock::now_ms;
use kline_core::stats::PushStats;
use kline_pipeline::feed::{CandleFeed, Drained, Inbox};
use kline_store::{CandleStore, HistoryQuery};

/// How often the changed tickers go out.
pub const ROUND: Duration = Duration::from_secs(1);

/// Runs on the hub's thread when a subscriber joins: the transport queues its snapshot (window start,
/// every mint's ticker).
pub type SnapshotReply = Box<dyn FnOnce(i64, Vec<Ticker>) + Send>;

/// Why a `subscribe_tickers` was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TickerRefused {
    #[error(
        "ticker subscription limit reached ({limit} per server: kline.max_ticker_subscriptions); try another server or later"
    )]
    Full { limit: usize },
    #[error(
        "the ticker stream needs the h1 interval, which this server does not keep (kline.intervals)"
    )]
    NoHourlyCandles,
    #[error("the server is shutting down")]
    Stopped,
}

enum Command {
    Join {
        conn: ConnectionId,
        subscriber: Subscriber,
        reply: SnapshotReply,
        done: oneshot::Sender<Result<(), TickerRefused>>,
    },
    Leave {
        conn: ConnectionId,
        done: oneshot::Sender<()>,
    },
}

/// The handle connections use. Cheap to clone. Without `h1` candles there is no hub and every join is
/// refused.
#[derive(Clone)]
pub struct TickerHub {
    commands: Option<mpsc::Sender<Command>>,
}

impl TickerHub {
    /// A handle that refuses every join ([`TickerRefused::NoHourlyCandles`]).
    pub fn without_hourly_candles() -> TickerHub {
        TickerHub { commands: None }
    }

    /// Adds `conn` (again) and runs `reply` with the snapshot on the hub's thread (rule 1).
    pub async fn join(
        &self,
        conn: ConnectionId,
        subscriber: Subscriber,
        reply: SnapshotReply,
    ) -> Result<(), TickerRefused> {
        let commands = self
            .commands
            .as_ref()
            .ok_or(TickerRefused::NoHourlyCandles)?;
        let (done, wait) = oneshot::channel();
        let command = Command::Join {
            conn,
            subscriber,
            reply,
            done,
        };
        if commands.send(command).await.is_err() {
            return Err(TickerRefused::Stopped);
        }
        wait.await.unwrap_or(Err(TickerRefused::Stopped))
    }

    /// Removes `conn`; once this returns no round is pushed to it.
    pub async fn leave(&self, conn: ConnectionId) {
        let Some(commands) = &self.commands else {
            return;
        };
        let (done, wait) = oneshot::channel();
        if commands.send(Command::Leave { conn, done }).await.is_ok() {
            let _ = wait.await;
        }
    }
}

/// What the hub is told by the configuration.
#[derive(Debug, Clone, Copy)]
pub struct TickerSettings {
    /// `kline.max_ticker_subscriptions`.
    pub max_subscriptions: usize,
    /// `websocket.hub_queue_capacity`.
    pub queue_capacity: usize,
}

/// Starts the ticker hub on a thread of its own when `intervals` has `h1` (else a handle that refuses,
/// and no thread); it ends when `shutdown` is cancelled.
pub fn spawn(
    feed: &CandleFeed,
    store: Arc<CandleStore>,
    intervals: &[Interval],
    settings: TickerSettings,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) -> (TickerHub, Option<std::thread::JoinHandle<()>>) {
    if !intervals.contains(&Interval::H1) {
        return (TickerHub::without_hourly_candles(), None);
    }
    let inbox = feed.tickers().clone();
    // From now on every h1 state is kept for the hub: those published while the book loads follow it.
    inbox.watch_interval(Interval::H1);
    let (commands, rx) = mpsc::channel(settings.queue_capacity.max(1));
    let hub = Hub {
        book: TickerBook::new(current_window_start(), feed.names().clone()),
        members: HashMap::new(),
        store,
        inbox,
        max_subscriptions: settings.max_subscriptions,
        stats,
    };
    let thread = kline_core::own_thread::spawn("kline-ticker-hub", move || hub.run(rx, shutdown));
    let handle = TickerHub {
        commands: Some(commands),
    };
    (handle, Some(thread))
}

fn current_window_start() -> i64 {
    window_start(now_ms().div_euclid(1000))
}

/// Candles a window can hold (one more for a read that spans an hour's turn).
const WINDOW_CANDLES: usize = WINDOW_HOURS as usize + 1;

struct Hub {
    book: TickerBook,
    members: HashMap<ConnectionId, Subscriber>,
    store: Arc<CandleStore>,
    inbox: Arc<Inbox>,
    max_subscriptions: usize,
    stats: Arc<PushStats>,
}

impl Hub {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        self.load_all();
        let inbox = self.inbox.clone();
        let mut rounds = tokio::time::interval(ROUND);
        rounds.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                _ = rounds.tick() => self.round(),
                Some(command) = commands.recv() => self.apply(command),
                _ = inbox.ready() => {
                    let drained = inbox.drain();
                    self.take(drained);
                }
            }
        }
        self.stats
            .ticker_subscriptions_active
            .dec_by(self.members.len() as u64);
    }

    /// Every known mint's window, from the store.
    fn load_all(&mut self) {
        let started = Instant::now();
        let symbols = match self.store.symbols() {
            Ok(symbols) => symbols,
            Err(err) => {
                tracing::error!(error = %err, "ticker hub: cannot read the symbols; starting empty");
                return;
            }
        };
        for (mint, stats) in symbols {
            let candles = self.window_candles(&mint).unwrap_or_default();
            self.book.load(mint, Some(stats.last_price), candles);
        }
        self.book.take_changed();
        tracing::info!(
            mints = self.book.len(),
            elapsed_ms = started.elapsed().as_millis() as u64,
            "ticker hub loaded the 24-hour windows"
        );
    }

    /// The mint's `h1` candles in the window, or (none there) its newest one, for the price.
    fn window_candles(&self, mint: &[u8; 32]) -> Option<Vec<kline_protocol::Candle>> {
        let query = |from, limit| HistoryQuery {
            from,
            to: None,
            limit,
        };
        let read = |query| match self.store.history(mint, Interval::H1, query) {
            Ok(page) => Some(page.candles),
            Err(err) => {
                tracing::error!(error = %err, "ticker hub: cannot read a window from the store");
                None
            }
        };
        let window = read(query(Some(self.book.window_start()), WINDOW_CANDLES))?;
        let candles = if window.is_empty() {
            read(query(None, 1))?
        } else {
            window
        };
        Some(candles.iter().map(|state| state.to_candle()).collect())
    }

    /// Applies what the inbox held: live states, then the mints to re-read.
    fn take(&mut self, drained: Drained) {
        for update in &drained.updates {
            if update.interval == Interval::H1 {
                self.book
                    .apply(update.symbol.to_bytes(), update.candle, update.version());
            }
        }
        for ((mint, interval), _) in drained.resync {
            if interval == Interval::H1
                && let Some(candles) = self.window_candles(&mint)
            {
                self.book.load(mint, None, candles);
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Join {
                conn,
                subscriber,
                reply,
                done,
            } => {
                if !self.members.contains_key(&conn) && self.members.len() >= self.max_subscriptions
                {
                    let _ = done.send(Err(TickerRefused::Full {
                        limit: self.max_subscriptions,
                    }));
                    return;
                }
                self.book.advance(current_window_start());
                self.book.refresh_names();
                reply(self.book.window_start(), self.book.snapshot());
                if self.members.insert(conn, subscriber).is_none() {
                    self.stats.ticker_subscriptions_active.inc();
                }
                let _ = done.send(Ok(()));
            }
            Command::Leave { conn, done } => {
                if self.members.remove(&conn).is_some() {
                    self.stats.ticker_subscriptions_active.dec_by(1);
                }
                let _ = done.send(());
            }
        }
    }

    /// Rule 2: the changed tickers, once, to every subscriber.
    fn round(&mut self) {
        self.book.advance(current_window_start());
        self.book.refresh_names();
        let changed = self.book.take_changed();
        if changed.is_empty() || self.members.is_empty() {
            return;
        }
        let round = Arc::new(TickerRound::new(self.book.window_start(), changed));
        let before = self.members.len();
        self.members
            .retain(|_, subscriber| subscriber.push_tickers(&round));
        kline_core::stats::add(&self.stats.tickers_delivered, self.members.len());
        let left = before - self.members.len();
        if left > 0 {
            self.stats.ticker_subscriptions_active.dec_by(left as u64);
        }
    }
}
