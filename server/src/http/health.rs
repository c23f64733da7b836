//! `GET /health`: whether the server is up, and the state of its store and sources.

use std::sync::atomic::Ordering;

use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};

use crate::app::AppState;

pub async fn health(State(state): State<AppState>) -> Json<Value> {
    let stats = &state.stats;
    let simulator = &state.config.source.simulator;
    Json(json!({
        "status": "ok",
        "version": env!("CARGO_PKG_VERSION"),
        "uptime_secs": state.started_at.elapsed().as_secs(),
        "connections": {
            "active": state.push_stats.connections_active.load(Ordering::Relaxed),
            "subscriptions": state.push_stats.subscriptions_active.load(Ordering::Relaxed),
            "max": state.config.websocket.max_connections,
        },
        "store": {
            "state": if stats.write_errors.load(Ordering::Relaxed) == 0 { "ok" } else { "degraded" },
            "path": state.store.path().display().to_string(),
            "write_errors": stats.write_errors.load(Ordering::Relaxed),
        },
        "pipeline": {
            "queued_batches": state.ingest.queued(),
            "events_accepted": stats.events_accepted.load(Ordering::Relaxed),
            "events_duplicate": stats.events_duplicate.load(Ordering::Relaxed),
            "events_rejected": stats.events_rejected.load(Ordering::Relaxed),
            "events_late": stats.events_late.load(Ordering::Relaxed),
        },
        "sources": {
            "simulator": {
                "enabled": simulator.enabled,
                "simulated": true,
                "note": if simulator.enabled { "SIMULATED data: not real Spin Pet trades" } else { "off" },
            },
            "ingest": { "enabled": state.config.ingest_token().is_some() },
            "solana": state.solana.as_ref().map_or(json!({ "enabled": false }), |status| json!({
                "enabled": true,
                "state": status.state(),
                "last_slot": status.last_slot.load(Ordering::Relaxed),
                "lag_secs": status.lag_secs(),
                "transactions": status.transactions.load(Ordering::Relaxed),
                "events": status.events.load(Ordering::Relaxed),
                "backfilled": status.backfilled.load(Ordering::Relaxed),
                "decode_errors": status.decode_errors.load(Ordering::Relaxed),
                "bad_notifications": status.bad_notifications.load(Ordering::Relaxed),
                "reconnects": status.reconnects.load(Ordering::Relaxed),
            })),
        },
    }))
}
