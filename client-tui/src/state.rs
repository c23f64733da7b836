//! The chart's state: a pure model built from protocol messages. No I/O, no terminal: the connection feeds
//! it messages, the view only reads it, and input turns into calls on it.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::ops::Range;
use std::time::{Duration, Instant};

use kline_protocol::{
    Candle, HistoryRequest, Interval, ServerMessage, ServerPayload, Symbol, SymbolName, Trade,
    TradeId,
};

/// Candles asked for when (re)subscribing and per page of older history.
pub const PAGE: u32 = 500;

/// Trades kept for the trades pane (and asked for when subscribing).
pub const TRADES_KEPT: u32 = 200;

/// What the connection is doing, as shown in the status line.
#[derive(Debug, Clone, PartialEq)]
pub enum LinkStatus {
    Connecting,
    Connected,
    /// Waiting to reconnect: when, and which attempt it will be.
    Reconnecting {
        at: Instant,
        attempt: u32,
    },
}

pub struct ChartState {
    pub symbol: Option<Symbol>,
    pub interval: Interval,
    /// Candles by `time`, ascending.
    pub candles: BTreeMap<i64, Candle>,
    /// The server said older candles exist before the oldest we hold.
    pub older_available: bool,
    /// An older page was asked for and has not arrived.
    pub older_pending: bool,
    /// Candles between the right edge of the chart and the newest candle (0: following live).
    pub scroll: usize,
    /// Columns per candle (1..=4).
    pub zoom: u16,
    /// The crosshair: an index into the visible candles, counted from the right.
    pub cursor: Option<usize>,
    pub link: LinkStatus,
    pub last_error: Option<String>,
    /// Server `timestamp` minus local receive time of the last `kline_data`, ms (a latency estimate).
    pub latency_ms: Option<i64>,
    update_times: VecDeque<Instant>,
    pub last_update: Option<Instant>,
    /// The mint's latest trades, newest first (at most [`TRADES_KEPT`]).
    pub trades: VecDeque<Trade>,
    /// Tokens' tickers and names, from `connection_success` and the symbol list (kept across switches).
    pub names: HashMap<Symbol, SymbolName>,
}

impl ChartState {
    pub fn new(symbol: Option<Symbol>, interval: Interval) -> ChartState {
        ChartState {
            symbol,
            interval,
            candles: BTreeMap::new(),
            older_available: false,
            older_pending: false,
            scroll: 0,
            zoom: 1,
            cursor: None,
            link: LinkStatus::Connecting,
            last_error: None,
            latency_ms: None,
            update_times: VecDeque::new(),
            last_update: None,
            trades: VecDeque::new(),
            names: HashMap::new(),
        }
    }

    /// Remembers tokens' names (the title shows the current one's).
    pub fn learn_names(&mut self, names: impl IntoIterator<Item = SymbolName>) {
        for entry in names {
            if entry.ticker.is_some() || entry.name.is_some() {
                self.names.insert(entry.symbol.clone(), entry);
            }
        }
    }

    /// Folds one server message into the state. Messages for another symbol or interval are ignored.
    pub fn apply(&mut self, message: &ServerMessage, now: Instant, now_ms: i64) {
        match &message.payload {
            ServerPayload::HistoryData(history)
                if self.is_current(&history.symbol, history.interval) =>
            {
                let was_older_page = self.older_pending
                    && history
                        .data
                        .first()
                        .zip(self.candles.keys().next())
                        .is_some_and(|(a, b)| a.time < *b);
                if was_older_page || self.candles.is_empty() {
                    self.older_available = history.has_more;
                }
                self.older_pending = false;
                for candle in &history.data {
                    self.upsert(*candle);
                }
            }
            ServerPayload::KlineData(update)
                if self.is_current(&update.symbol, update.interval) =>
            {
                self.upsert(update.data);
                self.latency_ms = Some(now_ms - update.timestamp);
                self.update_times.push_back(now);
                self.last_update = Some(now);
            }
            ServerPayload::TradesSnapshot(snapshot)
                if self.symbol.as_ref() == Some(&snapshot.symbol) =>
            {
                // Newest first; after a resume it holds only what came since the newest trade held.
                for trade in snapshot.data.iter().rev() {
                    self.push_trade(trade);
                }
            }
            ServerPayload::Trade(trade) if self.symbol.as_ref() == Some(&trade.symbol) => {
                self.push_trade(trade);
            }
            ServerPayload::ConnectionSuccess(hello) => {
                self.learn_names(hello.symbol_names.iter().cloned());
            }
            ServerPayload::Error(error) => {
                self.older_pending = false;
                self.last_error = Some(format!(
                    "server error {}: {}",
                    error.code.as_u16(),
                    error.message
                ));
            }
            _ => {}
        }
        while self
            .update_times
            .front()
            .is_some_and(|t| now.duration_since(*t) > Duration::from_secs(1))
        {
            self.update_times.pop_front();
        }
    }

