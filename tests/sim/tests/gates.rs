//! The gated rows (issue 14), reduced (fewer runs, a fixed seed) and held to the issue's
//! targets with some slack: A/A releases gated on five of the team's metrics, a rate drop on a
//! 5 % canary, a mean drop of a tenth of its standard deviation, an absolute gate's breach. The
//! full table comes from the `calibrate` binary; see `BENCHMARKS.md`.

use flagwire_core::judge::{AlphaSplit, Reason};
use flagwire_sim::calibration::{Row, rows};
use flagwire_sim::{End, Stats, simulate};

const SEED: u64 = 20_261_214;
const SECOND: i64 = 1_000;
const MINUTE: i64 = 60 * SECOND;

fn row(name: &str) -> Row {
    rows()
        .into_iter()
        .find(|r| r.scenario.name == name)
        .unwrap_or_else(|| panic!("no row {name}"))
}

fn stats(name: &str, runs: u32) -> Stats {
    Stats::of(&simulate(&row(name).scenario, runs, SEED, 2))
}

#[test]
fn a_gated_release_splits_its_alpha_seven_ways() {
    // The error rate, the p95 and five relative gates (the absolute gate takes no share).
    let split = AlphaSplit::of(&row("gated-aa-3flags-2000").scenario.plan);
    assert_eq!(split.families, 7);
    assert!((split.gate - 0.03 / 7.0).abs() < 1e-15);
}

#[test]
fn aa_gated_releases_are_rarely_rolled_back() {
    let name = "gated-aa-3flags-2000";
    let runs = 200;
    let outcomes = simulate(&row(name).scenario, runs, SEED, 2);
    let s = Stats::of(&outcomes);
    // Target 1 % per release. A true 1 % shows 5 or more rollbacks in 200 runs only about 5 %
    // of the time, so more than 4 is evidence against it.
    assert!(
        s.false_rollbacks <= 4,
        "{name}: {} of {runs} rolled back: {:?} {:?}",
        s.false_rollbacks,
        s.rollbacks,
        s.gate_rollbacks
    );
    // The rest reach everyone through all four stages.
    assert_eq!(s.completed_ms.len() as u32 + s.false_rollbacks, runs);
    assert!(outcomes.iter().all(|o| o.end != End::Horizon));
}

#[test]
fn fast_path_hits_down_from_70_to_63_percent_are_caught_within_two_minutes() {
    let s = stats("gated-hit-70-63-5pct-2000", 200);
    assert!(s.power() >= 0.99, "power {}", s.power());
    let median = s.detection_quantile(0.5);
    assert!(median.is_some_and(|t| t <= 2 * MINUTE), "median {median:?}");
    assert!(
        s.gate_rollbacks
            .first()
            .is_some_and(|(g, n)| g == "fastpath.hit" && *n >= 195),
        "{:?}",
        s.gate_rollbacks
    );
}

#[test]
fn satisfaction_down_a_tenth_of_its_standard_deviation_is_caught() {
    // The issue asks for the median only; 1 min 40 s at 2,000 runs. Held within 3 min.
    let s = stats("gated-satisfaction-0.1sd-5pct-2000", 200);
    assert!(s.power() >= 0.95, "power {}", s.power());
    let median = s.detection_quantile(0.5);
    assert!(median.is_some_and(|t| t <= 3 * MINUTE), "median {median:?}");
    let by_gate = s.gate_rollbacks.iter().find(|(g, _)| g == "satisfaction");
    assert!(
        by_gate.is_some_and(|&(_, n)| n >= 190),
        "{:?}",
        s.gate_rollbacks
    );
}

#[test]
fn an_absolute_gate_trips_within_one_window_of_its_breach() {
    let r = row("gated-mem0-breach-at-25pct-2000");
    let window = r.scenario.plan.policy.window_ms;
    let outcomes = simulate(&r.scenario, 100, SEED, 2);
    let s = Stats::of(&outcomes);
    assert!(s.regressed >= 95, "{} of 100 reached stage 1", s.regressed);
    assert_eq!(s.detected, s.regressed, "{:?}", s.rollbacks);
    for o in outcomes.iter().filter(|o| o.detection_ms().is_some()) {
        assert!(o.detection_ms().unwrap() <= window, "{o:?}");
        assert_eq!(o.end, End::RolledBack(Reason::GateBreached), "{o:?}");
        assert_eq!(o.gate.as_deref(), Some("mem0.write.floor"), "{o:?}");
        // Stage 1 began at 5 min; the breach is caught at its first window close.
        assert_eq!(o.end_ms, 5 * MINUTE + 10 * SECOND, "{o:?}");
    }
}
