//! The symbol list every new connection gets in `connection_success`: known mints, most recently updated
//! first. Every connection asks, so the list is read from the store at most once per [`SYMBOL_LIST_TTL`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use kline_protocol::Symbol;
use tokio::sync::Mutex;

use crate::store::CandleStore;

/// How long the list is reused before it is read again.
pub const SYMBOL_LIST_TTL: Duration = Duration::from_secs(5);

/// The cached list and when it was read.
pub struct SymbolList {
    store: Arc<CandleStore>,
    cache: Mutex<(Option<Instant>, Vec<Symbol>)>,
}

impl SymbolList {
    pub fn new(store: Arc<CandleStore>) -> SymbolList {
        SymbolList {
            store,
            cache: Mutex::default(),
        }
    }

    /// Known mints, most recently updated first (the last list read if the store cannot be read).
    pub async fn get(&self) -> Vec<Symbol> {
        let mut cache = self.cache.lock().await;
        if cache.0.is_none_or(|at| at.elapsed() > SYMBOL_LIST_TTL) {
            let store = self.store.clone();
            if let Ok(Ok(mut symbols)) = tokio::task::spawn_blocking(move || store.symbols()).await
            {
                symbols.sort_by_key(|(_, stats)| std::cmp::Reverse(stats.updated_at_ms));
                cache.1 = symbols
                    .iter()
                    .map(|(mint, _)| Symbol::from_bytes(mint))
                    .collect();
                cache.0 = Some(Instant::now());
            }
        }
        cache.1.clone()
    }
}
