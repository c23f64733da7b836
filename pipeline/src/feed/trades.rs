//! The live trade feed: from the pipeline (the one publisher) to the trade hub (the push crate's
//! `trade_hub`).
//!
//! Trades are not coalesced like candles (every trade matters): the inbox keeps every published trade of
//! the mints the trade hub watches (someone subscribed their trades), in the order the pipeline committed
//! them, and nothing of the other mints. Publishing costs one atomic load when nobody watches any mint.
//!
//! Overflow policy: the inbox holds at most `capacity` trades (`kline.broadcast_buffer_size`). A trade
//! that does not fit puts its mint in *resync*: the mint's waiting trades are dropped, later ones are not
//! stored, and the hub re-reads the mint's trades from the store, from the oldest position it dropped, in
//! pages of `capacity` (the pipeline publishes only after writing, so the store holds every dropped trade).
//! Memory stays bounded; a slow hub catches up without a gap.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use bytes::Bytes;
use kline_protocol::Trade;
use serde_json::value::RawValue;
use tokio::sync::Notify;

use kline_core::event::TradePosition;

/// One committed trade, shared by every subscriber it goes to.
#[derive(Debug)]
pub struct LiveTrade {
    pub mint: [u8; 32],
    pub position: TradePosition,
    pub trade: Trade,
    /// The stored event (the old server's event JSON, for Socket.IO's `event_data`).
    pub event_json: String,
    /// The `/ws` `trade` frame, encoded by the first delivery and shared.
    pub ws_frame: OnceLock<Bytes>,
    /// The Socket.IO `event_data` payload, encoded by the first delivery and shared.
    pub socketio_payload: OnceLock<Box<RawValue>>,
    /// The WebSocket frame of the `event_data` packet for Socket.IO's direct websocket transport, made once
    /// and shared.
    pub socketio_frame: OnceLock<Bytes>,
}

impl LiveTrade {
    /// `mint` and `position` are the trade's (given: the pipeline has them at hand).
    pub fn new(
        mint: [u8; 32],
        position: TradePosition,
        trade: Trade,
        event_json: String,
    ) -> LiveTrade {
        LiveTrade {
            mint,
            position,
            trade,
            event_json,
            ws_frame: OnceLock::new(),
            socketio_payload: OnceLock::new(),
            socketio_frame: OnceLock::new(),
        }
    }
}

/// What the hub takes from the inbox in one go.
#[derive(Debug, Default)]
pub struct DrainedTrades {
    /// In commit order.
    pub trades: Vec<Arc<LiveTrade>>,
    /// Mints to re-read from the store, each from the oldest position dropped.
    pub resync: Vec<([u8; 32], TradePosition)>,
}

pub struct TradeFeed {
    state: Mutex<TradeInbox>,
    /// How many mints are watched: lets the pipeline skip trades entirely when nobody subscribed any.
    watched_count: AtomicUsize,
    ready: Notify,
}

struct TradeInbox {
    capacity: usize,
    watched: HashSet<[u8; 32]>,
    pending: VecDeque<Arc<LiveTrade>>,
    resync: HashMap<[u8; 32], TradePosition>,
}

impl TradeFeed {
    pub fn new(capacity: usize) -> TradeFeed {
        TradeFeed {
            state: Mutex::new(TradeInbox {
                capacity: capacity.max(1),
                watched: HashSet::new(),
                pending: VecDeque::new(),
                resync: HashMap::new(),
            }),
            watched_count: AtomicUsize::new(0),
            ready: Notify::new(),
        }
    }

    fn lock(&self) -> MutexGuard<'_, TradeInbox> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Whether any mint is watched.
    pub fn any_watched(&self) -> bool {
        self.watched_count.load(Ordering::Relaxed) > 0
    }

    /// Whether `mint` is watched. A publisher that checks this after its write and skips building the trades
    /// of unwatched mints misses no subscriber: one that starts watching later reads its snapshot after
    /// that write.
    pub fn watches(&self, mint: &[u8; 32]) -> bool {
        self.any_watched() && self.lock().watched.contains(mint)
    }

    /// The hub gained its first trade subscriber of `mint`.
    pub fn watch(&self, mint: [u8; 32]) {
        let mut state = self.lock();
        state.watched.insert(mint);
        self.watched_count
            .store(state.watched.len(), Ordering::Relaxed);
    }

