//! `kline-bench`: measures a kline-server under load with one command.
//!
//! `cargo run --release -p kline-bench -- fanout` starts the release server with a temporary data dir, opens
//! the scenario's WebSocket clients (separate process from the server: each may hold ~19,900 files), drives
//! events through `POST /api/v1/events`, and prints latency, throughput, losses, closes, server CPU and RSS.
//! Loopback only; every run is bounded in connections and time.

mod churn;
mod clients;
mod driver;
mod server;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use clap::Parser;
use kline_server::event::Pubkey;
use kline_server::source::simulator::SimulatedMarket;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::server::{ProcSample, ServerUnderTest, cpu_percent};

/// Load and latency benchmark of kline-server.
#[derive(Debug, Parser)]
#[command(version, about)]
struct Cli {
    /// fanout | hot | idle | ingest | churn
    scenario: String,
    /// WebSocket connections (scenario default if absent).
    #[arg(long)]
    connections: Option<usize>,
    /// Distinct (mint, s1) pairs the clients spread over.
    #[arg(long)]
    pairs: Option<usize>,
    /// Events per second to POST.
    #[arg(long)]
    rate: Option<f64>,
    /// Seconds to drive events (or to hold idle connections).
    #[arg(long)]
    duration: Option<u64>,
    /// Clients that connect, subscribe, unsubscribe and disconnect in a loop during the run (churn: 2000).
    #[arg(long)]
    churners: Option<usize>,
    /// Connections opened at a time while ramping up.
    #[arg(long, default_value_t = 500)]
    ramp: usize,
    /// Target a running server (e.g. http://127.0.0.1:8080) instead of starting one.
    #[arg(long)]
    url: Option<String>,
    /// Ingest token of the server given with --url.
    #[arg(long, env = "KLINE_INGEST_TOKEN", default_value = "")]
    token: String,
    /// PID of the server given with --url, for CPU and RSS sampling.
    #[arg(long)]
    pid: Option<u32>,
    /// Write the report as JSON here.
    #[arg(long)]
    out: Option<std::path::PathBuf>,
    /// Threads of the load client's runtime (0: one per core). The clients share the machine with the
    /// server; 1 keeps them to one core.
    #[arg(long, default_value_t = 0)]
    client_threads: usize,
    /// Extra `--set key=value` for the server the bench starts (repeatable).
    #[arg(long = "server-set")]
    server_set: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
struct Scenario {
    connections: usize,
    pairs: usize,
    rate: f64,
    duration: u64,
    churners: usize,
}

fn scenario(name: &str) -> anyhow::Result<Scenario> {
    Ok(match name {
        "fanout" => Scenario {
            connections: 10_000,
            pairs: 100,
            rate: 1000.0,
            duration: 30,
            churners: 0,
        },
        "hot" => Scenario {
            connections: 10_000,
            pairs: 1,
            rate: 10.0,
            duration: 30,
            churners: 0,
        },
        "idle" => Scenario {
            connections: 19_000,
            pairs: 100,
            rate: 0.0,
            duration: 60,
            churners: 0,
        },
        "ingest" => Scenario {
            connections: 0,
            pairs: 100,
            rate: 0.0,
            duration: 10,
            churners: 0,
        },
        "churn" => Scenario {
            connections: 10_000,
            pairs: 100,
            rate: 1000.0,
            duration: 30,
            churners: 2000,
        },
        other => {
            anyhow::bail!("unknown scenario `{other}`; expected fanout, hot, idle, ingest or churn")
        }
    })
}

fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let defaults = scenario(&cli.scenario)?;
    let plan = Scenario {
        connections: cli.connections.unwrap_or(defaults.connections),
        pairs: cli.pairs.unwrap_or(defaults.pairs).max(1),
        rate: cli.rate.unwrap_or(defaults.rate),
        duration: cli.duration.unwrap_or(defaults.duration),
        churners: cli.churners.unwrap_or(defaults.churners),
    };
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
    let report = runtime.block_on(run(&cli, plan))?;
    print_table(&report);
    if let Some(path) = &cli.out {
        std::fs::write(path, serde_json::to_string_pretty(&report)?)?;
        println!("report written to {}", path.display());
    }
    Ok(())
}

