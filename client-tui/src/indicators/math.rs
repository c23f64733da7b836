//! The indicator formulas as pure functions over a series, oldest first. Each returns one value per input
//! element, `None` where the indicator is not defined yet (fewer than `period` values before it, or no
//! volume traded yet that day). The page computes the same in `server/web/indicators.js`.
//!
//! - **SMA**(p): the mean of the last `p` closes.
//! - **EMA**(p): seeded with the SMA of the first `p` closes, then `ema = α·close + (1 − α)·ema` with
//!   `α = 2 / (p + 1)`.
//! - **Bollinger**(p, k): the SMA(p) as the middle band, `middle ± k·σ` as the upper and lower bands, with
//!   σ the population standard deviation of the same `p` closes (Bollinger's own definition).
//! - **VWAP**: `Σ(typical price × volume) / Σ volume` with typical price `(high + low + close) / 3` and the
//!   token volume, summed from the first candle held of each UTC day (it restarts at 00:00 UTC, as
//!   trading tools do).

use kline_protocol::Candle;

/// One candle's Bollinger bands.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bands {
    pub upper: f64,
    pub middle: f64,
    pub lower: f64,
}

const SECS_PER_DAY: i64 = 86_400;

/// The simple moving average of `period` values ending at each index.
pub fn sma(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 {
        return out;
    }
    let mut sum = 0.0;
    for (index, value) in values.iter().enumerate() {
        sum += value;
        if index >= period {
            sum -= values[index - period];
        }
        if index + 1 >= period {
            out[index] = Some(sum / period as f64);
        }
    }
    out
}

/// The exponential moving average, seeded with the SMA of the first `period` values.
pub fn ema(values: &[f64], period: usize) -> Vec<Option<f64>> {
    let mut out = vec![None; values.len()];
    if period == 0 || values.len() < period {
        return out;
    }
    let alpha = 2.0 / (period as f64 + 1.0);
    let mut current = values[..period].iter().sum::<f64>() / period as f64;
    out[period - 1] = Some(current);
    for (index, value) in values.iter().enumerate().skip(period) {
        current = alpha * value + (1.0 - alpha) * current;
        out[index] = Some(current);
    }
    out
}

/// Bollinger bands: SMA(`period`) ± `k` population standard deviations of the same window.
pub fn bollinger(values: &[f64], period: usize, k: f64) -> Vec<Option<Bands>> {
    sma(values, period)
        .into_iter()
        .enumerate()
        .map(|(index, middle)| {
            let middle = middle?;
            let window = &values[index + 1 - period..=index];
            // Two passes over the window: no cancellation between two large sums for tiny prices.
            let variance = window
                .iter()
                .map(|value| (value - middle).powi(2))
                .sum::<f64>()
                / period as f64;
            let spread = k * variance.sqrt();
            Some(Bands {
                upper: middle + spread,
                middle,
                lower: middle - spread,
            })
        })
        .collect()
}

