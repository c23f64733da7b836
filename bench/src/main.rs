//! `kline-bench`: measures a kline-server under load with one command.
//!
//! `cargo run --release -p kline-bench -- fanout` starts the release server with a temporary data dir, opens
//! the scenario's WebSocket clients (separate process from the server: each may hold ~19,900 files), drives
//! events through `POST /api/v1/events` (or, in `live`, through the server's Solana source and a fake RPC
//! node), and prints latency, throughput, losses, closes, server CPU and RSS. `--reference nchan` runs the
//! same clients and events against nginx + nchan afterwards and prints both side by side; `--burn-cores N`
//! takes cores away from the server; `--transport socketio|both` uses Socket.IO clients (namespace `/kline`)
//! instead of, or after, `/ws` ones; `--through-edge` puts a writer, redis-server and an edge in place of the
//! one server (events to the writer, clients on the edge), and `stream` measures that stream's throughput.
//! `soak` runs the fanout load for minutes with a short retention and samples disk, RSS, descriptors, the
//! pipeline queue and p99 as it goes, into a CSV and a plot.
//! Loopback only; every run is bounded in connections and time.
//!
//! # Layout
//! - [`measure`]: one measured run against one engine; [`clients`], [`churn`]: the WebSocket load
//!   ([`client_stream`]: bytes on the wire, permessage-deflate);
//!   [`driver`]: the events and where they go; [`burn`]: the CPU burners.
//! - [`server`]: kline-server as a child process; [`cluster`]: a writer, redis-server and edges;
//!   [`nchan`]: the nginx + nchan reference; [`live`]: the fake Solana node's slot feed; [`process`]:
//!   `/proc` sampling.
//! - [`ingest`]: the ingest-only scenario; [`stream`]: the writer's publish and an edge's apply
//!   throughput; [`history`]: what a 1000-candle history costs, compressed or not; [`report`]: `/metrics`
//!   parsing and printing; [`soak`]: the long run and its samples, CSV and plot.

mod burn;
mod churn;
mod client_stream;
mod clients;
mod cluster;
mod driver;
mod history;
mod ingest;
mod live;
mod measure;
mod nchan;
mod process;
mod report;
mod server;
mod soak;
mod stream;
mod trade_watch;

use std::time::{Duration, Instant};

use anyhow::bail;
use clap::{Parser, ValueEnum};
use kline_core::event::Pubkey;
use kline_core::simulated_market::SimulatedMarket;
use serde_json::{Value, json};

use crate::cluster::StreamCluster;
use crate::driver::Feed;
use crate::measure::Engine;
use crate::server::ServerUnderTest;
use crate::soak::SoakPlan;
use crate::soak::retention::{Retention, parse_duration, parse_seconds};

