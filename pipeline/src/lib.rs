//! # kline-pipeline
//!
//! The write path and what it feeds: [`Pipeline`] (this module), the live [`feed`] from it to the push
//! side, and the token [`names`] it stores and keeps in memory. Above the store; below the push core, the
//! stream and the server, which each take what they need from it.
//!
//! The single write path: every source's events go through [`Pipeline::ingest`].
//!
//! For a group of event batches it drops duplicates (by identity, against the store and within the group),
//! feeds price events to the [`Aggregator`], and writes the events, their entries in their mint's trade index
//! (the price only: a read builds the trade from the event, see `kline_store`'s `trades` module), every
//! candle they changed, the symbol stats and the names of the tokens created (`TokenCreated`, sanitised:
//! [`crate::names`]) in one RocksDB write batch. Only after that write succeeds are the changed candles
//! published to the live stream, so a subscriber never sees a candle the store does not hold — except for
//! [`provisional`] events, pushed before their block position is known and never stored: a candle is then
//! published as the stored state plus those events, and published again when they are stored for good.
//! [`service`] runs it on its own thread behind a bounded queue.

pub mod feed;
pub mod names;
pub mod provisional;
pub mod service;
pub mod stats;
pub mod storage;
pub mod trade_index;

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use kline_protocol::{Candle, Interval, Symbol};

use self::provisional::{ProvisionalLimits, ProvisionalTicks};
use crate::feed::trades::LiveTrade;
use crate::feed::{CandleFeed, CandleUpdate};
use crate::names::index::{NameBatch, index_stored_names};
use crate::stats::PipelineStats;
use kline_core::aggregator::{
    Aggregator, CandleChange, CandleKey, CandleState, OrderKey, PriceTick,
};
use kline_core::event::TradePosition;
use kline_core::event::{EventRecord, SpinPetEvent, scaled_price};
use kline_core::names::TokenName;
use kline_store::keys;
use kline_store::replication::outbox::Outbox;
use kline_store::replication::record::TradeEntry;
use kline_store::{CandleStore, StoreBatch, StoreError, SymbolStats, TradeValue};

/// Key of the probe write in the store's `meta` column family ([`Pipeline::probe_storage`]).
pub const STORAGE_PROBE_KEY: &str = "storage.probe";

/// What the pipeline needs from the configuration.
#[derive(Debug, Clone)]
pub struct PipelineSettings {
    pub intervals: Vec<Interval>,
    pub finality_grace_ms: u64,
    pub price_scale_decimals: u32,
}

impl PipelineSettings {
    pub fn from_config(config: &kline_config::Config) -> PipelineSettings {
        PipelineSettings {
            intervals: config.kline.intervals.clone(),
            finality_grace_ms: config.kline.finality_grace_ms,
            price_scale_decimals: config.kline.price_scale_decimals,
        }
    }
}

/// The outcome for one submitted batch of (already validated) events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct BatchReport {
    pub accepted: usize,
    pub duplicates: usize,
    /// Accepted events that corrected an already final candle.
    pub late: usize,
}

/// A trade of the group being written, built for the live feed only after the write and only if someone
/// watches its mint.
struct StoredTrade<'a> {
    event: &'a EventRecord,
    price: f64,
    position: TradePosition,
    /// Already made for the stream record (role `writer`).
    event_json: Option<String>,
}

pub struct Pipeline {
    store: Arc<CandleStore>,
    settings: PipelineSettings,
    aggregator: Aggregator,
    symbols: HashMap<[u8; 32], (Symbol, SymbolStats)>,
    feed: CandleFeed,
    stats: Arc<PipelineStats>,
    /// Per mint, when the newest event of the group being written reached the server (Unix ms).
    received: HashMap<[u8; 32], i64>,
    /// The token names the group being written stores, published after the write.
    names: NameBatch,
    /// Role `writer`: numbers each committed group and stores its stream record in the same write.
    outbox: Option<Outbox>,
    /// Events pushed before their block position is known.
    provisional: ProvisionalTicks,
    /// Candles whose provisional events changed in the group being written (published again after it).
    corrected: HashSet<CandleKey>,
    /// The last provisional state published of each candle that has one: a stored state equal to it on
    /// the wire is not published again (the subscribers have it).
    shown: HashMap<CandleKey, Candle>,
}

/// A candle as it is published: its key, its state, when the event that changed it reached the server,
/// and whether the state holds provisional events.
type Published = (CandleKey, CandleState, Option<i64>, bool);

