//! `GET /api/v1/symbols?limit=&cursor=`: the known mints with their last price, most recently updated
//! first, a page at a time from the shared [`kline_store::symbol_directory::SymbolDirectory`], each with its
//! token's `ticker`, `name` and `uri` (sanitised; `null` when unknown), read for the page's mints only.
//!
//! The body is the JSON array it always was; without parameters it is the first
//! `rest.symbols_default_limit` mints (every mint, while there are no more). `limit` is 1 to
//! `rest.symbols_max_limit`; when more mints follow, the `Link` header names the next page
//! (`<…?limit=N&cursor=C>; rel="next"`, RFC 8288), whose `cursor` is opaque.

use std::collections::HashMap;

use axum::Json;
use axum::extract::{Query, State};
use axum::http::HeaderValue;
use axum::http::header::LINK;
use axum::response::{IntoResponse, Response};
use kline_protocol::{NameText, Symbol, TickerText, UriText};
use serde::Serialize;

use super::error::{ApiError, limit_param};
use super::reads::ReadSide;
use kline_core::names::TokenName;
use kline_store::symbol_directory::{SymbolCursor, SymbolEntry};

/// The route's path, which the `Link` header's next page repeats.
const PATH: &str = "/api/v1/symbols";

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
    /// The token's ticker, name and metadata URI from its `TokenCreatedEvent`, sanitised (`null` when
    /// unknown; text, never markup).
    pub ticker: Option<TickerText>,
    pub name: Option<NameText>,
    pub uri: Option<UriText>,
}

impl SymbolSummary {
    fn new(entry: &SymbolEntry, name: Option<TokenName>) -> SymbolSummary {
        let stats = &entry.stats;
        let name = name.unwrap_or(TokenName {
            ticker: None,
            name: None,
            uri: None,
        });
        SymbolSummary {
            symbol: Symbol::from_bytes(&entry.mint),
            last_price: stats.last_price,
            last_event_time: stats.last_key.ts_ms.div_euclid(1000),
            updated_at_ms: stats.updated_at_ms,
            event_count: stats.event_count,
            ticker: name.ticker,
            name: name.name,
            uri: name.uri,
        }
    }
}

pub async fn symbols(
    State(state): State<ReadSide>,
    Query(params): Query<HashMap<String, String>>,
) -> Result<Response, ApiError> {
    let (default_limit, max_limit) = state.symbols_limits;
    let limit = limit_param(&params, default_limit, max_limit)?;
    let cursor = params
        .get("cursor")
        .map(|text| {
            SymbolCursor::parse(text).ok_or_else(|| {
                ApiError::BadRequest(format!(
                    "`cursor` is not one this server gave (a `Link` header's): `{text}`"
                ))
            })
        })
        .transpose()?;
    let list = state.symbols.list().await?;
    let start = cursor.map_or(0, |cursor| cursor.position_in(&list));
    let page = &list[start..list.len().min(start.saturating_add(limit))];
    let mints: Vec<[u8; 32]> = page.iter().map(|entry| entry.mint).collect();
    let names = state
        .permits
        .read(&state.store, move |store| store.names_of(&mints))
        .await?;
    let body: Vec<SymbolSummary> = page
        .iter()
        .zip(names)
        .map(|(entry, name)| SymbolSummary::new(entry, name))
        .collect();
    let mut response = Json(body).into_response();
    if let Some(last) = page.last()
        && start + page.len() < list.len()
    {
        let next = format!(
            "<{PATH}?limit={limit}&cursor={}>; rel=\"next\"",
            SymbolCursor::after(last)
        );
        if let Ok(value) = HeaderValue::from_str(&next) {
            response.headers_mut().insert(LINK, value);
        }
    }
    Ok(response)
}
