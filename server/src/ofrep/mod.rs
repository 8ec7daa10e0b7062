//! OFREP, the OpenFeature Remote Evaluation Protocol (`open-feature/protocol`,
//! `service/openapi.yaml` 0.3.0), on the plain-HTTP port: any OpenFeature SDK with an OFREP
//! provider evaluates Flagwire flags remotely, with the server's own evaluation (the
//! `flagwire-core` snapshot of the token's environment), so its answers are the SDKs'.
//!
//! # Layout
//! - [`admit`]: `Authorization: Bearer` / `X-API-Key` with an sdk token, then the per-token
//!   rate limit of [`limit`].
//! - [`context`]: the request body into an evaluation context (and its canonical JSON, for
//!   ETags).
//! - [`reply`]: results into OFREP's success and failure shapes; our reasons and error codes
//!   mapped to OFREP's.
//! - [`evaluate`]: `POST /ofrep/v1/evaluate/flags/{key}` and the bulk
//!   `POST /ofrep/v1/evaluate/flags` with `ETag` / `If-None-Match`.
//! - [`events`]: the server-sent-events stream the bulk response's `eventStreams` names
//!   (ADR-0008): a `refetchEvaluation` message on every revision of the environment.
//!
//! Every route is behind a CORS layer so browsers (the web provider) can call it from any
//! origin; the token, not the origin, is what grants access.

pub mod admit;
pub mod context;
pub mod evaluate;
pub mod events;
pub mod limit;
pub mod reply;

use crate::catalog::Catalog;
use axum::Router;
use axum::routing::{get, post};
use std::sync::Arc;
use std::time::Duration;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// Tunables of the OFREP endpoints.
#[derive(Debug, Clone)]
pub struct OfrepOptions {
    /// Requests each sdk token may make, as a GCRA quota (its burst is its size); `None`
    /// means unlimited. Checked after authentication, so unauthenticated requests never
    /// spend a token's allowance.
    pub rate_limit: Option<governor::Quota>,
}

impl OfrepOptions {
    /// The default of `flagwire serve --ofrep-rate-limit`: requests per second per token.
    pub const DEFAULT_PER_SECOND: u32 = 1000;

    /// A limit of `per_second` requests per second per token (with a burst of as many), or
    /// none for 0.
    pub fn per_second(per_second: u32) -> Self {
        Self {
            rate_limit: std::num::NonZeroU32::new(per_second).map(governor::Quota::per_second),
        }
    }
}

impl Default for OfrepOptions {
    fn default() -> Self {
        Self::per_second(Self::DEFAULT_PER_SECOND)
    }
}

/// What every OFREP handler shares.
pub struct Ofrep {
    catalog: Arc<Catalog>,
    limiter: Option<limit::Limiter>,
}

impl Ofrep {
    /// Handlers over `catalog`.
    pub fn new(catalog: Arc<Catalog>, options: &OfrepOptions) -> Self {
        Self {
            catalog,
            limiter: options.rate_limit.map(limit::Limiter::new),
        }
    }
}

/// The OFREP routes, with their CORS layer.
pub fn router(ofrep: Arc<Ofrep>) -> Router {
    Router::new()
        .route("/ofrep/v1/evaluate/flags/{key}", post(evaluate::one))
        .route("/ofrep/v1/evaluate/flags", post(evaluate::bulk))
        // The empty key: a 404 `FLAG_NOT_FOUND` in OFREP's shape, not the router's bare 404.
        .route("/ofrep/v1/evaluate/flags/", post(evaluate::empty_key))
        .route(events::PATH, get(events::stream))
        .with_state(ofrep)
        .layer(cors())
}

fn cors() -> CorsLayer {
    // Browsers send the token in a header (no cookies), so any origin may call: the token is
    // what grants access. ETag must be exposed or a browser's fetch cannot read it, and
    // Retry-After so a rate-limited page can back off.
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_methods([http::Method::GET, http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::header::IF_NONE_MATCH,
            http::header::CACHE_CONTROL,
            http::HeaderName::from_static("x-api-key"),
            http::HeaderName::from_static("last-event-id"),
        ])
        .expose_headers([http::header::ETAG, http::header::RETRY_AFTER])
        .max_age(Duration::from_secs(86_400))
}
