//! Role `all`: everything in one process, on one store (the default).
//!
//! Shutdown order: stop accepting and close connections → stop the hubs → stop the sources → let the
//! pipeline store what is queued → flush RocksDB. Each step is bounded by `server.shutdown_timeout_secs`.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Base, PushCore, ServerError, WritePath, grace, serve_http, wait_bounded};
use crate::http::status::{self, NodeStatus};
use crate::http::{self, metrics};
use kline_config::Config;
use kline_push::readiness::Readiness;

pub async fn run(
    config: Config,
    base: Base,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let feed = PushCore::feed(&config);
    let write = WritePath::start(&config, &base.store, feed.clone(), None, &shutdown)?;
    let background = TaskTracker::new();
    base.start_retention(&config, &background, &shutdown);
    let push = PushCore::start(&config, &base.store, &feed, Readiness::Always, &shutdown);

    let mut registry = metrics::registry(
        Some(&write.stats),
        &push.context.push_stats,
        write.solana.as_ref(),
        &base.store_stats,
    );
    Readiness::Always.register(&mut registry);
    let status = Arc::new(NodeStatus {
        role: config.node.role,
        started_at: base.started_at,
        store_path: base.store.path().to_owned(),
        readiness: Readiness::Always,
        write: Some(write.status(&config)),
        push: Some(push.status()),
        stream: None,
        metrics: registry,
    });
    let router = Router::new()
        .merge(status::routes(status))
        .merge(http::reads::routes(base.reads(&config)))
        .merge(write.routes(&config));
    let router = push.serve_on(router);
    let budget = push.socket_budget(base.socket_budget);
    let served = serve_http(&config, &base, listener, router, budget, &shutdown).await;

    let grace = grace(&config);
    push.stop(grace).await;
    tracing::info!("stopping sources");
    write.stop_sources(grace).await;
    wait_bounded(&background, grace, "retention").await;
    write.drain().await?;
    tracing::info!("store flushed; bye");
    served
}
