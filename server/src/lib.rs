//! The Flagwire server: the store, administration, authentication and the change stream.
//!
//! # Layout
//! - [`config`]: command line and environment; [`clock`]: the injectable time everything that
//!   acts on time goes by.
//! - [`store`]: the durable key-value trait, sled and in-memory implementations.
//! - [`catalog`]: environments, flags, segments, tokens and audit over a store, one writer at a
//!   time, every change numbered by its environment's revision.
//! - [`hub`]: fan-out of committed changes to Watch streams.
//! - [`metrics`]: what SDKs report (usage, latency, applied revisions) and the SDK-instance
//!   registry; in memory only.
//! - [`releases`]: releases (several flags through stages over one cohort; a canary rollout
//!   is a release of one flag) judged on the SDKs' reports, and the driver that promotes or
//!   rolls them back.
//! - [`manager`]: the kill switch, rollback plans and executions, scheduled changes and ramps,
//!   and the timer that applies what is due.
//! - [`auth`]: the token layer and the table of what each RPC needs.
//! - [`service`]: gRPC handlers; [`error`]: the one error-to-`Status` mapping.
//! - [`ofrep`]: the OpenFeature Remote Evaluation Protocol on the plain-HTTP port.
//! - [`http`]: the plain-HTTP port; [`console`]: the web console it serves, embedded;
//!   [`server`]: `run(listeners, settings, shutdown)`, which tests start on `127.0.0.1:0`.
//! - [`flagd`]: the flagd evaluation and sync protocols, for OpenFeature's flagd providers.
//! - [`bundle`]: flags as code (export, import, `--bootstrap`); [`backup`]: consistent
//!   snapshots of the store and restoring them; [`protojson`]: the protobuf JSON mapping for
//!   files and `--json`; [`cli`]: the admin CLI (`flagwire flags list`, `enable`, `kill`, ...).
//! - [`telemetry`]: Prometheus `/metrics`, OpenTelemetry traces and the start-up flag summary;
//!   [`tls`]: serving both ports over TLS.
//! - [`vector_case`]: a vector case file (`tests/vectors/`) as the store entries that serve it,
//!   for the tests that serve one from a real server.

pub mod auth;
pub mod backup;
pub mod bundle;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod config;
pub mod console;
pub mod error;
pub mod flagd;
pub mod http;
pub mod hub;
pub mod manager;
pub mod metrics;
pub mod ofrep;
pub mod protojson;
pub mod releases;
pub mod server;
pub mod service;
pub mod store;
pub mod telemetry;
pub mod tls;
pub mod vector_case;

pub use server::{Settings, run};
