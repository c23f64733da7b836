//! Provisional candles: price events pushed live before their block position is known.
//!
//! A source that learns an event's place in its block later than the event itself (the Solana source:
//! `getBlock` answers after the notification) hands the event over twice: first *provisionally*, with an
//! estimated time and no position, so subscribers see its price at once; then *for good*, with its block's
//! time and position, through the ordinary write path. Provisional events are never stored. This module
//! keeps them and answers what a candle looks like with them ([`ProvisionalTicks::view`]): the stored
//! (confirmed) state plus every provisional tick of that candle. Because a candle's state does not depend
//! on the order its events are applied in (open and close go by [`kline_core::aggregator::OrderKey`]),
//! confirmed ⊕ provisional is what the candle will be once the positions are known, up to the corrections
//! those positions bring.
//!
//! When the event comes for good it leaves this set ([`ProvisionalTicks::confirm`]) and the candles it
//! touched are published again: the corrective update, with the block's open and close.
//!
//! - Final candles never take provisional ticks, and a candle that becomes final drops its own
//!   ([`ProvisionalTicks::forget_candle`]): a final candle is exactly the stored one.
//! - Bounded: at most `max_events` provisional events (overflow policy: a newer event is not pushed
//!   provisionally; it is pushed when it is stored), each kept at most `ttl_ms` (an event never confirmed,
//!   e.g. from a transaction that did not land, then leaves its candles, which are published again).
//! - A candle made of provisional ticks only that loses them all (the estimated time fell in another
//!   bucket than the block's) is not published again: the protocol has no retraction. It is counted
//!   (`orphaned`); history and the next reconnect show the right candles.

use std::collections::{HashMap, VecDeque};

use kline_protocol::Interval;

use kline_core::aggregator::{CandleKey, CandleState, PriceTick};
use kline_core::event::EventId;

/// Limits of the provisional set (from `[pipeline]`).
#[derive(Debug, Clone, Copy)]
pub struct ProvisionalLimits {
    pub max_events: usize,
    pub ttl_ms: i64,
}

impl ProvisionalLimits {
    /// The defaults of `config/default.toml`.
    pub const DEFAULT: ProvisionalLimits = ProvisionalLimits {
        max_events: 100_000,
        ttl_ms: 60_000,
    };
}

struct Entry {
    tick: PriceTick,
    /// The candles it is part of (one per interval whose candle was not final).
    candles: Vec<CandleKey>,
    added_ms: i64,
}

pub struct ProvisionalTicks {
    limits: ProvisionalLimits,
    entries: HashMap<EventId, Entry>,
    by_candle: HashMap<CandleKey, Vec<EventId>>,
    /// Arrival order, for expiry (entries confirmed since are skipped).
    arrivals: VecDeque<(i64, EventId)>,
    /// Provisional-only candles that lost every tick (see the module docs).
    pub orphaned: u64,
}

