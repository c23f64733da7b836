use kline_protocol::Interval;

use super::*;
use crate::aggregator::{CandleKey, CandleState, OrderKey, PriceTick};

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
        trade: crate::event::TradeAmounts::default(),
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
