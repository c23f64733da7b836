//! The simulator source: drives [`SimulatedMarket`] in real time at `source.simulator.events_per_sec`,
//! first emitting one `TokenCreated` event per mint, so names take the path real ones take (the same event
//! identity every start, so a restart adds none). Everything it produces is labelled as simulated in logs
//! and `/health`.

use std::time::Duration;

use kline_config::SimulatorConfig;
use kline_core::clock::now_ms;
use kline_core::event::EventRecord;
use kline_core::simulated_market::SimulatedMarket;
use tokio_util::sync::CancellationToken;

use kline_pipeline::service::{IngestError, IngestHandle};

/// Emits simulated events at `config.events_per_sec` until `shutdown`.
pub async fn run(config: SimulatorConfig, ingest: IngestHandle, shutdown: CancellationToken) {
    let mut market = SimulatedMarket::new(config.seed, config.mints);
    tracing::warn!(
        mints = config.mints,
        events_per_sec = config.events_per_sec,
        seed = config.seed,
        "SIMULATED events: the simulator source is on; these are not real Spin Pet trades"
    );
    let created = (0..market.mints().len())
        .map(|index| market.token_created(index, now_ms()))
        .collect();
    tokio::select! {
        _ = shutdown.cancelled() => return,
        () = store(&ingest, created) => {}
    }
    let tick = Duration::from_millis(50);
    let per_tick = config.events_per_sec * tick.as_secs_f64();
    let mut owed = 0.0;
    let mut interval = tokio::time::interval(tick);
    interval.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = interval.tick() => {}
        }
        owed += per_tick;
        let count = owed.floor() as usize;
        if count == 0 {
            continue;
        }
        owed -= count as f64;
        let now = now_ms();
        let events = (0..count).map(|_| market.next_event(now)).collect();
        tokio::select! {
            _ = shutdown.cancelled() => break,
            () = store(&ingest, events) => {}
        }
    }
    tracing::info!("simulator stopped");
}

/// Stores `events`; while the store refuses writes (the disk full), pauses for as long as the pipeline
/// says and tries the same events again, so the market does not move on without them.
async fn store(ingest: &IngestHandle, events: Vec<EventRecord>) {
    let mut paused = false;
    loop {
        match ingest.submit(events.clone()).await {
            Ok(_) => break,
            Err(IngestError::Unavailable {
                reason,
                retry_after_ms,
            }) => {
                if !std::mem::replace(&mut paused, true) {
                    tracing::warn!(%reason, "simulator: storage unavailable; pausing until it takes writes");
                }
                tokio::time::sleep(Duration::from_millis(retry_after_ms.max(50))).await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "simulator could not store events");
                break;
            }
        }
    }
    if paused {
        tracing::info!("simulator: storage takes writes again");
    }
}
