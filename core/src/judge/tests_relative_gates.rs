//! Relative gates and the α split, on hand-built windows: each kind of metric in both
//! directions, margins, gates that cannot be tested yet, and the share of α each family of
//! tests gets. Calibration against simulated traffic is the simulator's (`tests/sim`).

use super::gate::{Direction, Metric, MetricKind, RelativeGate};
use super::relative_gates::MIN_VALUES;
use super::*;

const MIN: i64 = 60_000;
const AT: Position = Position {
    step: 0,
    step_start_ms: 0,
    started_ms: 0,
};
use Direction::{HigherIsBetter as Higher, LowerIsBetter as Lower};

/// A 5 % step of 5 min and 1,000 outcomes per cohort, then 100 %, with `gates` release-wide.
fn gated(gates: Vec<Gate>) -> Plan {
    let step = |basis_points, min_duration_ms, min_outcomes| Step {
        basis_points,
        min_duration_ms,
        min_outcomes,
        ..Step::default()
    };
    Plan {
        steps: vec![step(500, 5 * MIN, 1_000), step(10_000, 0, 0)],
        policy: Policy {
            window_ms: MIN,
            ..Policy::default()
        },
        gates,
        ..Plan::default()
    }
}

fn relative(name: &str, kind: MetricKind, direction: Direction, margin: f64) -> Gate {
    Gate::Relative(RelativeGate {
        name: name.to_owned(),
        metric: Metric {
            name: name.to_owned(),
            kind,
            direction,
        },
        margin,
        quantile: 0.95,
    })
}

/// 1,000 healthy outcomes (1 % errors, 20 ms) carrying `metrics`.
fn cohort(metrics: &[(&str, MetricAgg)]) -> Cohort {
    let mut c = Cohort {
        evaluations: 1_000,
        successes: 990,
        errors: 10,
        ..Cohort::default()
    };
    c.latency.record_n(20_000, 1_000);
    c.metrics = metrics
        .iter()
        .map(|(n, m)| ((*n).to_owned(), m.clone()))
        .collect();
    c
}

/// `count` one-minute windows of step 0 with the same canary and control.
fn windows(count: i64, canary: &Cohort, control: &Cohort) -> Vec<Window> {
    (1..=count)
        .map(|i| Window {
            end_ms: i * MIN,
            canary: canary.clone(),
            control: control.clone(),
            reports: 10,
            ..Window::default()
        })
        .collect()
}

fn outcomes(successes: u64, failures: u64) -> MetricAgg {
    MetricAgg {
        successes,
        failures,
        ..MetricAgg::default()
    }
}

/// `n` tracked values with this mean and (population) standard deviation.
fn values(n: u64, mean: f64, sd: f64) -> MetricAgg {
    let nf = n as f64;
    MetricAgg {
        count: n,
        sum: nf * mean,
        sum_of_squares: nf * (sd * sd + mean * mean),
        requests: n,
        request_sum_of_squares: nf * (sd * sd + mean * mean),
        ..MetricAgg::default()
    }
}

/// 1,000 observations spread evenly from `from_ms` to `to_ms`.
fn observed(from_ms: f64, to_ms: f64) -> MetricAgg {
    let mut m = MetricAgg::default();
    for i in 0..1_000 {
        let v = from_ms + (to_ms - from_ms) * f64::from(i) / 1_000.0;
        m.histogram.record((v * 1_000.0).round() as u64);
        m.count += 1;
        m.sum += v;
        m.sum_of_squares += v * v;
    }
    m
}

/// Judges two minutes of `canary` against `control` on the metric `name` under `gate`.
fn judge_metric(gate: Gate, name: &str, canary: MetricAgg, control: MetricAgg) -> Judgement {
    let w = windows(2, &cohort(&[(name, canary)]), &cohort(&[(name, control)]));
    judge(&gated(vec![gate]), &AT, &w, 2 * MIN)
}

fn gate_result<'a>(j: &'a Judgement, name: &str) -> &'a GateResult {
    j.gates
        .iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("no gate {name} in {:?}", j.gates))
}

fn rolled_back_on(j: &Judgement, name: &str) -> bool {
    j.kind == Kind::Rollback
        && j.reason == Reason::MetricRegression
        && j.detail.contains(&format!("gate {name:?}"))
}

