//! The watchlist screen: one row per mint — star, ticker (or short address), name, last price, 24-hour
//! change (green up, red down), 24-hour SOL volume and a sparkline of the last hour — under a header with
//! the sort and the filter, above the connection's status and the keys.
//!
//! It reads the [`Watchlist`] model only; the page it shows is the model's, so the rows the app seeds
//! sparklines for are the rows drawn here.

use std::time::Instant;

use kline_protocol::NameText;
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;
use ratatui::style::{Color, Modifier, Style};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Paragraph, Widget};

use super::chart::{DOWN, UP};
use super::price::format_price;
use super::symbols::short_mint;
use super::volume::format_volume;
use crate::state::ChartState;
use crate::watchlist::sparkline::MINUTES;
use crate::watchlist::{Row, Watchlist};

const EIGHTHS: [char; 8] = ['▁', '▂', '▃', '▄', '▅', '▆', '▇', '█'];
/// Rows above the list (header, column titles) and below it (status).
const CHROME_ROWS: u16 = 3;
const TICKER_WIDTH: usize = 11;
const PRICE_WIDTH: usize = 11;
const CHANGE_WIDTH: usize = 9;
const VOLUME_WIDTH: usize = 9;
/// Star, ticker, price, change and volume columns with their gaps.
const FIXED_WIDTH: usize =
    2 + TICKER_WIDTH + 1 + PRICE_WIDTH + 1 + CHANGE_WIDTH + 1 + VOLUME_WIDTH + 2;
const NAME_WIDTH: usize = 22;
const MIN_SPARK_WIDTH: usize = 10;
/// The keys, in the status line.
const KEYS: &str = "type to filter · Tab sort · ↑↓ select · * star · Enter chart · Esc back";

/// Rows of mints a screen `height` rows high shows.
pub fn list_height(height: u16) -> usize {
    usize::from(height.saturating_sub(CHROME_ROWS))
}

/// The name and sparkline columns' widths in a screen `width` wide: the name gets what the sparkline
/// leaves, the sparkline at least [`MIN_SPARK_WIDTH`] and at most an hour's minutes.
fn flexible_widths(width: u16) -> (usize, usize) {
    let rest = usize::from(width).saturating_sub(FIXED_WIDTH);
    let spark = rest
        .saturating_sub(NAME_WIDTH)
        .clamp(MIN_SPARK_WIDTH, MINUTES);
    let name = rest.saturating_sub(spark + 1).min(NAME_WIDTH + 10);
    (name, spark.min(rest))
}

/// Prices as eighth-cell bars scaled between the smallest and largest shown (a flat hour sits at the
/// middle); an unknown minute is a blank.
pub fn sparkline_glyphs(values: &[Option<f64>]) -> String {
    let known = values.iter().flatten().copied();
    let low = known.clone().fold(f64::INFINITY, f64::min);
    let high = known.fold(f64::NEG_INFINITY, f64::max);
    values
        .iter()
        .map(|value| match value {
            None => ' ',
            Some(_) if high <= low => EIGHTHS[3],
            Some(v) => EIGHTHS[((v - low) / (high - low) * 7.0).round() as usize],
        })
        .collect()
}

/// Cuts `text` to `width` characters (an ellipsis marks the cut) and pads it to that width.
fn fit(text: &str, width: usize) -> String {
    let count = text.chars().count();
    let mut shown: String = if count > width {
        let mut cut: String = text.chars().take(width.saturating_sub(1)).collect();
        cut.push('…');
        cut
    } else {
        text.to_owned()
    };
    let padding = width.saturating_sub(shown.chars().count());
    shown.extend(std::iter::repeat_n(' ', padding));
    shown
}

fn row_line(row: &Row, selected: bool, width: u16, now_secs: i64) -> Line<'static> {
    let ticker = &row.ticker;
    let (name_width, spark_width) = flexible_widths(width);
    let label = ticker.ticker.as_ref().map_or_else(
        || short_mint(ticker.symbol.as_str()),
        |t| t.as_str().to_owned(),
    );
    let name = ticker.name.as_ref().map_or("", NameText::as_str);
    let change = ticker.price_change_percent;
    let colour = if change > 0.0 {
        UP
    } else if change < 0.0 {
        DOWN
    } else {
        Color::Reset
    };
    let base = if selected {
        Style::new().add_modifier(Modifier::REVERSED)
    } else {
        Style::new()
    };
    let spark = sparkline_glyphs(&row.sparkline.columns(now_secs, spark_width));
    let star = if row.starred { "★ " } else { "  " };
    Line::from(vec![
        Span::styled(star, base.fg(Color::Yellow)),
        Span::styled(
            format!(
                "{} {} {:>PRICE_WIDTH$} ",
                fit(&label, TICKER_WIDTH),
                fit(name, name_width),
                format_price(ticker.last_price, super::PRICE_DIGITS),
            ),
            base.add_modifier(Modifier::BOLD),
        ),
        Span::styled(
            format!("{:>CHANGE_WIDTH$}", format!("{change:+.2}%")),
            base.fg(colour),
        ),
        Span::styled(
            format!(" {:>VOLUME_WIDTH$}  ", format_volume(ticker.quote_volume)),
            base,
        ),
        Span::styled(spark, base.fg(colour)),
    ])
}

