//! The internal listener of the roles `writer` and `edge` (`node.internal_addr`; docs/scaling.md,
//! "Listeners"): what one node serves another — today the snapshot an edge loads — on its own port, with
//! its own small socket budget, so the public port (the one a load balancer exposes) never serves it.

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Base, ServerError, bind_addr, serve_listener};
use crate::http::internal::{self, InternalRoutes};
use crate::http::serve::SocketBudget;
use kline_config::Config;
use kline_core::stats::PushStats;
use kline_push::readiness::Readiness;
use kline_stream::snapshot::SnapshotService;

/// Sockets the internal listener holds at once: edges loading snapshots and operators' checks, a few.
const MAX_INTERNAL_SOCKETS: usize = 64;

/// The bound internal listener, or `None` when `node.internal_addr` is empty. Bound at start, so a taken
/// port stops the process before it serves anything.
pub fn bind(config: &Config) -> Result<Option<TcpListener>, ServerError> {
    let Some(addr) = config.internal_addr()? else {
        return Ok(None);
    };
    if !addr.ip().is_loopback() && config.internal_token().is_none() {
        tracing::warn!(
            %addr,
            "the internal listener is off loopback without node.internal_token: anyone who reaches it \
             can copy the whole store"
        );
    }
    bind_addr(config, addr).map(Some)
}

/// Serves `/internal/*` on `listener` until `shutdown` (at once when there is no listener).
pub async fn serve(
    config: &Config,
    base: &Base,
    listener: Option<TcpListener>,
    readiness: Readiness,
    shutdown: &CancellationToken,
) -> Result<(), ServerError> {
    let Some(listener) = listener else {
        return Ok(());
    };
    let tls = config.node.internal_tls;
    let addr = listener.local_addr().map_err(ServerError::Serve)?;
    tracing::info!(
        addr = %addr,
        tls,
        token = config.internal_token().is_some(),
        "kline-server internal listener"
    );
    let router = internal::routes(InternalRoutes {
        snapshot: SnapshotService::new(
            base.store.clone(),
            base.store_stats.clone(),
            config.node.snapshot_concurrency,
            Duration::from_secs(config.node.snapshot_write_timeout_secs),
        ),
        token: config.internal_token().map(str::to_owned),
        readiness,
    });
    let budget = SocketBudget {
        max: MAX_INTERNAL_SOCKETS,
        websockets: TaskTracker::new(),
        stats: Arc::new(PushStats::default()),
    };
    serve_listener(config, listener, router, budget, tls, shutdown).await
}
