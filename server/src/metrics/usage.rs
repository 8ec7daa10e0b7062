//! Usage aggregates: evaluations, outcomes and latency per (environment, flag, variant, cohort)
//! and 10-second slot, in memory, pruned to the retention on every insert.
//!
//! A report's whole window is credited to the slot its start falls in (the start truncated to
//! the 10 s grid), so SDKs that report every 10 s or less land in one slot per window and a
//! query's time range resolves to 10 s. Latencies merge bucket by bucket
//! ([`flagwire_core::histogram`]), so a slot's quantiles are those of every value reported in
//! it, whichever instance recorded them.
//!
//! **Totals since start** ([`Usage::totals`], for `/metrics` counters that must never go down
//! while slots expire): slots that can no longer change are folded once into a *sealed* sum,
//! so a scrape adds up only the sealed sum and the few recent slots, not the whole retention.

use super::report::ValidSeries;
use super::unix_nanos;
use flagwire_core::histogram::Histogram;
use flagwire_core::judge::MetricAgg;
use flagwire_proto::v1::UsageRow;
use std::collections::{BTreeMap, HashMap};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

/// The slot width: report windows are grouped by their start truncated to multiples of this.
pub const GRID_SECS: i64 = 10;

/// What one (environment, flag, variant, cohort) accumulated in one slot, or over a query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Aggregate {
    /// Evaluations (every reason).
    pub evaluations: u64,
    /// Measured outcomes that succeeded.
    pub successes: u64,
    /// Measured outcomes that failed.
    pub errors: u64,
    /// Outcome latencies in microseconds.
    pub latency: Histogram,
    /// The team's own metrics recorded for it, by name.
    pub metrics: BTreeMap<String, MetricAgg>,
}

impl Aggregate {
    fn add(&mut self, other: &Aggregate) {
        self.evaluations = self.evaluations.saturating_add(other.evaluations);
        self.successes = self.successes.saturating_add(other.successes);
        self.errors = self.errors.saturating_add(other.errors);
        self.latency.merge(&other.latency);
        for (name, m) in &other.metrics {
            self.metrics.entry(name.clone()).or_default().add(m);
        }
    }

    /// The query row: error rate `errors / (successes + errors)` (0 with no outcomes) and the
    /// latency quantiles as bucket upper bounds (0 with no latencies).
    pub fn to_row(&self, flag_key: &str, variant: &str, cohort: &str) -> UsageRow {
        let outcomes = self.successes.saturating_add(self.errors);
        let error_rate = if outcomes == 0 {
            0.0
        } else {
            self.errors as f64 / outcomes as f64
        };
        let quantile = |q| self.latency.quantile(q).map_or(0.0, |at| at.upper_bound_us);
        UsageRow {
            flag_key: flag_key.to_owned(),
            variant: variant.to_owned(),
            cohort: cohort.to_owned(),
            evaluations: self.evaluations,
            successes: self.successes,
            errors: self.errors,
            error_rate,
            p50_us: quantile(0.5),
            p95_us: quantile(0.95),
            p99_us: quantile(0.99),
            metrics: self
                .metrics
                .iter()
                .map(|(name, m)| super::custom::stat(name, m))
                .collect(),
        }
    }
}

/// One (variant, cohort) of a flag in a slot.
#[derive(Debug, Default, Clone)]
struct Entry {
    variant: String,
    cohort: String,
    aggregate: Aggregate,
}

/// A slot's series: environment → flag → its few (variant, cohort) entries. Nested so a merge
/// looks keys up by `&str` and allocates only for a series it has not seen in the slot.
type Slot = HashMap<String, HashMap<String, Vec<Entry>>>;

/// Adds one series' aggregate into a slot-shaped map (allocating only for a new series).
fn add_entry(flags: &mut HashMap<String, Vec<Entry>>, flag: &str, e: &Entry) {
    if !flags.contains_key(flag) {
        flags.insert(flag.to_owned(), Vec::new());
    }
    let Some(entries) = flags.get_mut(flag) else {
        return;
    };
    match entries
        .iter_mut()
        .find(|x| x.variant == e.variant && x.cohort == e.cohort)
    {
        Some(x) => x.aggregate.add(&e.aggregate),
        None => entries.push(Entry {
            variant: e.variant.clone(),
            cohort: e.cohort.clone(),
            aggregate: e.aggregate.clone(),
        }),
    }
}