    /// The hub lost its last trade subscriber of `mint`.
    pub fn unwatch(&self, mint: &[u8; 32]) {
        let mut state = self.lock();
        state.watched.remove(mint);
        state.resync.remove(mint);
        state.pending.retain(|trade| trade.mint != *mint);
        self.watched_count
            .store(state.watched.len(), Ordering::Relaxed);
    }

    /// Publishes a committed group's trades, in commit order; those of unwatched mints are dropped.
    /// Returns how many were watched.
    /// Costs one atomic load when no mint is watched.
    pub fn publish(&self, trades: impl IntoIterator<Item = LiveTrade>) -> usize {
        if !self.any_watched() {
            return 0;
        }
        let mut state = self.lock();
        let mut watched = 0;
        for trade in trades {
            if !state.watched.contains(&trade.mint) {
                continue;
            }
            watched += 1;
            state.offer(trade);
        }
        drop(state);
        if watched > 0 {
            self.ready.notify_one();
        }
        watched
    }

    /// Completes when something was published since the last [`TradeFeed::drain`] (a wake-up that comes
    /// while the hub is busy is kept).
    pub async fn ready(&self) {
        self.ready.notified().await;
    }

    pub fn drain(&self) -> DrainedTrades {
        let mut state = self.lock();
        DrainedTrades {
            trades: state.pending.drain(..).collect(),
            resync: state.resync.drain().collect(),
        }
    }
}

impl TradeInbox {
    fn offer(&mut self, trade: LiveTrade) {
        if let Some(oldest) = self.resync.get_mut(&trade.mint) {
            if trade.position.order() < oldest.order() {
                *oldest = trade.position;
            }
            return;
        }
        if self.pending.len() < self.capacity {
            self.pending.push_back(Arc::new(trade));
            return;
        }
        let mint = trade.mint;
        let mut oldest = trade.position;
        self.pending.retain(|waiting| {
            if waiting.mint != mint {
                return true;
            }
            if waiting.position.order() < oldest.order() {
                oldest = waiting.position;
            }
            false
        });
        self.resync.insert(mint, oldest);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_protocol::{Side, Symbol, TradeId, TradeKind};

    fn trade(mint: u8, slot: u64) -> LiveTrade {
        let id = TradeId::new([slot as u8; 64], 0);
        let trade = Trade {
            signature: id.signature().to_owned(),
            id,
            symbol: Symbol::from_bytes(&[mint; 32]),
            time: 0,
            slot,
            tx_index: Some(0),
            event_index: 0,
            event_type: TradeKind::BuySell,
            side: Side::Buy,
            price: 1.0,
            token_amount: 1.0,
            sol_amount: 1.0,
            payer: Symbol::from_bytes(&[9; 32]),
        };
        LiveTrade::new(
            [mint; 32],
            TradePosition::of_trade(&trade),
            trade,
            String::new(),
        )
    }

    #[test]
    fn only_watched_mints_are_kept_in_commit_order() {
        let feed = TradeFeed::new(10);
        assert!(!feed.any_watched());
        assert_eq!(feed.publish([trade(1, 1)]), 0);
        feed.watch([1; 32]);
        assert!(feed.any_watched());
        assert_eq!(feed.publish([trade(1, 3), trade(2, 4), trade(1, 2)]), 2);
        let drained = feed.drain();
        let slots: Vec<u64> = drained.trades.iter().map(|t| t.trade.slot).collect();
        assert_eq!(slots, [3, 2]);
        assert!(drained.resync.is_empty());
    }

    #[test]
    fn a_full_inbox_puts_the_mint_in_resync_from_its_oldest_dropped_trade() {
        let feed = TradeFeed::new(3);
        feed.watch([1; 32]);
        feed.watch([2; 32]);
        feed.publish([trade(2, 50), trade(1, 10), trade(1, 11)]);
        // Full: the mint's waiting trades go, the mint re-reads from slot 10.
        feed.publish([trade(1, 12), trade(1, 13)]);
        let drained = feed.drain();
        let slots: Vec<u64> = drained.trades.iter().map(|t| t.trade.slot).collect();
        assert_eq!(slots, [50], "the other mint's trade stays");
        assert_eq!(drained.resync.len(), 1);
        assert_eq!(drained.resync[0].0, [1; 32]);
        assert_eq!(drained.resync[0].1.slot, 10);
        // Drained: the mint is live again.
        feed.publish([trade(1, 14)]);
        assert_eq!(feed.drain().trades.len(), 1);
    }
}
