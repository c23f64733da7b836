//! The `ingest` scenario: writers POST batches of events as fast as the server takes them, no subscribers.

use std::time::{Duration, Instant};

use kline_server::event::Pubkey;
use serde_json::{Value, json};

use crate::Plan;
use crate::driver;
use crate::process::{ProcSample, cpu_percent};
use crate::report::round;
use crate::server::ServerUnderTest;

pub async fn run(
    http: &reqwest::Client,
    url: &str,
    server: &ServerUnderTest,
    mints: &[Pubkey],
    plan: &Plan,
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
