//! `POST /api/v1/events`: authenticated event ingest. Takes one event, a JSON array, or NDJSON; answers
//! only after the valid events are durably written, with counts and a reason for each rejected event.

use std::sync::Arc;

use axum::extract::{DefaultBodyLimit, State};
use axum::http::HeaderMap;
use axum::routing::post;
use axum::{Json, Router};
use serde::Serialize;

use super::bearer;
use super::error::ApiError;
use kline_config::Config;
use kline_core::clock::now_ms;
use kline_core::event::{ParseLimits, parse_event, split_body};
use kline_pipeline::service::IngestHandle;
use kline_pipeline::stats::PipelineStats;

/// What the ingest route needs: the pipeline's queue, the token, the price scale and the rejection counter.
#[derive(Clone)]
pub struct Ingest {
    pub handle: IngestHandle,
    token: Arc<str>,
    price_scale: u32,
    stats: Arc<PipelineStats>,
}

impl Ingest {
    /// The ingest part, or `None` when the route is off (`ingest.enabled` false or no token).
    pub fn from_config(
        config: &Config,
        handle: IngestHandle,
        stats: Arc<PipelineStats>,
    ) -> Option<Ingest> {
        Some(Ingest {
            handle,
            token: config.ingest_token()?.into(),
            price_scale: config.kline.price_scale_decimals,
            stats,
        })
    }
}

/// `POST /api/v1/events` with its body limit (`ingest.max_body_bytes`) and its state applied.
pub fn routes(ingest: Ingest, max_body_bytes: usize) -> Router {
    Router::new()
        .route(
            "/api/v1/events",
            post(ingest_events).layer(DefaultBodyLimit::max(max_body_bytes)),
        )
        .with_state(ingest)
}

#[derive(Debug, Serialize)]
pub struct IngestResponse {
    pub accepted: usize,
    pub duplicates: usize,
    pub rejected: usize,
    /// One entry per rejected event: its position in the body (0-based) and why.
    pub errors: Vec<Rejection>,
}

#[derive(Debug, Serialize)]
pub struct Rejection {
    pub index: usize,
    pub reason: String,
}

pub async fn ingest_events(
    State(state): State<Ingest>,
    headers: HeaderMap,
    body: String,
) -> Result<Json<IngestResponse>, ApiError> {
    // The receipt time of these events: the request has been read whole.
    let received_at_ms = now_ms();
    if !bearer::presents(&headers, &state.token) {
        return Err(ApiError::Unauthorized);
    }

    let texts = split_body(&body).map_err(|err| ApiError::BadRequest(err.to_string()))?;
    let limits = ParseLimits {
        now_ms: now_ms(),
        price_scale: state.price_scale,
    };
    let mut events = Vec::with_capacity(texts.len());
    let mut errors = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        match parse_event(text, &limits) {
            Ok(event) => events.push(event),
            Err(err) => errors.push(Rejection {
                index,
                reason: err.to_string(),
            }),
        }
    }
    kline_core::stats::add(&state.stats.events_rejected, errors.len());
    if !errors.is_empty() {
        tracing::debug!(rejected = errors.len(), first = %errors[0].reason, "ingest rejected events");
    }
    let report = if events.is_empty() {
        Default::default()
    } else {
        state
            .handle
            .submit_received(events, Vec::new(), received_at_ms)
            .await?
    };
    Ok(Json(IngestResponse {
        accepted: report.accepted,
        duplicates: report.duplicates,
        rejected: errors.len(),
        errors,
    }))
}