impl Pipeline {
    /// Resumes from the store: open candles go back into the aggregator, symbol stats into memory.
    pub fn open(
        store: Arc<CandleStore>,
        settings: PipelineSettings,
        feed: CandleFeed,
        stats: Arc<PipelineStats>,
    ) -> Result<Pipeline, StoreError> {
        trade_index::index_stored_trades(&store, settings.price_scale_decimals)?;
        let mut aggregator = Aggregator::new(&settings.intervals, settings.finality_grace_ms);
        aggregator.restore(store.open_candles()?);
        let symbols = store
            .symbols()?
            .into_iter()
            .map(|(mint, stats)| (mint, (Symbol::from_bytes(&mint), stats)))
            .collect();
        Ok(Pipeline {
            store,
            settings,
            aggregator,
            symbols,
            feed,
            stats,
            received: HashMap::new(),
            names: Vec::new(),
            outbox: None,
            provisional: ProvisionalTicks::new(ProvisionalLimits::DEFAULT),
            corrected: HashSet::new(),
            shown: HashMap::new(),
        })
    }

    /// Bounds of the provisional set (`pipeline.provisional_*`).
    pub fn with_provisional_limits(mut self, limits: ProvisionalLimits) -> Pipeline {
        self.provisional = ProvisionalTicks::new(limits);
        self
    }

    /// Role `writer`: every committed group also goes to `outbox`, for the stream to the edges.
    pub fn with_outbox(mut self, outbox: Outbox) -> Pipeline {
        self.outbox = Some(outbox);
        self
    }

    pub fn store(&self) -> &Arc<CandleStore> {
        &self.store
    }

    /// Stores the names of the `TokenCreated` events a store written before names were kept holds, once
    /// ([`crate::names::index`]); each batch is committed like a group (on a writer, through the outbox, so
    /// the edges get them). Call after [`Pipeline::with_outbox`], before the first ingest.
    pub fn index_stored_names(&mut self) -> Result<usize, StoreError> {
        let store = Arc::clone(&self.store);
        index_stored_names(&store, |mut write, names| {
            if let Some(outbox) = &mut self.outbox {
                for (mint, name) in &names {
                    outbox.record().add_name(mint, name);
                }
            }
            let sealed = self
                .outbox
                .as_mut()
                .and_then(|outbox| outbox.seal(&mut write));
            store.write(write)?;
            if let (Some(outbox), Some(seq)) = (&mut self.outbox, sealed) {
                outbox.committed_ok(seq);
            }
            self.feed.names().extend(names);
            Ok(())
        })
    }

    pub fn stats(&self) -> &Arc<PipelineStats> {
        &self.stats
    }

    /// Writes one small meta entry (the time of the try), to learn whether the store takes writes again
    /// after a failed one (see [`storage`]).
    pub fn probe_storage(&mut self, now_ms: i64) -> Result<(), StoreError> {
        let mut write = self.store.batch();
        write.put_meta(STORAGE_PROBE_KEY, &now_ms.to_le_bytes());
        let result = self.store.write(write);
        if result.is_err() {
            kline_core::stats::add(&self.stats.write_errors, 1);
        }
        result
    }

    /// Stores a group of batches in one write and returns a report per batch.
    pub fn ingest(
        &mut self,
        batches: &[Vec<EventRecord>],
        now_ms: i64,
    ) -> Result<Vec<BatchReport>, StoreError> {
        self.ingest_with_meta(batches, &[], now_ms)
    }

    /// Like [`Pipeline::ingest`], also writing `meta` (name, value) entries in the same batch, so a source's
    /// cursor advances atomically with the events it covers.
    pub fn ingest_with_meta(
        &mut self,
        batches: &[Vec<EventRecord>],
        meta: &[(String, Vec<u8>)],
        now_ms: i64,
    ) -> Result<Vec<BatchReport>, StoreError> {
        let received = vec![now_ms; batches.len()];
        self.ingest_received(batches, &received, meta, now_ms)
    }

