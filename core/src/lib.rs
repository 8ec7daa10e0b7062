//! Flagwire's pure engine: everything about flags that needs no runtime, clock, randomness or I/O.
//!
//! # Layout
//! - [`snapshot`]: an environment's flags and segments, compiled as they enter (`compile`:
//!   operators decoded, clause values parsed, variants resolved) and indexed; `engine`: the
//!   evaluation algorithm specified in `docs/evaluation.md`; [`evaluation`]: its result.
//! - [`context`], `operators`, [`rfc3339`]: attributes and clause operators (compiled);
//!   [`prepared`]: a context checked and indexed once for many evaluations.
//! - [`bucket`]: murmur3 bucketing of splits (flagd's `fractional` formula).
//! - [`validate`]: whole-object checks of flags, segments and keys, reporting the field path and
//!   the reason of the first problem. The server runs them on every admin write.
//! - [`stats`]: anytime-valid canary-versus-control tests and sample-ratio checks, the parts
//!   the rollout judge is built from.
//! - [`judge`]: the rollout judge: PROMOTE / HOLD / ROLLBACK from windows of canary and control
//!   aggregates, as a pure function of (plan, position, windows, now).
//! - [`release`]: the release state machine: (spec, state, event) → (state, flag changes, log);
//!   the judge's decisions and people's commands are its events.
//! - [`project`]: the per-environment view of a flag that Watch snapshots and changes carry.
//! - [`histogram`]: exponential latency histograms (scale 3, exact integer bucketing) that SDKs
//!   report and the server merges.
//!
//! The server and every SDK call the same code; `tests/vectors/` pins its behaviour for the
//! Python and TypeScript SDKs.

pub mod bucket;
mod compile;
pub mod context;
mod engine;
pub mod evaluation;
pub mod histogram;
pub mod judge;
mod operators;
pub mod prepared;
pub mod project;
pub mod release;
pub mod rfc3339;
pub mod snapshot;
pub mod stats;
pub mod validate;

pub use evaluation::Evaluation;
pub use prepared::PreparedContext;
pub use snapshot::Snapshot;
