//! The trade hub: who subscribed the trades of which mint, and the delivery of every committed trade to
//! them, each **once per connection**, in block order, after the connection's snapshot.
//!
//! One task on a thread of its own (like the candle shards, it must not be starved by connection tasks) owns
//! the index (mint → members); connections change it only through [`TradeHub`] commands over a bounded queue.
//! It reads the trade feed ([`kline_pipeline::feed::trades`]) and does nothing for the mints nobody
//! subscribed: the candle hot path is not touched.
//!
//! Rules, per member (one connection's subscription to one mint):
//! 1. **Gate.** From [`TradeHub::join`] until [`TradeHub::open`], trades of the mint are held at the
//!    member (at most `capacity`; beyond, the held trades are dropped and re-read from the store when the
//!    gate opens). The connection reads its snapshot in between; `open` runs the connection's reply (the
//!    snapshot) on the hub's thread, then delivers the held trades newer than the snapshot's newest.
//! 2. **Block order, once.** A member is delivered only trades after the last one it got (by block
//!    position: slot, `tx_index`, event index); the trades of one read of the feed are sorted by position
//!    first. So whatever path a trade takes (the feed, a catch-up read, the gate), it arrives once and in
//!    order. A *late* trade (committed after a newer one was delivered: a backfill of an older slot) is
//!    not pushed; `GET /api/v1/trades` has it.
//! 3. **Catch-up.** When the feed dropped trades of a mint (its overflow policy), the hub re-reads them
//!    from the store in pages of `capacity` and delivers them under rule 2.
//! 4. **Slow consumers.** Delivery goes through each transport's bounded buffer with its own overflow
//!    policy (the same as candles': `/ws` closes with 4008, Socket.IO disconnects); a closed subscriber
//!    leaves the index.

use std::collections::HashMap;
use std::sync::Arc;

use kline_protocol::Symbol;
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use super::Subscriber;
use super::hub::ConnectionId;
use kline_core::event::EventId;
use kline_core::event::TradePosition;
use kline_core::stats::PushStats;
use kline_pipeline::feed::trades::{DrainedTrades, LiveTrade, TradeFeed};
use kline_store::CandleStore;

/// A trade's place in block order ([`TradePosition::order`]).
type TradeOrder = (u64, u32, u32, [u8; 64]);

/// Runs on the hub's thread when a gate opens, before the held trades: the transport queues its snapshot.
pub type Reply = Box<dyn FnOnce() + Send>;

enum Command {
    Join {
        conn: ConnectionId,
        mint: [u8; 32],
        subscriber: Subscriber,
        done: oneshot::Sender<()>,
    },
    Open {
        conn: ConnectionId,
        mint: [u8; 32],
        floor: Option<TradePosition>,
        reply: Reply,
        done: oneshot::Sender<()>,
    },
    Leave {
        conn: ConnectionId,
        mint: [u8; 32],
        done: oneshot::Sender<()>,
    },
    Disconnect {
        conn: ConnectionId,
        mints: Vec<[u8; 32]>,
        done: oneshot::Sender<()>,
    },
}

/// The handle connections use. Cheap to clone.
#[derive(Clone)]
pub struct TradeHub {
    commands: mpsc::Sender<Command>,
}

impl TradeHub {
    async fn call(&self, command: Command, wait: oneshot::Receiver<()>) {
        if self.commands.send(command).await.is_ok() {
            let _ = wait.await;
        }
    }

    /// Adds `conn` to the trade subscribers of `mint`, gated (rule 1); returns once the index has it.
    /// Joining again re-gates the member (a new snapshot follows).
    pub async fn join(&self, conn: ConnectionId, mint: [u8; 32], subscriber: Subscriber) {
        let (done, wait) = oneshot::channel();
        let command = Command::Join {
            conn,
            mint,
            subscriber,
            done,
        };
        self.call(command, wait).await;
    }

    /// Opens the gate: runs `reply` (queues the snapshot), then delivers what is newer than `floor` (the
    /// snapshot's newest trade, or the trade a resume started after; `None`: the mint had no trade).
    pub async fn open(
        &self,
        conn: ConnectionId,
        mint: [u8; 32],
        floor: Option<TradePosition>,
        reply: Reply,
    ) {
        let (done, wait) = oneshot::channel();
        let command = Command::Open {
            conn,
            mint,
            floor,
            reply,
            done,
        };
        self.call(command, wait).await;
    }

    /// Removes `conn` from `mint`; once this returns no trade of it is pushed to `conn`.
    pub async fn leave(&self, conn: ConnectionId, mint: [u8; 32]) {
        let (done, wait) = oneshot::channel();
        self.call(Command::Leave { conn, mint, done }, wait).await;
    }

