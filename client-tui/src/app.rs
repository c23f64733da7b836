//! The interactive client: wires terminal input, the connection and the state together, and redraws at
//! most ~30 times a second however fast updates arrive.

use std::time::{Duration, Instant};

use std::path::PathBuf;

use kline_protocol::{
    ClientRequest, Interval, ServerMessage, ServerPayload, SubscribeRequest,
    SubscribeTickersRequest, SubscribeTradesRequest, Symbol, UnsubscribeRequest,
    UnsubscribeTradesRequest,
};
use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind};
use tokio::sync::mpsc;

use crate::conn::{self, Backoff, ConnCommand, ConnEvent};
use crate::endpoint::{Endpoint, fetch_symbols};
use crate::indicators::Indicators;
use crate::input::{Action, WatchlistAction, chart_action, next_interval, watchlist_action};
use crate::state::{ChartState, LinkStatus, PAGE, TRADES_KEPT};
use crate::term::TerminalGuard;
use crate::view::watchlist::{list_height, render_watchlist};
use crate::view::{self, Picker, Ui};
use crate::watchlist::Watchlist;
use crate::watchlist::seeding::{SparklineSeeder, seed_reply};
use crate::watchlist::stars::Stars;

/// Shortest time between two frames.
const FRAME: Duration = Duration::from_millis(33);

pub struct Options {
    pub endpoint: Endpoint,
    pub symbol: Option<Symbol>,
    pub interval: Interval,
    pub utc: bool,
    /// The indicators to draw over the chart (`i` shows or hides them).
    pub indicators: Indicators,
    /// Where the watchlist's stars are kept (`None`: only for this session).
    pub stars_file: Option<PathBuf>,
}

pub async fn run(options: Options) -> anyhow::Result<()> {
    let backoff = Backoff::new(Duration::from_millis(500), Duration::from_secs(30));
    let (command_tx, mut event_rx) = conn::spawn(options.endpoint.clone(), backoff);
    let (key_tx, mut key_rx) = mpsc::channel(64);
    std::thread::spawn(move || read_terminal_events(key_tx));

    let (stars, stars_error) = Stars::load(options.stars_file);
    if let Some(err) = stars_error {
        tracing::warn!(%err, "the watchlist starts without stars");
    }
    let mut guard = TerminalGuard::enter();
    let mut app = App {
        state: ChartState::new(options.symbol.clone(), options.interval),
        ui: Ui {
            utc: options.utc,
            indicators: options.indicators,
            ..Ui::default()
        },
        commands: command_tx,
        endpoint: options.endpoint,
        chart_columns: 80,
        screen: Screen::Chart,
        watchlist: Watchlist::new(stars),
        seeder: SparklineSeeder::new(Instant::now()),
        tickers_wanted: false,
        list_rows: 20,
    };
    if options.symbol.is_none() {
        app.open_picker().await;
    }
    let started = Instant::now();
    let mut frames: u64 = 0;
    let mut dirty = true;
    let mut last_frame = Instant::now() - FRAME;
    let mut ticker = tokio::time::interval(FRAME);
    loop {
        tokio::select! {
            event = key_rx.recv() => match event {
                Some(Event::Key(key)) if key.kind == KeyEventKind::Press => {
                    if app.on_key(key).await == Flow::Quit {
                        break;
                    }
                    dirty = true;
                }
                Some(Event::Resize(..)) => dirty = true,
                Some(_) => {}
                None => break,
            },
            event = event_rx.recv() => match event {
                Some(event) => {
                    app.on_connection(event).await;
                    dirty = true;
                }
                None => break,
            },
            _ = ticker.tick() => {
                // Timers in the status line (reconnect countdown, staleness) change once a second.
                if last_frame.elapsed() >= Duration::from_secs(1) {
                    dirty = true;
                }
                app.seed_sparklines().await;
            }
        }
        if dirty && last_frame.elapsed() >= FRAME {
            let now = Instant::now();
            let now_secs = kline_protocol::response::unix_millis_now().div_euclid(1000);
            guard.terminal.draw(|frame| {
                let area = frame.area();
                app.chart_columns = area.width.saturating_sub(12);
                app.list_rows = list_height(area.height);
                match app.screen {
                    Screen::Chart => {
                        view::render(&app.state, &app.ui, area, frame.buffer_mut(), now)
                    }
                    Screen::Watchlist => render_watchlist(
                        &app.watchlist,
                        &app.state,
                        area,
                        frame.buffer_mut(),
                        now,
                        now_secs,
                    ),
                }
            })?;
            last_frame = now;
            dirty = false;
            frames += 1;
        }
    }
    let secs = started.elapsed().as_secs_f64();
    tracing::info!(
        frames,
        secs,
        fps = frames as f64 / secs.max(0.001),
        "session ended"
    );
    Ok(())
}

