//! One OHLC candle as it travels on the wire.

use serde::{Deserialize, Serialize};

/// Whether a candle update is a live change of an open bucket or the closing value of a finished one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum UpdateType {
    Realtime,
    Final,
}

/// An OHLC candle. Prices are SOL per whole token as `f64` with full precision (Spin Pet prices are
/// around 1e-9 .. 1e-5, so they are never rounded to a fixed number of decimals).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Candle {
    /// Bucket start, Unix seconds UTC.
    pub time: i64,
    pub open: f64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    /// Tokens traded (whole tokens; the program's token amounts have 6 decimals).
    pub volume: f64,
    /// SOL traded (the program's SOL amounts are lamports, 9 decimals).
    #[serde(default)]
    pub quote_volume: f64,
    /// The part of `volume` bought from the pool (buys, longs, closes of shorts).
    #[serde(default)]
    pub taker_buy_volume: f64,
    /// The part of `quote_volume` paid for those buys.
    #[serde(default)]
    pub taker_buy_quote_volume: f64,
    /// The bucket has closed; this is the candle's last value.
    pub is_final: bool,
    /// `final` exactly when `is_final`.
    pub update_type: UpdateType,
    /// Number of events aggregated into this candle so far.
    pub update_count: u32,
}

impl Candle {
    /// A candle with the given bucket start and prices. `high`/`low` are taken as given: the caller (the
    /// aggregator) owns the OHLC invariants, which [`Candle::is_consistent`] checks.
    pub fn new(
        time: i64,
        [open, high, low, close]: [f64; 4],
        update_count: u32,
        is_final: bool,
    ) -> Candle {
        Candle {
            time,
            open,
            high,
            low,
            close,
            volume: 0.0,
            quote_volume: 0.0,
            taker_buy_volume: 0.0,
            taker_buy_quote_volume: 0.0,
            is_final,
            update_type: if is_final {
                UpdateType::Final
            } else {
                UpdateType::Realtime
            },
            update_count,
        }
    }

    /// The same candle with its traded amounts: `[volume, quote_volume, taker_buy_volume,
    /// taker_buy_quote_volume]` (whole tokens and SOL).
    pub fn with_volumes(mut self, [volume, quote, buy, buy_quote]: [f64; 4]) -> Candle {
        self.volume = volume;
        self.quote_volume = quote;
        self.taker_buy_volume = buy;
        self.taker_buy_quote_volume = buy_quote;
        self
    }

    /// `low <= open, close <= high`, all prices finite and positive, volumes finite, not negative and the
    /// taker-buy parts within their totals, and `update_type` matches `is_final`.
    pub fn is_consistent(&self) -> bool {
        let prices = [self.open, self.high, self.low, self.close];
        let volumes = [
            self.volume,
            self.quote_volume,
            self.taker_buy_volume,
            self.taker_buy_quote_volume,
        ];
        prices.iter().all(|p| p.is_finite() && *p > 0.0)
            && volumes.iter().all(|v| v.is_finite() && *v >= 0.0)
            && self.taker_buy_volume <= self.volume
            && self.taker_buy_quote_volume <= self.quote_volume
            && self.low <= self.open.min(self.close)
            && self.high >= self.open.max(self.close)
            && (self.update_type == UpdateType::Final) == self.is_final
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn update_type_follows_finality() {
        let live = Candle::new(60, [1.0, 2.0, 0.5, 1.5], 3, false);
        assert_eq!(live.update_type, UpdateType::Realtime);
        assert!(live.is_consistent());
        let done = Candle::new(60, [1.0, 2.0, 0.5, 1.5], 3, true);
        assert_eq!(done.update_type, UpdateType::Final);
        assert_eq!((done.volume, done.quote_volume), (0.0, 0.0));
    }

    #[test]
    fn inconsistent_candles_are_detected() {
        assert!(!Candle::new(0, [1.0, 0.9, 0.5, 0.7], 1, false).is_consistent());
        assert!(!Candle::new(0, [1.0, 2.0, 1.1, 1.5], 1, false).is_consistent());
        assert!(!Candle::new(0, [0.0, 0.0, 0.0, 0.0], 1, false).is_consistent());
        let fine = Candle::new(0, [1.0; 4], 1, false);
        assert!(fine.with_volumes([5.0, 2.0, 5.0, 2.0]).is_consistent());
        assert!(!fine.with_volumes([5.0, 2.0, 6.0, 2.0]).is_consistent());
        assert!(!fine.with_volumes([-1.0, 0.0, 0.0, 0.0]).is_consistent());
    }

    #[test]
    fn tiny_prices_keep_every_digit() {
        let price = 2.796_123_456_789_012e-8;
        let candle = Candle::new(0, [price; 4], 1, false);
        let json = serde_json::to_string(&candle).unwrap();
        let back: Candle = serde_json::from_str(&json).unwrap();
        assert_eq!(back.close.to_bits(), price.to_bits(), "{json}");
    }
}
