//! Keys → actions: small predicates with tests, so the key table lives in one place.

use kline_protocol::Interval;
use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyModifiers};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Quit,
    SetInterval(Interval),
    NextInterval,
    ScrollOlder,
    ScrollNewer,
    ZoomIn,
    ZoomOut,
    Oldest,
    Newest,
    OpenPicker,
    OpenWatchlist,
    ToggleCursor,
    ToggleVolume,
    ToggleTrades,
    ToggleIndicators,
    Reconnect,
    ToggleHelp,
}

/// The key table shown by `?` (and in the README).
pub const KEY_HELP: &[(&str, &str)] = &[
    ("1..9", "interval s1 s15 s30 m1 m5 m15 h1 h4 d1"),
    ("Tab", "next interval"),
    (
        "← / →",
        "scroll through history (older pages load at the left edge)",
    ),
    ("+ / -", "zoom in / out"),
    ("Home / End", "oldest loaded / newest (follow live)"),
    (
        "s",
        "symbol picker (type a ticker, name or address; Enter to choose)",
    ),
    (
        "w",
        "watchlist: every mint live, sortable, filterable, starred",
    ),
    (
        "c",
        "crosshair: one candle's OHLC, volume and time (← → move it)",
    ),
    ("v", "volume pane on / off"),
    ("t", "trades pane on / off (the mint's latest trades, live)"),
    ("i", "SMA, EMA, VWAP, Bollinger lines on / off (--sma …)"),
    ("r", "reconnect now"),
    ("?", "this help"),
    ("q / Esc / Ctrl-C", "quit"),
];

/// The chart screen's action for a key, if any.
pub fn chart_action(key: KeyEvent) -> Option<Action> {
    if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
        return Some(Action::Quit);
    }
    Some(match key.code {
        KeyCode::Char('q') | KeyCode::Esc => Action::Quit,
        KeyCode::Char(digit @ '1'..='9') => {
            Action::SetInterval(Interval::ALL[digit as usize - '1' as usize])
        }
        KeyCode::Tab => Action::NextInterval,
        KeyCode::Left => Action::ScrollOlder,
        KeyCode::Right => Action::ScrollNewer,
        KeyCode::Char('+') | KeyCode::Char('=') => Action::ZoomIn,
        KeyCode::Char('-') => Action::ZoomOut,
        KeyCode::Home => Action::Oldest,
        KeyCode::End => Action::Newest,
        KeyCode::Char('s') => Action::OpenPicker,
        KeyCode::Char('w') => Action::OpenWatchlist,
        KeyCode::Char('c') => Action::ToggleCursor,
        KeyCode::Char('v') => Action::ToggleVolume,
        KeyCode::Char('t') => Action::ToggleTrades,
        KeyCode::Char('i') => Action::ToggleIndicators,
        KeyCode::Char('r') => Action::Reconnect,
        KeyCode::Char('?') => Action::ToggleHelp,
        _ => return None,
    })
}

/// What a key does on the watchlist screen. Printable characters filter (as in the symbol picker), so
/// the list's own commands are on keys no ticker or name is typed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WatchlistAction {
    Quit,
    /// Esc: clears the filter, or goes back to the chart when there is none.
    ClearFilterOrBack,
    OpenChart,
    /// Moves the selection by this many rows (negative: up).
    Move(isize),
    /// Moves the selection by this many pages.
    MovePages(isize),
    NextSort,
    PreviousSort,
    ToggleStar,
    Type(char),
    Erase,
}

/// The watchlist screen's action for a key, if any.
pub fn watchlist_action(key: KeyEvent) -> Option<WatchlistAction> {
    if key.modifiers.contains(KeyModifiers::CONTROL) {
        return (key.code == KeyCode::Char('c')).then_some(WatchlistAction::Quit);
    }
    Some(match key.code {
        KeyCode::Esc => WatchlistAction::ClearFilterOrBack,
        KeyCode::Enter => WatchlistAction::OpenChart,
        KeyCode::Up => WatchlistAction::Move(-1),
        KeyCode::Down => WatchlistAction::Move(1),
        KeyCode::PageUp => WatchlistAction::MovePages(-1),
        KeyCode::PageDown => WatchlistAction::MovePages(1),
        KeyCode::Home => WatchlistAction::Move(isize::MIN / 2),
        KeyCode::End => WatchlistAction::Move(isize::MAX / 2),
        KeyCode::Tab => WatchlistAction::NextSort,
        KeyCode::BackTab => WatchlistAction::PreviousSort,
        KeyCode::Char('*') => WatchlistAction::ToggleStar,
        KeyCode::Char(c) => WatchlistAction::Type(c),
        KeyCode::Backspace => WatchlistAction::Erase,
        _ => return None,
    })
}

