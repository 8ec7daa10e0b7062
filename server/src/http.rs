//! The plain-HTTP port: `/healthz` now, `/metrics` later. Kept off the gRPC port so probes and
//! scrapers need no HTTP/2 or gRPC client.

use axum::{Router, http::StatusCode, routing::get};

/// The HTTP routes. `/healthz` answers 200 once the server is up: the store is opened before
/// this router is served.
pub fn router() -> Router {
    Router::new().route("/healthz", get(|| async { (StatusCode::OK, "ok\n") }))
}
