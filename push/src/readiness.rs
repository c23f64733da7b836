//! [`Readiness`]: whether this node takes new clients. Answered by `/ready` (a load balancer's check) and
//! asked by `/ws` and Socket.IO before they accept a new connection; connections already open stay.
//!
//! Roles `all` and `writer` are ready once they serve. An edge is ready once its replica is loaded and it
//! has read the stream's head since start, while it is no more than `stream.max_lag_groups` groups behind
//! that head, and — with `stream.stale_policy = "unready"` — while it reads from Redis
//! ([`StreamStatus::readiness`], whose docs give the rule).
//!
//! `/metrics` says the same as `kline_ready`, computed by [`Readiness::check`] at each scrape, so an alert
//! on it and the load balancer's check of `/ready` never disagree.

use std::sync::Arc;

use axum::http::header::RETRY_AFTER;
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;

use kline_store::replication::NotReady;

use kline_store::replication::StreamStatus;

use kline_store::replication::ReadinessPolicy;

/// Seconds a refused client is told to wait before it tries again (as at the socket budget).
const RETRY_AFTER_SECS: &str = "5";

#[derive(Debug, Clone)]
pub enum Readiness {
    /// Ready whenever it serves.
    Always,
    /// Ready while the replica follows the stream closely enough.
    Replica {
        status: Arc<StreamStatus>,
        policy: ReadinessPolicy,
    },
}

impl Readiness {
    /// `Err` says why new clients are refused.
    pub fn check(&self) -> Result<(), NotReady> {
        match self {
            Readiness::Always => Ok(()),
            Readiness::Replica { status, policy } => status.readiness(policy),
        }
    }

    /// An edge's readiness policy (`None` for the roles that are always ready).
    pub fn policy(&self) -> Option<&ReadinessPolicy> {
        match self {
            Readiness::Always => None,
            Readiness::Replica { policy, .. } => Some(policy),
        }
    }

    /// Registers `ready` in `/metrics` (1 while `/ready` answers 200, else 0), read at each scrape.
    pub fn register(&self, registry: &mut Registry) {
        registry.register_collector(Box::new(self.clone()));
    }
}

impl Collector for Readiness {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let ready = ConstGauge::new(i64::from(self.check().is_ok()));
        let metric = encoder.encode_descriptor(
            "ready",
            "1 while GET /ready answers 200 (new clients taken), 0 while it answers 503",
            None,
            ready.metric_type(),
        )?;
        ready.encode(metric)
    }
}

/// The answer to a new client while the node is not ready: 503, `Retry-After`, the reason as text.
pub fn refusal(reason: &NotReady) -> Response {
    (
        StatusCode::SERVICE_UNAVAILABLE,
        [(RETRY_AFTER, HeaderValue::from_static(RETRY_AFTER_SECS))],
        format!("not ready: {reason}\n"),
    )
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scrape(registry: &Registry) -> String {
        let mut text = String::new();
        prometheus_client::encoding::text::encode(&mut text, registry).unwrap();
        text
    }

    #[test]
    fn the_ready_gauge_follows_the_replica_at_each_scrape() {
        let status = Arc::new(StreamStatus::default());
        let readiness = Readiness::Replica {
            status: status.clone(),
            policy: ReadinessPolicy::of(&kline_config::StreamConfig {
                max_lag_groups: 5,
                ..kline_config::Config::defaults().stream
            }),
        };
        let mut registry = Registry::with_prefix("kline");
        readiness.register(&mut registry);
        let ready_line = |text: &str| {
            text.lines()
                .find(|l| l.starts_with("kline_ready "))
                .map(str::to_owned)
        };
        assert_eq!(
            ready_line(&scrape(&registry)).as_deref(),
            Some("kline_ready 0")
        );
        status.set_replica_loaded(true);
        status.set_applied(10);
        status.observe_head(10);
        assert_eq!(
            ready_line(&scrape(&registry)).as_deref(),
            Some("kline_ready 1")
        );
        status.observe_head(16);
        assert_eq!(
            ready_line(&scrape(&registry)).as_deref(),
            Some("kline_ready 0")
        );
        assert!(scrape(&registry).contains("# TYPE kline_ready gauge"));
    }

    #[test]
    fn a_node_without_a_replica_is_always_ready() {
        let mut registry = Registry::with_prefix("kline");
        Readiness::Always.register(&mut registry);
        assert!(scrape(&registry).lines().any(|l| l == "kline_ready 1"));
    }
}
