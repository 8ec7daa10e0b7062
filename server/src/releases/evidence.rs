//! Per-release evidence: what SDK reports say about the canary and control cohorts of every
//! active release, gathered into the open window as reports arrive and kept as closed windows
//! (in memory for the judge, and in the store so a restart resumes with them).
//!
//! Outcomes come from a report's cohort outcomes for the release (one per request scope that
//! touched it, however many of its flags the request read). A report without them (an SDK from
//! before releases) is read the old way: the outcomes of its series of the release's flags
//! whose rollout id is the release's (exact for a one-flag release). The cohorts' sizes, which
//! the sample-ratio check compares, count the same requests: a scoped request is one, however
//! many flags it read (counting its evaluations would weigh each imbalance as many times as it
//! read flags, and the check would fire far too often); an old report's evaluations count as
//! they did. A report is credited to the
//! window open when it arrives; reports whose window ended before the watermark are dropped by
//! ingestion and counted here as late.
//!
//! Replicas on one PostgreSQL store: reports reach any replica. Every replica gathers for every
//! active release ([`Evidence::follow`]); those that do not lead write what they gathered as a
//! partial window under their own key once a tick ([`Evidence::flush`]), and the leader merges
//! and deletes every stored partial when it closes a window, so the judge sees the traffic of
//! every replica. A report reaches the judge up to one tick later than on the leader itself,
//! in the next window if the flush lands after the close (never lost, never counted twice:
//! the close deletes exactly the partials it merged).
//!
//! Memory and disk stay bounded: at most `max_windows` windows per release, older ones merged
//! pairwise within their stage (so totals and per-stage sums are exact, only the time
//! resolution of old windows coarsens); the windows of finished releases are deleted after a
//! retention period by the driver.

use crate::error::Result;
use crate::metrics::custom;
use crate::metrics::report::{ValidReport, ValidSeries};
use crate::metrics::usage::Aggregate;
use crate::metrics::{Ingested, Observer};
use crate::store::{Batch, Store, keys, scan_prefix};
use flagwire_core::histogram::Histogram;
use flagwire_core::judge::{Cohort, Window};
use flagwire_proto::v1::{ReasonCount, Release, RolloutWindow, Series};
use prost::Message;
use std::collections::{BTreeSet, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Evidence of one active release.
struct Tracked {
    environment: String,
    flags: BTreeSet<String>,
    open: Mutex<Window>,
    closed: Mutex<Vec<Window>>,
}

/// The evidence of every active release. Shared as `Arc<Evidence>`.
pub struct Evidence {
    store: Arc<dyn Store>,
    max_windows: usize,
    // This process's name in partial windows' keys, and its flushes so far.
    replica: String,
    flushes: AtomicU64,
    // Release id → its evidence.
    active: RwLock<HashMap<String, Arc<Tracked>>>,
}

fn cohort<'a>(w: &'a mut Window, label: &str) -> Option<&'a mut Cohort> {
    match label {
        "canary" => Some(&mut w.canary),
        "control" => Some(&mut w.control),
        _ => None,
    }
}

/// Adds `a`'s outcomes (successes, errors, latency) to `c`, in place: this runs for every
/// series of a release's flags in every report, and building a `Cohort` to add would copy the
/// latency histogram each time.
fn add_outcomes(c: &mut Cohort, a: &Aggregate) {
    c.successes = c.successes.saturating_add(a.successes);
    c.errors = c.errors.saturating_add(a.errors);
    c.latency.merge(&a.latency);
}

