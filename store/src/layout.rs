//! The store's key layout, and the one-time rewrite of a store written in the legacy one when it opens.
//!
//! The legacy layout named an event by its whole 64-byte signature in both its `events` key and its trade
//! key; this one names it by the signature's head and keeps the rest in the event's record ([`keys`],
//! [`stored`]). Opening a store without the [`LAYOUT_KEY`] marker rewrites every legacy entry (an event:
//! new key, record re-encoded with its signature tail; a trade: the same value under the shortened key),
//! [`BATCH`] entries per atomic write, each putting the new entry and deleting the old, then sets the
//! marker. A crash in between leaves entries of both layouts, which readers take alike; the next open
//! finishes the rewrite. Done before the store is shared, so nothing else writes meanwhile.

use std::time::Instant;

use rocksdb::IteratorMode;

use super::{CF_EVENTS, CF_TRADES, CandleStore, StoreError, keys};
use kline_core::event::stored;

/// `meta` key holding [`LAYOUT`] once no legacy entry is left.
pub const LAYOUT_KEY: &str = "store.layout";
/// This layout's name, as stored under [`LAYOUT_KEY`].
const LAYOUT: &[u8] = b"signature-head-16";
/// Entries rewritten per atomic write.
const BATCH: usize = 10_000;

/// A legacy `events` entry in this layout: the same event under its key, its record re-encoded with the
/// signature's tail; `None` if the entry is not a legacy one or its record does not decode (logged).
pub(super) fn legacy_event(key: &[u8], value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    if key.len() != keys::LEGACY_EVENT_KEY_LEN {
        return None;
    }
    let (signature, event_index) = keys::split_event_key(key)?;
    match stored::decode(signature, event_index, value) {
        Ok(event) => Some((
            keys::event_key(&event.id()).to_vec(),
            stored::encode(&event),
        )),
        Err(err) => {
            tracing::warn!(%err, "stored event does not decode: left under its legacy key");
            None
        }
    }
}

/// A legacy `trades` entry in this layout: the same value under the shortened key; `None` if the entry is
/// not a legacy one.
pub(super) fn legacy_trade(key: &[u8], value: &[u8]) -> Option<(Vec<u8>, Vec<u8>)> {
    let key = keys::trade_key_of_legacy(key)?;
    Some((key.to_vec(), value.to_vec()))
}

/// What the rewrite of a legacy store did.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct LayoutUpgrade {
    pub events: usize,
    pub trades: usize,
    /// Legacy events whose record did not decode: left under their legacy key (read as before; reported).
    pub undecodable: usize,
}

impl CandleStore {
    /// Rewrites every legacy entry into this layout, unless the store is marked as done.
    pub fn upgrade_layout(&self) -> Result<LayoutUpgrade, StoreError> {
        let mut done = LayoutUpgrade::default();
        if self.meta(LAYOUT_KEY)?.as_deref() == Some(LAYOUT) {
            return Ok(done);
        }
        let started = Instant::now();
        self.rewrite_legacy(CF_EVENTS, keys::LEGACY_EVENT_KEY_LEN, |key, value| {
            let rewritten = legacy_event(key, value);
            match rewritten {
                Some(_) => done.events += 1,
                None => done.undecodable += 1,
            }
            rewritten
        })?;
        self.rewrite_legacy(CF_TRADES, keys::LEGACY_TRADE_KEY_LEN, |key, value| {
            done.trades += 1;
            legacy_trade(key, value)
        })?;
        let mut batch = self.batch();
        batch.put_meta(LAYOUT_KEY, LAYOUT);
        self.write(batch)?;
        if done != LayoutUpgrade::default() {
            tracing::info!(
                events = done.events,
                trades = done.trades,
                undecodable = done.undecodable,
                elapsed_ms = started.elapsed().as_millis() as u64,
                "store rewritten into the signature-head key layout"
            );
        }
        Ok(done)
    }

    /// Replaces every entry of `family` whose key is `legacy_len` long by what `rewrite` makes of it
    /// (`None`: leave it).
    fn rewrite_legacy(
        &self,
        family: &str,
        legacy_len: usize,
        mut rewrite: impl FnMut(&[u8], &[u8]) -> Option<(Vec<u8>, Vec<u8>)>,
    ) -> Result<(), StoreError> {
        let cf = self.cf(family);
        let mut batch = self.batch();
        let mut pending = 0;
        // The iterator reads the store as it was when created: entries written meanwhile are not met.
        for item in self.db.iterator_cf(cf, IteratorMode::Start) {
            let (key, value) = item?;
            if key.len() != legacy_len {
                continue;
            }
            let Some((new_key, new_value)) = rewrite(&key, &value) else {
                continue;
            };
            batch.batch.put_cf(cf, new_key, new_value);
            batch.batch.delete_cf(cf, key);
            pending += 1;
            if pending == BATCH {
                self.write(std::mem::replace(&mut batch, self.batch()))?;
                pending = 0;
            }
        }
        if pending > 0 {
            self.write(batch)?;
        }
        Ok(())
    }
}
