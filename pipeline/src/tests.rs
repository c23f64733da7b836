//! Pipeline tests against a real RocksDB in a temporary directory.

use std::collections::BTreeMap;

use rand::rngs::StdRng;
use rand::seq::{IndexedRandom, SliceRandom};
use rand::{Rng, SeedableRng};

use super::*;
use kline_core::aggregator::CandleState;
use kline_core::event::{EventTime, SpinPetEvent, scaled_price};
use kline_core::simulated_market::SimulatedMarket;
use kline_store::HistoryQuery;

const T0_MS: i64 = 1_764_000_000_000;

struct Harness {
    _dir: tempfile::TempDir,
    pipeline: Pipeline,
    updates: FeedProbe,
}

/// Reads the feed as a hub shard would, watching the given mints at every interval.
struct FeedProbe {
    inbox: Arc<crate::feed::Inbox>,
    read: std::collections::VecDeque<Arc<CandleUpdate>>,
}

impl FeedProbe {
    fn new(feed: &CandleFeed, mints: &[kline_core::event::Pubkey]) -> FeedProbe {
        let inbox = feed.inboxes()[0].clone();
        for mint in mints {
            for interval in Interval::ALL {
                inbox.watch((mint.to_bytes(), interval));
            }
        }
        FeedProbe {
            inbox,
            read: Default::default(),
        }
    }

    fn try_recv(&mut self) -> Result<Arc<CandleUpdate>, &'static str> {
        if self.read.is_empty() {
            self.read.extend(self.inbox.drain().updates);
        }
        self.read.pop_front().ok_or("nothing published")
    }
}

fn harness(intervals: &[Interval]) -> Harness {
    harness_watching(intervals, &[])
}

fn harness_watching(intervals: &[Interval], mints: &[kline_core::event::Pubkey]) -> Harness {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, 100_000);
    let updates = FeedProbe::new(&feed, mints);
    let settings = PipelineSettings {
        intervals: intervals.to_vec(),
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let pipeline = Pipeline::open(store, settings, feed, Arc::default()).unwrap();
    Harness {
        _dir: dir,
        pipeline,
        updates,
    }
}

/// (mint, bucket start) of a candle.
type CandleId = ([u8; 32], i64);

/// An independent reference: candles straight from the definition, over the whole event set.
fn reference_candles(events: &[EventRecord], interval: Interval) -> BTreeMap<CandleId, [f64; 4]> {
    type Position = (i64, u64, u32, u32, [u8; 64]);
    let mut by_candle: BTreeMap<CandleId, Vec<(Position, f64)>> = BTreeMap::new();
    for event in events {
        let Some(raw) = event.event.latest_price() else {
            continue;
        };
        let price = scaled_price(raw, 28).unwrap();
        // The documented order, written out: block time, slot, block position (unknown ones last), event
        // index, signature.
        let meta = &event.meta;
        let key = (
            meta.timestamp.unix_millis(),
            meta.slot,
            meta.tx_index.unwrap_or(u32::MAX),
            meta.event_index,
            meta.signature.to_bytes(),
        );
        let time = interval.bucket_start(event.meta.timestamp.unix_secs());
        by_candle
            .entry((event.event.mint().to_bytes(), time))
            .or_default()
            .push((key, price));
    }
    by_candle
        .into_iter()
        .map(|(candle, mut ticks)| {
            ticks.sort_by_key(|(key, _)| *key);
            let prices: Vec<f64> = ticks.iter().map(|(_, p)| *p).collect();
            let high = prices.iter().copied().fold(f64::MIN, f64::max);
            let low = prices.iter().copied().fold(f64::MAX, f64::min);
            (candle, [prices[0], high, low, *prices.last().unwrap()])
        })
        .collect()
}

/// An independent reference for volumes: per candle, the sums `[tokens, sol, taker buy tokens, taker buy
/// sol]` read from each event's JSON by the field names of the documented rule (docs/protocol.md).
fn reference_volumes(events: &[EventRecord], interval: Interval) -> BTreeMap<CandleId, [u128; 4]> {
    let mut sums: BTreeMap<CandleId, [u128; 4]> = BTreeMap::new();
    for event in events {
        let json = serde_json::to_value(event).unwrap();
        let amount = |field: &str| u128::from(json[field].as_u64().unwrap());
        let (tokens, sol, is_buy) = match json["event_type"].as_str().unwrap() {
            "BuySell" => (
                amount("token_amount"),
                amount("sol_amount"),
                json["is_buy"] == true,
            ),
            "LongShort" => (
                amount("lock_lp_token_amount"),
                amount("lock_lp_sol_amount"),
                json["order_type"] == 1,
            ),
            "FullClose" | "PartialClose" => (
                amount("final_token_amount"),
                amount("final_sol_amount"),
                json["is_close_long"] == false,
            ),
            _ => continue,
        };
        let time = interval.bucket_start(event.meta.timestamp.unix_secs());
        let sum = sums
            .entry((event.event.mint().to_bytes(), time))
            .or_default();
        sum[0] += tokens;
        sum[1] += sol;
        if is_buy {
            sum[2] += tokens;
            sum[3] += sol;
        }
    }
    sums
}

