//! Indicators computed on the client from the candles it holds (the protocol carries none): which ones
//! the user asked for, whether they are shown (`i`), and their values per candle. The formulas are in
//! [`math`]; drawing them is `view/overlay.rs`.
//!
//! Every indicator is computed over all the candles held, not only the visible ones, so a value at the
//! left edge of the chart is the same as when that candle was the newest.

pub mod math;

use kline_protocol::Candle;

use self::math::{bollinger, ema, sma, vwap_daily};

/// Longest period accepted (two pages of history).
pub const MAX_PERIOD: usize = 1000;

/// One indicator as configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Indicator {
    Sma(usize),
    Ema(usize),
    Vwap,
    Bollinger { period: usize, k: f64 },
}

impl Indicator {
    /// The label in the legend: `SMA20`, `EMA50`, `VWAP`, `BB20`.
    pub fn label(&self) -> String {
        match self {
            Indicator::Sma(period) => format!("SMA{period}"),
            Indicator::Ema(period) => format!("EMA{period}"),
            Indicator::Vwap => "VWAP".to_owned(),
            Indicator::Bollinger { period, .. } => format!("BB{period}"),
        }
    }

    /// Its lines over `candles` (ascending): one for a moving average or VWAP, three for Bollinger bands
    /// (upper, middle, lower). Each line has one value per candle.
    pub fn lines(&self, candles: &[Candle]) -> Vec<Vec<Option<f64>>> {
        let closes = || candles.iter().map(|c| c.close).collect::<Vec<f64>>();
        match *self {
            Indicator::Sma(period) => vec![sma(&closes(), period)],
            Indicator::Ema(period) => vec![ema(&closes(), period)],
            Indicator::Vwap => vec![vwap_daily(candles)],
            Indicator::Bollinger { period, k } => {
                let bands = bollinger(&closes(), period, k);
                let line = |pick: fn(&math::Bands) -> f64| {
                    bands.iter().map(|b| b.as_ref().map(pick)).collect()
                };
                vec![line(|b| b.upper), line(|b| b.middle), line(|b| b.lower)]
            }
        }
    }
}

/// One indicator's lines over the candles held.
#[derive(Debug, Clone, PartialEq)]
pub struct IndicatorValues {
    pub indicator: Indicator,
    pub lines: Vec<Vec<Option<f64>>>,
}

/// The indicators asked for (CLI flags) and whether they are drawn (`i`).
#[derive(Debug, Clone, PartialEq)]
pub struct Indicators {
    pub list: Vec<Indicator>,
    pub shown: bool,
}

impl Default for Indicators {
    /// SMA 50, EMA 9, VWAP and Bollinger bands (20, 2σ), hidden until `i` (the CLI's defaults). The
    /// SMA is not 20: that line is the bands' middle already.
    fn default() -> Indicators {
        Indicators::new(&[50], &[9], true, &[20], 2.0, false)
    }
}

impl Indicators {
    /// The indicators for the given periods (each list may be empty), hidden until `i` unless `shown`.
    pub fn new(
        sma: &[usize],
        ema: &[usize],
        vwap: bool,
        bollinger: &[usize],
        sigmas: f64,
        shown: bool,
    ) -> Indicators {
        let list = sma
            .iter()
            .map(|p| Indicator::Sma(*p))
            .chain(ema.iter().map(|p| Indicator::Ema(*p)))
            .chain(vwap.then_some(Indicator::Vwap))
            .chain(bollinger.iter().map(|p| Indicator::Bollinger {
                period: *p,
                k: sigmas,
            }))
            .collect();
        Indicators { list, shown }
    }

    pub fn toggle(&mut self) {
        self.shown = !self.shown;
    }

    /// The values of every indicator over `candles` (ascending), in the order they were asked for.
    pub fn compute(&self, candles: &[Candle]) -> Vec<IndicatorValues> {
        self.list
            .iter()
            .map(|indicator| IndicatorValues {
                indicator: *indicator,
                lines: indicator.lines(candles),
            })
            .collect()
    }
}

/// Parses the Bollinger bands' width in standard deviations: above 0, at most 10.
pub fn parse_sigmas(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(k) if k > 0.0 && k <= 10.0 => Ok(k),
        _ => Err(format!(
            "`{text}` is not a band width: a number above 0, at most 10"
        )),
    }
}

/// Parses a comma-separated list of periods (`20,50`); `none` or nothing gives no period.
pub fn parse_periods(text: &str) -> Result<Vec<usize>, String> {
    let text = text.trim();
    if text.is_empty() || text.eq_ignore_ascii_case("none") {
        return Ok(Vec::new());
    }
    text.split(',')
        .map(|part| {
            let part = part.trim();
            match part.parse::<usize>() {
                Ok(period) if (1..=MAX_PERIOD).contains(&period) => Ok(period),
                _ => Err(format!(
                    "`{part}` is not a period: a whole number from 1 to {MAX_PERIOD}"
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_parse_from_a_list_and_none_means_off() {
        assert_eq!(parse_periods("20"), Ok(vec![20]));
        assert_eq!(parse_periods(" 9, 21 ,200"), Ok(vec![9, 21, 200]));
        assert_eq!(parse_periods("none"), Ok(vec![]));
        assert_eq!(parse_periods(""), Ok(vec![]));
        assert!(parse_periods("0").unwrap_err().contains("from 1 to 1000"));
        assert!(parse_periods("20,x").is_err());
        assert!(parse_periods("1001").is_err());
        assert_eq!(parse_sigmas("2.5"), Ok(2.5));
        assert!(parse_sigmas("0").is_err() && parse_sigmas("NaN").is_err());
    }

    #[test]
    fn bollinger_gives_three_lines_in_band_order_and_labels_name_the_period() {
        let candles: Vec<Candle> = [1.0, 3.0, 2.0]
            .iter()
            .enumerate()
            .map(|(i, close)| Candle::new(i as i64 * 60, [*close; 4], 1, true))
            .collect();
        let bands = Indicator::Bollinger { period: 2, k: 1.0 }.lines(&candles);
        // Windows 1,3 (mean 2, σ 1) and 3,2 (mean 2.5, σ 0.5).
        assert_eq!(bands[0], [None, Some(3.0), Some(3.0)]);
        assert_eq!(bands[1], [None, Some(2.0), Some(2.5)]);
        assert_eq!(bands[2], [None, Some(1.0), Some(2.0)]);
        let labels: Vec<String> = Indicators::default()
            .list
            .iter()
            .map(Indicator::label)
            .collect();
        assert_eq!(labels, ["SMA50", "EMA9", "VWAP", "BB20"]);
    }
}
