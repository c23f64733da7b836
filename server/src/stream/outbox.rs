//! The writer's outbox: each committed group's [`record`](super::record) under its sequence number, in the
//! same RocksDB write as the group. (Being built: issue 16.)

use std::sync::Arc;

use tokio::sync::watch;

use super::StreamStatus;
use crate::store::{CandleStore, StoreError};

/// Numbers the pipeline's write groups and keeps their records for the publisher.
pub struct Outbox {
    committed: watch::Sender<u64>,
    status: Arc<StreamStatus>,
    max_len: u64,
}

impl Outbox {
    /// Resumes numbering after the newest group stored in `store`.
    pub fn open(
        _store: &CandleStore,
        max_len: u64,
        status: Arc<StreamStatus>,
    ) -> Result<Outbox, StoreError> {
        let (committed, _) = watch::channel(0);
        Ok(Outbox {
            committed,
            status,
            max_len,
        })
    }

    /// The newest committed group number, for the publisher.
    pub fn committed(&self) -> watch::Receiver<u64> {
        let _ = (&self.status, self.max_len);
        self.committed.subscribe()
    }
}