/// Adds every series of `slot` into `into`.
fn add_slot(into: &mut Slot, slot: &Slot) {
    for (env, flags) in slot {
        if !into.contains_key(env) {
            into.insert(env.clone(), HashMap::new());
        }
        let Some(target) = into.get_mut(env) else {
            continue;
        };
        for (flag, entries) in flags {
            entries.iter().for_each(|e| add_entry(target, flag, e));
        }
    }
}

/// One series' totals since start, as [`Usage::totals`] returns them.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesTotal {
    /// Environment.
    pub environment: String,
    /// Flag key.
    pub flag_key: String,
    /// Variant (empty for evaluations that ended in an error).
    pub variant: String,
    /// Cohort (empty outside rollouts).
    pub cohort: String,
    /// What it accumulated.
    pub aggregate: Aggregate,
}

#[derive(Default)]
struct Inner {
    // Slot start (Unix seconds, a multiple of GRID_SECS) -> series in that slot.
    slots: BTreeMap<i64, Slot>,
    // The sum of every slot starting before `sealed_until` (pruned ones included).
    sealed: Slot,
    sealed_until: i64,
}

impl Inner {
    /// Folds the slots starting in `[sealed_until, upto)` into the sealed sum.
    fn seal(&mut self, upto: i64) {
        if upto <= self.sealed_until {
            return;
        }
        for slot in self.slots.range(self.sealed_until..upto).map(|(_, s)| s) {
            add_slot(&mut self.sealed, slot);
        }
        self.sealed_until = upto;
    }
}

/// The aggregates of every slot still within the retention.
pub struct Usage {
    // A std mutex: held only for a merge or a query's scan, never across an await.
    inner: Mutex<Inner>,
    retention: Duration,
}

fn entry_of(s: &ValidSeries) -> Entry {
    Entry {
        variant: s.variant.clone(),
        cohort: s.cohort.clone(),
        aggregate: s.aggregate.clone(),
    }
}

/// The slot a time falls in (Unix seconds, rounded down to the grid).
pub fn slot_of(t: SystemTime) -> i64 {
    let secs = unix_nanos(t).div_euclid(1_000_000_000);
    let secs = i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX });
    secs.div_euclid(GRID_SECS) * GRID_SECS
}

/// The least whole second at or after `t` (slots starting there or later are "at or after t").
fn ceil_secs(t: SystemTime) -> i64 {
    let nanos = unix_nanos(t);
    let secs = nanos.div_euclid(1_000_000_000) + i128::from(nanos.rem_euclid(1_000_000_000) > 0);
    i64::try_from(secs).unwrap_or(if secs < 0 { i64::MIN } else { i64::MAX })
}

impl Usage {
    /// An empty store keeping slots for `retention`.
    pub fn new(retention: Duration) -> Self {
        Self {
            inner: Mutex::new(Inner {
                sealed_until: i64::MIN,
                ..Inner::default()
            }),
            retention,
        }
    }

