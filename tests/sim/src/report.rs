//! The calibration's markdown tables: one line per row with its figures and targets, and why
//! the runs ended and held.

use std::fmt::Write as _;

use crate::calibration::Row;
use crate::faults::Faults;
use crate::stats::Stats;

const SECOND: i64 = 1_000;

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
        let mut rollbacks = list(&s.rollbacks);
        if !s.gate_rollbacks.is_empty() {
            let gates: Vec<String> = s
                .gate_rollbacks
                .iter()
                .map(|(g, n)| format!("{g} {n}"))
                .collect();
            rollbacks.push_str(&format!(" (by gate: {})", gates.join(", ")));
        }
        let _ = writeln!(
            t,
            "| {} | {} | {} | {} · {} · {} |",
            row.scenario.name,
            rollbacks,
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
