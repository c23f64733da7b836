//! The internal listener's routes (`node.internal_addr`; docs/scaling.md, "Listeners"): `/internal/*`,
//! behind the optional bearer token (`node.internal_token`; 401 without it) and the node's readiness (503
//! from an edge that is not ready: its replica is not one to copy). Never merged into the public router, so
//! the public port answers 404 there.

use axum::Router;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::http::header::WWW_AUTHENTICATE;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};

use super::bearer;
use kline_push::readiness::{self, Readiness};
use kline_stream::snapshot::{self, SnapshotService};

/// What the internal routes need.
pub struct InternalRoutes {
    pub snapshot: SnapshotService,
    /// Required from every request when set.
    pub token: Option<String>,
    pub readiness: Readiness,
}

/// The token and readiness a request passes before any internal route.
#[derive(Clone)]
struct Gate {
    token: Option<String>,
    readiness: Readiness,
}

pub fn routes(internal: InternalRoutes) -> Router {
    let gate = Gate {
        token: internal.token,
        readiness: internal.readiness,
    };
    snapshot::routes(internal.snapshot).layer(middleware::from_fn_with_state(gate, check))
}

async fn check(State(gate): State<Gate>, request: Request, next: Next) -> Response {
    if let Some(token) = &gate.token
        && !bearer::presents(request.headers(), token)
    {
        return (
            StatusCode::UNAUTHORIZED,
            [(WWW_AUTHENTICATE, "Bearer")],
            "the internal listener needs `Authorization: Bearer <node.internal_token>`\n",
        )
            .into_response();
    }
    if let Err(reason) = gate.readiness.check() {
        return readiness::refusal(&reason);
    }
    next.run(request).await
}