/// The interval after `interval`, wrapping around.
pub fn next_interval(interval: Interval) -> Interval {
    let index = Interval::ALL
        .iter()
        .position(|i| *i == interval)
        .unwrap_or(0);
    Interval::ALL[(index + 1) % Interval::ALL.len()]
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(code: KeyCode) -> KeyEvent {
        KeyEvent::new(code, KeyModifiers::NONE)
    }

    #[test]
    fn digits_pick_intervals_and_tab_cycles() {
        assert_eq!(
            chart_action(key(KeyCode::Char('1'))),
            Some(Action::SetInterval(Interval::S1))
        );
        assert_eq!(
            chart_action(key(KeyCode::Char('5'))),
            Some(Action::SetInterval(Interval::M5))
        );
        assert_eq!(
            chart_action(key(KeyCode::Char('9'))),
            Some(Action::SetInterval(Interval::D1))
        );
        assert_eq!(next_interval(Interval::D1), Interval::S1);
        assert_eq!(next_interval(Interval::M5), Interval::M15);
    }

    #[test]
    fn every_way_out_quits() {
        assert_eq!(chart_action(key(KeyCode::Char('q'))), Some(Action::Quit));
        assert_eq!(chart_action(key(KeyCode::Esc)), Some(Action::Quit));
        let ctrl_c = KeyEvent::new(KeyCode::Char('c'), KeyModifiers::CONTROL);
        assert_eq!(chart_action(ctrl_c), Some(Action::Quit));
        assert_eq!(
            chart_action(key(KeyCode::Char('c'))),
            Some(Action::ToggleCursor),
            "plain c is the crosshair"
        );
        assert_eq!(
            chart_action(key(KeyCode::Char('v'))),
            Some(Action::ToggleVolume)
        );
        assert_eq!(
            chart_action(key(KeyCode::Char('t'))),
            Some(Action::ToggleTrades)
        );
        assert_eq!(
            chart_action(key(KeyCode::Char('i'))),
            Some(Action::ToggleIndicators)
        );
        assert_eq!(chart_action(key(KeyCode::Char('x'))), None);
        assert_eq!(
            chart_action(key(KeyCode::Char('w'))),
            Some(Action::OpenWatchlist)
        );
    }

    #[test]
    fn on_the_watchlist_letters_filter_and_commands_are_elsewhere() {
        use WatchlistAction::*;
        for c in ['q', 'w', 'c', 'v', 'n', ' ', '1'] {
            assert_eq!(
                watchlist_action(key(KeyCode::Char(c))),
                Some(Type(c)),
                "{c}"
            );
        }
        assert_eq!(watchlist_action(key(KeyCode::Char('*'))), Some(ToggleStar));
        assert_eq!(watchlist_action(key(KeyCode::Tab)), Some(NextSort));
        assert_eq!(watchlist_action(key(KeyCode::BackTab)), Some(PreviousSort));
        assert_eq!(watchlist_action(key(KeyCode::Esc)), Some(ClearFilterOrBack));
        assert_eq!(watchlist_action(key(KeyCode::Enter)), Some(OpenChart));
        assert_eq!(watchlist_action(key(KeyCode::Down)), Some(Move(1)));
        let ctrl = |c| KeyEvent::new(KeyCode::Char(c), KeyModifiers::CONTROL);
        assert_eq!(watchlist_action(ctrl('c')), Some(Quit));
        assert_eq!(
            watchlist_action(ctrl('x')),
            None,
            "no control character is typed"
        );
    }
}
