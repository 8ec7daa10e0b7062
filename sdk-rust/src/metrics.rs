//! Usage and outcome metrics: evaluations counted per (flag, variant, cohort, rollout, reason), measured
//! outcomes (success/error and latency in a scale-3 exponential histogram, exact integer
//! bucketing shared with the Python and TypeScript SDKs), flushed through
//! `MetricsService.Report`.
//!
//! Memory is bounded: at most `MAX_SERIES` (flag, variant, cohort) series are held; further
//! ones are dropped and counted in the report's `dropped_series`. Series are kept between
//! flushes and only their counters are taken, so a steady workload allocates nothing after
//! warm-up. A failed flush is merged back and retried with the next one.

use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::{Reason, ReasonCount, Series};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

/// Series held at most (per client).
pub(crate) const MAX_SERIES: usize = 10_000;
const REASONS: [Reason; 7] = [
    Reason::Unspecified,
    Reason::Static,
    Reason::TargetingMatch,
    Reason::Split,
    Reason::Disabled,
    Reason::PrerequisiteFailed,
    Reason::Error,
];

#[derive(Default)]
struct Counters {
    reasons: [u64; 7],
    successes: u64,
    errors: u64,
    latency: Histogram,
}

impl Counters {
    fn is_zero(&self) -> bool {
        self.reasons.iter().all(|c| *c == 0) && self.successes == 0 && self.errors == 0
    }
}

struct Entry {
    variant: String,
    cohort: String,
    rollout_id: String,
    counters: Counters,
}

#[derive(Default)]
struct Window {
    // flag key → its series; a flag has few variants, so a short vector beats a second map.
    flags: HashMap<String, Vec<Entry>>,
    series: usize,
    dropped: u64,
}

impl Window {
    fn counters(
        &mut self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
    ) -> Option<&mut Counters> {
        if !self.flags.contains_key(flag) {
            if self.series >= MAX_SERIES {
                self.dropped += 1;
                return None;
            }
            self.flags.insert(flag.to_owned(), Vec::new());
        }
        let entries = self.flags.get_mut(flag)?;
        let at = match entries
            .iter()
            .position(|e| e.variant == variant && e.cohort == cohort && e.rollout_id == rollout_id)
        {
            Some(at) => at,
            None if self.series >= MAX_SERIES => {
                self.dropped += 1;
                return None;
            }
            None => {
                self.series += 1;
                entries.push(Entry {
                    variant: variant.to_owned(),
                    cohort: cohort.to_owned(),
                    rollout_id: rollout_id.to_owned(),
                    counters: Counters::default(),
                });
                entries.len() - 1
            }
        };
        Some(&mut entries[at].counters)
    }
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

/// Collects one client's metrics between flushes.
#[derive(Default)]
pub(crate) struct Recorder {
    // A plain mutex held for a counter increment; never across an await.
    window: Mutex<Window>,
}

impl Recorder {
    /// Counts one evaluation.
    pub fn evaluation(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
        reason: Reason,
    ) {
        let mut window = self.window.lock().expect("metrics poisoned");
        if let Some(c) = window.counters(flag, variant, cohort, rollout_id) {
            c.reasons[reason as usize % REASONS.len()] += 1;
        }
    }

    /// Records one measured outcome.
    pub fn outcome(&self, served: &Served, ok: bool, elapsed: Duration) {
        let mut window = self.window.lock().expect("metrics poisoned");
        if let Some(c) = window.counters(
            &served.flag,
            &served.variant,
            &served.cohort,
            &served.rollout_id,
        ) {
            if ok {
                c.successes += 1;
            } else {
                c.errors += 1;
            }
            c.latency
                .record(u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX));
        }
    }

    /// Takes every non-zero series (zeroing it in place) and the dropped count.
    pub fn take(&self) -> (Vec<Series>, u64) {
        let mut window = self.window.lock().expect("metrics poisoned");
        let dropped = std::mem::take(&mut window.dropped);
        let mut out = Vec::new();
        for (flag, entries) in &mut window.flags {
            for e in entries.iter_mut().filter(|e| !e.counters.is_zero()) {
                let c = std::mem::take(&mut e.counters);
                out.push(Series {
                    flag_key: flag.clone(),
                    variant: e.variant.clone(),
                    cohort: e.cohort.clone(),
                    rollout_id: e.rollout_id.clone(),
                    evaluations: REASONS
                        .iter()
                        .zip(c.reasons)
                        .filter(|(_, n)| *n > 0)
                        .map(|(r, n)| ReasonCount {
                            reason: flagwire_core::evaluation::reason_name(*r).to_owned(),
                            count: n,
                        })
                        .collect(),
                    successes: c.successes,
                    errors: c.errors,
                    latency_us: (!c.latency.is_empty()).then(|| c.latency.to_proto()),
                });
            }
        }
        (out, dropped)
    }

    /// Puts back what a failed flush took, so nothing is lost while the server is away.
    pub fn merge_back(&self, series: Vec<Series>, dropped: u64) {
        let mut window = self.window.lock().expect("metrics poisoned");
        window.dropped += dropped;
        for s in series {
            let Some(c) = window.counters(&s.flag_key, &s.variant, &s.cohort, &s.rollout_id) else {
                continue;
            };
            for rc in &s.evaluations {
                if let Some(i) = REASONS
                    .iter()
                    .position(|r| flagwire_core::evaluation::reason_name(*r) == rc.reason)
                {
                    c.reasons[i] += rc.count;
                }
            }
            c.successes += s.successes;
            c.errors += s.errors;
            if let Some(h) = s
                .latency_us
                .as_ref()
                .and_then(|h| Histogram::from_proto(h).ok())
            {
                c.latency.merge(&h);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn take_zeroes_and_merge_back_restores() {
        let r = Recorder::default();
        r.evaluation("f", "on", "", "", Reason::Static);
        r.evaluation("f", "on", "", "", Reason::Static);
        let served = Served {
            flag: "f".into(),
            variant: "on".into(),
            cohort: String::new(),
            rollout_id: String::new(),
        };
        r.outcome(&served, false, Duration::from_micros(1500));
        let (series, dropped) = r.take();
        assert_eq!((series.len(), dropped), (1, 0));
        assert_eq!(series[0].evaluations[0].count, 2);
        assert_eq!((series[0].successes, series[0].errors), (0, 1));
        assert!(r.take().0.is_empty(), "taken counters are zeroed");
        r.merge_back(series.clone(), 3);
        let (again, dropped) = r.take();
        assert_eq!((again, dropped), (series, 3));
    }

    #[test]
    fn series_beyond_the_bound_are_dropped_and_counted() {
        let r = Recorder::default();
        for i in 0..MAX_SERIES + 5 {
            r.evaluation(&format!("f{i}"), "on", "", "", Reason::Static);
        }
        let (series, dropped) = r.take();
        assert_eq!((series.len(), dropped), (MAX_SERIES, 5));
    }
}
