use std::time::Instant;

use kline_protocol::{Candle, HistoryData, Interval, ServerMessage, Symbol};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use super::*;

fn screen(state: &ChartState, width: u16, height: u16) -> Vec<String> {
    screen_with(
        state,
        &Ui {
            utc: true,
            ..Ui::default()
        },
        width,
        height,
    )
}

fn screen_with(state: &ChartState, ui: &Ui, width: u16, height: u16) -> Vec<String> {
    let mut buffer = Buffer::empty(Rect::new(0, 0, width, height));
    render(state, ui, buffer.area, &mut buffer, Instant::now());
    (0..height)
        .map(|y| {
            (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect::<String>()
        })
        .collect()
}

fn state_with_tiny_prices() -> ChartState {
    let symbol = Symbol::from_bytes(&[3; 32]);
    let mut state = ChartState::new(Some(symbol.clone()), Interval::M1);
    let candles: Vec<Candle> = (0..30)
        .map(|i| {
            let base = 2.796e-8 * (1.0 + 0.01 * f64::from(i));
            Candle::new(
                1_764_000_000 + i64::from(i) * 60,
                [base, base * 1.01, base * 0.99, base * 1.005],
                3,
                true,
            )
            .with_volumes([1_000.0 * f64::from(i + 1), 0.5, 0.0, 0.0])
        })
        .collect();
    let history = HistoryData::new(symbol, Interval::M1, None, candles, false);
    state.apply(&ServerMessage::new(history, 0), Instant::now(), 0);
    state.link = LinkStatus::Connected;
    state
}

#[test]
fn a_tiny_terminal_gets_a_clear_message() {
    let lines = screen(&state_with_tiny_prices(), 39, 9);
    assert!(
        lines
            .join("")
            .contains("Terminal too small: 40×10 needed, 39×9 here"),
        "{lines:#?}"
    );
}

#[test]
fn the_empty_state_says_what_it_waits_for() {
    let mut state = ChartState::new(Some(Symbol::from_bytes(&[3; 32])), Interval::M5);
    state.link = LinkStatus::Connected;
    let text = screen(&state, 60, 12).join("\n");
    assert!(text.contains("Waiting for candles"), "{text}");
    let no_symbol = screen(&ChartState::new(None, Interval::M5), 60, 12).join("\n");
    assert!(no_symbol.contains("press s to pick one"), "{no_symbol}");
}

#[test]
fn tiny_prices_get_significant_digits_on_the_axis_and_in_the_header() {
    let lines = screen(&state_with_tiny_prices(), 80, 16);
    let text = lines.join("\n");
    assert!(
        text.contains("┤0.0₇"),
        "price axis uses subscript zeros:\n{text}"
    );
    assert!(
        !text.contains("0.00 ") && !text.contains("0.000000"),
        "never rounds to zero:\n{text}"
    );
    assert!(
        lines[0].contains(" m1 ") && lines[0].contains("last 0.0₇"),
        "header: {}",
        lines[0]
    );
    assert!(lines[0].contains('%'), "change in the header: {}", lines[0]);
    assert!(lines[14].contains("└"), "time axis row: {}", lines[14]);
    assert!(
        lines[15].contains("● connected"),
        "status line: {}",
        lines[15]
    );
    let chart_cells: usize = lines[1..14]
        .iter()
        .map(|l| l.chars().filter(|c| "█▀▄│╵╷".contains(*c)).count())
        .sum();
    assert!(chart_cells > 30, "candles are drawn:\n{text}");
}

#[test]
fn the_crosshair_shows_one_candles_ohlc_and_time() {
    let mut state = state_with_tiny_prices();
    state.toggle_cursor();
    let header = &screen(&state, 120, 16)[0];
    assert!(
        header.contains("O 0.0₇") && header.contains("C 0.0₇") && header.contains("n=3 final"),
        "{header}"
    );
    assert!(
        header.contains("2025-11-24 16:29:00"),
        "UTC time of the newest candle: {header}"
    );
    assert!(header.contains("V 30.0K"), "its volume: {header}");
}

#[test]
fn the_volume_pane_sits_under_the_candles_and_v_hides_it() {
    let state = state_with_tiny_prices();
    let shown = screen(&state, 80, 16);
    // 13 plot rows: candles in rows 1..=10, volume in rows 11..=13, then the time axis.
    let volume_rows = &shown[11..14];
    assert!(
        volume_rows.iter().all(|l| l.contains('█')),
        "bars in every volume row: {shown:#?}"
    );
    assert!(shown[11].contains("┤V 30.0K"), "scale: {}", shown[11]);
    // The newest (largest) bar ends at the right edge of the plot, next to the axis.
    assert!(
        volume_rows.iter().all(|l| l.chars().nth(67) == Some('█')),
        "{shown:#?}"
    );
    let hidden = screen_with(
        &state,
        &Ui {
            utc: true,
            volume_hidden: true,
            ..Ui::default()
        },
        80,
        16,
    );
    let text = hidden.join("\n");
    assert!(!text.contains("┤V "), "{text}");
    assert!(!text.contains('▁') && !text.contains('▂'), "{text}");
}

#[test]
fn a_short_history_is_drawn_at_the_right_edge() {
    // 30 candles in a 68-column plot: the left 38 columns stay empty.
    let lines = screen(&state_with_tiny_prices(), 80, 16);
    for line in &lines[1..14] {
        let plot: String = line.chars().take(68).collect();
        assert!(plot[..38].trim().is_empty(), "{plot}");
    }
    assert!(
        lines[1..11]
            .iter()
            .any(|l| l.chars().nth(67).is_some_and(|c| c != ' ')),
        "the newest candle is in the last plot column"
    );
}

#[test]
fn format_time_per_interval() {
    assert_eq!(
        format_time(1_764_000_005, Interval::S15, true, false),
        "16:00:05"
    );
    assert_eq!(
        format_time(1_764_000_000, Interval::H1, true, false),
        "16:00"
    );
    assert_eq!(
        format_time(1_764_000_000, Interval::D1, true, false),
        "2025-11-24"
    );
}

#[test]
fn indicators_get_a_legend_row_and_lines_and_follow_the_crosshair() {
    use crate::indicators::{Indicator, Indicators};
    let mut state = state_with_tiny_prices();
    let ui = Ui {
        utc: true,
        indicators: Indicators {
            list: vec![Indicator::Sma(3)],
            shown: true,
        },
        ..Ui::default()
    };
    // Closes are 2.796e-8 × 1.005 × (1 + 0.01 i): the SMA3 of the newest three (i = 27, 28, 29) is
    // 2.796e-8 × 1.005 × 1.28 = 3.59677e-8.
    let lines = screen_with(&state, &ui, 80, 16);
    assert_eq!(lines[1].trim_end(), " SMA3 0.0₇35968", "{lines:#?}");
    assert!(
        lines[2..]
            .iter()
            .any(|l| l.chars().any(|c| ('⠁'..='⣿').contains(&c))),
        "the line is drawn in braille: {lines:#?}"
    );
    assert!(
        lines[0].contains("last 0.0₇"),
        "the header stays: {}",
        lines[0]
    );
    // The crosshair one candle back: i = 26, 27, 28 → 2.796e-8 × 1.005 × 1.27 = 3.56867e-8.
    state.toggle_cursor();
    state.move_cursor(-1, 30);
    let lines = screen_with(&state, &ui, 80, 16);
    assert_eq!(lines[1].trim_end(), " SMA3 0.0₇35687");
    assert!(lines[0].contains("16:28:00"), "{}", lines[0]);
    let hidden = screen_with(
        &state,
        &Ui {
            indicators: Indicators {
                shown: false,
                ..ui.indicators.clone()
            },
            ..ui.clone()
        },
        80,
        16,
    );
    assert!(!hidden.join("\n").contains("SMA3"));
    assert!(!hidden.join("").chars().any(|c| ('⠁'..='⣿').contains(&c)));
}
