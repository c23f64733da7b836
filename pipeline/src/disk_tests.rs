//! The store's bytes on disk and what retention leaves of them, measured through the real pipeline.

use std::sync::Arc;
use std::time::Duration;

use kline_protocol::Interval;

use kline_store::sweeper::{prune_once, sweep_slices};
use kline_store::test_support::{event_entries, write_as_legacy};
use kline_store::{CandleStore, HistoryQuery, SWEPT_FAMILIES};

use crate::{Pipeline, PipelineSettings};
use kline_config::{Keep, RetentionConfig};
use kline_core::event::{SpinPetEvent, stored};
use kline_core::simulated_market::SimulatedMarket;

const NOW_MS: i64 = 1_764_000_000_000;

fn open(dir: &std::path::Path) -> (Arc<CandleStore>, Pipeline) {
    let store = Arc::new(CandleStore::open_at(dir, false, 64).unwrap());
    let settings = PipelineSettings {
        intervals: Interval::ALL.to_vec(),
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let feed = crate::feed::CandleFeed::unread();
    let pipeline = Pipeline::open(store.clone(), settings, feed, Arc::default()).unwrap();
    (store, pipeline)
}

/// `count` events of the kinds `keep` accepts for 100 mints, 1,000 per second of event time ending at
/// `end_ms`, ingested in groups of 500 (as the pipeline's group commit writes them).
fn ingest(
    pipeline: &mut Pipeline,
    count: usize,
    end_ms: i64,
    keep: impl Fn(&SpinPetEvent) -> bool,
) {
    let mut market = SimulatedMarket::new(11, 100);
    let start_ms = end_ms - count as i64;
    let mut events = Vec::with_capacity(count);
    while events.len() < count {
        let event = market.next_event(start_ms + events.len() as i64);
        if keep(&event.event) {
            events.push(event);
        }
    }
    for (i, group) in events.chunks(500).enumerate() {
        let now = start_ms + ((i + 1) * 500) as i64;
        pipeline.ingest(&[group.to_vec()], now).unwrap();
    }
}

fn bytes_on_disk(store: &CandleStore) -> u64 {
    store.compact_all().unwrap();
    let families = store.family_bytes().unwrap();
    for family in &families {
        eprintln!("  {:>13}: {:>10} bytes", family.family, family.on_disk);
    }
    families.iter().map(|family| family.on_disk).sum()
}

/// Measured: 226 bytes (events 166, trades 44, candles 15), against 319 with whole signatures in both keys and
/// LZ4 only, and ~760 with JSON events and uncompressed families (docs/operations.md, "Sizing"). Guards
/// issue 23's target, 250.
#[test]
fn a_buy_sell_event_takes_at_most_250_bytes_on_disk_after_compaction() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut pipeline) = open(dir.path());
    let count = 50_000;
    ingest(&mut pipeline, count, NOW_MS, |event| {
        matches!(event, SpinPetEvent::BuySell(_))
    });
    let total = bytes_on_disk(&store);
    let per_event = total as f64 / count as f64;
    eprintln!("{count} BuySell events, all nine intervals: {per_event:.1} bytes per event");
    assert!(per_event <= 250.0, "{per_event:.1} bytes per event");
}

fn short_retention(period: Duration) -> RetentionConfig {
    RetentionConfig {
        events: Keep::For(period),
        trades: Keep::For(period),
        candles: Interval::ALL
            .iter()
            .map(|&i| (i, Keep::For(period)))
            .collect(),
        check_every: period / 8,
    }
}

