//! Indicator overlays (shown with `i`): their lines drawn over the candles, and the legend row with each
//! indicator's values at the crosshair (or at the newest visible candle without one).
//!
//! Lines are braille dots (two columns by four rows of dots per cell, ratatui's `Canvas`): candle `i` of
//! the visible ones is at the left dot of its chart column, so the lines pass through the same columns as
//! the candles, in the same price range. A gap in a line (a value not defined yet) stays a gap. Lines are
//! drawn on top of the candles, as on every charting site; `i` hides them.

use std::ops::Range;

use kline_protocol::Candle;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Style};
use ratatui::symbols::Marker;
use ratatui::text::{Line, Span};
use ratatui::widgets::Widget;
use ratatui::widgets::canvas::{Canvas, Context, Line as Segment, Points};

use super::chart::first_column;
use super::price::format_price;
use crate::indicators::{Indicator, IndicatorValues, Indicators};

/// Significant digits of the legend's values (one more than the axis: they are read, not scanned).
pub const LEGEND_DIGITS: usize = 5;

/// The indicators' values, computed over every candle held, and which of them are visible.
pub struct Overlays {
    values: Vec<IndicatorValues>,
    visible: Range<usize>,
}

impl Overlays {
    /// Computes `indicators` over `held` (every candle held, ascending); `visible` is the part drawn.
    pub fn new(indicators: &Indicators, held: &[Candle], visible: Range<usize>) -> Overlays {
        Overlays {
            values: indicators.compute(held),
            visible,
        }
    }

    /// Each line's visible values with its colour.
    fn lines(&self) -> impl Iterator<Item = (&[Option<f64>], Color)> {
        let visible = &self.visible;
        colored(&self.values).flat_map(move |(values, color)| {
            values
                .lines
                .iter()
                .map(move |line| (&line[visible.clone()], color))
        })
    }

    /// `range` widened to every visible value, so that no line (the outer bands above all) leaves the plot.
    pub fn fit(&self, (low, high): (f64, f64)) -> (f64, f64) {
        self.lines()
            .flat_map(|(values, _)| values.iter().flatten())
            .filter(|value| value.is_finite())
            .fold((low, high), |(low, high), value| {
                (low.min(*value), high.max(*value))
            })
    }
}

/// Each indicator with its colour: one hue per kind, a lighter one for a second period of the same kind.
fn colored(values: &[IndicatorValues]) -> impl Iterator<Item = (&IndicatorValues, Color)> {
    let (mut sma, mut ema) = (0, 0);
    values.iter().map(move |value| {
        let next = |count: &mut usize, palette: [Color; 3]| {
            *count += 1;
            palette[(*count - 1) % palette.len()]
        };
        let color = match value.indicator {
            Indicator::Sma(_) => next(&mut sma, [Color::Yellow, Color::LightYellow, Color::Gray]),
            Indicator::Ema(_) => next(
                &mut ema,
                [Color::Magenta, Color::LightMagenta, Color::White],
            ),
            Indicator::Vwap => Color::Cyan,
            Indicator::Bollinger { .. } => Color::LightBlue,
        };
        (value, color)
    })
}

/// The lines over the candle plot.
pub struct OverlayLines<'a> {
    pub overlays: &'a Overlays,
    /// Columns per candle, as the chart draws them.
    pub zoom: u16,
    /// The plot's price range (the chart's and the axis's).
    pub range: (f64, f64),
}

impl Widget for &OverlayLines<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let (low, high) = self.range;
        if area.is_empty() || high.partial_cmp(&low) != Some(std::cmp::Ordering::Greater) {
            return;
        }
        let zoom = self.zoom.max(1);
        let first = first_column(self.overlays.visible.len(), zoom, area.width);
        // x in dots: the canvas is 2 dots per column, so bounds 0..=2w-1 map x to dot x exactly.
        let dot_x = move |index: usize| f64::from(first + index as u16 * zoom) * 2.0;
        let canvas = Canvas::default()
            .marker(Marker::Braille)
            .x_bounds([0.0, f64::from(area.width) * 2.0 - 1.0])
            .y_bounds([low, high])
            .paint(|ctx: &mut Context| {
                for (values, color) in self.overlays.lines() {
                    let points: Vec<Option<(f64, f64)>> = values
                        .iter()
                        .enumerate()
                        .map(|(index, value)| value.map(|v| (dot_x(index), v)))
                        .collect();
                    for (index, point) in points.iter().enumerate() {
                        let Some((x, y)) = *point else { continue };
                        match points.get(index + 1).copied().flatten() {
                            Some((x2, y2)) => ctx.draw(&Segment::new(x, y, x2, y2, color)),
                            None => ctx.draw(&Points::new(&[(x, y)], color)),
                        }
                    }
                }
            });
        canvas.render(area, buf);
    }
}

/// The legend row: `SMA20 0.0₇25012  …  BB20 upper middle lower`, each in its line's colour, for the
/// candle `index` of the visible ones.
pub struct IndicatorLegend<'a> {
    pub overlays: &'a Overlays,
    /// Index into the visible candles.
    pub index: usize,
}

