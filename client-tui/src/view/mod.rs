//! Rendering: reads the state, draws the screen. Nothing here changes state or does I/O.
//!
//! Layout, top to bottom: header (symbol, interval, last price, change, visible high/low — or the crosshair
//! candle with its volume), the indicators' legend (when `i` shows them), the chart with its price axis on
//! the right and the indicator lines over it, the volume pane (toggled with `v`) with its scale, the time
//! axis, and the status line; the trades pane (toggled with `t`) on the right.

pub mod chart;
pub mod overlay;
pub mod price;
pub mod symbols;
pub mod trades;
pub mod volume;
pub mod watchlist;

use std::time::Instant;

use chrono::{DateTime, Local, Utc};
use kline_protocol::{Candle, Interval};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Clear, Paragraph, Widget};

use self::chart::{CandleChart, first_column, price_range};
use self::overlay::{IndicatorLegend, OverlayLines, Overlays};
use self::price::format_price;
pub use self::symbols::{Picker, SymbolEntry};
use self::symbols::{chart_title, fitted_title, render_picker};
use self::trades::{TRADES_WIDTH, TradesPane};
use self::volume::{VolumeBars, format_volume, max_volume};
use crate::indicators::Indicators;
use crate::input::KEY_HELP;
use crate::state::{ChartState, LinkStatus};

pub const MIN_WIDTH: u16 = 40;
pub const MIN_HEIGHT: u16 = 10;
const AXIS_WIDTH: u16 = 12;
const PRICE_DIGITS: usize = 4;

/// What the screen shows besides the chart state.
#[derive(Debug, Clone, Default)]
pub struct Ui {
    pub utc: bool,
    /// The volume pane is hidden (`v`); shown by default.
    pub volume_hidden: bool,
    /// The trades pane is shown (`t`); hidden by default.
    pub trades_shown: bool,
    /// The indicators asked for, and whether they are drawn (`i`).
    pub indicators: Indicators,
    pub show_help: bool,
    pub picker: Option<Picker>,
}

/// Draws the whole screen into `buf`.
pub fn render(state: &ChartState, ui: &Ui, area: Rect, buf: &mut Buffer, now: Instant) {
    if area.width < MIN_WIDTH || area.height < MIN_HEIGHT {
        render_too_small(area, buf);
        return;
    }
    let full = area;
    let area = if ui.trades_shown && area.width >= MIN_WIDTH + TRADES_WIDTH {
        let pane = Rect::new(
            area.right() - TRADES_WIDTH,
            area.y + 1,
            TRADES_WIDTH,
            area.height - 2,
        );
        let trades = TradesPane {
            trades: &state.trades,
            utc: ui.utc,
        };
        (&trades).render(pane, buf);
        Rect::new(area.x, area.y, area.width - TRADES_WIDTH, area.height)
    } else {
        area
    };
    let overlays = ui.indicators.shown.then(|| {
        let held: Vec<Candle> = state.candles.values().copied().collect();
        let visible = state.visible_range(area.width - AXIS_WIDTH);
        Overlays::new(&ui.indicators, &held, visible)
    });
    let legend_rows = u16::from(overlays.is_some());
    let plot = Rect::new(
        area.x,
        area.y + 1 + legend_rows,
        area.width - AXIS_WIDTH,
        area.height - 3 - legend_rows,
    );
    let candles = state.visible(plot.width);
    let volume_rows = if ui.volume_hidden {
        0
    } else {
        (plot.height / 4).clamp(2, 8)
    };
    let volume_pane = Rect::new(plot.x, plot.bottom() - volume_rows, plot.width, volume_rows);
    let price_plot = Rect::new(plot.x, plot.y, plot.width, plot.height - volume_rows);
    let highlight = state
        .cursor
        .and_then(|from_right| candles.len().checked_sub(from_right + 1));
    render_header(
        state,
        &candles,
        highlight,
        ui.utc,
        Rect::new(area.x, area.y, area.width, 1),
        buf,
    );
    if candles.is_empty() {
        let waiting = match (&state.symbol, &state.link) {
            (None, _) => "No symbol: press s to pick one".to_owned(),
            (Some(_), LinkStatus::Connected) => "Waiting for candles…".to_owned(),
            _ => "Waiting for the server…".to_owned(),
        };
        Paragraph::new(waiting).render(
            Rect::new(plot.x + 2, plot.y + plot.height / 2, plot.width - 2, 1),
            buf,
        );
    } else {
        let range =
            price_range(&candles).map(|range| overlays.as_ref().map_or(range, |o| o.fit(range)));
        let chart = CandleChart {
            candles: &candles,
            zoom: state.zoom,
            range,
            highlight,
        };
        (&chart).render(price_plot, buf);
        if let (Some(overlays), Some(range)) = (&overlays, range) {
            let lines = OverlayLines {
                overlays,
                zoom: state.zoom,
                range,
            };
            (&lines).render(price_plot, buf);
            let legend = IndicatorLegend {
                overlays,
                index: highlight.unwrap_or(candles.len() - 1),
            };
            (&legend).render(Rect::new(area.x, area.y + 1, area.width, 1), buf);
        }
        if let Some(range) = range {
            render_price_axis(
                range,
                Rect::new(
                    price_plot.right(),
                    price_plot.y,
                    AXIS_WIDTH,
                    price_plot.height,
                ),
                buf,
            );
        }
        if !volume_pane.is_empty() {
            let bars = VolumeBars {
                candles: &candles,
                zoom: state.zoom,
                highlight,
            };
            (&bars).render(volume_pane, buf);
            let label = format!("┤V {}", format_volume(max_volume(&candles)));
            Line::from(label).render(
                Rect::new(volume_pane.right(), volume_pane.y, AXIS_WIDTH, 1),
                buf,
            );
        }
        render_time_axis(
            &candles,
            state,
            ui.utc,
            plot.width,
            Rect::new(area.x, plot.bottom(), area.width, 1),
            buf,
        );
    }
    render_status(
        state,
        Rect::new(area.x, area.bottom() - 1, area.width, 1),
        buf,
        now,
    );
    if ui.show_help {
        render_help(full, buf);
    }
    if let Some(picker) = &ui.picker {
        render_picker(picker, full, buf);
    }
}

