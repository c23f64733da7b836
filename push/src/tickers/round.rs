//! [`TickerRound`]: one round's `tickers` message, the tickers of the mints that changed since the previous
//! round, shared by every subscriber (each transport encodes it once, on first delivery, and shares the
//! bytes), and the merge a slow reader gets instead of a second waiting message.

use std::sync::OnceLock;

use bytes::Bytes;
use kline_protocol::Ticker;

/// One round's message.
#[derive(Debug)]
pub struct TickerRound {
    pub window_start: i64,
    /// Ordered by symbol.
    pub tickers: Vec<Ticker>,
    /// The `/ws` frame (`crate::websocket::tickers::frame`), made by the first delivery.
    pub ws_frame: OnceLock<Bytes>,
    /// The same, compressed for connections that negotiated permessage-deflate.
    pub ws_compressed: OnceLock<Bytes>,
}

impl TickerRound {
    /// `tickers` must be ordered by symbol.
    pub fn new(window_start: i64, tickers: Vec<Ticker>) -> TickerRound {
        debug_assert!(tickers.windows(2).all(|w| w[0].symbol < w[1].symbol));
        TickerRound {
            window_start,
            tickers,
            ws_frame: OnceLock::new(),
            ws_compressed: OnceLock::new(),
        }
    }

    /// What a subscriber that has not been sent `self` yet gets when `newer` comes: one message holding,
    /// for every mint of either, its newest ticker (ordered by symbol). Encoded for that subscriber alone.
    pub fn merged(&self, newer: &TickerRound) -> TickerRound {
        let mut tickers = Vec::with_capacity(self.tickers.len() + newer.tickers.len());
        let (mut old, mut new) = (
            self.tickers.iter().peekable(),
            newer.tickers.iter().peekable(),
        );
        loop {
            let next = match (old.peek(), new.peek()) {
                (Some(a), Some(b)) if a.symbol < b.symbol => old.next(),
                (Some(a), Some(b)) if a.symbol == b.symbol => {
                    old.next();
                    new.next()
                }
                (_, Some(_)) => new.next(),
                (Some(_), None) => old.next(),
                (None, None) => break,
            };
            tickers.extend(next.cloned());
        }
        TickerRound::new(newer.window_start, tickers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_protocol::Symbol;

    fn ticker(byte: u8, price: f64) -> Ticker {
        Ticker::new(Symbol::from_bytes(&[byte; 32]), price, None)
    }

    #[test]
    fn a_merge_keeps_every_mint_once_with_its_newest_ticker() {
        let mut older = vec![ticker(1, 1.0), ticker(2, 2.0), ticker(5, 5.0)];
        let mut newer = vec![ticker(2, 20.0), ticker(3, 30.0)];
        older.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        newer.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        let merged = TickerRound::new(10, older).merged(&TickerRound::new(20, newer));
        assert_eq!(merged.window_start, 20);
        let mut prices: Vec<(u8, f64)> = merged
            .tickers
            .iter()
            .map(|t| (t.symbol.to_bytes()[0], t.last_price))
            .collect();
        prices.sort_by_key(|(byte, _)| *byte);
        assert_eq!(prices, [(1, 1.0), (2, 20.0), (3, 30.0), (5, 5.0)]);
        assert!(merged.tickers.windows(2).all(|w| w[0].symbol < w[1].symbol));
    }
}
