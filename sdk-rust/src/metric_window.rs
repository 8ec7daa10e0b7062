//! One window's metric series: the team's own metrics aggregated per (flag, variant, cohort,
//! rollout id, name), sent as the report's `metrics` (`flagwire.v1.MetricSeries`).
//!
//! An event (or a scope's events under one name) is attributed to every flag variant served
//! (per-flag series, for usage) and once to every distinct (release, canary|control) among
//! them (release-cohort series, with no flag: what gates judge), by the rules of
//! `tests/metrics/README.md`. Memory is bounded like the series: at most [`MAX_METRIC_KEYS`]
//! keys; what falls beyond is dropped and counted in the report's `dropped_series`.

use crate::cohorts;
use crate::metrics::{MAX_SERIES, Served};
use flagwire_core::histogram::Histogram;
use flagwire_core::judge::MetricAgg;
use flagwire_proto::v1::MetricSeries;
use std::collections::BTreeMap;

/// Metric keys held at most (per client): as many as series, as `tests/metrics/README.md` says.
pub(crate) const MAX_METRIC_KEYS: usize = MAX_SERIES;

/// Field order is the report's order (flag, variant, cohort, rollout id, name), which the
/// shared fixture pins, so the map's order is the wire's.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct MetricKey {
    flag_key: String,
    variant: String,
    cohort: String,
    rollout_id: String,
    name: String,
}

fn same_variant(a: &Served, b: &Served) -> bool {
    a.flag == b.flag
        && a.variant == b.variant
        && a.cohort == b.cohort
        && a.rollout_id == b.rollout_id
}

/// The keys `name` is attributed to when `served` was served: each distinct flag variant, then
/// each distinct release cohort.
fn keys_for<'a>(served: &'a [Served], name: &'a str) -> impl Iterator<Item = MetricKey> + 'a {
    let per_flag = served
        .iter()
        .enumerate()
        .filter(|(i, s)| !served[..*i].iter().any(|p| same_variant(p, s)))
        .map(move |(_, s)| MetricKey {
            flag_key: s.flag.clone(),
            variant: s.variant.clone(),
            cohort: s.cohort.clone(),
            rollout_id: s.rollout_id.clone(),
            name: name.to_owned(),
        });
    let per_release = cohorts::distinct(served).map(move |(release, cohort)| MetricKey {
        flag_key: String::new(),
        variant: String::new(),
        cohort: cohort.label().to_owned(),
        rollout_id: release.to_owned(),
        name: name.to_owned(),
    });
    per_flag.chain(per_release)
}

/// One window's metric aggregates.
#[derive(Default)]
pub(crate) struct MetricWindow {
    // Ordered, so taking the window yields the report's order with no sort. Looking a key up
    // builds an owned key (a few short strings) per series an event reaches: metric events are
    // per request, not per evaluation, so this stays off the evaluation path's budget.
    keys: BTreeMap<MetricKey, MetricAgg>,
}

impl MetricWindow {
    fn add(&mut self, key: MetricKey, agg: &MetricAgg, dropped: &mut u64) {
        if let Some(into) = self.keys.get_mut(&key) {
            into.add(agg);
        } else if self.keys.len() >= MAX_METRIC_KEYS {
            *dropped = dropped.saturating_add(1);
        } else {
            self.keys.insert(key, agg.clone());
        }
    }

    /// Adds `agg` (one event, or a scope's events under `name`) to every series it is
    /// attributed to given what was `served`; counts in `dropped` each series with no room.
    pub fn attribute(&mut self, served: &[Served], name: &str, agg: &MetricAgg, dropped: &mut u64) {
        for key in keys_for(served, name) {
            self.add(key, agg, dropped);
        }
    }

    /// Takes every series, in the report's order. A series whose sums overflowed to infinity is
    /// dropped and counted: the server would refuse the whole window for it.
    pub fn take(&mut self, dropped: &mut u64) -> Vec<MetricSeries> {
        let mut out = Vec::with_capacity(self.keys.len());
        for (k, a) in std::mem::take(&mut self.keys) {
            let sums = [a.sum, a.sum_of_squares, a.request_sum_of_squares];
            if !sums.iter().all(|s| s.is_finite()) {
                *dropped = dropped.saturating_add(1);
                continue;
            }
            out.push(MetricSeries {
                name: k.name,
                flag_key: k.flag_key,
                variant: k.variant,
                cohort: k.cohort,
                rollout_id: k.rollout_id,
                count: a.count,
                sum: a.sum,
                sum_of_squares: a.sum_of_squares,
                histogram: (!a.histogram.is_empty()).then(|| a.histogram.to_proto()),
                successes: a.successes,
                failures: a.failures,
                requests: a.requests,
                request_sum_of_squares: a.request_sum_of_squares,
            });
        }
        out
    }

