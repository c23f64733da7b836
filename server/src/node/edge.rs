//! Role `edge`: a replica of the writer's store, filled from the stream by the replica task, which
//! publishes each applied group to the local feed; the push core, `/ws`, Socket.IO, the REST reads and the
//! chart page over the replica. No sources, no ingest, no pipeline. New clients are taken only while the
//! replica is ready ([`Readiness::Replica`]).
//!
//! Shutdown order: close connections → stop the hubs → stop the replica task → flush RocksDB. Each step
//! is bounded by `server.shutdown_timeout_secs`.

use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Base, PushCore, ServerError, grace, internal, serve_http, wait_bounded};
use crate::http::status::{self, NodeStatus};
use crate::http::{self, metrics};
use kline_config::{Config, StreamConfig};
use kline_push::readiness::Readiness;
use kline_store::replication::ReadinessPolicy;
use kline_store::replication::StreamStatus;
use kline_stream::replica;

pub async fn run(
    config: Config,
    base: Base,
    listener: TcpListener,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    if config.source.simulator.enabled
        || config.source.solana.enabled
        || config.ingest_token().is_some()
    {
        tracing::info!(
            "role edge: the configured sources and ingest are not run here (the writer's)"
        );
    }
    let internal_listener = internal::bind(&config)?;
    let stream = Arc::new(StreamStatus::default());
    let readiness = Readiness::Replica {
        status: stream.clone(),
        policy: ReadinessPolicy::of(&config.stream),
    };
    let feed = PushCore::feed(&config);
    let replica_stop = CancellationToken::new();
    let replica_thread = replica::spawn(
        base.store.clone(),
        feed.clone(),
        StreamConfig {
            snapshot_token: config.snapshot_token().unwrap_or_default().to_owned(),
            ..config.stream.clone()
        },
        stream.clone(),
        replica_stop.clone(),
    );
    let background = TaskTracker::new();
    base.start_retention(&config, &background, &shutdown);
    let push = PushCore::start(&config, &base.store, &feed, readiness.clone(), &shutdown);

    let mut registry = metrics::registry(None, &push.context.push_stats, None, &base.store_stats);
    stream.register(&mut registry);
    readiness.register(&mut registry);
    let status = Arc::new(NodeStatus {
        role: config.node.role,
        started_at: base.started_at,
        store_path: base.store.path().to_owned(),
        readiness: readiness.clone(),
        write: None,
        push: Some(push.status()),
        stream: Some(stream),
        metrics: registry,
    });
    let router = Router::new()
        .merge(status::routes(status))
        .merge(http::reads::routes(base.reads(&config)));
    let router = push.serve_on(router);
    let budget = push.socket_budget(base.socket_budget);
    let (served, internal_served) = tokio::join!(
        serve_http(&config, &base, listener, router, budget, &shutdown),
        internal::serve(&config, &base, internal_listener, readiness, &shutdown),
    );
    internal_served?;

    let grace = grace(&config);
    push.stop(grace).await;
    replica_stop.cancel();
    let joined = tokio::task::spawn_blocking(move || replica_thread.join());
    if tokio::time::timeout(grace, joined).await.is_err() {
        tracing::warn!("the stream replica did not stop within the shutdown timeout");
    }
    wait_bounded(&background, grace, "retention").await;
    base.store.flush()?;
    tracing::info!("store flushed; bye");
    served
}
