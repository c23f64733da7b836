//! Role `writer`: the sources, HTTP ingest, the pipeline with the stream's outbox, the authoritative store
//! and the publisher that appends the outbox to the stream; the snapshot on the internal listener. No push:
//! no `/ws`, no Socket.IO, no hub.
//!
//! Shutdown order: stop accepting → stop the sources → let the pipeline store what is queued → flush
//! RocksDB → the publisher appends the groups it has not sent yet. Each step is bounded by
//! `server.shutdown_timeout_secs`; groups the publisher could not send (Redis unreachable) stay in the
//! outbox and are published at the next start.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Base, ServerError, WritePath, grace, internal, serve_http, wait_bounded};
use crate::http::serve::SocketBudget;
use crate::http::status::{self, NodeStatus};
use crate::http::{self, metrics};
use kline_config::Config;
use kline_core::stats::PushStats;
use kline_pipeline::feed::CandleFeed;
use kline_push::readiness::Readiness;
use kline_store::replication::StreamStatus;
use kline_store::replication::outbox::Outbox;
use kline_stream::publisher;

pub async fn run(
    config: Config,
    base: Base,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let internal_listener = internal::bind(&config)?;
    let stream = Arc::new(StreamStatus::default());
    let outbox = Outbox::open(&base.store, config.stream.max_len, stream.clone())?;
    let committed = outbox.committed();
    // Nobody reads the feed on a writer: the edges get the groups through the stream.
    let write = WritePath::start(
        &config,
        &base.store,
        CandleFeed::unread(),
        Some(outbox),
        &shutdown,
    )?;
    let background = TaskTracker::new();
    base.start_retention(&config, &background, &shutdown);
    let publisher_stop = CancellationToken::new();
    let publishing = TaskTracker::new();
    publishing.spawn(publisher::run(
        base.store.clone(),
        config.stream.clone(),
        committed,
        stream.clone(),
        publisher_stop.clone(),
    ));

    // Client sockets here are HTTP only; their refusals at the budget are counted in these stats.
    let sockets = Arc::new(PushStats::default());
    let mut registry = metrics::registry(
        Some(&write.stats),
        &sockets,
        write.solana.as_ref(),
        &base.store_stats,
    );
    stream.register(&mut registry);
    Readiness::Always.register(&mut registry);
    let status = Arc::new(NodeStatus {
        role: config.node.role,
        started_at: base.started_at,
        store_path: base.store.path().to_owned(),
        readiness: Readiness::Always,
        write: Some(write.status(&config)),
        push: None,
        stream: Some(stream),
        metrics: registry,
    });
    let router = Router::new()
        .merge(status::routes(status))
        .merge(http::reads::routes(base.reads(&config)))
        .merge(write.routes(&config));
    let budget = SocketBudget {
        max: base.socket_budget,
        websockets: TaskTracker::new(),
        stats: sockets,
    };
    let (served, internal_served) = tokio::join!(
        serve_http(&config, &base, listener, router, budget, &shutdown),
        internal::serve(
            &config,
            &base,
            internal_listener,
            Readiness::Always,
            &shutdown
        ),
    );
    internal_served?;

    let grace = grace(&config);
    tracing::info!("stopping sources");
    write.stop_sources(grace).await;
    wait_bounded(&background, grace, "retention").await;
    // The pipeline stores what is queued; then the publisher, seeing the pipeline gone, appends the
    // groups it has not sent yet and ends (or, with Redis unreachable, is stopped after the timeout:
    // the groups stay in the outbox for the next start).
    write.drain().await?;
    wait_bounded(&publishing, grace, "stream publisher").await;
    publisher_stop.cancel();
    tracing::info!("store flushed; bye");
    served
}
