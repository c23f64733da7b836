//! `Subscriber`: what the hubs deliver candle updates, trades and ticker rounds to, whatever the transport.
//!
//! `/ws` connections are the [`Subscriber::WebSocket`] variant, called statically: delivery is the hub's hot
//! path (once per subscriber per update), and a `match` is an inlinable call where `dyn` is an indirect one.
//! Other transports (Socket.IO's two) implement [`Sink`] and are called through it, so the core names no
//! transport. Each keeps its own overflow policy; to the hub a subscriber either takes the updates or is
//! closed.

use std::sync::Arc;

use crate::SeriesKey;
use crate::tickers::TickerRound;
use crate::websocket::outbox::Outbox;
use crate::websocket::trades;
use kline_pipeline::feed::CandleUpdate;
use kline_pipeline::feed::trades::LiveTrade;

/// A subscriber of a transport other than `/ws`: it frames what the hubs deliver in its own protocol and
/// buffers it under its own overflow policy. `Socket.IO` implements it twice (socketioxide's sockets, and
/// our own websocket transport's).
pub trait Sink: Send + Sync {
    /// See [`Subscriber::deliver`].
    fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize>;
    /// See [`Subscriber::push_trades`].
    fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool;
    /// See [`Subscriber::push_tickers`]. By default the transport has no ticker stream: `false`.
    fn push_tickers(&self, _round: &Arc<TickerRound>) -> bool {
        false
    }
    /// See [`Subscriber::close_gate`].
    fn close_gate(&self, series: &SeriesKey);
    /// See [`Subscriber::purge`].
    fn purge(&self, series: &SeriesKey);
}

#[derive(Clone)]
pub enum Subscriber {
    /// A `/ws` connection: its socket writer.
    WebSocket(Arc<Outbox>),
    /// A subscriber of another transport (Socket.IO on `/kline`).
    Sink(Arc<dyn Sink>),
}

impl Subscriber {
    /// Delivers the updates of one series from one delivery round, in order. `Some(replaced)`: how many
    /// replaced an unsent update of the same candle; `None`: the subscriber is closed (gone, or just
    /// closed as too slow) and leaves the index.
    #[inline]
    pub fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        match self {
            Subscriber::WebSocket(outbox) => outbox.push_updates(updates).ok(),
            Subscriber::Sink(sink) => sink.deliver(updates),
        }
    }

    /// Pushes trades of one mint, in order, through the transport's bounded buffer (its overflow policy
    /// applies, as for candles). `false`: the subscriber is closed.
    pub fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool {
        match self {
            Subscriber::WebSocket(outbox) => trades
                .iter()
                .all(|trade| outbox.push_message(trades::frame(trade).clone())),
            Subscriber::Sink(sink) => sink.push_trades(trades),
        }
    }

    /// Pushes one round of the ticker stream through the transport's bounded buffer (its overflow policy
    /// applies). `false`: the subscriber is closed. Socket.IO has no ticker stream (the old server had
    /// none), so a Socket.IO subscriber never joins the ticker hub; were one there, it would leave.
    pub fn push_tickers(&self, round: &Arc<TickerRound>) -> bool {
        match self {
            Subscriber::WebSocket(outbox) => outbox.push_tickers(round),
            Subscriber::Sink(sink) => sink.push_tickers(round),
        }
    }

    /// Starts holding back the updates of `series` while its snapshot is read ([`super::gate`]).
    pub fn close_gate(&self, series: &SeriesKey) {
        match self {
            Subscriber::WebSocket(outbox) => outbox.close_gate(series),
            Subscriber::Sink(sink) => sink.close_gate(series),
        }
    }

    /// Drops what is waiting or held for `series` (after an unsubscribe, or a failed snapshot).
    pub fn purge(&self, series: &SeriesKey) {
        match self {
            Subscriber::WebSocket(outbox) => outbox.purge(series),
            Subscriber::Sink(sink) => sink.purge(series),
        }
    }
}
