//! `kline-server`: parse the command line, build the config, start tracing, and hand over to the library.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use clap::{Parser, Subcommand};
use kline_config::{Config, ConfigLayers};
use kline_pipeline::{Pipeline, PipelineSettings};
use kline_server::node;
use kline_server::source::replay::replay_file;
use kline_store::CandleStore;
use tokio_util::sync::CancellationToken;
use tracing_subscriber::EnvFilter;

/// Real-time candlestick server for Spin Pet.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// A TOML file merged over the built-in defaults (config/default.toml).
    #[arg(long, short)]
    config: Option<PathBuf>,
    /// Override one key, e.g. `--set server.port=9000` (repeatable; wins over file and environment).
    #[arg(long = "set", value_name = "KEY=VALUE")]
    overrides: Vec<String>,
    /// Listen address, e.g. 127.0.0.1:8080 (overrides server.host and server.port).
    #[arg(long)]
    bind: Option<std::net::SocketAddr>,
    /// RocksDB directory (overrides storage.data_dir).
    #[arg(long)]
    data_dir: Option<PathBuf>,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the server (the default).
    Serve,
    /// Load an NDJSON file of events (gzip accepted) into the store, idempotently. The server must not be
    /// running on the same data directory.
    Replay { file: PathBuf },
    /// Print the effective configuration's validation result and exit.
    CheckConfig,
}

fn load_config(cli: &Cli) -> anyhow::Result<Config> {
    let mut layers = ConfigLayers::new();
    if let Some(path) = &cli.config {
        layers = layers.file(path)?;
    }
    layers = layers.env(std::env::vars())?;
    let mut overrides = cli.overrides.clone();
    if let Some(bind) = cli.bind {
        overrides.push(format!("server.host=\"{}\"", bind.ip()));
        overrides.push(format!("server.port={}", bind.port()));
    }
    if let Some(dir) = &cli.data_dir {
        overrides.push(format!("storage.data_dir={:?}", dir.display().to_string()));
    }
    Ok(layers
        .overrides(overrides.iter().map(String::as_str))?
        .build()?)
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    kline_tls::install_crypto_provider();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let config = load_config(&cli).context("invalid configuration")?;
    match cli.command.unwrap_or(Command::Serve) {
        Command::Serve => serve(config),
        Command::Replay { file } => replay(config, &file),
        Command::CheckConfig => {
            let fd_limit = kline_server::fds::raise_limit().context("reading RLIMIT_NOFILE")?;
            kline_server::fds::check(&config, fd_limit).context("invalid configuration")?;
            println!(
                "configuration is valid; listening on {}",
                config.bind_addr()?
            );
            Ok(())
        }
    }
}

fn serve(config: Config) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let listener = node::bind(&config)?;
        let shutdown = CancellationToken::new();
        tokio::spawn(cancel_on_signal(shutdown.clone()));
        node::run(config, listener, shutdown).await?;
        Ok(())
    })
}

async fn cancel_on_signal(shutdown: CancellationToken) {
    let mut terminate = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("SIGTERM handler installs");
    tokio::select! {
        _ = tokio::signal::ctrl_c() => tracing::info!("SIGINT: shutting down"),
        _ = terminate.recv() => tracing::info!("SIGTERM: shutting down"),
    }
    shutdown.cancel();
}

fn replay(config: Config, file: &std::path::Path) -> anyhow::Result<()> {
    let store = Arc::new(CandleStore::open(&config.storage)?);
    let feed = kline_pipeline::feed::CandleFeed::unread();
    let mut pipeline = Pipeline::open(
        store.clone(),
        PipelineSettings::from_config(&config),
        feed,
        Arc::default(),
    )?;
    let show_progress = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let summary = replay_file(
        file,
        &mut pipeline,
        config.kline.price_scale_decimals,
        show_progress,
    )?;
    store.flush()?;
    print!("{summary}");
    Ok(())
}
