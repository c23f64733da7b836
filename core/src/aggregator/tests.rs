use std::convert::Infallible;

use super::*;

const MINT: [u8; 32] = [7; 32];
const T0_MS: i64 = 1_700_000_100_000; // a minute boundary

fn tick(ts_ms: i64, price: f64) -> PriceTick {
    PriceTick {
        mint: MINT,
        price,
        key: OrderKey {
            ts_ms,
            ..OrderKey::default()
        },
        trade: crate::event::TradeAmounts::default(),
    }
}

fn no_store(_: &CandleKey) -> Result<Option<CandleState>, Infallible> {
    Ok(None)
}

fn apply(aggregator: &mut Aggregator, tick: PriceTick, now_ms: i64) -> TickOutcome {
    aggregator.apply(&tick, now_ms, &mut no_store).unwrap()
}

#[test]
fn one_tick_touches_every_configured_interval() {
    let mut aggregator = Aggregator::new(&Interval::ALL, 2000);
    apply(&mut aggregator, tick(T0_MS + 500, 1.0), T0_MS + 500);
    let changes = aggregator.take_changes();
    assert_eq!(changes.len(), 9);
    assert!(
        changes
            .iter()
            .all(|c| c.publish && c.state.update_count == 1 && !c.state.is_final)
    );
    assert!(
        aggregator.take_changes().is_empty(),
        "changes are handed out once"
    );
}

#[test]
fn candles_become_final_after_end_plus_grace_and_are_published_once() {
    let mut aggregator = Aggregator::new(&[Interval::S1], 2000);
    apply(&mut aggregator, tick(T0_MS + 100, 1.0), T0_MS + 100);
    aggregator.take_changes();
    assert_eq!(aggregator.next_deadline(), Some(T0_MS + 3000));
    assert_eq!(aggregator.finalize_due(T0_MS + 2999), 0);
    assert_eq!(aggregator.finalize_due(T0_MS + 3000), 1);
    let changes = aggregator.take_changes();
    assert_eq!(changes.len(), 1);
    assert!(changes[0].publish && changes[0].state.is_final);
    assert_eq!(aggregator.finalize_due(T0_MS + 10_000), 0, "finalized once");
    assert_eq!(aggregator.open_count(), 0);
}

#[test]
fn an_event_within_grace_still_updates_the_open_candle() {
    let mut aggregator = Aggregator::new(&[Interval::S1], 2000);
    apply(&mut aggregator, tick(T0_MS + 100, 1.0), T0_MS + 100);
    apply(&mut aggregator, tick(T0_MS + 1100, 3.0), T0_MS + 1100);
    let outcome = apply(&mut aggregator, tick(T0_MS + 900, 2.0), T0_MS + 2500);
    assert_eq!(outcome.late_intervals, 0);
    let changes = aggregator.take_changes();
    let first = changes.iter().find(|c| c.key.time * 1000 == T0_MS).unwrap();
    assert_eq!((first.state.close, first.state.update_count), (2.0, 2));
    assert!(first.publish);
}

#[test]
fn a_late_event_corrects_the_final_candle_without_publishing() {
    let mut aggregator = Aggregator::new(&[Interval::S1], 2000);
    apply(&mut aggregator, tick(T0_MS + 100, 1.0), T0_MS + 100);
    aggregator.finalize_due(T0_MS + 5000);
    aggregator.take_changes();
    let stored = CandleState {
        is_final: true,
        ..CandleState::first(T0_MS / 1000, &tick(T0_MS + 100, 1.0))
    };
    let mut load = |_: &CandleKey| -> Result<_, Infallible> { Ok(Some(stored)) };
    let outcome = aggregator
        .apply(&tick(T0_MS + 50, 0.5), T0_MS + 6000, &mut load)
        .unwrap();
    assert_eq!(outcome.late_intervals, 1);
    let changes = aggregator.take_changes();
    assert_eq!(changes.len(), 1);
    let change = changes[0];
    assert!(!change.publish && change.state.is_final);
    assert_eq!(
        (
            change.state.open,
            change.state.low,
            change.state.update_count
        ),
        (0.5, 0.5, 2)
    );
}

#[test]
fn two_late_events_in_one_batch_both_count() {
    let mut aggregator = Aggregator::new(&[Interval::M1], 0);
    let now = T0_MS + 3_600_000;
    apply(&mut aggregator, tick(T0_MS + 1, 1.0), now);
    apply(&mut aggregator, tick(T0_MS + 2, 2.0), now);
    let changes = aggregator.take_changes();
    assert_eq!(changes.len(), 1);
    assert_eq!(changes[0].state.update_count, 2);
    assert_eq!((changes[0].state.open, changes[0].state.close), (1.0, 2.0));
}

#[test]
fn restored_open_candles_continue_and_finalize() {
    let mut aggregator = Aggregator::new(&[Interval::M1], 2000);
    let key = CandleKey::containing(MINT, Interval::M1, T0_MS);
    aggregator.restore([(key, CandleState::first(key.time, &tick(T0_MS, 5.0)))]);
    apply(&mut aggregator, tick(T0_MS + 10, 6.0), T0_MS + 10);
    let changes = aggregator.take_changes();
    assert_eq!(changes[0].state.update_count, 2);
    assert_eq!(aggregator.finalize_due(T0_MS + 62_000), 1);
}
