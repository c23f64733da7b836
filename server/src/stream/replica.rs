//! The edge's replica: applies the stream to the local store, then publishes to the local hub. (Being
//! built: issue 16.)

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::StreamStatus;
use crate::config::StreamConfig;
use crate::feed::CandleFeed;
use crate::store::CandleStore;

/// Applies the stream until `shutdown` is cancelled.
pub async fn run(
    _store: Arc<CandleStore>,
    _feed: CandleFeed,
    _config: StreamConfig,
    _status: Arc<StreamStatus>,
    shutdown: CancellationToken,
) {
    shutdown.cancelled().await;
}
