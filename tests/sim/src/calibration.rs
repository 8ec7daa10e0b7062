//! The calibration rows (shared by the `calibrate` binary and the tests) and their targets
//! from the issues: one-flag rollouts, then releases of three flags over one cohort. The
//! tables are [`crate::report`]'s.

use flagwire_core::judge::{Guardrails, Limits, Plan, Policy, Step};
use flagwire_core::release::{Audience, Spec};

use crate::faults::Faults;
use crate::release::{flag, stage, steps};
use crate::scenario::{Kind, Onset, Regression, Scenario};
use crate::stats::Stats;
use crate::traffic::Health;

pub use crate::report::{duration, percent, reasons, table};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// A target a row is held to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Target {
    /// Share of A/A rollouts rolled back, at most.
    FalseRollbacks(f64),
    /// The same, as what the issue aims for rather than requires.
    FalseRollbacksAim(f64),
    /// Median time to detect, at most (ms).
    DetectionMedian(i64),
    /// 90th percentile time to detect, at most (ms).
    DetectionP90(i64),
    /// Every rollout that reaches 100 % does so within the plan's minimum plus one window.
    OnTime,
    /// Every run whose regression started caught it within this long (ms).
    CaughtWithin(i64),
}

impl Target {
    /// Whether `stats` of `scenario` meet it.
    pub fn met(&self, scenario: &Scenario, stats: &Stats) -> bool {
        match *self {
            Target::FalseRollbacks(max) | Target::FalseRollbacksAim(max) => {
                stats.false_rollback_rate() <= max
            }
            Target::DetectionMedian(max) => stats.detection_quantile(0.5).is_some_and(|t| t <= max),
            Target::DetectionP90(max) => stats.detection_quantile(0.9).is_some_and(|t| t <= max),
            Target::OnTime => {
                let bound = scenario.minimum_ms() + scenario.plan.policy.window_ms;
                stats.completed_within(bound) as usize == stats.completed_ms.len()
            }
            Target::CaughtWithin(max) => {
                stats.detected == stats.regressed
                    && stats.detection_ms.last().is_none_or(|&t| t <= max)
            }
        }
    }

    /// How the table states it.
    pub fn describe(&self) -> String {
        match *self {
            Target::FalseRollbacks(max) => format!("false rollbacks ≤ {}", percent(max)),
            Target::FalseRollbacksAim(max) => format!("aim ≤ {}", percent(max)),
            Target::DetectionMedian(max) => format!("median ≤ {}", duration(max)),
            Target::DetectionP90(max) => format!("p90 ≤ {}", duration(max)),
            Target::OnTime => "100 % by min + 1 window".to_owned(),
            Target::CaughtWithin(max) => format!("every onset caught ≤ {}", duration(max)),
        }
    }
}

/// A row of the calibration table.
#[derive(Debug, Clone)]
pub struct Row {
    /// What is simulated.
    pub scenario: Scenario,
    /// What it must show.
    pub targets: Vec<Target>,
}

/// The typical plan: 5 % → 25 % → 50 % → 100 %, five minutes and 1,000 outcomes per cohort at
/// each step, 10-second windows, default guardrails.
pub fn typical_plan() -> Plan {
    let step = |basis_points| Step {
        basis_points,
        min_duration_ms: 5 * MINUTE,
        min_outcomes: 1_000,
        max_duration_ms: 0,
        ..Step::default()
    };
    Plan {
        steps: vec![step(500), step(2_500), step(5_000), complete()],
        guardrails: Guardrails::default(),
        policy: Policy {
            window_ms: 10 * SECOND,
            ..Policy::default()
        },
        gates: Vec::new(),
    }
}

/// A 5 % canary held for 30 minutes, to measure how fast a regression is caught at 5 %.
pub fn held_plan() -> Plan {
    Plan {
        steps: vec![
            Step {
                basis_points: 500,
                min_duration_ms: 30 * MINUTE,
                min_outcomes: 1_000,
                max_duration_ms: 0,
                ..Step::default()
            },
            complete(),
        ],
        ..typical_plan()
    }
}

