//! The `ingest` scenario: writers POST batches of events as fast as the server takes them, no subscribers.

use std::time::{Duration, Instant};

use kline_core::event::Pubkey;
use serde_json::{Value, json};

use crate::Plan;
use crate::driver;
use crate::process::{ProcSample, cpu_percent};
use crate::report::round;
use crate::server::ServerUnderTest;

/// How the events are posted: `writers` concurrent POST loops of `batch` events each.
#[derive(Debug, Clone, Copy)]
pub struct Load {
    pub writers: u64,
    pub batch: u64,
}

impl Load {
    /// As fast as the server takes them: four writers of 2000-event batches (the pipeline writes up to
    /// `pipeline.max_batch_events` of them as one group).
    pub const FULL_SPEED: Load = Load {
        writers: 4,
        batch: 2000,
    };
    /// One writer of 5-event batches: one committed group per request, the size of the groups at the
    /// `fanout` load (1,000 events/s).
    pub const SMALL_GROUPS: Load = Load {
        writers: 1,
        batch: 5,
    };
}

pub async fn run(
    http: &reqwest::Client,
    url: &str,
    server: &ServerUnderTest,
    mints: &[Pubkey],
    plan: &Plan,
    baseline: Option<ProcSample>,
    load: Load,
) -> anyhow::Result<Value> {
    let Load { writers, batch } = load;
    let deadline = Instant::now() + Duration::from_secs(plan.duration);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for writer in 0..writers {
        let (http, url, token, mints) = (
            http.clone(),
            url.to_owned(),
            server.token.clone(),
            mints.to_vec(),
        );
        tasks.push(tokio::spawn(async move {
            let mut accepted = 0;
            let mut seq = writer << 40;
            while Instant::now() < deadline {
                let body: String = (0..batch)
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
                seq += batch;
                accepted += driver::post(&http, &url, &token, body).await.unwrap_or(0);
            }
            accepted
        }));
    }
    let mut accepted = 0;
    for task in tasks {
        accepted += task.await.unwrap_or(0);
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