/// Load and latency benchmark of kline-server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// fanout | hot | idle | ingest | churn | live | history | stream | soak
    scenario: String,
    /// WebSocket connections (scenario default if absent).
    #[arg(long)]
    connections: Option<usize>,
    /// Distinct (mint, s1) pairs the clients spread over.
    #[arg(long)]
    pairs: Option<usize>,
    /// Events per second to publish.
    #[arg(long)]
    rate: Option<f64>,
    /// How long to drive events (or to hold idle connections): seconds, or `90s`, `20m`, `1h`.
    #[arg(long, value_parser = parse_seconds)]
    duration: Option<u64>,
    /// Clients that connect, subscribe, unsubscribe and disconnect in a loop during the run (churn: 2000).
    #[arg(long)]
    churners: Option<usize>,
    /// Connections opened at a time while ramping up.
    #[arg(long, default_value_t = 500)]
    ramp: usize,
    /// Also run the same clients and events against a reference engine (fanout, hot, churn), then print
    /// both side by side with the ratios. Skipped, with a message, when it is not installed.
    #[arg(long, value_enum)]
    reference: Option<Reference>,
    /// Cores to keep busy in the bench process for the whole measured run (taking CPU from the server): a
    /// spinning thread per whole core, and one busy part of the time for a fraction (`0.12`).
    #[arg(long, default_value_t = 0.0)]
    burn_cores: f64,
    /// live: milliseconds per slot (the fake node produces one slot of transactions per tick).
    #[arg(long, default_value_t = 400)]
    slot_ms: u64,
    /// live: events per transaction.
    #[arg(long, default_value_t = 4)]
    events_per_tx: usize,
    /// live: the fake node answers `getBlock` and `getTransaction` this many milliseconds late, as a remote
    /// node sending a full block does.
    #[arg(long, default_value_t = 0)]
    rpc_delay_ms: u64,
    /// fanout, hot, churn: events per ingest POST, sent as concurrent requests (1: one event per POST, as a
    /// naive indexer posts). Default: the events due at each 5 ms tick in one POST (5 at 1,000 events/s).
    #[arg(long)]
    events_per_request: Option<u64>,
    /// live: the fake node speaks only TLS (`wss://`, `https://`, a certificate of a CA made for the run),
    /// as every provider does; compare with a run without it for the per-message cost of TLS.
    #[arg(long)]
    tls: bool,
    /// Target a running server (e.g. http://127.0.0.1:8080) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Ingest token of the server given with --url.
    #[arg(long, env = "KLINE_INGEST_TOKEN", default_value = "")]
    token: String,
    /// PID of the server given with --url, for CPU and RSS sampling.
    #[arg(long)]
    pid: Option<u32>,
    /// Write the report as JSON here (soak: the directory for soak.csv, soak.svg and soak.json; default
    /// `soak-<unix seconds>`).
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// soak: events, trades and every candle interval kept this long (`2m`), passed to the server as its
    /// `[retention]` keys; `none` passes none (the server's defaults).
    #[arg(long, default_value = "2m", value_parser = Retention::parse)]
    retention: Retention,
    /// soak: the server's `retention.check_every`.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    retention_check_every: Duration,
    /// soak: time between two samples.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    sample_every: Duration,
    /// soak: also sample this `/metrics` series (unlabelled, e.g. a queue gauge) as a CSV column
    /// (repeatable).
    #[arg(long = "sample-metric")]
    sample_metric: Vec<String>,
    /// Threads of the load client's runtime (0: one per core). The clients share the machine with the
    /// server; 1 keeps them to one core.
    #[arg(long, default_value_t = 0)]
    client_threads: usize,
    /// Clients offer permessage-deflate, as browsers do (kline only; nchan's clients never do), and inflate
    /// what comes compressed. The report's `wire_bytes_per_delivery` shows what it saves.
    #[arg(long)]
    compression: bool,
    /// Extra `--set key=value` for the server the bench starts (repeatable).
    #[arg(long = "server-set")]
    server_set: Vec<String>,
    /// How the clients reach kline (fanout, hot, idle): `/ws`, the Socket.IO endpoint (namespace `/kline`,
    /// websocket transport), or both one after the other against the same server, printed side by side.
    #[arg(long, value_enum, default_value_t = Transport::Ws)]
    transport: Transport,
    /// fanout, hot, idle, churn: start redis-server, a writer (`node.role=writer`) and one edge
    /// (`node.role=edge`); events go to the writer, clients to the edge, so the latency includes the hop
    /// writer → Redis → edge. Compare with the same command without it.
    #[arg(long)]
    through_edge: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Transport {
    Ws,
    Socketio,
    Both,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Reference {
    /// nginx with the nchan pub/sub module (`apt-get install nginx-light libnginx-mod-nchan`).
    Nchan,
}

/// What a run does: the scenario's defaults with the command line's overrides.
#[derive(Debug, Clone, Copy)]
pub struct Plan {
    pub connections: usize,
    pub pairs: usize,
    pub rate: f64,
    pub duration: u64,
    pub churners: usize,
    pub ramp: usize,
    pub burn_cores: f64,
    /// The clients offer permessage-deflate.
    pub compression: bool,
    /// Connections subscribed to a mint's trades (`live`: one per pair), timing the trade feed.
    pub trade_watchers: bool,
}

/// (connections, pairs, events/s, seconds, churners) of each scenario.
fn scenario(name: &str) -> anyhow::Result<(usize, usize, f64, u64, usize)> {
    Ok(match name {
        "fanout" | "live" => (10_000, 100, 1000.0, 30, 0),
        "hot" => (10_000, 1, 10.0, 30, 0),
        "idle" => (19_000, 100, 0.0, 60, 0),
        "ingest" => (0, 100, 0.0, 10, 0),
        "churn" => (10_000, 100, 1000.0, 30, 2000),
        // `duration` is the number of requests per connection here.
        "history" => (20, 1, 0.0, 20, 0),
        // `duration`: seconds of full-speed ingest, once without the stream, once into a writer.
        "stream" => (0, 100, 0.0, 5, 0),
        // fanout's load with a tenth of its clients (enough to keep the push path busy on a shared
        // two-core machine for 20 minutes; `--connections 10000` is fanout's), for 20 minutes.
        "soak" => (1_000, 100, 1000.0, 20 * 60, 0),
        other => {
            bail!(
                "unknown scenario `{other}`; expected fanout, hot, idle, ingest, churn, live, history, stream or soak"
            )
        }
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let (connections, pairs, rate, duration, churners) = scenario(&cli.scenario)?;
    let plan = Plan {
        connections: cli.connections.unwrap_or(connections),
        pairs: cli.pairs.unwrap_or(pairs).max(1),
        rate: cli.rate.unwrap_or(rate),
        duration: cli.duration.unwrap_or(duration),
        churners: cli.churners.unwrap_or(churners),
        ramp: cli.ramp,
        burn_cores: cli.burn_cores,
        compression: cli.compression,
        trade_watchers: cli.scenario == "live",
    };
    if cli.reference.is_some() && !matches!(cli.scenario.as_str(), "fanout" | "hot" | "churn") {
        bail!(
            "--reference applies to the fan-out scenarios (fanout, hot, churn), not `{}`",
            cli.scenario
        );
    }
    if cli.transport != Transport::Ws && !matches!(cli.scenario.as_str(), "fanout" | "hot" | "idle")
    {
        bail!(
            "--transport applies to fanout, hot and idle, not `{}`",
            cli.scenario
        );
    }
    if cli.transport != Transport::Ws && cli.reference.is_some() {
        bail!(
            "--reference compares /ws with the reference; it cannot be combined with --transport"
        );
    }
    if cli.events_per_request.is_some()
        && !matches!(cli.scenario.as_str(), "fanout" | "hot" | "churn" | "soak")
    {
        bail!(
            "--events-per-request applies to fanout, hot, churn and soak, not `{}`",
            cli.scenario
        );
    }
    if cli.through_edge {
        if !matches!(cli.scenario.as_str(), "fanout" | "hot" | "idle" | "churn") {
            bail!(
                "--through-edge applies to fanout, hot, idle and churn, not `{}`",
                cli.scenario
            );
        }
        if cli.url.is_some() || cli.reference.is_some() {
            bail!(
                "--through-edge starts its own writer and edge; it cannot be combined with --url or --reference"
            );
        }
    }
    if matches!(cli.scenario.as_str(), "live" | "stream") && cli.url.is_some() {
        bail!(
            "{} starts its own servers; --url cannot be used",
            cli.scenario
        );
    }
    let runtime = match cli.client_threads {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?,
        0 => tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()?,
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .build()?,
    };
    if cli.scenario == "soak" {
        return runtime.block_on(soak::run(&soak_plan(&cli, &plan)?));
    }
    let report = runtime.block_on(run(&cli, &plan))?;
    report::print(&report);
    if let Some(path) = &cli.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

/// The soak's plan: the fanout-like `plan` plus the soak's own flags. It starts its own single server.
fn soak_plan(cli: &Cli, plan: &Plan) -> anyhow::Result<SoakPlan> {
    if cli.url.is_some() || cli.through_edge || cli.reference.is_some() {
        bail!("soak starts and samples its own server: no --url, --through-edge or --reference");
    }
    if cli.transport != Transport::Ws
        || cli.compression
        || plan.churners > 0
        || plan.burn_cores > 0.0
    {
        bail!("soak runs /ws clients without compression, churners or burners");
    }
    if plan.rate <= 0.0 || plan.duration == 0 || cli.sample_every.is_zero() {
        bail!("soak needs a --rate, a --duration and a --sample-every above zero");
    }
    let out = cli.out.clone().unwrap_or_else(|| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        format!("soak-{now}").into()
    });
    Ok(SoakPlan {
        connections: plan.connections,
        pairs: plan.pairs,
        rate: plan.rate,
        duration: Duration::from_secs(plan.duration),
        sample_every: cli.sample_every,
        retention: cli.retention,
        check_every: cli.retention_check_every,
        ramp: plan.ramp,
        events_per_request: cli.events_per_request,
        server_set: cli.server_set.clone(),
        extra_metrics: cli.sample_metric.clone(),
        out,
    })
}

async fn run(cli: &Cli, plan: &Plan) -> anyhow::Result<Value> {
    let mints: Vec<Pubkey> = SimulatedMarket::new(99, plan.pairs).mints().to_vec();
    let http = reqwest::Client::new();
    let slots = match cli.scenario.as_str() {
        "live" => Some(
            live::SlotFeed::start(
                cli.events_per_tx,
                cli.tls,
                Duration::from_millis(cli.rpc_delay_ms),
            )
            .await,
        ),
        _ => None,
    };
    let mut extra: Vec<String> = cli
        .server_set
        .iter()
        .flat_map(|s| ["--set".to_owned(), s.clone()])
        .collect();
    if cli.scenario == "stream" {
        return stream::run(&http, plan, &mints, &extra).await;
    }
    // Through an edge: the clients' server is the edge, the events go to the writer upstream.
    let mut upstream = None;
    let server = match &cli.url {
        Some(url) => ServerUnderTest::attach(url, cli.token.clone(), cli.pid),
        None if cli.through_edge => {
            let cluster = StreamCluster::start(&extra, &[])?;
            let edge = cluster.start_edge(true)?;
            cluster::wait_until_ready(&edge, Duration::from_secs(60)).await?;
            upstream = Some(cluster);
            edge
        }
        None => {
            extra.extend(slots.iter().flat_map(live::SlotFeed::server_args));
            if cli.scenario == "history" {
                // Back-to-back 1000-candle requests are what the rate limit exists to stop.
                for set in [
                    "websocket.rate_limit_per_sec=1e9",
                    "websocket.rate_limit_burst=1000000000",
                ] {
                    extra.extend(["--set".to_owned(), set.to_owned()]);
                }
            }
            ServerUnderTest::start(&extra)?
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let ingest_url = format!(
        "{}/api/v1/events",
        upstream.as_ref().map_or(&server, |c| &c.writer).base_url
    );
    if cli.scenario == "history" {
        return history::run(&http, &server, plan, plan.duration).await;
    }
    if cli.scenario == "ingest" {
        let baseline = server.sample();
        return ingest::run(
            &http,
            &ingest_url,
            &server,
            &mints,
            plan,
            baseline,
            ingest::Load::FULL_SPEED,
        )
        .await;
    }
    let mut feed = match slots {
        Some(slots) => {
            wait_until_solana_source_is_live(&http, &server.base_url).await?;
            Feed::Solana {
                slots,
                slot: Duration::from_millis(cli.slot_ms.max(1)),
            }
        }
        None => Feed::Ingest {
            http: http.clone(),
            url: ingest_url,
            token: server.token.clone(),
            events_per_request: cli.events_per_request,
        },
    };
    let first = match cli.transport {
        Transport::Socketio => Engine::KlineSocketIo(&server),
        Transport::Ws | Transport::Both => Engine::Kline(&server),
    };
    let mut report = measure::run(&first, &mut feed, plan, &mints, upstream.as_ref()).await?;
    if cli.transport == Transport::Both {
        let socketio = measure::run(
            &Engine::KlineSocketIo(&server),
            &mut feed,
            plan,
            &mints,
            upstream.as_ref(),
        )
        .await?;
        report["ratio_kline_to_reference"] = report::ratios(&report, &socketio);
        report["reference"] = socketio;
    }
    report["scenario"] = json!(cli.scenario);
    if let Some(n) = cli.events_per_request {
        report["events_per_request"] = json!(n);
    }
    if cli.scenario == "live" {
        report["slot_ms"] = json!(cli.slot_ms);
        report["events_per_tx"] = json!(cli.events_per_tx);
        report["rpc_delay_ms"] = json!(cli.rpc_delay_ms);
        report["latency_from"] = json!("the fake node's notification");
    }
    // The reference runs alone on the machine: the server the bench started stops first.
    drop(server);
    drop(upstream);
    if cli.reference == Some(Reference::Nchan) {
        let reference = run_nchan(&http, plan, &mints).await?;
        if reference.get("skipped").is_none() {
            report["ratio_kline_to_reference"] = report::ratios(&report, &reference);
        }
        report["reference"] = reference;
    }
    Ok(report)
}

/// The same plan against nginx + nchan with one worker per core, or `{"skipped": why}` when it is not
/// installed.
async fn run_nchan(http: &reqwest::Client, plan: &Plan, mints: &[Pubkey]) -> anyhow::Result<Value> {
    let (nginx, module) = match nchan::locate() {
        Ok(found) => found,
        Err(why) => {
            eprintln!("nchan reference skipped: {why}");
            return Ok(json!({ "engine": "nchan", "skipped": why }));
        }
    };
    let workers = std::thread::available_parallelism().map_or(1, |n| n.get());
    let engine = nchan::NginxNchan::start(&nginx, &module, workers)?;
    let mut feed = Feed::Nchan {
        http: http.clone(),
        base: format!("http://{}", engine.addr),
    };
    measure::run(&Engine::Nchan(&engine), &mut feed, plan, mints, None).await
}

async fn wait_until_solana_source_is_live(
    http: &reqwest::Client,
    base: &str,
) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let health: Value = http
            .get(format!("{base}/health"))
            .send()
            .await?
            .json()
            .await?;
        if health["sources"]["solana"]["state"] == "live" {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the server's Solana source did not go live within 30 s: {health}");
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
