use kline_protocol::Interval;

use super::*;
use kline_core::aggregator::{CandleKey, CandleState, OrderKey, PriceTick};

fn write(store: &CandleStore, key: &CandleKey, state: &CandleState) {
    let mut batch = store.batch();
    batch.put_candle(key, state);
    store.write(batch).unwrap();
}

#[test]
fn a_candle_is_in_the_open_index_from_its_first_state_to_its_final_one_with_its_latest_state() {
    let dir = tempfile::tempdir().unwrap();
    let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
    let key = CandleKey::containing([3; 32], Interval::M1, 1_700_000_000_000);
    let tick = |i: u32| PriceTick {
        mint: [3; 32],
        price: 1.0 + f64::from(i),
        key: OrderKey {
            ts_ms: 1_700_000_000_000 + i64::from(i),
            ..OrderKey::default()
        },
        trade: kline_core::event::TradeAmounts::default(),
    };
    let mut state = CandleState::first(key.time, &tick(0));
    write(&store, &key, &state);
    for i in 1..5 {
        state.apply(&tick(i));
        write(&store, &key, &state);
    }
    let open = store.open_candles().unwrap();
    assert_eq!(open.len(), 1);
    assert_eq!((open[0].1.update_count, open[0].1.close), (5, 5.0));

    state.is_final = true;
    write(&store, &key, &state);
    assert!(
        store.open_candles().unwrap().is_empty(),
        "a final candle leaves the index"
    );
}

#[test]
fn an_event_whose_signature_shares_only_the_head_of_a_stored_one_is_not_that_event() {
    let dir = tempfile::tempdir().unwrap();
    let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
    let stored =
        kline_core::simulated_market::SimulatedMarket::new(9, 1).next_event(1_700_000_000_000);
    let mut batch = store.batch();
    batch.put_event(&stored);
    store.write(batch).unwrap();

    let mut other = stored.id();
    other.signature[keys::SIGNATURE_HEAD] ^= 1;
    assert_eq!(keys::event_key(&other), keys::event_key(&stored.id()));
    assert_eq!(
        store.events_exist(&[stored.id(), other]).unwrap(),
        [true, false]
    );
    assert_eq!(store.event(&other).unwrap(), None);
    assert_eq!(store.event(&stored.id()).unwrap(), Some(stored));
}

/// An edge of this version fed by a writer still on the whole-signature keys (its stream records and its
/// snapshots carry its keys) stores events and trades in this layout, where its readers look.
#[test]
fn replicated_entries_of_a_whole_signature_writer_are_stored_in_this_layout() {
    use replication::Replicated;
    let dir = tempfile::tempdir().unwrap();
    let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
    let mut market = kline_core::simulated_market::SimulatedMarket::new(9, 1);
    let mint = market.mints()[0].to_bytes();
    let price_event = |market: &mut kline_core::simulated_market::SimulatedMarket, time| loop {
        let event = market.next_event(time);
        if event.event.latest_price().is_some() && event.event.mint().to_bytes() == mint {
            return event;
        }
    };
    let (streamed, snapshotted) = (
        price_event(&mut market, 1_700_000_000_000),
        price_event(&mut market, 1_700_000_001_000),
    );
    let mut batch = store.batch();
    // A stream record: the trade and its event, under the writer's (whole-signature) keys.
    let value = TradeValue::encode(1.5, 1_700_000_000_000);
    batch.put_replicated_trade(
        &keys::legacy_trade_key(&mint, &streamed.trade_position()),
        &value,
        &keys::legacy_event_key(&streamed.id()),
        &streamed.to_json(),
    );
    // A snapshot's entries, raw.
    let record = kline_core::event::stored::test_support::encode_without_signature(&snapshotted);
    batch.put_replicated(
        Replicated::Events,
        &keys::legacy_event_key(&snapshotted.id()),
        &record,
    );
    batch.put_replicated(
        Replicated::Trades,
        &keys::legacy_trade_key(&mint, &snapshotted.trade_position()),
        &TradeValue::encode(2.5, 1_700_000_001_000),
    );
    store.write(batch).unwrap();

    assert_eq!(store.key_lengths(CF_EVENTS), [keys::EVENT_KEY_LEN; 2]);
    assert_eq!(store.key_lengths(CF_TRADES), [keys::TRADE_KEY_LEN; 2]);
    let ids = [streamed.id(), snapshotted.id()];
    assert_eq!(store.events_exist(&ids).unwrap(), [true, true]);
    let trades = store.trades(&mint, None, 10).unwrap().trades;
    assert_eq!(trades.len(), 2);
    assert_eq!((trades[0].price, trades[1].price), (2.5, 1.5));
}