fn header_line(list: &Watchlist, matching: usize) -> Line<'static> {
    let mut spans = vec![
        Span::styled(
            " WATCHLIST ",
            Style::new().add_modifier(Modifier::BOLD | Modifier::REVERSED),
        ),
        Span::raw(format!("  sort: {}", list.sort.label())),
        Span::raw(format!("  filter: {}▏", list.filter)),
        Span::raw(format!("  {matching}/{} mints", list.len())),
    ];
    if let Some(path) = list.stars().path() {
        spans.push(Span::styled(
            format!("  ★ {}", path.display()),
            Style::new().fg(Color::DarkGray),
        ));
    }
    Line::from(spans)
}

fn titles_line(width: u16) -> Line<'static> {
    let (name_width, _) = flexible_widths(width);
    Line::styled(
        format!(
            "  {} {} {:>PRICE_WIDTH$} {:>CHANGE_WIDTH$} {:>VOLUME_WIDTH$}  last hour",
            fit("TICKER", TICKER_WIDTH),
            fit("NAME", name_width),
            "LAST",
            "24H",
            "VOL SOL",
        ),
        Style::new().add_modifier(Modifier::UNDERLINED),
    )
}

/// Draws the whole watchlist screen into `buf`; `now_secs` is the wall clock's Unix time (the sparklines'
/// newest minute).
pub fn render_watchlist(
    list: &Watchlist,
    state: &ChartState,
    area: Rect,
    buf: &mut Buffer,
    now: Instant,
    now_secs: i64,
) {
    if area.width < super::MIN_WIDTH || area.height < super::MIN_HEIGHT {
        super::render_too_small(area, buf);
        return;
    }
    let page = list.page(list_height(area.height));
    header_line(list, page.matching).render(Rect::new(area.x, area.y, area.width, 1), buf);
    titles_line(area.width).render(Rect::new(area.x, area.y + 1, area.width, 1), buf);
    let message = if !list.loaded {
        Some("Waiting for the ticker stream…".to_owned())
    } else if list.is_empty() {
        Some("No mint has a price yet".to_owned())
    } else if page.rows.is_empty() {
        Some(format!(
            "No mint matches “{}” (Backspace, Esc)",
            list.filter
        ))
    } else {
        None
    };
    if let Some(message) = message {
        Paragraph::new(message).render(Rect::new(area.x + 2, area.y + 3, area.width - 2, 1), buf);
    }
    for (index, row) in page.rows.iter().enumerate() {
        let y = area.y + 2 + index as u16;
        row_line(row, page.selected == Some(index), area.width, now_secs)
            .render(Rect::new(area.x, y, area.width, 1), buf);
    }
    let mut status = vec![super::link_status(state, now)];
    if let Some(error) = &state.last_error {
        status.push(Span::styled(
            format!(" │ {error}"),
            Style::new().fg(Color::Red),
        ));
    }
    status.push(Span::raw(format!(" │ {KEYS}")));
    let status = Line::from(status);
    status.render(Rect::new(area.x, area.bottom() - 1, area.width, 1), buf);
}

#[cfg(test)]
mod tests {
    use kline_protocol::{Candle, DayStats, Symbol, Ticker, TickerText};

    use super::*;
    use crate::state::LinkStatus;
    use crate::watchlist::stars::Stars;

    const NOW_SECS: i64 = 1_764_000_030;

    fn ticker(n: u8, label: Option<&str>, last: f64, sol: f64) -> Ticker {
        let day = DayStats {
            open: 1e-7,
            high: last,
            low: last,
            volume: 1.0,
            quote_volume: sol,
            trade_count: 1,
        };
        Ticker::new(Symbol::from_bytes(&[n; 32]), last, Some(day)).with_names(
            label.and_then(TickerText::new),
            label.and_then(|l| NameText::new(&format!("Simulated {l}"))),
        )
    }

