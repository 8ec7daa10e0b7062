//! The counters of each (flag, variant, cohort, rollout) series, readable and writable without
//! a lock: a read of a flag finds its series in a map that is replaced, never changed (readers
//! load it through `ArcSwap`), and adds to atomic counters. Only a series seen for the first
//! time takes the writers' mutex, copies its shard of the map (entries are `Arc`s) and swaps
//! it in, so a steady workload takes no lock at all; series live until the client does. The
//! map is keyed by a hash of the series' names and split in `SHARDS`, so a first sighting
//! copies a small shard (10,000 series: ~160 entries rather than up to 10,000) and a lookup
//! never scans a flag's other series.

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

    fn is(&self, flag: &str, variant: &str, cohort: &str, rollout_id: &str) -> bool {
        same(&self.flag, flag)
            && same(&self.variant, variant)
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

/// A series found without a lock (borrowed from the loaded map) or just created.
enum SeriesRef {
    Loaded(arc_swap::Guard<Arc<Map>>, u64, usize),
    New(Arc<Series>),
}

impl std::ops::Deref for SeriesRef {
    type Target = Series;

    fn deref(&self) -> &Series {
        match self {
            SeriesRef::Loaded(map, k, at) => &map[k][*at],
            SeriesRef::New(s) => s,
        }
    }
}

/// String equality by a byte loop rather than `memcmp`. These names are a few bytes long, and
/// on this machine (AMD EPYC, glibc's AVX-512 `__memcmp_evex_movbe`) `perf` put 80 % of a
/// 400 ns counted read inside `memcmp`'s masked load; with this loop the read takes 50 ns
/// (`benches/evaluate.rs`, issue 18). The old mutex-guarded counters had the same cost.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).all(|(x, y)| x == y)
}

/// The map's key: a fixed-seed hash of the series' four names (collisions share a slot, and
/// `Series::is` tells them apart), so a lookup hashes four short strings and never scans a
/// flag's other series, however many rollouts it has seen.
fn key(flag: &str, variant: &str, cohort: &str, rollout_id: &str) -> u64 {
    use std::hash::BuildHasher;
    foldhash::fast::FixedState::with_seed(0).hash_one((flag, variant, cohort, rollout_id))
}

// foldhash instead of SipHash: the lookup is on every read.
type Map = HashMap<u64, Arc<[Arc<Series>]>, foldhash::fast::RandomState>;

const SHARDS: u64 = 64;

/// Every series of one client.
pub(crate) struct SeriesTable {
    shards: [ArcSwap<Map>; SHARDS as usize],
    // Writers (first sightings) only; holds the number of series.
    write: Mutex<usize>,
    max: usize,
}

impl SeriesTable {
    /// A table holding at most `max` series.
    pub fn new(max: usize) -> Self {
        Self {
            shards: std::array::from_fn(|_| ArcSwap::from_pointee(Map::default())),
            write: Mutex::new(0),
            max,
        }
    }

    fn shard(&self, key: u64) -> &ArcSwap<Map> {
        &self.shards[(key % SHARDS) as usize]
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
        self.get_keyed(
            key(flag, variant, cohort, rollout_id),
            flag,
            variant,
            cohort,
            rollout_id,
        )
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
        let k = key(flag, variant, cohort, rollout_id);
        match self.get_keyed(k, flag, variant, cohort, rollout_id)? {
            SeriesRef::Loaded(map, k, at) => Some(Arc::clone(&map[&k][at])),
            SeriesRef::New(s) => Some(s),
        }
    }

    fn get_keyed(
        &self,
        k: u64,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
    ) -> Option<SeriesRef> {
        {
            let map = self.shard(k).load();
            if let Some(at) = map.get(&k).and_then(|all| {
                all.iter()
                    .position(|s| s.is(flag, variant, cohort, rollout_id))
            }) {
                return Some(SeriesRef::Loaded(map, k, at));
            }
        }
        self.insert(k, flag, variant, cohort, rollout_id)
            .map(SeriesRef::New)
    }

    fn insert(
        &self,
        k: u64,
        flag: &str,
        variant: &str,
        cohort: &str,
        rollout_id: &str,
    ) -> Option<Arc<Series>> {
        let mut count = self.write.lock().unwrap_or_else(PoisonError::into_inner);
        let slot = self.shard(k);
        let map = slot.load_full();
        let old = map.get(&k);
        // Another writer may have added it since this reader looked.
        if let Some(s) =
            old.and_then(|all| all.iter().find(|s| s.is(flag, variant, cohort, rollout_id)))
        {
            return Some(Arc::clone(s));
        }
        if *count >= self.max {
            return None;
        }
        *count += 1;
        let series = Arc::new(Series::new(flag.into(), variant, cohort, rollout_id));
        let mut all: Vec<Arc<Series>> = old.map(|a| a.to_vec()).unwrap_or_default();
        all.push(Arc::clone(&series));
        let mut next = Map::clone(&map);
        next.insert(k, all.into());
        slot.store(Arc::new(next));
        Some(series)
    }

    /// Every series, for a flush.
    pub fn all(&self) -> Vec<Arc<Series>> {
        let mut all = Vec::new();
        for slot in &self.shards {
            all.extend(slot.load().values().flat_map(|a| a.iter().cloned()));
        }
        all
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
