//! One measured run of a fan-out scenario against one engine (kline, or the nchan reference): open the
//! clients, start the churners and the CPU burners, drive the events, sample the engine from `/proc`, then
//! count what was lost and report. Through an edge (`--through-edge`), the engine is the edge the clients
//! use and the events go to the writer upstream of it, whose history is the truth losses are counted
//! against.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use kline_core::event::Pubkey;
use serde_json::{Value, json};
use tokio_util::sync::CancellationToken;

use crate::burn::CoreBurner;
use crate::clients::{self, ClientOutcome, Wire};
use crate::cluster::StreamCluster;
use crate::driver::{self, DriveOutcome, Feed};
use crate::nchan::NginxNchan;
use crate::process::{ProcessProbe, cpu_percent};
use crate::report::{histogram_bound_ms, metric_value, round};
use crate::server::ServerUnderTest;
use crate::{Plan, churn, trade_watch};

/// The engine under test.
pub enum Engine<'a> {
    /// kline through `/ws`.
    Kline(&'a ServerUnderTest),
    /// kline through its Socket.IO endpoint (namespace `/kline`, websocket transport).
    KlineSocketIo(&'a ServerUnderTest),
    Nchan(&'a NginxNchan),
}

impl Engine<'_> {
    fn name(&self) -> &'static str {
        match self {
            Engine::Kline(_) => "kline",
            Engine::KlineSocketIo(_) => "kline-socketio",
            Engine::Nchan(_) => "nchan",
        }
    }

    fn addr(&self) -> anyhow::Result<SocketAddr> {
        match self {
            Engine::Kline(server) | Engine::KlineSocketIo(server) => server.socket_addr(),
            Engine::Nchan(nginx) => Ok(nginx.addr),
        }
    }

    fn wire(&self, compression: bool) -> Wire {
        match self {
            Engine::Kline(server) => Wire::Kline {
                url: server.ws_url(),
                compression,
            },
            Engine::KlineSocketIo(server) => Wire::SocketIo {
                url: server.socketio_url(),
            },
            Engine::Nchan(nginx) => Wire::Nchan {
                base: format!("ws://{}", nginx.addr),
            },
        }
    }

    fn kline(&self) -> Option<&ServerUnderTest> {
        match self {
            Engine::Kline(server) | Engine::KlineSocketIo(server) => Some(server),
            Engine::Nchan(_) => None,
        }
    }

    fn probe(&self) -> Option<ProcessProbe> {
        match self {
            Engine::Kline(server) | Engine::KlineSocketIo(server) => server.probe(),
            Engine::Nchan(nginx) => Some(nginx.probe()),
        }
    }
}

