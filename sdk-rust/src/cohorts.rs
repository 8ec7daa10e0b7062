//! Outcomes per release cohort: what a release is judged on. A request scope that read several
//! flags of one release is one outcome for that release's cohort, however many of its flags it
//! read; the per-flag series (`metrics`) still count every flag, for usage.
//!
//! Held per (release id, cohort) for one metrics window and sent as the report's
//! `cohort_outcomes`. Memory is bounded like the series: at most [`MAX_COHORT_KEYS`] keys; an
//! outcome for a key beyond it is dropped and counted in the report's `dropped_series`. Keys
//! that saw outcomes are kept (zeroed) across a flush so a steady workload allocates nothing;
//! keys idle for a whole window are forgotten, so finished releases do not use up the bound.

use crate::metrics::Served;
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::CohortOutcome;
use std::collections::HashMap;

/// (release, cohort) keys held at most (per client): the same order as the series bound.
pub(crate) const MAX_COHORT_KEYS: usize = crate::metrics::MAX_SERIES;

/// The two cohorts a release is judged on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Cohort {
    Canary,
    Control,
}

impl Cohort {
    /// The cohort of a split entry label; other labels (and none) are not a release cohort.
    pub fn parse(label: &str) -> Option<Self> {
        match label {
            "canary" => Some(Self::Canary),
            "control" => Some(Self::Control),
            _ => None,
        }
    }

    /// The label on the wire.
    pub fn label(self) -> &'static str {
        match self {
            Self::Canary => "canary",
            Self::Control => "control",
        }
    }
}

/// The distinct (release id, cohort) pairs among what a scope served, in first-served order.
/// Evaluations with no rollout id or no release cohort label are not a release's.
pub(crate) fn distinct(served: &[Served]) -> impl Iterator<Item = (&str, Cohort)> {
    // Quadratic, but a scope serves a handful of flags, and this allocates nothing.
    served.iter().enumerate().filter_map(|(i, s)| {
        let cohort = Cohort::parse(&s.cohort).filter(|_| !s.rollout_id.is_empty())?;
        let first = !served[..i]
            .iter()
            .any(|p| p.rollout_id == s.rollout_id && p.cohort == s.cohort);
        first.then_some((s.rollout_id.as_str(), cohort))
    })
}

#[derive(Default)]
struct Outcomes {
    successes: u64,
    errors: u64,
    latency: Histogram,
}

/// One window's outcomes per (release, cohort).
#[derive(Default)]
pub(crate) struct Cohorts {
    // Release id → [canary, control]; `None` where the key is not held.
    releases: HashMap<String, [Option<Outcomes>; 2]>,
    keys: usize,
}

impl Cohorts {
    /// The outcomes of a key, made if there is room; `None` (and `dropped` counted) if not.
    fn outcomes(
        &mut self,
        release: &str,
        cohort: Cohort,
        dropped: &mut u64,
    ) -> Option<&mut Outcomes> {
        let full = self.keys >= MAX_COHORT_KEYS;
        if !self.releases.contains_key(release) {
            if full {
                *dropped += 1;
                return None;
            }
            self.releases.insert(release.to_owned(), Default::default());
        }
        let slot = &mut self.releases.get_mut(release)?[cohort as usize];
        if slot.is_none() {
            if full {
                *dropped += 1;
                return None;
            }
            self.keys += 1;
        }
        Some(slot.get_or_insert_with(Outcomes::default))
    }

    /// Records one scope's outcome for `release`'s `cohort`.
    pub fn record(
        &mut self,
        release: &str,
        cohort: Cohort,
        ok: bool,
        latency_us: u64,
        dropped: &mut u64,
    ) {
        if let Some(o) = self.outcomes(release, cohort, dropped) {
            if ok {
                o.successes += 1;
            } else {
                o.errors += 1;
            }
            o.latency.record(latency_us);
        }
    }

    /// Takes every key's outcomes (zeroing it in place) and forgets keys idle since the last
    /// take.
    pub fn take(&mut self) -> Vec<CohortOutcome> {
        let mut out = Vec::new();
        let mut forgotten = 0;
        self.releases.retain(|release, pair| {
            for (slot, cohort) in pair.iter_mut().zip([Cohort::Canary, Cohort::Control]) {
                let Some(o) = slot else { continue };
                if o.successes == 0 && o.errors == 0 {
                    *slot = None;
                    forgotten += 1;
                    continue;
                }
                let o = std::mem::take(o);
                out.push(CohortOutcome {
                    release_id: release.clone(),
                    cohort: cohort.label().to_owned(),
                    successes: o.successes,
                    errors: o.errors,
                    latency_us: Some(o.latency.to_proto()),
                });
            }
            pair.iter().any(Option::is_some)
        });
        self.keys -= forgotten;
        out
    }

    /// Puts back what a failed report took.
    pub fn merge_back(&mut self, outcomes: Vec<CohortOutcome>, dropped: &mut u64) {
        for c in outcomes {
            let Some(cohort) = Cohort::parse(&c.cohort) else {
                continue;
            };
            let Some(o) = self.outcomes(&c.release_id, cohort, dropped) else {
                continue;
            };
            o.successes += c.successes;
            o.errors += c.errors;
            if let Some(h) = c
                .latency_us
                .as_ref()
                .and_then(|h| Histogram::from_proto(h).ok())
            {
                o.latency.merge(&h);
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
    fn distinct_pairs_are_one_per_release_cohort_and_only_labelled_ones() {
        let scope = [
            served("a", "canary", "r1"),
            served("b", "canary", "r1"),
            served("c", "", "r1"),
            served("d", "control", "r2"),
            served("e", "canary", ""),
            served("f", "treatment", "r3"),
            served("g", "control", "r2"),
        ];
        let pairs: Vec<_> = distinct(&scope).collect();
        assert_eq!(pairs, [("r1", Cohort::Canary), ("r2", Cohort::Control)]);
    }

    #[test]
    fn keys_beyond_the_bound_are_dropped_and_idle_keys_forgotten() {
        let mut c = Cohorts::default();
        let mut dropped = 0;
        for i in 0..MAX_COHORT_KEYS + 3 {
            c.record(&format!("r{i}"), Cohort::Canary, true, 10, &mut dropped);
        }
        // A held release's other cohort is a new key too.
        c.record("r0", Cohort::Control, true, 10, &mut dropped);
        c.record("r0", Cohort::Canary, false, 10, &mut dropped);
        assert_eq!(dropped, 4);
        let taken = c.take();
        assert_eq!(taken.len(), MAX_COHORT_KEYS);
        assert_eq!(c.keys, MAX_COHORT_KEYS, "keys with outcomes are kept");
        c.record("r0", Cohort::Canary, true, 10, &mut dropped);
        assert_eq!(c.take().len(), 1);
        assert_eq!(c.keys, 1, "the keys idle for a window are forgotten");
        c.record("new", Cohort::Control, true, 10, &mut dropped);
        assert_eq!((c.take().len(), dropped), (1, 4), "so there is room again");
    }
}