fn stored_series(store: &CandleStore, mint: &[u8; 32], interval: Interval) -> Vec<CandleState> {
    let query = HistoryQuery {
        from: None,
        to: None,
        limit: 1_000_000,
    };
    store.history(mint, interval, query).unwrap().candles
}

#[test]
fn shuffled_and_duplicated_events_give_the_reference_candles_for_every_interval() {
    let mut rng = StdRng::seed_from_u64(99);
    let mut market = SimulatedMarket::new(5, 3);
    // Two hours of events at irregular times, many sharing a timestamp and a slot: in each slot most
    // transactions have a block position (shuffled against their signatures' order), some have none.
    let mut events: Vec<EventRecord> = (0..3000)
        .map(|_| market.next_event(T0_MS + rng.random_range(0..7_200_000) / 4000 * 4000))
        .collect();
    let mut positions: Vec<u32> = (0..events.len() as u32).collect();
    positions.shuffle(&mut rng);
    for (event, position) in events.iter_mut().zip(positions) {
        event.meta.slot = 300_000_000 + (event.meta.timestamp.unix_millis() / 4000) as u64;
        event.meta.tx_index = (position % 5 != 0).then_some(position);
    }
    let originals = events.clone();
    let duplicates: Vec<EventRecord> = events.choose_multiple(&mut rng, 500).cloned().collect();
    events.extend(duplicates);
    events.shuffle(&mut rng);

    let mut h = harness(&Interval::ALL);
    let now = T0_MS + 7_200_000 + 10_000;
    let mut accepted = 0;
    let mut dups = 0;
    for chunk in events.chunks(317) {
        let report = h.pipeline.ingest(&[chunk.to_vec()], now).unwrap()[0];
        accepted += report.accepted;
        dups += report.duplicates;
    }
    assert_eq!((accepted, dups), (3000, 500));

    for interval in Interval::ALL {
        let expected = reference_candles(&originals, interval);
        let volumes = reference_volumes(&originals, interval);
        for mint in market.mints() {
            let mint = mint.to_bytes();
            let stored = stored_series(h.pipeline.store(), &mint, interval);
            let want: Vec<_> = expected.iter().filter(|((m, _), _)| *m == mint).collect();
            assert_eq!(stored.len(), want.len(), "{interval}: number of candles");
            for (candle, ((_, time), ohlc)) in stored.iter().zip(want) {
                assert_eq!(candle.time, *time, "{interval}");
                let v = candle.volume;
                assert_eq!(
                    [v.tokens, v.sol, v.taker_buy_tokens, v.taker_buy_sol],
                    volumes[&(mint, *time)],
                    "{interval} at {time}: volumes"
                );
                assert_eq!(
                    [candle.open, candle.high, candle.low, candle.close],
                    *ohlc,
                    "{interval} at {time}"
                );
                let closed = (time + interval.duration_secs()) * 1000 + 2000 <= now;
                assert_eq!(
                    candle.is_final, closed,
                    "{interval} at {time}: final exactly when past its deadline"
                );
            }
            let counted: u32 = stored.iter().map(|c| c.update_count).sum();
            let events_of_mint = originals
                .iter()
                .filter(|e| e.event.mint().to_bytes() == mint)
                .count();
            assert_eq!(
                counted as usize, events_of_mint,
                "{interval}: update_count sums to the events"
            );
        }
    }
    assert_eq!(h.pipeline.store().count_events().unwrap(), 3000);
}

#[test]
fn open_and_close_of_one_slot_follow_block_positions_not_signatures() {
    let mut market = SimulatedMarket::new(8, 1);
    let mut h = harness(&[Interval::S1]);
    // Three transactions of one slot, one time; signatures sort the opposite way of the block.
    let events: Vec<EventRecord> = (0..3u8)
        .map(|i| {
            let mut event = market.next_event(T0_MS + 200);
            event.meta.slot = 7;
            event.meta.tx_index = Some(u32::from(i) * 10);
            event.meta.signature = kline_core::event::Signature::from_bytes([9 - i; 64]);
            event
        })
        .collect();
    let prices: Vec<f64> = events
        .iter()
        .map(|e| scaled_price(e.event.latest_price().unwrap(), 28).unwrap())
        .collect();
    let mut arrival = events.clone();
    arrival.swap(0, 2);
    h.pipeline.ingest(&[arrival], T0_MS + 300).unwrap();
    let mint = market.mints()[0].to_bytes();
    let candle = stored_series(h.pipeline.store(), &mint, Interval::S1)[0];
    assert_eq!(
        (candle.open, candle.close),
        (prices[0], prices[2]),
        "first and last transaction of the block"
    );
}

