//! The writer's publisher: appends the outbox to the Redis stream in order. (Being built: issue 16.)

use std::sync::Arc;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::StreamStatus;
use crate::config::StreamConfig;
use crate::store::CandleStore;

/// Publishes committed groups until `shutdown` is cancelled.
pub async fn run(
    _store: Arc<CandleStore>,
    _config: StreamConfig,
    _committed: watch::Receiver<u64>,
    _status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) {
    shutdown.cancelled().await;
}
