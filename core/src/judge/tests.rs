//! Each rule of the judge on hand-built windows. Calibration against simulated traffic lives in
//! the simulator crate (`tests/sim`).

use super::*;

const MIN: i64 = 60_000;

fn plan() -> Plan {
    Plan {
        steps: vec![
            Step {
                basis_points: 500,
                min_duration_ms: 5 * MIN,
                min_outcomes: 1_000,
                max_duration_ms: 0,
                ..Step::default()
            },
            Step {
                basis_points: 10_000,
                min_duration_ms: 0,
                min_outcomes: 0,
                max_duration_ms: 0,
                ..Step::default()
            },
        ],
        guardrails: Guardrails::default(),
        policy: Policy {
            window_ms: MIN,
            ..Policy::default()
        },
        gates: Vec::new(),
    }
}

const AT: Position = Position {
    step: 0,
    step_start_ms: 0,
    started_ms: 0,
};

/// A cohort with `n` outcomes, `errors` of them failed, every latency `latency_us`.
fn cohort(n: u64, errors: u64, latency_us: u64) -> Cohort {
    let mut c = Cohort {
        evaluations: n,
        successes: n - errors,
        errors,
        ..Cohort::default()
    };
    c.latency.record_n(latency_us, n);
    c
}

/// `count` one-minute windows with the same canary and control.
fn windows(count: i64, canary: Cohort, control: Cohort) -> Vec<Window> {
    (1..=count)
        .map(|i| Window {
            end_ms: i * MIN,
            step: 0,
            canary: canary.clone(),
            control: control.clone(),
            reports: 10,
            ..Window::default()
        })
        .collect()
}

fn healthy() -> Cohort {
    cohort(1_000, 10, 20_000)
}

#[test]
fn too_early_holds_then_a_healthy_step_promotes() {
    let w = windows(3, healthy(), healthy());
    let j = judge(&plan(), &AT, &w, 3 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::MinDuration));
    let w = windows(5, healthy(), healthy());
    let j = judge(&plan(), &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Promote, Reason::StepHealthy),
        "{}",
        j.detail
    );
    assert_eq!(j.canary.n, 5_000);
    assert!(j.canary.error_rate_lower < 0.01 && j.canary.error_rate_upper > 0.01);
    assert!(j.tests.iter().all(|t| !t.flagged), "{:?}", j.tests);
}

#[test]
fn too_few_outcomes_hold() {
    let w = windows(5, cohort(100, 1, 20_000), cohort(100, 1, 20_000));
    let j = judge(&plan(), &AT, &w, 5 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::InsufficientData));
}

#[test]
fn a_doubled_error_rate_rolls_back_before_the_minimum_time() {
    let w = windows(2, cohort(10_000, 200, 20_000), cohort(10_000, 100, 20_000));
    let j = judge(&plan(), &AT, &w, 2 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::ErrorRateRegression),
        "{}",
        j.detail
    );
    let t = j.tests.iter().find(|t| t.name == "error_rate").unwrap();
    assert!(t.flagged && t.p_value < t.alpha && (t.effect - 0.01).abs() < 1e-9);
}

#[test]
fn a_critical_error_rate_is_named_as_such() {
    let w = windows(1, cohort(2_000, 100, 20_000), cohort(2_000, 10, 20_000));
    let j = judge(&plan(), &AT, &w, MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::CriticalErrorRate),
        "{}",
        j.detail
    );
}

#[test]
fn an_improvement_or_noise_never_rolls_back() {
    let w = windows(5, cohort(1_000, 5, 20_000), cohort(1_000, 12, 20_000));
    let j = judge(&plan(), &AT, &w, 5 * MIN);
    assert_eq!(j.kind, Kind::Promote, "{}", j.detail);
}

#[test]
fn a_slower_canary_rolls_back_on_latency() {
    let mut canary = healthy();
    let mut control = healthy();
    // Control: 1 % of requests at 100 ms; canary: 10 % of them at 150 ms.
    control.latency = Default::default();
    control.latency.record_n(20_000, 990);
    control.latency.record_n(100_000, 10);
    canary.latency = Default::default();
    canary.latency.record_n(20_000, 900);
    canary.latency.record_n(150_000, 100);
    let j = judge(&plan(), &AT, &windows(3, canary, control), 3 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::LatencyRegression),
        "{}",
        j.detail
    );
    assert!(
        j.detail.starts_with("p99") || j.detail.starts_with("p95"),
        "{}",
        j.detail
    );
}

#[test]
fn a_latency_shift_below_the_effect_size_is_tolerated() {
    // One bucket slower (about 9 %), below the 1.10 ratio gate, everywhere.
    let (canary, control) = (cohort(1_000, 10, 21_500), cohort(1_000, 10, 20_000));
    let j = judge(&plan(), &AT, &windows(5, canary, control), 5 * MIN);
    assert_eq!(j.kind, Kind::Promote, "{}: {:?}", j.detail, j.tests);
}

