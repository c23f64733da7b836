//! The HTTP surface as parts, each a sub-router with its own state, so a role serves only the parts it
//! runs (`crate::node` merges them): [`reads`] (REST reads over the store), [`ingest`] (`POST
//! /api/v1/events`), [`status`] (`/health`, `/ready`, `/metrics`), [`chart`] (the chart page), [`internal`]
//! (`/internal/*`, on the internal listener only). `/ws` is
//! [`kline_ws::routes`], Socket.IO [`kline_socketio::attach`]. [`serve`] runs the result on a listener,
//! behind [`tls`] when the listener speaks TLS.

mod bearer;
pub mod chart;
mod error;
mod health;
pub mod ingest;
pub mod internal;
mod klines;
mod legacy_kline;
pub mod metrics;
pub mod read_permits;
pub mod reads;
mod ready;
pub mod serve;
pub mod status;
mod symbols;
pub mod tls;
mod trades;

use axum::Router;
use axum::http::HeaderValue;
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;

use kline_config::CorsOrigins;

/// `router` behind the CORS policy of `server.cors_allowed_origins` (the last layer: it answers preflights
/// for every route).
pub fn with_cors(router: Router, origins: &CorsOrigins) -> Router {
    router.layer(cors_layer(origins))
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    match origins {
        CorsOrigins::Keyword(_) => CorsLayer::permissive(),
        CorsOrigins::List(list) => {
            let origins: Vec<HeaderValue> = list
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            // `Link` carries the next page of `/api/v1/symbols`; a page script reads it only if exposed.
            CorsLayer::new()
                .allow_origin(AllowOrigin::list(origins))
                .expose_headers([axum::http::header::LINK])
        }
    }
}
