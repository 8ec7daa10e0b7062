//! Per-rollout evidence: what SDK reports say about the canary and control cohorts of every
//! active rollout, gathered into the open window as reports arrive and kept as closed windows
//! (in memory for the judge, and in the store so a restart resumes with them).
//!
//! A series counts for a rollout when it is for the rollout's (environment, flag), its cohort
//! is `canary` or `control`, and its rollout id is the rollout's or empty (older SDKs). A
//! report is credited to the window open when it arrives; reports whose window ended before
//! the watermark are dropped by ingestion and counted here as late.
//!
//! Memory and disk stay bounded: at most `max_windows` windows per rollout, older ones merged
//! pairwise within their step (so totals and per-step sums are exact, only the time resolution
//! of old windows coarsens); the windows of finished rollouts are deleted after a retention
//! period by the driver.

use crate::error::Result;
use crate::metrics::report::{ValidReport, ValidSeries};
use crate::metrics::{Ingested, Observer};
use crate::store::{Batch, Store, keys, scan_prefix};
use flagwire_core::histogram::Histogram;
use flagwire_core::judge::{Cohort, Window};
use flagwire_proto::v1::{ReasonCount, RolloutWindow, Series};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Evidence of one active rollout.
struct Tracked {
    id: String,
    open: Mutex<Window>,
    closed: Mutex<Vec<Window>>,
}

/// The evidence of every active rollout. Shared as `Arc<Evidence>`.
pub struct Evidence {
    store: Arc<dyn Store>,
    max_windows: usize,
    // (environment, flag) → the active rollout there: one at a time per flag and environment.
    active: RwLock<HashMap<(String, String), Arc<Tracked>>>,
}

fn add_series(c: &mut Cohort, s: &ValidSeries) {
    c.add(&Cohort {
        evaluations: s.aggregate.evaluations,
        successes: s.aggregate.successes,
        errors: s.aggregate.errors,
        latency: s.aggregate.latency.clone(),
    });
}

impl Observer for Evidence {
    fn observe(&self, r: &ValidReport, outcome: Ingested) {
        let active = self.active.read().expect("evidence poisoned");
        if active.is_empty() {
            return;
        }
        for ((env, flag), t) in active.iter() {
            if env != &r.environment {
                continue;
            }
            let mut open = t.open.lock().expect("evidence poisoned");
            if outcome == Ingested::Accepted {
                open.dropped_series += r.dropped_series;
            }
            let mut mentioned = false;
            for s in r.series.iter().filter(|s| &s.flag_key == flag) {
                mentioned = true;
                if outcome != Ingested::Accepted
                    || !(s.rollout_id.is_empty() || s.rollout_id == t.id)
                {
                    continue;
                }
                match s.cohort.as_str() {
                    "canary" => add_series(&mut open.canary, s),
                    "control" => add_series(&mut open.control, s),
                    _ => {}
                }
            }
            match outcome {
                Ingested::Accepted if mentioned => open.reports += 1,
                Ingested::Late if mentioned => open.late_reports += 1,
                _ => {}
            }
        }
    }
}

/// Milliseconds since the epoch.
pub fn epoch_ms(t: SystemTime) -> i64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
}

