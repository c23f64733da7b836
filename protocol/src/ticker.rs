//! The ticker stream's payloads: every mint's last price and 24-hour numbers (`subscribe_tickers`).
//!
//! **24 hours** is a rolling window over whole `h1` candles: the mint's `h1` candles whose `time` is at or
//! after [`window_start`] — the current hour and the 23 before it, so between 23 and 24 hours of trades.
//! Over that window: `open_price` is the first trade's price, `high_price`/`low_price` the extremes,
//! `volume`/`quote_volume` the summed candle volumes (tokens, SOL), `trade_count` the summed
//! `update_count`s; `last_price` is the mint's newest price (also when its last trade is older than the
//! window: then the window is empty, `open_price` = `last_price` and every 24-hour number is 0).

use serde::{Deserialize, Serialize};

use crate::token::{NameText, TickerText};
use crate::{SubscriptionId, Symbol};

/// Seconds in the window's unit, an `h1` bucket.
pub const HOUR_SECS: i64 = 3600;
/// Buckets in the window: the current hour and the 23 before it.
pub const WINDOW_HOURS: i64 = 24;

/// The first `h1` bucket (Unix seconds) of the window at `now_secs`.
pub fn window_start(now_secs: i64) -> i64 {
    now_secs.div_euclid(HOUR_SECS) * HOUR_SECS - (WINDOW_HOURS - 1) * HOUR_SECS
}

/// A mint's numbers over the window, as summed from its `h1` candles.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct DayStats {
    /// The first trade's price in the window.
    pub open: f64,
    pub high: f64,
    pub low: f64,
    /// Tokens traded (whole tokens).
    pub volume: f64,
    /// SOL traded.
    pub quote_volume: f64,
    pub trade_count: u64,
}

/// One mint's ticker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Ticker {
    pub symbol: Symbol,
    /// The token's ticker and name (`null` when the server never saw its `TokenCreatedEvent`).
    pub ticker: Option<TickerText>,
    pub name: Option<NameText>,
    /// SOL per whole token: the mint's newest price.
    pub last_price: f64,
    pub open_price: f64,
    pub high_price: f64,
    pub low_price: f64,
    /// `last_price - open_price`.
    pub price_change: f64,
    /// `price_change / open_price × 100`.
    pub price_change_percent: f64,
    /// Tokens traded in the window.
    pub volume: f64,
    /// SOL traded in the window.
    pub quote_volume: f64,
    pub trade_count: u64,
}

impl Ticker {
    /// The ticker of a mint whose newest price is `last`, with `day` its window's numbers (`None`: no trade
    /// in the window). The change is derived, so it always agrees with the prices.
    pub fn new(symbol: Symbol, last: f64, day: Option<DayStats>) -> Ticker {
        let day = day.unwrap_or(DayStats {
            open: last,
            high: last,
            low: last,
            ..DayStats::default()
        });
        let change = last - day.open;
        let percent = if day.open > 0.0 {
            change / day.open * 100.0
        } else {
            0.0
        };
        Ticker {
            symbol,
            ticker: None,
            name: None,
            last_price: last,
            open_price: day.open,
            high_price: day.high,
            low_price: day.low,
            price_change: change,
            price_change_percent: percent,
            volume: day.volume,
            quote_volume: day.quote_volume,
            trade_count: day.trade_count,
        }
    }

    pub fn with_names(mut self, ticker: Option<TickerText>, name: Option<NameText>) -> Ticker {
        self.ticker = ticker;
        self.name = name;
        self
    }
}

/// Every known mint's ticker, answering `subscribe_tickers` (before any `tickers` update).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TickersSnapshot {
    pub subscription_id: Option<SubscriptionId>,
    /// The window's first `h1` bucket, Unix seconds ([`window_start`]).
    pub window_start: i64,
    /// Every mint with a price, ordered by `symbol`.
    pub data: Vec<Ticker>,
}

/// The mints whose ticker changed since the previous message (at most one a second per connection). The
/// same bytes go to every subscriber.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Tickers {
    pub window_start: i64,
    /// Ordered by `symbol`; each replaces what the client holds for its mint.
    pub data: Vec<Ticker>,
}

/// Tickers are no longer pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct TickersUnsubscribed {
    pub subscription_id: Option<SubscriptionId>,
    pub success: bool,
}

impl TickersSnapshot {
    pub fn new(
        subscription_id: Option<SubscriptionId>,
        window_start: i64,
        data: Vec<Ticker>,
    ) -> TickersSnapshot {
        TickersSnapshot {
            subscription_id,
            window_start,
            data,
        }
    }
}

impl Tickers {
    pub fn new(window_start: i64, data: Vec<Ticker>) -> Tickers {
        Tickers { window_start, data }
    }
}

impl TickersUnsubscribed {
    pub fn new(subscription_id: Option<SubscriptionId>) -> TickersUnsubscribed {
        TickersUnsubscribed {
            subscription_id,
            success: true,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_window_is_the_current_hour_and_the_23_before() {
        assert_eq!(window_start(1_764_000_123), 1_764_000_000 - 23 * 3600);
        assert_eq!(window_start(1_764_000_000), 1_764_000_000 - 23 * 3600);
        assert_eq!(window_start(1_763_999_999), 1_763_996_400 - 23 * 3600);
    }

    #[test]
    fn change_is_derived_and_an_empty_window_changes_nothing() {
        let symbol = Symbol::from_bytes(&[1; 32]);
        let day = DayStats {
            open: 2.0,
            high: 3.0,
            low: 1.0,
            volume: 10.0,
            quote_volume: 20.0,
            trade_count: 4,
        };
        let ticker = Ticker::new(symbol.clone(), 2.5, Some(day));
        assert_eq!(ticker.price_change, 0.5);
        assert_eq!(ticker.price_change_percent, 25.0);
        let idle = Ticker::new(symbol, 2.5, None);
        assert_eq!(
            (idle.open_price, idle.price_change, idle.trade_count),
            (2.5, 0.0, 0)
        );
    }
}
