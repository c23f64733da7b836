//! `GET /ready`: whether a load balancer should send this node new clients. 200 `{"ready":true,"role":…}`;
//! an edge whose replica is not loaded or lags answers 503 `{"ready":false,"role":"edge","reason":…}`.

use std::sync::Arc;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};

use super::status::NodeStatus;

pub async fn ready(State(status): State<Arc<NodeStatus>>) -> (StatusCode, Json<Value>) {
    match status.readiness.check() {
        Ok(()) => (
            StatusCode::OK,
            Json(json!({ "ready": true, "role": status.role_name() })),
        ),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(
                json!({ "ready": false, "role": status.role_name(), "reason": reason.to_string() }),
            ),
        ),
    }
}