impl Widget for &IndicatorLegend<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let at = self.overlays.visible.start + self.index;
        let mut spans = Vec::new();
        for (value, color) in colored(&self.overlays.values) {
            let shown: Vec<String> = value
                .lines
                .iter()
                .map(|line| {
                    line.get(at)
                        .copied()
                        .flatten()
                        .map_or("—".to_owned(), |v| format_price(v, LEGEND_DIGITS))
                })
                .collect();
            spans.push(Span::styled(
                format!(" {} {} ", value.indicator.label(), shown.join(" ")),
                Style::new().fg(color),
            ));
        }
        Line::from(spans).render(area, buf);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn flat(count: i64, close: f64) -> Vec<Candle> {
        (0..count)
            .map(|i| Candle::new(i * 60, [close; 4], 1, true).with_volumes([1.0, 0.0, 0.0, 0.0]))
            .collect()
    }

    fn only(indicator: Indicator) -> Indicators {
        Indicators {
            list: vec![indicator],
            shown: true,
        }
    }

    fn row(buffer: &Buffer, y: u16) -> String {
        (0..buffer.area.width)
            .map(|x| buffer[(x, y)].symbol().to_string())
            .collect()
    }

    #[test]
    fn a_flat_average_is_a_braille_line_at_its_price_from_its_first_value() {
        // Five candles at 5.0 in a 5×2 plot over 0..=10: 8 dot rows, 5.0 maps to dot row
        // (10 - 5) × 7 / 10 = 3.5 → 4, the top dot row of the lower cell row.
        let candles = flat(5, 5.0);
        let overlays = Overlays::new(&only(Indicator::Sma(3)), &candles, 0..5);
        let mut buffer = Buffer::empty(Rect::new(0, 0, 5, 2));
        let lines = OverlayLines {
            overlays: &overlays,
            zoom: 1,
            range: (0.0, 10.0),
        };
        (&lines).render(buffer.area, &mut buffer);
        assert_eq!(row(&buffer, 0), "     ");
        // Undefined for the first two candles; from the third, dots 4..=8 of dot row 0 in cell row 1:
        // ⠉ (both dots of the top row) and a lone left dot ⠁ for the newest.
        assert_eq!(row(&buffer, 1), "  ⠉⠉⠁");
        assert_eq!(buffer[(2, 1)].fg, Color::Yellow);
    }

    #[test]
    fn fitting_widens_the_range_to_the_bands() {
        let mut candles = flat(3, 5.0);
        candles.push(Candle::new(180, [9.0; 4], 1, true));
        let bands = only(Indicator::Bollinger { period: 4, k: 2.0 });
        let overlays = Overlays::new(&bands, &candles, 0..4);
        // Mean 6, σ = √3 → bands 6 ± 3.4641.
        let (low, high) = overlays.fit((5.0, 9.0));
        assert!((low - (6.0 - 2.0 * 3f64.sqrt())).abs() < 1e-12, "{low}");
        assert!((high - (6.0 + 2.0 * 3f64.sqrt())).abs() < 1e-12, "{high}");
        let hidden_part = Overlays::new(&bands, &candles, 0..3);
        assert_eq!(
            hidden_part.fit((5.0, 9.0)),
            (5.0, 9.0),
            "only visible values count"
        );
    }

    #[test]
    fn the_legend_shows_each_value_at_the_candle_or_a_dash() {
        let candles: Vec<Candle> = [2.0e-8, 4.0e-8, 6.0e-8]
            .iter()
            .enumerate()
            .map(|(i, c)| {
                Candle::new(i as i64 * 60, [*c; 4], 1, true).with_volumes([1.0, 0.0, 0.0, 0.0])
            })
            .collect();
        let indicators = Indicators {
            list: vec![
                Indicator::Sma(2),
                Indicator::Vwap,
                Indicator::Bollinger { period: 3, k: 2.0 },
            ],
            shown: true,
        };
        let overlays = Overlays::new(&indicators, &candles, 1..3);
        let legend = |index| {
            let mut buffer = Buffer::empty(Rect::new(0, 0, 80, 1));
            (&IndicatorLegend {
                overlays: &overlays,
                index,
            })
                .render(buffer.area, &mut buffer);
            buffer
        };
        let second = legend(0);
        assert_eq!(
            row(&second, 0).trim_end(),
            " SMA2 0.0₇30000  VWAP 0.0₇30000  BB3 — — —",
            "the second candle held"
        );
        assert_eq!(second[(1, 0)].fg, Color::Yellow);
        assert_eq!(second[(17, 0)].fg, Color::Cyan);
        // Mean 4e-8, σ = √(8/3)·1e-8 = 1.63299e-8: bands 7.26599e-8, 4e-8, 7.3401e-9.
        assert_eq!(
            row(&legend(1), 0).trim_end(),
            " SMA2 0.0₇50000  VWAP 0.0₇40000  BB3 0.0₇72660 0.0₇40000 0.0₈73401"
        );
    }
}
