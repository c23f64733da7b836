//! Names through the pipeline, against a real RocksDB: stored in the write of their `TokenCreated` event,
//! carried in the writer's group record, added to the directory after the write; and the one-time index
//! of an older store goes through the outbox too.

use std::sync::Arc;

use kline_protocol::Interval;

use crate::feed::CandleFeed;
use crate::{Pipeline, PipelineSettings};
use kline_core::event::{EventTime, SpinPetEvent};
use kline_core::simulated_market::SimulatedMarket;
use kline_store::CandleStore;
use kline_store::replication::StreamStatus;
use kline_store::replication::outbox::Outbox;
use kline_store::replication::record::GroupRecord;

const T0_MS: i64 = 1_764_000_000_000;

fn writer(store: &Arc<CandleStore>, feed: &CandleFeed) -> Pipeline {
    let settings = PipelineSettings {
        intervals: vec![Interval::S1, Interval::H1],
        finality_grace_ms: 2000,
        price_scale_decimals: 28,
    };
    let outbox = Outbox::open(store, 100, Arc::new(StreamStatus::default())).unwrap();
    Pipeline::open(store.clone(), settings, feed.clone(), Arc::default())
        .unwrap()
        .with_outbox(outbox)
}

fn records(store: &CandleStore) -> Vec<GroupRecord> {
    store
        .outbox_from(0, 100, usize::MAX)
        .unwrap()
        .iter()
        .map(|(_, bytes)| GroupRecord::decode(bytes).unwrap())
        .collect()
}

#[test]
fn a_hostile_name_is_stored_sanitised_in_its_events_write_sent_to_edges_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, 100);
    feed.names().reload(&store).unwrap();
    let mut pipeline = writer(&store, &feed);
    let market = SimulatedMarket::new(3, 1);
    let mut created = market.token_created(0, T0_MS);
    let SpinPetEvent::TokenCreated(token) = &mut created.event else {
        unreachable!()
    };
    token.name = format!("<script>alert(1)</script>\u{1b}[31m{}", "x".repeat(10_240));
    token.symbol = "\u{202E}EVIL\u{0}".into();
    pipeline.ingest(&[vec![created.clone()]], T0_MS).unwrap();

    let mint = market.mints()[0].to_bytes();
    let stored = store.name(&mint).unwrap().expect("stored with its event");
    assert_eq!(stored.ticker.as_ref().unwrap().as_str(), "EVIL");
    let name = stored.name.as_ref().unwrap().as_str();
    assert!(
        name.starts_with("<script>alert(1)</script>[31mxx"),
        "{name}"
    );
    assert_eq!(name.chars().count(), kline_protocol::token::MAX_NAME_CHARS);
    assert_eq!(feed.names().get(&mint).as_deref(), Some(&stored));
    let [record] = records(&store).try_into().unwrap();
    assert_eq!(record.names.len(), 1);
    assert_eq!(
        kline_store::names::decode_name(&record.names[0].value).unwrap(),
        stored
    );

    // The same event again is a duplicate: nothing is written.
    pipeline.ingest(&[vec![created]], T0_MS + 1).unwrap();
    assert_eq!(records(&store).len(), 1);
}

#[test]
fn an_older_store_is_indexed_once_through_the_outbox() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let market = SimulatedMarket::new(5, 2);
    let mut old = store.batch();
    for index in 0..2 {
        old.put_event(&market.token_created(index, T0_MS));
    }
    store.write(old).unwrap();
    let feed = CandleFeed::new(1, 100);
    feed.names().reload(&store).unwrap();
    let mut pipeline = writer(&store, &feed);
    assert_eq!(pipeline.index_stored_names().unwrap(), 2);
    assert_eq!(pipeline.index_stored_names().unwrap(), 0);
    assert_eq!(feed.names().len(), 2);
    let [record] = records(&store).try_into().unwrap();
    assert_eq!(record.names.len(), 2, "the edges get the indexed names");
}

#[test]
fn a_late_hourly_candle_puts_its_series_in_the_ticker_inbox_resync() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(CandleStore::open_at(dir.path(), false, 64).unwrap());
    let feed = CandleFeed::new(1, 100);
    feed.tickers().watch_interval(Interval::H1);
    let mut pipeline = writer(&store, &feed);
    let mut market = SimulatedMarket::new(8, 1);
    let mut late = market.next_event(T0_MS);
    late.meta.timestamp = EventTime(T0_MS - 7_200_000);
    pipeline.ingest(&[vec![late]], T0_MS).unwrap();
    let drained = feed.tickers().drain();
    let mint = market.mints()[0].to_bytes();
    assert!(drained.updates.is_empty(), "late: not pushed live");
    assert_eq!(
        drained.resync,
        [(
            (mint, Interval::H1),
            (T0_MS - 7_200_000) / 1000 / 3600 * 3600
        )]
    );
}
