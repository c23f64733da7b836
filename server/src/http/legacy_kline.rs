//! `GET /api/kline`: the existing Spin Pet server's candle route, exactly as its front-ends call it
//! (`/work/shared/spinpet/upstream-interfaces.md` has the facts; docs/protocol.md the comparison).
//!
//! - Query: `mint` and `interval` required (missing: HTTP 400 text from axum's `Query`, as upstream),
//!   `page` (default 1), `limit` (default 50, at most 1000), `order_by` `time_desc` (default) | `time_asc`.
//! - The whole series is sorted by `order_by` and then paged: with `time_asc`, page 1 holds the oldest
//!   candles. `total` counts the series; `has_next` = `offset + limit < total`.
//! - A value that does not validate is HTTP 200 with `success: false`, a zeroed `data` and upstream's
//!   message; a storage failure is HTTP 500 with an empty body; no read permit within `rest.read_wait_ms`
//!   is HTTP 503 with `Retry-After` (`http::read_permits`).
//! - Cost: `total` is the series' kept count (one point read) and the page is read from whichever end of
//!   the series is nearer: `limit` candles, plus `min(offset, total - offset)` skipped keys for a deep page.
//!
//! Extended where no client can break: all nine intervals (the interval message lists them), and a mint
//! that is not a base58 public key is refused with a message instead of answering an empty series.

use axum::Json;
use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use kline_protocol::{Interval, Symbol};
use serde::{Deserialize, Serialize};

use super::read_permits::ReadError;
use super::reads::ReadSide;
use kline_core::aggregator::CandleState;

/// Most candles one page may hold (upstream's limit).
pub const MAX_LIMIT: usize = 1000;
const DEFAULT_LIMIT: usize = 50;

/// The query string. Typed like upstream's, so a non-integer `page` or `limit` is axum's HTTP 400 as well.
#[derive(Debug, Deserialize)]
pub struct LegacyKlineQuery {
    pub mint: String,
    pub interval: String,
    pub page: Option<usize>,
    pub limit: Option<usize>,
    pub order_by: Option<String>,
}

/// Upstream's `ApiResponse<KlineQueryResponse>`.
#[derive(Debug, Serialize)]
struct LegacyResponse {
    success: bool,
    data: LegacyPage,
    message: String,
}

/// Field order as upstream serializes it. `Default` is the zeroed object its errors carry.
#[derive(Debug, Default, Serialize)]
struct LegacyPage {
    klines: Vec<LegacyKline>,
    total: usize,
    page: usize,
    limit: usize,
    has_next: bool,
    has_prev: bool,
    interval: String,
    mint_account: String,
}

/// Upstream's `KlineData`: the protocol candle without `update_type`.
#[derive(Debug, Serialize)]
struct LegacyKline {
    time: i64,
    open: f64,
    high: f64,
    low: f64,
    close: f64,
    volume: f64,
    is_final: bool,
    update_count: u32,
}

impl From<&CandleState> for LegacyKline {
    fn from(state: &CandleState) -> LegacyKline {
        LegacyKline {
            time: state.time,
            open: state.open,
            high: state.high,
            low: state.low,
            close: state.close,
            // The old server always sent 0; now the token volume, as in contract v1's `volume`.
            volume: state.volume.to_wire()[0],
            is_final: state.is_final,
            update_count: state.update_count,
        }
    }
}

/// A validated query.
struct PageRequest {
    symbol: Symbol,
    interval: Interval,
    page: usize,
    limit: usize,
    newest_first: bool,
}

pub async fn legacy_kline(
    State(state): State<ReadSide>,
    Query(query): Query<LegacyKlineQuery>,
) -> Response {
    let request = match validate(query) {
        Ok(request) => request,
        Err(message) => return answer(false, LegacyPage::default(), message),
    };
    let offset = (request.page - 1).saturating_mul(request.limit);
    let (mint, interval, newest_first, limit) = (
        request.symbol.to_bytes(),
        request.interval,
        request.newest_first,
        request.limit,
    );
    let page = state
        .permits
        .read(&state.store, move |store| {
            store.series_page(&mint, interval, newest_first, offset, limit)
        })
        .await;
    match page {
        Ok(page) => answer(
            true,
            LegacyPage {
                klines: page.candles.iter().map(LegacyKline::from).collect(),
                total: page.total,
                page: request.page,
                limit: request.limit,
                has_next: offset.saturating_add(request.limit) < page.total,
                has_prev: request.page > 1,
                interval: request.interval.to_string(),
                mint_account: request.symbol.to_string(),
            },
            "Operation successful".into(),
        ),
        Err(ReadError::Store(err)) => {
            tracing::error!(error = %err, "GET /api/kline: store read failed");
            StatusCode::INTERNAL_SERVER_ERROR.into_response()
        }
        // Busy (503 with Retry-After), shutting down, or a failed read task.
        Err(ReadError::Refused(err)) => err.into_response(),
    }
}

fn answer(success: bool, data: LegacyPage, message: String) -> Response {
    Json(LegacyResponse {
        success,
        data,
        message,
    })
    .into_response()
}

/// Upstream's checks in upstream's order, with its messages.
fn validate(query: LegacyKlineQuery) -> Result<PageRequest, String> {
    if query.mint.is_empty() {
        return Err("mint parameter cannot be empty".into());
    }
    let symbol = Symbol::parse(&query.mint)
        .map_err(|err| format!("mint parameter is not a valid mint address: {err}"))?;
    let interval: Interval = query.interval.parse().map_err(|_| {
        let names: Vec<&str> = Interval::ALL.iter().map(|i| i.as_str()).collect();
        format!("interval parameter must be one of: {}", names.join(", "))
    })?;
    let limit = query.limit.unwrap_or(DEFAULT_LIMIT);
    if limit > MAX_LIMIT {
        return Err(format!("limit cannot exceed {MAX_LIMIT}"));
    }
    let page = query.page.unwrap_or(1);
    if page < 1 {
        return Err("page must be greater than 0".into());
    }
    let newest_first = match query.order_by.as_deref() {
        None | Some("time_desc") => true,
        Some("time_asc") => false,
        Some(_) => return Err("order_by must be 'time_asc' or 'time_desc'".into()),
    };
    Ok(PageRequest {
        symbol,
        interval,
        page,
        limit,
        newest_first,
    })
}
