//! `ReadPermits`: the bound on the REST routes' blocking store reads (`rest.max_concurrent_reads`).
//!
//! A request takes a permit before its read goes to the blocking pool and gives it back when the read is
//! done. One that finds none free waits at most `rest.read_wait_ms` (the semaphore is fair: first come,
//! first served), then is refused: 503 with `Retry-After`, counted in `kline_rest_reads_refused_total`.
//! Why not an unbounded queue: every waiting request holds a connection and its memory, the wait grows
//! without bound, and neither the client nor a load balancer learns that this node is overloaded; a
//! bounded wait absorbs bursts shorter than it, and a refusal lets them go elsewhere or come back later.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Semaphore;

use super::error::ApiError;
use kline_core::stats::Counter;
use kline_store::{CandleStore, StoreError};

/// What a refused request is told to wait before trying again (the header's unit: whole seconds).
const RETRY_AFTER_SECS: u64 = 1;

#[derive(Clone)]
pub struct ReadPermits {
    permits: Arc<Semaphore>,
    wait: Duration,
    refused: Counter,
}

impl ReadPermits {
    /// `max` reads at once; a request waits at most `wait` for its turn; refusals are counted in `refused`.
    pub fn new(max: usize, wait: Duration, refused: Counter) -> ReadPermits {
        ReadPermits {
            permits: Arc::new(Semaphore::new(max)),
            wait,
            refused,
        }
    }

    /// Runs `read` on the blocking pool under a permit. Refused ([`ApiError::Busy`]) when no permit frees
    /// within the wait.
    pub async fn read<T, F>(&self, store: &Arc<CandleStore>, read: F) -> Result<T, ReadError>
    where
        T: Send + 'static,
        F: FnOnce(&CandleStore) -> Result<T, StoreError> + Send + 'static,
    {
        let permit =
            match tokio::time::timeout(self.wait, self.permits.clone().acquire_owned()).await {
                Ok(Ok(permit)) => permit,
                Ok(Err(_)) => return Err(ReadError::Refused(ApiError::Unavailable)),
                Err(_) => {
                    kline_core::stats::add(&self.refused, 1);
                    return Err(ReadError::Refused(ApiError::Busy {
                        retry_after_secs: RETRY_AFTER_SECS,
                    }));
                }
            };
        let store = store.clone();
        let read = tokio::task::spawn_blocking(move || {
            let _permit = permit;
            read(&store)
        });
        match read.await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(err)) => Err(ReadError::Store(err)),
            Err(err) => Err(ReadError::Refused(err.into())),
        }
    }
}

impl ReadPermits {
    /// Requests refused so far.
    pub fn refused(&self) -> u64 {
        self.refused.get()
    }
}

/// Why a read gave no value: the store's error (the route decides what it means), or a refusal.
#[derive(Debug)]
pub enum ReadError {
    Store(StoreError),
    Refused(ApiError),
}

impl From<ReadError> for ApiError {
    fn from(err: ReadError) -> ApiError {
        match err {
            ReadError::Store(err) => err.into(),
            ReadError::Refused(err) => err,
        }
    }
}
