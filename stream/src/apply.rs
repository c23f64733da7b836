//! The edge's replica: applies group records (from the stream) and snapshot frames to the local store, then
//! publishes what changed to the local hub — the writer's "publish after write" rule, so a subscriber's
//! history read from the replica and the live updates after it keep the ordering promises on every node.
//!
//! Idempotent: a candle state is written only if it is newer (`(update_count, is_final)`, the hub's rule)
//! than the stored one, and the applied group number and its epoch are stored in the same write as the
//! group, so a record applied twice (a replay after a crash) changes nothing. Versions are compared within
//! one epoch only: a snapshot of another epoch (the writer's store was wiped or restored) replaces the
//! candle states it carries whatever their versions, since the writer's numbering started over.

use std::collections::HashMap;
use std::sync::Arc;

use kline_protocol::Symbol;

use super::continuity::{self, Break};
use super::redis::Entry;
use kline_core::aggregator::{CandleKey, CandleState};
use kline_core::event::TradePosition;
use kline_pipeline::feed::trades::LiveTrade;
use kline_pipeline::feed::{CandleFeed, CandleUpdate, SeriesId};
use kline_store::replication::StreamStatus;
use kline_store::replication::epoch::Position;
use kline_store::replication::record::{BadRecord, GroupRecord};
use kline_store::replication::{APPLIED_EPOCH, APPLIED_SEQ, Replicated};
use kline_store::{CandleStore, StoreBatch, StoreError, TradeValue, codec, keys, names};

