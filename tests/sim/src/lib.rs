//! A seeded synthetic-traffic simulator for the canary rollout judge
//! ([`flagwire_core::judge::judge`]).
//!
//! Requests arrive as a Poisson process; each cohort (canary, control) gets its share of a
//! step's traffic, every request has an outcome (Bernoulli error) and a lognormal latency; a
//! regression makes the canary fail more often or run slower from a chosen time or step; SDK
//! reports can be lost, late or duplicated on their way. The rollout is driven exactly as the
//! server drives it (a window every `policy.window_ms`, PROMOTE starts the next step at once,
//! ROLLBACK ends it), so the calibration measures the judge the server runs. Everything is
//! drawn from one seeded generator per run: the same seed gives the same rollout.

pub mod calibration;
pub mod faults;
pub mod latency;
pub mod run;
pub mod scenario;
pub mod stats;
pub mod traffic;

pub use faults::Faults;
pub use latency::Latency;
pub use run::{End, Outcome, run};
pub use scenario::{Onset, Regression, Scenario};
pub use stats::{Stats, simulate};
pub use traffic::Health;

/// Basis points of a complete rollout (the plan's "100 %" step).
pub const COMPLETE: u32 = 10_000;
