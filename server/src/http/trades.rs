//! `GET /api/v1/trades?symbol=&limit=&before=`: a mint's latest trades, newest first, paged by trade id.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use kline_protocol::{MAX_TRADES_LIMIT, Symbol, TradeId, TradesPage};

use super::error::{ApiError, limit_param};
use super::read_permits::ReadError;
use super::reads::ReadSide;
use kline_store::StoreError;

/// Trades per page when the request gives no `limit`.
pub const DEFAULT_TRADES_LIMIT: u32 = 100;

/// `symbol` (required), `limit` (1–1000, default 100), `before` (a trade `id`: only older trades). Answers
/// with a [`TradesPage`]; page back with `before` = the last trade's `id` while `has_more`.
pub async fn trades(
    State(state): State<ReadSide>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Json<TradesPage>, ApiError> {
    let bad = ApiError::BadRequest;
    let symbol = params
        .get("symbol")
        .ok_or_else(|| bad("missing `symbol`".into()))?;
    let symbol = Symbol::parse(symbol).map_err(|err| bad(format!("`symbol`: {err}")))?;
    let limit = limit_param(
        &params,
        DEFAULT_TRADES_LIMIT as usize,
        MAX_TRADES_LIMIT as usize,
    )?;
    let before = params
        .get("before")
        .map(|text| TradeId::parse(text).map_err(|err| bad(format!("`before`: {err}"))))
        .transpose()?;
    let mint = symbol.to_bytes();
    let page = state
        .permits
        .read(&state.store, move |store| {
            store.trades(&mint, before.as_ref(), limit)
        })
        .await
        .map_err(|err| match err {
            ReadError::Store(err @ StoreError::UnknownTrade(_)) => bad(format!("`before`: {err}")),
            other => other.into(),
        })?;
    Ok(Json(TradesPage {
        symbol,
        data: page.trades,
        has_more: page.has_more,
    }))
}