    /// Like [`Pipeline::ingest_with_meta`], with the time each batch reached the server (Unix ms), so the
    /// push service can tell how long an event took from receipt to a client's socket.
    pub fn ingest_received(
        &mut self,
        batches: &[Vec<EventRecord>],
        received_at_ms: &[i64],
        meta: &[(String, Vec<u8>)],
        now_ms: i64,
    ) -> Result<Vec<BatchReport>, StoreError> {
        let ids: Vec<_> = batches.iter().flatten().map(EventRecord::id).collect();
        let already_stored = self.store.events_exist(&ids)?;
        let mut seen = HashSet::with_capacity(ids.len());
        let mut reports = Vec::with_capacity(batches.len());
        let mut touched_mints = HashSet::new();
        let store = Arc::clone(&self.store);
        let mut write = store.batch();
        let mut trades = Vec::new();
        let mut position = 0;
        for (batch, &received) in batches.iter().zip(received_at_ms) {
            let mut report = BatchReport::default();
            for event in batch {
                let (id, stored) = (ids[position], already_stored[position]);
                position += 1;
                if !self.provisional.is_empty() {
                    self.corrected.extend(self.provisional.confirm(&id));
                }
                if stored || !seen.insert(id) {
                    report.duplicates += 1;
                    continue;
                }
                write.put_event(event);
                report.accepted += 1;
                if let SpinPetEvent::TokenCreated(created) = &event.event {
                    self.note_name(&mut write, created);
                }
                if let Some(tick) = self.price_tick(event) {
                    if event.event.trade_amounts().is_some() {
                        let position = event.trade_position();
                        let time_ms = event.meta.timestamp.unix_millis();
                        write.put_trade(&tick.mint, &position, tick.price, time_ms);
                        // The JSON that edges and live trade subscribers are sent (the store keeps binary).
                        let event_json = self.outbox.as_mut().map(|outbox| {
                            let event_json = event.to_json();
                            outbox.record().trades.push(TradeEntry {
                                mint: tick.mint,
                                key: keys::trade_key(&tick.mint, &position).to_vec(),
                                event_key: keys::event_key(&id).to_vec(),
                                value: TradeValue::encode(tick.price, time_ms).to_vec(),
                                event_json: event_json.clone(),
                            });
                            event_json
                        });
                        trades.push(StoredTrade {
                            event,
                            price: tick.price,
                            position,
                            event_json,
                        });
                    }
                    let outcome = self
                        .aggregator
                        .apply(&tick, now_ms, &mut |key| store.candle(key))?;
                    report.late += usize::from(outcome.late_intervals > 0);
                    self.note_symbol_price(&tick, now_ms);
                    touched_mints.insert(tick.mint);
                    self.received.insert(tick.mint, received);
                }
            }
            reports.push(report);
        }
        self.aggregator.finalize_due(now_ms);
        for (name, value) in meta {
            write.put_meta(name, value);
        }
        for mint in &touched_mints {
            let (_, stats) = &self.symbols[mint];
            write.put_symbol(mint, stats);
            if let Some(outbox) = &mut self.outbox {
                outbox.record().add_symbol(mint, stats);
            }
        }
        self.commit(write, now_ms)?;
        self.publish_trades(trades);
        for report in &reports {
            kline_core::stats::add(&self.stats.events_accepted, report.accepted);
            kline_core::stats::add(&self.stats.events_duplicate, report.duplicates);
            kline_core::stats::add(&self.stats.events_late, report.late);
        }
        Ok(reports)
    }

    /// Finalizes every candle whose deadline has passed, stores and publishes them.
    pub fn finalize(&mut self, now_ms: i64) -> Result<usize, StoreError> {
        let count = self.aggregator.finalize_due(now_ms);
        self.corrected.extend(self.provisional.expire(now_ms));
        if count > 0 || !self.corrected.is_empty() {
            let store = Arc::clone(&self.store);
            self.commit(store.batch(), now_ms)?;
        }
        Ok(count)
    }

    /// Unix ms of the next finality deadline.
    pub fn next_deadline(&self) -> Option<i64> {
        self.aggregator.next_deadline()
    }

    fn price_tick(&self, event: &EventRecord) -> Option<PriceTick> {
        let raw = event.event.latest_price()?;
        // Validated when parsed; a zero price from a source that skipped validation is ignored here.
        let price = scaled_price(raw, self.settings.price_scale_decimals).ok()?;
        Some(PriceTick {
            mint: event.event.mint().to_bytes(),
            price,
            key: OrderKey::of_event(&event.meta),
            trade: event.event.trade_amounts().unwrap_or_default(),
        })
    }

    /// Stores a created token's name (sanitised) in `write` and in the group's record.
    fn note_name(&mut self, write: &mut StoreBatch<'_>, created: &kline_core::event::TokenCreated) {
        let Some(name) = TokenName::from_event(created) else {
            return;
        };
        let mint = created.mint_account.to_bytes();
        write.put_name(&mint, &name);
        if let Some(outbox) = &mut self.outbox {
            outbox.record().add_name(&mint, &name);
        }
        self.names.push((mint, name));
    }

    fn note_symbol_price(&mut self, tick: &PriceTick, now_ms: i64) {
        let (_, stats) = self.symbols.entry(tick.mint).or_insert_with(|| {
            (
                Symbol::from_bytes(&tick.mint),
                SymbolStats {
                    last_price: tick.price,
                    last_key: tick.key,
                    updated_at_ms: now_ms,
                    event_count: 0,
                },
            )
        });
        if tick.key >= stats.last_key {
            stats.last_price = tick.price;
            stats.last_key = tick.key;
        }
        stats.updated_at_ms = now_ms;
        stats.event_count += 1;
    }

