//! The watchlist's model: one row per mint from the ticker stream (`tickers_snapshot`, then `tickers`),
//! each with a sparkline of its last hour, and the list's order, filter, selection and stars. No I/O but
//! the stars file, no clock: times come with the messages or as arguments.
//!
//! **Order**: starred rows first, then by the sort key — 24-hour change (largest first), 24-hour SOL
//! volume (largest first) or name (the ticker, else the name, else the address; A to Z) — then by address,
//! so equal rows never swap places between frames. **Selection** follows a mint, not a position: when the
//! feed reorders the rows the same mint stays selected.
//!
//! - [`sparkline`]: a mint's closes by minute, seeded from `m1` history and kept live by the tickers.
//! - [`seeding`]: which sparklines to seed, within the server's rate limit.
//! - [`stars`]: the starred mints and their file.

pub mod seeding;
pub mod sparkline;
pub mod stars;

use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

use kline_protocol::{Candle, Symbol, SymbolName, Ticker};

use self::sparkline::Sparkline;
use self::stars::{Stars, StarsError};
use crate::token_match::token_matches;

/// What the rows are sorted by (after the stars).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum SortKey {
    #[default]
    Change,
    Volume,
    Name,
}

impl SortKey {
    /// The next key, wrapping around (`Tab`).
    pub fn next(self) -> SortKey {
        match self {
            SortKey::Change => SortKey::Volume,
            SortKey::Volume => SortKey::Name,
            SortKey::Name => SortKey::Change,
        }
    }

    /// The previous key, wrapping around (`Shift-Tab`).
    pub fn previous(self) -> SortKey {
        self.next().next()
    }

    /// As the header shows it.
    pub fn label(self) -> &'static str {
        match self {
            SortKey::Change => "24h change ▼",
            SortKey::Volume => "24h volume ▼",
            SortKey::Name => "name ▲",
        }
    }
}

/// One mint's row.
#[derive(Debug, Clone, PartialEq)]
pub struct Row {
    pub ticker: Ticker,
    pub sparkline: Sparkline,
    pub starred: bool,
}

impl Row {
    /// What the name sort compares: the ticker, else the name, else the address, in lowercase.
    fn sort_name(&self) -> String {
        let ticker = &self.ticker;
        ticker
            .ticker
            .as_ref()
            .map(|t| t.as_str())
            .or(ticker.name.as_ref().map(|n| n.as_str()))
            .unwrap_or(ticker.symbol.as_str())
            .to_lowercase()
    }

    /// The row's token names, as the chart's title wants them.
    pub fn symbol_name(&self) -> SymbolName {
        SymbolName::new(
            self.ticker.symbol.clone(),
            self.ticker.ticker.clone(),
            self.ticker.name.clone(),
        )
    }
}

/// The rows a screen of some height shows.
#[derive(Debug)]
pub struct Page<'a> {
    pub rows: Vec<&'a Row>,
    /// Position of the selected row in `rows`.
    pub selected: Option<usize>,
    /// Rows matching the filter, shown or not.
    pub matching: usize,
    /// Position of `rows[0]` among them.
    pub first: usize,
}

#[derive(Debug, Default)]
pub struct Watchlist {
    rows: BTreeMap<Symbol, Row>,
    pub sort: SortKey,
    /// What was typed; matched against ticker, name and address.
    pub filter: String,
    selected: Option<Symbol>,
    /// The first row shown, as a position in the ordered rows (kept so the page moves only when the
    /// selection leaves it).
    first: usize,
    stars: Stars,
    /// Whether the server's snapshot has arrived.
    pub loaded: bool,
}

impl Watchlist {
    pub fn new(stars: Stars) -> Watchlist {
        Watchlist {
            stars,
            ..Watchlist::default()
        }
    }

    /// The whole ticker list (`tickers_snapshot`), received at `time_ms`: it replaces the rows, keeping the
    /// sparklines of mints already held.
    pub fn apply_snapshot(&mut self, tickers: &[Ticker], time_ms: i64) {
        let listed: BTreeSet<&Symbol> = tickers.iter().map(|ticker| &ticker.symbol).collect();
        self.rows.retain(|symbol, _| listed.contains(symbol));
        self.apply_update(tickers, time_ms);
        self.loaded = true;
    }

    /// Changed tickers (`tickers`), received at `time_ms`.
    pub fn apply_update(&mut self, tickers: &[Ticker], time_ms: i64) {
        for ticker in tickers {
            let sparkline = self
                .rows
                .remove(&ticker.symbol)
                .map(|row| row.sparkline)
                .unwrap_or_default();
            self.insert(ticker, sparkline, time_ms);
        }
    }

    fn insert(&mut self, ticker: &Ticker, mut sparkline: Sparkline, time_ms: i64) {
        sparkline.record_live(time_ms.div_euclid(1000), ticker.last_price);
        let row = Row {
            ticker: ticker.clone(),
            sparkline,
            starred: self.stars.contains(&ticker.symbol),
        };
        self.rows.insert(ticker.symbol.clone(), row);
    }

