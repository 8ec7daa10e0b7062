//! The counters of each (flag, variant, cohort, rollout) series, readable and writable without
//! a lock: a read of a flag finds its series in a map that is replaced, never changed (readers
//! load it through `ArcSwap`), and adds to atomic counters. Only a series seen for the first
//! time takes the writers' mutex, copies the map (its entries are `Arc`s) and swaps it in, so
//! a steady workload takes no lock at all; series live until the client does.

use arc_swap::ArcSwap;
use flagwire_core::histogram::Histogram;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, PoisonError};

/// Reasons counted per series, in `Reason`'s numbering.
pub(crate) const REASONS: usize = 7;

/// One series' counters for the current window.
#[derive(Debug)]
pub(crate) struct Series {
    pub flag: Arc<str>,
    pub variant: String,
    pub cohort: String,
    pub rollout_id: String,
    pub reasons: [AtomicU64; REASONS],
    pub successes: AtomicU64,
    pub errors: AtomicU64,
    /// Outcome latencies; a short lock, taken by outcomes only (never by plain reads).
    pub latency: Mutex<Histogram>,
}

impl Series {
    fn new(flag: Arc<str>, variant: &str, cohort: &str, rollout_id: &str) -> Self {
        Self {
            flag,
            variant: variant.to_owned(),
            cohort: cohort.to_owned(),
            rollout_id: rollout_id.to_owned(),
            reasons: Default::default(),
            successes: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            latency: Mutex::new(Histogram::default()),
        }
    }

    fn is(&self, variant: &str, cohort: &str, rollout_id: &str) -> bool {
        same(&self.variant, variant)
            && same(&self.cohort, cohort)
            && same(&self.rollout_id, rollout_id)
    }

    /// Records one outcome.
    pub fn outcome(&self, ok: bool, latency_us: u64) {
        let counter = if ok { &self.successes } else { &self.errors };
        counter.fetch_add(1, Relaxed);
        self.latency
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .record(latency_us);
    }
}

/// String equality by a byte loop rather than `memcmp`. These names are a few bytes long, and
/// on this machine (AMD EPYC, glibc's AVX-512 `__memcmp_evex_movbe`) `perf` put 80 % of a
/// 400 ns counted read inside `memcmp`'s masked load; with this loop the read takes 50 ns
/// (`benches/evaluate.rs`, issue 18). The old mutex-guarded counters had the same cost.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

// foldhash instead of SipHash: flag keys come from the operator and the application, and the
// lookup is on every read.
type Map = HashMap<Arc<str>, Arc<[Arc<Series>]>, foldhash::fast::RandomState>;

/// Every series of one client.
pub(crate) struct SeriesTable {
    map: ArcSwap<Map>,
    // Writers (first sightings) only; holds the number of series.
    write: Mutex<usize>,
    max: usize,
}

impl SeriesTable {
    /// A table holding at most `max` series.
    pub fn new(max: usize) -> Self {
        Self {
            map: ArcSwap::from_pointee(Map::default()),
            write: Mutex::new(0),
            max,
        }
    }

    /// Runs `f` on the series, without a lock when it exists; `None` (after creating nothing)
    /// when it is new and the table is full.
    pub fn with<R>(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
        f: impl FnOnce(&Series) -> R,
    ) -> Option<R> {
        {
            let map = self.map.load();
            if let Some(s) = map
                .get(flag)
                .and_then(|all| all.iter().find(|s| s.is(variant, cohort, rollout_id)))
            {
                return Some(f(s));
            }
        }
        self.insert(flag, variant, cohort, rollout_id)
            .map(|s| f(&s))
    }

    /// The series, shared (a measurement keeps it until it finishes).
    pub fn get(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
    ) -> Option<Arc<Series>> {
        self.with(flag, variant, cohort, rollout_id, |_| ())?;
        let map = self.map.load();
        map.get(flag)?
            .iter()
            .find(|s| s.is(variant, cohort, rollout_id))
            .cloned()
    }

    fn insert(
        &self,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
    ) -> Option<Arc<Series>> {
        let mut count = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let map = self.map.load_full();
        let old = map.get(flag);
        // Another writer may have added it since this reader looked.
        if let Some(s) = old.and_then(|all| all.iter().find(|s| s.is(variant, cohort, rollout_id)))
        {
            return Some(Arc::clone(s));
        }
        if *count >= self.max {
            return None;
        }
        *count += 1;
        let key: Arc<str> = map
            .get_key_value(flag)
            .map_or_else(|| Arc::from(flag), |(k, _)| Arc::clone(k));
        let series = Arc::new(Series::new(Arc::clone(&key), variant, cohort, rollout_id));
        let mut all: Vec<Arc<Series>> = old.map(|a| a.to_vec()).unwrap_or_default();
        all.push(Arc::clone(&series));
        let mut next = Map::clone(&map);
        next.insert(key, all.into());
        self.map.store(Arc::new(next));
        Some(series)
    }

    /// Every series, for a flush.
    pub fn all(&self) -> Vec<Arc<Series>> {
        self.map
            .load()
            .values()
            .flat_map(|a| a.iter().cloned())
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concurrent_counts_and_first_sightings_lose_nothing() {
        let table = Arc::new(SeriesTable::new(1_000));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let table = Arc::clone(&table);
                std::thread::spawn(move || {
                    for i in 0..2_000 {
                        // Every thread sees new series (copy-on-write inserts racing each
                        // other) and shared ones (atomic adds racing each other).
                        let flag = format!("f{}", i % 50);
                        let variant = if (i / 50) % 2 == 0 { "on" } else { "off" };
                        table.with(&flag, variant, "", "", |s| {
                            s.reasons[t].fetch_add(1, Relaxed);
                        });
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let all = table.all();
        assert_eq!(all.len(), 100, "one series per (flag, variant)");
        for t in 0..4 {
            let total: u64 = all.iter().map(|s| s.reasons[t].load(Relaxed)).sum();
            assert_eq!(total, 2_000, "thread {t}'s counts");
        }
    }

    #[test]
    fn a_full_table_refuses_new_series_and_keeps_counting_old_ones() {
        let table = SeriesTable::new(2);
        assert!(table.with("a", "on", "", "", |_| ()).is_some());
        assert!(table.with("b", "on", "c", "r", |_| ()).is_some());
        assert!(table.with("c", "on", "", "", |_| ()).is_none());
        assert!(table.with("a", "off", "", "", |_| ()).is_none());
        assert!(table.get("b", "on", "c", "r").is_some());
        assert!(table.get("b", "on", "", "r").is_none());
        assert_eq!(table.all().len(), 2);
    }
}
