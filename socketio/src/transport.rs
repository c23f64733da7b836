//! `Transport`: what differs between the two transports of a `/kline` socket, behind the one session logic
//! of [`super::session`]: emitting a packet, what the hubs deliver to, the gate's replies, disconnecting,
//! and the close of a reader that stopped.
//!
//! An enum: two variants, known here, and no boxed futures. To the hubs both are a [`Sink`] (implemented
//! here), the core's interface to transports other than `/ws`.

use std::sync::Arc;
use std::time::Duration;

use kline_protocol::Candle;
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use super::engine::socket::DirectSocket;
use super::sink::SocketIoSink;
use kline_pipeline::feed::CandleUpdate;
use kline_pipeline::feed::trades::LiveTrade;
use kline_push::subscriber::Sink;
use kline_push::{SeriesKey, Subscriber};

#[derive(Clone)]
pub enum Transport {
    /// socketioxide's socket (polling, or upgraded to websocket), behind its backlog.
    Socketioxide(Arc<SocketIoSink>),
    /// Our own websocket transport ([`super::engine`]): the connection's outbox.
    WebSocket(Arc<DirectSocket>),
}

impl Transport {
    /// The Socket.IO socket id.
    pub fn id(&self) -> String {
        match self {
            Transport::Socketioxide(sink) => sink.socket().id.to_string(),
            Transport::WebSocket(socket) => socket.id.to_string(),
        }
    }

    /// Emits a reply (`false` if the socket is closed, or just closed as too slow).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        match self {
            Transport::Socketioxide(sink) => sink.emit(event, data),
            Transport::WebSocket(socket) => socket.emit(event, data),
        }
    }

    /// What the hubs deliver this socket's updates and trades to.
    pub fn subscriber(&self) -> Subscriber {
        match self {
            Transport::Socketioxide(sink) => Subscriber::Sink(sink.clone()),
            Transport::WebSocket(socket) => Subscriber::Sink(socket.clone()),
        }
    }

    /// Emits `replies` in order, then the held updates of `series` newer than `snapshot`.
    pub fn open_gate(
        &self,
        series: &SeriesKey,
        snapshot: &[Candle],
        replies: &[(&str, serde_json::Value)],
    ) {
        match self {
            Transport::Socketioxide(sink) => sink.open_gate(series, snapshot, replies),
            Transport::WebSocket(socket) => socket.open_gate(series, snapshot, replies),
        }
    }

    /// Disconnects the socket from `/kline` (the client sees `io server disconnect`).
    pub fn disconnect(&self) {
        match self {
            Transport::Socketioxide(sink) => {
                let _ = sink.socket().clone().disconnect();
            }
            Transport::WebSocket(socket) => socket.disconnect(),
        }
    }

    /// Completes when the socket has closed as too slow (a websocket's outbox then closes its connection
    /// with 4008 itself).
    pub async fn closed_as_too_slow(&self) {
        match self {
            Transport::Socketioxide(sink) => sink.closed_as_too_slow().await,
            Transport::WebSocket(socket) => socket.closed().await,
        }
    }

    /// Sends what waits behind socketioxide's full buffer; runs for the session's life (cancel-safe). A
    /// websocket's backlog is written by its connection's writer: never here.
    pub async fn drain(&self) {
        match self {
            Transport::Socketioxide(sink) => sink.drain().await,
            Transport::WebSocket(_) => std::future::pending().await,
        }
    }

    /// After the socket closed as too slow: socketioxide's socket is disconnected from `/kline` once its
    /// buffer has room for the packet, within `patience`. (A websocket is already closed.)
    pub async fn disconnect_too_slow(&self, gone: &CancellationToken, patience: Duration) {
        let Transport::Socketioxide(sink) = self else {
            return;
        };
        let deadline = tokio::time::Instant::now() + patience;
        while tokio::time::Instant::now() < deadline && !gone.is_cancelled() {
            match sink.socket().clone().disconnect() {
                Err(socketioxide::SocketError::InternalChannelFull) => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                _ => return,
            }
        }
    }
}

/// socketioxide's sockets, as the hubs deliver to them.
impl Sink for SocketIoSink {
    fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        SocketIoSink::deliver(self, updates)
    }

    fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool {
        trades.iter().all(|trade| self.emit_event_data(trade))
    }

    fn close_gate(&self, series: &SeriesKey) {
        SocketIoSink::close_gate(self, series);
    }

    fn purge(&self, series: &SeriesKey) {
        SocketIoSink::purge(self, series);
    }
}

/// Our own websocket transport's sockets, as the hubs deliver to them.
impl Sink for DirectSocket {
    fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        DirectSocket::deliver(self, updates)
    }

    fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool {
        DirectSocket::push_trades(self, trades)
    }

    fn close_gate(&self, series: &SeriesKey) {
        self.outbox.close_gate(series);
    }

    fn purge(&self, series: &SeriesKey) {
        self.outbox.purge(series);
    }
}