    fn screen(list: &Watchlist, width: u16, height: u16) -> (Vec<String>, Buffer) {
        let mut state = ChartState::new(None, kline_protocol::Interval::M1);
        state.link = LinkStatus::Connected;
        let mut buffer = Buffer::empty(Rect::new(0, 0, width, height));
        render_watchlist(
            list,
            &state,
            buffer.area,
            &mut buffer,
            Instant::now(),
            NOW_SECS,
        );
        let lines = (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_string())
                    .collect()
            })
            .collect();
        (lines, buffer)
    }

    #[test]
    fn rows_show_price_coloured_change_volume_and_the_hour() {
        let mut list = Watchlist::new(Stars::default());
        let otter = ticker(1, Some("OTTER"), 1.2e-7, 1234.5);
        let unnamed = ticker(2, None, 0.5e-7, 3.0);
        list.apply_snapshot(&[otter, unnamed], NOW_SECS * 1000);
        let climb: Vec<Candle> = (0..60)
            .map(|i| {
                let price = 1e-7 + f64::from(i) * 3e-10;
                Candle::new(
                    NOW_SECS / 60 * 60 - 3600 + i64::from(i) * 60,
                    [price; 4],
                    1,
                    true,
                )
            })
            .collect();
        list.apply_history(&Symbol::from_bytes(&[1; 32]), &climb);
        let (lines, buffer) = screen(&list, 100, 10);
        assert!(
            lines[0].starts_with(" WATCHLIST   sort: 24h change ▼  filter: ▏  2/2 mints"),
            "{}",
            lines[0]
        );
        assert!(
            lines[1].contains("TICKER") && lines[1].contains("VOL SOL"),
            "{}",
            lines[1]
        );
        let otter_row = &lines[2];
        assert!(
            otter_row.starts_with("  OTTER       Simulated OTTER "),
            "{otter_row}"
        );
        assert!(
            otter_row.contains(" 0.0₆1200 ") && otter_row.contains("+20.00%"),
            "{otter_row}"
        );
        assert!(otter_row.contains("1.23K"), "SOL volume: {otter_row}");
        assert!(
            otter_row.trim_end().ends_with('█'),
            "the hour climbs to now: {otter_row}"
        );
        assert!(otter_row.contains('▁'), "from its low: {otter_row}");
        let unnamed_row = &lines[3];
        let short = short_mint(Symbol::from_bytes(&[2; 32]).as_str());
        assert!(
            unnamed_row.starts_with(&format!("  {short} ")),
            "{unnamed_row}"
        );
        assert!(unnamed_row.contains("-50.00%"), "{unnamed_row}");
        let change_x = otter_row.chars().position(|c| c == '+').unwrap() as u16;
        assert_eq!(buffer[(change_x, 2)].fg, UP);
        let minus_x = unnamed_row.chars().position(|c| c == '-').unwrap() as u16;
        assert_eq!(buffer[(minus_x, 3)].fg, DOWN);
        assert!(
            buffer[(0, 2)].modifier.contains(Modifier::REVERSED),
            "the first row is selected"
        );
        assert!(
            lines[9].starts_with("● connected │ type to filter"),
            "{}",
            lines[9]
        );
    }

    #[test]
    fn empty_states_say_why() {
        let mut list = Watchlist::new(Stars::default());
        assert!(screen(&list, 80, 10).0[3].contains("Waiting for the ticker stream"));
        list.apply_snapshot(&[ticker(1, Some("OTTER"), 1e-7, 1.0)], 0);
        list.push_filter('#');
        assert!(screen(&list, 80, 10).0[3].contains("No mint matches “#”"));
    }

    #[test]
    fn sparkline_glyphs_span_the_range_and_leave_unknown_minutes_blank() {
        let values = [None, Some(1.0), Some(1.5), Some(2.0), Some(2.0)];
        assert_eq!(sparkline_glyphs(&values), " ▁▅██");
        assert_eq!(
            sparkline_glyphs(&[Some(3.0); 4]),
            "▄▄▄▄",
            "flat sits mid-way"
        );
        assert_eq!(sparkline_glyphs(&[None, None]), "  ");
    }

    #[test]
    fn cells_are_cut_with_an_ellipsis_and_padded() {
        assert_eq!(fit("Simulated Otter", 8), "Simulat…");
        assert_eq!(fit("PET", 5), "PET  ");
        assert_eq!(fit("", 0), "");
    }

    #[test]
    fn the_sparkline_takes_what_the_name_leaves_within_an_hour() {
        assert_eq!(FIXED_WIDTH, 47);
        assert_eq!(flexible_widths(100), (21, 31));
        assert_eq!(flexible_widths(160), (32, MINUTES), "an hour at most");
        assert_eq!(flexible_widths(60), (2, MIN_SPARK_WIDTH));
        assert_eq!(flexible_widths(40), (0, 0), "nothing left");
    }
}
