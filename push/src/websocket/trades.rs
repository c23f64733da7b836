//! The `/ws` side of the trade stream: a live trade's frame, encoded once and shared by every subscriber.

use bytes::Bytes;
use kline_protocol::ServerMessage;
use kline_protocol::response::unix_millis_now;

use super::frame;
use kline_pipeline::feed::trades::LiveTrade;

/// The `trade` frame of `trade` (uncompressed: a trade is small; a connection that negotiated
/// permessage-deflate takes uncompressed messages too).
pub fn frame(trade: &LiveTrade) -> &Bytes {
    trade.ws_frame.get_or_init(|| {
        let message = ServerMessage::new(trade.trade.clone(), unix_millis_now());
        frame::text(&message.to_json())
    })
}
