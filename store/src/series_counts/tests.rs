//! The kept counts against the candles themselves: after writes, rewrites, retention and on a store from
//! before the counts existed.

use kline_protocol::Interval;

use super::*;
use crate::HistoryQuery;
use crate::test_support::{MINT, candle, write_series};
use kline_core::aggregator::CandleKey;

fn open(dir: &std::path::Path) -> CandleStore {
    CandleStore::open_at(dir, false, 64).unwrap()
}

fn assert_kept(store: &CandleStore, mint: [u8; 32], interval: Interval) -> u64 {
    let kept = store.series_count(&mint, interval).unwrap();
    let counted = store.count_series_candles(&mint, interval).unwrap();
    assert_eq!(kept, counted, "the kept count is the series' length");
    let (kept_buckets, counted_buckets) = store.bucket_counts(&mint, interval);
    assert_eq!(
        kept_buckets, counted_buckets,
        "each bucket's count is right"
    );
    kept
}

#[test]
fn new_candles_count_once_and_newer_states_of_stored_ones_not_at_all() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_series(&store, MINT, Interval::S1, 0..100, 7);
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 100);
    // Newer states of stored candles, and a key twice in one batch with a new one.
    let mut batch = store.batch();
    for time in [10, 20, 20, 100, 100] {
        let key = CandleKey {
            mint: MINT,
            interval: Interval::S1,
            time,
        };
        batch.put_candle(&key, &candle(time, 3));
    }
    store.write(batch).unwrap();
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 101);
    // Another interval and another mint are other series.
    write_series(&store, MINT, Interval::M1, (0..5).map(|i| i * 60), 100);
    write_series(&store, [8; 32], Interval::S1, 0..3, 100);
    assert_eq!(assert_kept(&store, MINT, Interval::M1), 5);
    assert_eq!(assert_kept(&store, [8; 32], Interval::S1), 3);
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 101);
    assert_eq!(store.series_count(&[9; 32], Interval::S1).unwrap(), 0);
}

#[test]
fn a_replicated_candle_counts_like_one_the_pipeline_wrote() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    let key = CandleKey {
        mint: MINT,
        interval: Interval::S1,
        time: 5,
    };
    for _ in 0..2 {
        let mut batch = store.batch();
        batch.put_replicated(
            crate::replication::Replicated::Candles,
            &crate::keys::candle_key(&key),
            &crate::codec::encode_candle(&candle(5, 1)),
        );
        store.write(batch).unwrap();
    }
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 1);
}

#[test]
fn retention_lowers_the_count_by_what_it_deleted_chunk_after_chunk() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_series(&store, MINT, Interval::S1, 0..10_000, 1000);
    write_series(&store, [8; 32], Interval::S1, 0..10, 1000);
    assert!(store.prune_series(&MINT, Interval::S1, 9_000).unwrap());
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 1_000);
    assert!(
        !store.prune_series(&MINT, Interval::S1, 9_000).unwrap(),
        "nothing left in range"
    );
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 1_000);
    assert_eq!(
        assert_kept(&store, [8; 32], Interval::S1),
        10,
        "the next series is untouched"
    );
    // Pruned candles written again (a late event) count again.
    write_series(&store, MINT, Interval::S1, 0..5, 1000);
    assert_eq!(assert_kept(&store, MINT, Interval::S1), 1_005);
}

#[test]
fn writes_and_retention_at_once_keep_the_count_exact() {
    let dir = tempfile::tempdir().unwrap();
    let store = std::sync::Arc::new(open(dir.path()));
    let writer = {
        let store = store.clone();
        // Old candles (late events, inside the range retention deletes) and new ones, interleaved.
        std::thread::spawn(move || {
            for round in 0..1000i64 {
                write_series(&store, MINT, Interval::S1, [round, 100_000 + round], 2);
            }
        })
    };
    for _ in 0..1000 {
        store.prune_series(&MINT, Interval::S1, 50_000).unwrap();
    }
    writer.join().unwrap();
    assert_kept(&store, MINT, Interval::S1);
}

#[test]
fn a_store_from_before_the_counts_gets_them_built_once_at_open() {
    let dir = tempfile::tempdir().unwrap();
    {
        // The families of a store written before `series_counts` existed, holding two series.
        let mut options = rocksdb::Options::default();
        options.create_if_missing(true);
        options.create_missing_column_families(true);
        let old = [
            "events",
            "candles",
            "open_candles",
            "symbols",
            "meta",
            "trades",
            "outbox",
        ];
        let db = rocksdb::DB::open_cf(&options, dir.path(), old).unwrap();
        let candles = db.cf_handle("candles").unwrap();
        for (mint, n) in [(MINT, 2_500), ([8; 32], 3)] {
            for time in 0..n {
                let key = CandleKey {
                    mint,
                    interval: Interval::S15,
                    time: time * 15,
                };
                db.put_cf(
                    candles,
                    crate::keys::candle_key(&key),
                    crate::codec::encode_candle(&candle(time * 15, 1)),
                )
                .unwrap();
            }
        }
    }
    let store = open(dir.path());
    assert_eq!(assert_kept(&store, MINT, Interval::S15), 2_500);
    assert_eq!(assert_kept(&store, [8; 32], Interval::S15), 3);
    write_series(&store, MINT, Interval::S15, [1_000_000], 1);
    drop(store);
    let store = open(dir.path());
    assert_eq!(
        assert_kept(&store, MINT, Interval::S15),
        2_501,
        "built once: a reopened store keeps its counts"
    );
}

