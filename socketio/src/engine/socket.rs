//! `DirectSocket`: a Socket.IO socket on our own websocket transport, as its session sees it: packets are
//! encoded here into whole websocket frames and written through the connection's [`Outbox`] (the `/ws`
//! writer, its backlog and its overflow policy). Candle updates and trades reach the same outbox from the
//! hubs (as a [`kline_push::subscriber::Sink`]), their frames encoded once and shared ([`kline_data`],
//! [`event_data`]).

use std::sync::Arc;

use bytes::Bytes;
use kline_protocol::Candle;
use serde::Serialize;
use tokio::sync::Notify;

use super::packet;
use kline_pipeline::feed::CandleUpdate;
use kline_pipeline::feed::trades::LiveTrade;
use kline_push::SeriesKey;
use kline_push::websocket::frame;
use kline_push::websocket::outbox::Outbox;

pub struct DirectSocket {
    /// The Socket.IO socket id (`40/kline,{"sid":…}`, and `connection_success`'s `client_id`).
    pub id: Box<str>,
    pub outbox: Arc<Outbox>,
    /// Notified when a push finds the outbox closed (a reader that stopped: 4008): the session then ends at
    /// once and its subscriptions leave the hubs, while the writer still tries to deliver the close frame.
    closed: Notify,
}

impl DirectSocket {
    pub fn new(id: Box<str>, outbox: Arc<Outbox>) -> DirectSocket {
        DirectSocket {
            id,
            outbox,
            closed: Notify::new(),
        }
    }

    /// Sends `event` with `data` (`false` if the connection is closed, or just closed as too slow).
    pub fn emit<T: Serialize + ?Sized>(&self, event: &str, data: &T) -> bool {
        match event_frame(event, data) {
            Some(frame) => self.push(frame),
            None => false,
        }
    }

    fn push(&self, frame: Bytes) -> bool {
        self.open(self.outbox.push_message(frame))
    }

    /// `open`, noting a close.
    fn open(&self, open: bool) -> bool {
        if !open {
            self.closed.notify_one();
        }
        open
    }

    /// The hub's delivery (see [`kline_push::Subscriber::deliver`]).
    pub fn deliver(&self, updates: &[Arc<CandleUpdate>]) -> Option<usize> {
        let replaced = self.outbox.push_updates(updates).ok();
        self.open(replaced.is_some());
        replaced
    }

    /// The trade hub's delivery: each trade as `event_data`.
    pub fn push_trades(&self, trades: &[Arc<LiveTrade>]) -> bool {
        trades
            .iter()
            .all(|trade| self.push(event_data(trade).clone()))
    }

    /// Completes once a push has found the outbox closed.
    pub async fn closed(&self) {
        self.closed.notified().await;
    }

    /// Sends `replies` (the snapshot and the confirmation, in order), then the held updates of `series`
    /// newer than `snapshot`; later updates flow directly again (see [`Outbox::open_gate`]).
    pub fn open_gate(
        &self,
        series: &SeriesKey,
        snapshot: &[Candle],
        replies: &[(&str, serde_json::Value)],
    ) {
        let frames = replies
            .iter()
            .filter_map(|(event, payload)| event_frame(event, payload))
            .collect();
        self.outbox.open_gate(series, snapshot, frames);
        self.open(!self.outbox.is_closed());
    }

    /// Disconnects the socket from `/kline` (`41/kline,`); the connection stays until the client closes it
    /// (or stops answering pings), as socketioxide does.
    pub fn disconnect(&self) {
        self.outbox.push_message(frame::text(&packet::disconnect()));
    }
}

/// The frame of `42/kline,["event",data]`; `None` (logged) if `data` does not serialize.
fn event_frame<T: Serialize + ?Sized>(event: &str, data: &T) -> Option<Bytes> {
    match serde_json::to_string(data) {
        Ok(json) => Some(frame::text(&packet::event(event, &json))),
        Err(err) => {
            tracing::error!(error = %err, event, "cannot encode a Socket.IO packet");
            None
        }
    }
}

/// The frame of an update's `kline_data` packet, encoded by the first delivery and shared by every socket
/// of this transport (the outbox's [`kline_push::websocket::outbox::Framing::Updates`]).
pub fn kline_data(update: &CandleUpdate) -> &Bytes {
    update.socketio_frame.get_or_init(|| {
        let payload = crate::sink::kline_data(update);
        frame::text(&packet::event("kline_data", payload.get()))
    })
}

/// The frame of a trade's `event_data` packet, encoded once and shared.
pub fn event_data(trade: &LiveTrade) -> &Bytes {
    trade.socketio_frame.get_or_init(|| {
        let payload = crate::sink::event_data(trade);
        frame::text(&packet::event("event_data", payload.get()))
    })
}

#[cfg(test)]
mod tests {

    use kline_protocol::{Interval, Symbol};

    use super::*;

    #[test]
    fn the_kline_data_frame_is_the_socketio_packet_encoded_once_and_shared() {
        let update = CandleUpdate::new(
            Symbol::from_bytes(&[1; 32]),
            Interval::S1,
            Candle::new(1_700_000_000, [1.0; 4], 3, false),
            1_700_000_000_123,
            None,
            false,
        );
        let first = kline_data(&update);
        let payload = crate::sink::kline_data(&update).get();
        let expected = format!(r#"42/kline,["kline_data",{payload}]"#);
        assert_eq!(first, &frame::text(&expected));
        assert!(
            std::ptr::eq(first.as_ptr(), kline_data(&update).as_ptr()),
            "one encoding, shared"
        );
        let data: serde_json::Value = serde_json::from_str(payload).unwrap();
        assert_eq!(data["interval"], "s1");
        assert_eq!(data["timestamp"], 1_700_000_000_123_i64);
        assert_eq!(data["data"]["update_count"], 3);
    }
}