/// Adds what `r` says of release `id` (whose flags are `flags`) to `open`; whether it said
/// anything.
fn credit(open: &mut Window, r: &ValidReport, id: &str, flags: &BTreeSet<String>) -> bool {
    let ours = |s: &&ValidSeries| {
        flags.contains(&s.flag_key) && (s.rollout_id.is_empty() || s.rollout_id == id)
    };
    let series: Vec<&ValidSeries> = r.series.iter().filter(ours).collect();
    let scoped: Vec<_> = r
        .cohort_outcomes
        .iter()
        .filter(|c| c.release_id == id)
        .collect();
    if scoped.is_empty() {
        for s in &series {
            if let Some(c) = cohort(open, &s.cohort) {
                c.evaluations += s.aggregate.evaluations;
                add_outcomes(c, &s.aggregate);
            }
        }
    }
    for o in &scoped {
        if let Some(c) = cohort(open, &o.cohort) {
            c.evaluations += o.aggregate.successes + o.aggregate.errors;
            add_outcomes(c, &o.aggregate);
        }
    }
    let metrics: Vec<_> = r
        .cohort_metrics
        .iter()
        .filter(|m| m.rollout_id == id)
        .collect();
    for m in &metrics {
        if let Some(c) = cohort(open, &m.cohort) {
            c.metrics.entry(m.name.clone()).or_default().add(&m.agg);
        }
    }
    !series.is_empty() || !scoped.is_empty() || !metrics.is_empty()
}