    /// Adds a trade newer than those held (the stream's order), unless it is held already.
    fn push_trade(&mut self, trade: &Trade) {
        if self.trades.iter().any(|known| known.id == trade.id) {
            return;
        }
        self.trades.push_front(trade.clone());
        self.trades.truncate(TRADES_KEPT as usize);
    }

    /// The trade to resume the trade stream after (the newest held).
    pub fn trades_resume_after(&self) -> Option<TradeId> {
        self.trades.front().map(|trade| trade.id.clone())
    }

    fn is_current(&self, symbol: &Symbol, interval: Interval) -> bool {
        self.symbol.as_ref() == Some(symbol) && self.interval == interval
    }

    /// Inserts or replaces by `time`; an older state of a candle never replaces a newer one.
    fn upsert(&mut self, candle: Candle) {
        match self.candles.get(&candle.time) {
            Some(known)
                if (known.update_count, known.is_final)
                    > (candle.update_count, candle.is_final) => {}
            _ => {
                self.candles.insert(candle.time, candle);
            }
        }
    }

    /// Live updates received in the last second.
    pub fn updates_per_sec(&self) -> usize {
        self.update_times.len()
    }

    /// The `from` to resume with after a reconnect: the newest candle held (it may have changed, so it is
    /// asked for again; everything after it fills the gap).
    pub fn resume_from(&self) -> Option<i64> {
        self.candles.keys().next_back().copied()
    }

    /// Switches to another series: its candles are loaded afresh (the trades too, for another mint).
    pub fn switch(&mut self, symbol: Symbol, interval: Interval) {
        let trades = if self.symbol.as_ref() == Some(&symbol) {
            std::mem::take(&mut self.trades)
        } else {
            VecDeque::new()
        };
        *self = ChartState {
            link: self.link.clone(),
            zoom: self.zoom,
            trades,
            names: std::mem::take(&mut self.names),
            ..ChartState::new(Some(symbol), interval)
        };
    }

    /// The candles visible in a chart `columns` wide, oldest first.
    pub fn visible(&self, columns: u16) -> Vec<Candle> {
        let range = self.visible_range(columns);
        self.candles
            .values()
            .skip(range.start)
            .take(range.len())
            .copied()
            .collect()
    }

    /// Which of the candles held (by position, oldest first) are visible in a chart `columns` wide.
    pub fn visible_range(&self, columns: u16) -> Range<usize> {
        let count = (columns / self.zoom.max(1)) as usize;
        let newest_shown = self.candles.len().saturating_sub(self.scroll);
        newest_shown.saturating_sub(count)..newest_shown
    }

    /// Scrolls `by` candles towards older ones. Returns a request for an older page when the left edge of
    /// what is held comes into view and the server has more.
    pub fn scroll_older(&mut self, by: usize, columns: u16) -> Option<HistoryRequest> {
        let count = (columns / self.zoom.max(1)) as usize;
        let max_scroll = self
            .candles
            .len()
            .saturating_sub(count.min(self.candles.len()));
        self.scroll = (self.scroll + by).min(max_scroll);
        if self.scroll >= max_scroll {
            self.older_page_request()
        } else {
            None
        }
    }

    pub fn scroll_newer(&mut self, by: usize) {
        self.scroll = self.scroll.saturating_sub(by);
    }

    /// A request for the page of candles before the oldest held, unless one is pending or none exist.
    pub fn older_page_request(&mut self) -> Option<HistoryRequest> {
        if self.older_pending || !self.older_available {
            return None;
        }
        let symbol = self.symbol.clone()?;
        let oldest = *self.candles.keys().next()?;
        self.older_pending = true;
        HistoryRequest::new(symbol, self.interval)
            .with_limit(PAGE)
            .ok()?
            .with_range(None, Some(oldest))
            .ok()
    }

