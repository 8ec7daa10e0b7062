//! The plain-HTTP port: `/healthz`, `/metrics`, OFREP (merged in by the server from
//! [`crate::ofrep`]) and the web console (`/`, see [`crate::console`]). Kept off the gRPC port so
//! probes, scrapers, OFREP clients and browsers need no HTTP/2 or gRPC client.

use crate::catalog::Catalog;
use crate::console::{self, ConsoleConfig};
use crate::telemetry::{CONTENT_TYPE, Telemetry};
use axum::{Router, extract::State, http::StatusCode, http::header, routing::get};
use std::sync::Arc;

/// The HTTP routes. `/healthz` answers 200 while the store answers (the store is opened before
/// this router is served; PostgreSQL is probed every second) and 503 while it does not: a
/// replica that cannot write leaves the load balancer's rotation, though it still serves what
/// it has. A replica that fell behind the trimmed log answers 503 saying so, while it stops.
/// `/metrics` is the Prometheus scrape target. Everything else is the console's.
pub fn router(telemetry: Arc<Telemetry>, catalog: Arc<Catalog>, console: ConsoleConfig) -> Router {
    Router::new()
        .route(
            "/healthz",
            get(move || async move {
                let store = catalog.store();
                if let Some(why) = store.stalled() {
                    (StatusCode::SERVICE_UNAVAILABLE, format!("{why}\n"))
                } else if store.healthy() {
                    (StatusCode::OK, "ok\n".to_owned())
                } else {
                    (
                        StatusCode::SERVICE_UNAVAILABLE,
                        "store unavailable\n".to_owned(),
                    )
                }
            }),
        )
        .route("/metrics", get(metrics))
        .with_state(telemetry)
        .merge(console::router(console))
}

async fn metrics(State(telemetry): State<Arc<Telemetry>>) -> impl axum::response::IntoResponse {
    // Encoding takes locks that ingestion takes too: run it on the blocking pool, not on an
    // async worker.
    match tokio::task::spawn_blocking(move || telemetry.render()).await {
        Ok(body) => Ok(([(header::CONTENT_TYPE, CONTENT_TYPE)], body)),
        Err(e) => Err((StatusCode::INTERNAL_SERVER_ERROR, format!("metrics: {e}\n"))),
    }
}
