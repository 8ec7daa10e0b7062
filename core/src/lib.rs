//! Flagwire's pure engine: everything about flags that needs no runtime, clock, randomness or I/O.
//!
//! # Layout
//! - [`validate`]: whole-object checks of flags, segments and keys, reporting the field path and
//!   the reason of the first problem. The server runs them on every admin write.
//! - [`project`]: the per-environment view of a flag that Watch snapshots and changes carry.
//!
//! The evaluation semantics (`docs/evaluation.md`) and canary statistics join this crate in later
//! issues; the server and every SDK call the same code.

pub mod project;
pub mod validate;
