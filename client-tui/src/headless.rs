//! Modes for scripts and tests: `watch --json` prints every message as one JSON line; `snapshot` renders the
//! chart once, as text, after the history arrives.

use std::io::Write;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use kline_protocol::{ClientRequest, Interval, ServerPayload, SubscribeRequest, Symbol};
use ratatui::buffer::Buffer;
use ratatui::layout::Rect;

use crate::conn::{self, Backoff, ConnCommand, ConnEvent};
use crate::endpoint::{Endpoint, fetch_symbols};
use crate::indicators::Indicators;
use crate::state::{ChartState, LinkStatus};
use crate::view::{self, Ui};

/// Exit codes of the headless modes.
pub const EXIT_CONNECTION_FAILED: i32 = 1;
pub const EXIT_SERVER_ERROR: i32 = 3;

/// The symbol to use: the one given, or the most recently updated one the server knows.
pub async fn resolve_symbol(endpoint: &Endpoint, symbol: Option<Symbol>) -> anyhow::Result<Symbol> {
    if let Some(symbol) = symbol {
        return Ok(symbol);
    }
    let symbols = fetch_symbols(endpoint).await.context("listing symbols")?;
    let first = symbols
        .first()
        .context("the server knows no symbols yet; pass --symbol")?;
    Ok(Symbol::parse(&first.symbol)?)
}

pub struct WatchOptions {
    pub endpoint: Endpoint,
    pub symbol: Symbol,
    pub interval: Interval,
    pub count: Option<u64>,
    pub seconds: Option<f64>,
}

/// Prints every server message as a JSON line until `count` messages or `seconds` pass. Survives server
/// restarts (reconnects and resumes with `from`). Returns the process exit code.
pub async fn watch(options: WatchOptions) -> anyhow::Result<i32> {
    let backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(5));
    let (command_tx, mut event_rx) = conn::spawn(options.endpoint.clone(), backoff);
    let deadline = options
        .seconds
        .map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    let mut printed = 0u64;
    let mut ever_connected = false;
    let mut newest: Option<i64> = None;
    let mut server_error = false;
    let mut stdout = std::io::stdout().lock();
    loop {
        let event = match deadline {
            Some(deadline) => match tokio::time::timeout_at(deadline, event_rx.recv()).await {
                Ok(event) => event,
                Err(_) => break,
            },
            None => event_rx.recv().await,
        };
        let Some(event) = event else { break };
        match event {
            ConnEvent::Connected => {
                ever_connected = true;
                let mut request = SubscribeRequest::new(options.symbol.clone(), options.interval);
                if let Some(from) = newest {
                    request = request.with_from(from);
                }
                let _ = command_tx
                    .send(ConnCommand::Send(ClientRequest::Subscribe(request)))
                    .await;
            }
            ConnEvent::Lost { error, .. } if !ever_connected => {
                eprintln!(
                    "kline-tui: cannot connect to {}: {error}",
                    options.endpoint.ws
                );
                return Ok(EXIT_CONNECTION_FAILED);
            }
            ConnEvent::Lost {
                error, retry_at, ..
            } => {
                let wait = retry_at.saturating_duration_since(Instant::now());
                eprintln!(
                    "kline-tui: connection lost ({error}); reconnecting in {:.1} s",
                    wait.as_secs_f64()
                );
            }
            ConnEvent::Message(message) => {
                match &message.payload {
                    ServerPayload::HistoryData(history) => {
                        newest = newest.max(history.data.last().map(|c| c.time))
                    }
                    ServerPayload::KlineData(update) => newest = newest.max(Some(update.data.time)),
                    ServerPayload::Error(error) => {
                        eprintln!(
                            "kline-tui: server error {}: {}",
                            error.code.as_u16(),
                            error.message
                        );
                        server_error = true;
                    }
                    _ => {}
                }
                writeln!(stdout, "{}", message.to_json())?;
                stdout.flush()?;
                printed += 1;
                if server_error || options.count.is_some_and(|count| printed >= count) {
                    break;
                }
            }
        }
    }
    Ok(match (ever_connected, server_error) {
        (false, _) => EXIT_CONNECTION_FAILED,
        (_, true) => EXIT_SERVER_ERROR,
        _ => 0,
    })
}

pub struct SnapshotOptions {
    pub endpoint: Endpoint,
    pub symbol: Symbol,
    pub interval: Interval,
    pub width: u16,
    pub height: u16,
    pub utc: bool,
    /// Drawn when `shown` (`--indicators`).
    pub indicators: Indicators,
}

/// Renders the chart once, after the history arrives, and returns it as text lines.
pub async fn snapshot(options: SnapshotOptions) -> anyhow::Result<String> {
    let mut socket = options.endpoint.connect().await.map_err(|err| {
        anyhow::anyhow!(
            "cannot connect to {}: {}",
            options.endpoint.ws,
            crate::endpoint::describe(&err)
        )
    })?;
    let limit = u32::from(options.width).clamp(1, kline_protocol::MAX_HISTORY_LIMIT);
    let request =
        SubscribeRequest::new(options.symbol.clone(), options.interval).with_limit(limit)?;
    use futures_util::{SinkExt, StreamExt};
    socket
        .send(tokio_tungstenite::tungstenite::Message::text(
            ClientRequest::Subscribe(request).to_json(),
        ))
        .await?;
    let mut state = ChartState::new(Some(options.symbol), options.interval);
    state.link = LinkStatus::Connected;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let Ok(Some(Ok(message))) = tokio::time::timeout_at(deadline, socket.next()).await else {
            bail!("no history arrived within 10 s");
        };
        let Ok(text) = message.into_text() else {
            continue;
        };
        let Ok(message) = kline_protocol::ServerMessage::parse(&text) else {
            continue;
        };
        if let ServerPayload::Error(error) = &message.payload {
            bail!("server error {}: {}", error.code.as_u16(), error.message);
        }
        let is_history = matches!(message.payload, ServerPayload::HistoryData(_));
        state.apply(
            &message,
            Instant::now(),
            kline_protocol::response::unix_millis_now(),
        );
        if is_history {
            break;
        }
    }
    let _ = socket.close(None).await;
    let ui = Ui {
        utc: options.utc,
        indicators: options.indicators,
        ..Ui::default()
    };
    Ok(render_text(&state, &ui, options.width, options.height))
}

/// The screen as plain text, one line per row, trailing spaces trimmed.
pub fn render_text(state: &ChartState, ui: &Ui, width: u16, height: u16) -> String {
    let mut buffer = Buffer::empty(Rect::new(0, 0, width, height));
    view::render(state, ui, buffer.area, &mut buffer, Instant::now());
    (0..height)
        .map(|y| {
            let line: String = (0..width)
                .map(|x| buffer[(x, y)].symbol().to_string())
                .collect();
            line.trim_end().to_owned() + "\n"
        })
        .collect()
}