/// The volume-weighted average price since the first candle of each UTC day in `candles` (ascending).
pub fn vwap_daily(candles: &[Candle]) -> Vec<Option<f64>> {
    let mut day = None;
    let (mut weighted, mut volume) = (0.0, 0.0);
    candles
        .iter()
        .map(|candle| {
            let candle_day = candle.time.div_euclid(SECS_PER_DAY);
            if day != Some(candle_day) {
                day = Some(candle_day);
                (weighted, volume) = (0.0, 0.0);
            }
            if candle.volume.is_finite() && candle.volume > 0.0 {
                let typical = (candle.high + candle.low + candle.close) / 3.0;
                weighted += typical * candle.volume;
                volume += candle.volume;
            }
            (volume > 0.0).then(|| weighted / volume)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Equal within 1e-12 of the larger magnitude (the reference values are written in decimal).
    fn close_to(actual: &[Option<f64>], expected: &[Option<f64>]) {
        assert_eq!(actual.len(), expected.len(), "{actual:?} vs {expected:?}");
        for (a, e) in actual.iter().zip(expected) {
            match (a, e) {
                (Some(a), Some(e)) => assert!(
                    (a - e).abs() <= 1e-12 * a.abs().max(e.abs()),
                    "{actual:?} vs {expected:?}"
                ),
                (None, None) => {}
                _ => panic!("{actual:?} vs {expected:?}"),
            }
        }
    }

    const CLOSES: [f64; 6] = [2.0, 4.0, 6.0, 8.0, 7.0, 5.0];

    #[test]
    fn sma_by_hand() {
        // (2+4+6)/3 = 4, (4+6+8)/3 = 6, (6+8+7)/3 = 7, (8+7+5)/3 = 6.6667
        close_to(
            &sma(&CLOSES, 3),
            &[
                None,
                None,
                Some(4.0),
                Some(6.0),
                Some(7.0),
                Some(20.0 / 3.0),
            ],
        );
        close_to(&sma(&CLOSES, 1), &CLOSES.map(Some));
        assert_eq!(sma(&CLOSES, 7), vec![None; 6], "longer than the series");
        assert_eq!(sma(&CLOSES, 0), vec![None; 6]);
    }

    #[test]
    fn ema_by_hand() {
        // α = 2/4 = 0.5; seed SMA(2,4,6) = 4; then 0.5·8 + 0.5·4 = 6; 0.5·7 + 0.5·6 = 6.5;
        // 0.5·5 + 0.5·6.5 = 5.75.
        close_to(
            &ema(&CLOSES, 3),
            &[None, None, Some(4.0), Some(6.0), Some(6.5), Some(5.75)],
        );
        // α = 2/6 = 1/3; seed SMA(2,4,6,8,7) = 5.4; then 5/3 + 2·5.4/3 = 5.2667.
        close_to(
            &ema(&CLOSES, 5),
            &[None, None, None, None, Some(5.4), Some(5.0 / 3.0 + 3.6)],
        );
        assert_eq!(ema(&CLOSES, 7), vec![None; 6]);
    }

    #[test]
    fn bollinger_by_hand() {
        // Window 2,4,6: mean 4, deviations −2 0 2, variance 8/3, σ = 1.63299; k = 2 → ±3.26599.
        // Window 6,8,7: mean 7, deviations −1 1 0, variance 2/3, σ = 0.81650.
        let bands = bollinger(&CLOSES, 3, 2.0);
        assert_eq!(bands[..2], [None, None]);
        let first = bands[2].unwrap();
        let spread = 2.0 * (8.0_f64 / 3.0).sqrt();
        close_to(
            &[Some(first.upper), Some(first.middle), Some(first.lower)],
            &[Some(4.0 + spread), Some(4.0), Some(4.0 - spread)],
        );
        assert!((spread - 3.265_986).abs() < 1e-6);
        let third = bands[4].unwrap();
        let spread = 2.0 * (2.0_f64 / 3.0).sqrt();
        close_to(
            &[Some(third.upper), Some(third.lower)],
            &[Some(7.0 + spread), Some(7.0 - spread)],
        );
    }

    #[test]
    fn bollinger_keeps_tiny_prices_apart() {
        // Spin Pet prices: 1e-8 with a spread of 1e-12. A sum-of-squares formula loses this spread.
        let values = [1e-8, 1e-8 + 1e-12, 1e-8 - 1e-12];
        let bands = bollinger(&values, 3, 1.0)[2].unwrap();
        let sigma = (2.0_f64 / 3.0).sqrt() * 1e-12;
        assert!(
            ((bands.upper - bands.middle) / sigma - 1.0).abs() < 1e-3,
            "{bands:?}"
        );
    }

    fn candle(time: i64, [high, low, close]: [f64; 3], volume: f64) -> Candle {
        Candle::new(time, [close, high, low, close], 1, true).with_volumes([volume, 0.0, 0.0, 0.0])
    }

    #[test]
    fn vwap_by_hand_restarts_each_utc_day() {
        let midnight = 1_764_028_800; // 2025-11-25 00:00:00 UTC
        let candles = [
            // Typical prices 10, 12 (volumes 1, 3); then nothing traded; then a new day: 20.
            candle(midnight - 180, [11.0, 9.0, 10.0], 1.0),
            candle(midnight - 120, [13.0, 11.0, 12.0], 3.0),
            candle(midnight - 60, [30.0, 30.0, 30.0], 0.0),
            candle(midnight, [21.0, 18.0, 21.0], 2.0),
            candle(midnight + 60, [12.0, 12.0, 12.0], 2.0),
        ];
        // (10·1 + 12·3)/4 = 11.5, unchanged by a candle without volume; the new day starts at 20, then
        // (20·2 + 12·2)/4 = 16.
        close_to(
            &vwap_daily(&candles),
            &[Some(10.0), Some(11.5), Some(11.5), Some(20.0), Some(16.0)],
        );
        let quiet = [candle(midnight, [1.0, 1.0, 1.0], 0.0)];
        assert_eq!(vwap_daily(&quiet), [None], "no volume yet that day");
    }
}