#[test]
fn amounts_near_u64_max_are_summed_without_overflow_through_the_store() {
    let mut market = SimulatedMarket::new(12, 1);
    let mut h = harness(&[Interval::M1, Interval::D1]);
    let events: Vec<EventRecord> = (0..4)
        .map(|i| {
            let mut event = market.next_event(T0_MS + i * 1000);
            let price = event.event.latest_price().unwrap();
            event.event = SpinPetEvent::BuySell(kline_core::event::BuySell {
                payer: event.event.mint().clone(),
                mint_account: event.event.mint().clone(),
                is_buy: i % 2 == 0,
                token_amount: u64::MAX - i as u64,
                sol_amount: u64::MAX,
                latest_price: kline_core::event::U128(price),
            });
            event
        })
        .collect();
    h.pipeline.ingest(&[events], T0_MS + 5000).unwrap();
    let mint = market.mints()[0].to_bytes();
    let m = u128::from(u64::MAX);
    for interval in [Interval::M1, Interval::D1] {
        let candle = stored_series(h.pipeline.store(), &mint, interval)[0];
        assert_eq!(
            candle.volume,
            kline_core::aggregator::Volume {
                tokens: 4 * m - 6,
                sol: 4 * m,
                taker_buy_tokens: 2 * m - 2,
                taker_buy_sol: 2 * m,
            },
            "{interval}"
        );
        let wire = candle.to_candle();
        assert_eq!(wire.volume, "73786976294838.206454".parse::<f64>().unwrap());
        assert_eq!(
            wire.quote_volume,
            "73786976294.83820646".parse::<f64>().unwrap()
        );
    }
}

#[test]
fn every_price_event_is_in_its_mints_trade_index_once_in_chain_order_and_pages_back() {
    let mut rng = StdRng::seed_from_u64(5);
    let mut market = SimulatedMarket::new(21, 2);
    let mut events: Vec<EventRecord> = (0..400)
        .map(|i| market.next_event(T0_MS + i / 3 * 400))
        .collect();
    for event in &mut events {
        // Some transactions without a block position: they follow the positioned ones of their slot.
        if rng.random_range(0..4) == 0 {
            event.meta.tx_index = None;
        }
    }
    let originals = events.clone();
    events.shuffle(&mut rng);
    let mut h = harness(&Interval::ALL);
    for chunk in events.chunks(37) {
        h.pipeline.ingest(&[chunk.to_vec()], T0_MS).unwrap();
    }
    h.pipeline
        .ingest(&[originals[..50].to_vec()], T0_MS)
        .unwrap(); // duplicates add nothing
    for mint in market.mints() {
        // Independent order: slot, block position (unknown last), event index, signature.
        let mut expected: Vec<&EventRecord> = originals
            .iter()
            .filter(|e| e.event.mint() == mint && e.event.latest_price().is_some())
            .collect();
        expected.sort_by_key(|e| {
            let m = &e.meta;
            (
                m.slot,
                m.tx_index.unwrap_or(u32::MAX),
                m.event_index,
                m.signature.to_bytes(),
            )
        });
        expected.reverse();
        let mut paged = Vec::new();
        let mut before = None;
        loop {
            let page = h
                .pipeline
                .store()
                .trades(&mint.to_bytes(), before.as_ref(), 7)
                .unwrap();
            before = page.trades.last().map(|t| t.id.clone());
            paged.extend(page.trades);
            if !page.has_more {
                break;
            }
        }
        assert_eq!(paged.len(), expected.len(), "each trade once");
        for (trade, event) in paged.iter().zip(&expected) {
            assert_eq!(trade.signature, event.meta.signature.as_str());
            assert_eq!(trade.symbol, *mint);
            assert_eq!(trade.tx_index, event.meta.tx_index);
            let amounts = event.event.trade_amounts().unwrap();
            assert_eq!(trade.token_amount, amounts.token_amount as f64 / 1e6);
            assert_eq!(trade.sol_amount, amounts.sol_amount as f64 / 1e9);
            assert_eq!(trade.side == kline_protocol::Side::Buy, amounts.is_buy);
            assert_eq!(
                trade.price,
                scaled_price(event.event.latest_price().unwrap(), 28).unwrap()
            );
        }
    }
}