#[test]
fn absolute_guardrails_roll_back_the_canary_but_hold_on_a_global_incident() {
    let mut p = plan();
    p.guardrails.max_error_rate = 0.05;
    let bad = cohort(2_000, 400, 20_000);
    let j = judge(&p, &AT, &windows(1, bad.clone(), healthy()), MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::MaxErrorRate),
        "{}",
        j.detail
    );
    let j = judge(&p, &AT, &windows(1, bad.clone(), bad), MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::GlobalIncident),
        "{}",
        j.detail
    );

    let mut p = plan();
    p.guardrails.max_p99_ms = 50.0;
    p.guardrails.relative_error_rate = false;
    p.guardrails.latency_quantiles.clear();
    let j = judge(
        &p,
        &AT,
        &windows(2, cohort(2_000, 0, 80_000), healthy()),
        2 * MIN,
    );
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::MaxP99Latency),
        "{}",
        j.detail
    );
    p.guardrails.max_p99_ms = 0.0;
    p.guardrails.min_success_rate = 0.99;
    let j = judge(
        &p,
        &AT,
        &windows(2, cohort(2_000, 100, 20_000), healthy()),
        2 * MIN,
    );
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::MinSuccessRate),
        "{}",
        j.detail
    );
}

#[test]
fn a_sample_ratio_mismatch_holds_instead_of_judging() {
    let mut canary = cohort(1_000, 30, 20_000);
    canary.evaluations = 1_400;
    let j = judge(&plan(), &AT, &windows(5, canary, healthy()), 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::SampleRatioMismatch),
        "{}",
        j.detail
    );
}

#[test]
fn an_imbalance_within_chance_over_many_looks_does_not_hold() {
    // 5,170 vs 4,830: a single chi-square look gives p = 0.0007, but a judge that looks after
    // every window must pay for all its looks (sequential p about 0.02).
    let mut canary = healthy();
    canary.evaluations = 1_034;
    let mut control = healthy();
    control.evaluations = 966;
    let j = judge(&plan(), &AT, &windows(5, canary, control), 5 * MIN);
    let srm = j.tests.iter().find(|t| t.name == "srm").unwrap();
    assert!(crate::stats::srm_p_value(5_170, 4_830) < SRM_ALPHA);
    assert!(!srm.flagged && srm.p_value > 0.01, "{srm:?}");
    assert_eq!(j.kind, Kind::Promote, "{}", j.detail);
}

#[test]
fn silence_holds_and_past_the_grace_period_rolls_back() {
    let mut w = windows(5, healthy(), healthy());
    for x in &mut w[2..] {
        x.canary = Cohort::default();
    }
    let j = judge(&plan(), &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::MissingData),
        "{}",
        j.detail
    );
    let mut p = plan();
    p.policy.missing_data_grace_ms = 3 * MIN;
    let j = judge(&p, &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::NoCanaryData),
        "{}",
        j.detail
    );
    // Nothing at all since the start counts from the start.
    let j = judge(&p, &AT, &[], 3 * MIN);
    assert_eq!(j.reason, Reason::NoCanaryData);
    let j = judge(&p, &AT, &[], 2 * MIN);
    assert_eq!(j.kind, Kind::Hold);
}

#[test]
fn late_reports_and_dropped_series_hold() {
    let mut w = windows(5, healthy(), healthy());
    w[4].late_reports = 5;
    let j = judge(&plan(), &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::DataQuality),
        "{}",
        j.detail
    );
    let mut w = windows(5, healthy(), healthy());
    w[3].dropped_series = 1;
    assert_eq!(judge(&plan(), &AT, &w, 5 * MIN).reason, Reason::DataQuality);
}

#[test]
fn max_duration_policies_and_non_inferiority() {
    let mut p = plan();
    p.steps[0].max_duration_ms = 30 * MIN;
    let w = windows(5, healthy(), healthy());
    let j = judge(&p, &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::AwaitingNonInferiority),
        "{}",
        j.detail
    );
    let j = judge(&p, &AT, &w, 30 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Promote, Reason::MaxDurationPromote)
    );
    p.policy.max_duration = MaxDuration::Hold;
    let j = judge(&p, &AT, &w, 30 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::MaxDurationReached));
    // Plenty of equal data shows non-inferiority before the max duration.
    let big = cohort(100_000, 1_000, 20_000);
    let j = judge(&p, &AT, &windows(5, big.clone(), big), 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Promote, Reason::NonInferior),
        "{}",
        j.detail
    );
}

