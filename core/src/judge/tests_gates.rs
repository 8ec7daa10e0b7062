//! Absolute and external (Prometheus) gates on hand-built windows: breaches beyond the
//! confidence bound roll back, estimates that fail a threshold hold, two-tier gates, totals,
//! minimum counts, incidents that hit control too, and queries that fail to answer.

use super::gate::{AbsoluteGate, Comparison, Direction, Metric, MetricKind, absolute};
use super::*;

const MIN: i64 = 60_000;
const AT: Position = Position {
    step: 0,
    step_start_ms: 0,
    started_ms: 0,
};

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

/// A one-tier gate on `name`.
fn gate(name: &str, kind: MetricKind, comparison: Comparison, threshold: f64) -> AbsoluteGate {
    AbsoluteGate {
        name: name.to_owned(),
        metric: Metric {
            name: name.to_owned(),
            kind,
            direction: Direction::HigherIsBetter,
        },
        comparison,
        threshold,
        quantile: 0.95,
        min_count: 0,
        rollback_threshold: None,
        total: false,
    }
}

/// "mem0 write success > 99 %".
fn writes_gate() -> AbsoluteGate {
    gate(
        "mem0.write",
        MetricKind::Rate,
        Comparison::GreaterThan,
        0.99,
    )
}

/// 1,000 healthy outcomes (1 % errors, 20 ms) carrying `metric` as `name`.
fn cohort(name: &str, metric: MetricAgg) -> Cohort {
    let mut c = Cohort {
        evaluations: 1_000,
        successes: 990,
        errors: 10,
        ..Cohort::default()
    };
    c.latency.record_n(20_000, 1_000);
    c.metrics.insert(name.to_owned(), metric);
    c
}

fn writes(successes: u64, failures: u64) -> Cohort {
    cohort(
        "mem0.write",
        MetricAgg {
            successes,
            failures,
            ..MetricAgg::default()
        },
    )
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

/// The judgement after five one-minute windows (the step's minimums met).
fn after_five(g: AbsoluteGate, canary: &Cohort, control: &Cohort) -> Judgement {
    let w = windows(5, canary, control);
    judge(&gated(vec![Gate::Absolute(g)]), &AT, &w, 5 * MIN)
}

#[test]
fn a_healthy_canary_is_not_rolled_back_by_its_first_hundred_values() {
    // A 99.5 % canary on a "> 99 %" gate shows two failures in its first hundred writes
    // about one time in eleven: the bound does not roll it back, the estimate keeps the stage.
    let r = absolute(&writes_gate(), &writes(98, 2));
    assert!(r.checked && !r.rollback && !r.passed, "{r:?}");
    assert_eq!((r.value, r.threshold, r.kind), (0.98, 0.99, "absolute"));
    let r = absolute(&writes_gate(), &writes(100, 0));
    assert!(r.checked && r.passed && !r.rollback, "{r:?}");
    // The same 98 % over 50,000 writes is surely below 99 %.
    let r = absolute(&writes_gate(), &writes(49_000, 1_000));
    assert!(r.rollback && !r.passed, "{r:?}");
    // In the judge: a stage whose estimate fails a one-tier gate is held, not promoted.
    let j = after_five(writes_gate(), &writes(196, 4), &writes(200, 0));
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::GateNotMet),
        "{j:?}"
    );
    let j = after_five(writes_gate(), &writes(200, 0), &writes(200, 0));
    assert_eq!((j.kind, j.reason), (Kind::Promote, Reason::StepHealthy));
}

#[test]
fn a_breach_rolls_back_before_the_minimum_time_unless_control_breaches_too() {
    let w = windows(1, &writes(900, 100), &writes(995, 5));
    let j = judge(&gated(vec![Gate::Absolute(writes_gate())]), &AT, &w, MIN);
    assert_eq!((j.kind, j.reason), (Kind::Rollback, Reason::GateBreached));
    assert!(j.detail.contains("\"mem0.write\""), "{}", j.detail);
    let w = windows(1, &writes(900, 100), &writes(905, 95));
    let j = judge(&gated(vec![Gate::Absolute(writes_gate())]), &AT, &w, MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::GlobalIncident));
    assert!(j.detail.contains("control breaches too"), "{}", j.detail);
}

