//! [`Parts`]: what a process runs, listed once per role; [`super::run`] starts, serves and stops any list
//! the same way.
//!
//! | role | parts |
//! |---|---|
//! | `all` | [`WritePath`] + [`PushCore`] on one store |
//! | `writer` | the internal listener, the stream's outbox, [`WritePath`] with it, the [`Publisher`] |
//! | `edge` | the internal listener, the [`Replica`] fed by the stream, [`PushCore`] over it |
//!
//! Shutdown, one order for every role (a role skips the parts it does not run), each step bounded by
//! `server.shutdown_timeout_secs`: stop accepting and close connections → stop the hubs ([`PushCore`]) →
//! stop the sources → stop the replica → let retention finish → let the pipeline store what is queued and
//! flush RocksDB (without a pipeline: flush) → let the publisher append the groups it has not sent (with
//! Redis unreachable it is stopped after the timeout; the groups stay in the outbox for the next start).

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::{Base, PushCore, ServerError, WritePath, internal, wait_bounded};
use crate::http::serve::SocketBudget;
use crate::http::status::{self, NodeStatus};
use crate::http::{self, metrics};
use kline_config::{Config, Role, StreamConfig};
use kline_core::stats::PushStats;
use kline_pipeline::feed::CandleFeed;
use kline_push::readiness::Readiness;
use kline_store::CandleStore;
use kline_store::replication::outbox::Outbox;
use kline_store::replication::{ReadinessPolicy, StreamStatus};
use kline_stream::{publisher, replica};

/// The parts of one process. Each is `Some` in the roles that run it.
pub(super) struct Parts {
    /// The sources, HTTP ingest and the pipeline (`all`, `writer`).
    pub write: Option<WritePath>,
    /// The hubs and the transports (`all`, `edge`).
    pub push: Option<PushCore>,
    /// The stream's sequence numbers and staleness (`writer`, `edge`).
    pub stream: Option<Arc<StreamStatus>>,
    /// The task that appends the outbox to the stream (`writer`).
    pub publisher: Option<Publisher>,
    /// The thread that applies the stream to the local store (`edge`).
    pub replica: Option<Replica>,
    /// Whether new clients are taken: always, except on an edge whose replica lags.
    pub readiness: Readiness,
    /// The internal listener (`writer`, `edge`; `None` without `node.internal_addr`).
    pub internal: Option<TcpListener>,
}

impl Parts {
    /// Starts the parts of the configured role.
    pub fn start(
        config: &Config,
        base: &Base,
        shutdown: &CancellationToken,
    ) -> Result<Parts, ServerError> {
        match config.node.role {
            Role::All => Parts::all(config, base, shutdown),
            Role::Writer => Parts::writer(config, base, shutdown),
            Role::Edge => Parts::edge(config, base, shutdown),
        }
    }

    /// Role `all`: everything in one process, on one store (the default).
    fn all(
        config: &Config,
        base: &Base,
        shutdown: &CancellationToken,
    ) -> Result<Parts, ServerError> {
        let feed = PushCore::feed(config);
        let write = WritePath::start(config, &base.store, feed.clone(), None, shutdown)?;
        let push = PushCore::start(config, &base.store, &feed, Readiness::Always, shutdown);
        Ok(Parts {
            write: Some(write),
            push: Some(push),
            stream: None,
            publisher: None,
            replica: None,
            readiness: Readiness::Always,
            internal: None,
        })
    }

    /// Role `writer`: the sources, HTTP ingest, the pipeline with the stream's outbox, the authoritative
    /// store and the publisher that appends the outbox to the stream; the snapshot on the internal
    /// listener. No push: no `/ws`, no Socket.IO, no hub.
    fn writer(
        config: &Config,
        base: &Base,
        shutdown: &CancellationToken,
    ) -> Result<Parts, ServerError> {
        let internal = internal::bind(config)?;
        let stream = Arc::new(StreamStatus::default());
        let outbox = Outbox::open(&base.store, config.stream.max_len, stream.clone())?;
        let committed = outbox.committed();
        // Nobody reads the feed on a writer: the edges get the groups through the stream.
        let write = WritePath::start(
            config,
            &base.store,
            CandleFeed::unread(),
            Some(outbox),
            shutdown,
        )?;
        let publisher = Publisher::start(&base.store, config, committed, &stream);
        Ok(Parts {
            write: Some(write),
            push: None,
            stream: Some(stream),
            publisher: Some(publisher),
            replica: None,
            readiness: Readiness::Always,
            internal,
        })
    }

    /// Role `edge`: a replica of the writer's store, filled from the stream by the replica, which
    /// publishes each applied group to the local feed; the push core, `/ws`, Socket.IO, the REST reads and
    /// the chart page over the replica. No sources, no ingest, no pipeline. New clients are taken only
    /// while the replica is ready ([`Readiness::Replica`]).
    fn edge(
        config: &Config,
        base: &Base,
        shutdown: &CancellationToken,
    ) -> Result<Parts, ServerError> {
        if config.source.simulator.enabled
            || config.source.solana.enabled
            || config.ingest_token().is_some()
        {
            tracing::info!(
                "role edge: the configured sources and ingest are not run here (the writer's)"
            );
        }
        let internal = internal::bind(config)?;
        let stream = Arc::new(StreamStatus::default());
        let readiness = Readiness::Replica {
            status: stream.clone(),
            policy: ReadinessPolicy::of(&config.stream),
        };
        let feed = PushCore::feed(config);
        let replica = Replica::start(&base.store, &feed, config, &stream);
        let push = PushCore::start(config, &base.store, &feed, readiness.clone(), shutdown);
        Ok(Parts {
            write: None,
            push: Some(push),
            stream: Some(stream),
            publisher: None,
            replica: Some(replica),
            readiness,
            internal,
        })
    }

