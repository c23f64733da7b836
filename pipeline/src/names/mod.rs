//! Token names: the ticker, name and URI each mint's `TokenCreatedEvent` announced, sanitised
//! ([`kline_protocol::token`]), and [`TokenNames`], the in-memory directory the push side reads them from.
//!
//! Where names live and travel:
//! - **Stored** in the `symbols` column family under `mint ++ b'n'` (`kline_store::names`), written in the
//!   same batch as the `TokenCreated` event by the pipeline; a snapshot carries the family whole, and the
//!   stream record carries the names of its group (`kline_store::replication::record`), so edges hold them
//!   too.
//! - **Indexed once** from the events of a store written before names were kept ([`index`]).
//! - **In memory** in [`TokenNames`], loaded from the store at start and updated after each write that
//!   stores names (the pipeline; on an edge, the replica), so `connection_success` and the ticker stream
//!   name mints without reading the store.

pub mod index;

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};

use kline_core::names::TokenName;
use kline_protocol::{Symbol, SymbolName};

use kline_store::{CandleStore, StoreError};

/// Every known mint's name, shared by the writer of names (the pipeline or the replica, through the live
/// feed: `feed::CandleFeed::names`) and the readers (`connection_success`, the ticker hub). Small API: look
/// up, add after a write, (re)load from the store.
///
/// It holds nothing until [`TokenNames::reload`] first loads it (the push side does, at start): on a node
/// without readers (role `writer`) it stays empty instead of growing with every token created.
#[derive(Default)]
pub struct TokenNames {
    names: RwLock<Directory>,
    /// Bumped by every change: a reader that caches names re-checks them when it moved.
    version: AtomicU64,
}

#[derive(Default)]
struct Directory {
    loaded: bool,
    by_mint: HashMap<[u8; 32], Arc<TokenName>>,
}

impl TokenNames {
    /// A directory holding the names stored in `store`.
    pub fn load(store: &CandleStore) -> Result<TokenNames, StoreError> {
        let names = TokenNames::default();
        names.reload(store)?;
        Ok(names)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Directory> {
        self.names
            .read()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Directory> {
        self.names
            .write()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Reads every name from `store` (at start; on an edge, again after a snapshot). The store is read
    /// under the lock, so a name added meanwhile (after its write, which this read then sees) is not lost.
    pub fn reload(&self, store: &CandleStore) -> Result<(), StoreError> {
        let mut directory = self.write();
        directory.by_mint = store
            .names()?
            .into_iter()
            .map(|(mint, name)| (mint, Arc::new(name)))
            .collect();
        directory.loaded = true;
        self.version.fetch_add(1, Ordering::Release);
        Ok(())
    }

    /// Adds names that were just stored (a later name of a mint replaces its earlier one). Nothing while
    /// the directory was never loaded.
    pub fn extend(&self, stored: impl IntoIterator<Item = ([u8; 32], TokenName)>) {
        let mut directory = self.write();
        if !directory.loaded {
            return;
        }
        let mut changed = false;
        for (mint, name) in stored {
            directory.by_mint.insert(mint, Arc::new(name));
            changed = true;
        }
        if changed {
            self.version.fetch_add(1, Ordering::Release);
        }
    }

    pub fn get(&self, mint: &[u8; 32]) -> Option<Arc<TokenName>> {
        self.read().by_mint.get(mint).cloned()
    }

    /// The names of `mints`, in their order, under one lock.
    pub fn get_all<'a>(
        &self,
        mints: impl IntoIterator<Item = &'a [u8; 32]>,
    ) -> Vec<Option<Arc<TokenName>>> {
        let directory = self.read();
        mints
            .into_iter()
            .map(|mint| directory.by_mint.get(mint).cloned())
            .collect()
    }

    /// `symbols` with their tickers and names, in their order (`connection_success.symbol_names`).
    pub fn symbol_names(&self, symbols: &[Symbol]) -> Vec<SymbolName> {
        let mints: Vec<[u8; 32]> = symbols.iter().map(Symbol::to_bytes).collect();
        symbols
            .iter()
            .zip(self.get_all(&mints))
            .map(|(symbol, name)| match name {
                Some(name) => {
                    SymbolName::new(symbol.clone(), name.ticker.clone(), name.name.clone())
                }
                None => SymbolName::new(symbol.clone(), None, None),
            })
            .collect()
    }

    /// Changes so far (see the field).
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Acquire)
    }

    pub fn len(&self) -> usize {
        self.read().by_mint.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod pipeline_tests;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_directory_counts_changes_once_loaded() {
        let names = TokenNames::default();
        names.extend([([1; 32], TokenName::from_texts("A", "Alpha", "").unwrap())]);
        assert!(names.is_empty(), "not loaded: nobody reads it");
        let dir = tempfile::tempdir().unwrap();
        names
            .reload(&CandleStore::open_at(dir.path(), false, 64).unwrap())
            .unwrap();
        let v0 = names.version();
        names.extend([([1; 32], TokenName::from_texts("A", "Alpha", "").unwrap())]);
        assert_eq!(names.version(), v0 + 1);
        names.extend([]);
        assert_eq!(names.version(), v0 + 1, "nothing added, nothing changed");
        assert_eq!(
            names.get(&[1; 32]).unwrap().name.as_ref().unwrap().as_str(),
            "Alpha"
        );
        assert_eq!(
            names
                .get_all([&[2; 32], &[1; 32]])
                .iter()
                .filter(|n| n.is_some())
                .count(),
            1
        );
    }
}