impl ProvisionalTicks {
    pub fn new(limits: ProvisionalLimits) -> ProvisionalTicks {
        ProvisionalTicks {
            limits,
            entries: HashMap::new(),
            by_candle: HashMap::new(),
            arrivals: VecDeque::new(),
            orphaned: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// Adds `tick` of event `id` to the candles of `intervals` for which `open` says yes. Returns the
    /// candles it joined (empty if the event is already provisional, or the set is full).
    pub fn add(
        &mut self,
        id: EventId,
        tick: PriceTick,
        intervals: &[Interval],
        now_ms: i64,
        open: impl Fn(&CandleKey) -> bool,
    ) -> Vec<CandleKey> {
        if self.entries.contains_key(&id) || self.entries.len() >= self.limits.max_events {
            return Vec::new();
        }
        let candles: Vec<CandleKey> = intervals
            .iter()
            .map(|&interval| CandleKey::containing(tick.mint, interval, tick.key.ts_ms))
            .filter(|key| open(key))
            .collect();
        for key in &candles {
            self.by_candle.entry(*key).or_default().push(id);
        }
        self.entries.insert(
            id,
            Entry {
                tick,
                candles: candles.clone(),
                added_ms: now_ms,
            },
        );
        self.arrivals.push_back((now_ms, id));
        candles
    }

    /// Event `id` came for good: it leaves the set. Returns the candles it left.
    pub fn confirm(&mut self, id: &EventId) -> Vec<CandleKey> {
        let Some(entry) = self.entries.remove(id) else {
            return Vec::new();
        };
        for key in &entry.candles {
            if let Some(ids) = self.by_candle.get_mut(key) {
                ids.retain(|other| other != id);
                if ids.is_empty() {
                    self.by_candle.remove(key);
                }
            }
        }
        entry.candles
    }

    /// Drops the entries older than the time to live. Returns the candles they left.
    pub fn expire(&mut self, now_ms: i64) -> Vec<CandleKey> {
        let mut left = Vec::new();
        while let Some(&(added, id)) = self.arrivals.front() {
            if added + self.limits.ttl_ms > now_ms {
                break;
            }
            self.arrivals.pop_front();
            if self.entries.get(&id).is_some_and(|e| e.added_ms == added) {
                left.extend(self.confirm(&id));
            }
        }
        if self.entries.is_empty() {
            self.arrivals.clear();
        }
        left
    }

    /// `key` became final: its provisional ticks no longer count for it.
    pub fn forget_candle(&mut self, key: &CandleKey) {
        for id in self.by_candle.remove(key).unwrap_or_default() {
            if let Some(entry) = self.entries.get_mut(&id) {
                entry.candles.retain(|candle| candle != key);
            }
        }
    }

    /// Whether `key` has provisional ticks.
    pub fn touches(&self, key: &CandleKey) -> bool {
        self.by_candle.contains_key(key)
    }

    /// The candle as subscribers should see it: `confirmed` (the stored state, if any) with every
    /// provisional tick of `key` applied. `None` if there is neither (an orphan, counted).
    pub fn view(
        &mut self,
        key: &CandleKey,
        confirmed: Option<&CandleState>,
    ) -> Option<CandleState> {
        let ticks = self
            .by_candle
            .get(key)
            .into_iter()
            .flatten()
            .filter_map(|id| self.entries.get(id).map(|entry| &entry.tick));
        let mut state = confirmed.copied();
        for tick in ticks {
            match &mut state {
                Some(state) => state.apply(tick),
                None => state = Some(CandleState::first(key.time, tick)),
            }
        }
        if state.is_none() {
            self.orphaned += 1;
        }
        state
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_core::aggregator::OrderKey;

    fn tick(price: f64, ts_ms: i64, slot: u64) -> PriceTick {
        PriceTick {
            mint: [1; 32],
            price,
            key: OrderKey::new(ts_ms, slot, None, 0, &[slot as u8; 64]),
            trade: Default::default(),
        }
    }

    fn id(n: u8) -> EventId {
        EventId {
            signature: [n; 64],
            event_index: 0,
        }
    }

    const LIMITS: ProvisionalLimits = ProvisionalLimits {
        max_events: 2,
        ttl_ms: 1000,
    };

    #[test]
    fn a_view_is_the_confirmed_candle_with_the_provisional_ticks() {
        let mut set = ProvisionalTicks::new(LIMITS);
        let joined = set.add(
            id(1),
            tick(5.0, 10_500, 7),
            &[Interval::S1, Interval::M1],
            0,
            |_| true,
        );
        assert_eq!(joined.len(), 2);
        let s1 = joined[0];
        let confirmed = CandleState::first(10, &tick(3.0, 10_000, 6));
        let view = set.view(&s1, Some(&confirmed)).unwrap();
        assert_eq!((view.open, view.high, view.close), (3.0, 5.0, 5.0));
        assert_eq!(view.update_count, 2);
        // Confirmed for good: the view is the confirmed candle alone again.
        assert_eq!(set.confirm(&id(1)), joined);
        assert_eq!(set.view(&s1, Some(&confirmed)), Some(confirmed));
        assert!(set.is_empty());
    }

    #[test]
    fn bounded_by_count_and_by_age() {
        let mut set = ProvisionalTicks::new(LIMITS);
        assert!(
            !set.add(id(1), tick(1.0, 0, 1), &[Interval::S1], 0, |_| true)
                .is_empty()
        );
        assert!(
            !set.add(id(2), tick(2.0, 0, 2), &[Interval::S1], 500, |_| true)
                .is_empty()
        );
        assert!(
            set.add(id(3), tick(3.0, 0, 3), &[Interval::S1], 600, |_| true)
                .is_empty(),
            "full"
        );
        assert_eq!(set.expire(1000).len(), 1, "the first is a second old");
        assert_eq!(set.len(), 1);
        assert_eq!(set.expire(1500).len(), 1);
        assert!(set.is_empty());
    }

    #[test]
    fn final_candles_take_no_ticks_and_orphans_are_counted() {
        let mut set = ProvisionalTicks::new(LIMITS);
        let joined = set.add(
            id(1),
            tick(1.0, 0, 1),
            &[Interval::S1, Interval::M1],
            0,
            |key| key.interval == Interval::M1,
        );
        assert_eq!(joined.len(), 1);
        let m1 = joined[0];
        set.forget_candle(&m1);
        assert!(!set.touches(&m1));
        assert_eq!(set.view(&m1, None), None);
        assert_eq!(set.orphaned, 1);
    }
}