    pub fn zoom_in(&mut self) {
        self.zoom = (self.zoom + 1).min(4);
    }

    pub fn zoom_out(&mut self) {
        self.zoom = self.zoom.saturating_sub(1).max(1);
    }

    /// Moves (or shows) the crosshair by `delta` candles; positive is towards newer.
    pub fn move_cursor(&mut self, delta: isize, visible: usize) {
        let current = self.cursor.unwrap_or(0) as isize;
        let moved = (current - delta).clamp(0, visible.saturating_sub(1) as isize);
        self.cursor = Some(moved as usize);
    }

    pub fn toggle_cursor(&mut self) {
        self.cursor = if self.cursor.is_some() { None } else { Some(0) };
    }
}

#[cfg(test)]
mod tests {
    use kline_protocol::{ErrorCode, ErrorData, HistoryData, KlineData};

    use super::*;

    fn symbol() -> Symbol {
        Symbol::from_bytes(&[5; 32])
    }

    fn candle(time: i64, close: f64, count: u32, is_final: bool) -> Candle {
        Candle::new(
            time,
            [1.0, close.max(1.0), 1.0_f64.min(close), close],
            count,
            is_final,
        )
    }

    fn history(candles: Vec<Candle>, has_more: bool) -> ServerMessage {
        ServerMessage::new(
            HistoryData::new(symbol(), Interval::M1, None, candles, has_more),
            0,
        )
    }

    fn update(candle: Candle) -> ServerMessage {
        ServerMessage::new(KlineData::new(symbol(), Interval::M1, candle, 1_000), 1_000)
    }

    fn state_with(messages: &[ServerMessage]) -> ChartState {
        let mut state = ChartState::new(Some(symbol()), Interval::M1);
        for message in messages {
            state.apply(message, Instant::now(), 1_005);
        }
        state
    }

    #[test]
    fn history_then_updates_then_a_final() {
        let state = state_with(&[
            history(
                vec![candle(0, 1.0, 3, true), candle(60, 2.0, 1, false)],
                false,
            ),
            update(candle(60, 2.5, 2, false)),
            update(candle(60, 2.6, 3, true)),
            update(candle(120, 3.0, 1, false)),
        ]);
        let times: Vec<i64> = state.candles.keys().copied().collect();
        assert_eq!(times, [0, 60, 120]);
        assert!(state.candles[&60].is_final);
        assert_eq!(state.candles[&60].close, 2.6);
        assert_eq!(state.latency_ms, Some(5));
        assert_eq!(state.updates_per_sec(), 3);
    }

    #[test]
    fn an_older_update_never_replaces_a_newer_state() {
        let state = state_with(&[
            update(candle(60, 2.0, 5, false)),
            update(candle(60, 1.5, 4, false)),
        ]);
        assert_eq!(state.candles[&60].update_count, 5);
    }

    #[test]
    fn other_series_are_ignored() {
        let mut state = state_with(&[]);
        let other = KlineData::new(
            Symbol::from_bytes(&[6; 32]),
            Interval::M1,
            candle(0, 1.0, 1, false),
            0,
        );
        state.apply(&ServerMessage::new(other, 0), Instant::now(), 0);
        let other_interval = KlineData::new(symbol(), Interval::S1, candle(0, 1.0, 1, false), 0);
        state.apply(&ServerMessage::new(other_interval, 0), Instant::now(), 0);
        assert!(state.candles.is_empty());
    }

    #[test]
    fn resume_after_reconnect_has_no_gap_and_no_duplicates() {
        let mut state = state_with(&[history(
            vec![candle(0, 1.0, 2, true), candle(60, 2.0, 1, false)],
            false,
        )]);
        assert_eq!(state.resume_from(), Some(60));
        // The resumed snapshot repeats candle 60 (now with more events) and brings what was missed.
        state.apply(
            &history(
                vec![
                    candle(60, 2.2, 4, true),
                    candle(120, 3.0, 2, true),
                    candle(180, 3.1, 1, false),
                ],
                false,
            ),
            Instant::now(),
            0,
        );
        let times: Vec<i64> = state.candles.keys().copied().collect();
        assert_eq!(times, [0, 60, 120, 180]);
        assert_eq!(state.candles[&60].update_count, 4);
    }

