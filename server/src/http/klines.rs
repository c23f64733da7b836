//! Read-only REST routes over the candle store: `GET /api/v1/klines` and `GET /api/v1/symbols` (the
//! existing server's `GET /api/kline` is in `legacy_kline`).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use kline_protocol::{ClientRequest, HistoryData, Symbol};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use super::reads::ReadSide;
use crate::history::{HistoryRequest, history_data};

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
    let store = state.store.clone();
    let data = tokio::task::spawn_blocking(move || history_data(&store, request)).await??;
    Ok(Json(data))
}

#[derive(Debug, Serialize)]
pub struct SymbolSummary {
    pub symbol: Symbol,
    /// SOL per whole token.
    pub last_price: f64,
    /// Unix seconds of the last event that moved the price.
    pub last_event_time: i64,
    /// Unix ms when the server last stored an event for this mint.
    pub updated_at_ms: i64,
    pub event_count: u64,
}

/// `GET /api/v1/symbols`: every mint with a price, most recently updated first.
pub async fn symbols(State(state): State<ReadSide>) -> Result<Json<Vec<SymbolSummary>>, ApiError> {
    let store = state.store.clone();
    let mut list: Vec<SymbolSummary> = tokio::task::spawn_blocking(move || store.symbols())
        .await??
        .into_iter()
        .map(|(mint, stats)| SymbolSummary {
            symbol: Symbol::from_bytes(&mint),
            last_price: stats.last_price,
            last_event_time: stats.last_key.ts_ms.div_euclid(1000),
            updated_at_ms: stats.updated_at_ms,
            event_count: stats.event_count,
        })
        .collect();
    list.sort_by(|a, b| {
        b.updated_at_ms
            .cmp(&a.updated_at_ms)
            .then_with(|| a.symbol.cmp(&b.symbol))
    });
    Ok(Json(list))
}
