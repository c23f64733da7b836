//! `GET /api/v1/klines`: history over REST (`GET /api/v1/symbols` is in `symbols`, the existing server's
//! `GET /api/kline` in `legacy_kline`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use kline_protocol::{ClientRequest, HistoryData};
use serde_json::{Value, json};

use super::error::ApiError;
use super::reads::ReadSide;
use kline_store::history::{HistoryRequest, history_data};

/// `GET /api/v1/klines?symbol=&interval=&limit=&from=&to=`: same semantics and validation as the WebSocket
/// `history` request; answers with its `history_data` payload.
pub async fn klines(
    State(state): State<ReadSide>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<HistoryData>, ApiError> {
    let mut request = json!({ "msg_type": "history" });
    for (key, value) in &params {
        // Numbers stay numbers so the protocol's validation applies; anything else is judged as given.
        let value = match key.as_str() {
            "limit" | "from" | "to" => value
                .parse::<i64>()
                .map(Value::from)
                .unwrap_or_else(|_| json!(value)),
            _ => json!(value),
        };
        request[key.as_str()] = value;
    }
    let ClientRequest::History(history) = ClientRequest::from_value(&request)
        .map_err(|rejected| ApiError::BadRequest(rejected.error.to_string()))?
    else {
        unreachable!("msg_type is history");
    };
    let request = HistoryRequest {
        symbol: history.symbol,
        interval: history.interval,
        subscription_id: history.subscription_id,
        from: history.from,
        to: history.to,
        limit: history.limit.unwrap_or(state.history_limit),
    };
    let data = state
        .permits
        .read(&state.store, move |store| history_data(store, request))
        .await?;
    Ok(Json(data))
}