    /// A mint's `m1` history, for its sparkline (ignored for a mint not listed).
    pub fn apply_history(&mut self, symbol: &Symbol, candles: &[Candle]) {
        if let Some(row) = self.rows.get_mut(symbol) {
            row.sparkline.seed(candles);
        }
    }

    pub fn row(&self, symbol: &Symbol) -> Option<&Row> {
        self.rows.get(symbol)
    }

    /// Every row's names (for the chart's titles).
    pub fn names(&self) -> impl Iterator<Item = SymbolName> + '_ {
        self.rows.values().map(Row::symbol_name)
    }

    /// The rows matching the filter, in the list's order.
    pub fn ordered(&self) -> Vec<&Row> {
        let mut rows: Vec<&Row> = self
            .rows
            .values()
            .filter(|row| {
                let t = &row.ticker;
                token_matches(
                    t.ticker.as_ref(),
                    t.name.as_ref(),
                    t.symbol.as_str(),
                    &self.filter,
                )
            })
            .collect();
        rows.sort_by(|a, b| self.compare(a, b));
        rows
    }

    fn compare(&self, a: &Row, b: &Row) -> Ordering {
        let larger_first = |x: f64, y: f64| y.total_cmp(&x);
        b.starred
            .cmp(&a.starred)
            .then_with(|| match self.sort {
                SortKey::Change => {
                    larger_first(a.ticker.price_change_percent, b.ticker.price_change_percent)
                }
                SortKey::Volume => larger_first(a.ticker.quote_volume, b.ticker.quote_volume),
                SortKey::Name => a.sort_name().cmp(&b.sort_name()),
            })
            .then_with(|| a.ticker.symbol.cmp(&b.ticker.symbol))
    }

    /// The selected mint: the one chosen, while it matches the filter, else the first row.
    pub fn selected(&self) -> Option<Symbol> {
        let ordered = self.ordered();
        self.selected_index(&ordered)
            .map(|index| ordered[index].ticker.symbol.clone())
    }

    fn selected_index(&self, ordered: &[&Row]) -> Option<usize> {
        let chosen = self
            .selected
            .as_ref()
            .and_then(|symbol| ordered.iter().position(|row| &row.ticker.symbol == symbol));
        chosen.or((!ordered.is_empty()).then_some(0))
    }

    /// Moves the selection `delta` rows down (negative: up), stopping at the ends, and keeps it on a page
    /// of `height` rows.
    pub fn move_selection(&mut self, delta: isize, height: usize) {
        let ordered = self.ordered();
        let Some(current) = self.selected_index(&ordered) else {
            return;
        };
        let target = current.saturating_add_signed(delta).min(ordered.len() - 1);
        let (symbol, len) = (ordered[target].ticker.symbol.clone(), ordered.len());
        self.selected = Some(symbol);
        self.first = page_start(target, self.first, height, len);
    }

    /// Types `c` into the filter (the selection goes back to the first match).
    pub fn push_filter(&mut self, c: char) {
        self.filter.push(c);
        self.selected = None;
        self.first = 0;
    }

    /// Deletes the filter's last character.
    pub fn pop_filter(&mut self) {
        self.filter.pop();
        self.selected = None;
        self.first = 0;
    }

    pub fn clear_filter(&mut self) {
        self.filter.clear();
        self.selected = None;
        self.first = 0;
    }

    /// Stars or unstars the selected mint (and writes the stars file); the selection stays on it as it
    /// moves. Returns the mint and whether it is now starred.
    pub fn toggle_star(&mut self) -> Option<Result<(Symbol, bool), StarsError>> {
        let symbol = self.selected()?;
        let result = self.stars.toggle(&symbol);
        let starred = self.stars.contains(&symbol);
        if let Some(row) = self.rows.get_mut(&symbol) {
            row.starred = starred;
        }
        self.selected = Some(symbol.clone());
        Some(result.map(|starred| (symbol, starred)))
    }

    /// The rows a page of `height` rows shows, with the selection on it.
    pub fn page(&self, height: usize) -> Page<'_> {
        let ordered = self.ordered();
        let selected = self.selected_index(&ordered);
        let first = match selected {
            Some(index) => page_start(index, self.first, height, ordered.len()),
            None => 0,
        };
        let matching = ordered.len();
        let rows: Vec<&Row> = ordered.into_iter().skip(first).take(height).collect();
        Page {
            selected: selected.map(|index| index - first),
            rows,
            matching,
            first,
        }
    }

    /// How many mints are listed (whatever the filter).
    pub fn len(&self) -> usize {
        self.rows.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    pub fn stars(&self) -> &Stars {
        &self.stars
    }
}

/// The first row of a page of `height` rows that shows row `selected`, moving from `first` no more than
/// needed, and never past the end of `len` rows.
fn page_start(selected: usize, first: usize, height: usize, len: usize) -> usize {
    let height = height.max(1);
    let first = if selected < first {
        selected
    } else if selected >= first + height {
        selected + 1 - height
    } else {
        first
    };
    first.min(len.saturating_sub(height))
}

#[cfg(test)]
mod tests;