    /// Removes every trade subscription of a closed connection.
    pub async fn disconnect(&self, conn: ConnectionId, mints: Vec<[u8; 32]>) {
        if mints.is_empty() {
            return;
        }
        let (done, wait) = oneshot::channel();
        self.call(Command::Disconnect { conn, mints, done }, wait)
            .await;
    }
}

/// Starts the trade hub on a thread of its own; it ends when `shutdown` is cancelled. `capacity` bounds a
/// gate's held trades and a catch-up page (`kline.broadcast_buffer_size`, like the feed).
pub fn spawn(
    feed: Arc<TradeFeed>,
    store: Arc<CandleStore>,
    queue_capacity: usize,
    capacity: usize,
    stats: Arc<PushStats>,
    shutdown: CancellationToken,
) -> (TradeHub, std::thread::JoinHandle<()>) {
    let (commands, rx) = mpsc::channel(queue_capacity.max(1));
    let hub = Hub {
        members: HashMap::new(),
        feed,
        store,
        capacity: capacity.max(1),
        stats,
    };
    let thread = kline_core::own_thread::spawn("kline-trade-hub", move || hub.run(rx, shutdown));
    (TradeHub { commands }, thread)
}

struct Member {
    conn: ConnectionId,
    subscriber: Subscriber,
    /// The last trade delivered (rule 2).
    last: Option<TradeOrder>,
    /// `Some` while gated (rule 1).
    held: Option<Held>,
}

#[derive(Default)]
struct Held {
    trades: Vec<Arc<LiveTrade>>,
    /// More than `capacity` came: re-read from the store when the gate opens.
    overflowed: bool,
}

struct Hub {
    members: HashMap<[u8; 32], Vec<Member>>,
    feed: Arc<TradeFeed>,
    store: Arc<CandleStore>,
    capacity: usize,
    stats: Arc<PushStats>,
}

impl Hub {
    async fn run(mut self, mut commands: mpsc::Receiver<Command>, shutdown: CancellationToken) {
        let feed = self.feed.clone();
        loop {
            tokio::select! {
                biased;
                _ = shutdown.cancelled() => break,
                Some(command) = commands.recv() => self.apply(command),
                _ = feed.ready() => {
                    let drained = feed.drain();
                    self.deliver(drained);
                }
            }
        }
    }

    fn apply(&mut self, command: Command) {
        match command {
            Command::Join {
                conn,
                mint,
                subscriber,
                done,
            } => {
                let list = self.members.entry(mint).or_default();
                if list.is_empty() {
                    self.feed.watch(mint);
                }
                match list.iter_mut().find(|member| member.conn == conn) {
                    Some(member) => member.held = Some(Held::default()),
                    None => {
                        list.push(Member {
                            conn,
                            subscriber,
                            last: None,
                            held: Some(Held::default()),
                        });
                        self.stats.trade_subscriptions_active.inc();
                    }
                }
                let _ = done.send(());
            }
            Command::Open {
                conn,
                mint,
                floor,
                reply,
                done,
            } => {
                self.open(conn, mint, floor, reply);
                let _ = done.send(());
            }
            Command::Leave { conn, mint, done } => {
                self.remove(conn, &mint);
                let _ = done.send(());
            }
            Command::Disconnect { conn, mints, done } => {
                for mint in &mints {
                    self.remove(conn, mint);
                }
                let _ = done.send(());
            }
        }
    }

    fn remove(&mut self, conn: ConnectionId, mint: &[u8; 32]) {
        let Some(list) = self.members.get_mut(mint) else {
            return;
        };
        if let Some(index) = list.iter().position(|member| member.conn == conn) {
            list.swap_remove(index);
            self.stats.trade_subscriptions_active.dec_by(1);
        }
        if list.is_empty() {
            self.members.remove(mint);
            self.feed.unwatch(mint);
        }
    }

    fn open(
        &mut self,
        conn: ConnectionId,
        mint: [u8; 32],
        floor: Option<TradePosition>,
        reply: Reply,
    ) {
        let Some(member) = self
            .members
            .get_mut(&mint)
            .and_then(|list| list.iter_mut().find(|member| member.conn == conn))
        else {
            return;
        };
        reply();
        member.last = floor.map(|position| position.order());
        let held = member.held.take().unwrap_or_default();
        if held.overflowed {
            let from = floor.unwrap_or(FIRST_POSITION);
            self.catch_up(mint, from, Some(conn));
            return;
        }
        let mut trades = held.trades;
        sort_by_position(&mut trades);
        if !deliver_to(member, &trades, &self.stats) {
            self.remove(conn, &mint);
        }
    }