    /// Puts back what a failed report took (within the bound; beyond it, dropped and counted).
    pub fn merge_back(&mut self, metrics: Vec<MetricSeries>, dropped: &mut u64) {
        for m in metrics {
            let agg = MetricAgg {
                count: m.count,
                sum: m.sum,
                sum_of_squares: m.sum_of_squares,
                // This SDK wrote it, so it reads back; were it damaged, the rest still counts.
                histogram: m
                    .histogram
                    .as_ref()
                    .and_then(|h| Histogram::from_proto(h).ok())
                    .unwrap_or_default(),
                successes: m.successes,
                failures: m.failures,
                requests: m.requests,
                request_sum_of_squares: m.request_sum_of_squares,
            };
            let key = MetricKey {
                flag_key: m.flag_key,
                variant: m.variant,
                cohort: m.cohort,
                rollout_id: m.rollout_id,
                name: m.name,
            };
            self.add(key, &agg, dropped);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metric_event::MetricEvent;

    fn served(flag: &str, cohort: &str, rollout_id: &str) -> Served {
        Served {
            flag: flag.into(),
            variant: "on".into(),
            cohort: cohort.into(),
            rollout_id: rollout_id.into(),
        }
    }

    #[test]
    fn keys_beyond_the_bound_are_dropped_and_counted_and_held_ones_still_add() {
        let mut w = MetricWindow::default();
        let mut dropped = 0;
        let one = MetricEvent::Track(2.0).to_agg();
        for i in 0..MAX_METRIC_KEYS + 3 {
            w.attribute(&[served(&format!("f{i}"), "", "")], "m", &one, &mut dropped);
        }
        assert_eq!(dropped, 3);
        // A scope of a held flag and a new release: the flag's series adds, the release's
        // cohort (a new key) is dropped.
        w.attribute(&[served("f0", "canary", "")], "m", &one, &mut dropped);
        w.attribute(
            &[served("f1", "", ""), served("g", "canary", "r")],
            "m",
            &one,
            &mut dropped,
        );
        assert_eq!(dropped, 3 + 1 + 2);
        let taken = w.take(&mut dropped);
        assert_eq!(taken.len(), MAX_METRIC_KEYS);
        let f1 = taken.iter().find(|m| m.flag_key == "f1").unwrap();
        assert_eq!((f1.count, f1.sum), (2, 4.0));
        assert!(w.take(&mut dropped).is_empty(), "taking empties the window");
    }

    #[test]
    fn merge_back_restores_what_was_taken() {
        let mut w = MetricWindow::default();
        let mut dropped = 0;
        let scope = [served("a", "canary", "r"), served("b", "canary", "r")];
        for e in [
            MetricEvent::Observe(12.5),
            MetricEvent::Observe(0.0),
            MetricEvent::Track(-3.0),
            MetricEvent::Outcome(false),
        ] {
            w.attribute(&scope, "m", &e.to_agg(), &mut dropped);
        }
        let taken = w.take(&mut dropped);
        assert_eq!(taken.len(), 3, "a, b and r's canary");
        w.merge_back(taken.clone(), &mut dropped);
        w.attribute(
            &scope[..1],
            "m",
            &MetricEvent::Outcome(true).to_agg(),
            &mut dropped,
        );
        let again = w.take(&mut dropped);
        assert_eq!(dropped, 0);
        for (before, after) in taken.iter().zip(&again) {
            let added = u64::from(after.flag_key != "b");
            assert_eq!(
                MetricSeries {
                    successes: before.successes + added,
                    ..before.clone()
                },
                *after
            );
        }
    }

    #[test]
    fn a_series_whose_sums_overflowed_is_dropped_not_sent() {
        let mut w = MetricWindow::default();
        let mut dropped = 0;
        let big = MetricEvent::Track(1e154).to_agg();
        for _ in 0..3 {
            w.attribute(&[served("a", "", "")], "m", &big, &mut dropped);
        }
        w.attribute(&[served("b", "", "")], "m", &big, &mut dropped);
        let taken = w.take(&mut dropped);
        assert_eq!(taken.len(), 1);
        assert_eq!((taken[0].flag_key.as_str(), dropped), ("b", 1));
    }
}