    /// Adds the aggregator's changes to `write`, commits it, then publishes the candles and the trades.
    /// On a failed write nothing is published, and the in-memory candles and symbol stats are reloaded
    /// from the store, so memory never runs ahead of what is stored.
    fn commit(&mut self, mut write: StoreBatch<'_>, now_ms: i64) -> Result<(), StoreError> {
        let changes = self.aggregator.take_changes();
        let received = std::mem::take(&mut self.received);
        let names = std::mem::take(&mut self.names);
        // A final state is the clock's doing, not an event's.
        let received_at = |change: &CandleChange| {
            (!change.state.is_final)
                .then(|| received.get(&change.key.mint).copied())
                .flatten()
        };
        for change in &changes {
            write.put_candle(&change.key, &change.state);
            if let Some(outbox) = &mut self.outbox {
                let received = received_at(change);
                outbox
                    .record()
                    .add_candle(&change.key, &change.state, change.publish, received);
            }
        }
        let sealed = self
            .outbox
            .as_mut()
            .and_then(|outbox| outbox.seal(&mut write));
        if write.is_empty() {
            let mut published = Vec::new();
            self.publish_corrections(&mut published, now_ms);
            self.publish(published, now_ms);
            return Ok(());
        }
        if let Err(err) = self.store.write(write) {
            kline_core::stats::add(&self.stats.write_errors, 1);
            tracing::error!(error = %err, "write batch failed; reloading open candles from the store");
            self.reload()?;
            return Err(err);
        }
        kline_core::stats::add(&self.stats.batches_written, 1);
        if let (Some(outbox), Some(seq)) = (&mut self.outbox, sealed) {
            outbox.committed_ok(seq);
        }
        let finalized = changes
            .iter()
            .filter(|c| c.publish && c.state.is_final)
            .count();
        kline_core::stats::add(&self.stats.candles_finalized, finalized);
        // Late corrections are stored, not pushed; the ticker hub's 24-hour sums include them.
        self.feed.stored_late(
            changes
                .iter()
                .filter(|change| !change.publish)
                .map(|change| ((change.key.mint, change.key.interval), change.key.time)),
        );
        let mut published: Vec<Published> = Vec::with_capacity(changes.len());
        for change in changes.iter().filter(|change| change.publish) {
            let key = change.key;
            if change.state.is_final {
                // A final candle is exactly the stored one.
                self.provisional.forget_candle(&key);
                published.push((key, change.state, None, false));
            } else if let Some((state, provisional)) =
                self.provisional_view(&key, Some(&change.state))
            {
                // A candle whose provisional events were just stored is a correction: the events were
                // pushed (and timed) when they arrived.
                let received = (!self.corrected.remove(&key))
                    .then(|| received_at(change))
                    .flatten();
                published.push((key, state, received, provisional));
            }
        }
        self.publish_corrections(&mut published, now_ms);
        self.publish(published, now_ms);
        self.feed.names().extend(names);
        Ok(())
    }

    /// Hands the trades of a group just written to the live trade feed. Only those of mints someone
    /// watches are built (the trade and its event's JSON): asked after the write, so a subscriber that starts
    /// watching later reads these trades in its snapshot instead.
    fn publish_trades(&self, stored: Vec<StoredTrade<'_>>) {
        let feed = self.feed.trades();
        if stored.is_empty() || !feed.any_watched() {
            return;
        }
        let live = stored.into_iter().filter_map(|stored| {
            let mint = stored.event.event.mint().to_bytes();
            if !feed.watches(&mint) {
                return None;
            }
            let trade = stored.event.to_trade(stored.price)?;
            let event_json = stored.event_json.unwrap_or_else(|| stored.event.to_json());
            Some(LiveTrade::new(mint, stored.position, trade, event_json))
        });
        feed.publish(live.collect::<Vec<_>>());
    }

