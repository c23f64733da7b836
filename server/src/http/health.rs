//! `GET /health`: whether the server is up, and the state of its store and sources.

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
            "active": state.push_stats.connections_active.get(),
            "subscriptions": state.push_stats.subscriptions_active.get(),
            "max": state.config.websocket.max_connections,
        },
        "store": {
            "state": if stats.write_errors.get() == 0 { "ok" } else { "degraded" },
            "path": state.store.path().display().to_string(),
            "write_errors": stats.write_errors.get(),
        },
        "pipeline": {
            "queued_batches": state.ingest.queued(),
            "events_accepted": stats.events_accepted.get(),
            "events_duplicate": stats.events_duplicate.get(),
            "events_rejected": stats.events_rejected.get(),
            "events_late": stats.events_late.get(),
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
                "last_slot": status.last_slot.get(),
                "lag_secs": status.lag_secs(),
                "transactions": status.transactions.get(),
                "events": status.events.get(),
                "backfilled": status.backfilled.get(),
                "decode_errors": status.decode_errors.get(),
                "blocks_unavailable": status.blocks_unavailable.get(),
                "bad_notifications": status.bad_notifications.get(),
                "reconnects": status.reconnects.get(),
            })),
        },
    }))
}
