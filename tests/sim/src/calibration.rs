//! The calibration rows (shared by the `calibrate` binary and the tests), their targets from
//! the issue, and the markdown table.

use std::fmt::Write as _;

use flagwire_core::judge::{Guardrails, Plan, Policy, Step};

use crate::faults::Faults;
use crate::scenario::{Onset, Regression, Scenario};
use crate::stats::Stats;
use crate::traffic::Health;

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
        regression: Some(Regression {
            onset: Onset::AtMs(0),
            error_multiplier: errors,
            latency_multiplier: latency,
        }),
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

/// The rows of the targets, regressions that start late (at a time, at a step), and
/// the headline rows again at the former default alpha of 0.05 for comparison.
pub fn rows() -> Vec<Row> {
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
        regression: Some(Regression {
            onset: Onset::AtStep(1),
            error_multiplier: 2.0,
            latency_multiplier: 1.0,
        }),
        ..healthy("errors-x2-at-25pct-2000", typical_plan(), 2_000.0)
    };
    let at_time = Scenario {
        regression: Some(Regression {
            onset: Onset::AtMs(10 * MINUTE),
            error_multiplier: 1.0,
            latency_multiplier: 1.5,
        }),
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

/// The markdown table of `rows` with their `stats` (same order).
pub fn table(rows: &[Row], stats: &[Stats]) -> String {
    let mut t = String::from(
        "| scenario | rps | α | faults | runs | false rollbacks (95 % upper) | detected | \
         time to detect: median · p90 | reached 100 %; by min + 1 window; slowest | targets |\n\
         |---|---:|---:|---|---:|---:|---:|---:|---:|---|\n",
    );
    for (row, s) in rows.iter().zip(stats) {
        let sc = &row.scenario;
        let regressed = sc.regression.is_some();
        let detect = if regressed {
            let q = |q| s.detection_quantile(q).map_or("never".to_owned(), duration);
            format!("{} · {}", q(0.5), q(0.9))
        } else {
            "—".to_owned()
        };
        let reached = if s.completed_ms.is_empty() {
            "—".to_owned()
        } else {
            let bound = sc.minimum_ms() + sc.plan.policy.window_ms;
            format!(
                "{} of {}; {} by {}; max {}",
                s.completed_ms.len(),
                s.runs,
                s.completed_within(bound),
                duration(bound),
                duration(*s.completed_ms.last().unwrap_or(&0))
            )
        };
        let targets = row
            .targets
            .iter()
            .map(|t| {
                let verdict = if t.met(sc, s) { "met" } else { "**not met**" };
                format!("{}: {verdict}", t.describe())
            })
            .collect::<Vec<_>>()
            .join("; ");
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} | {} | {} ({}) | {} | {} | {} | {} |",
            sc.name,
            sc.rps,
            sc.plan.guardrails.alpha,
            faults(&sc.faults),
            s.runs,
            percent(s.false_rollback_rate()),
            percent(s.false_rollback_upper()),
            if regressed {
                percent(s.power())
            } else {
                "—".to_owned()
            },
            detect,
            reached,
            if targets.is_empty() { "—" } else { &targets },
        );
    }
    t
}

/// Why the runs ended and held: rollback reasons and held windows per row.
pub fn reasons(rows: &[Row], stats: &[Stats]) -> String {
    let mut t = String::from(
        "| scenario | rollbacks by reason | held windows by reason | late · lost · duplicate reports |\n\
         |---|---|---|---|\n",
    );
    let list = |v: &[(flagwire_core::judge::Reason, u32)]| {
        if v.is_empty() {
            "—".to_owned()
        } else {
            v.iter()
                .map(|(r, n)| format!("{} {n}", r.code()))
                .collect::<Vec<_>>()
                .join(", ")
        }
    };
    for (row, s) in rows.iter().zip(stats) {
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} · {} · {} |",
            row.scenario.name,
            list(&s.rollbacks),
            list(&s.holds),
            s.faults[0],
            s.faults[1],
            s.faults[2]
        );
    }
    t
}

fn faults(f: &Faults) -> String {
    if f.lost <= 0.0 && f.late <= 0.0 && f.duplicated <= 0.0 {
        "none".to_owned()
    } else {
        format!(
            "{} instances: lost {}, late {}, dup {}",
            f.instances,
            percent(f.lost),
            percent(f.late),
            percent(f.duplicated)
        )
    }
}

/// `0.0123` as `1.23 %`.
pub fn percent(x: f64) -> String {
    format!("{:.2} %", x * 100.0)
}

/// Milliseconds as `1 m 30 s`, `40 s`.
pub fn duration(ms: i64) -> String {
    let s = ms / SECOND;
    match (s / 60, s % 60) {
        (0, s) => format!("{s} s"),
        (m, 0) => format!("{m} min"),
        (m, s) => format!("{m} min {s} s"),
    }
}