/// What a screen smaller than [`MIN_WIDTH`] × [`MIN_HEIGHT`] shows instead.
fn render_too_small(area: Rect, buf: &mut Buffer) {
    let message = format!(
        "Terminal too small: {MIN_WIDTH}×{MIN_HEIGHT} needed, {}×{} here",
        area.width, area.height
    );
    Paragraph::new(message)
        .wrap(Default::default())
        .render(area, buf);
}

fn render_header(
    state: &ChartState,
    candles: &[Candle],
    highlight: Option<usize>,
    utc: bool,
    area: Rect,
    buf: &mut Buffer,
) {
    let name = state
        .symbol
        .as_ref()
        .map_or("—".to_owned(), |s| chart_title(s, state.names.get(s)));
    let mut spans = vec![
        Span::styled(
            format!(" {name} "),
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::styled(
            format!(" {} ", state.interval),
            Style::new().add_modifier(Modifier::BOLD),
        ),
    ];
    let p = |x: f64| format_price(x, PRICE_DIGITS);
    if let Some(candle) = highlight.and_then(|i| candles.get(i)) {
        spans.push(Span::raw(format!(
            " {}  O {}  H {}  L {}  C {}  V {}  n={}{}",
            format_time(candle.time, state.interval, utc, true),
            p(candle.open),
            p(candle.high),
            p(candle.low),
            p(candle.close),
            format_volume(candle.volume),
            candle.update_count,
            if candle.is_final { " final" } else { "" }
        )));
    } else if let (Some(first), Some(last)) = (candles.first(), state.candles.values().next_back())
    {
        let change = (last.close / first.open - 1.0) * 100.0;
        let high = candles.iter().map(|c| c.high).fold(f64::MIN, f64::max);
        let low = candles.iter().map(|c| c.low).fold(f64::MAX, f64::min);
        let color = if change >= 0.0 {
            chart::UP
        } else {
            chart::DOWN
        };
        spans.push(Span::raw(format!(" last {} ", p(last.close))));
        spans.push(Span::styled(
            format!("{change:+.2}%"),
            Style::new().fg(color),
        ));
        spans.push(Span::raw(format!("  H {}  L {}", p(high), p(low))));
    }
    // The title takes what the rest of the header leaves (at least the short address).
    if let Some(symbol) = &state.symbol {
        let rest: usize = spans[1..].iter().map(Span::width).sum();
        let budget = usize::from(area.width).saturating_sub(rest + 2);
        let title = fitted_title(symbol, state.names.get(symbol), budget);
        spans[0].content = format!(" {title} ").into();
    }
    Line::from(spans).render(area, buf);
}

fn render_price_axis((low, high): (f64, f64), area: Rect, buf: &mut Buffer) {
    let rows = area.height.max(1);
    for row in (0..rows).step_by(3) {
        // The price at the middle of this row (two pixels per row, pixel 0 at the bottom).
        let pixel = f64::from(rows - 1 - row) * 2.0 + 0.5;
        let price = low + (high - low) * pixel / (f64::from(rows) * 2.0 - 1.0);
        let label = format!("┤{}", format_price(price, PRICE_DIGITS));
        Line::from(label).render(Rect::new(area.x, area.y + row, area.width, 1), buf);
    }
}

/// A candle time as shown on the axis and in the crosshair.
pub fn format_time(time: i64, interval: Interval, utc: bool, long: bool) -> String {
    let pattern = match (interval.duration_secs(), long) {
        (86_400, _) => "%Y-%m-%d",
        (secs, false) if secs < 60 => "%H:%M:%S",
        (_, false) => "%H:%M",
        (_, true) => "%Y-%m-%d %H:%M:%S",
    };
    let Some(at) = DateTime::<Utc>::from_timestamp(time, 0) else {
        return time.to_string();
    };
    if utc {
        at.format(pattern).to_string()
    } else {
        at.with_timezone(&Local).format(pattern).to_string()
    }
}

/// Time labels under the candles of a plot `plot_width` wide; `area` is the whole row, so the labels of
/// the newest candles (at the plot's right edge) may run on under the price axis.
fn render_time_axis(
    candles: &[Candle],
    state: &ChartState,
    utc: bool,
    plot_width: u16,
    area: Rect,
    buf: &mut Buffer,
) {
    let zoom = state.zoom.max(1) as usize;
    let label_width = format_time(0, state.interval, utc, false).chars().count() + 2;
    let every = label_width.div_ceil(zoom).max(1);
    let first = first_column(candles.len(), state.zoom, plot_width);
    for (index, candle) in candles.iter().enumerate().step_by(every) {
        let x = area.x + first + (index * zoom) as u16;
        if x + label_width as u16 > area.right() {
            break;
        }
        Line::from(format!(
            "└{}",
            format_time(candle.time, state.interval, utc, false)
        ))
        .render(Rect::new(x, area.y, label_width as u16, 1), buf);
    }
}

/// The connection's state, coloured: connecting, reconnecting (with its countdown), connected or stale.
fn link_status(state: &ChartState, now: Instant) -> Span<'static> {
    let (text, color) = match &state.link {
        LinkStatus::Connecting => ("◌ connecting…".to_owned(), Color::Yellow),
        LinkStatus::Reconnecting { at, attempt } => {
            let secs = at.saturating_duration_since(now).as_secs_f64().ceil();
            (
                format!("◌ reconnecting in {secs:.0} s (attempt {attempt})"),
                Color::Yellow,
            )
        }
        LinkStatus::Connected => match state.last_update.map(|t| now.duration_since(t).as_secs()) {
            Some(quiet) if quiet > 30 => {
                (format!("● stale: no update for {quiet} s"), Color::Yellow)
            }
            _ => ("● connected".to_owned(), Color::Green),
        },
    };
    Span::styled(text, Style::new().fg(color))
}