fn read_terminal_events(events: mpsc::Sender<Event>) {
    loop {
        match event::poll(Duration::from_millis(200)) {
            Ok(true) => match event::read() {
                Ok(event) => {
                    if events.blocking_send(event).is_err() {
                        return;
                    }
                }
                Err(_) => return,
            },
            Ok(false) => {
                if events.is_closed() {
                    return;
                }
            }
            Err(_) => return,
        }
    }
}

#[derive(Debug, PartialEq, Eq)]
enum Flow {
    Continue,
    Quit,
}

/// Which screen is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Screen {
    Chart,
    Watchlist,
}

struct App {
    state: ChartState,
    ui: Ui,
    commands: mpsc::Sender<ConnCommand>,
    endpoint: Endpoint,
    chart_columns: u16,
    screen: Screen,
    watchlist: Watchlist,
    seeder: SparklineSeeder,
    /// The watchlist was opened: the ticker stream is subscribed (again after every reconnect).
    tickers_wanted: bool,
    /// Rows of mints the watchlist screen shows.
    list_rows: usize,
}

impl App {
    async fn send(&self, request: ClientRequest) {
        let _ = self.commands.send(ConnCommand::Send(request)).await;
    }

    /// Subscribes to the current series and its mint's trades, resuming after the newest candle and the
    /// newest trade held (no gap, no duplicate).
    async fn subscribe(&self) {
        let Some(symbol) = self.state.symbol.clone() else {
            return;
        };
        let mut request = SubscribeRequest::new(symbol.clone(), self.state.interval);
        request = match self.state.resume_from() {
            Some(from) => request.with_from(from),
            None => request.with_limit(PAGE).expect("PAGE is a valid limit"),
        };
        self.send(ClientRequest::Subscribe(request)).await;
        let trades = SubscribeTradesRequest::new(symbol)
            .with_limit(TRADES_KEPT)
            .expect("TRADES_KEPT is a valid limit");
        let trades = match self.state.trades_resume_after() {
            Some(after) => trades.with_after(after),
            None => trades,
        };
        self.send(ClientRequest::SubscribeTrades(trades)).await;
    }

    async fn switch(&mut self, symbol: Symbol, interval: Interval) {
        if let Some(old) = self.state.symbol.clone() {
            self.send(ClientRequest::Unsubscribe(UnsubscribeRequest::new(
                old.clone(),
                self.state.interval,
            )))
            .await;
            if old != symbol {
                self.send(ClientRequest::UnsubscribeTrades(
                    UnsubscribeTradesRequest::new(old),
                ))
                .await;
            }
        }
        self.state.switch(symbol, interval);
        self.subscribe().await;
    }

    async fn on_connection(&mut self, event: ConnEvent) {
        match event {
            ConnEvent::Connected => {
                self.state.link = LinkStatus::Connected;
                self.state.last_error = None;
                self.state.older_pending = false;
                self.subscribe().await;
                self.seeder.reset();
                if self.tickers_wanted {
                    self.subscribe_tickers().await;
                }
            }
            ConnEvent::Message(message) => {
                if !self.apply_to_watchlist(&message) {
                    self.state.apply(
                        &message,
                        Instant::now(),
                        kline_protocol::response::unix_millis_now(),
                    );
                }
            }
            ConnEvent::Lost {
                error,
                retry_at,
                attempt,
            } => {
                self.state.link = LinkStatus::Reconnecting {
                    at: retry_at,
                    attempt,
                };
                self.state.last_error = Some(error);
            }
        }
    }

