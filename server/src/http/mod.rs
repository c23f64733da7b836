//! The HTTP surface: `app(state) -> Router` with every route (REST, `/ws`, `/metrics`), CORS and body limits;
//! [`serve`] runs it on a listener.

mod chart;
mod error;
mod health;
mod ingest;
mod klines;
mod legacy_kline;
pub mod metrics;
pub mod serve;
mod trades;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::HeaderValue;
use axum::routing::{get, post};
use tower_http::cors::{AllowOrigin, CorsLayer};

pub use error::ApiError;

use crate::app::AppState;
use crate::config::CorsOrigins;

pub fn app(state: AppState) -> Router {
    let mut router = Router::new()
        .route("/health", get(health::health))
        .route("/api/v1/klines", get(klines::klines))
        .route("/api/v1/symbols", get(klines::symbols))
        .route("/api/v1/trades", get(trades::trades))
        .route("/api/kline", get(legacy_kline::legacy_kline))
        .route("/metrics", get(metrics::metrics))
        .route("/ws", get(crate::ws::upgrade))
        .merge(chart::routes());
    if state.config.ingest_token().is_some() {
        router = router.route(
            "/api/v1/events",
            post(ingest::ingest_events)
                .layer(DefaultBodyLimit::max(state.config.ingest.max_body_bytes)),
        );
    }
    if state.config.socketio.enabled {
        router = router.layer(crate::socketio::layer(&state));
    }
    let cors = cors_layer(&state.config.server.cors_allowed_origins);
    router.layer(cors).with_state(state)
}

fn cors_layer(origins: &CorsOrigins) -> CorsLayer {
    match origins {
        CorsOrigins::Keyword(_) => CorsLayer::permissive(),
        CorsOrigins::List(list) => {
            let origins: Vec<HeaderValue> = list
                .iter()
                .filter_map(|o| HeaderValue::from_str(o).ok())
                .collect();
            CorsLayer::new().allow_origin(AllowOrigin::list(origins))
        }
    }
}