    /// The public router of these parts (status, REST reads, ingest, push endpoints) and the socket budget
    /// its accept loop applies.
    pub fn public_http(&self, config: &Config, base: &Base) -> (Router, SocketBudget) {
        // Without push, client sockets are HTTP only; their refusals at the budget are counted in these.
        let push_stats = match &self.push {
            Some(push) => push.context.push_stats.clone(),
            None => Arc::new(PushStats::default()),
        };
        let mut registry = metrics::registry(
            self.write.as_ref().map(|write| &*write.stats),
            &push_stats,
            self.write.as_ref().and_then(|write| write.solana.as_ref()),
            &base.store_stats,
        );
        if let Some(stream) = &self.stream {
            stream.register(&mut registry);
        }
        self.readiness.register(&mut registry);
        let status = Arc::new(NodeStatus {
            role: config.node.role,
            started_at: base.started_at,
            store_path: base.store.path().to_owned(),
            readiness: self.readiness.clone(),
            write: self.write.as_ref().map(|write| write.status(config)),
            push: self.push.as_ref().map(PushCore::status),
            stream: self.stream.clone(),
            metrics: registry,
        });
        let mut router = Router::new()
            .merge(status::routes(status))
            .merge(http::reads::routes(base.reads(config)));
        if let Some(write) = &self.write {
            router = router.merge(write.routes(config));
        }
        match &self.push {
            Some(push) => (
                push.serve_on(router),
                push.socket_budget(base.socket_budget),
            ),
            None => (
                router,
                SocketBudget {
                    max: base.socket_budget,
                    websockets: TaskTracker::new(),
                    stats: push_stats,
                },
            ),
        }
    }

    /// Stops the parts in the order of the module's docs, once the listeners have stopped; `background`
    /// holds the retention task.
    pub async fn stop(
        self,
        grace: Duration,
        store: &CandleStore,
        background: &TaskTracker,
    ) -> Result<(), ServerError> {
        if let Some(push) = self.push {
            push.stop(grace).await;
        }
        if let Some(write) = &self.write {
            tracing::info!("stopping sources");
            write.stop_sources(grace).await;
        }
        if let Some(replica) = self.replica {
            replica.stop(grace).await;
        }
        wait_bounded(background, grace, "retention").await;
        // The pipeline stores what is queued; then the publisher, seeing the pipeline gone, appends the
        // groups it has not sent yet and ends (or, with Redis unreachable, is stopped after the timeout:
        // the groups stay in the outbox for the next start).
        match self.write {
            Some(write) => write.drain().await?,
            None => store.flush()?,
        }
        if let Some(publisher) = self.publisher {
            publisher.stop(grace).await;
        }
        Ok(())
    }
}

/// The writer's publisher task ([`publisher::run`]).
pub(super) struct Publisher {
    task: TaskTracker,
    stop: CancellationToken,
}

impl Publisher {
    fn start(
        store: &Arc<CandleStore>,
        config: &Config,
        committed: watch::Receiver<u64>,
        stream: &Arc<StreamStatus>,
    ) -> Publisher {
        let stop = CancellationToken::new();
        let task = TaskTracker::new();
        task.spawn(publisher::run(
            store.clone(),
            config.stream.clone(),
            committed,
            stream.clone(),
            stop.clone(),
        ));
        Publisher { task, stop }
    }

    /// Lets the publisher append what the pipeline committed, for at most `grace`, then stops it.
    async fn stop(self, grace: Duration) {
        wait_bounded(&self.task, grace, "stream publisher").await;
        self.stop.cancel();
    }
}

/// The edge's replica thread ([`replica::spawn`]).
pub(super) struct Replica {
    thread: JoinHandle<()>,
    stop: CancellationToken,
}

impl Replica {
    fn start(
        store: &Arc<CandleStore>,
        feed: &CandleFeed,
        config: &Config,
        stream: &Arc<StreamStatus>,
    ) -> Replica {
        let stop = CancellationToken::new();
        let thread = replica::spawn(
            store.clone(),
            feed.clone(),
            StreamConfig {
                snapshot_token: config.snapshot_token().unwrap_or_default().to_owned(),
                ..config.stream.clone()
            },
            stream.clone(),
            stop.clone(),
        );
        Replica { thread, stop }
    }

    /// Stops the replica and waits for its thread, for at most `grace`.
    async fn stop(self, grace: Duration) {
        self.stop.cancel();
        let thread = self.thread;
        let joined = tokio::task::spawn_blocking(move || thread.join());
        if tokio::time::timeout(grace, joined).await.is_err() {
            tracing::warn!("the stream replica did not stop within the shutdown timeout");
        }
    }
}
