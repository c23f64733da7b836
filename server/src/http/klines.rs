//! Read-only REST routes over the candle store: `GET /api/v1/klines`, `GET /api/v1/symbols`, and the
//! existing server's `GET /api/kline` (kept so today's front-ends keep working).

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kline_protocol::{ClientRequest, HistoryData, Interval, Symbol};
use serde::Serialize;
use serde_json::{Value, json};

use super::error::ApiError;
use crate::app::AppState;
use crate::history::{HistoryRequest, history_data};

/// `GET /api/v1/klines?symbol=&interval=&limit=&from=&to=`: same semantics and validation as the WebSocket
/// `history` request; answers with its `history_data` payload.
pub async fn klines(
    State(state): State<AppState>,
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
        limit: history
            .limit
            .unwrap_or(state.config.kline.history_data_limit),
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
pub async fn symbols(State(state): State<AppState>) -> Result<Json<Vec<SymbolSummary>>, ApiError> {
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

/// A candle in the shape the legacy route always had: the v1 candle fields up to `volume` (now filled),
/// without the fields added later (`quote_volume`, `taker_buy_*`).
fn legacy_candle(state: &crate::aggregator::CandleState) -> Value {
    let mut candle = serde_json::to_value(state.to_candle()).expect("candles serialize");
    if let Some(fields) = candle.as_object_mut() {
        for added in ["quote_volume", "taker_buy_volume", "taker_buy_quote_volume"] {
            fields.remove(added);
        }
    }
    candle
}

/// Most candles the legacy route pages through (page × limit).
const LEGACY_MAX_DEPTH: usize = 100_000;

/// `GET /api/kline?mint=&interval=&page=&limit=&order_by=time_asc|time_desc`, in the existing server's
/// `{"success","data","message"}` wrapping. Pages count from 1, newest candles first for `time_desc`
/// (the default); `time_asc` returns the same page in ascending order.
pub async fn legacy_kline(
    State(state): State<AppState>,
    Query(params): Query<HashMap<String, String>>,
) -> Response {
    match legacy_page(&state, &params).await {
        Ok(data) => Json(json!({ "success": true, "data": data, "message": "ok" })).into_response(),
        Err(ApiError::BadRequest(message)) => (
            StatusCode::BAD_REQUEST,
            Json(json!({ "success": false, "data": null, "message": message })),
        )
            .into_response(),
        Err(other) => (
            StatusCode::INTERNAL_SERVER_ERROR,
            Json(json!({ "success": false, "data": null, "message": other.to_string() })),
        )
            .into_response(),
    }
}

async fn legacy_page(
    state: &AppState,
    params: &HashMap<String, String>,
) -> Result<Value, ApiError> {
    let bad = |message: String| ApiError::BadRequest(message);
    let mint = params
        .get("mint")
        .ok_or_else(|| bad("missing `mint`".into()))?;
    let symbol = Symbol::parse(mint).map_err(|err| bad(err.to_string()))?;
    let interval: Interval = params
        .get("interval")
        .map(|s| s.parse())
        .transpose()
        .map_err(|err: kline_protocol::IntervalError| bad(err.to_string()))?
        .unwrap_or(Interval::S1);
    let number = |name: &str, default: usize| -> Result<usize, ApiError> {
        params.get(name).map_or(Ok(default), |v| {
            v.parse::<usize>()
                .ok()
                .filter(|n| *n >= 1)
                .ok_or_else(|| bad(format!("`{name}` must be a positive integer, got `{v}`")))
        })
    };
    let page = number("page", 1)?;
    let limit = number("limit", 50)?.min(1000);
    let ascending = match params.get("order_by").map(String::as_str) {
        None | Some("time_desc") => false,
        Some("time_asc") => true,
        Some(other) => {
            return Err(bad(format!(
                "`order_by` must be time_asc or time_desc, got `{other}`"
            )));
        }
    };
    let depth = page.saturating_mul(limit);
    if depth > LEGACY_MAX_DEPTH {
        return Err(bad(format!(
            "page × limit must be at most {LEGACY_MAX_DEPTH}"
        )));
    }
    let store = state.store.clone();
    let mint_bytes = symbol.to_bytes();
    let query = crate::store::HistoryQuery {
        from: None,
        to: None,
        limit: depth,
    };
    let history =
        tokio::task::spawn_blocking(move || store.history(&mint_bytes, interval, query)).await??;
    // `history` is ascending and holds the newest `depth` candles; this page is the oldest `limit` of them.
    let newest_first: Vec<_> = history.candles.iter().rev().skip(depth - limit).collect();
    let mut klines: Vec<_> = newest_first
        .iter()
        .map(|state| legacy_candle(state))
        .collect();
    if ascending {
        klines.reverse();
    }
    Ok(json!({
        "mint": symbol,
        "interval": interval,
        "page": page,
        "limit": limit,
        "order_by": if ascending { "time_asc" } else { "time_desc" },
        "has_next": history.has_more,
        "has_prev": page > 1,
        "klines": klines,
    }))
}