async fn run(cli: &Cli, plan: Scenario) -> anyhow::Result<Value> {
    let server = match &cli.url {
        Some(url) => ServerUnderTest::attach(url, cli.token.clone(), cli.pid),
        None => {
            let extra: Vec<String> = cli
                .server_set
                .iter()
                .flat_map(|s| ["--set".to_owned(), s.clone()])
                .collect();
            ServerUnderTest::start(&extra)?
        }
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let http = reqwest::Client::new();
    let mints: Vec<Pubkey> = SimulatedMarket::new(99, plan.pairs).mints().to_vec();
    let ingest_url = format!("{}/api/v1/events", server.base_url);
    let baseline = server.sample();

    if cli.scenario == "ingest" {
        return ingest(&http, &ingest_url, &server, &mints, plan, baseline).await;
    }

    let addr: SocketAddr = server
        .base_url
        .trim_start_matches("http://")
        .parse()
        .context("--url must be http://IP:PORT")?;
    let mint_strings: Vec<String> = mints.iter().map(ToString::to_string).collect();
    let max_events = (plan.rate * plan.duration as f64) as usize + 1;
    let shared = clients::Shared::new(max_events);
    let stop = CancellationToken::new();
    let ramp_started = Instant::now();
    let tasks = clients::open(
        addr,
        &server.ws_url(),
        &mint_strings,
        plan.connections,
        cli.ramp,
        &shared,
        &stop,
    )
    .await;
    let ramp_secs = ramp_started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_connect = server.sample();

    let churn_counts = Arc::new(churn::ChurnCounts::default());
    let churn_stop = CancellationToken::new();
    let churners = churn::start(
        addr,
        &server.ws_url(),
        &mint_strings,
        plan.churners,
        &churn_counts,
        &churn_stop,
    );

    // Drive (or hold), sampling the server once a second.
    let sampler_stop = CancellationToken::new();
    let sampler = {
        let stop = sampler_stop.clone();
        let pid = server.pid;
        tokio::spawn(async move {
            let probe = ServerUnderTest::attach("", String::new(), pid);
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                samples.extend(probe.sample());
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples.extend(probe.sample());
            samples
        })
    };
    let load_client = ServerUnderTest::attach("", String::new(), Some(std::process::id()));
    let client_before = load_client.sample();
    let driven = if plan.rate > 0.0 {
        driver::drive(
            &http,
            &ingest_url,
            &server.token,
            &mints,
            plan.rate,
            Duration::from_secs(plan.duration),
            &shared,
        )
        .await
    } else {
        tokio::time::sleep(Duration::from_secs(plan.duration)).await;
        Default::default()
    };
    let client_cpu = client_before
        .zip(load_client.sample())
        .map(|(a, b)| cpu_percent(&a, &b));
    sampler_stop.cancel();
    let samples = sampler.await.unwrap_or_default();
    let still_connected = connected - shared.closes.lock().unwrap().values().sum::<u64>() as usize;
    // Let the last candles become final and reach everyone.
    tokio::time::sleep(Duration::from_millis(if plan.rate > 0.0 {
        4000
    } else {
        0
    }))
    .await;
    churn_stop.cancel();
    for churner in churners {
        let _ = churner.await;
    }
    stop.cancel();
    let mut outcomes = Vec::new();
    for task in tasks {
        if let Ok(Some(outcome)) = task.await {
            outcomes.push(outcome);
        }
    }
    let lost = if plan.rate > 0.0 {
        count_lost(&http, &server.base_url, &mint_strings, &outcomes).await?
    } else {
        0
    };

    // Every client is gone: the index and the connection count must be back to zero.
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_run = server.sample();
    let metrics = http
        .get(format!("{}/metrics", server.base_url))
        .send()
        .await?
        .text()
        .await?;
    let gauge = |name: &str| -> Option<u64> {
        metrics
            .lines()
            .find_map(|line| line.strip_prefix(name)?.trim().parse().ok())
    };

    let histogram = shared.latency_us.lock().unwrap().clone();
    let quantile_ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let load_cpu = samples
        .first()
        .zip(samples.last())
        .map(|(a, b)| cpu_percent(a, b));
    let peak_rss = samples.iter().map(|s| s.rss_kib).max();
    let per_connection_bytes = baseline
        .zip(after_connect)
        .filter(|_| connected > 0)
        .map(|(a, b)| (b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / connected as f64);
    let duration = plan.duration as f64;
    Ok(json!({
        "scenario": cli.scenario,
        "connections_requested": plan.connections,
        "connections_subscribed": connected,
        "connections_at_end_of_load": still_connected,
        "connect_errors": shared.connect_errors.load(Ordering::Relaxed),
        "ramp_secs": round(ramp_secs),
        "pairs": plan.pairs,
        "rate_target": plan.rate,
        "duration_secs": plan.duration,
        "events_sent": driven.events_sent,
        "events_accepted": driven.events_accepted,
        "post_errors": driven.post_errors,
        "deliveries": shared.deliveries.load(Ordering::Relaxed),
        "deliveries_per_sec": round(shared.deliveries.load(Ordering::Relaxed) as f64 / duration),
        "latency_ms": {
            "p50": quantile_ms(0.5), "p90": quantile_ms(0.9), "p99": quantile_ms(0.99),
            "p99.9": quantile_ms(0.999), "max": histogram.max() as f64 / 1000.0,
        },
        "updates_lost": lost,
        "closes": *shared.closes.lock().unwrap(),
        "server": {
            "cpu_percent_of_one_core_during_load": load_cpu.map(round),
            "rss_kib_baseline": baseline.map(|s| s.rss_kib),
            "rss_kib_after_connect": after_connect.map(|s| s.rss_kib),
            "rss_kib_peak": peak_rss,
            "rss_growth_bytes_per_connection": per_connection_bytes.map(round),
            // The server's own share of the latency: from the update's production (after its RocksDB write)
            // to its write on the client's socket, from `kline_event_to_push_seconds` (finals included);
            // the upper bound of the histogram bucket holding the quantile.
            "push_latency_ms_at_most": {
                "p50": histogram_bound_ms(&metrics, "kline_event_to_push_seconds", 0.5),
                "p99": histogram_bound_ms(&metrics, "kline_event_to_push_seconds", 0.99),
            },
        },
        // This process (the WebSocket clients and the event driver) shares the machine's cores.
        "load_client": { "cpu_percent_of_one_core_during_load": client_cpu.map(round) },
        "churn": {
            "churners": plan.churners,
            "cycles": churn_counts.cycles.load(Ordering::Relaxed),
            "failures": churn_counts.failures.load(Ordering::Relaxed),
        },
        "after_all_disconnected": {
            "subscriptions_active": gauge("kline_subscriptions_active "),
            "connections_active": gauge("kline_connections_active "),
            "rss_kib": after_run.map(|s| s.rss_kib),
            "feed_lagged_total": gauge("kline_feed_lagged_total "),
            "slow_client_closes_total": gauge("kline_slow_client_closes_total "),
        },
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
    }))
}

/// Upper bound (ms) of the Prometheus histogram bucket `name` holding quantile `q` (None: no samples).
fn histogram_bound_ms(metrics: &str, name: &str, q: f64) -> Option<f64> {
    let prefix = format!("{name}_bucket{{le=\"");
    let buckets: Vec<(f64, u64)> = metrics
        .lines()
        .filter_map(|line| {
            let (bound, count) = line.strip_prefix(&prefix)?.split_once("\"} ")?;
            let bound = if bound == "+Inf" {
                f64::INFINITY
            } else {
                bound.parse().ok()?
            };
            Some((bound, count.trim().parse().ok()?))
        })
        .collect();
    let total = buckets.last()?.1;
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil() as u64;
    buckets
        .iter()
        .find(|(_, cumulative)| *cumulative >= rank)
        .map(|(bound, _)| round(bound * 1000.0))
}

/// Candles a client should have seen in their final state (per the server's history) but did not.
async fn count_lost(
    http: &reqwest::Client,
    base: &str,
    mints: &[String],
    outcomes: &[clients::ClientOutcome],
) -> anyhow::Result<u64> {
    let mut truth = Vec::with_capacity(mints.len());
    for mint in mints {
        let url = format!("{base}/api/v1/klines?symbol={mint}&interval=s1&limit=1000");
        let body: Value = http.get(url).send().await?.json().await?;
        let candles: Vec<(i64, u32)> = body["data"]
            .as_array()
            .map(|list| {
                list.iter()
                    .map(|c| {
                        (
                            c["time"].as_i64().unwrap_or(0),
                            c["update_count"].as_u64().unwrap_or(0) as u32,
                        )
                    })
                    .collect()
            })
            .unwrap_or_default();
        truth.push(candles);
    }
    let mut lost = 0;
    for outcome in outcomes {
        for (time, count) in &truth[outcome.pair] {
            let seen = outcome.candles.get(time).map_or(0, |(c, _)| *c);
            lost += u64::from(seen < *count);
        }
    }
    Ok(lost)
}

async fn ingest(
    http: &reqwest::Client,
    url: &str,
    server: &ServerUnderTest,
    mints: &[Pubkey],
    plan: Scenario,
    baseline: Option<ProcSample>,
) -> anyhow::Result<Value> {
    const BATCH: u64 = 2000;
    const WRITERS: u64 = 4;
    let deadline = Instant::now() + Duration::from_secs(plan.duration);
    let started = Instant::now();
    let mut writers = Vec::new();
    for writer in 0..WRITERS {
        let (http, url, token, mints) = (
            http.clone(),
            url.to_owned(),
            server.token.clone(),
            mints.to_vec(),
        );
        writers.push(tokio::spawn(async move {
            let mut accepted = 0;
            let mut seq = writer << 40;
            while Instant::now() < deadline {
                let body: String = (0..BATCH)
                    .map(|i| {
                        driver::event(
                            seq + i,
                            &mints[((seq + i) % mints.len() as u64) as usize],
                            writer,
                        )
                        .to_json()
                            + "\n"
                    })
                    .collect();
                seq += BATCH;
                accepted += driver::post(&http, &url, &token, body).await.unwrap_or(0);
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for writer in writers {
        accepted += writer.await.unwrap_or(0);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let end = server.sample();
    Ok(json!({
        "scenario": "ingest",
        "events_accepted": accepted,
        "secs": round(elapsed),
        "events_per_sec": round(accepted as f64 / elapsed),
        "note": "end to end through HTTP: JSON encode in the bench, HTTP, JSON parse and validation, RocksDB write of all nine intervals",
        "server": { "cpu_percent_of_one_core": baseline.zip(end).map(|(a, b)| round(cpu_percent(&a, &b))) },
    }))
}

fn round(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn print_table(report: &Value) {
    fn walk(prefix: &str, value: &Value, rows: &mut Vec<(String, String)>) {
        match value {
            Value::Object(map) => {
                for (key, inner) in map {
                    let name = if prefix.is_empty() {
                        key.clone()
                    } else {
                        format!("{prefix}.{key}")
                    };
                    walk(&name, inner, rows);
                }
            }
            other => rows.push((prefix.to_owned(), other.to_string())),
        }
    }
    let mut rows = Vec::new();
    walk("", report, &mut rows);
    let width = rows.iter().map(|(k, _)| k.len()).max().unwrap_or(0);
    for (key, value) in rows {
        println!("{key:width$}  {value}");
    }
}

#[cfg(test)]
mod tests {
    use super::histogram_bound_ms;

    #[test]
    fn the_bucket_holding_the_quantile_gives_its_upper_bound() {
        let metrics = "\
x_seconds_bucket{le=\"0.001\"} 10
x_seconds_bucket{le=\"0.002\"} 90
x_seconds_bucket{le=\"0.005\"} 99
x_seconds_bucket{le=\"+Inf\"} 100
x_seconds_sum 0.2
x_seconds_count 100";
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.5), Some(2.0));
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.99), Some(5.0));
        assert_eq!(histogram_bound_ms(metrics, "x_seconds", 0.1), Some(1.0));
        assert_eq!(histogram_bound_ms("", "x_seconds", 0.5), None);
    }
}
