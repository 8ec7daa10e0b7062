//! Usage and outcome metrics: evaluations counted per (flag, variant, cohort, rollout, reason), measured
//! outcomes (success/error and latency in a scale-3 exponential histogram, exact integer
//! bucketing shared with the Python and TypeScript SDKs), flushed through
//! `MetricsService.Report`. A request scope's outcome goes on the series of every flag it read
//! and, once per distinct (release, cohort) among them, into `cohorts`.
//!
//! Memory is bounded: at most `MAX_SERIES` (flag, variant, cohort) series are held; further
//! ones are dropped and counted in the report's `dropped_series`. Series are kept between
//! flushes and only their counters are taken, so a steady workload allocates nothing after
//! warm-up. A failed flush is merged back and retried with the next one.
//!
//! Series counters are atomics in a table read without a lock (`series`): reads and outcomes
//! never wait for each other or for a flush. Release cohorts' outcomes and the team's own
//! metrics (`metric_window`) live in one window under a mutex, and go out with the same report.

use crate::cohorts::{self, Cohorts};
use crate::metric_event::{MetricEvent, ScopeMetrics, events_in};
use crate::metric_window::MetricWindow;
use crate::series::{REASONS as N_REASONS, SeriesTable};
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::{CohortOutcome, MetricSeries, Reason, ReasonCount, Series};
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

/// Series held at most (per client).
pub(crate) const MAX_SERIES: usize = 10_000;
const REASONS: [Reason; N_REASONS] = [
    Reason::Unspecified,
    Reason::Static,
    Reason::TargetingMatch,
    Reason::Split,
    Reason::Disabled,
    Reason::PrerequisiteFailed,
    Reason::Error,
];

#[derive(Default)]
struct Window {
    cohorts: Cohorts,
    metrics: MetricWindow,
    // Series, cohort outcomes and metric events dropped (for lack of room, or invalid), all
    // sent as `dropped_series`.
    dropped: u64,
}

/// A served variant, as measurement and request scopes remember it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Served {
    /// The flag.
    pub flag: String,
    /// The variant served.
    pub variant: String,
    /// The cohort label, if any.
    pub cohort: String,
    /// The rollout owning the split served, if any.
    pub rollout_id: String,
}

/// What one flush takes from the recorder (and puts back if the report fails).
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct Taken {
    /// Per-flag series with non-zero counters.
    pub series: Vec<Series>,
    /// Outcomes per (release, cohort).
    pub cohort_outcomes: Vec<CohortOutcome>,
    /// The team's own metrics, in the report's order.
    pub metrics: Vec<MetricSeries>,
    /// Series, cohort outcomes and metric events dropped.
    pub dropped: u64,
}

impl Taken {
    /// Whether there is nothing to report.
    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
            && self.cohort_outcomes.is_empty()
            && self.metrics.is_empty()
            && self.dropped == 0
    }
}

/// Collects one client's metrics between flushes.
pub(crate) struct Recorder {
    series: SeriesTable,
    // A plain mutex for cohort outcomes and metric events; never held across an await.
    window: Mutex<Window>,
}

impl Default for Recorder {
    fn default() -> Self {
        Self {
            series: SeriesTable::new(MAX_SERIES),
            window: Mutex::default(),
        }
    }
}

fn micros(elapsed: Duration) -> u64 {
    u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX)
}

impl Recorder {
    /// Counts one evaluation (no lock once its series exists).
    pub fn evaluation(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
        reason: Reason,
    ) {
        let counted = self.series.with(flag, variant, cohort, rollout_id, |s| {
            s.reasons[reason as usize % N_REASONS].fetch_add(1, Relaxed);
        });
        if counted.is_none() {
            self.drop_events(1);
        }
    }

    /// Counts one evaluation and returns its series, for a measurement to record its outcome
    /// on without looking it up again.
    pub fn measured(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
        reason: Reason,
    ) -> Option<Arc<crate::series::Series>> {
        let series = self.series.get(flag, variant, cohort, rollout_id);
        match &series {
            Some(s) => _ = s.reasons[reason as usize % N_REASONS].fetch_add(1, Relaxed),
            None => self.drop_events(1),
        }
        series
    }

