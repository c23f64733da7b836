//! [`WritePath`]: the pipeline on its own thread and the sources that feed it (simulator, Solana; HTTP
//! ingest is its route). Roles `all` and `writer`.

use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use axum::Router;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::http::ingest::{self, Ingest};
use crate::http::status::WriteStatus;
use crate::source;
use crate::source::solana::SolanaStatus;
use kline_config::Config;
use kline_pipeline::feed::CandleFeed;
use kline_pipeline::provisional::ProvisionalLimits;
use kline_pipeline::service::{self, IngestHandle};
use kline_pipeline::stats::PipelineStats;
use kline_pipeline::{Pipeline, PipelineSettings};
use kline_store::replication::outbox::Outbox;
use kline_store::{CandleStore, StoreError};

/// The running write path.
pub struct WritePath {
    pub ingest: IngestHandle,
    pub stats: Arc<PipelineStats>,
    /// The Solana source's state, when it is on.
    pub solana: Option<Arc<SolanaStatus>>,
    sources: TaskTracker,
    pipeline_stop: CancellationToken,
    pipeline_thread: JoinHandle<Pipeline>,
}

impl WritePath {
    /// Opens the pipeline on `store` (publishing to `feed`, and numbering its groups in `outbox` on a
    /// writer), starts its thread and the configured sources; the sources stop when `shutdown` is cancelled.
    pub fn start(
        config: &Config,
        store: &Arc<CandleStore>,
        feed: CandleFeed,
        outbox: Option<Outbox>,
        shutdown: &CancellationToken,
    ) -> Result<WritePath, StoreError> {
        let stats = Arc::new(PipelineStats::default());
        let mut pipeline = Pipeline::open(
            store.clone(),
            PipelineSettings::from_config(config),
            feed,
            stats.clone(),
        )?
        .with_provisional_limits(ProvisionalLimits {
            max_events: config.pipeline.provisional_max_events,
            ttl_ms: i64::try_from(config.pipeline.provisional_ttl_ms).unwrap_or(i64::MAX / 2),
        });
        if let Some(outbox) = outbox {
            pipeline = pipeline.with_outbox(outbox);
        }
        pipeline.index_stored_names()?;
        let pipeline_stop = CancellationToken::new();
        let (ingest, pipeline_thread) = service::spawn(
            pipeline,
            config.pipeline.queue_capacity,
            config.pipeline.max_batch_events,
            pipeline_stop.clone(),
        );
        let sources = TaskTracker::new();
        if config.source.simulator.enabled {
            sources.spawn(source::simulator::run(
                config.source.simulator.clone(),
                ingest.clone(),
                shutdown.child_token(),
            ));
        }
        let solana = config
            .source
            .solana
            .enabled
            .then(|| Arc::new(SolanaStatus::default()));
        if let Some(status) = &solana {
            sources.spawn(source::solana::run(
                config.source.solana.clone(),
                config.kline.price_scale_decimals,
                ingest.clone(),
                store.clone(),
                status.clone(),
                shutdown.child_token(),
            ));
        }
        sources.close();
        Ok(WritePath {
            ingest,
            stats,
            solana,
            sources,
            pipeline_stop,
            pipeline_thread,
        })
    }

    /// `POST /api/v1/events` when ingest is on (an empty router otherwise).
    pub fn routes(&self, config: &Config) -> Router {
        match Ingest::from_config(config, self.ingest.clone(), self.stats.clone()) {
            Some(part) => ingest::routes(part, config.ingest.max_body_bytes),
            None => Router::new(),
        }
    }

    /// The write side as `/health` shows it.
    pub fn status(&self, config: &Config) -> WriteStatus {
        WriteStatus {
            stats: self.stats.clone(),
            ingest: self.ingest.clone(),
            simulator_enabled: config.source.simulator.enabled,
            ingest_enabled: config.ingest_token().is_some(),
            solana: self.solana.clone(),
        }
    }

    /// Waits (at most `grace`) for the sources, which stop once the shutdown token is cancelled.
    pub async fn stop_sources(&self, grace: Duration) {
        super::wait_bounded(&self.sources, grace, "sources").await;
    }

    /// Lets the pipeline store what is already queued (later submissions are refused), then flushes the
    /// store.
    pub async fn drain(self) -> Result<(), StoreError> {
        self.pipeline_stop.cancel();
        let thread = self.pipeline_thread;
        let pipeline = tokio::task::spawn_blocking(move || thread.join())
            .await
            .ok()
            .and_then(Result::ok);
        match pipeline {
            Some(pipeline) => pipeline.store().flush()?,
            None => tracing::error!("the pipeline thread panicked"),
        }
        Ok(())
    }
}
