//! A seeded synthetic-traffic simulator for the canary rollout judge
//! ([`flagwire_core::judge::judge`]) and the release state machine
//! ([`flagwire_core::release::apply`]).
//!
//! Requests arrive as a Poisson process; each cohort (canary, control) gets its share of a
//! stage's traffic, every request has an outcome (Bernoulli error) and a lognormal latency,
//! records the team's own metrics (if the row has any) and reads every flag of the release; a
//! regression makes the canary fail more often, run slower or move a metric from a chosen time
//! or stage, or while two flags are on together; SDK reports can be lost, late or duplicated on
//! their way. A run is driven exactly as the server drives it (a
//! window every `policy.window_ms`, the judge's decision handed to the state machine as the
//! server's driver hands it, a promotion starting the next stage at once, a rollback ending
//! it), so the calibration measures the judge and the state machine the server runs.
//! Everything is drawn from one seeded generator per run: the same seed gives the same run.
//!
//! Layout: [`scenario`] (what a row simulates), [`traffic`], [`latency`], [`metrics`] and
//! [`faults`] (what the server receives), [`release`] (the state machine's side), [`run`] (one
//! run), [`stats`] (many runs), [`calibration`] and [`gated`] (the rows) and [`report`] (their
//! tables).

pub mod calibration;
pub mod faults;
pub mod gated;
pub mod latency;
pub mod metrics;
pub mod release;
pub mod report;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod traffic;

pub use faults::Faults;
pub use latency::Latency;
pub use metrics::{Metric, Model};
pub use run::{End, Outcome, run};
pub use scenario::{Kind, Onset, Regression, Scenario};
pub use stats::{Stats, simulate};
pub use traffic::Health;

/// Basis points of a complete rollout (the plan's "100 %" step).
pub const COMPLETE: u32 = 10_000;
