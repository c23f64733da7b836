//! `VolumeBars`: the volume pane under the candles, one bar per candle in the chart's columns, with
//! eighth-cell vertical resolution (`▁`…`█`), coloured like its candle. Bars are scaled to the largest
//! volume shown; a candle that traded anything gets at least the smallest bar.

use kline_protocol::Candle;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::Modifier;
use ratatui::widgets::Widget;

use super::chart::{DOWN, UP, first_column};

const EIGHTHS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];

pub struct VolumeBars<'a> {
    /// Oldest first, the same slice the chart draws.
    pub candles: &'a [Candle],
    pub zoom: u16,
    /// Index into `candles` to highlight (the crosshair).
    pub highlight: Option<usize>,
}

/// The largest volume among `candles` (0 when none traded).
pub fn max_volume(candles: &[Candle]) -> f64 {
    candles
        .iter()
        .map(|c| c.volume)
        .filter(|v| v.is_finite())
        .fold(0.0, f64::max)
}

/// A volume label: three significant digits with K, M, B or T (`1.23M`).
pub fn format_volume(volume: f64) -> String {
    if !volume.is_finite() {
        return "—".into();
    }
    let (value, suffix) = [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "K")]
        .into_iter()
        .find(|(unit, _)| volume >= *unit)
        .map_or((volume, ""), |(unit, suffix)| (volume / unit, suffix));
    let decimals = if value >= 100.0 {
        0
    } else if value >= 10.0 {
        1
    } else {
        2
    };
    format!("{value:.decimals$}{suffix}")
}

impl Widget for &VolumeBars<'_> {
    fn render(self, area: Rect, buf: &mut Buffer) {
        let max = max_volume(self.candles);
        if area.is_empty() || max <= 0.0 {
            return;
        }
        let zoom = self.zoom.max(1);
        let first = first_column(self.candles.len(), zoom, area.width);
        let eighths_high = u32::from(area.height) * 8;
        for (index, candle) in self.candles.iter().enumerate() {
            let column = first + index as u16 * zoom;
            if column >= area.width {
                break;
            }
            let volume = if candle.volume.is_finite() {
                candle.volume
            } else {
                0.0
            };
            let mut eighths = (volume / max * f64::from(eighths_high)).round() as u32;
            if volume > 0.0 {
                eighths = eighths.max(1);
            }
            let color = if candle.close >= candle.open {
                UP
            } else {
                DOWN
            };
            for row in 0..area.height {
                let below = u32::from(area.height - 1 - row) * 8;
                let fill = eighths.saturating_sub(below).min(8);
                if fill == 0 {
                    continue;
                }
                let cell = &mut buf[(area.x + column, area.y + row)];
                cell.set_char(EIGHTHS[fill as usize - 1]).set_fg(color);
                if self.highlight == Some(index) {
                    cell.modifier.insert(Modifier::REVERSED);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn candle(open: f64, close: f64, volume: f64) -> Candle {
        Candle::new(0, [open, open.max(close), open.min(close), close], 1, false)
            .with_volumes([volume, 0.0, 0.0, 0.0])
    }

    fn column(buffer: &Buffer, x: u16) -> String {
        (0..buffer.area.height)
            .map(|y| buffer[(x, y)].symbol().to_string())
            .collect()
    }

    #[test]
    fn bars_scale_to_the_largest_volume_with_eighth_cells_at_the_right_edge() {
        let candles = [
            candle(1.0, 2.0, 100.0),
            candle(2.0, 1.0, 50.0),
            candle(1.0, 1.0, 1.0),
            candle(1.0, 1.0, 0.0),
        ];
        let mut buffer = Buffer::empty(Rect::new(0, 0, 6, 2));
        let bars = VolumeBars {
            candles: &candles,
            zoom: 1,
            highlight: None,
        };
        (&bars).render(buffer.area, &mut buffer);
        // Four candles in six columns: drawn in the last four, the newest at the right edge.
        assert_eq!(column(&buffer, 0), "  ");
        assert_eq!(column(&buffer, 1), "  ");
        assert_eq!(column(&buffer, 2), "██", "the largest fills the pane");
        assert_eq!(column(&buffer, 3), " █", "half: one of two rows");
        assert_eq!(
            column(&buffer, 4),
            " ▁",
            "tiny but not zero: the smallest bar"
        );
        assert_eq!(column(&buffer, 5), "  ", "no volume, no bar");
        assert_eq!(buffer[(2, 1)].fg, UP);
        assert_eq!(buffer[(3, 1)].fg, DOWN);
    }

    #[test]
    fn volume_labels_are_short() {
        assert_eq!(format_volume(0.0), "0.00");
        assert_eq!(format_volume(999.0), "999");
        assert_eq!(format_volume(1_234.0), "1.23K");
        assert_eq!(format_volume(71_428_571.4), "71.4M");
        assert_eq!(format_volume(3.2e12), "3.20T");
    }
}
