//! The symbol list every new connection gets in `connection_success`: the newest
//! `websocket.hello_max_symbols` mints, from a [`SymbolDirectory`] of its own that holds only those and is
//! read from the store on its bounded schedule (`rest.symbols_refresh_ms`, after a write), not per
//! connection.

use std::sync::Arc;
use std::time::Duration;

use kline_protocol::Symbol;

use kline_store::CandleStore;
use kline_store::symbol_directory::SymbolDirectory;

pub struct SymbolList(SymbolDirectory);

impl SymbolList {
    /// The newest `max` mints, read again at most once per `refresh`.
    pub fn new(store: Arc<CandleStore>, refresh: Duration, max: usize) -> SymbolList {
        SymbolList(SymbolDirectory::new(store, refresh, max))
    }

    /// Known mints, most recently updated first (empty if the store could not be read yet).
    pub async fn get(&self) -> Vec<Symbol> {
        match self.0.list().await {
            Ok(list) => list
                .iter()
                .map(|entry| Symbol::from_bytes(&entry.mint))
                .collect(),
            Err(err) => {
                tracing::warn!(error = %err, "cannot read the symbol list");
                Vec::new()
            }
        }
    }
}