impl Observer for Evidence {
    fn observe(&self, r: &ValidReport, outcome: Ingested) {
        let active = self.active.read().expect("evidence poisoned");
        for (id, t) in active.iter() {
            if t.environment != r.environment {
                continue;
            }
            let mut open = t.open.lock().expect("evidence poisoned");
            match outcome {
                Ingested::Accepted => {
                    open.dropped_series += r.dropped_series;
                    if credit(&mut open, r, id, &t.flags) {
                        open.reports += 1;
                    }
                }
                Ingested::Late => {
                    let mentioned = r.series.iter().any(|s| t.flags.contains(&s.flag_key))
                        || r.cohort_outcomes.iter().any(|c| &c.release_id == id);
                    if mentioned {
                        open.late_reports += 1;
                    }
                }
                Ingested::Duplicate => {}
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
        metrics: [("canary", &w.canary), ("control", &w.control)]
            .into_iter()
            .flat_map(|(label, c)| {
                c.metrics
                    .iter()
                    .map(move |(name, m)| custom::to_series(name, label, "", m))
            })
            .collect(),
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
                metrics: p
                    .metrics
                    .iter()
                    .filter(|m| m.cohort == label)
                    .map(|m| (m.name.clone(), custom::from_series(m)))
                    .collect(),
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
    /// No active releases yet; windows persist in `store`, at most `max_windows` per release.
    pub fn new(store: Arc<dyn Store>, max_windows: usize) -> Self {
        Self {
            store,
            max_windows: max_windows.max(16),
            replica: uuid::Uuid::new_v4().simple().to_string(),
            flushes: AtomicU64::new(0),
            active: RwLock::default(),
        }
    }

    /// Starts gathering for release `r`, resuming its stored windows.
    pub fn track(&self, r: &Release) -> Result<()> {
        let windows = self.stored(&r.id)?;
        let tracked = Arc::new(Tracked {
            environment: r.environment.clone(),
            flags: r.flags.iter().map(|f| f.flag_key.clone()).collect(),
            open: Mutex::default(),
            closed: Mutex::new(windows),
        });
        self.active
            .write()
            .expect("evidence poisoned")
            .insert(r.id.clone(), tracked);
        Ok(())
    }

    /// Stops gathering for release `id`; its stored windows stay until [`Self::forget`].
    pub fn untrack(&self, id: &str) {
        self.active.write().expect("evidence poisoned").remove(id);
    }

    /// Whether release `id` is being gathered for here.
    pub fn is_tracked(&self, id: &str) -> bool {
        self.tracked(id).is_some()
    }

    fn tracked(&self, id: &str) -> Option<Arc<Tracked>> {
        self.active
            .read()
            .expect("evidence poisoned")
            .get(id)
            .cloned()
    }

    /// Closes the open window of release `id` at `end_ms` as part of `stage`, stores it
    /// durably, and runs `f` over every closed window (oldest first).
    pub fn close<T>(
        &self,
        id: &str,
        end_ms: i64,
        stage: usize,
        f: impl FnOnce(&[Window]) -> T,
    ) -> Result<Option<T>> {
        let Some(t) = self.tracked(id) else {
            return Ok(None);
        };
        // Other replicas' partial windows first (read before the own window is taken, so no
        // report is in neither).
        let partials = if self.store.shared() {
            scan_prefix(&*self.store, &keys::rollout_partials(id))?
        } else {
            Vec::new()
        };
        let mut window = std::mem::take(&mut *t.open.lock().expect("evidence poisoned"));
        let mut batch = Batch::default();
        for (key, value) in partials {
            let p: RolloutWindow = crate::catalog::decode(&key, &value)?;
            window = merge(&from_proto(&p), &window);
            batch.delete(key);
        }
        window.end_ms = end_ms;
        window.step = stage;
        let mut closed = t.closed.lock().expect("evidence poisoned");
        batch.put(
            keys::rollout_window(id, end_ms as u64),
            to_proto(&window).encode_to_vec(),
        );
        closed.push(window);
        if closed.len() > self.max_windows {
            // Merge the oldest pair within one step; steps are few, so there always is one.
            if let Some(i) = (0..closed.len() - 1).find(|&i| closed[i].step == closed[i + 1].step) {
                let merged = merge(&closed[i], &closed[i + 1]);
                batch.delete(keys::rollout_window(id, closed[i].end_ms as u64));
                batch.put(
                    keys::rollout_window(id, merged.end_ms as u64),
                    to_proto(&merged).encode_to_vec(),
                );
                closed[i + 1] = merged;
                closed.remove(i);
            }
        }
        self.store.commit(batch)?;
        Ok(Some(f(&closed)))
    }

    /// On a replica that does not lead: gathers for exactly the releases in `active` (those
    /// started elsewhere too), so reports sent here reach the leader's judge.
    pub fn follow(&self, active: &[Release]) -> Result<()> {
        let ids: BTreeSet<&str> = active.iter().map(|r| r.id.as_str()).collect();
        self.active
            .write()
            .expect("evidence poisoned")
            .retain(|id, _| ids.contains(id.as_str()));
        for r in active {
            if !self.is_tracked(&r.id) {
                self.track(r)?;
            }
        }
        Ok(())
    }

    /// On becoming the leader: every tracked release's closed windows as stored (a follower's
    /// are as old as its tracking; the open windows, not yet handed over, stay).
    pub fn reload_closed(&self) -> Result<()> {
        let active: Vec<(String, Arc<Tracked>)> = self
            .active
            .read()
            .expect("evidence poisoned")
            .iter()
            .map(|(id, t)| (id.clone(), Arc::clone(t)))
            .collect();
        for (id, t) in active {
            let windows = self.stored(&id)?;
            *t.closed.lock().expect("evidence poisoned") = windows;
        }
        Ok(())
    }

    /// On a replica that does not lead: stores what it gathered since the last flush as
    /// partial windows for the leader to merge (nothing when nothing arrived).
    pub fn flush(&self) -> Result<()> {
        let mut batch = Batch::default();
        let active = self.active.read().expect("evidence poisoned");
        let mut taken = Vec::new();
        for (id, t) in active.iter() {
            let mut open = t.open.lock().expect("evidence poisoned");
            if open.reports == 0 && open.late_reports == 0 && open.dropped_series == 0 {
                continue;
            }
            let window = std::mem::take(&mut *open);
            let seq = self.flushes.fetch_add(1, Ordering::Relaxed);
            batch.put(
                keys::rollout_partial(id, &self.replica, seq),
                to_proto(&window).encode_to_vec(),
            );
            taken.push((Arc::clone(t), window));
        }
        drop(active);
        if taken.is_empty() {
            return Ok(());
        }
        if let Err(e) = self.store.commit(batch) {
            // Not stored: back into the open windows, for the next flush.
            for (t, w) in taken {
                let mut open = t.open.lock().expect("evidence poisoned");
                *open = merge(&w, &open);
            }
            return Err(e.into());
        }
        Ok(())
    }

    /// The closed windows of release `id`, from memory when active, else from the store.
    pub fn windows(&self, id: &str) -> Result<Vec<Window>> {
        match self.tracked(id) {
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

    /// Deletes every stored window of release `id` (retention of finished releases).
    pub fn forget(&self, id: &str) -> Result<()> {
        let mut batch = Batch::default();
        for (key, _) in scan_prefix(&*self.store, &keys::rollout_windows(id))? {
            batch.delete(key);
        }
        Ok(self.store.commit(batch)?)
    }
}
