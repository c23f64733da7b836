//! `GET /health`: whether the server is up, its role, and the state of the parts it runs: store, pipeline
//! and sources (roles `all`, `writer`), connections (`all`, `edge`), the stream (`writer`, `edge`).

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use serde_json::{Map, Value, json};

use super::status::{NodeStatus, PushStatus, WriteStatus};

pub async fn health(State(status): State<Arc<NodeStatus>>) -> Json<Value> {
    let mut body = Map::new();
    body.insert("status".into(), json!("ok"));
    body.insert("version".into(), json!(env!("CARGO_PKG_VERSION")));
    body.insert("role".into(), json!(status.role_name()));
    body.insert(
        "uptime_secs".into(),
        json!(status.started_at.elapsed().as_secs()),
    );
    if let Some(push) = &status.push {
        body.insert("connections".into(), connections(push));
    }
    let mut store = json!({ "path": status.store_path.display().to_string() });
    if let Some(write) = &status.write {
        store["write_errors"] = json!(write.stats.write_errors.get());
        match write.stats.storage.failure() {
            None => store["state"] = json!("ok"),
            Some(failure) => {
                // Writes fail now; they are refused (503) and retried until one succeeds.
                store["state"] = json!("degraded");
                store["reason"] = json!(failure.reason);
                store["failing_since_ms"] = json!(failure.since_ms);
            }
        }
        body.insert("pipeline".into(), pipeline(write));
        body.insert("sources".into(), sources(write));
    }
    body.insert("store".into(), store);
    if let Some(stream) = &status.stream {
        let ready = status.readiness.check();
        let mut stream = stream.health(status.readiness.policy());
        stream["ready"] = json!(ready.is_ok());
        if let Err(reason) = ready {
            stream["not_ready"] = json!(reason.to_string());
        }
        body.insert("stream".into(), stream);
    }
    Json(Value::Object(body))
}

fn connections(push: &PushStatus) -> Value {
    json!({
        "active": push.stats.connections_active.get(),
        "subscriptions": push.stats.subscriptions_active.get(),
        "max": push.max_connections,
    })
}

fn pipeline(write: &WriteStatus) -> Value {
    let stats = &write.stats;
    json!({
        "queued_batches": write.ingest.queued(),
        "events_accepted": stats.events_accepted.get(),
        "events_duplicate": stats.events_duplicate.get(),
        "events_rejected": stats.events_rejected.get(),
        "events_late": stats.events_late.get(),
        "provisional_events": stats.provisional_events.get(),
        "provisional_corrections": stats.provisional_corrections.get(),
        "provisional_orphaned": stats.provisional_orphaned.get(),
    })
}

fn sources(write: &WriteStatus) -> Value {
    let simulator = write.simulator_enabled;
    json!({
        "simulator": {
            "enabled": simulator,
            "simulated": true,
            "note": if simulator { "SIMULATED data: not real Spin Pet trades" } else { "off" },
        },
        "ingest": { "enabled": write.ingest_enabled },
        "solana": write.solana.as_ref().map_or(json!({ "enabled": false }), |status| json!({
            "enabled": true,
            "state": status.state(),
            "last_slot": status.last_slot.get(),
            "lag_secs": status.lag_secs(),
            "transactions": status.transactions.get(),
            "events": status.events.get(),
            "backfilled": status.backfilled.get(),
            "backfill_pending": status.backfill_pending.get(),
            "backfill_skipped": status.backfill_skipped.get(),
            "backfill_gaps_skipped": status.backfill_gaps_skipped.get(),
            "backfill_skipped_recent": status.skipped_gaps(),
            "decode_errors": status.decode_errors.get(),
            "events_trailing_bytes": status.events_trailing_bytes.get(),
            "events_unknown_kind": status.events_unknown_kind.get(),
            "blocks_unavailable": status.blocks_unavailable.get(),
            "rpc_retries": status.rpc_retries.get(),
            "rpc_rate_limited": status.rpc_rate_limited.get(),
            "waiting_transactions": status.waiting.get(),
            "bad_notifications": status.bad_notifications.get(),
            "reconnects": status.reconnects.get(),
        })),
    })
}
