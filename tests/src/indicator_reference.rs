//! What the indicator tests compare the clients with: a fixed market posted through ingest (one mint,
//! three trades a minute over the hour around a UTC midnight, so the daily VWAP restarts inside it), the
//! candles the server made of it, and every indicator computed from those candles straight from its
//! definition, one candle at a time — written apart from the clients' code, which it checks.

use std::time::Duration;

use serde_json::Value;

use crate::spinpet_script::{buy_sell, key};
use crate::{KlineServer, get_json, post_events, wait_until};

/// Candles in the market: 30 minutes before a UTC midnight and 30 after.
pub const MINUTES: i64 = 60;
const TRADES_PER_MINUTE: i64 = 3;
const SECS_PER_DAY: i64 = 86_400;

/// One m1 candle as the server serves it (what the indicators read).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RefCandle {
    pub time: i64,
    pub high: f64,
    pub low: f64,
    pub close: f64,
    pub volume: f64,
}

/// The market once stored: its mint and its m1 candles, ascending.
pub struct MidnightMarket {
    pub mint: String,
    pub candles: Vec<RefCandle>,
}

impl MidnightMarket {
    /// The midnight inside the market: yesterday's (UTC), so every candle is long final.
    pub fn midnight() -> i64 {
        let now = kline_protocol::response::unix_millis_now() / 1000;
        now.div_euclid(SECS_PER_DAY) * SECS_PER_DAY - SECS_PER_DAY
    }

    /// Posts the market to `server` (ingest on, simulator off) and waits until its 60 candles hold
    /// all of their trades.
    pub async fn post(server: &impl KlineServer) -> MidnightMarket {
        let mint_key = key(4_242);
        let mint = bs58::encode(mint_key).into_string();
        let first = Self::midnight() - MINUTES / 2 * 60;
        let mut events = Vec::new();
        for minute in 0..MINUTES {
            for trade in 0..TRADES_PER_MINUTE {
                let n = minute * TRADES_PER_MINUTE + trade;
                // A slow wave with a faster wobble: the averages, bands and VWAP all differ.
                let price = 2.5e-8
                    * (1.0 + 0.08 * (minute as f64 / 7.0).sin() + 0.01 * ((n * 5) % 7) as f64);
                let raw = (price * 1e28) as u128;
                let mut signature = [0u8; 64];
                signature[..8].copy_from_slice(&(n as u64 + 1).to_le_bytes());
                let mut event = buy_sell(
                    mint_key,
                    key(n as u64 + 7),
                    raw,
                    first + minute * 60 + 5 + trade * 20,
                    &bs58::encode(signature).into_string(),
                    300_000_000 + n as u64,
                    0,
                )
                .json;
                event["token_amount"] = Value::from(1_000_000 * (100 + (n * 37) % 211) as u64);
                events.push(event);
            }
        }
        let (status, body) = post_events(server, Value::Array(events).to_string()).await;
        assert_eq!(status, 200, "{body}");
        assert_eq!(body["accepted"], MINUTES * TRADES_PER_MINUTE, "{body}");
        let url = server.url(&format!(
            "/api/v1/klines?symbol={mint}&interval=m1&limit=1000"
        ));
        let whole = |list: &Value| {
            list.as_array().is_some_and(|list| {
                list.len() == MINUTES as usize
                    && list.iter().all(|c| c["update_count"] == TRADES_PER_MINUTE)
            })
        };
        wait_until(
            "the market's 60 m1 candles are stored whole",
            Duration::from_secs(20),
            || async { whole(&get_json(&url).await["data"]) },
        )
        .await;
        let candles: Vec<RefCandle> = get_json(&url).await["data"]
            .as_array()
            .expect("candles")
            .iter()
            .map(ref_candle)
            .collect();
        assert_eq!(candles[0].time, first);
        MidnightMarket { mint, candles }
    }

    pub fn closes(&self) -> Vec<f64> {
        self.candles.iter().map(|c| c.close).collect()
    }

    /// The index of the first candle of the second day.
    pub fn midnight_index(&self) -> usize {
        (MINUTES / 2) as usize
    }
}

fn ref_candle(candle: &Value) -> RefCandle {
    let number = |key: &str| {
        candle[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key} in {candle}"))
    };
    RefCandle {
        time: candle["time"].as_i64().expect("time"),
        high: number("high"),
        low: number("low"),
        close: number("close"),
        volume: number("volume"),
    }
}

/// Each indicator at candle `i`, from its definition.
pub mod at {
    use super::{RefCandle, SECS_PER_DAY};

    fn mean(values: &[f64]) -> f64 {
        values.iter().sum::<f64>() / values.len() as f64
    }

    /// The window of `period` closes ending at `i`, if there are that many.
    fn window(closes: &[f64], period: usize, i: usize) -> Option<&[f64]> {
        (i + 1 >= period).then(|| &closes[i + 1 - period..=i])
    }

    pub fn sma(closes: &[f64], period: usize, i: usize) -> Option<f64> {
        window(closes, period, i).map(mean)
    }

