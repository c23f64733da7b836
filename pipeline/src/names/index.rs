//! Filling the names of a store written before names were kept: once per store, when the pipeline opens it
//! (marked done in `meta` under [`NAMES_INDEX_KEY`]).
//!
//! Such a store holds the `TokenCreated` events (the server stored every event) but no names. This pass
//! reads each stored event once (a full scan, as `crate::trade_index` does), and hands the names it
//! finds to its caller in batches of [`BATCH`] names, so memory stays bounded however many tokens the store
//! knows; the pipeline commits each batch like a group of its own (on a writer, through the stream's
//! outbox, so the edges get the names too). When a mint has several `TokenCreated` events (a replay of
//! hand-made ones), the one read last (in key order) wins, as a later write does in the pipeline. It logs
//! what it did and how long it took.

use std::time::Instant;

use super::TokenName;
use kline_core::event::SpinPetEvent;
use kline_store::{CandleStore, StoreBatch, StoreError};

/// `meta` key set once every stored `TokenCreated` event's name is stored.
pub const NAMES_INDEX_KEY: &str = "names.indexed";
/// Names written per RocksDB batch.
const BATCH: usize = 10_000;

/// The names of one batch, with the write that stores them.
pub type NameBatch = Vec<([u8; 32], TokenName)>;

/// Stores the name of every stored `TokenCreated` event if the store has not been indexed yet: `commit`
/// writes each batch (the last one also sets [`NAMES_INDEX_KEY`]). Returns how many names it found (0 when
/// the store was already indexed).
pub fn index_stored_names(
    store: &CandleStore,
    mut commit: impl FnMut(StoreBatch<'_>, NameBatch) -> Result<(), StoreError>,
) -> Result<usize, StoreError> {
    if store.meta(NAMES_INDEX_KEY)?.is_some() {
        return Ok(0);
    }
    let started = Instant::now();
    let (mut written, mut events, mut unreadable) = (0, 0u64, 0u64);
    let mut batch = store.batch();
    let mut names = NameBatch::new();
    store.for_each_event(|event| {
        events += 1;
        let Ok(event) = event else {
            unreadable += 1;
            return Ok(());
        };
        let SpinPetEvent::TokenCreated(created) = &event.event else {
            return Ok(());
        };
        let Some(name) = TokenName::from_event(created) else {
            return Ok(());
        };
        let mint = created.mint_account.to_bytes();
        batch.put_name(&mint, &name);
        names.push((mint, name));
        written += 1;
        if names.len() == BATCH {
            commit(
                std::mem::replace(&mut batch, store.batch()),
                std::mem::take(&mut names),
            )?;
        }
        Ok(())
    })?;
    batch.put_meta(NAMES_INDEX_KEY, b"1");
    commit(batch, names)?;
    tracing::info!(
        names = written,
        events_read = events,
        unreadable,
        elapsed_ms = started.elapsed().as_millis() as u64,
        "indexed the token names of stored TokenCreated events (once per store)"
    );
    Ok(written)
}

#[cfg(test)]
mod tests {
    use super::*;
    use kline_core::simulated_market::SimulatedMarket;

    #[test]
    fn names_of_events_stored_before_names_were_kept_are_indexed_once() {
        let dir = tempfile::tempdir().unwrap();
        let store = CandleStore::open_at(dir.path(), false, 64).unwrap();
        let market = SimulatedMarket::new(4, 3);
        // Events as an older version stored them: in the events family only.
        let mut batch = store.batch();
        for index in 0..3 {
            batch.put_event(&market.token_created(index, 1_764_000_000_000));
        }
        store.write(batch).unwrap();
        assert!(store.names().unwrap().is_empty());

        let write = |batch: StoreBatch<'_>, _| store.write(batch);
        assert_eq!(index_stored_names(&store, write).unwrap(), 3);
        let names = store.names().unwrap();
        assert_eq!(names.len(), 3);
        let (mint, name) = &names
            .iter()
            .find(|(mint, _)| *mint == market.mints()[1].to_bytes())
            .unwrap();
        assert_eq!(*mint, market.mints()[1].to_bytes());
        assert_eq!(name, &market.token_name(1));
        assert_eq!(index_stored_names(&store, write).unwrap(), 0, "only once");
        assert!(store.symbols().unwrap().is_empty(), "names are not symbols");
    }
}
