//! [`TickerBook`]: every mint's last price and its `h1` candles inside the 24-hour window, and which mints
//! changed since the last round. No I/O: the hub hands it candle states (live, or read from the store) and
//! the clock; it answers with tickers.
//!
//! Rules (the window is defined in [`kline_protocol::ticker`]):
//! 1. A mint's window holds its `h1` candles with `time >= window_start`, at most one state per candle: a
//!    state replaces the held one unless it is older ([`CandleVersion`]).
//! 2. `last_price` is the close of the newest candle the mint ever had (from the store's symbol stats at
//!    first, then every newer candle): it outlives the window.
//! 3. When the window moves (a new hour), candles that fall out are dropped and their mints changed.
//! 4. A mint changes when one of its candles or its name changes; [`TickerBook::take_changed`] hands the
//!    changed mints' tickers over once.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use kline_protocol::{Candle, DayStats, Symbol, Ticker};

use kline_core::names::TokenName;
use kline_pipeline::feed::CandleVersion;
use kline_pipeline::names::TokenNames;

/// One mint's state.
#[derive(Debug)]
struct MintWindow {
    symbol: Symbol,
    last_price: f64,
    /// The `time` of the candle `last_price` came from (`i64::MIN`: from the stats), and its version.
    last_time: i64,
    last_version: CandleVersion,
    candles: BTreeMap<i64, (Candle, CandleVersion)>,
    name: Option<Arc<TokenName>>,
}

impl MintWindow {
    fn ticker(&self) -> Ticker {
        let day = self.day_stats();
        let (ticker, name) = match &self.name {
            Some(name) => (name.ticker.clone(), name.name.clone()),
            None => (None, None),
        };
        Ticker::new(self.symbol.clone(), self.last_price, day).with_names(ticker, name)
    }

    fn day_stats(&self) -> Option<DayStats> {
        let (first, _) = self.candles.values().next()?;
        let mut day = DayStats {
            open: first.open,
            high: first.high,
            low: first.low,
            ..DayStats::default()
        };
        for (candle, _) in self.candles.values() {
            day.high = day.high.max(candle.high);
            day.low = day.low.min(candle.low);
            day.volume += candle.volume;
            day.quote_volume += candle.quote_volume;
            day.trade_count += u64::from(candle.update_count);
        }
        Some(day)
    }

    /// Rule 1 and 2 for one state; `true` if anything changed.
    fn offer(&mut self, candle: Candle, version: CandleVersion, window_start: i64) -> bool {
        let held = self.candles.get(&candle.time);
        if held.is_some_and(|(_, held)| *held > version)
            || (candle.time == self.last_time && self.last_version > version)
        {
            return false;
        }
        let mut changed = false;
        if candle.time >= self.last_time {
            // `!=` is also true for the NaN of a new mint.
            changed |= candle.close != self.last_price;
            self.last_price = candle.close;
            self.last_time = candle.time;
            self.last_version = version;
        }
        if candle.time >= window_start && held.is_none_or(|(held, _)| *held != candle) {
            self.candles.insert(candle.time, (candle, version));
            changed = true;
        }
        changed
    }
}

/// Every mint's window.
pub struct TickerBook {
    window_start: i64,
    mints: HashMap<[u8; 32], MintWindow>,
    changed: HashSet<[u8; 32]>,
    names: Arc<TokenNames>,
    /// The [`TokenNames::version`] the names were last checked at.
    names_version: Option<u64>,
}

impl TickerBook {
    /// An empty book whose window starts at `window_start`, naming mints from `names`.
    pub fn new(window_start: i64, names: Arc<TokenNames>) -> TickerBook {
        TickerBook {
            window_start,
            mints: HashMap::new(),
            changed: HashSet::new(),
            names,
            names_version: None,
        }
    }

    /// The window of `mint`, made (named, without a price yet) if it is new.
    fn window(&mut self, mint: [u8; 32]) -> &mut MintWindow {
        let names = &self.names;
        self.mints.entry(mint).or_insert_with(|| MintWindow {
            symbol: Symbol::from_bytes(&mint),
            last_price: f64::NAN,
            last_time: i64::MIN,
            last_version: CandleVersion::default(),
            candles: BTreeMap::new(),
            name: names.get(&mint),
        })
    }

    pub fn window_start(&self) -> i64 {
        self.window_start
    }

    pub fn len(&self) -> usize {
        self.mints.len()
    }

    pub fn is_empty(&self) -> bool {
        self.mints.is_empty()
    }

    /// Sets a mint from the store: its newest price and its `h1` candles in the window (a resync replaces
    /// what was held). `last_price` `None`: keep the held one (or the newest candle's close).
    pub fn load(&mut self, mint: [u8; 32], last_price: Option<f64>, candles: Vec<Candle>) {
        let newest = candles
            .last()
            .map(|candle| (candle.time, candle.close, CandleVersion::stored(candle)));
        let window_start = self.window_start;
        let entry = self.window(mint);
        match (last_price, newest) {
            (Some(price), _) => entry.last_price = price,
            (None, Some((time, close, version))) if time >= entry.last_time => {
                entry.last_price = close;
                entry.last_time = time;
                entry.last_version = version;
            }
            _ => {}
        }
        entry.candles = candles
            .into_iter()
            .filter(|candle| candle.time >= window_start)
            .map(|candle| (candle.time, (candle, CandleVersion::stored(&candle))))
            .collect();
        if entry.last_price.is_nan() {
            // A mint without any price (cannot happen for a mint the store knows): nothing to show.
            self.mints.remove(&mint);
            return;
        }
        self.changed.insert(mint);
    }

    /// A live `h1` candle state of `mint`.
    pub fn apply(&mut self, mint: [u8; 32], candle: Candle, version: CandleVersion) {
        let window_start = self.window_start;
        let entry = self.window(mint);
        if entry.offer(candle, version, window_start) {
            self.changed.insert(mint);
        }
    }

    /// Moves the window's start (rule 3); a start that is not later changes nothing.
    pub fn advance(&mut self, window_start: i64) {
        if window_start <= self.window_start {
            return;
        }
        self.window_start = window_start;
        for (mint, window) in &mut self.mints {
            let kept = window.candles.split_off(&window_start);
            if kept.len() != window.candles.len() {
                self.changed.insert(*mint);
            }
            window.candles = kept;
        }
    }

    /// Takes the names again if the directory changed since the last call; mints whose name changed
    /// change.
    pub fn refresh_names(&mut self) {
        let names = &self.names;
        let version = names.version();
        if self.names_version == Some(version) {
            return;
        }
        self.names_version = Some(version);
        for (mint, window) in &mut self.mints {
            let name = names.get(mint);
            let same = match (&name, &window.name) {
                (Some(a), Some(b)) => Arc::ptr_eq(a, b) || a == b,
                (None, None) => true,
                _ => false,
            };
            if !same {
                window.name = name;
                self.changed.insert(*mint);
            }
        }
    }

    /// The tickers of the mints changed since the last call, ordered by symbol.
    pub fn take_changed(&mut self) -> Vec<Ticker> {
        let mut tickers: Vec<Ticker> = self
            .changed
            .drain()
            .filter_map(|mint| self.mints.get(&mint))
            .map(MintWindow::ticker)
            .collect();
        tickers.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        tickers
    }

    /// Every mint's ticker, ordered by symbol.
    pub fn snapshot(&self) -> Vec<Ticker> {
        let mut tickers: Vec<Ticker> = self.mints.values().map(MintWindow::ticker).collect();
        tickers.sort_by(|a, b| a.symbol.cmp(&b.symbol));
        tickers
    }
}

#[cfg(test)]
mod tests;
