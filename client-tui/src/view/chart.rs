//! `CandleChart`: candlesticks drawn with half-cell vertical resolution, one column per candle.
//!
//! Each terminal row holds two vertical "pixels". A body is drawn with `█`, `▀` and `▄`, a wick with `│`,
//! `╵` and `╷`, so a body or wick can start or end halfway through a row (as the `cli-candlestick-chart`
//! crate does). Up candles (close ≥ open) are green, down candles red. The newest candle sits at the right
//! edge, as on every trading chart: a history shorter than the chart leaves the left side empty.

use kline_protocol::Candle;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier};
use ratatui::widgets::Widget;

pub const UP: Color = Color::Green;
pub const DOWN: Color = Color::Red;

/// The column of the first (oldest) of `count` candles `zoom` columns wide, so that the newest ends at the
/// right edge of `width` columns.
pub fn first_column(count: usize, zoom: u16, width: u16) -> u16 {
    let used = (count as u64).saturating_mul(u64::from(zoom.max(1)));
    width.saturating_sub(u16::try_from(used).unwrap_or(u16::MAX))
}

pub struct CandleChart<'a> {
    /// Oldest first; candle `i` is drawn in column `first_column(..) + i * zoom`.
    pub candles: &'a [Candle],
    pub zoom: u16,
    /// Price range of the plot; `None` fits the candles.
    pub range: Option<(f64, f64)>,
    /// Index into `candles` to highlight (the crosshair).
    pub highlight: Option<usize>,
}

/// The low and high of `candles`, padded when flat so a flat series sits mid-chart.
pub fn price_range(candles: &[Candle]) -> Option<(f64, f64)> {
    let low = candles.iter().map(|c| c.low).fold(f64::INFINITY, f64::min);
    let high = candles
        .iter()
        .map(|c| c.high)
        .fold(f64::NEG_INFINITY, f64::max);
    if !low.is_finite() || !high.is_finite() {
        return None;
    }
    if high > low {
        Some((low, high))
    } else {
        let pad = (low.abs() * 0.01).max(f64::MIN_POSITIVE);
        Some((low - pad, high + pad))
    }
}