fn complete() -> Step {
    Step {
        basis_points: crate::COMPLETE,
        min_duration_ms: 0,
        min_outcomes: 0,
        max_duration_ms: 0,
        ..Step::default()
    }
}

/// A scenario with no regression and no faults over `plan`.
pub fn healthy(name: &str, plan: Plan, rps: f64) -> Scenario {
    Scenario {
        name: name.to_owned(),
        stream: name.to_owned(),
        plan,
        kind: Kind::Rollout,
        rps,
        health: Health::default(),
        regression: None,
        faults: Faults::default(),
        horizon_ms: 60 * MINUTE,
    }
}

/// A canary held at 5 % that regresses from the start.
pub fn regressed(name: &str, rps: f64, errors: f64, latency: f64) -> Scenario {
    Scenario {
        regression: Some(Regression::new(Onset::AtMs(0), errors, latency)),
        horizon_ms: 30 * MINUTE,
        ..healthy(name, held_plan(), rps)
    }
}

/// `scenario` judged at level `alpha` instead of the default, named for it, on the same
/// traffic.
pub fn at_alpha(scenario: Scenario, alpha: f64) -> Scenario {
    let mut s = scenario;
    s.name = format!("{}-alpha{alpha}", s.name);
    s.plan.guardrails.alpha = alpha;
    s
}

/// The rows of the targets, regressions that start late (at a time, at a step), the
/// headline rows again at the former default alpha of 0.05 for comparison, then the release
/// rows ([`release_rows`]) and the gated ones ([`crate::gated::gated_rows`]).
pub fn rows() -> Vec<Row> {
    let mut rows = rollout_rows();
    rows.extend(release_rows());
    rows.extend(crate::gated::gated_rows());
    rows
}

fn rollout_rows() -> Vec<Row> {
    let aa_faults = Scenario {
        faults: Faults {
            instances: 10,
            lost: 0.05,
            late: 0.02,
            duplicated: 0.05,
        },
        ..healthy("aa-faults-2000", typical_plan(), 2_000.0)
    };
    let at_step = Scenario {
        regression: Some(Regression::new(Onset::AtStep(1), 2.0, 1.0)),
        ..healthy("errors-x2-at-25pct-2000", typical_plan(), 2_000.0)
    };
    let at_time = Scenario {
        regression: Some(Regression::new(Onset::AtMs(10 * MINUTE), 1.0, 1.5)),
        ..healthy("latency-x1.5-at-10min-2000", typical_plan(), 2_000.0)
    };
    // Step minimums that are not whole windows: promotion waits for the next window close at
    // every step, so the rounding adds up across steps.
    let mut unaligned = healthy("aa-2000-min-4m55s", typical_plan(), 2_000.0);
    for step in &mut unaligned.plan.steps[..3] {
        step.min_duration_ms = 5 * MINUTE - 5 * SECOND;
    }
    let aa = [
        Target::FalseRollbacks(0.025),
        Target::FalseRollbacksAim(0.01),
        Target::OnTime,
    ];
    vec![
        Row {
            scenario: healthy("aa-2000", typical_plan(), 2_000.0),
            targets: aa.to_vec(),
        },
        Row {
            scenario: healthy("aa-200", typical_plan(), 200.0),
            targets: aa.to_vec(),
        },
        Row {
            scenario: aa_faults,
            targets: vec![Target::FalseRollbacks(0.025)],
        },
        Row {
            scenario: regressed("errors-x2-5pct-2000", 2_000.0, 2.0, 1.0),
            targets: vec![
                Target::DetectionMedian(MINUTE),
                Target::DetectionP90(2 * MINUTE),
            ],
        },
        Row {
            scenario: regressed("errors-x2-5pct-200", 200.0, 2.0, 1.0),
            targets: vec![Target::DetectionMedian(5 * MINUTE)],
        },
        Row {
            scenario: regressed("latency-x1.5-5pct-2000", 2_000.0, 1.0, 1.5),
            targets: vec![Target::DetectionMedian(2 * MINUTE)],
        },
        Row {
            scenario: unaligned,
            targets: vec![Target::OnTime],
        },
        Row {
            scenario: at_step,
            targets: Vec::new(),
        },
        Row {
            scenario: at_time,
            targets: Vec::new(),
        },
        Row {
            scenario: at_alpha(healthy("aa-2000", typical_plan(), 2_000.0), 0.05),
            targets: aa.to_vec(),
        },
        Row {
            scenario: at_alpha(healthy("aa-200", typical_plan(), 200.0), 0.05),
            targets: aa.to_vec(),
        },
        Row {
            scenario: at_alpha(regressed("errors-x2-5pct-200", 200.0, 2.0, 1.0), 0.05),
            targets: vec![Target::DetectionMedian(5 * MINUTE)],
        },
    ]
}