#[test]
fn a_canary_whose_writes_all_fail_is_rolled_back() {
    // No successes at all: an estimate of 0 with no spread must not escape the bound.
    let r = absolute(&writes_gate(), &writes(0, 500));
    assert!(r.rollback, "{r:?}");
    // Nor a count per request that fell to zero everywhere (the canary records nothing).
    let g = gate(
        "faq.hits",
        MetricKind::CountPerRequest,
        Comparison::GreaterOrEqual,
        1.0,
    );
    let silent = Cohort {
        metrics: Default::default(),
        ..writes(0, 0)
    };
    let r = absolute(&g, &silent);
    assert!(r.checked && r.rollback && r.value == 0.0, "{r:?}");
    // While one tracked hit per request on every request passes.
    let every = cohort(
        "faq.hits",
        MetricAgg {
            count: 1_000,
            sum: 1_000.0,
            sum_of_squares: 1_000.0,
            requests: 1_000,
            request_sum_of_squares: 1_000.0,
            ..MetricAgg::default()
        },
    );
    let r = absolute(&g, &every);
    assert!(r.passed && !r.rollback, "{r:?}");
}

#[test]
fn a_two_tier_gate_holds_below_its_threshold_and_rolls_back_below_the_other() {
    // "Completion > 99 %, roll back below 95 %."
    let two_tier = AbsoluteGate {
        rollback_threshold: Some(0.95),
        ..writes_gate()
    };
    let j = after_five(two_tier.clone(), &writes(970, 30), &writes(995, 5));
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::GateNotMet),
        "{j:?}"
    );
    let r = &j.gates[0];
    assert!(r.checked && !r.passed && !r.rollback, "{r:?}");
    assert!(r.detail.contains("rolls back below 0.95"), "{}", r.detail);
    let j = after_five(two_tier.clone(), &writes(900, 100), &writes(995, 5));
    assert_eq!((j.kind, j.reason), (Kind::Rollback, Reason::GateBreached));
    let j = after_five(two_tier, &writes(998, 2), &writes(995, 5));
    assert_eq!(j.kind, Kind::Promote, "{j:?}");
}

#[test]
fn a_total_compares_the_events_at_the_stage() {
    // "Stuck workflows <= 3" at this stage; two-tier: hold above 3, roll back above 10.
    let stuck = |n: u64| {
        cohort(
            "stuck",
            MetricAgg {
                count: n,
                sum: n as f64,
                sum_of_squares: n as f64,
                ..MetricAgg::default()
            },
        )
    };
    let total = AbsoluteGate {
        total: true,
        ..gate("stuck", MetricKind::Mean, Comparison::LessOrEqual, 3.0)
    };
    let one_window = |g: &AbsoluteGate, n| {
        let w = windows(1, &stuck(n), &stuck(0));
        judge(&gated(vec![Gate::Absolute(g.clone())]), &AT, &w, MIN)
    };
    // Exact counts: no minimum, no bound.
    assert_eq!(one_window(&total, 4).reason, Reason::GateBreached);
    let r = absolute(&total, &stuck(3));
    assert!(r.checked && r.passed && r.value == 3.0, "{r:?}");
    let two_tier = AbsoluteGate {
        rollback_threshold: Some(10.0),
        ..total
    };
    assert_eq!(one_window(&two_tier, 11).reason, Reason::GateBreached);
    // Five windows of 1 each add up to 5 at the stage: held.
    let j = after_five(two_tier, &stuck(1), &stuck(0));
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::GateNotMet),
        "{j:?}"
    );
}

#[test]
fn a_gate_is_not_checked_before_its_minimum_count_and_holds_the_stage() {
    let g = AbsoluteGate {
        min_count: 2_000,
        ..writes_gate()
    };
    // 1,500 writes at 0 % success: not checked yet, however bad.
    let j = after_five(g.clone(), &writes(0, 300), &writes(300, 0));
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::InsufficientData),
        "{j:?}"
    );
    assert!(j.detail.contains("1500 of 2000 values"), "{}", j.detail);
    assert!(!j.gates[0].checked && j.gates[0].passed);
    // The default minimum is 100 values; no values at all hold too.
    let r = absolute(&writes_gate(), &writes(60, 0));
    assert!(!r.checked && r.detail.contains("60 of 100"), "{r:?}");
    let r = absolute(&writes_gate(), &Cohort::default());
    assert!(!r.checked && r.detail.contains("no values"), "{r:?}");
}