#[test]
fn a_deep_page_is_read_from_the_nearer_end() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_series(&store, MINT, Interval::S1, 0..10_000, 5000);
    let page = |newest_first, offset, limit| {
        let before = store.candles_read();
        let page = store
            .series_page(&MINT, Interval::S1, newest_first, offset, limit)
            .unwrap();
        let times: Vec<i64> = page.candles.iter().map(|c| c.time).collect();
        (page.total, times, store.candles_read() - before)
    };
    assert_eq!(
        page(true, 0, 3),
        (10_000, vec![9_999, 9_998, 9_997], 3),
        "page one reads its candles"
    );
    assert_eq!(
        page(true, 9_998, 5),
        (10_000, vec![1, 0], 2),
        "the oldest page of time_desc is read from the oldest end"
    );
    assert_eq!(
        page(false, 9_990, 3),
        (10_000, vec![9_990, 9_991, 9_992], 10)
    );
    assert_eq!(page(false, 4_000, 2).1, vec![4_000, 4_001]);
    assert_eq!(page(true, 5_000, 2).1, vec![4_999, 4_998]);
    assert_eq!(page(true, 10_000, 5), (10_000, vec![], 0));
    let history = store
        .history(
            &MINT,
            Interval::S1,
            HistoryQuery {
                from: None,
                to: None,
                limit: 2,
            },
        )
        .unwrap();
    assert_eq!(history.candles.len(), 2);
}

#[test]
fn candles_after_pages_forward_from_a_time() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    write_series(&store, MINT, Interval::S1, (0..10).map(|i| i * 2), 100);
    let (page, next) = store.candles_after(&MINT, Interval::S1, 5, 3).unwrap();
    let times: Vec<i64> = page.iter().map(|c| c.time).collect();
    assert_eq!((times, next), (vec![6, 8, 10], Some(11)));
    let (page, next) = store.candles_after(&MINT, Interval::S1, 11, 5).unwrap();
    let times: Vec<i64> = page.iter().map(|c| c.time).collect();
    assert_eq!((times, next), (vec![12, 14, 16, 18], None));
}

#[test]
fn a_page_deep_in_a_long_series_steps_over_at_most_one_bucket() {
    let dir = tempfile::tempdir().unwrap();
    let store = open(dir.path());
    // 200,000 s15 candles with a gap: buckets of 4,096 slots, some partly empty.
    let times = (0..200_000i64)
        .filter(|i| !(50_000..60_000).contains(i))
        .map(|i| i * 15);
    write_series(&store, MINT, Interval::S15, times.clone(), 50_000);
    let expected: Vec<i64> = times.collect();
    let total = expected.len();
    assert_eq!(assert_kept(&store, MINT, Interval::S15) as usize, total);
    for (newest_first, offset) in [(false, 70_000), (true, 70_000), (false, 95_000), (true, 1)] {
        let before = store.candles_read();
        let page = store
            .series_page(&MINT, Interval::S15, newest_first, offset, 10)
            .unwrap();
        let read = store.candles_read() - before;
        let times: Vec<i64> = page.candles.iter().map(|c| c.time).collect();
        let want: Vec<i64> = if newest_first {
            expected
                .iter()
                .rev()
                .skip(offset)
                .take(10)
                .copied()
                .collect()
        } else {
            expected.iter().skip(offset).take(10).copied().collect()
        };
        assert_eq!(times, want, "newest_first {newest_first}, offset {offset}");
        assert!(
            read < BUCKET_SLOTS as u64 + 10,
            "{read} candles read for a page at {offset} of {total}"
        );
    }
    // Retention cuts into a bucket: the counts and the pages stay right.
    store
        .prune_series(&MINT, Interval::S15, 30_001 * 15)
        .unwrap();
    assert_kept(&store, MINT, Interval::S15);
    let page = store
        .series_page(&MINT, Interval::S15, false, 40_000, 2)
        .unwrap();
    let times: Vec<i64> = page.candles.iter().map(|c| c.time).collect();
    let kept: Vec<i64> = expected
        .iter()
        .copied()
        .filter(|t| *t >= 30_001 * 15)
        .collect();
    assert_eq!(times, kept[40_000..40_002]);
}