    async fn subscribe_tickers(&self) {
        self.send(ClientRequest::SubscribeTickers(
            SubscribeTickersRequest::new(),
        ))
        .await;
    }

    /// Folds the watchlist's messages (tickers, and the replies to its sparkline seeds) into it; returns
    /// whether `message` was the watchlist's. Everything else is the chart's.
    fn apply_to_watchlist(&mut self, message: &ServerMessage) -> bool {
        match &message.payload {
            ServerPayload::TickersSnapshot(snapshot) => {
                self.watchlist
                    .apply_snapshot(&snapshot.data, message.timestamp);
                self.state.learn_names(self.watchlist.names());
            }
            ServerPayload::Tickers(tickers) => self
                .watchlist
                .apply_update(&tickers.data, message.timestamp),
            ServerPayload::HistoryData(history) => {
                let Some(symbol) =
                    seed_reply(history.subscription_id.as_ref().map(|id| id.as_str()))
                else {
                    return false;
                };
                self.watchlist.apply_history(&symbol, &history.data);
            }
            ServerPayload::Error(error) => {
                let Some(symbol) = seed_reply(error.subscription_id.as_deref()) else {
                    return false;
                };
                tracing::info!(symbol = %symbol, code = error.code.as_u16(), message = %error.message, "sparkline seed refused; asked again later");
                self.seeder.forget(&symbol);
            }
            _ => return false,
        }
        true
    }

    /// Asks for the history of the sparklines on screen that have none yet, within the seeder's budget.
    async fn seed_sparklines(&mut self) {
        if self.screen != Screen::Watchlist || self.state.link != LinkStatus::Connected {
            return;
        }
        let on_screen: Vec<Symbol> = self
            .watchlist
            .page(self.list_rows)
            .rows
            .iter()
            .map(|row| row.ticker.symbol.clone())
            .collect();
        for request in self.seeder.requests(&on_screen, Instant::now()) {
            self.send(ClientRequest::History(request)).await;
        }
    }

    async fn open_watchlist(&mut self) {
        self.screen = Screen::Watchlist;
        if !self.tickers_wanted {
            self.tickers_wanted = true;
            self.subscribe_tickers().await;
        }
    }

    async fn on_watchlist_key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Flow {
        let Some(action) = watchlist_action(key) else {
            return Flow::Continue;
        };
        let rows = self.list_rows.max(1);
        let list = &mut self.watchlist;
        match action {
            WatchlistAction::Quit => return Flow::Quit,
            WatchlistAction::ClearFilterOrBack if list.filter.is_empty() => {
                self.screen = Screen::Chart
            }
            WatchlistAction::ClearFilterOrBack => list.clear_filter(),
            WatchlistAction::OpenChart => {
                let Some(symbol) = list.selected() else {
                    return Flow::Continue;
                };
                let name = list.row(&symbol).map(|row| row.symbol_name());
                self.state.learn_names(name);
                self.screen = Screen::Chart;
                self.switch(symbol, self.state.interval).await;
            }
            WatchlistAction::Move(rows_down) => list.move_selection(rows_down, rows),
            WatchlistAction::MovePages(pages) => {
                list.move_selection(pages.saturating_mul(rows as isize), rows)
            }
            WatchlistAction::NextSort => list.sort = list.sort.next(),
            WatchlistAction::PreviousSort => list.sort = list.sort.previous(),
            WatchlistAction::ToggleStar => match list.toggle_star() {
                Some(Ok((symbol, starred))) => tracing::info!(symbol = %symbol, starred, "star"),
                Some(Err(err)) => {
                    tracing::warn!(%err, "the star holds for this session only");
                    self.state.last_error = Some(err.to_string());
                }
                None => {}
            },
            WatchlistAction::Type(c) => list.push_filter(c),
            WatchlistAction::Erase => list.pop_filter(),
        }
        Flow::Continue
    }