impl Widget for &CandleChart<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        if area.is_empty() {
            return;
        }
        let Some((low, high)) = self.range.or_else(|| price_range(self.candles)) else {
            return;
        };
        let pixels = i64::from(area.height) * 2;
        let to_pixel = |price: f64| -> i64 {
            let share = if high > low {
                (price - low) / (high - low)
            } else {
                0.5
            };
            ((share * (pixels - 1) as f64).round() as i64).clamp(0, pixels - 1)
        };
        let zoom = self.zoom.max(1);
        let first = first_column(self.candles.len(), zoom, area.width);
        for (index, candle) in self.candles.iter().enumerate() {
            let column = first + index as u16 * zoom;
            if column >= area.width {
                break;
            }
            let x = area.x + column;
            let color = if candle.close >= candle.open {
                UP
            } else {
                DOWN
            };
            let body = (
                to_pixel(candle.open.min(candle.close)),
                to_pixel(candle.open.max(candle.close)),
            );
            let wick = (to_pixel(candle.low), to_pixel(candle.high));
            for row in 0..area.height {
                let bottom = i64::from(area.height - 1 - row) * 2;
                let top = bottom + 1;
                let in_body = |p: i64| body.0 <= p && p <= body.1;
                let in_wick = |p: i64| wick.0 <= p && p <= wick.1;
                let symbol = match (in_body(top), in_body(bottom), in_wick(top), in_wick(bottom)) {
                    (true, true, _, _) => '█',
                    (true, false, _, _) => '▀',
                    (false, true, _, _) => '▄',
                    (false, false, true, true) => '│',
                    (false, false, true, false) => '╵',
                    (false, false, false, true) => '╷',
                    (false, false, false, false) => continue,
                };
                let cell = &mut buf[(x, area.y + row)];
                cell.set_char(symbol).set_fg(color);
                if self.highlight == Some(index) {
                    cell.modifier.insert(Modifier::REVERSED);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use ratatui::buffer::Buffer;

    use super::*;

    fn render(candles: &[Candle], range: Option<(f64, f64)>, width: u16, height: u16) -> Buffer {
        let mut buffer = Buffer::empty(Rect::new(0, 0, width, height));
        let chart = CandleChart {
            candles,
            zoom: 1,
            range,
            highlight: None,
        };
        (&chart).render(buffer.area, &mut buffer);
        buffer
    }

    fn column(buffer: &Buffer, x: u16) -> String {
        (0..buffer.area.height)
            .map(|y| buffer[(x, y)].symbol().to_string())
            .collect()
    }

    fn ohlc(open: f64, high: f64, low: f64, close: f64) -> Candle {
        Candle::new(0, [open, high, low, close], 1, false)
    }

    #[test]
    fn bull_and_bear_candles_with_half_cell_bodies_and_wicks() {
        // Range 0..=7 over 4 rows = 8 pixels: pixel p is price p.
        let candles = [ohlc(2.0, 7.0, 0.0, 5.0), ohlc(5.0, 6.0, 1.0, 2.0)];
        let buffer = render(&candles, Some((0.0, 7.0)), 2, 4);
        // Bull: wick 0..7, body 2..5 → rows (top→bottom) pixels 7/6, 5/4, 3/2, 1/0.
        assert_eq!(column(&buffer, 0), "│██│");
        assert_eq!(buffer[(0, 1)].fg, UP);
        // Bear: wick 1..6, body 2..5.
        assert_eq!(column(&buffer, 1), "╷██╵");
        assert_eq!(buffer[(1, 1)].fg, DOWN);
    }

    #[test]
    fn a_short_history_sits_at_the_right_edge() {
        let candles = [ohlc(2.0, 7.0, 0.0, 5.0), ohlc(5.0, 6.0, 1.0, 2.0)];
        let buffer = render(&candles, Some((0.0, 7.0)), 5, 4);
        for x in 0..3 {
            assert_eq!(column(&buffer, x), "    ", "column {x} is empty");
        }
        assert_eq!(column(&buffer, 3), "│██│", "the older candle");
        assert_eq!(
            column(&buffer, 4),
            "╷██╵",
            "the newest candle, at the right edge"
        );
        assert_eq!(first_column(3, 2, 10), 4);
        assert_eq!(first_column(30, 1, 10), 0, "more candles than columns");
    }

    #[test]
    fn half_cell_body_edges() {
        // Body 3..4 spans the top half of row 2 (pixel 3) and the bottom half of row 1 (pixel 4).
        let buffer = render(&[ohlc(3.0, 4.0, 3.0, 4.0)], Some((0.0, 7.0)), 1, 4);
        assert_eq!(column(&buffer, 0), " ▄▀ ");
    }

    #[test]
    fn a_doji_is_still_visible() {
        let buffer = render(&[ohlc(4.0, 6.0, 1.0, 4.0)], Some((0.0, 7.0)), 1, 4);
        assert_eq!(column(&buffer, 0), "╷▄│╵");
        assert_eq!(buffer[(0, 1)].fg, UP, "open == close counts as up");
    }

    #[test]
    fn a_wick_only_candle_and_a_candle_taller_than_the_chart() {
        let buffer = render(
            &[ohlc(5.0, 7.0, 0.0, 5.0), ohlc(-10.0, 50.0, -20.0, 40.0)],
            Some((0.0, 7.0)),
            2,
            4,
        );
        assert_eq!(column(&buffer, 0), "│▀││", "flat body on a long wick");
        assert_eq!(column(&buffer, 1), "████", "clamped to the plot, no panic");
    }

    #[test]
    fn fits_tiny_prices_and_the_empty_state_draws_nothing() {
        let candles = [
            ohlc(2.7e-8, 2.9e-8, 2.6e-8, 2.8e-8),
            ohlc(2.8e-8, 3.0e-8, 2.8e-8, 2.95e-8),
        ];
        let buffer = render(&candles, None, 2, 6);
        // Fitted to the candles: the highest wick touches the top row, the lowest the bottom row.
        assert_ne!(buffer[(1, 0)].symbol(), " ", "{}", column(&buffer, 1));
        assert_ne!(buffer[(0, 5)].symbol(), " ", "{}", column(&buffer, 0));
        assert!(column(&buffer, 0).contains('█') && column(&buffer, 1).contains('█'));
        let empty = render(&[], None, 4, 3);
        assert!(empty.content.iter().all(|cell| cell.symbol() == " "));
    }
}