#[test]
fn a_rate_regression_rolls_back_in_the_metrics_direction_only() {
    let hit = |direction| relative("fastpath.hit", MetricKind::Rate, direction, 0.0);
    // 63 % against 70 % of fast-path hits, 2,000 outcomes each: worse when higher is better.
    let j = judge_metric(
        hit(Higher),
        "fastpath.hit",
        outcomes(630, 370),
        outcomes(700, 300),
    );
    assert!(rolled_back_on(&j, "fastpath.hit"), "{j:?}");
    let g = gate_result(&j, "fastpath.hit");
    assert_eq!(
        (g.kind, g.checked, g.passed, g.rollback),
        ("relative", true, false, true)
    );
    assert!((g.value - 0.63).abs() < 1e-12 && g.control_value == Some(0.7));
    assert!(g.detail.contains("p = "), "{}", g.detail);
    let t = j
        .tests
        .iter()
        .find(|t| t.name == "gate:fastpath.hit")
        .unwrap();
    assert!(t.flagged && t.p_value < t.alpha && (t.effect + 0.07).abs() < 1e-12);
    // The same numbers when lower is better (a share of timeouts) are an improvement.
    let j = judge_metric(
        hit(Lower),
        "fastpath.hit",
        outcomes(630, 370),
        outcomes(700, 300),
    );
    assert_eq!(j.kind, Kind::Hold, "{}", j.detail);
    assert!(gate_result(&j, "fastpath.hit").passed);
    // And the other way round, a regression again.
    let j = judge_metric(
        hit(Lower),
        "fastpath.hit",
        outcomes(700, 300),
        outcomes(630, 370),
    );
    assert!(rolled_back_on(&j, "fastpath.hit"), "{j:?}");
}

#[test]
fn a_margin_tolerates_a_smaller_regression() {
    let gate = |margin| relative("mem0.write", MetricKind::Rate, Higher, margin);
    // 97 % against 99 % of writes.
    let (c, k) = (outcomes(970, 30), outcomes(990, 10));
    let j = judge_metric(gate(0.0), "mem0.write", c.clone(), k.clone());
    assert!(rolled_back_on(&j, "mem0.write"), "{j:?}");
    let j = judge_metric(gate(0.03), "mem0.write", c.clone(), k.clone());
    assert!(gate_result(&j, "mem0.write").passed, "{j:?}");
    assert_eq!(gate_result(&j, "mem0.write").threshold, 0.03);
    // A margin below the difference only needs more evidence: two windows are not enough,
    // four are.
    let j = judge_metric(gate(0.005), "mem0.write", c.clone(), k.clone());
    assert!(gate_result(&j, "mem0.write").passed, "{j:?}");
    let w = windows(
        4,
        &cohort(&[("mem0.write", c)]),
        &cohort(&[("mem0.write", k)]),
    );
    let j = judge(&gated(vec![gate(0.005)]), &AT, &w, 4 * MIN);
    assert!(rolled_back_on(&j, "mem0.write"), "{j:?}");
}

#[test]
fn a_mean_regression_uses_the_variance_of_the_values() {
    let gate = |direction, margin| relative("satisfaction", MetricKind::Mean, direction, margin);
    // 3.8 against 4.0 with a standard deviation of 1: a fifth of it, over 2,000 values each.
    let (low, high) = (values(1_000, 3.8, 1.0), values(1_000, 4.0, 1.0));
    let j = judge_metric(gate(Higher, 0.0), "satisfaction", low.clone(), high.clone());
    assert!(rolled_back_on(&j, "satisfaction"), "{j:?}");
    let g = gate_result(&j, "satisfaction");
    assert!((g.value - 3.8).abs() < 1e-9 && (g.control_value.unwrap() - 4.0).abs() < 1e-9);
    assert!(
        gate_result(
            &judge_metric(gate(Lower, 0.0), "satisfaction", low.clone(), high.clone()),
            "satisfaction"
        )
        .passed
    );
    let j = judge_metric(gate(Lower, 0.0), "satisfaction", high.clone(), low.clone());
    assert!(rolled_back_on(&j, "satisfaction"), "{j:?}");
    let j = judge_metric(
        gate(Higher, 0.25),
        "satisfaction",
        low.clone(),
        high.clone(),
    );
    assert!(gate_result(&j, "satisfaction").passed, "{j:?}");
    // The same means with ten times the spread are noise.
    let (low, high) = (values(1_000, 3.8, 10.0), values(1_000, 4.0, 10.0));
    let j = judge_metric(gate(Higher, 0.0), "satisfaction", low, high);
    assert!(gate_result(&j, "satisfaction").passed, "{j:?}");
}

