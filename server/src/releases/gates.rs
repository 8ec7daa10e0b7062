//! A release's gates: checking them against the environment's metric definitions, filling in
//! their defaults (stored, so a Get shows what applies), and turning the metric gates into the
//! judge's [`judge::Gate`]s. Prometheus gates stay with the server, which evaluates them at
//! every window close (see [`super::prometheus`]).
//!
//! A gate names a metric; its kind and direction come from the definition, which cannot change
//! (nor be deleted) while an active release gates on it (`catalog::metrics`).

use super::limits::invalid;
use crate::catalog::State;
use crate::error::Result;
use crate::metrics::custom::{MAX_NAME, valid_name};
use flagwire_core::judge::gate::{self as core, Direction, MetricKind as CoreKind};
use flagwire_core::judge::{self, gate::DEFAULT_MIN_COUNT};
use flagwire_proto::v1::{
    Comparison, Gate, MetricDefinition, MetricDirection, MetricKind, Release, gate,
};
use std::collections::BTreeSet;

/// Longest PromQL query.
pub const MAX_QUERY: usize = 4096;
/// Quantile a relative gate on a distribution compares when it does not say.
pub const DEFAULT_QUANTILE: f64 = 0.95;

fn definition<'a>(
    state: &'a State,
    env: &str,
    name: &str,
    field: &str,
) -> Result<&'a MetricDefinition> {
    state
        .metrics
        .get(&(env.to_owned(), name.to_owned()))
        .ok_or_else(|| {
            invalid(
                field,
                format!("no metric {name:?} is defined in {env:?} (flagwire metrics define)"),
            )
        })
}

fn finite(v: f64, field: &str) -> Result<()> {
    if v.is_finite() {
        Ok(())
    } else {
        Err(invalid(field, "must be a finite number"))
    }
}

fn comparison(c: i32, field: &str) -> Result<()> {
    match Comparison::try_from(c) {
        Ok(Comparison::Unspecified) | Err(_) => Err(invalid(
            field,
            "required: GREATER_THAN, GREATER_OR_EQUAL, LESS_THAN or LESS_OR_EQUAL",
        )),
        Ok(_) => Ok(()),
    }
}

/// `q` checked as a quantile of a distribution metric, defaulted to `default`; 0 for others.
fn quantile(def: &MetricDefinition, q: f64, default: f64, field: &str) -> Result<f64> {
    if def.kind != MetricKind::Distribution as i32 {
        if q != 0.0 {
            return Err(invalid(field, "only for DISTRIBUTION metrics"));
        }
        return Ok(0.0);
    }
    let q = if q == 0.0 { default } else { q };
    if !(q > 0.0 && q < 1.0) {
        return Err(invalid(field, "must be in (0, 1)"));
    }
    Ok(q)
}

/// One gate checked and completed; `at` is its field path (`release.gates[0]`).
fn normalise_one(state: &State, env: &str, g: Gate, at: &str) -> Result<Gate> {
    let f = |name: &str| format!("{at}.{name}");
    if !g.name.is_empty() && (!valid_name(&g.name) || g.name.len() > MAX_NAME) {
        return Err(invalid(
            &f("name"),
            format!("lowercase letters, digits, '.', '_' and '-', at most {MAX_NAME}"),
        ));
    }
    let (default_name, kind) = match g.kind {
        None => {
            return Err(invalid(
                at,
                "one of relative, absolute or prometheus is required",
            ));
        }
        Some(gate::Kind::Relative(mut r)) => {
            let def = definition(state, env, &r.metric, &f("relative.metric"))?;
            finite(r.margin, &f("relative.margin"))?;
            if r.margin < 0.0 {
                return Err(invalid(&f("relative.margin"), "must not be negative"));
            }
            r.quantile = quantile(def, r.quantile, DEFAULT_QUANTILE, &f("relative.quantile"))?;
            (r.metric.clone(), gate::Kind::Relative(r))
        }
        Some(gate::Kind::Absolute(mut a)) => {
            let def = definition(state, env, &a.metric, &f("absolute.metric"))?;
            comparison(a.comparison, &f("absolute.comparison"))?;
            finite(a.threshold, &f("absolute.threshold"))?;
            if let Some(at) = a.rollback_threshold {
                finite(at, &f("absolute.rollbackThreshold"))?;
                let cmp = to_comparison(a.comparison);
                // The rollback threshold lies beyond the threshold, on the failing side.
                if cmp.passes(at, a.threshold) {
                    return Err(invalid(
                        &f("absolute.rollbackThreshold"),
                        "must lie on the failing side of threshold (e.g. below it for GREATER_THAN)",
                    ));
                }
            }
            if a.total && a.quantile != 0.0 {
                return Err(invalid(&f("absolute.quantile"), "not with total"));
            }
            if !a.total {
                a.quantile = quantile(def, a.quantile, 0.0, &f("absolute.quantile"))?;
            }

            if a.min_count == 0 {
                a.min_count = DEFAULT_MIN_COUNT;
            }
            (a.metric.clone(), gate::Kind::Absolute(a))
        }
        Some(gate::Kind::Prometheus(p)) => {
            if p.query.trim().is_empty() || p.query.len() > MAX_QUERY {
                return Err(invalid(
                    &f("prometheus.query"),
                    format!("required, at most {MAX_QUERY} bytes"),
                ));
            }
            comparison(p.comparison, &f("prometheus.comparison"))?;
            finite(p.threshold, &f("prometheus.threshold"))?;
            ("prometheus".to_owned(), gate::Kind::Prometheus(p))
        }
    };
    Ok(Gate {
        name: if g.name.is_empty() {
            default_name
        } else {
            g.name
        },
        kind: Some(kind),
    })
}