/// Runs `plan` against `engine`, publishing through `feed`; `upstream`: the writer and Redis feeding the
/// engine, when it is an edge.
pub async fn run(
    engine: &Engine<'_>,
    feed: &mut Feed,
    plan: &Plan,
    mints: &[Pubkey],
    upstream: Option<&StreamCluster>,
) -> anyhow::Result<Value> {
    let probe = engine.probe();
    let sample = || probe.and_then(|p| p.sample());
    let baseline = sample();
    let addr = engine.addr()?;
    let wire = engine.wire(plan.compression);
    let mint_strings: Vec<String> = mints.iter().map(ToString::to_string).collect();
    let max_events = (plan.rate * plan.duration as f64) as usize + 1;
    let shared = clients::Shared::new(max_events);
    let stop = CancellationToken::new();
    let ramp_started = Instant::now();
    let tasks = clients::open(
        addr,
        &wire,
        &mint_strings,
        plan.connections,
        plan.ramp,
        &shared,
        &stop,
    )
    .await;
    let trade_watch = match engine {
        Engine::Kline(_) if plan.trade_watchers => Some(
            trade_watch::TradeWatch::start(
                addr,
                &mint_strings[..plan.pairs.min(mint_strings.len())],
                &shared,
                &stop,
            )
            .await?,
        ),
        _ => None,
    };
    let ramp_secs = ramp_started.elapsed().as_secs_f64();
    let connected = shared.connected.load(Ordering::Relaxed);
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after_connect = sample();

    let churn_counts = Arc::new(churn::ChurnCounts::default());
    let churn_stop = CancellationToken::new();
    let churners = churn::start(
        addr,
        &wire,
        &mint_strings,
        plan.churners,
        &churn_counts,
        &churn_stop,
    );

    // Drive (or hold), sampling the engine once a second, with the burners spinning meanwhile.
    let sampler_stop = CancellationToken::new();
    let sampler = {
        let stop = sampler_stop.clone();
        tokio::spawn(async move {
            let mut samples = Vec::new();
            while !stop.is_cancelled() {
                samples.extend(probe.and_then(|p| p.sample()));
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
            samples.extend(probe.and_then(|p| p.sample()));
            samples
        })
    };
    let load_client = ProcessProbe::single(std::process::id());
    let client_before = load_client.sample();
    let upstream_before = match upstream {
        Some(cluster) => Some(cluster.sample().await),
        None => None,
    };
    let burner = CoreBurner::start(plan.burn_cores);
    // Candles older than this were made by an earlier run on the same server (`--transport both`).
    let first_candle = kline_protocol::response::unix_millis_now().div_euclid(1000);
    let driven = if plan.rate > 0.0 {
        driver::drive(
            feed,
            mints,
            plan.rate,
            Duration::from_secs(plan.duration),
            &shared,
        )
        .await
    } else {
        tokio::time::sleep(Duration::from_secs(plan.duration)).await;
        DriveOutcome::default()
    };
    drop(burner);
    let client_cpu = client_before
        .zip(load_client.sample())
        .map(|(a, b)| cpu_percent(&a, &b));
    let upstream_figures = match upstream.zip(upstream_before) {
        Some((cluster, before)) => Some(before.figures_until(&cluster.sample().await)),
        None => None,
    };
    sampler_stop.cancel();
    let samples = sampler.await.unwrap_or_default();
    let closes_during_load: u64 = shared.closes.lock().unwrap().values().sum();
    // Let the last candles become final and reach everyone.
    if plan.rate > 0.0 {
        tokio::time::sleep(Duration::from_secs(4)).await;
    }
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
    let trade_latency = match trade_watch {
        Some(watch) => Some(watch.finish().await),
        None => None,
    };
    let closes = shared.closes.lock().unwrap().clone();
    if let Some(cluster) = upstream {
        // The edge's last updates reach the clients only once it applied the writer's last groups.
        cluster
            .wait_until_applied(engine.kline().expect("an edge"), Duration::from_secs(60))
            .await?;
    }
    let lost = match engine.kline() {
        Some(server) if plan.rate > 0.0 => {
            let truth = upstream.map_or(server, |cluster| &cluster.writer);
            count_lost_candles(&truth.base_url, &mint_strings, &outcomes, first_candle).await?
        }
        Some(_) => 0,
        None => count_lost_messages(&driven, &outcomes),
    };

    let histogram = shared.latency_us.lock().unwrap().clone();
    let quantile_ms = |q: f64| histogram.value_at_quantile(q) as f64 / 1000.0;
    let load_cpu = samples
        .first()
        .zip(samples.last())
        .map(|(a, b)| cpu_percent(a, b));
    let per_connection_bytes = baseline
        .zip(after_connect)
        .filter(|_| connected > 0)
        .map(|(a, b)| (b.rss_kib as f64 - a.rss_kib as f64) * 1024.0 / connected as f64);
    let duration = plan.duration as f64;
    let deliveries = shared.deliveries.load(Ordering::Relaxed);
    let wire_bytes = shared.wire_bytes.load(Ordering::Relaxed);
    let mut report = json!({
        "engine": engine.name(),
        "connections_requested": plan.connections,
        "connections_subscribed": connected,
        "connections_at_end_of_load": connected.saturating_sub(closes_during_load as usize),
        "connect_errors": shared.connect_errors.load(Ordering::Relaxed),
        "ramp_secs": round(ramp_secs),
        "pairs": plan.pairs,
        "rate_target": plan.rate,
        "duration_secs": plan.duration,
        "burn_cores": plan.burn_cores,
        "events_sent": driven.events_sent,
        "events_accepted": driven.events_accepted,
        "publish_errors": driven.publish_errors,
        "deliveries": deliveries,
        "deliveries_per_sec": round(deliveries as f64 / duration),
        "compression_offered": plan.compression && matches!(engine, Engine::Kline(_)),
        "wire_bytes_received": wire_bytes,
        "wire_bytes_per_delivery": (deliveries > 0).then(|| round(wire_bytes as f64 / deliveries as f64)),
        "latency_ms": {
            "p50": quantile_ms(0.5), "p90": quantile_ms(0.9), "p99": quantile_ms(0.99),
            "p99.9": quantile_ms(0.999), "max": histogram.max() as f64 / 1000.0,
        },
        "updates_lost": lost,
        "closes": closes,
        "closes_total": closes.values().sum::<u64>(),
        "server": {
            "cpu_percent_of_one_core_during_load": load_cpu.map(round),
            "rss_kib_baseline": baseline.map(|s| s.rss_kib),
            "rss_kib_after_connect": after_connect.map(|s| s.rss_kib),
            "rss_kib_peak": samples.iter().map(|s| s.rss_kib).max(),
            "rss_growth_bytes_per_connection": per_connection_bytes.map(round),
        },
        // This process (the WebSocket clients, the event driver, the burners) shares the machine's cores.
        "load_client": { "cpu_percent_of_one_core_during_load": client_cpu.map(round) },
        "churn": {
            "churners": plan.churners,
            "cycles": churn_counts.cycles.load(Ordering::Relaxed),
            "failures": churn_counts.failures.load(Ordering::Relaxed),
        },
        "machine": { "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0) },
    });
    if let Some(trades) = trade_latency {
        report["trade_feed_latency_ms"] = trades;
    }
    if let Some(figures) = upstream_figures {
        report["path"] = json!("events to the writer, Redis stream, clients on one edge");
        report["upstream"] = figures;
    }
    match engine {
        Engine::Kline(server) | Engine::KlineSocketIo(server) => {
            // Every client is gone: the index and the connection count must be back to zero.
            tokio::time::sleep(Duration::from_secs(2)).await;
            let after_run = sample();
            kline_figures(&mut report, server, after_run.map(|s| s.rss_kib)).await?;
        }
        Engine::Nchan(nginx) => {
            report["lost_means"] =
                json!("messages published to a client's channel it never received");
            report["server"]["worker_processes"] = json!(nginx.workers);
            report["server"]["cpu_counts"] = json!("master and workers");
        }
    }
    Ok(report)
}

/// kline's own view from `/metrics` and `/health`: its share of the latency, the feed's lag, the slow
/// clients it closed, and what is left after every client disconnected.
async fn kline_figures(
    report: &mut Value,
    server: &ServerUnderTest,
    rss_after_kib: Option<u64>,
) -> anyhow::Result<()> {
    let http = reqwest::Client::new();
    let metrics = http
        .get(format!("{}/metrics", server.base_url))
        .send()
        .await?
        .text()
        .await?;
    let health: Value = http
        .get(format!("{}/health", server.base_url))
        .send()
        .await?
        .json()
        .await
        .unwrap_or_default();
    let counter = |name: &str| metric_value(&metrics, name).map(|v| v as u64);
    report["lost_means"] =
        json!("candles whose final state (per the server's history) a subscribed client never saw");
    report["events_stored"] = health["pipeline"]["events_accepted"].clone();
    // The server's own share of the latency, as the upper bound of the histogram bucket holding the
    // quantile: from the update's production (after its RocksDB write) to the socket write
    // (`kline_event_to_push_seconds`), and from the event's receipt (`kline_receipt_to_push_seconds`,
    // null on a server that does not have it).
    for (key, name) in [
        ("push_latency_ms_at_most", "kline_event_to_push_seconds"),
        (
            "receipt_to_push_ms_at_most",
            "kline_receipt_to_push_seconds",
        ),
        // Through an edge: from the writer sealing a group to the edge's write of it.
        ("stream_hop_ms_at_most", "kline_stream_hop_seconds"),
    ] {
        report["server"][key] = json!({
            "p50": histogram_bound_ms(&metrics, name, 0.5),
            "p99": histogram_bound_ms(&metrics, name, 0.99),
        });
    }
    report["server"]["feed_lagged_total"] = json!(counter("kline_feed_lagged_total"));
    report["server"]["slow_client_closes_total"] = json!(counter("kline_slow_client_closes_total"));
    report["server"]["updates_replaced_total"] = json!(counter("kline_updates_replaced_total"));
    report["after_all_disconnected"] = json!({
        "subscriptions_active": counter("kline_subscriptions_active"),
        "connections_active": counter("kline_connections_active"),
        "socketio_connections_active": counter("kline_socketio_connections_active"),
        "rss_kib": rss_after_kib,
        "feed_lagged_total": counter("kline_feed_lagged_total"),
        "slow_client_closes_total": counter("kline_slow_client_closes_total"),
    });
    Ok(())
}

/// kline: candles from `first_candle` (Unix s) on that a client should have seen in their final state (per
/// the server's history) but did not.
async fn count_lost_candles(
    base: &str,
    mints: &[String],
    outcomes: &[ClientOutcome],
    first_candle: i64,
) -> anyhow::Result<u64> {
    let http = reqwest::Client::new();
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
        for (time, count) in truth[outcome.pair]
            .iter()
            .filter(|(t, _)| *t >= first_candle)
        {
            let seen = outcome.candles.get(time).map_or(0, |(c, _)| *c);
            lost += u64::from(seen < *count);
        }
    }
    Ok(lost)
}

/// nchan (no aggregation): messages published to a client's channel that it never received.
fn count_lost_messages(driven: &DriveOutcome, outcomes: &[ClientOutcome]) -> u64 {
    outcomes
        .iter()
        .map(|outcome| {
            let published = driven
                .accepted_per_pair
                .get(outcome.pair)
                .copied()
                .unwrap_or(0);
            published.saturating_sub(outcome.messages)
        })
        .sum()
}