#[derive(Debug, thiserror::Error)]
pub enum ApplyError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Record(#[from] BadRecord),
    #[error(transparent)]
    Break(#[from] Break),
}

/// The replica store and what it publishes to. Owned by the replica task.
pub struct Replica {
    store: Arc<CandleStore>,
    feed: CandleFeed,
    status: Arc<StreamStatus>,
    applied: u64,
    /// The epoch of `applied` (0: none yet, or a writer before epochs).
    epoch: u64,
    symbols: HashMap<[u8; 32], Symbol>,
}

/// A candle state to publish after the write.
struct Published {
    key: CandleKey,
    state: CandleState,
    received_at_ms: Option<i64>,
}

impl Replica {
    /// Resumes from the group number and epoch stored with the replica (0 for a new one).
    pub fn open(
        store: Arc<CandleStore>,
        feed: CandleFeed,
        status: Arc<StreamStatus>,
    ) -> Result<Replica, StoreError> {
        let applied = store.seq(APPLIED_SEQ)?;
        let epoch = store.seq(APPLIED_EPOCH)?;
        status.set_applied(applied);
        status.set_epoch(epoch);
        Ok(Replica {
            store,
            feed,
            status,
            applied,
            epoch,
            symbols: HashMap::new(),
        })
    }

    /// The newest group applied.
    pub fn applied(&self) -> u64 {
        self.applied
    }

    /// The newest group applied and its epoch.
    pub fn position(&self) -> Position {
        Position {
            seq: self.applied,
            epoch: self.epoch,
        }
    }

    /// Applies `entries` (each continuing the one before, the first continuing [`Replica::position`]:
    /// `crate::continuity`) in one write, then publishes them. Returns the number of candle states
    /// written.
    pub fn apply(&mut self, entries: &[Entry]) -> Result<usize, ApplyError> {
        let mut groups = Vec::with_capacity(entries.len());
        let mut at = self.position();
        for entry in entries {
            continuity::check(at, entry.position())?;
            at = entry.position();
            groups.push(GroupRecord::decode(&entry.record)?);
        }
        if groups.is_empty() {
            return Ok(0);
        }
        let store = Arc::clone(&self.store);
        let mut write = store.batch();
        let candles: Vec<_> = groups.iter().flat_map(|g| &g.candles).collect();
        let keys: Vec<&[u8]> = candles.iter().map(|c| c.key.as_slice()).collect();
        let mut versions: HashMap<&[u8], Option<(u32, bool)>> = keys
            .iter()
            .copied()
            .zip(store.candle_versions(&keys)?)
            .collect();
        let mut published = Vec::new();
        let mut late = Vec::new();
        let mut written = 0;
        for entry in candles {
            let (key, state) = entry.decode()?;
            let stored = versions
                .get_mut(entry.key.as_slice())
                .expect("every key was read");
            if !is_newer(&state, *stored) {
                continue;
            }
            *stored = Some(version(&state));
            write.put_candle(&key, &state);
            written += 1;
            if entry.publish {
                published.push(Published {
                    key,
                    state,
                    received_at_ms: entry.received_at_ms,
                });
            } else {
                late.push(((key.mint, key.interval), key.time));
            }
        }
        for group in &groups {
            for entry in &group.trades {
                write.put_replicated_trade(
                    &entry.key,
                    &entry.value,
                    &entry.event_key,
                    &entry.event_json,
                );
            }
            for entry in &group.symbols {
                write.put_replicated(Replicated::Symbols, &entry.mint, &entry.value);
            }
            for entry in &group.names {
                write.put_replicated_name(&entry.mint, &entry.value);
            }
        }
        let committed_at_us: Vec<i64> = groups.iter().map(|group| group.committed_at_us).collect();
        self.commit(write, at, written, &committed_at_us)?;
        self.feed.names().extend(
            groups
                .iter()
                .flat_map(|group| &group.names)
                .filter_map(|entry| Some((entry.mint, names::decode_name(&entry.value).ok()?))),
        );
        self.publish(published);
        self.feed.stored_late(late);
        // Trades are parsed only for the mints somebody watches (checked after the write: see
        // `TradeFeed::watches`); a trade that does not parse is stored, not pushed.
        let trades = self.feed.trades();
        let live: Vec<LiveTrade> = groups
            .into_iter()
            .flat_map(|group| group.trades)
            .filter(|entry| trades.watches(&entry.mint))
            .filter_map(|entry| match TradeValue::decode(&entry.value)
                .and_then(|value| {
                    let event = kline_core::event::parse_stored(&entry.event_json).map_err(|err| {
                        StoreError::CorruptJson {
                            what: "event",
                            reason: err.to_string(),
                        }
                    })?;
                    value.into_trade(Some(&event))
                })
            {
                Ok(trade) => {
                    let position = TradePosition::of_trade(&trade);
                    Some(LiveTrade::new(entry.mint, position, trade, entry.event_json))
                }
                Err(err) => {
                    tracing::warn!(error = %err, "a replicated trade is not a valid trade; not pushed");
                    None
                }
            })
            .collect();
        trades.publish(live);
        Ok(written)
    }

    /// Writes one snapshot frame's entries (candles only where newer, unless the snapshot `replaces` the
    /// replica's states: it is of another epoch) and notes, per series, the oldest candle changed.
    pub fn install(
        &mut self,
        family: Replicated,
        entries: Vec<(Vec<u8>, Vec<u8>)>,
        replaces: bool,
        changed: &mut HashMap<SeriesId, i64>,
    ) -> Result<(), ApplyError> {
        let store = Arc::clone(&self.store);
        let mut write = store.batch();
        if family == Replicated::Candles {
            let keys: Vec<&[u8]> = entries.iter().map(|(key, _)| key.as_slice()).collect();
            let versions = store.candle_versions(&keys)?;
            for ((key, value), stored) in entries.iter().zip(versions) {
                let key = keys::decode_candle_key(key)
                    .ok_or_else(|| BadRecord(format!("candle key of {} bytes", key.len())))?;
                let state = codec::decode_candle(value).map_err(StoreError::from)?;
                if !replaces && !is_newer(&state, stored) {
                    continue;
                }
                write.put_candle(&key, &state);
                let oldest = changed.entry((key.mint, key.interval)).or_insert(key.time);
                *oldest = (*oldest).min(key.time);
            }
        } else {
            for (key, value) in &entries {
                write.put_replicated(family, key, value);
            }
        }
        store.write(write)?;
        Ok(())
    }

    /// The snapshot is installed: the replica is consistent with group `at`.
    pub fn finish_snapshot(&mut self, at: Position) -> Result<(), ApplyError> {
        let store = Arc::clone(&self.store);
        self.commit(store.batch(), at, 0, &[])?;
        self.status.snapshots_loaded.inc();
        Ok(())
    }

    /// After a snapshot: the hub re-reads what it changed for the series somebody watches, and the names
    /// are read again.
    pub fn resync(&self, changed: &HashMap<SeriesId, i64>) {
        self.feed.resync(changed);
        if let Err(err) = self.feed.names().reload(&self.store) {
            tracing::error!(error = %err, "cannot read the token names after a snapshot");
        }
    }

    /// Writes `write` with the applied number and epoch `at`; counts the `candles` states it holds and
    /// times the hop of each group (the writer's commit at `committed_at_us` to now) before the number
    /// becomes visible, so whoever sees the number sees the count and the hops too.
    fn commit(
        &mut self,
        mut write: StoreBatch<'_>,
        at: Position,
        candles: usize,
        committed_at_us: &[i64],
    ) -> Result<(), StoreError> {
        write.put_meta(APPLIED_SEQ, &at.seq.to_be_bytes());
        write.put_meta(APPLIED_EPOCH, &at.epoch.to_be_bytes());
        self.store.write(write)?;
        let now_us = chrono::Utc::now().timestamp_micros();
        for committed_at_us in committed_at_us {
            let hop_us = now_us.saturating_sub(*committed_at_us);
            self.status.hop.observe_ms(hop_us as f64 / 1000.0);
        }
        self.status.candle_updates_applied.inc_by(candles as u64);
        self.applied = at.seq;
        self.epoch = at.epoch;
        self.status.set_applied(at.seq);
        self.status.set_epoch(at.epoch);
        Ok(())
    }

    fn publish(&mut self, published: Vec<Published>) {
        let now_ms = chrono::Utc::now().timestamp_millis();
        let symbols = &mut self.symbols;
        for update in &published {
            symbols
                .entry(update.key.mint)
                .or_insert_with(|| Symbol::from_bytes(&update.key.mint));
        }
        let symbols = &self.symbols;
        self.feed.publish(
            published,
            |update| (update.key.mint, update.key.interval),
            |update| {
                CandleUpdate::new(
                    symbols[&update.key.mint].clone(),
                    update.key.interval,
                    update.state.to_candle(),
                    now_ms,
                    update.received_at_ms,
                    false,
                )
            },
        );
    }
}

/// What orders the states of one candle: `(update_count, is_final)`, the hub's rule
/// (`CandleUpdate::is_newer_than`).
fn version(state: &CandleState) -> (u32, bool) {
    (state.update_count, state.is_final)
}

/// Whether `state` is newer than the stored state's version (or nothing is stored).
fn is_newer(state: &CandleState, stored: Option<(u32, bool)>) -> bool {
    stored.is_none_or(|stored| version(state) > stored)
}
