//! `[rest]`: what bounds the REST reads: the permits of the blocking store reads, and the paged, cached
//! symbol list of `GET /api/v1/symbols`.

use serde::Deserialize;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RestConfig {
    /// Store reads of `GET /api/v1/klines`, `/api/v1/trades` and `/api/kline` running at once.
    pub max_concurrent_reads: usize,
    /// How long a request waits for a read permit before it is answered 503 with `Retry-After` (ms).
    pub read_wait_ms: u64,
    /// Mints per `GET /api/v1/symbols` page when the request gives no `limit`.
    pub symbols_default_limit: usize,
    /// The largest `limit` a symbols page may ask for.
    pub symbols_max_limit: usize,
    /// The symbol list is read from the store at most this often (ms), and only after a write changed it.
    pub symbols_refresh_ms: u64,
    /// Most mints the symbol list holds: the most recently updated.
    pub symbols_max: usize,
}

impl RestConfig {
    /// The first key whose value cannot work, and why.
    pub fn problem(&self) -> Option<(&'static str, &'static str)> {
        if self.max_concurrent_reads == 0 {
            return Some(("rest.max_concurrent_reads", "must be positive"));
        }
        if self.symbols_max_limit == 0 {
            return Some(("rest.symbols_max_limit", "must be positive"));
        }
        if !(1..=self.symbols_max_limit).contains(&self.symbols_default_limit) {
            return Some((
                "rest.symbols_default_limit",
                "must be between 1 and rest.symbols_max_limit",
            ));
        }
        if self.symbols_max == 0 {
            return Some(("rest.symbols_max", "must be positive"));
        }
        None
    }
}