#[test]
fn a_count_per_request_counts_requests_that_recorded_nothing_as_zero() {
    let gate = |direction| relative("faq.hits", MetricKind::CountPerRequest, direction, 0.0);
    // Control: 800 of 1,000 requests recorded hits (400 one, 400 two): 1.2 per request.
    // Canary: 400 recorded, with the same mix: 0.6 per request. Per *recording* request both
    // are 1.5, so only counting the silent requests as zeros shows the regression.
    let per = |ones: u64, twos: u64| MetricAgg {
        count: ones + 2 * twos,
        sum: (ones + 2 * twos) as f64,
        sum_of_squares: (ones + 2 * twos) as f64,
        requests: ones + twos,
        request_sum_of_squares: (ones + 4 * twos) as f64,
        ..MetricAgg::default()
    };
    let j = judge_metric(gate(Higher), "faq.hits", per(200, 200), per(400, 400));
    assert!(rolled_back_on(&j, "faq.hits"), "{j:?}");
    let g = gate_result(&j, "faq.hits");
    assert!((g.value - 0.6).abs() < 1e-12, "{g:?}");
    assert!((g.control_value.unwrap() - 1.2).abs() < 1e-12, "{g:?}");
    let j = judge_metric(gate(Lower), "faq.hits", per(200, 200), per(400, 400));
    assert!(gate_result(&j, "faq.hits").passed, "{j:?}");
    // The same counts in both: nothing to see.
    let j = judge_metric(gate(Higher), "faq.hits", per(400, 400), per(400, 400));
    assert!(
        gate_result(&j, "faq.hits").passed && j.kind == Kind::Hold,
        "{j:?}"
    );
}

#[test]
fn a_distribution_regression_needs_the_quantile_worse_by_more_than_the_margin() {
    let gate = |direction, margin| {
        relative(
            "fastpath.latency",
            MetricKind::Distribution,
            direction,
            margin,
        )
    };
    // Canary values spread over 10–40 ms, control's over 10–30 ms: p95 about 38.5 vs 29 ms.
    let (slow, fast) = (observed(10.0, 40.0), observed(10.0, 30.0));
    let j = judge_metric(
        gate(Lower, 0.0),
        "fastpath.latency",
        slow.clone(),
        fast.clone(),
    );
    assert!(rolled_back_on(&j, "fastpath.latency"), "{j:?}");
    let g = gate_result(&j, "fastpath.latency");
    let worse = g.value - g.control_value.unwrap();
    assert!((5.0..15.0).contains(&worse), "{g:?}");
    assert!(g.detail.contains("above the pooled p95"), "{}", g.detail);
    // A margin wider than the quantiles' difference: the shares still differ, the gate passes.
    let j = judge_metric(
        gate(Lower, 20.0),
        "fastpath.latency",
        slow.clone(),
        fast.clone(),
    );
    let t = j
        .tests
        .iter()
        .find(|t| t.name == "gate:fastpath.latency")
        .unwrap();
    assert!(t.p_value < t.alpha && !t.flagged, "{t:?}");
    assert!(gate_result(&j, "fastpath.latency").passed);
    // Higher is better (a throughput): the lower canary is the regression, read below the
    // pooled quantile.
    let j = judge_metric(
        gate(Higher, 0.0),
        "fastpath.latency",
        fast.clone(),
        slow.clone(),
    );
    assert!(rolled_back_on(&j, "fastpath.latency"), "{j:?}");
    assert!(j.detail.contains("below the pooled p95"), "{}", j.detail);
    let j = judge_metric(gate(Higher, 0.0), "fastpath.latency", slow, fast);
    assert!(gate_result(&j, "fastpath.latency").passed, "{j:?}");
}

#[test]
fn a_gate_without_enough_values_is_not_tested_and_holds_the_stage() {
    let gate = relative("mem0.write", MetricKind::Rate, Higher, 0.0);
    // 40 canary writes per window, all failed, below the 100 needed after two windows.
    let few = outcomes(0, (MIN_VALUES / 2) - 10);
    let j = judge_metric(gate.clone(), "mem0.write", few, outcomes(990, 10));
    let g = gate_result(&j, "mem0.write");
    assert!(!g.checked && g.passed && !g.rollback, "{g:?}");
    assert!(g.detail.contains("needed"), "{}", g.detail);
    assert!(j.tests.iter().all(|t| !t.name.starts_with("gate:")));
    // Never recorded by either cohort: untested, so the stage waits for its evidence (a gate
    // nobody records must not pass silently).
    let w = windows(5, &cohort(&[]), &cohort(&[]));
    let j = judge(&gated(vec![gate]), &AT, &w, 5 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::InsufficientData));
    assert!(j.detail.contains("mem0.write"), "{}", j.detail);
    assert!(!gate_result(&j, "mem0.write").checked);
}