    #[test]
    fn scrolling_to_the_left_edge_requests_older_history_once() {
        let candles: Vec<Candle> = (0..30)
            .map(|i| candle(6000 + i * 60, 1.0, 1, true))
            .collect();
        let mut state = state_with(&[history(candles, true)]);
        assert_eq!(state.visible(20).len(), 20);
        assert!(state.scroll_older(5, 20).is_none(), "not at the edge yet");
        let request = state
            .scroll_older(10, 20)
            .expect("edge reached: ask for older");
        assert_eq!((request.to, request.limit), (Some(6000), Some(PAGE)));
        assert!(state.scroll_older(1, 20).is_none(), "one request at a time");
        let older: Vec<Candle> = (0..10)
            .map(|i| candle(5400 + i * 60, 1.0, 1, true))
            .collect();
        state.apply(&history(older, false), Instant::now(), 0);
        assert_eq!(state.candles.len(), 40);
        assert!(!state.older_available && !state.older_pending);
        assert_eq!(
            state.visible(20).first().unwrap().time,
            5400 + 60 * 10,
            "view stays where it was"
        );
    }

    #[test]
    fn errors_show_in_the_status() {
        let error = ServerMessage::new(ErrorData::new(ErrorCode::RateLimited, "slow down"), 0);
        let state = state_with(&[error]);
        assert_eq!(
            state.last_error.as_deref(),
            Some("server error 1004: slow down")
        );
    }

    fn trade(n: u8) -> kline_protocol::Trade {
        let id = TradeId::new([n; 64], 0);
        kline_protocol::Trade {
            signature: id.signature().to_owned(),
            id,
            symbol: symbol(),
            time: 1_764_000_000_000 + i64::from(n),
            slot: u64::from(n),
            tx_index: Some(0),
            event_index: 0,
            event_type: kline_protocol::TradeKind::BuySell,
            side: kline_protocol::Side::Buy,
            price: 1.0,
            token_amount: 1.0,
            sol_amount: 1.0,
            payer: Symbol::from_bytes(&[9; 32]),
        }
    }

    #[test]
    fn trades_keep_newest_first_and_a_resumed_snapshot_fills_the_gap_once() {
        let snapshot = |trades: Vec<kline_protocol::Trade>| {
            ServerMessage::new(
                kline_protocol::TradesSnapshot::new(symbol(), None, trades, false),
                0,
            )
        };
        let live = |n| ServerMessage::new(trade(n), 0);
        let mut state = state_with(&[snapshot(vec![trade(2), trade(1)]), live(3)]);
        assert_eq!(state.trades_resume_after(), Some(trade(3).id));
        // A resume after 3 brings 4 and 5 (newest first); 5 also arrives live: kept once.
        state.apply(&snapshot(vec![trade(5), trade(4)]), Instant::now(), 0);
        state.apply(&live(5), Instant::now(), 0);
        let slots: Vec<u64> = state.trades.iter().map(|t| t.slot).collect();
        assert_eq!(slots, [5, 4, 3, 2, 1]);
        // Another mint's trades are not this chart's.
        let mut other = trade(6);
        other.symbol = Symbol::from_bytes(&[6; 32]);
        state.apply(&ServerMessage::new(other, 0), Instant::now(), 0);
        assert_eq!(state.trades.len(), 5);
        state.switch(Symbol::from_bytes(&[6; 32]), Interval::M1);
        assert!(
            state.trades.is_empty(),
            "another mint starts with no trades"
        );
    }

    #[test]
    fn names_from_connection_success_are_kept_across_switches() {
        use kline_protocol::{ConnectionSuccess, NameText, SymbolName, TickerText};
        let other = Symbol::from_bytes(&[6; 32]);
        let names = vec![
            SymbolName::new(symbol(), TickerText::new("PET"), NameText::new("Spin Pet")),
            SymbolName::new(other.clone(), None, None),
        ];
        let hello = ConnectionSuccess::new("c", 0, vec![symbol(), other.clone()], "0")
            .with_symbol_names(names);
        let mut state = state_with(&[ServerMessage::new(hello, 0)]);
        assert_eq!(
            state.names[&symbol()].name.as_ref().unwrap().as_str(),
            "Spin Pet"
        );
        assert!(
            !state.names.contains_key(&other),
            "an unnamed mint adds nothing"
        );
        state.switch(other, Interval::M1);
        assert!(state.names.contains_key(&symbol()));
    }
}
