//! `soak`: the `fanout` load (real server, real WebSocket clients, HTTP ingest at `--rate`) for a long
//! `--duration` with a short retention, sampled every `--sample-every`: the data directory on disk, the
//! server's RSS and open descriptors, its pipeline queue, the clients' p50 and p99 over each window. Writes
//! `soak.csv` (a row per sample), `soak.svg` (a panel per series) and `soak.json` (the plan and the
//! verdicts) to `--out`, and prints whether each series plateaued ([`series`] says how that is judged).
//!
//! - [`retention`]: the `[retention]` keys passed to the server, and durations on the command line.
//! - [`sampler`]: one sample of the running server; [`series`]: the table, the CSV and the verdicts;
//!   [`plot`]: the picture.

pub mod plot;
pub mod retention;
pub mod sampler;
pub mod series;

use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Context;
use kline_core::event::Pubkey;
use kline_core::simulated_market::SimulatedMarket;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use self::retention::{Retention, format_duration};
use self::sampler::Sampler;
use self::series::{Sample, Verdict};
use crate::clients::{self, Shared, Wire};
use crate::driver::{self, DriveOutcome, Feed};
use crate::server::ServerUnderTest;

/// What a soak does.
#[derive(Debug, Clone)]
pub struct SoakPlan {
    pub connections: usize,
    pub pairs: usize,
    /// Events per second.
    pub rate: f64,
    pub duration: Duration,
    pub sample_every: Duration,
    pub retention: Retention,
    /// `retention.check_every`.
    pub check_every: Duration,
    pub ramp: usize,
    pub events_per_request: Option<u64>,
    /// Extra `--set key=value` for the server (after the retention's, so they win).
    pub server_set: Vec<String>,
    /// `/metrics` series sampled as extra CSV columns.
    pub extra_metrics: Vec<String>,
    pub out: PathBuf,
}

impl SoakPlan {
    /// Warm-up before the plateau is judged: one retention window (nothing is deleted before it), or a
    /// quarter of the run without retention.
    fn warm_up(&self) -> Duration {
        self.retention.window().unwrap_or(self.duration / 4)
    }

    fn title(&self) -> String {
        format!(
            "kline soak: {} events/s, {} clients on {} pairs, retention {} (checked every {}), {}",
            self.rate,
            self.connections,
            self.pairs,
            self.retention,
            format_duration(self.check_every),
            format_duration(self.duration),
        )
    }
}