    async fn open_picker(&mut self) {
        let mut picker = Picker::default();
        match fetch_symbols(&self.endpoint).await {
            Ok(symbols) if symbols.is_empty() => {
                picker.message = Some("the server knows no symbols yet".into())
            }
            Ok(symbols) => {
                self.state
                    .learn_names(symbols.iter().filter_map(|entry| entry.symbol_name()));
                picker.symbols = symbols;
            }
            Err(err) => picker.message = Some(format!("cannot list symbols: {err}")),
        }
        self.ui.picker = Some(picker);
    }

    async fn on_key(&mut self, key: ratatui::crossterm::event::KeyEvent) -> Flow {
        if let Some(picker) = &mut self.ui.picker {
            match key.code {
                KeyCode::Esc => self.ui.picker = None,
                KeyCode::Enter => {
                    let chosen = picker
                        .matches()
                        .get(picker.selected)
                        .map(|entry| entry.symbol.clone());
                    if let Some(symbol) = chosen.and_then(|s| Symbol::parse(&s).ok()) {
                        self.ui.picker = None;
                        self.switch(symbol, self.state.interval).await;
                    }
                }
                KeyCode::Up => picker.selected = picker.selected.saturating_sub(1),
                KeyCode::Down => {
                    picker.selected =
                        (picker.selected + 1).min(picker.matches().len().saturating_sub(1))
                }
                KeyCode::Backspace => {
                    picker.filter.pop();
                    picker.selected = 0;
                }
                KeyCode::Char(c) => {
                    picker.filter.push(c);
                    picker.selected = 0;
                }
                _ => {}
            }
            return Flow::Continue;
        }
        if self.screen == Screen::Watchlist {
            return self.on_watchlist_key(key).await;
        }
        let Some(action) = chart_action(key) else {
            return Flow::Continue;
        };
        let columns = self.chart_columns;
        let visible = self.state.visible(columns).len();
        match action {
            Action::Quit => return Flow::Quit,
            Action::SetInterval(interval) => {
                if let Some(symbol) = self.state.symbol.clone() {
                    self.switch(symbol, interval).await;
                } else {
                    self.state.interval = interval;
                }
            }
            Action::NextInterval => {
                let interval = next_interval(self.state.interval);
                match self.state.symbol.clone() {
                    Some(symbol) => self.switch(symbol, interval).await,
                    None => self.state.interval = interval,
                }
            }
            Action::ScrollOlder if self.state.cursor.is_some() => {
                self.state.move_cursor(-1, visible)
            }
            Action::ScrollNewer if self.state.cursor.is_some() => {
                self.state.move_cursor(1, visible)
            }
            Action::ScrollOlder => {
                let step = (visible / 4).max(1);
                if let Some(request) = self.state.scroll_older(step, columns) {
                    self.send(ClientRequest::History(request)).await;
                }
            }
            Action::ScrollNewer => self.state.scroll_newer((visible / 4).max(1)),
            Action::ZoomIn => self.state.zoom_in(),
            Action::ZoomOut => self.state.zoom_out(),
            Action::Oldest => {
                if let Some(request) = self.state.scroll_older(usize::MAX / 2, columns) {
                    self.send(ClientRequest::History(request)).await;
                }
            }
            Action::Newest => self.state.scroll = 0,
            Action::OpenPicker => self.open_picker().await,
            Action::OpenWatchlist => self.open_watchlist().await,
            Action::ToggleCursor => self.state.toggle_cursor(),
            Action::ToggleVolume => self.ui.volume_hidden = !self.ui.volume_hidden,
            Action::ToggleTrades => self.ui.trades_shown = !self.ui.trades_shown,
            Action::ToggleIndicators => self.ui.indicators.toggle(),
            Action::Reconnect => {
                let _ = self.commands.send(ConnCommand::Reconnect).await;
            }
            Action::ToggleHelp => self.ui.show_help = !self.ui.show_help,
        }
        Flow::Continue
    }
}
