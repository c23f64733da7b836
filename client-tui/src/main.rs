//! `kline-tui`: parse the command line, log to a file, run the chosen mode.

use std::path::PathBuf;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kline_protocol::{Interval, Symbol};
use kline_tui::endpoint::Endpoint;
use kline_tui::indicators::{Indicators, parse_periods, parse_sigmas};
use kline_tui::watchlist::stars::Stars;
use kline_tui::{app, headless};

/// Live candlestick charts from a kline server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// The server's WebSocket endpoint.
    #[arg(long, global = true, default_value = "ws://127.0.0.1:8080/ws")]
    url: String,
    /// Mint to chart; without it the interactive client opens a picker (headless modes take the most
    /// recently updated one).
    #[arg(long, global = true)]
    symbol: Option<String>,
    /// s1 s15 s30 m1 m5 m15 h1 h4 d1
    #[arg(long, global = true, default_value = "m1")]
    interval: String,
    /// Extra CA certificates (PEM) to trust for wss:// beside the system's (a server with a private or
    /// self-signed certificate).
    #[arg(long, global = true, value_name = "PEM_FILE")]
    ca_file: Option<PathBuf>,
    /// Show times in UTC instead of local time.
    #[arg(long, global = true)]
    utc: bool,
    /// The watchlist's starred mints, one address a line [default: $XDG_CONFIG_HOME/kline/stars, else
    /// ~/.config/kline/stars].
    #[arg(long, global = true, value_name = "FILE")]
    stars_file: Option<PathBuf>,
    /// Log file (logs never go to the screen).
    #[arg(long, global = true)]
    log: Option<PathBuf>,
    #[command(flatten)]
    indicators: IndicatorFlags,
    #[command(subcommand)]
    mode: Option<Mode>,
}

/// The indicators drawn over the chart (`i` shows or hides them).
#[derive(Debug, clap::Args)]
struct IndicatorFlags {
    /// Simple moving averages: periods in candles, comma-separated (`9,21`), or `none`.
    #[arg(long, global = true, value_name = "PERIODS", default_value = "50", value_parser = periods)]
    sma: Periods,
    /// Exponential moving averages (seeded with the SMA of their first period): periods, or `none`.
    #[arg(long, global = true, value_name = "PERIODS", default_value = "9", value_parser = periods)]
    ema: Periods,
    /// Bollinger bands: the period of their moving average, or `none`.
    #[arg(long, global = true, value_name = "PERIOD", default_value = "20", value_parser = periods)]
    bollinger: Periods,
    /// The Bollinger bands' distance from their average, in standard deviations.
    #[arg(long, global = true, value_name = "K", default_value = "2", value_parser = parse_sigmas)]
    bollinger_sigma: f64,
    /// Leave out the VWAP (volume-weighted average price since 00:00 UTC).
    #[arg(long, global = true)]
    no_vwap: bool,
    /// Show the indicators from the start (otherwise `i` shows them).
    #[arg(long, global = true)]
    indicators: bool,
}

/// A list of periods as one flag value (`9,21`).
#[derive(Debug, Clone)]
struct Periods(Vec<usize>);

fn periods(text: &str) -> Result<Periods, String> {
    parse_periods(text).map(Periods)
}

impl IndicatorFlags {
    fn indicators(&self) -> Indicators {
        Indicators::new(
            &self.sma.0,
            &self.ema.0,
            !self.no_vwap,
            &self.bollinger.0,
            self.bollinger_sigma,
            self.indicators,
        )
    }
}

#[derive(Debug, Subcommand)]
enum Mode {
    /// Print every received message as one JSON line.
    Watch {
        /// JSON lines (the only output format; accepted for clarity in scripts).
        #[arg(long)]
        json: bool,
        /// Exit after this many messages.
        #[arg(long)]
        count: Option<u64>,
        /// Exit after this many seconds.
        #[arg(long)]
        seconds: Option<f64>,
    },
    /// Render the chart once, after the history arrives, as plain text.
    Snapshot {
        #[arg(long, default_value_t = 100)]
        width: u16,
        #[arg(long, default_value_t = 30)]
        height: u16,
    },
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kline_tls::install_crypto_provider();
    let log_path = cli
        .log
        .clone()
        .unwrap_or_else(|| std::env::temp_dir().join("kline-tui.log"));
    let log_file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(&log_path)
        .with_context(|| format!("cannot open log file {}", log_path.display()))?;
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()),
        )
        .with_writer(std::sync::Mutex::new(log_file))
        .with_ansi(false)
        .init();
    let endpoint = Endpoint::parse(&cli.url, cli.ca_file.as_deref())?;
    let interval: Interval = cli.interval.parse()?;
    let symbol = cli.symbol.as_deref().map(Symbol::parse).transpose()?;
    let indicators = cli.indicators.indicators();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let code = runtime.block_on(async move {
        match cli.mode {
            None => app::run(app::Options {
                endpoint,
                symbol,
                interval,
                utc: cli.utc,
                indicators,
                stars_file: cli.stars_file.or_else(Stars::default_path),
            })
            .await
            .map(|()| 0),
            Some(Mode::Watch {
                json: _,
                count,
                seconds,
            }) => {
                let symbol = match headless::resolve_symbol(&endpoint, symbol).await {
                    Ok(symbol) => symbol,
                    Err(err) => {
                        eprintln!("kline-tui: {err:#}");
                        return Ok(headless::EXIT_CONNECTION_FAILED);
                    }
                };
                headless::watch(headless::WatchOptions {
                    endpoint,
                    symbol,
                    interval,
                    count,
                    seconds,
                })
                .await
            }
            Some(Mode::Snapshot { width, height }) => {
                let symbol = headless::resolve_symbol(&endpoint, symbol).await?;
                let options = headless::SnapshotOptions {
                    endpoint,
                    symbol,
                    interval,
                    width,
                    height,
                    utc: cli.utc,
                    indicators,
                };
                print!("{}", headless::snapshot(options).await?);
                Ok(0)
            }
        }
    })?;
    std::process::exit(code);
}