/// The time of `ms` since the epoch.
pub fn from_epoch_ms(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

fn series(cohort: &str, c: &Cohort) -> Series {
    Series {
        cohort: cohort.to_owned(),
        evaluations: vec![ReasonCount {
            reason: "SPLIT".into(),
            count: c.evaluations,
        }],
        successes: c.successes,
        errors: c.errors,
        latency_us: (!c.latency.is_empty()).then(|| c.latency.to_proto()),
        ..Series::default()
    }
}

/// The stored form of a window (cohort statistics are derived when read).
pub fn to_proto(w: &Window) -> RolloutWindow {
    RolloutWindow {
        end_time: Some(from_epoch_ms(w.end_ms).into()),
        step: u32::try_from(w.step).unwrap_or(u32::MAX),
        cohorts: Vec::new(),
        reports: w.reports,
        late_reports: w.late_reports,
        dropped_series: w.dropped_series,
        series: vec![series("canary", &w.canary), series("control", &w.control)],
    }
}

fn from_proto(p: &RolloutWindow) -> Window {
    let cohort = |label: &str| {
        p.series
            .iter()
            .find(|s| s.cohort == label)
            .map(|s| Cohort {
                evaluations: s.evaluations.iter().map(|r| r.count).sum(),
                successes: s.successes,
                errors: s.errors,
                latency: s
                    .latency_us
                    .as_ref()
                    .and_then(|h| Histogram::from_proto(h).ok())
                    .unwrap_or_default(),
            })
            .unwrap_or_default()
    };
    Window {
        end_ms: p
            .end_time
            .and_then(|t| SystemTime::try_from(t).ok())
            .map_or(0, epoch_ms),
        step: p.step as usize,
        canary: cohort("canary"),
        control: cohort("control"),
        reports: p.reports,
        late_reports: p.late_reports,
        dropped_series: p.dropped_series,
    }
}

fn merge(a: &Window, b: &Window) -> Window {
    let mut m = b.clone();
    m.canary.add(&a.canary);
    m.control.add(&a.control);
    m.reports += a.reports;
    m.late_reports += a.late_reports;
    m.dropped_series += a.dropped_series;
    m
}

impl Evidence {
    /// No active rollouts yet; windows persist in `store`, at most `max_windows` per rollout.
    pub fn new(store: Arc<dyn Store>, max_windows: usize) -> Self {
        Self {
            store,
            max_windows: max_windows.max(16),
            active: RwLock::default(),
        }
    }

    /// Starts gathering for rollout `id` on (`env`, `flag`), resuming its stored windows.
    pub fn track(&self, id: &str, env: &str, flag: &str) -> Result<()> {
        let windows = self.stored(id)?;
        let tracked = Arc::new(Tracked {
            id: id.to_owned(),
            open: Mutex::default(),
            closed: Mutex::new(windows),
        });
        self.active
            .write()
            .expect("evidence poisoned")
            .insert((env.to_owned(), flag.to_owned()), tracked);
        Ok(())
    }

    /// Stops gathering for (`env`, `flag`); its stored windows stay until [`Self::forget`].
    pub fn untrack(&self, env: &str, flag: &str) {
        self.active
            .write()
            .expect("evidence poisoned")
            .remove(&(env.to_owned(), flag.to_owned()));
    }

    fn tracked(&self, env: &str, flag: &str) -> Option<Arc<Tracked>> {
        let active = self.active.read().expect("evidence poisoned");
        active.get(&(env.to_owned(), flag.to_owned())).cloned()
    }

    /// Closes the open window of the rollout on (`env`, `flag`) at `end_ms` as part of `step`,
    /// stores it durably, and runs `f` over every closed window (oldest first).
    pub fn close<T>(
        &self,
        env: &str,
        flag: &str,
        end_ms: i64,
        step: usize,
        f: impl FnOnce(&[Window]) -> T,
    ) -> Result<Option<T>> {
        let Some(t) = self.tracked(env, flag) else {
            return Ok(None);
        };
        let mut window = std::mem::take(&mut *t.open.lock().expect("evidence poisoned"));
        window.end_ms = end_ms;
        window.step = step;
        let mut closed = t.closed.lock().expect("evidence poisoned");
        let mut batch = Batch::default();
        batch.put(
            keys::rollout_window(&t.id, end_ms as u64),
            to_proto(&window).encode_to_vec(),
        );
        closed.push(window);
        if closed.len() > self.max_windows {
            // Merge the oldest pair within one step; steps are few, so there always is one.
            if let Some(i) = (0..closed.len() - 1).find(|&i| closed[i].step == closed[i + 1].step) {
                let merged = merge(&closed[i], &closed[i + 1]);
                batch.delete(keys::rollout_window(&t.id, closed[i].end_ms as u64));
                batch.put(
                    keys::rollout_window(&t.id, merged.end_ms as u64),
                    to_proto(&merged).encode_to_vec(),
                );
                closed[i + 1] = merged;
                closed.remove(i);
            }
        }
        self.store.commit(batch)?;
        Ok(Some(f(&closed)))
    }

    /// The closed windows of rollout `id`, from memory when active, else from the store.
    pub fn windows(&self, id: &str, env: &str, flag: &str) -> Result<Vec<Window>> {
        match self.tracked(env, flag).filter(|t| t.id == id) {
            Some(t) => Ok(t.closed.lock().expect("evidence poisoned").clone()),
            None => self.stored(id),
        }
    }

    fn stored(&self, id: &str) -> Result<Vec<Window>> {
        let mut windows = Vec::new();
        for (key, value) in scan_prefix(&*self.store, &keys::rollout_windows(id))? {
            let p: RolloutWindow = crate::catalog::decode(&key, &value)?;
            windows.push(from_proto(&p));
        }
        Ok(windows)
    }

    /// Deletes every stored window of rollout `id` (retention of finished rollouts).
    pub fn forget(&self, id: &str) -> Result<()> {
        let mut batch = Batch::default();
        for (key, _) in scan_prefix(&*self.store, &keys::rollout_windows(id))? {
            batch.delete(key);
        }
        Ok(self.store.commit(batch)?)
    }
}