    /// Records a measurement's outcome on its one series (and its release cohort, if any).
    pub fn measurement_outcome(&self, series: &crate::series::Series, ok: bool, elapsed: Duration) {
        let latency_us = micros(elapsed);
        series.outcome(ok, latency_us);
        if series.rollout_id.is_empty() {
            return;
        }
        if let Some(cohort) = cohorts::Cohort::parse(&series.cohort) {
            let mut window = self.lock();
            let Window {
                cohorts, dropped, ..
            } = &mut *window;
            cohorts.record(&series.rollout_id, cohort, ok, latency_us, dropped);
        }
    }

    /// Records the outcome of one request scope: on the series of every flag it served, and
    /// once per distinct (release, cohort) among them.
    pub fn scope_outcome(&self, served: &[Served], ok: bool, elapsed: Duration) {
        let latency_us = micros(elapsed);
        let mut missed = 0;
        for s in served {
            let found = self
                .series
                .with(&s.flag, &s.variant, &s.cohort, &s.rollout_id, |c| {
                    c.outcome(ok, latency_us)
                });
            missed += u64::from(found.is_none());
        }
        let mut distinct = cohorts::distinct(served).peekable();
        if missed == 0 && distinct.peek().is_none() {
            return;
        }
        let mut window = self.lock();
        let Window {
            cohorts, dropped, ..
        } = &mut *window;
        *dropped = dropped.saturating_add(missed);
        for (release, cohort) in distinct {
            cohorts.record(release, cohort, ok, latency_us, dropped);
        }
    }

    /// The window. Metric events may be recorded from `Drop` while a thread unwinds, where a
    /// panic would abort: a poisoned lock is used as is (its counters are plain numbers).
    fn lock(&self) -> MutexGuard<'_, Window> {
        self.window.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Attributes a request scope's metric events, when it ends, to what it `served` (see
    /// `metric_window`); with nothing served there is nothing to attribute them to, and they
    /// are dropped and counted.
    pub fn scope_metrics(&self, served: &[Served], metrics: ScopeMetrics) {
        if metrics.is_empty() {
            return;
        }
        let mut window = self.lock();
        let Window {
            metrics: keys,
            dropped,
            ..
        } = &mut *window;
        for m in metrics.into_metrics() {
            let (name, agg) = m.finish();
            if served.is_empty() {
                *dropped = dropped.saturating_add(events_in(&agg));
            } else {
                keys.attribute(served, &name, &agg, dropped);
            }
        }
    }

    /// Attributes one event recorded outside any scope to the flags it named (`served`), with
    /// no request; dropped and counted when none of them served a variant.
    pub fn attributed_event(&self, served: &[Served], name: &str, event: MetricEvent) {
        let mut window = self.lock();
        let Window {
            metrics: keys,
            dropped,
            ..
        } = &mut *window;
        if served.is_empty() {
            *dropped = dropped.saturating_add(1);
        } else {
            keys.attribute(served, name, &event.to_agg(), dropped);
        }
    }

    /// Counts `n` metric events dropped (invalid, or with nothing to attribute them to).
    pub fn drop_events(&self, n: u64) {
        let mut window = self.lock();
        window.dropped = window.dropped.saturating_add(n);
    }

    /// Takes every non-zero series, cohort outcome and metric series (zeroing them in place)
    /// and the dropped count.
    pub fn take(&self) -> Taken {
        let mut window = self.window.lock().expect("metrics poisoned");
        let Window {
            metrics, dropped, ..
        } = &mut *window;
        let metrics = metrics.take(dropped);
        let dropped = std::mem::take(&mut window.dropped);
        let mut out = Vec::new();
        for e in self.series.all() {
            let reasons = e.reasons.each_ref().map(|r| r.swap(0, Relaxed));
            let successes = e.successes.swap(0, Relaxed);
            let errors = e.errors.swap(0, Relaxed);
            let latency =
                std::mem::take(&mut *e.latency.lock().unwrap_or_else(PoisonError::into_inner));
            if reasons.iter().all(|n| *n == 0) && successes == 0 && errors == 0 {
                continue;
            }
            out.push(Series {
                flag_key: e.flag.to_string(),
                variant: e.variant.clone(),
                cohort: e.cohort.clone(),
                rollout_id: e.rollout_id.clone(),
                evaluations: REASONS
                    .iter()
                    .zip(reasons)
                    .filter(|(_, n)| *n > 0)
                    .map(|(r, n)| ReasonCount {
                        reason: flagwire_core::evaluation::reason_name(*r).to_owned(),
                        count: n,
                    })
                    .collect(),
                successes,
                errors,
                latency_us: (!latency.is_empty()).then(|| latency.to_proto()),
            });
        }
        Taken {
            series: out,
            cohort_outcomes: window.cohorts.take(),
            metrics,
            dropped,
        }
    }

