//! The Rust SDK's integration tests, one module per concern, in ONE test binary: each of these
//! links the SDK, the server crate and tonic, and linking that ten times cost CI half a minute.
//! `support` holds the in-process server (`TestServer`), the real binary (`support::binary`),
//! certificates, PostgreSQL and Prometheus launchers and the end-to-end helpers.
//!
//! `release_e2e` and `gates_e2e` are `#[ignore]`d (half a minute of real traffic each);
//! `scripts/test` runs them once, at the end: `cargo test -p flagwire --test integration --
//! --ignored release_e2e::` (or `gates_e2e::`).

mod client;
mod custom_metrics;
mod failover;
mod gates_e2e;
mod metrics;
mod openfeature;
mod openfeature_vectors;
mod release_e2e;
mod release_outcomes;
mod support;
mod tls;