#[test]
fn a_distribution_gate_breaches_on_a_share_bound_not_on_the_sample_quantile() {
    // "Fast-path P95 < 500 ms".
    let g = gate(
        "fastpath.latency",
        MetricKind::Distribution,
        Comparison::LessThan,
        500.0,
    );
    let observed = |values: &[(u64, u64)]| {
        let mut m = MetricAgg::default();
        for &(ms, n) in values {
            m.histogram.record_n(ms * 1_000, n);
            m.count += n;
        }
        cohort("fastpath.latency", m)
    };
    // 7 of 100 at 600 ms: the sample p95 is past 500 ms, which a healthy 4 % tail shows often
    // at a hundred values. Not surely more than 5 % above 500 ms: no rollback; the estimate
    // holds the stage.
    let r = absolute(&g, &observed(&[(300, 93), (600, 7)]));
    assert!(
        r.checked && !r.rollback && !r.passed && r.value > 500.0,
        "{r:?}"
    );
    // 30 % of 1,000 at 600 ms is surely more than 5 %.
    let r = absolute(&g, &observed(&[(300, 700), (600, 300)]));
    assert!(r.rollback, "{r:?}");
    // A p95 in the bucket holding 500 ms (481–524 ms) may be under it: met.
    let r = absolute(&g, &observed(&[(300, 900), (510, 100)]));
    assert!(r.passed && !r.rollback, "{r:?}");
    // "P50 > 100 ms" (higher is better) with every value at 50 ms.
    let high = gate(
        "fastpath.latency",
        MetricKind::Distribution,
        Comparison::GreaterThan,
        100.0,
    );
    let r = absolute(&high, &observed(&[(50, 1_000)]));
    assert!(r.rollback && !r.passed, "{r:?}");
    let r = absolute(&high, &observed(&[(150, 1_000)]));
    assert!(r.passed && !r.rollback, "{r:?}");
}

#[test]
fn step_gates_apply_at_their_step_only() {
    let mut p = gated(Vec::new());
    p.steps[1].gates = vec![Gate::Absolute(writes_gate())];
    let w = windows(1, &writes(0, 1_000), &writes(1_000, 0));
    let j = judge(&p, &AT, &w, MIN);
    assert!(j.gates.is_empty() && j.kind == Kind::Hold, "{j:?}");
    // At a stage without control an absolute gate is still checked, on the canary alone.
    let mut p = gated(vec![Gate::Absolute(writes_gate())]);
    p.steps[0].no_control = true;
    let j = judge(
        &p,
        &AT,
        &windows(1, &writes(0, 1_000), &Cohort::default()),
        MIN,
    );
    assert_eq!((j.kind, j.reason), (Kind::Rollback, Reason::GateBreached));
}

/// A Prometheus gate "memory < 1e9" as the server evaluated it.
fn query(value: Option<f64>, consecutive_failures: u32, rollback_after: u32) -> External {
    External {
        name: "memory".into(),
        value,
        control_value: None,
        comparison: Comparison::LessThan,
        threshold: 1e9,
        consecutive_failures,
        rollback_after_failures: rollback_after,
        detail: "max(container_memory_bytes{cohort=\"canary\"})".into(),
    }
}

fn with_query(e: External) -> Judgement {
    let w = windows(5, &writes(1_000, 0), &writes(1_000, 0));
    judge_with(&gated(Vec::new()), &AT, &w, 5 * MIN, &[e])
}

#[test]
fn external_gates_roll_back_on_a_breach_and_hold_while_they_cannot_answer() {
    let j = with_query(query(Some(5e8), 0, 0));
    assert_eq!(j.kind, Kind::Promote, "{j:?}");
    assert!(j.gates[0].passed && j.gates[0].checked && j.gates[0].kind == "prometheus");
    let j = with_query(query(Some(2e9), 0, 0));
    assert_eq!((j.kind, j.reason), (Kind::Rollback, Reason::GateBreached));
    assert!(
        j.detail.contains("2000000000 < 1000000000 fails"),
        "{}",
        j.detail
    );
    // No answer: held, however often, while the gate allows no rollback.
    for failures in [1, 50] {
        let j = with_query(query(None, failures, 0));
        assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::GateUnavailable));
        assert!(!j.gates[0].checked && !j.gates[0].passed);
    }
    // Rolled back on the failure that reaches its limit, held before.
    let j = with_query(query(None, 2, 3));
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::GateUnavailable));
    let j = with_query(query(None, 3, 3));
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::GateUnavailable)
    );
    assert!(j.detail.contains("failed 3 times in a row"), "{}", j.detail);
}
