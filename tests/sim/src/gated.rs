//! The gated rows (issue 14): releases and rollouts gated on five of the team's own metrics,
//! recorded per request as SDKs record them ([`crate::metrics`]), under the error-rate and p95
//! guardrails. The release's α (0.03) is then split seven ways: the error rate, the p95 and
//! each of the five relative gates.
//!
//! The metrics, per request of either cohort:
//! - `mem0.write`: a rate, a mem0 write on 30 % of requests, 99.5 % of them succeeding;
//! - `fastpath.hit`: a rate, a fast-path attempt on every request, 70 % of them hits;
//! - `satisfaction`: a mean, a score on 25 % of requests, mean 4.0, standard deviation 1.0;
//! - `fastpath.latency`: a distribution, observed on 70 % of requests, lognormal with a median
//!   of 5 ms and σ 0.8 (p95 ≈ 18.6 ms);
//! - `faq.hits`: a count per request, Poisson with a mean of 1.5 (22 % of requests have none).
//!
//! Each has a relative gate with no margin (the strictest: an A/A release sits exactly on the
//! null), higher is better except for the latency (its p95). `mem0.write` also has a two-tier
//! absolute gate: "> 99 %, roll back below 95 %".

use flagwire_core::judge::gate::{
    AbsoluteGate, Comparison, Direction, Metric as Definition, MetricKind, RelativeGate,
};
use flagwire_core::judge::{Gate, Plan};

use crate::calibration::{Row, Target, at_alpha, healthy, healthy_release, held_plan, regressed};
use crate::latency::Latency;
use crate::metrics::{Metric, Model};
use crate::scenario::{Onset, Regression, Scenario};

const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

/// The five metrics every request of a gated row records (see the module docs).
pub fn team_metrics() -> Vec<Metric> {
    vec![
        Metric::new("mem0.write", write_success(0.995)),
        Metric::new("fastpath.hit", fast_path_hits(0.70)),
        Metric::new("satisfaction", satisfaction(4.0)),
        Metric::new(
            "fastpath.latency",
            Model::Observed {
                share: 0.7,
                values: Latency {
                    median_ms: 5.0,
                    sigma: 0.8,
                },
            },
        ),
        Metric::new("faq.hits", Model::Count { mean: 1.5 }),
    ]
}

/// `mem0.write` succeeding with probability `success`.
pub fn write_success(success: f64) -> Model {
    Model::Outcome {
        share: 0.3,
        success,
    }
}

/// `fastpath.hit` hitting with probability `hit`.
pub fn fast_path_hits(hit: f64) -> Model {
    Model::Outcome {
        share: 1.0,
        success: hit,
    }
}

/// `satisfaction` scores with this mean (standard deviation 1).
pub fn satisfaction(mean: f64) -> Model {
    Model::Value {
        share: 0.25,
        mean,
        sd: 1.0,
    }
}

fn definition(name: &str, kind: MetricKind, direction: Direction) -> Definition {
    Definition {
        name: name.to_owned(),
        kind,
        direction,
    }
}

/// A relative gate with no margin on each of the five metrics, and the two-tier absolute gate
/// on `mem0.write`.
pub fn team_gates() -> Vec<Gate> {
    use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};
    let relative = |name: &str, kind, direction| {
        Gate::Relative(RelativeGate {
            name: name.to_owned(),
            metric: definition(name, kind, direction),
            margin: 0.0,
            quantile: 0.95,
        })
    };
    vec![
        relative("mem0.write", MetricKind::Rate, Higher),
        relative("fastpath.hit", MetricKind::Rate, Higher),
        relative("satisfaction", MetricKind::Mean, Higher),
        relative("fastpath.latency", MetricKind::Distribution, Lower),
        relative("faq.hits", MetricKind::CountPerRequest, Higher),
        Gate::Absolute(AbsoluteGate {
            name: "mem0.write.floor".to_owned(),
            metric: definition("mem0.write", MetricKind::Rate, Higher),
            comparison: Comparison::GreaterThan,
            threshold: 0.99,
            quantile: 0.0,
            min_count: 0,
            rollback_threshold: Some(0.95),
            total: false,
        }),
    ]
}

/// `plan` gated as the module docs say: the error rate and p95 against control, and
/// [`team_gates`] release-wide.
pub fn gated(plan: Plan) -> Plan {
    let mut p = plan;
    p.guardrails.latency_quantiles = vec![0.95];
    p.gates = team_gates();
    p
}

/// `scenario` gated, every request recording [`team_metrics`].
pub fn with_gates(scenario: Scenario) -> Scenario {
    let mut s = scenario;
    s.plan = gated(s.plan);
    s.health.metrics = team_metrics();
    s
}

/// The gated rows: A/A releases of three flags (false rollbacks ≤ 1 % per release; at
/// 200 requests/s again at α 0.02, on the same traffic), fast-path hits 70 % → 63 % on a 5 %
/// canary at 2,000 requests/s (median ≤ 2 min), satisfaction down a tenth of its standard
/// deviation there (the median reported), mem0 writes falling to 90 % when stage 1 starts
/// (the absolute gate trips within one window), errors doubled on a 5 % canary at
/// 200 requests/s under the gates' split of α, and the mem0 breach two minutes into stage 1.
pub fn gated_rows() -> Vec<Row> {
    let aa = [Target::FalseRollbacks(0.01)];
    let metric_drop = |name: &str, metric: Metric| Scenario {
        regression: Some(Regression::of_metrics(Onset::AtMs(0), vec![metric])),
        horizon_ms: 30 * MINUTE,
        ..with_gates(healthy(name, held_plan(), 2_000.0))
    };
    let breach = |name: &str, onset| Scenario {
        regression: Some(Regression::of_metrics(
            onset,
            vec![Metric::new("mem0.write", write_success(0.90))],
        )),
        ..with_gates(healthy_release(name, 2_000.0))
    };
    vec![
        Row {
            scenario: with_gates(healthy_release("gated-aa-3flags-2000", 2_000.0)),
            targets: aa.to_vec(),
        },
        Row {
            scenario: with_gates(healthy_release("gated-aa-3flags-200", 200.0)),
            targets: aa.to_vec(),
        },
        Row {
            scenario: at_alpha(
                with_gates(healthy_release("gated-aa-3flags-200", 200.0)),
                0.02,
            ),
            targets: aa.to_vec(),
        },
        Row {
            scenario: metric_drop(
                "gated-hit-70-63-5pct-2000",
                Metric::new("fastpath.hit", fast_path_hits(0.63)),
            ),
            targets: vec![Target::DetectionMedian(2 * MINUTE)],
        },
        Row {
            scenario: metric_drop(
                "gated-satisfaction-0.1sd-5pct-2000",
                Metric::new("satisfaction", satisfaction(3.9)),
            ),
            targets: Vec::new(),
        },
        Row {
            scenario: breach("gated-mem0-breach-at-25pct-2000", Onset::AtStep(1)),
            targets: vec![Target::CaughtWithin(10 * SECOND)],
        },
        // What the gates' share of α costs the error-rate test (the 5 min target of plans
        // without gates, errors-x2-5pct-200, is not this row's).
        Row {
            scenario: with_gates(regressed("gated-errors-x2-5pct-200", 200.0, 2.0, 1.0)),
            targets: Vec::new(),
        },
        // The same breach two minutes into stage 1: the absolute gate reads the whole stage,
        // whose first two healthy minutes dilute it; the relative gate sees it sooner.
        Row {
            scenario: breach("gated-mem0-breach-at-7min-2000", Onset::AtMs(7 * MINUTE)),
            targets: Vec::new(),
        },
    ]
}
