//! gRPC service implementations: thin adapters from requests to [`crate::catalog::Catalog`]
//! calls. Every failure converts to a `Status` through `From<Error>` in [`crate::error`].
//!
//! - [`admin`]: the `AdminService` handlers.
//! - [`flags`]: the `FlagService` handlers (Watch, Evaluate, EvaluateAll).
//! - [`watch_stream`]: the stream type Watch returns; [`watch_route`]: FlagService as
//!   registered, with Watch writing the hub's pre-encoded frames.
//! - [`metrics`]: the `MetricsService` handlers (reports, usage, the SDK-instance registry).
//! - [`rollouts`]: the `RolloutService` handlers; [`releases`]: the `ReleaseService` handlers.

pub mod admin;
pub mod flags;
pub mod metrics;
pub mod releases;
pub mod rollouts;
pub mod watch_route;
pub mod watch_stream;

use crate::auth::principal;
use crate::catalog::Meta;
use tonic::{Request, Status};

/// The audit metadata of a write: the token name, and the reason from the request field or,
/// when that is empty, from the `x-flagwire-reason` metadata.
pub(crate) fn meta<T>(request: &Request<T>, reason: &str) -> Result<Meta, Status> {
    let actor = principal(request)?.name;
    let reason = if reason.is_empty() {
        request
            .metadata()
            .get("x-flagwire-reason")
            .and_then(|v| v.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    } else {
        reason.to_owned()
    };
    Ok(Meta { actor, reason })
}

/// Turns a required message field into a value or an `INVALID_ARGUMENT` naming it.
pub(crate) fn required<T>(value: Option<T>, field: &str) -> Result<T, Status> {
    value.ok_or_else(|| Status::invalid_argument(format!("invalid argument: {field}: required")))
}

/// Clamps a page size: 0 means the default of 100; at most 1000.
pub(crate) fn page_size(requested: u32) -> usize {
    match requested {
        0 => 100,
        n => n.min(1000) as usize,
    }
}