#[test]
fn pause_for_a_human_turns_promotion_into_a_hold() {
    let mut p = plan();
    p.policy.pause_for_human = true;
    let j = judge(&p, &AT, &windows(5, healthy(), healthy()), 5 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::AwaitingApproval));
}

#[test]
fn only_windows_of_the_current_step_count_for_its_minimums() {
    let mut w = windows(5, healthy(), healthy());
    for x in &mut w {
        x.step = 0;
    }
    let at = Position {
        step: 1,
        step_start_ms: 5 * MIN,
        started_ms: 0,
    };
    let mut p = plan();
    p.steps[1] = Step {
        basis_points: 2_500,
        min_duration_ms: 0,
        min_outcomes: 10,
        max_duration_ms: 0,
        ..Step::default()
    };
    let j = judge(&p, &at, &w, 5 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::InsufficientData));
}

/// A stage without control (internal users, a soak): `plan()` with its first step so marked and
/// the stage's own error-rate ceiling.
fn uncontrolled() -> Plan {
    let mut p = plan();
    p.steps[0].no_control = true;
    p.steps[0].limits.max_error_rate = 0.05;
    p
}

#[test]
fn a_stage_without_control_is_judged_on_absolute_limits_only() {
    // A canary error rate twice control's would roll a controlled step back; here control is
    // silent (there is none) and only the limit counts.
    let w = windows(5, cohort(1_000, 20, 20_000), Cohort::default());
    let j = judge(&uncontrolled(), &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Promote, Reason::StepHealthy),
        "{}",
        j.detail
    );
    assert!(j.tests.is_empty(), "no relative test runs: {:?}", j.tests);
    assert!(j.detail.contains("no control"), "{}", j.detail);
    // The stage's own limit trips, however healthy the (absent) comparison.
    let w = windows(2, cohort(1_000, 150, 20_000), Cohort::default());
    let j = judge(&uncontrolled(), &AT, &w, 2 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Rollback, Reason::MaxErrorRate),
        "{}",
        j.detail
    );
    assert!(j.detail.contains("no control"));
    // With a max duration nothing can show non-inferiority: it holds until then.
    let mut p = uncontrolled();
    p.steps[0].max_duration_ms = 60 * MIN;
    let w = windows(5, healthy(), Cohort::default());
    let j = judge(&p, &AT, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Hold, Reason::AwaitingMaxDuration)
    );
    // The same step with control counts the silent control as missing.
    let mut p = uncontrolled();
    p.steps[0].no_control = false;
    let j = judge(&p, &AT, &windows(5, healthy(), Cohort::default()), 5 * MIN);
    assert_eq!((j.kind, j.reason), (Kind::Hold, Reason::MissingData));
}

#[test]
fn a_stage_limit_and_the_plan_limit_combine_to_the_stricter() {
    let plan_limits = Limits {
        max_error_rate: 0.02,
        max_p99_ms: 500.0,
        ..Limits::default()
    };
    let stage = Limits {
        max_error_rate: 0.05,
        min_success_rate: 0.97,
        max_p99_ms: 250.0,
        ..Limits::default()
    };
    let both = plan_limits.stricter(stage);
    assert_eq!(both.max_error_rate, 0.02);
    assert_eq!(both.min_success_rate, 0.97);
    assert_eq!(both.max_p99_ms, 250.0);
    assert_eq!(both.max_p95_ms, 0.0, "unset on both stays unset");
}

#[test]
fn windows_of_a_stage_without_control_stay_out_of_the_relative_tests() {
    // Stage 0 served a segment (canary only, and many errors, within its own limit); stage 1
    // is a share with control. Stage 0's windows must not unbalance the sample ratio or the
    // error-rate test of stage 1.
    let mut p = plan();
    p.steps[0].no_control = true;
    p.steps[0].limits.max_error_rate = 0.5;
    p.steps[1] = Step {
        basis_points: 2_500,
        min_duration_ms: 0,
        min_outcomes: 10,
        ..Step::default()
    };
    let mut w = windows(3, cohort(5_000, 500, 20_000), Cohort::default());
    w.extend((4..=5).map(|i| Window {
        end_ms: i * MIN,
        step: 1,
        canary: healthy(),
        control: healthy(),
        reports: 10,
        ..Window::default()
    }));
    let at = Position {
        step: 1,
        step_start_ms: 3 * MIN,
        started_ms: 0,
    };
    let j = judge(&p, &at, &w, 5 * MIN);
    assert_eq!(
        (j.kind, j.reason),
        (Kind::Promote, Reason::StepHealthy),
        "{}",
        j.detail
    );
    assert_eq!(
        j.canary.n, 2_000,
        "only the controlled windows: {:?}",
        j.canary
    );
}
