//! A mint's last hour as one close per minute, for the watchlist's sparkline.
//!
//! Minutes come from two places: **seeded** from the mint's `m1` candles (a `history` answer) and **live**
//! from the ticker stream (each `last_price` lands in the minute of the message that carried it). A seeded
//! minute never replaces a live one (the live price is the newer). A minute with no entry has the close of
//! the newest minute before it (no trade: the price did not move); before the first entry nothing is known
//! and nothing is drawn. At most [`KEPT`] entries are held: the hour plus one older close to carry in.

use std::collections::BTreeMap;

use kline_protocol::Candle;

/// Minutes in the sparkline.
pub const MINUTES: usize = 60;
/// Entries held: the hour's minutes and the newest close before them.
const KEPT: usize = MINUTES + 1;
const MINUTE_SECS: i64 = 60;

#[derive(Debug, Clone, Copy, PartialEq)]
struct Close {
    price: f64,
    live: bool,
}

/// Closes by minute (Unix seconds of the minute's start).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Sparkline {
    minutes: BTreeMap<i64, Close>,
}

fn minute_of(time_secs: i64) -> i64 {
    time_secs.div_euclid(MINUTE_SECS) * MINUTE_SECS
}

impl Sparkline {
    /// A live price at `time_secs` (it becomes its minute's close).
    pub fn record_live(&mut self, time_secs: i64, price: f64) {
        if !price.is_finite() {
            return;
        }
        let close = Close { price, live: true };
        self.minutes.insert(minute_of(time_secs), close);
        self.trim();
    }

    /// The closes of `candles` (any interval's times are floored to their minute; `m1` is asked for).
    pub fn seed(&mut self, candles: &[Candle]) {
        for candle in candles.iter().filter(|c| c.close.is_finite()) {
            let minute = minute_of(candle.time);
            if self.minutes.get(&minute).is_some_and(|known| known.live) {
                continue;
            }
            let close = Close {
                price: candle.close,
                live: false,
            };
            self.minutes.insert(minute, close);
        }
        self.trim();
    }

    /// Whether any close is known.
    pub fn is_empty(&self) -> bool {
        self.minutes.is_empty()
    }

    fn trim(&mut self) {
        while self.minutes.len() > KEPT {
            self.minutes.pop_first();
        }
    }

    /// The close of each of the [`MINUTES`] minutes ending with the one holding `now_secs`, oldest first
    /// (`None` before the first known close).
    pub fn hour(&self, now_secs: i64) -> [Option<f64>; MINUTES] {
        let last = minute_of(now_secs);
        std::array::from_fn(|index| {
            let minute = last - (MINUTES - 1 - index) as i64 * MINUTE_SECS;
            self.minutes
                .range(..=minute)
                .next_back()
                .map(|(_, close)| close.price)
        })
    }

    /// The hour in `width` columns: all 60 minutes when they fit, otherwise each column shows the close
    /// of the last minute of its share of the hour (so the newest column is always the current minute).
    pub fn columns(&self, now_secs: i64, width: usize) -> Vec<Option<f64>> {
        let hour = self.hour(now_secs);
        if width >= MINUTES {
            return hour.to_vec();
        }
        (1..=width)
            .map(|column| hour[column * MINUTES / width - 1])
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: i64 = 1_764_000_000 + 30; // 30 s into a minute

    fn candle(time: i64, close: f64) -> Candle {
        Candle::new(time, [close, close, close, close], 1, true)
    }

    #[test]
    fn seeded_minutes_carry_forward_and_nothing_before_the_first() {
        let mut line = Sparkline::default();
        let minute = minute_of(NOW);
        line.seed(&[candle(minute - 10 * 60, 1.0), candle(minute - 5 * 60, 2.0)]);
        let hour = line.hour(NOW);
        // The last index is the current minute, so ten minutes ago is 11 from the end.
        assert_eq!(hour[MINUTES - 12], None);
        assert_eq!(hour[MINUTES - 11..MINUTES - 6], [Some(1.0); 5]);
        assert_eq!(hour[MINUTES - 6..], [Some(2.0); 6], "carried to now");
    }

    #[test]
    fn a_live_price_is_its_minutes_close_and_a_seed_never_replaces_it() {
        let mut line = Sparkline::default();
        let minute = minute_of(NOW);
        line.record_live(NOW, 3.0);
        line.record_live(NOW + 20, 3.5);
        line.seed(&[candle(minute - 60, 2.0), candle(minute, 2.9)]);
        let hour = line.hour(NOW);
        assert_eq!(hour[MINUTES - 1], Some(3.5), "live wins within its minute");
        assert_eq!(hour[MINUTES - 2], Some(2.0));
        // The next minute starts with the carried close until a new price comes.
        assert_eq!(line.hour(NOW + 60)[MINUTES - 1], Some(3.5));
        line.record_live(NOW + 60, 4.0);
        assert_eq!(line.hour(NOW + 60)[MINUTES - 1], Some(4.0));
        assert_eq!(line.hour(NOW + 60)[MINUTES - 2], Some(3.5));
    }

    #[test]
    fn an_older_close_carries_into_the_hour_and_the_store_stays_bounded() {
        let mut line = Sparkline::default();
        let minute = minute_of(NOW);
        let candles: Vec<Candle> = (0..200)
            .map(|i| candle(minute - (199 - i) * 60 - 3600, i as f64))
            .collect();
        line.seed(&candles);
        assert_eq!(line.minutes.len(), KEPT);
        assert_eq!(
            line.hour(NOW),
            [Some(199.0); MINUTES],
            "flat: no trade this hour"
        );
    }

    #[test]
    fn narrow_columns_show_the_last_minute_of_each_share() {
        let mut line = Sparkline::default();
        let minute = minute_of(NOW);
        let candles: Vec<Candle> = (0..60)
            .map(|i| candle(minute - (59 - i) * 60, i as f64))
            .collect();
        line.seed(&candles);
        let columns = line.columns(NOW, 4);
        assert_eq!(columns, [Some(14.0), Some(29.0), Some(44.0), Some(59.0)]);
        assert_eq!(line.columns(NOW, 80).len(), MINUTES);
    }
}