    /// Puts back what a failed flush took, so nothing is lost while the server is away.
    pub fn merge_back(&self, taken: Taken) {
        let mut window = self.window.lock().expect("metrics poisoned");
        window.dropped += taken.dropped;
        let Window {
            cohorts,
            metrics,
            dropped,
            ..
        } = &mut *window;
        cohorts.merge_back(taken.cohort_outcomes, dropped);
        metrics.merge_back(taken.metrics, dropped);
        for s in taken.series {
            let merged =
                self.series
                    .with(&s.flag_key, &s.variant, &s.cohort, &s.rollout_id, |c| {
                        for rc in &s.evaluations {
                            if let Some(i) = REASONS.iter().position(|r| {
                                flagwire_core::evaluation::reason_name(*r) == rc.reason
                            }) {
                                c.reasons[i].fetch_add(rc.count, Relaxed);
                            }
                        }
                        c.successes.fetch_add(s.successes, Relaxed);
                        c.errors.fetch_add(s.errors, Relaxed);
                        if let Some(h) = s
                            .latency_us
                            .as_ref()
                            .and_then(|h| Histogram::from_proto(h).ok())
                        {
                            c.latency
                                .lock()
                                .unwrap_or_else(PoisonError::into_inner)
                                .merge(&h);
                        }
                    });
            if merged.is_none() {
                window.dropped = window.dropped.saturating_add(1);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn served(flag: &str, cohort: &str, rollout_id: &str) -> Served {
        Served {
            flag: flag.into(),
            variant: "on".into(),
            cohort: cohort.into(),
            rollout_id: rollout_id.into(),
        }
    }

    #[test]
    fn take_zeroes_and_merge_back_restores() {
        let r = Recorder::default();
        r.evaluation("f", "on", "", "", Reason::Static);
        r.evaluation("f", "on", "", "", Reason::Static);
        r.scope_outcome(&[served("f", "", "")], false, Duration::from_micros(1500));
        r.scope_outcome(
            &[served("g", "canary", "r1"), served("h", "canary", "r1")],
            true,
            Duration::from_micros(700),
        );
        let taken = r.take();
        assert_eq!((taken.series.len(), taken.dropped), (3, 0));
        let f = taken.series.iter().find(|s| s.flag_key == "f").unwrap();
        assert_eq!(f.evaluations[0].count, 2);
        assert_eq!((f.successes, f.errors), (0, 1));
        let [outcome] = taken.cohort_outcomes.as_slice() else {
            panic!("one outcome for r1's canary: {:?}", taken.cohort_outcomes);
        };
        assert_eq!(
            (outcome.release_id.as_str(), outcome.cohort.as_str()),
            ("r1", "canary")
        );
        assert_eq!((outcome.successes, outcome.errors), (1, 0));
        assert!(r.take().is_empty(), "taken counters are zeroed");
        r.merge_back(Taken {
            dropped: 3,
            ..taken.clone()
        });
        let mut again = r.take();
        again.series.sort_by(|a, b| a.flag_key.cmp(&b.flag_key));
        let mut expected = Taken {
            dropped: 3,
            ..taken
        };
        expected.series.sort_by(|a, b| a.flag_key.cmp(&b.flag_key));
        assert_eq!(again, expected);
    }

    #[test]
    fn series_beyond_the_bound_are_dropped_and_counted() {
        let r = Recorder::default();
        for i in 0..MAX_SERIES + 5 {
            r.evaluation(&format!("f{i}"), "on", "", "", Reason::Static);
        }
        let taken = r.take();
        assert_eq!((taken.series.len(), taken.dropped), (MAX_SERIES, 5));
    }

    #[test]
    fn cohort_outcomes_beyond_their_bound_count_as_dropped_series() {
        let r = Recorder::default();
        // Each scope is a new release: a new series (the rollout id is part of its key) and a
        // new (release, cohort) key, so both bounds are passed by two.
        for i in 0..cohorts::MAX_COHORT_KEYS + 2 {
            let release = format!("r{i}");
            r.scope_outcome(
                &[served("f", "control", &release)],
                true,
                Duration::from_micros(5),
            );
        }
        let taken = r.take();
        assert_eq!(taken.series.len(), MAX_SERIES);
        assert_eq!(taken.cohort_outcomes.len(), cohorts::MAX_COHORT_KEYS);
        assert_eq!(taken.dropped, 2 + 2);
    }
}
