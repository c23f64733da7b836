//! The node's own state for operators and load balancers, as one part: `GET /health`, `GET /ready` and
//! `GET /metrics`, over [`NodeStatus`]. Every role serves them; what they report depends on the parts the
//! role runs.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::routing::get;
use prometheus_client::registry::Registry;

use super::{health, metrics, ready};
use crate::source::solana::SolanaStatus;
use kline_config::Role;
use kline_core::stats::PushStats;
use kline_pipeline::service::IngestHandle;
use kline_pipeline::stats::PipelineStats;
use kline_push::readiness::Readiness;
use kline_store::replication::StreamStatus;

/// What the status routes read. Built once per process by the role's composition.
pub struct NodeStatus {
    pub role: Role,
    pub started_at: Instant,
    pub store_path: PathBuf,
    pub readiness: Readiness,
    /// Roles `all` and `writer`: the pipeline and its sources.
    pub write: Option<WriteStatus>,
    /// Roles `all` and `edge`: the push service.
    pub push: Option<PushStatus>,
    /// Roles `writer` and `edge`: the stream's sequence numbers.
    pub stream: Option<Arc<StreamStatus>>,
    /// Every metric the role registered, once (`/metrics`).
    pub metrics: Registry,
}

/// The write side as `/health` shows it.
pub struct WriteStatus {
    pub stats: Arc<PipelineStats>,
    /// For the queue's length.
    pub ingest: IngestHandle,
    pub simulator_enabled: bool,
    pub ingest_enabled: bool,
    /// The Solana source's state, when it is on.
    pub solana: Option<Arc<SolanaStatus>>,
}

/// The push side as `/health` shows it.
pub struct PushStatus {
    pub stats: Arc<PushStats>,
    /// `websocket.max_connections`.
    pub max_connections: usize,
}

impl NodeStatus {
    /// The role as configured (`node.role`).
    pub fn role_name(&self) -> &'static str {
        match self.role {
            Role::All => "all",
            Role::Writer => "writer",
            Role::Edge => "edge",
        }
    }
}

/// The status routes, with their state applied.
pub fn routes(status: Arc<NodeStatus>) -> Router {
    Router::new()
        .route("/health", get(health::health))
        .route("/ready", get(ready::ready))
        .route("/metrics", get(metrics::metrics))
        .with_state(status)
}