#[test]
fn live_updates_are_published_after_the_write_and_finals_once() {
    let mut market = SimulatedMarket::new(1, 1);
    let mut h = harness_watching(&[Interval::S1, Interval::M1], market.mints());
    let event = market.next_event(T0_MS + 100);
    h.pipeline
        .ingest(&[vec![event.clone()]], T0_MS + 150)
        .unwrap();
    let first = h.updates.try_recv().unwrap();
    assert_eq!(first.symbol, *event.event.mint());
    assert!(!first.candle.is_final);
    assert_eq!(h.updates.try_recv().unwrap().interval, Interval::M1);
    assert!(h.updates.try_recv().is_err());

    // Same event again: nothing changes, nothing is published.
    let report = h.pipeline.ingest(&[vec![event]], T0_MS + 200).unwrap()[0];
    assert_eq!(report.duplicates, 1);
    assert!(h.updates.try_recv().is_err());

    assert_eq!(
        h.pipeline.finalize(T0_MS + 3000).unwrap(),
        1,
        "the s1 candle closes"
    );
    let final_update = h.updates.try_recv().unwrap();
    assert!(final_update.candle.is_final && final_update.interval == Interval::S1);
    assert_eq!(h.pipeline.finalize(T0_MS + 4000).unwrap(), 0);
    assert!(
        h.updates.try_recv().is_err(),
        "a final candle is published once"
    );
}

#[test]
fn a_late_event_corrects_history_but_is_not_pushed() {
    let mut market = SimulatedMarket::new(2, 1);
    let mut h = harness_watching(&[Interval::S1], market.mints());
    let on_time = market.next_event(T0_MS + 500);
    h.pipeline.ingest(&[vec![on_time]], T0_MS + 600).unwrap();
    h.pipeline.finalize(T0_MS + 3000).unwrap();
    while h.updates.try_recv().is_ok() {}

    let mut late = market.next_event(T0_MS + 100);
    late.meta.timestamp = EventTime(T0_MS + 100);
    let report = h.pipeline.ingest(&[vec![late]], T0_MS + 10_000).unwrap()[0];
    assert_eq!((report.accepted, report.late), (1, 1));
    assert!(
        h.updates.try_recv().is_err(),
        "late corrections are not pushed live"
    );
    let mint = market.mints()[0].to_bytes();
    let stored = stored_series(h.pipeline.store(), &mint, Interval::S1);
    assert_eq!(stored.len(), 1);
    assert_eq!(stored[0].update_count, 2);
    assert!(stored[0].is_final);
}

#[test]
fn open_candles_survive_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let settings = PipelineSettings {
        intervals: vec![Interval::M1],
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let mut market = SimulatedMarket::new(3, 1);
    {
        let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
        let feed = CandleFeed::unread();
        let mut pipeline = Pipeline::open(store, settings.clone(), feed, Arc::default()).unwrap();
        pipeline
            .ingest(&[vec![market.next_event(T0_MS + 1000)]], T0_MS + 1000)
            .unwrap();
    }
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, 16);
    let mut updates = FeedProbe::new(&feed, market.mints());
    let mut pipeline = Pipeline::open(store, settings, feed, Arc::default()).unwrap();
    pipeline
        .ingest(&[vec![market.next_event(T0_MS + 2000)]], T0_MS + 2000)
        .unwrap();
    assert_eq!(
        updates.try_recv().unwrap().candle.update_count,
        2,
        "continues the stored open candle"
    );
    assert_eq!(pipeline.finalize(T0_MS + 62_000).unwrap(), 1);
    assert!(updates.try_recv().unwrap().candle.is_final);
}

#[test]
fn history_is_newest_first_limited_and_says_has_more() {
    let mut h = harness(&[Interval::S1]);
    let mut market = SimulatedMarket::new(4, 1);
    let events: Vec<_> = (0..50)
        .map(|i| market.next_event(T0_MS + i * 1000))
        .collect();
    h.pipeline.ingest(&[events], T0_MS + 100_000).unwrap();
    let mint = market.mints()[0].to_bytes();
    let store = h.pipeline.store();
    let t0 = T0_MS / 1000;
    let page = |from, to, limit| {
        store
            .history(&mint, Interval::S1, HistoryQuery { from, to, limit })
            .unwrap()
    };

    let newest = page(None, None, 10);
    assert_eq!(newest.candles.first().unwrap().time, t0 + 40);
    assert_eq!(newest.candles.last().unwrap().time, t0 + 49);
    assert!(newest.has_more);

    let older = page(None, Some(t0 + 40), 10);
    assert_eq!(
        older.candles.last().unwrap().time,
        t0 + 39,
        "`to` is exclusive"
    );
    let ranged = page(Some(t0 + 5), Some(t0 + 8), 10);
    assert_eq!(
        ranged.candles.iter().map(|c| c.time).collect::<Vec<_>>(),
        [t0 + 5, t0 + 6, t0 + 7]
    );
    assert!(!ranged.has_more, "nothing older inside the range");
    assert!(page(Some(t0 + 100), None, 10).candles.is_empty());
}
