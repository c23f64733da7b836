//! Storage benchmarks (run with `cargo bench -p kline-server --bench store`):
//!
//! - ingest: events/s through `Pipeline::ingest` into RocksDB with all nine intervals, in batches of 4096
//!   (what the pipeline thread's group commit writes), WAL on, sync off and sync on;
//! - history: latency of "the newest 1000 candles" for a series with 1k and with 1M stored candles.
//!
//! Prints medians of several runs. Not a test: numbers depend on the machine.

use std::sync::Arc;
use std::time::Instant;

use kline_core::aggregator::{CandleKey, CandleState, OrderKey, PriceTick};
use kline_core::simulated_market::SimulatedMarket;
use kline_pipeline::{Pipeline, PipelineSettings};
use kline_protocol::Interval;
use kline_store::{CandleStore, HistoryQuery};

const BATCH: usize = 4096;

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn ingest_rate(events: usize, sync: bool) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), sync, 256).unwrap());
    let feed = kline_pipeline::feed::CandleFeed::unread();
    let settings = PipelineSettings {
        intervals: Interval::ALL.to_vec(),
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let mut pipeline = Pipeline::open(store, settings, feed, Arc::default()).unwrap();
    let mut market = SimulatedMarket::new(1, 100);
    let start_ms = kline_protocol::response::unix_millis_now();
    // Timestamps advance at 50k events/s of simulated time, so candles open and close as in real traffic.
    let all: Vec<_> = (0..events)
        .map(|i| market.next_event(start_ms + (i / 50) as i64))
        .collect();
    let batches: Vec<Vec<_>> = all.chunks(BATCH).map(<[_]>::to_vec).collect();
    let begin = Instant::now();
    for (i, batch) in batches.iter().enumerate() {
        let now = start_ms + (i * BATCH / 50) as i64;
        pipeline.ingest(std::slice::from_ref(batch), now).unwrap();
    }
    events as f64 / begin.elapsed().as_secs_f64()
}

fn fill_series(store: &CandleStore, mint: [u8; 32], candles: usize) {
    let mut batch = store.batch();
    for i in 0..candles {
        let key = CandleKey {
            mint,
            interval: Interval::S1,
            time: 1_700_000_000 + i as i64,
        };
        let tick = PriceTick {
            mint,
            price: 1e-7,
            key: OrderKey::default(),
            trade: Default::default(),
        };
        let mut state = CandleState::first(key.time, &tick);
        state.is_final = true;
        batch.put_candle(&key, &state);
        if i % 100_000 == 99_999 {
            store
                .write(std::mem::replace(&mut batch, store.batch()))
                .unwrap();
        }
    }
    store.write(batch).unwrap();
    store.flush().unwrap();
}

fn history_latency_us(store: &CandleStore, mint: [u8; 32]) -> f64 {
    let query = HistoryQuery {
        from: None,
        to: None,
        limit: 1000,
    };
    let samples: Vec<f64> = (0..500)
        .map(|_| {
            let begin = Instant::now();
            let page = store.history(&mint, Interval::S1, query).unwrap();
            assert_eq!(page.candles.len(), 1000);
            begin.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    median(samples)
}

fn main() {
    let runs = 3;
    let nosync: Vec<f64> = (0..runs).map(|_| ingest_rate(200_000, false)).collect();
    println!(
        "ingest, 9 intervals, WAL on, sync off: median {:.0} events/s over {runs} runs of 200k (runs: {:?})",
        median(nosync.clone()),
        nosync.iter().map(|r| r.round()).collect::<Vec<_>>()
    );
    let sync: Vec<f64> = (0..runs).map(|_| ingest_rate(40_000, true)).collect();
    println!(
        "ingest, 9 intervals, WAL on, sync on:  median {:.0} events/s over {runs} runs of 40k (runs: {:?})",
        median(sync.clone()),
        sync.iter().map(|r| r.round()).collect::<Vec<_>>()
    );

    let dir = tempfile::tempdir().unwrap();
    let store = CandleStore::open_at(dir.path(), false, 256).unwrap();
    let (small, large) = ([1u8; 32], [2u8; 32]);
    fill_series(&store, small, 1_000);
    fill_series(&store, large, 1_000_000);
    let small_us = history_latency_us(&store, small);
    let large_us = history_latency_us(&store, large);
    println!(
        "history, newest 1000 candles: median {small_us:.0} µs with 1k stored, {large_us:.0} µs with 1M stored (ratio {:.2})",
        large_us / small_us
    );
}
