//! `Subscriber`: what the hub delivers candle updates to, whatever the transport.
//!
//! An enum rather than a trait object: delivery is the hub's hot path (once per subscriber per update), and
//! a `match` over the transports is a static, inlinable call where `dyn` would be an indirect one. Each
//! variant keeps its own overflow policy; to the hub a subscriber either takes the updates or is closed.

use std::sync::Arc;

use crate::socketio::engine::socket::DirectSocket;
use crate::socketio::sink::SocketIoSink;
use crate::tickers::TickerRound;
use crate::websocket::outbox::Outbox;
use kline_pipeline::feed::CandleUpdate;
use kline_pipeline::feed::trades::LiveTrade;

#[derive(Clone)]
pub enum Subscriber {
    /// A `/ws` connection: its socket writer.
    WebSocket(Arc<Outbox>),
    /// A Socket.IO socket on `/kline` served by socketioxide (polling, or upgraded to websocket).
    SocketIo(Arc<SocketIoSink>),
    /// A Socket.IO socket on `/kline` on our own websocket transport (`crate::socketio::engine`): its
    /// socket writer, framing updates as `kline_data` packets.
    SocketIoWebSocket(Arc<DirectSocket>),
}

impl Subscriber {
    /// Delivers the updates of one series from one delivery round, in order. `Some(replaced)`: how many
    /// replaced an unsent update of the same candle; `None`: the subscriber is closed (gone, or just
    /// closed as too slow) and leaves the index.
    #[inline]
    pub fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        match self {
            Subscriber::WebSocket(outbox) => outbox.push_updates(updates).ok(),
            Subscriber::SocketIo(sink) => sink.deliver(updates),
            Subscriber::SocketIoWebSocket(socket) => socket.deliver(updates),
        }
    }

    /// Pushes trades of one mint, in order, through the transport's bounded buffer (its overflow policy
    /// applies, as for candles). `false`: the subscriber is closed.
    pub fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool {
        match self {
            Subscriber::WebSocket(outbox) => trades
                .iter()
                .all(|trade| outbox.push_message(crate::websocket::trades::frame(trade).clone())),
            Subscriber::SocketIo(sink) => trades.iter().all(|trade| sink.emit_event_data(trade)),
            Subscriber::SocketIoWebSocket(socket) => socket.push_trades(trades),
        }
    }

    /// Pushes one round of the ticker stream through the transport's bounded buffer (its overflow policy
    /// applies). `false`: the subscriber is closed. Socket.IO has no ticker stream (the old server had
    /// none), so a Socket.IO subscriber never joins the ticker hub; were one there, it would leave.
    pub fn push_tickers(&self, round: &Arc<TickerRound>) -> bool {
        match self {
            Subscriber::WebSocket(outbox) => outbox.push_tickers(round),
            Subscriber::SocketIo(_) | Subscriber::SocketIoWebSocket(_) => false,
        }
    }

    /// Starts holding back the updates of `series` while its snapshot is read ([`super::gate`]).
    pub fn close_gate(&self, series: &super::SeriesKey) {
        match self {
            Subscriber::WebSocket(outbox) => outbox.close_gate(series),
            Subscriber::SocketIoWebSocket(socket) => socket.outbox.close_gate(series),
            Subscriber::SocketIo(sink) => sink.close_gate(series),
        }
    }

    /// Drops what is waiting or held for `series` (after an unsubscribe, or a failed snapshot).
    pub fn purge(&self, series: &super::SeriesKey) {
        match self {
            Subscriber::WebSocket(outbox) => outbox.purge(series),
            Subscriber::SocketIoWebSocket(socket) => socket.outbox.purge(series),
            Subscriber::SocketIo(sink) => sink.purge(series),
        }
    }
}
