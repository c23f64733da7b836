//! `SymbolDirectory`: the known mints with their stats, most recently updated first, read from the store
//! into one shared list. `GET /api/v1/symbols` pages through it and `connection_success` lists its first
//! mints; neither scans the store per request.
//!
//! 1. The store is scanned at most once per `refresh`, and only when a write changed a mint's stats since
//!    the last scan ([`CandleStore::symbols_writes`]): an idle node never scans again, a busy one on a
//!    bounded schedule. A list may therefore be up to `refresh` old.
//! 2. Bounded: the list keeps the `max` most recently updated mints (a heap of `max` during the scan).
//!    An older mint is not listed, and can still be subscribed and queried.
//! 3. One scan at a time: the refresh holds the cache's lock, and callers that arrive meanwhile wait for
//!    its list, so requests cannot pile up scans (which is why the scan takes no REST read permit).
//! 4. A failed scan keeps the last list (logged); with none yet, the error is returned.
//!
//! Pages are cut by a [`SymbolCursor`]: the position (update time, mint) of the last mint of the previous
//! page, so a page follows the list's order even after a refresh moved mints (a mint updated between two
//! pages moves to the front and is not listed again further on).

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use kline_protocol::Symbol;
use std::time::Instant;
use tokio::sync::Mutex;

use crate::{CandleStore, StoreError, SymbolStats};

/// A listed mint.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SymbolEntry {
    pub mint: [u8; 32],
    pub stats: SymbolStats,
}

/// The list's order, ascending: most recently updated first, then by mint.
type Rank = (Reverse<i64>, [u8; 32]);

impl SymbolEntry {
    fn rank(&self) -> Rank {
        (Reverse(self.stats.updated_at_ms), self.mint)
    }
}

/// Where a page ends: the rank of its last mint. Written `<updated_at_ms>_<mint in base58>`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SymbolCursor {
    updated_at_ms: i64,
    mint: [u8; 32],
}

impl SymbolCursor {
    pub fn after(entry: &SymbolEntry) -> SymbolCursor {
        SymbolCursor {
            updated_at_ms: entry.stats.updated_at_ms,
            mint: entry.mint,
        }
    }

    pub fn parse(text: &str) -> Option<SymbolCursor> {
        let (time, mint) = text.split_once('_')?;
        Some(SymbolCursor {
            updated_at_ms: time.parse().ok()?,
            mint: Symbol::parse(mint).ok()?.to_bytes(),
        })
    }

    /// Where the page after this cursor starts in `list`.
    pub fn position_in(&self, list: &[SymbolEntry]) -> usize {
        let rank = (Reverse(self.updated_at_ms), self.mint);
        list.partition_point(|entry| entry.rank() <= rank)
    }
}

impl fmt::Display for SymbolCursor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}_{}",
            self.updated_at_ms,
            Symbol::from_bytes(&self.mint)
        )
    }
}

pub struct SymbolDirectory {
    store: Arc<CandleStore>,
    refresh: Duration,
    max: usize,
    cache: Mutex<Cached>,
    scans: AtomicU64,
}

#[derive(Default)]
struct Cached {
    /// When the list was read, and the store's symbol writes counted before that read.
    read: Option<(Instant, u64)>,
    list: Arc<[SymbolEntry]>,
}

impl SymbolDirectory {
    /// A directory of at most `max` mints, read again at most once per `refresh`.
    pub fn new(store: Arc<CandleStore>, refresh: Duration, max: usize) -> SymbolDirectory {
        SymbolDirectory {
            store,
            refresh,
            max: max.max(1),
            cache: Mutex::default(),
            scans: AtomicU64::new(0),
        }
    }

    /// The list, most recently updated first (rule 1 of the module says how fresh).
    pub async fn list(&self) -> Result<Arc<[SymbolEntry]>, StoreError> {
        let mut cache = self.cache.lock().await;
        let writes = self.store.symbols_writes();
        if is_fresh(cache.read, writes, Instant::now(), self.refresh) {
            return Ok(cache.list.clone());
        }
        let (store, max) = (self.store.clone(), self.max);
        self.scans.fetch_add(1, Ordering::Relaxed);
        let read = tokio::task::spawn_blocking(move || newest(&store, max)).await;
        let read = match read {
            Ok(read) => read,
            Err(err) => Err(StoreError::CorruptJson {
                what: "symbol list",
                reason: format!("the read task failed: {err}"),
            }),
        };
        match read {
            Ok(list) => {
                cache.list = list.into();
                cache.read = Some((Instant::now(), writes));
            }
            Err(err) if cache.read.is_some() => {
                tracing::warn!(error = %err, "reading the symbol list failed; the last one is kept");
            }
            Err(err) => return Err(err),
        }
        Ok(cache.list.clone())
    }

    /// Scans of the store so far.
    pub fn scans(&self) -> u64 {
        self.scans.load(Ordering::Relaxed)
    }
}

/// Whether a list read at `read` (when, and the symbol writes counted then) still serves at `now`, with
/// `writes` symbol writes counted now: nothing was written since, or it is younger than `refresh`.
fn is_fresh(read: Option<(Instant, u64)>, writes: u64, now: Instant, refresh: Duration) -> bool {
    read.is_some_and(|(at, seen)| seen == writes || now.saturating_duration_since(at) < refresh)
}

/// The `max` most recently updated mints, in the list's order.
fn newest(store: &CandleStore, max: usize) -> Result<Vec<SymbolEntry>, StoreError> {
    // A max-heap by rank: its top is the mint that goes first when a better one comes.
    let mut kept: BinaryHeap<ByRank> = BinaryHeap::with_capacity(max.min(4096) + 1);
    store.for_each_symbol(|mint, stats| {
        let entry = ByRank(SymbolEntry { mint, stats });
        if kept.len() == max && kept.peek().is_some_and(|worst| entry >= *worst) {
            return;
        }
        kept.push(entry);
        if kept.len() > max {
            kept.pop();
        }
    })?;
    Ok(kept
        .into_sorted_vec()
        .into_iter()
        .map(|ByRank(entry)| entry)
        .collect())
}

/// An entry ordered by its rank alone (a mint has one entry, so equal ranks are the same entry).
struct ByRank(SymbolEntry);

impl PartialEq for ByRank {
    fn eq(&self, other: &Self) -> bool {
        self.0.rank() == other.0.rank()
    }
}
impl Eq for ByRank {}
impl PartialOrd for ByRank {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for ByRank {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.rank().cmp(&other.0.rank())
    }
}

#[cfg(test)]
mod tests;