/// The flags of the release rows.
pub const RELEASE_FLAGS: [&str; 3] = ["checkout", "pricing", "search"];

/// The typical release: the three [`RELEASE_FLAGS`] over one cohort, turned on one more at each
/// stage as the share grows, 5 % {checkout} → 25 % {checkout, pricing} → 50 % {all three}, then
/// all three for everyone. The shared stages have a control and the typical plan's minimums
/// (5 min, 1,000 outcomes per cohort) under default guardrails; the stage for everyone has no
/// control, so it is judged on absolute limits alone: its own ceilings of 2 % errors (twice the
/// healthy rate) and a p99 of 100 ms (healthy: 64 ms), for 5 min and 1,000 outcomes. Minimum
/// 20 min.
pub fn typical_release() -> (Spec, Plan) {
    let [a, b, c] = RELEASE_FLAGS;
    let spec = Spec {
        flags: RELEASE_FLAGS.iter().map(|k| flag(k)).collect(),
        stages: vec![
            stage(Audience::Share(500), &[a]),
            stage(Audience::Share(2_500), &[a, b]),
            stage(Audience::Share(5_000), &[a, b, c]),
            stage(Audience::Everyone, &[a, b, c]),
        ],
    };
    let template = Step {
        min_duration_ms: 5 * MINUTE,
        min_outcomes: 1_000,
        ..Step::default()
    };
    let mut plan = Plan {
        steps: steps(&spec, &template),
        ..typical_plan()
    };
    if let Some(everyone) = plan.steps.last_mut() {
        everyone.limits = Limits {
            max_error_rate: 0.02,
            max_p99_ms: 100.0,
            ..Limits::default()
        };
    }
    (spec, plan)
}

/// The typical release with no regression and no faults.
pub fn healthy_release(name: &str, rps: f64) -> Scenario {
    let (spec, plan) = typical_release();
    Scenario {
        kind: Kind::Release {
            spec,
            segment_share: 0.0,
        },
        ..healthy(name, plan, rps)
    }
}

/// The release rows: A/A releases of three flags, held to 1 % false rollbacks per release, and
/// an interaction: errors doubled only while checkout and pricing are both on for the canary,
/// which the release's stage 1 (25 %) does first.
pub fn release_rows() -> Vec<Row> {
    let interaction = |name: &str, rps| Scenario {
        regression: Some(Regression::new(
            Onset::WhenServing(RELEASE_FLAGS[..2].iter().map(|&k| k.into()).collect()),
            2.0,
            1.0,
        )),
        ..healthy_release(name, rps)
    };
    let aa = [Target::FalseRollbacks(0.01), Target::OnTime];
    vec![
        Row {
            scenario: healthy_release("release-aa-3flags-2000", 2_000.0),
            targets: aa.to_vec(),
        },
        Row {
            scenario: healthy_release("release-aa-3flags-200", 200.0),
            targets: aa.to_vec(),
        },
        Row {
            scenario: interaction("release-interaction-x2-2000", 2_000.0),
            targets: Vec::new(),
        },
        Row {
            scenario: interaction("release-interaction-x2-200", 200.0),
            targets: Vec::new(),
        },
    ]
}