#[test]
fn retention_removes_old_events_trades_and_candles_and_the_disk_shrinks() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut pipeline) = open(dir.path());
    // 40 s of events at 1,000/s; keep the newest 10 s.
    ingest(&mut pipeline, 40_000, NOW_MS, |_| true);
    let created = event_entries(&store)
        .filter(|item| stored::is_token_created(&item.as_ref().unwrap().1))
        .count();
    let before_bytes = bytes_on_disk(&store);
    let before_events = store.count_events().unwrap();
    let mint = SimulatedMarket::new(11, 100).mints()[0].to_bytes();
    let before_trades = store.trades(&mint, None, 100_000).unwrap().trades.len();

    let config = short_retention(Duration::from_secs(10));
    let cutoff_ms = NOW_MS - 10_000;
    let report = prune_once(&store, &config, NOW_MS).unwrap();
    assert!(report.trades_pruned > 20_000, "{report:?}");
    assert!(report.series_pruned > 0, "{report:?}");
    let slices = sweep_slices(&config);
    for slice in 0..slices {
        for family in SWEPT_FAMILIES {
            store.compact_slice(family, slice, slices).unwrap();
        }
    }

    let trades = store.trades(&mint, None, 100_000).unwrap().trades;
    assert!(!trades.is_empty() && trades.len() * 2 < before_trades);
    assert!(trades.iter().all(|trade| trade.time >= cutoff_ms));
    let mut kept_events = 0;
    for item in event_entries(&store) {
        let (_, value) = item.unwrap();
        let time = stored::time_ms(&value).unwrap();
        assert!(
            time >= cutoff_ms || stored::is_token_created(&value),
            "an expired event survived the sweep"
        );
        kept_events += 1;
    }
    assert!(
        kept_events < before_events / 2,
        "{kept_events} of {before_events}"
    );
    assert!(kept_events >= 9_000);
    let s1 = store
        .history(
            &mint,
            Interval::S1,
            HistoryQuery {
                from: None,
                to: None,
                limit: 1000,
            },
        )
        .unwrap()
        .candles;
    assert!(!s1.is_empty() && s1.iter().all(|candle| candle.time + 1 >= cutoff_ms / 1000));
    let after_bytes = bytes_on_disk(&store);
    eprintln!("{before_bytes} bytes before, {after_bytes} after ({created} TokenCreated events)");
    assert!(
        after_bytes * 2 < before_bytes,
        "the disk shrinks: {before_bytes} → {after_bytes}"
    );
}

#[test]
fn sweeps_take_a_quarter_of_the_shortest_retention_within_bounds() {
    let mut config = short_retention(Duration::from_secs(120));
    config.check_every = Duration::from_secs(10);
    assert_eq!(sweep_slices(&config), 3);
    config.events = Keep::Forever;
    config.trades = Keep::Forever;
    config.candles.clear();
    assert_eq!(sweep_slices(&config), 1, "nothing to sweep");
    config.events = Keep::For(Duration::from_secs(30 * 86_400));
    config.check_every = Duration::from_secs(600);
    assert_eq!(sweep_slices(&config), 144, "a day's sweep at most");
}

/// A store of the legacy layout (every event and trade) is rewritten when opened, reads the same, and
/// shrinks. Prints the rewrite's rate (docs/operations.md, "Upgrading a store from whole-signature keys").
#[test]
fn a_legacy_store_is_rewritten_once_when_opened_and_reads_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (store, mut pipeline) = open(dir.path());
    let count = 20_000;
    ingest(&mut pipeline, count, NOW_MS, |_| true);
    let market = SimulatedMarket::new(11, 100);
    let trades_of = |store: &CandleStore| -> Vec<_> {
        market
            .mints()
            .iter()
            .map(|mint| {
                store
                    .trades(&mint.to_bytes(), None, 100_000)
                    .unwrap()
                    .trades
            })
            .collect()
    };
    let before = trades_of(&store);
    let new_bytes = bytes_on_disk(&store);
    write_as_legacy(&store);
    let legacy_bytes = bytes_on_disk(&store);
    drop(pipeline);
    drop(store);

    let started = std::time::Instant::now();
    let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
    let elapsed = started.elapsed();
    assert_eq!(trades_of(&store), before);
    let rewritten_bytes = bytes_on_disk(&store);
    eprintln!(
        "{count} events: legacy store {legacy_bytes} bytes, rewritten in {elapsed:?} \
         ({:.0} events/s) to {rewritten_bytes} bytes (written new: {new_bytes})",
        count as f64 / elapsed.as_secs_f64()
    );
    assert!(rewritten_bytes < legacy_bytes);
    assert_eq!(store.upgrade_layout().unwrap(), Default::default());
}
