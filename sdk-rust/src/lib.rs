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
//! - [`ClientBuilder`] (`builder`): endpoints, token, timeouts, bootstrap file, offline mode, TLS.
//! - `endpoints`: several endpoints (replicas), names expanded to their addresses, and the
//!   rotation through them after a session ends.
//! - `sync`: the background task that runs `Watch`, applies snapshots and changes in revision
//!   order, reconnects with capped, jittered backoff, and acknowledges applied revisions, by the
//!   rules of `docs/reference/sync.md`; `sync_scenarios` (tests only) runs `tests/sync/` on it.
//! - `bootstrap`: persisting and loading the last snapshot.
//! - [`Context`] (`context`): building an evaluation context.
//! - [`EvaluationDetails`] (`details`): what a `*_details` getter returns.
//! - `measure`, `scope`: request scopes ([`Client::scope`], [`Client::measure`],
//!   [`Client::start_measure`]): an outcome (success or error, and latency) recorded against
//!   every flag read in the scope, and once per release cohort among them.
//! - `metrics`, `cohorts`, `report`: evaluation counts, per-flag outcomes and per-(release,
//!   cohort) outcomes, kept in bounded memory and flushed through `MetricsService.Report`.
//! - `track` ([`Client::track`], [`Client::track_outcome`], [`Client::observe`],
//!   [`Client::timer`], [`Client::attribute_to`]): the team's own metrics; `metric_event`
//!   (valid events, a scope's events per name) and `metric_window` (per flag variant and per
//!   release cohort, in the same bounded window and report) by `tests/metrics/README.md`.
//! - [`FlagwireLayer`] (`layer`): a `tower::Layer` that makes every request a scope.
//! - [`remote`]: thin mode, evaluation on the server for callers that hold no local copy.
//! - `openfeature` (cargo feature `openfeature`): an OpenFeature provider for the crate
//!   `open-feature` 0.3, evaluating from the client's live copy.
//!
//! Semantics are `docs/evaluation.md`'s, through `flagwire-core`, the same engine the server
//! runs; `tests/vectors/` checks this crate's public API against every case.
#![deny(missing_docs)]

mod bootstrap;
mod builder;
mod client;
mod cohorts;
mod context;
mod details;
mod endpoints;
mod error;
mod layer;
mod measure;
mod metric_event;
mod metric_window;
mod metrics;
#[cfg(test)]
mod metrics_encoding_tests;
#[cfg(feature = "openfeature")]
pub mod openfeature;
pub mod remote;
mod report;
mod scope;
#[cfg(test)]
mod scope_tests;
mod series;
mod sync;
#[cfg(test)]
mod sync_scenarios;
mod track;
#[cfg(test)]
mod track_tests;

pub use builder::ClientBuilder;
pub use client::{Client, FlagChange, State};
pub use context::Context;
pub use details::EvaluationDetails;
pub use error::Error;
pub use flagwire_proto::v1::{ErrorCode, Reason};
pub use layer::{FlagwireLayer, FlagwireService};
pub use measure::Measurement;
pub use metrics::Served;
pub use track::{Attribution, MetricTimer};