fn render_status(state: &ChartState, area: Rect, buf: &mut Buffer, now: Instant) {
    let mut spans = vec![link_status(state, now)];
    spans.push(Span::raw(format!(" │ {} upd/s", state.updates_per_sec())));
    if let Some(latency) = state.latency_ms {
        spans.push(Span::raw(format!(" │ latency {latency} ms")));
    }
    spans.push(Span::raw(" │ ? help"));
    if let Some(error) = &state.last_error {
        spans.push(Span::styled(
            format!(" │ {error}"),
            Style::new().fg(Color::Red),
        ));
    }
    Line::from(spans).render(area, buf);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect::new(
        area.x + (area.width - width) / 2,
        area.y + (area.height - height) / 2,
        width,
        height,
    )
}

fn render_help(area: Rect, buf: &mut Buffer) {
    let box_area = centered(area, 72, KEY_HELP.len() as u16 + 2);
    Clear.render(box_area, buf);
    let lines: Vec<Line> = KEY_HELP
        .iter()
        .map(|(key, what)| Line::from(format!("{key:>18}  {what}")))
        .collect();
    Paragraph::new(lines)
        .block(
            Block::default()
                .borders(Borders::ALL)
                .title(" keys (? to close) "),
        )
        .render(box_area, buf);
}

#[cfg(test)]
mod tests;
