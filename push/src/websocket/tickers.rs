//! The `/ws` side of the ticker stream: a round's `tickers` frame, encoded once and shared by every
//! subscriber (compressed once more for those that negotiated permessage-deflate).

use bytes::Bytes;
use kline_protocol::{ServerMessage, Tickers};

use super::deflate::Deflate;
use super::frame;
use crate::tickers::TickerRound;

/// The `tickers` frame of `round` for a connection that agreed to `deflate` (or not).
pub fn frame(round: &TickerRound, deflate: Option<Deflate>) -> &Bytes {
    let plain = round.ws_frame.get_or_init(|| {
        let message = ServerMessage::now(Tickers::new(round.window_start, round.tickers.clone()));
        frame::text(&message.to_json())
    });
    match deflate {
        None => plain,
        Some(deflate) => round
            .ws_compressed
            .get_or_init(|| frame::shared_deflated(plain, deflate)),
    }
}
