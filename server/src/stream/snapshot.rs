//! `GET /internal/snapshot`: a consistent copy of the replicated data and the group number it is
//! consistent with. (Being built: issue 16.)

use std::sync::Arc;

use axum::Router;

use crate::store::CandleStore;

/// The snapshot route, with its state applied.
pub fn routes(_store: Arc<CandleStore>) -> Router {
    Router::new()
}