pub async fn run(plan: &SoakPlan) -> anyhow::Result<()> {
    std::fs::create_dir_all(&plan.out)
        .with_context(|| format!("creating {}", plan.out.display()))?;
    let mut extra = plan.retention.server_overrides(plan.check_every);
    extra.extend(
        plan.server_set
            .iter()
            .flat_map(|s| ["--set".to_owned(), s.clone()]),
    );
    let server = ServerUnderTest::start(&extra).context(
        "starting the server (a server without the [retention] keys rejects them: --retention none)",
    )?;
    let (Some(pid), Some(data_dir)) = (server.pid, server.data_dir()) else {
        anyhow::bail!("the soak samples the server it starts");
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mints: Vec<Pubkey> = SimulatedMarket::new(99, plan.pairs).mints().to_vec();
    let mint_strings: Vec<String> = mints.iter().map(ToString::to_string).collect();
    let shared = Shared::new((plan.rate * plan.duration.as_secs_f64()) as usize + 1);
    let stop = CancellationToken::new();
    let wire = Wire::Kline {
        url: server.ws_url(),
        compression: false,
    };
    let tasks = clients::open(
        server.socket_addr()?,
        &wire,
        &mint_strings,
        plan.connections,
        plan.ramp,
        &shared,
        &stop,
    )
    .await;
    eprintln!(
        "{}: {} of {} clients subscribed; samples every {} s to {}",
        plan.title(),
        shared.connected.load(Ordering::Relaxed),
        plan.connections,
        plan.sample_every.as_secs_f64(),
        plan.out.display(),
    );
    let http = reqwest::Client::new();
    let sampler = Sampler::new(
        http.clone(),
        server.base_url.clone(),
        pid,
        data_dir,
        shared.clone(),
        plan.extra_metrics.clone(),
    );
    let sampling_stop = CancellationToken::new();
    let sampling = tokio::spawn(sample_until(
        sampler,
        plan.sample_every,
        sampling_stop.clone(),
    ));
    let mut feed = Feed::Ingest {
        http,
        url: format!("{}/api/v1/events", server.base_url),
        token: server.token.clone(),
        events_per_request: plan.events_per_request,
    };
    let driven = driver::drive(&mut feed, &mints, plan.rate, plan.duration, &shared).await;
    sampling_stop.cancel();
    let samples = sampling.await.context("the sampler panicked")?;
    stop.cancel();
    for task in tasks {
        let _ = task.await;
    }
    let closes = shared.closes.lock().unwrap().clone();
    drop(server);

    let verdicts = series::plateaus(&samples, plan.warm_up());
    write_outputs(plan, &samples, &verdicts, &driven, &closes)?;
    print_summary(plan, &verdicts, &driven);
    Ok(())
}

/// Samples at once, then every `every` until `stop`, then once more unless the last sample is less than
/// half a period old (a window that short says little); prints a line per sample.
async fn sample_until(
    mut sampler: Sampler,
    every: Duration,
    stop: CancellationToken,
) -> Vec<Sample> {
    let started = Instant::now();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut samples: Vec<Sample> = Vec::new();
    loop {
        let stopping = tokio::select! {
            _ = tick.tick() => false,
            _ = stop.cancelled() => true,
        };
        let elapsed = started.elapsed();
        let recent = samples
            .last()
            .is_some_and(|last| elapsed.saturating_sub(last.elapsed) < every / 2);
        if stopping && recent {
            return samples;
        }
        let sample = sampler.sample(elapsed).await;
        eprintln!("{}", progress_line(&sample));
        samples.push(sample);
        if stopping {
            return samples;
        }
    }
}

fn progress_line(s: &Sample) -> String {
    let opt = |v: Option<f64>, digits: usize| v.map_or("-".to_owned(), |v| format!("{v:.digits$}"));
    format!(
        "{:6.2} min  disk {:8.1} MB  rss {:7.1} MB  fds {:>6}  queued {:>3}  events/s {:>7}  p50 {:>7} ms  p99 {:>7} ms",
        s.elapsed.as_secs_f64() / 60.0,
        s.disk_bytes as f64 / 1_048_576.0,
        s.rss_kib.map_or(0.0, |kib| kib as f64 / 1024.0),
        s.open_fds.map_or("-".to_owned(), |n| n.to_string()),
        opt(s.queued_batches, 0),
        opt(s.events_per_sec, 0),
        opt(s.latency_p50_ms, 1),
        opt(s.latency_p99_ms, 1),
    )
}

fn write_outputs(
    plan: &SoakPlan,
    samples: &[Sample],
    verdicts: &[Verdict],
    driven: &DriveOutcome,
    closes: &std::collections::BTreeMap<String, u64>,
) -> anyhow::Result<()> {
    let csv = plan.out.join("soak.csv");
    let mut file = std::io::BufWriter::new(std::fs::File::create(&csv)?);
    series::write_csv(&mut file, &plan.extra_metrics, samples)?;
    std::io::Write::flush(&mut file)?;
    let svg = plan.out.join("soak.svg");
    plot::draw(&svg, &plan.title(), samples, plan.retention.window())?;
    let summary = json!({
        "scenario": "soak",
        "title": plan.title(),
        "connections": plan.connections,
        "pairs": plan.pairs,
        "rate_target": plan.rate,
        "duration_secs": plan.duration.as_secs(),
        "sample_every_secs": plan.sample_every.as_secs_f64(),
        "retention": plan.retention.to_string(),
        "retention_check_every": format_duration(plan.check_every),
        "warm_up_secs": plan.warm_up().as_secs(),
        "events_sent": driven.events_sent,
        "events_accepted": driven.events_accepted,
        "publish_errors": driven.publish_errors,
        "closes": closes,
        "samples": samples.len(),
        "plateau": verdicts.iter().map(|v| json!({
            "series": v.label,
            "unit": v.unit,
            "first_window_mean": v.first_mean,
            "last_window_mean": v.last_mean,
            "plateaued": v.plateaued,
        })).collect::<Vec<_>>(),
    });
    std::fs::write(
        plan.out.join("soak.json"),
        serde_json::to_string_pretty(&summary)?,
    )?;
    eprintln!("wrote {}, {} and soak.json", csv.display(), svg.display());
    Ok(())
}

fn print_summary(plan: &SoakPlan, verdicts: &[Verdict], driven: &DriveOutcome) {
    println!("{}", plan.title());
    println!(
        "events sent {}, accepted {}, failed requests {}",
        driven.events_sent, driven.events_accepted, driven.publish_errors
    );
    println!(
        "plateau: last window's mean within tolerance of the first window after a {} warm-up",
        format_duration(plan.warm_up())
    );
    println!(
        "{:24} {:>14} {:>14} {:>9}  plateaued",
        "series", "first window", "last window", "change"
    );
    for v in verdicts {
        let cell = |m: Option<f64>| m.map_or("-".to_owned(), |m| format!("{m:.1} {}", v.unit));
        let change = v
            .first_mean
            .zip(v.last_mean)
            .filter(|(first, _)| *first > 0.0)
            .map_or("-".to_owned(), |(first, last)| {
                format!("{:+.0}%", (last / first - 1.0) * 100.0)
            });
        let verdict = match v.plateaued {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "run too short",
        };
        println!(
            "{:24} {:>14} {:>14} {:>9}  {verdict}",
            v.label,
            cell(v.first_mean),
            cell(v.last_mean),
            change
        );
    }
}
