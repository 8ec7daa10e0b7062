//! Flagwire's Rust SDK: evaluate feature flags locally, in nanoseconds, from a copy of an
//! environment that the server keeps current over a gRPC stream.
//!
//! ```no_run
//! # async fn demo() -> Result<(), flagwire::Error> {
//! use flagwire::{Client, Context};
//! use std::time::Duration;
//!
//! let client = Client::builder("http://127.0.0.1:7070", "fw_…sdk token…").build()?;
//! client.wait_ready(Duration::from_secs(5)).await?;
//! let ctx = Context::new("user-42").with("country", "NL").with("plan", "pro");
//! if client.bool_value("new-checkout", &ctx, false) {
//!     // the new checkout
//! }
//! client.close().await;
//! # Ok(()) }
//! ```
//!
//! # Layout
//! - [`Client`] (`client`): typed getters and their `*_details` forms, readiness, state, change
//!   events. Evaluation never blocks, never panics and never fails: on any problem it returns
//!   the caller's default with reason `ERROR` and an error code.
//! - [`ClientBuilder`] (`builder`): endpoint, token, timeouts, bootstrap file, offline mode, TLS.
//! - `sync`: the background task that runs `Watch`, applies snapshots and changes in revision
//!   order, reconnects with capped, jittered backoff, and acknowledges applied revisions, by the
//!   rules of `docs/reference/sync.md`; `sync_scenarios` (tests only) runs `tests/sync/` on it.
//! - `bootstrap`: persisting and loading the last snapshot.
//! - [`Context`] (`context`): building an evaluation context.
//! - [`EvaluationDetails`] (`details`): what a `*_details` getter returns.
//! - `metrics`, `report`: evaluation counts and measured outcomes ([`Client::measure`]), kept
//!   in bounded memory and flushed through `MetricsService.Report`.
//! - [`FlagwireLayer`] (`layer`): a `tower::Layer` that measures every request and attributes
//!   it to the flags evaluated while handling it.
//! - [`remote`]: thin mode, evaluation on the server for callers that hold no local copy.
//!
//! Semantics are `docs/evaluation.md`'s, through `flagwire-core`, the same engine the server
//! runs; `tests/vectors/` checks this crate's public API against every case.
#![deny(missing_docs)]

mod bootstrap;
mod builder;
mod client;
mod context;
mod details;
mod error;
mod layer;
mod metrics;
pub mod remote;
mod report;
mod sync;
#[cfg(test)]
mod sync_scenarios;

pub use builder::ClientBuilder;
pub use client::{Client, FlagChange, Measurement, State};
pub use context::Context;
pub use details::EvaluationDetails;
pub use error::Error;
pub use flagwire_proto::v1::{ErrorCode, Reason};
pub use layer::{FlagwireLayer, FlagwireService};
pub use metrics::Served;