/// `gates` checked and completed, their names unique among `taken` (which they join).
pub fn normalise(
    state: &State,
    env: &str,
    gates: Vec<Gate>,
    prefix: &str,
    taken: &mut BTreeSet<String>,
) -> Result<Vec<Gate>> {
    gates
        .into_iter()
        .enumerate()
        .map(|(i, g)| {
            let at = format!("{prefix}[{i}]");
            let g = normalise_one(state, env, g, &at)?;
            if !taken.insert(g.name.clone()) {
                return Err(invalid(
                    &format!("{at}.name"),
                    format!(
                        "{:?} is taken by another gate of this stage: name one of them",
                        g.name
                    ),
                ));
            }
            Ok(g)
        })
        .collect()
}

fn metric(def: &MetricDefinition) -> core::Metric {
    core::Metric {
        name: def.name.clone(),
        kind: match MetricKind::try_from(def.kind) {
            Ok(MetricKind::Rate) => CoreKind::Rate,
            Ok(MetricKind::Distribution) => CoreKind::Distribution,
            Ok(MetricKind::CountPerRequest) => CoreKind::CountPerRequest,
            _ => CoreKind::Mean,
        },
        direction: match MetricDirection::try_from(def.direction) {
            Ok(MetricDirection::LowerIsBetter) => Direction::LowerIsBetter,
            _ => Direction::HigherIsBetter,
        },
    }
}

/// The judge's comparison for a stored one.
pub fn to_comparison(c: i32) -> core::Comparison {
    match Comparison::try_from(c) {
        Ok(Comparison::GreaterOrEqual) => core::Comparison::GreaterOrEqual,
        Ok(Comparison::LessThan) => core::Comparison::LessThan,
        Ok(Comparison::LessOrEqual) => core::Comparison::LessOrEqual,
        _ => core::Comparison::GreaterThan,
    }
}

/// The judge's metric gates among stored `gates` of a release in `env`; a gate whose metric is
/// no longer defined is skipped (the catalog refuses that while the release is active).
pub fn to_judge(state: &State, env: &str, gates: &[Gate]) -> Vec<judge::Gate> {
    let def = |name: &str| state.metrics.get(&(env.to_owned(), name.to_owned()));
    gates
        .iter()
        .filter_map(|g| match g.kind.as_ref()? {
            gate::Kind::Relative(r) => Some(judge::Gate::Relative(core::RelativeGate {
                name: g.name.clone(),
                metric: metric(def(&r.metric)?),
                margin: r.margin,
                quantile: r.quantile,
            })),
            gate::Kind::Absolute(a) => Some(judge::Gate::Absolute(core::AbsoluteGate {
                name: g.name.clone(),
                metric: metric(def(&a.metric)?),
                comparison: to_comparison(a.comparison),
                threshold: a.threshold,
                quantile: a.quantile,
                min_count: a.min_count,
                rollback_threshold: a.rollback_threshold,
                total: a.total,
            })),
            gate::Kind::Prometheus(_) => None,
        })
        .collect()
}

/// Whether any gate of `r` (release-wide or of a stage) is a Prometheus query.
pub fn uses_prometheus(r: &Release) -> bool {
    let stage_gates = r.stages.iter().flat_map(|s| &s.gates);
    r.gates
        .iter()
        .chain(stage_gates)
        .any(|g| matches!(g.kind, Some(gate::Kind::Prometheus(_))))
}