    /// Publishes `events` provisionally (see [`provisional`]): not stored, pushed at once as part of their
    /// candles. Events already stored, events without a price and candles already final are skipped.
    pub fn push_provisional(
        &mut self,
        batches: &[(Vec<EventRecord>, i64)],
        now_ms: i64,
    ) -> Result<usize, StoreError> {
        let ids: Vec<_> = batches
            .iter()
            .flat_map(|(batch, _)| batch.iter().map(EventRecord::id))
            .collect();
        let already_stored = self.store.events_exist(&ids)?;
        let mut touched: HashMap<CandleKey, i64> = HashMap::new();
        let mut pushed = 0;
        let mut position = 0;
        for (batch, received) in batches {
            for event in batch {
                let (id, stored) = (ids[position], already_stored[position]);
                position += 1;
                let Some(tick) = self.price_tick(event).filter(|_| !stored) else {
                    continue;
                };
                let aggregator = &self.aggregator;
                let joined =
                    self.provisional
                        .add(id, tick, &self.settings.intervals, now_ms, |key| {
                            aggregator.takes_live(key, now_ms)
                        });
                pushed += usize::from(!joined.is_empty());
                for key in joined {
                    touched.insert(key, *received);
                }
            }
        }
        let mut keys: Vec<_> = touched.into_iter().collect();
        keys.sort_unstable_by_key(|(key, _)| *key);
        let mut published = Vec::with_capacity(keys.len());
        for (key, received) in keys {
            let confirmed = self.aggregator.open_candle(&key).copied();
            if let Some((state, provisional)) = self.provisional_view(&key, confirmed.as_ref()) {
                published.push((key, state, Some(received), provisional));
            }
        }
        self.publish(published, now_ms);
        kline_core::stats::add(&self.stats.provisional_events, pushed);
        Ok(pushed)
    }

    /// Provisional events in the set.
    pub fn provisional_count(&self) -> usize {
        self.provisional.len()
    }

    /// `confirmed` with `key`'s provisional events (and whether it has any), counting orphans.
    fn provisional_view(
        &mut self,
        key: &CandleKey,
        confirmed: Option<&CandleState>,
    ) -> Option<(CandleState, bool)> {
        if !self.provisional.touches(key) {
            return confirmed.map(|state| (*state, false));
        }
        let view = self.provisional.view(key, confirmed);
        if view.is_none() {
            kline_core::stats::add(&self.stats.provisional_orphaned, 1);
            self.shown.remove(key);
        }
        view.map(|state| (state, true))
    }

    /// Adds to `published` the candles whose provisional events left them and that did not change
    /// otherwise (those are in `published` already).
    fn publish_corrections(&mut self, published: &mut Vec<Published>, now_ms: i64) {
        let mut corrected: Vec<CandleKey> = self.corrected.drain().collect();
        corrected.sort_unstable();
        let before = published.len();
        for key in corrected {
            if !self.aggregator.takes_live(&key, now_ms) {
                continue; // final: published as stored when it became final
            }
            let confirmed = self.aggregator.open_candle(&key).copied();
            if let Some((state, provisional)) = self.provisional_view(&key, confirmed.as_ref()) {
                published.push((key, state, None, provisional));
            }
        }
        kline_core::stats::add(
            &self.stats.provisional_corrections,
            published.len() - before,
        );
    }

    /// Hands candle states to the live feed, in order, except a stored state equal to the provisional one
    /// its subscribers already have.
    fn publish(&mut self, mut published: Vec<Published>, now_ms: i64) {
        if !self.shown.is_empty() || published.iter().any(|(.., provisional)| *provisional) {
            let shown = &mut self.shown;
            published.retain(|(key, state, _, provisional)| {
                let candle = state.to_candle();
                if *provisional {
                    shown.insert(*key, candle);
                    return true;
                }
                shown.remove(key) != Some(candle)
            });
        }
        if published.is_empty() {
            return;
        }
        let count = published.len();
        let watched = self.feed.publish(
            &published,
            |(key, ..)| (key.mint, key.interval),
            |(key, state, received, provisional)| {
                CandleUpdate::new(
                    self.symbols.get(&key.mint).map_or_else(
                        || Symbol::from_bytes(&key.mint),
                        |(symbol, _)| symbol.clone(),
                    ),
                    key.interval,
                    state.to_candle(),
                    now_ms,
                    *received,
                    *provisional,
                )
            },
        );
        kline_core::stats::add(&self.stats.candle_updates_published, count);
        kline_core::stats::add(&self.stats.candle_updates_watched, watched);
    }

    fn reload(&mut self) -> Result<(), StoreError> {
        self.aggregator =
            Aggregator::new(&self.settings.intervals, self.settings.finality_grace_ms);
        self.aggregator.restore(self.store.open_candles()?);
        // Symbol stats as stored (a mint first seen in the failed write is forgotten).
        self.symbols = self
            .store
            .symbols()?
            .into_iter()
            .map(|(mint, stats)| (mint, (Symbol::from_bytes(&mint), stats)))
            .collect();
        Ok(())
    }
}

#[cfg(test)]
mod disk_tests;
#[cfg(test)]
mod tests;