    /// Starts from the mean of the first `period` closes, then moves `2 / (period + 1)` of the way to
    /// each next close.
    pub fn ema(closes: &[f64], period: usize, i: usize) -> Option<f64> {
        let seed = mean(window(closes, period, period - 1)?);
        let alpha = 2.0 / (period as f64 + 1.0);
        (i + 1 >= period).then(|| {
            closes[period..=i]
                .iter()
                .fold(seed, |ema, close| ema + alpha * (close - ema))
        })
    }

    /// `[upper, middle, lower]`: the mean ± `k` population standard deviations.
    pub fn bollinger(closes: &[f64], period: usize, k: f64, i: usize) -> Option<[f64; 3]> {
        let values = window(closes, period, i)?;
        let middle = mean(values);
        let deviations: Vec<f64> = values.iter().map(|v| (v - middle).powi(2)).collect();
        let sigma = mean(&deviations).sqrt();
        Some([middle + k * sigma, middle, middle - k * sigma])
    }

    /// Σ typical price × volume / Σ volume over the candles of `i`'s UTC day up to `i`.
    pub fn vwap(candles: &[RefCandle], i: usize) -> Option<f64> {
        let day = candles[i].time.div_euclid(SECS_PER_DAY);
        let today = candles[..=i]
            .iter()
            .filter(|c| c.time.div_euclid(SECS_PER_DAY) == day);
        let (weighted, volume) = today.fold((0.0, 0.0), |(w, v), c| {
            (
                w + (c.high + c.low + c.close) / 3.0 * c.volume,
                v + c.volume,
            )
        });
        (volume > 0.0).then(|| weighted / volume)
    }
}

/// A price as the clients write it (`0.0₇25012`: seven zeros after the point, then the digits; or plain
/// decimals), or `None` for `—` (not defined).
pub fn parse_price(text: &str) -> Option<f64> {
    if text == "—" {
        return None;
    }
    let Some(rest) = text.strip_prefix("0.0") else {
        return Some(
            text.parse()
                .unwrap_or_else(|_| panic!("not a price: {text}")),
        );
    };
    let zeros: String = rest
        .chars()
        .take_while(|c| ('₀'..='₉').contains(c))
        .map(|c| char::from(b'0' + (c as u32 - '₀' as u32) as u8))
        .collect();
    if zeros.is_empty() {
        return Some(
            text.parse()
                .unwrap_or_else(|_| panic!("not a price: {text}")),
        );
    }
    let digits = &rest[zeros.len() * '₀'.len_utf8()..];
    let zeros: usize = zeros.parse().expect("a count of zeros");
    let plain = format!("0.{}{digits}", "0".repeat(zeros));
    Some(
        plain
            .parse()
            .unwrap_or_else(|_| panic!("not a price: {text}")),
    )
}

/// Whether `shown` (a value written with `digits` significant digits, `None` for `—`) is `expected`
/// rounded, i.e. within half a unit of its last digit; the error says how it differs.
pub fn shown_as(shown: Option<f64>, expected: Option<f64>, digits: i32) -> Result<(), String> {
    match (shown, expected) {
        (None, None) => Ok(()),
        (Some(shown), Some(expected)) => {
            let magnitude = expected.abs().log10().floor() as i32;
            let half_unit = 0.5 * 10f64.powi(magnitude - (digits - 1));
            if (shown - expected).abs() <= half_unit * (1.0 + 1e-9) {
                Ok(())
            } else {
                Err(format!(
                    "shown {shown:e}, expected {expected:e} to {digits} digits"
                ))
            }
        }
        _ => Err(format!("shown {shown:?}, expected {expected:?}")),
    }
}

/// Panics naming `what` unless [`shown_as`] holds.
pub fn assert_shown(what: &str, shown: Option<f64>, expected: Option<f64>, digits: i32) {
    if let Err(err) = shown_as(shown, expected, digits) {
        panic!("{what}: {err}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prices_parse_as_the_clients_write_them() {
        assert_eq!(parse_price("0.0₇25012"), Some(2.5012e-8));
        assert_eq!(parse_price("0.0₁₂1"), Some(1e-13));
        assert_eq!(parse_price("0.01235"), Some(0.01235));
        assert_eq!(parse_price("—"), None);
    }

    #[test]
    fn shown_values_must_be_the_rounded_reference() {
        assert_eq!(shown_as(Some(2.5012e-8), Some(2.501_24e-8), 5), Ok(()));
        assert!(
            shown_as(Some(2.5013e-8), Some(2.501_24e-8), 5).is_err(),
            "off by one digit"
        );
        assert!(
            shown_as(None, Some(2.5e-8), 5).is_err(),
            "a dash for a value"
        );
        assert!(
            shown_as(Some(2.5e-8), None, 5).is_err(),
            "a value for a dash"
        );
    }

    #[test]
    fn definitions_by_hand() {
        let closes = [2.0, 4.0, 6.0, 8.0];
        assert_eq!(at::sma(&closes, 3, 1), None);
        assert_eq!(at::sma(&closes, 3, 3), Some(6.0));
        assert_eq!(at::ema(&closes, 3, 3), Some(6.0), "4 + (8 − 4) / 2");
        let [upper, middle, lower] = at::bollinger(&closes, 2, 1.0, 1).unwrap();
        assert_eq!((upper, middle, lower), (4.0, 3.0, 2.0));
    }
}