    /// Delivers one read of the feed: per mint, sorted by block position; then the mints to catch up.
    fn deliver(&mut self, drained: DrainedTrades) {
        let mut by_mint: HashMap<[u8; 32], Vec<Arc<LiveTrade>>> = HashMap::new();
        for trade in drained.trades {
            by_mint.entry(trade.mint).or_default().push(trade);
        }
        for (mint, mut trades) in by_mint {
            sort_by_position(&mut trades);
            self.deliver_mint(mint, &trades, None);
        }
        for (mint, from) in drained.resync {
            kline_core::stats::add(&self.stats.trade_feed_lagged, 1);
            tracing::warn!(
                symbol = %Symbol::from_bytes(&mint), slot = from.slot,
                "trade hub fell behind the trade feed; catching up from the store"
            );
            self.catch_up(mint, from, None);
        }
    }

    /// Delivers `trades` (sorted) to the members of `mint` (only to `conn`'s if given).
    fn deliver_mint(
        &mut self,
        mint: [u8; 32],
        trades: &[Arc<LiveTrade>],
        only: Option<ConnectionId>,
    ) {
        let Some(list) = self.members.get_mut(&mint) else {
            return;
        };
        let capacity = self.capacity;
        let before = list.len();
        list.retain_mut(|member| {
            if only.is_some_and(|conn| conn != member.conn) {
                return true;
            }
            if let Some(held) = &mut member.held {
                hold(held, trades, capacity);
                return true;
            }
            deliver_to(member, trades, &self.stats)
        });
        let removed = before - list.len();
        if removed > 0 {
            self.stats.trade_subscriptions_active.dec_by(removed as u64);
        }
        if list.is_empty() {
            self.members.remove(&mint);
            self.feed.unwatch(&mint);
        }
    }

    /// Re-reads the trades of `mint` from `from` on (inclusive) from the store, page by page, and delivers
    /// them (rule 3).
    fn catch_up(&mut self, mint: [u8; 32], mut from: TradePosition, only: Option<ConnectionId>) {
        loop {
            if !self.members.contains_key(&mint) {
                return;
            }
            let page = match self.store.trades_from(&mint, &from, self.capacity) {
                Ok(page) => page,
                Err(err) => {
                    tracing::error!(error = %err, "trade hub: re-reading trades from the store failed");
                    return;
                }
            };
            let Some(newest) = page.trades.last() else {
                return;
            };
            from = TradePosition::of_trade(newest);
            let trades: Vec<Arc<LiveTrade>> = page
                .trades
                .into_iter()
                .map(|trade| Arc::new(self.stored_trade(mint, trade)))
                .collect();
            self.deliver_mint(mint, &trades, only);
            if !page.has_more {
                return;
            }
        }
    }

    fn stored_trade(&self, mint: [u8; 32], trade: kline_protocol::Trade) -> LiveTrade {
        let id = EventId {
            signature: trade.id.signature_bytes(),
            event_index: trade.id.event_index(),
        };
        let event_json = match self.store.event_json(&id) {
            Ok(Some(json)) => json,
            _ => "null".to_owned(),
        };
        LiveTrade::new(mint, TradePosition::of_trade(&trade), trade, event_json)
    }
}

/// The lowest position (a catch-up for a member whose snapshot was empty starts there).
const FIRST_POSITION: TradePosition = TradePosition {
    slot: 0,
    tx_index: Some(0),
    event_index: 0,
    signature: [0; 64],
};

fn sort_by_position(trades: &mut [Arc<LiveTrade>]) {
    trades.sort_by_key(|trade| trade.position.order());
}

fn hold(held: &mut Held, trades: &[Arc<LiveTrade>], capacity: usize) {
    if held.overflowed {
        return;
    }
    if held.trades.len() + trades.len() > capacity {
        held.overflowed = true;
        held.trades = Vec::new();
        return;
    }
    held.trades.extend(trades.iter().cloned());
}

/// Delivers the trades after the member's last one (rule 2). `false`: the subscriber is closed.
fn deliver_to(member: &mut Member, trades: &[Arc<LiveTrade>], stats: &PushStats) -> bool {
    let mut fresh: Vec<Arc<LiveTrade>> = Vec::with_capacity(trades.len());
    for trade in trades {
        let order = trade.position.order();
        if member.last.is_none_or(|last| order > last) {
            member.last = Some(order);
            fresh.push(trade.clone());
        }
    }
    if fresh.is_empty() {
        return true;
    }
    kline_core::stats::add(&stats.trades_delivered, fresh.len());
    member.subscriber.push_trades(&fresh)
}

#[cfg(test)]
mod tests;
