//! The `stream` scenario (issue 16): what the writer → Redis → edge stream carries.
//!
//! 1. **Without the stream**: the `ingest` load (four writers POSTing batches of 2000 events as fast as
//!    they are taken) for `duration` seconds against a plain server (`node.role = "all"`), as the baseline.
//! 2. **Publish**: the same load against a writer publishing to redis-server, with no edge running. Reports
//!    the events/s it took, and how long until Redis acknowledged every committed group (the publisher's
//!    backlog when the load stops).
//!
//! Steps 2 and 3 run twice, each with a new writer and Redis: at full speed (`full_speed`: four writers of
//! 2000-event requests, so the pipeline commits groups of thousands of events) and in small groups
//! (`small_groups`: one writer of 5-event requests, one group each, the size of the groups at the `fanout`
//! load), because an edge's cost per candle update depends on how many events share a group.
//!
//! 3. **Apply**: then an edge starts with an empty replica and no snapshot source, so it must apply the
//!    whole stream the writer filled. Candle updates applied per second: the edge's
//!    `kline_stream_candle_updates_applied_total` from its first `/metrics` answer until its applied group
//!    number reaches the writer's (so the process start is not counted; a stream applied before the first
//!    answer is timed from the start instead).

use std::time::{Duration, Instant};

use anyhow::bail;
use kline_core::event::Pubkey;
use serde_json::{Value, json};

use crate::Plan;
use crate::cluster::{StreamCluster, metric};
use crate::ingest::{self, Load};
use crate::process::cpu_percent;
use crate::report::round;
use crate::server::ServerUnderTest;

/// How long the publisher may take to drain, and an edge to apply everything, before the run fails.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(600);
/// The edge's count of candle states written to its replica.
const APPLIED_UPDATES: &str = "kline_stream_candle_updates_applied_total";

pub async fn run(
    http: &reqwest::Client,
    plan: &Plan,
    mints: &[Pubkey],
    extra: &[String],
) -> anyhow::Result<Value> {
    let without_stream = {
        let server = ServerUnderTest::start(extra)?;
        let url = format!("{}/api/v1/events", server.base_url);
        ingest::run(
            http,
            &url,
            &server,
            mints,
            plan,
            server.sample(),
            Load::FULL_SPEED,
        )
        .await?
    };
    let full_speed = through_stream(http, plan, mints, extra, Load::FULL_SPEED).await?;
    let small_groups = through_stream(http, plan, mints, extra, Load::SMALL_GROUPS).await?;
    let ratio = full_speed["publish"]["events_per_sec"]
        .as_f64()
        .zip(without_stream["events_per_sec"].as_f64())
        .filter(|(_, base)| *base > 0.0)
        .map(|(ours, base)| round(ours / base));
    Ok(json!({
        "scenario": "stream",
        "duration_secs": plan.duration,
        "pairs": plan.pairs,
        "without_stream": {
            "events_per_sec": without_stream["events_per_sec"],
            "server_cpu_percent_of_one_core": without_stream["server"]["cpu_percent_of_one_core"],
        },
        "publish_ratio_to_without_stream": ratio,
        "full_speed": full_speed,
        "small_groups": small_groups,
    }))
}

/// Fills a new writer's stream with `load` for the run's duration, then times an empty edge applying it.
async fn through_stream(
    http: &reqwest::Client,
    plan: &Plan,
    mints: &[Pubkey],
    extra: &[String],
    load: Load,
) -> anyhow::Result<Value> {
    // The stream keeps every group of the run, so the edge below can only apply it, not skip it.
    let keep_all = ["--set".to_owned(), "stream.max_len=10000000".to_owned()];
    let cluster = StreamCluster::start(extra, &keep_all)?;
    let url = format!("{}/api/v1/events", cluster.writer.base_url);
    let started = Instant::now();
    let redis_before = cluster.redis_probe().and_then(|p| p.sample());
    let into_writer = ingest::run(
        http,
        &url,
        &cluster.writer,
        mints,
        plan,
        cluster.writer.sample(),
        load,
    )
    .await?;
    let ingest_secs = started.elapsed().as_secs_f64();
    let groups = cluster.wait_until_published(DRAIN_TIMEOUT).await?;
    let published_secs = started.elapsed().as_secs_f64();
    let redis_cpu = redis_before
        .zip(cluster.redis_probe().and_then(|p| p.sample()))
        .map(|(a, b)| round(cpu_percent(&a, &b)));
    let updates = metric(&cluster.writer, "kline_candle_updates_published_total").await?;
    let bytes = metric(&cluster.writer, "kline_stream_published_bytes_total").await?;
    let events = into_writer["events_accepted"].as_f64().unwrap_or(0.0);

    let edge_started = Instant::now();
    let edge = cluster.start_edge(false)?;
    let first = (
        Instant::now(),
        metric(&edge, APPLIED_UPDATES).await?,
        edge.sample(),
    );
    cluster.wait_until_applied(&edge, DRAIN_TIMEOUT).await?;
    let end = (
        Instant::now(),
        metric(&edge, APPLIED_UPDATES).await?,
        edge.sample(),
    );
    let apply_secs = end.0.duration_since(edge_started).as_secs_f64();
    // From the first answer, unless the edge had applied everything by then.
    let (from, applied_before, edge_cpu) = if first.1 < end.1 {
        let cpu = first.2.zip(end.2).map(|(a, b)| cpu_percent(&a, &b));
        (first.0, first.1, cpu)
    } else {
        let cpu = end.2.map(|s| s.cpu_secs / apply_secs * 100.0);
        (edge_started, 0.0, cpu)
    };
    let measured_secs = end.0.duration_since(from).as_secs_f64();
    let snapshots = metric(&edge, "kline_stream_snapshots_loaded").await?;
    if snapshots > 0.0 {
        bail!(
            "the edge loaded a snapshot instead of applying the stream: the apply figure would be wrong"
        );
    }
    Ok(json!({
        "load": { "writers": load.writers, "events_per_request": load.batch },
        "publish": {
            "events_accepted": into_writer["events_accepted"],
            "events_per_sec": into_writer["events_per_sec"],
            "writer_cpu_percent_of_one_core": into_writer["server"]["cpu_percent_of_one_core"],
            "groups": groups,
            "candle_updates_in_stream": updates,
            "bytes_in_stream": bytes,
            "bytes_per_group": round(bytes / groups as f64),
            // A group carries its events' trades and stored events too, not only candles.
            "bytes_per_event": (events > 0.0).then(|| round(bytes / events)),
            "secs_until_all_published": round(published_secs),
            "backlog_secs_after_load": round(published_secs - ingest_secs),
            "events_per_sec_published": round(events / published_secs),
            "groups_per_sec_published": round(groups as f64 / published_secs),
            "redis_cpu_percent_of_one_core": redis_cpu,
        },
        "apply": {
            "note": "an edge with an empty replica, started after the load, applies every group of the stream",
            "secs_from_edge_start": round(apply_secs),
            "secs_measured": round(measured_secs),
            "candle_updates_applied": end.1,
            "candle_updates_per_sec": round((end.1 - applied_before) / measured_secs),
            "groups_per_sec_from_edge_start": round(groups as f64 / apply_secs),
            "edge_cpu_percent_of_one_core": edge_cpu.map(round),
        },
    }))
}