    /// Adds a report's series of `env`, for the window starting at `window_start`, and prunes
    /// slots older than the retention. A window that starts before the retention is not added.
    pub fn merge(
        &self,
        env: &str,
        window_start: SystemTime,
        series: &[ValidSeries],
        now: SystemTime,
    ) {
        let cutoff = slot_of(
            now.checked_sub(self.retention)
                .unwrap_or(SystemTime::UNIX_EPOCH),
        );
        let slot = slot_of(window_start);
        let mut guard = self.inner.lock().expect("usage poisoned");
        let inner = &mut *guard;
        if inner
            .slots
            .first_key_value()
            .is_some_and(|(s, _)| *s < cutoff)
        {
            // Expiring slots leave the queries but stay in the totals.
            inner.seal(cutoff);
            while inner
                .slots
                .first_key_value()
                .is_some_and(|(s, _)| *s < cutoff)
            {
                inner.slots.pop_first();
            }
        }
        if slot < cutoff {
            return;
        }
        if slot < inner.sealed_until {
            // A slot already sealed changes after all (a report later than the totals assumed):
            // count it there too, so the totals stay exact.
            let flags = inner.sealed.entry(env.to_owned()).or_default();
            for s in series {
                add_entry(flags, &s.flag_key, &entry_of(s));
            }
        }
        let envs = inner.slots.entry(slot).or_default();
        if !envs.contains_key(env) {
            envs.insert(env.to_owned(), HashMap::new());
        }
        let Some(flags) = envs.get_mut(env) else {
            return;
        };
        for s in series {
            if !flags.contains_key(&s.flag_key) {
                flags.insert(s.flag_key.clone(), Vec::new());
            }
            let Some(entries) = flags.get_mut(&s.flag_key) else {
                continue;
            };
            match entries
                .iter_mut()
                .find(|e| e.variant == s.variant && e.cohort == s.cohort)
            {
                Some(e) => e.aggregate.add(&s.aggregate),
                None => entries.push(entry_of(s)),
            }
        }
    }

    /// Every series' totals since start (expired slots included), ordered by environment,
    /// flag, variant, cohort. Slots starting before `settled` are sealed first: pass a time
    /// no report can land before any more (the late-report watermark and a slot earlier), so
    /// later scrapes add up only the slots after it.
    pub fn totals(&self, settled: SystemTime) -> Vec<SeriesTotal> {
        let mut guard = self.inner.lock().expect("usage poisoned");
        let inner = &mut *guard;
        inner.seal(slot_of(settled));
        let mut sum = inner.sealed.clone();
        for slot in inner.slots.range(inner.sealed_until..).map(|(_, s)| s) {
            add_slot(&mut sum, slot);
        }
        drop(guard);
        let mut rows: Vec<SeriesTotal> = sum
            .into_iter()
            .flat_map(|(environment, flags)| {
                flags.into_iter().flat_map(move |(flag_key, entries)| {
                    let environment = environment.clone();
                    entries.into_iter().map(move |e| SeriesTotal {
                        environment: environment.clone(),
                        flag_key: flag_key.clone(),
                        variant: e.variant,
                        cohort: e.cohort,
                        aggregate: e.aggregate,
                    })
                })
            })
            .collect();
        rows.sort_by(|a, b| {
            (&a.environment, &a.flag_key, &a.variant, &a.cohort).cmp(&(
                &b.environment,
                &b.flag_key,
                &b.variant,
                &b.cohort,
            ))
        });
        rows
    }

    /// The totals of `env` (only `flag_key`, when given) per (flag, variant, cohort), over the
    /// slots starting in `[start, end)` (`None` = unbounded), ordered by flag, variant, cohort.
    pub fn query(
        &self,
        env: &str,
        flag_key: Option<&str>,
        start: Option<SystemTime>,
        end: Option<SystemTime>,
    ) -> Vec<UsageRow> {
        let from = start.map_or(i64::MIN, ceil_secs);
        let to = end.map_or(i64::MAX, ceil_secs);
        let mut totals: BTreeMap<(&str, &str, &str), Aggregate> = BTreeMap::new();
        let inner = self.inner.lock().expect("usage poisoned");
        if from >= to {
            return Vec::new();
        }
        for flags in inner.slots.range(from..to).filter_map(|(_, s)| s.get(env)) {
            for (flag, entries) in flags {
                if flag_key.is_some_and(|f| f != flag) {
                    continue;
                }
                for e in entries {
                    totals
                        .entry((flag, &e.variant, &e.cohort))
                        .or_default()
                        .add(&e.aggregate);
                }
            }
        }
        totals
            .into_iter()
            .map(|((flag, variant, cohort), a)| a.to_row(flag, variant, cohort))
            .collect()
    }

    /// Number of slots held (tests and diagnostics).
    pub fn slots(&self) -> usize {
        self.inner.lock().expect("usage poisoned").slots.len()
    }
}

#[cfg(test)]
mod tests;
