//! The aggregator: keeps every open candle in memory and turns price ticks into candle changes.
//!
//! It owns no I/O. Candles it has not seen (after a restart, or a late event for a closed bucket) are read
//! through a loader the caller passes in, and the changes of a batch are handed back with
//! [`Aggregator::take_changes`] for the caller to store and publish. The pipeline is its only owner.
//!
//! A candle is *open* until wall-clock time passes its bucket end plus the finality grace; then
//! [`Aggregator::finalize_due`] marks it final (published once, with `is_final`). An event for a bucket that
//! is already final is *late*: it corrects the stored candle but is not published live.

mod candle_state;

use std::collections::{BTreeSet, HashMap};

use kline_protocol::Interval;

pub use candle_state::{CandleKey, CandleState, NO_TX_INDEX, OrderKey, Volume};

use crate::event::TradeAmounts;

/// One price observation of one mint, with what the event traded.
#[derive(Debug, Clone, Copy)]
pub struct PriceTick {
    pub mint: [u8; 32],
    pub price: f64,
    pub key: OrderKey,
    pub trade: TradeAmounts,
}

/// A candle that changed in the current batch.
#[derive(Debug, Clone, Copy)]
pub struct CandleChange {
    pub key: CandleKey,
    pub state: CandleState,
    /// Push it to live subscribers (false for late corrections of final candles).
    pub publish: bool,
}

/// What applying one tick did.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickOutcome {
    /// Intervals whose candle was already final (the tick corrected history only).
    pub late_intervals: usize,
}

pub struct Aggregator {
    intervals: Vec<Interval>,
    grace_ms: i64,
    /// Candles whose bucket has not closed yet.
    open: HashMap<CandleKey, CandleState>,
    /// Finality deadline (Unix ms) of every open candle, earliest first.
    deadlines: BTreeSet<(i64, CandleKey)>,
    /// Final candles changed in this batch (just finalized, or corrected by a late event).
    closed: HashMap<CandleKey, CandleState>,
    /// Keys changed in this batch, and whether to publish them.
    dirty: HashMap<CandleKey, bool>,
}

impl Aggregator {
    pub fn new(intervals: &[Interval], grace_ms: u64) -> Aggregator {
        Aggregator {
            intervals: intervals.to_vec(),
            grace_ms: i64::try_from(grace_ms).unwrap_or(i64::MAX / 2),
            open: HashMap::new(),
            deadlines: BTreeSet::new(),
            closed: HashMap::new(),
            dirty: HashMap::new(),
        }
    }

    /// Unix ms after which the candle is final.
    pub fn deadline(&self, key: &CandleKey) -> i64 {
        key.end_ms().saturating_add(self.grace_ms)
    }

    /// Takes back candles that were open when the process stopped.
    pub fn restore(&mut self, candles: impl IntoIterator<Item = (CandleKey, CandleState)>) {
        for (key, state) in candles {
            if !state.is_final {
                self.track_open(key, state);
            }
        }
    }

    /// Whether an event for `key` would still be pushed live: its candle is open, or not started and not
    /// yet past its deadline.
    pub fn takes_live(&self, key: &CandleKey, now_ms: i64) -> bool {
        self.open.contains_key(key) || self.deadline(key) > now_ms
    }

    /// The state of `key` if its candle is open.
    pub fn open_candle(&self, key: &CandleKey) -> Option<&CandleState> {
        self.open.get(key)
    }

    /// Number of candles currently open.
    pub fn open_count(&self) -> usize {
        self.open.len()
    }

    /// Adds one price event to the candle of every interval. `load` reads a candle from storage.
    pub fn apply<E>(
        &mut self,
        tick: &PriceTick,
        now_ms: i64,
        load: &mut dyn FnMut(&CandleKey) -> Result<Option<CandleState>, E>,
    ) -> Result<TickOutcome, E> {
        let mut outcome = TickOutcome::default();
        for index in 0..self.intervals.len() {
            let key = CandleKey::containing(tick.mint, self.intervals[index], tick.key.ts_ms);
            if let Some(state) = self.open.get_mut(&key) {
                state.apply(tick);
                self.dirty.insert(key, true);
            } else if self.deadline(&key) > now_ms {
                self.apply_to_new_open(key, tick, load)?;
            } else {
                self.apply_late(key, tick, load)?;
                outcome.late_intervals += 1;
            }
        }
        Ok(outcome)
    }

    fn apply_to_new_open<E>(
        &mut self,
        key: CandleKey,
        tick: &PriceTick,
        load: &mut dyn FnMut(&CandleKey) -> Result<Option<CandleState>, E>,
    ) -> Result<(), E> {
        match self
            .closed
            .get(&key)
            .copied()
            .map(Ok)
            .or_else(|| load(&key).transpose())
        {
            // Final already (only if the clock went backwards): treat as late.
            Some(Ok(state)) if state.is_final => self.apply_late(key, tick, load),
            Some(Ok(mut state)) => {
                state.apply(tick);
                self.track_open(key, state);
                self.dirty.insert(key, true);
                Ok(())
            }
            Some(Err(err)) => Err(err),
            None => {
                self.track_open(key, CandleState::first(key.time, tick));
                self.dirty.insert(key, true);
                Ok(())
            }
        }
    }

    fn apply_late<E>(
        &mut self,
        key: CandleKey,
        tick: &PriceTick,
        load: &mut dyn FnMut(&CandleKey) -> Result<Option<CandleState>, E>,
    ) -> Result<(), E> {
        let state = match self.closed.get(&key) {
            Some(state) => Some(*state),
            None => load(&key)?,
        };
        let mut state = match state {
            Some(mut state) => {
                state.apply(tick);
                state
            }
            None => CandleState::first(key.time, tick),
        };
        state.is_final = true;
        self.closed.insert(key, state);
        self.dirty.entry(key).or_insert(false);
        Ok(())
    }

    fn track_open(&mut self, key: CandleKey, state: CandleState) {
        self.deadlines.insert((self.deadline(&key), key));
        self.open.insert(key, state);
    }

    /// Marks final every open candle whose deadline is at or before `now_ms`. Returns how many.
    pub fn finalize_due(&mut self, now_ms: i64) -> usize {
        let mut count = 0;
        while let Some(&(deadline, key)) = self.deadlines.first() {
            if deadline > now_ms {
                break;
            }
            self.deadlines.pop_first();
            if let Some(mut state) = self.open.remove(&key) {
                state.is_final = true;
                self.closed.insert(key, state);
                self.dirty.insert(key, true);
                count += 1;
            }
        }
        count
    }

    /// Unix ms of the next finality deadline, if any candle is open.
    pub fn next_deadline(&self) -> Option<i64> {
        self.deadlines.first().map(|(deadline, _)| *deadline)
    }

    /// The candles changed since the last call, in key order (so each series' updates are in time order).
    pub fn take_changes(&mut self) -> Vec<CandleChange> {
        let mut changes: Vec<CandleChange> = self
            .dirty
            .drain()
            .filter_map(|(key, publish)| {
                let state = self.open.get(&key).or_else(|| self.closed.get(&key))?;
                Some(CandleChange {
                    key,
                    state: *state,
                    publish,
                })
            })
            .collect();
        self.closed.clear();
        changes.sort_unstable_by_key(|change| change.key);
        changes
    }
}

#[cfg(test)]
mod tests;
