//! The flagd protocols, so OpenFeature's flagd providers work against Flagwire unchanged.
//!
//! # Layout
//! - [`access`]: which environment a flagd call acts on (the sdk token's, or a selector's).
//! - [`resolve`]: one evaluation by `flagwire-core`, in flagd's terms (reasons, gRPC error
//!   codes, metadata); [`context`]: flagd's `Struct` context as ours.
//! - [`evaluation_v1`], [`evaluation_v2`]: `flagd.evaluation.v1.Service` and `.v2.Service`
//!   (RPC-mode providers); [`events`]: their `EventStream`.
//! - [`revisions`]: a stream of an environment's evaluation snapshots, one per revision, that
//!   `EventStream` and `SyncFlags` are built on.
//! - [`export`]: the environment's flags as flagd flag-definition JSON (`flags.json` v0) and what
//!   it cannot express; [`sync`]: `flagd.sync.v1.FlagSyncService` (in-process providers).
//!
//! Everything here reads the catalog and the evaluation snapshots the Flagwire services use, so
//! a flagd provider gets the answers `FlagService.Evaluate` gives. See `docs/reference/flagd.md`.

pub mod access;
pub mod context;
pub mod evaluation_v1;
pub mod evaluation_v2;
pub mod events;
pub mod export;
pub mod resolve;
pub mod revisions;
pub mod sync;