#[test]
fn relative_gates_are_not_tested_at_a_stage_without_control() {
    let mut p = gated(vec![relative("mem0.write", MetricKind::Rate, Higher, 0.0)]);
    p.steps[0].no_control = true;
    let canary = cohort(&[("mem0.write", outcomes(500, 500))]);
    let j = judge(&p, &AT, &windows(5, &canary, &Cohort::default()), 5 * MIN);
    assert!(j.gates.is_empty(), "{:?}", j.gates);
    assert_eq!(j.kind, Kind::Promote, "{}", j.detail);
}

#[test]
fn every_relative_test_runs_and_the_first_regression_decides() {
    // Errors doubled and fast-path hits down: the error rate decides, the gate is still shown.
    let mut canary = cohort(&[("fastpath.hit", outcomes(600, 400))]);
    canary.errors = 40;
    canary.successes = 960;
    let control = cohort(&[("fastpath.hit", outcomes(700, 300))]);
    let p = gated(vec![relative(
        "fastpath.hit",
        MetricKind::Rate,
        Higher,
        0.0,
    )]);
    let j = judge(&p, &AT, &windows(3, &canary, &control), 3 * MIN);
    assert_eq!(j.kind, Kind::Rollback);
    assert!(
        matches!(
            j.reason,
            Reason::ErrorRateRegression | Reason::CriticalErrorRate
        ),
        "{j:?}"
    );
    assert!(gate_result(&j, "fastpath.hit").rollback, "{:?}", j.gates);
    assert!(
        j.tests
            .iter()
            .any(|t| t.name == "gate:fastpath.hit" && t.flagged)
    );
}

#[test]
fn alpha_is_split_equally_among_the_families_of_relative_tests() {
    let g = |name: &str| relative(name, MetricKind::Rate, Higher, 0.0);
    let no_gates = gated(Vec::new());
    let split = AlphaSplit::of(&no_gates);
    // Without gates exactly what the judge always did: half and half.
    assert_eq!((split.error_rate, split.latency), (0.03 / 2.0, 0.03 / 2.0));
    assert_eq!(split.families, 2);
    // Two release-wide gates, one repeated at stage 0 word for word (one test), one of stage
    // 0's own, one of a stage without control (never tested): three gate families.
    let mut p = gated(vec![g("a"), g("b")]);
    p.steps[0].gates = vec![g("a"), g("c")];
    p.steps[1].no_control = true;
    p.steps[1].gates = vec![g("d")];
    let split = AlphaSplit::of(&p);
    assert_eq!(split.families, 5);
    assert!((split.gate - 0.006).abs() < 1e-15 && split.error_rate == split.gate);
    // The tests of a judgement are held to those levels.
    let w = windows(2, &cohort(&[]), &cohort(&[]));
    let j = judge(&p, &AT, &w, 2 * MIN);
    let alpha = |name: &str| j.tests.iter().find(|t| t.name == name).map(|t| t.alpha);
    assert_eq!(alpha("error_rate"), Some(split.error_rate));
    assert_eq!(alpha("latency_p95"), Some(split.latency / 3.0));
    let j = judge(&no_gates, &AT, &w, 2 * MIN);
    let alpha = |name: &str| j.tests.iter().find(|t| t.name == name).map(|t| t.alpha);
    assert_eq!(alpha("error_rate"), Some(0.03 / 2.0));
}

#[test]
fn gates_take_their_share_of_alpha_from_the_error_rate_test() {
    // Find the fewest canary errors (against 100 of 10,000) that roll back without gates;
    // with five gates on healthy metrics the same evidence is not enough at α/7.
    let control = {
        let mut c = cohort(&[]);
        c.evaluations = 10_000;
        c.successes = 9_900;
        c.errors = 100;
        c
    };
    let canary = |errors| Cohort {
        successes: 10_000 - errors,
        errors,
        ..control.clone()
    };
    let gates: Vec<Gate> = (0..5)
        .map(|i| relative(&format!("m{i}"), MetricKind::Rate, Higher, 0.0))
        .collect();
    let decide =
        |plan: &Plan, errors| judge(plan, &AT, &windows(1, &canary(errors), &control), MIN).kind;
    let bare = gated(Vec::new());
    let errors = (100..400)
        .find(|&e| decide(&bare, e) == Kind::Rollback)
        .expect("a regression without gates");
    assert_eq!(decide(&gated(gates.clone()), errors), Kind::Hold);
    assert_eq!(decide(&gated(gates), errors + 40), Kind::Rollback);
}
