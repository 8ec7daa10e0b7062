//! What SDKs report (usage, outcomes, latency, applied revisions) and the registry of SDK
//! instances, behind `MetricsService` and Watch.
//!
//! **In memory, not durable.** Usage aggregates and the instance registry live only in this
//! process: a restart forgets them, and SDKs refill them with their next reports and Watch
//! reconnects. They are operational signals, not records; the catalog's store is kept for
//! what must survive (flags, audit). Per-release evidence, which decisions need across
//! restarts, is persisted separately (`releases::evidence`).
//!
//! Ingesting a report ([`Metrics::ingest`]), after [`report::validate`] accepted it whole:
//! 1. the registry records it (last seen, SDK, applied revision) even if it goes no further;
//! 2. a window that ended more than the watermark ago is dropped as **late**;
//! 3. a sequence number the instance already used is dropped as a **duplicate** (SDKs retry);
//! 4. otherwise every series merges into [`usage`] and the report counts as **accepted**.
//!
//! - [`report`]: validation ([`cohorts`]: a report's per-release outcomes; [`custom`]: the
//!   team's own metrics); [`usage`]: the aggregates; [`instances`]: the registry;
//!   [`fleet`]: the registry shared by the replicas of a PostgreSQL store.

pub mod cohorts;
pub mod custom;
pub mod fleet;
mod instance_entry;
pub mod instances;
pub mod report;
pub mod usage;

use crate::clock::Clock;
use instances::{Registry, Sequence};
use report::ValidReport;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};
use usage::Usage;

/// Tunables of metrics ingestion.
#[derive(Debug, Clone)]
pub struct MetricsOptions {
    /// How long usage aggregates, and instances neither connected nor heard from, are kept.
    pub retention: Duration,
    /// Reports whose window ended longer ago than this are dropped (and counted as late).
    pub watermark: Duration,
}

impl Default for MetricsOptions {
    fn default() -> Self {
        Self {
            retention: Duration::from_secs(24 * 3600),
            watermark: Duration::from_secs(600),
        }
    }
}

/// What became of a valid report.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ingested {
    /// Merged.
    Accepted,
    /// Its (instance, sequence) was seen before; ignored.
    Duplicate,
    /// Its window ended before the watermark; ignored.
    Late,
}

/// Counts of reports by outcome since start.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReportCounts {
    /// Merged.
    pub accepted: u64,
    /// Dropped as duplicates.
    pub duplicates: u64,
    /// Dropped as late.
    pub late: u64,
    /// Refused (invalid, or not allowed); nothing of them was merged.
    pub rejected: u64,
    /// Series the SDKs said they dropped for lack of memory (from accepted reports).
    pub dropped_series: u64,
}

#[derive(Debug, Default)]
struct Counters {
    accepted: AtomicU64,
    duplicates: AtomicU64,
    late: AtomicU64,
    rejected: AtomicU64,
    dropped_series: AtomicU64,
}

/// Sees every valid report after ingestion decided its fate (rollouts keep their own
/// per-cohort evidence from it).
pub trait Observer: Send + Sync {
    /// Called once per valid report with what became of it.
    fn observe(&self, report: &ValidReport, outcome: Ingested);
}

/// Usage aggregates, the instance registry and the report counters. Shared as `Arc<Metrics>`.
pub struct Metrics {
    options: MetricsOptions,
    registry: Arc<Registry>,
    usage: Usage,
    counters: Counters,
    observer: Option<Arc<dyn Observer>>,
}

impl Metrics {
    /// Empty metrics; `clock` stamps instance disconnections.
    pub fn new(options: MetricsOptions, clock: Arc<dyn Clock>) -> Self {
        Self {
            registry: Arc::new(Registry::new(options.retention, options.watermark, clock)),
            usage: Usage::new(options.retention),
            options,
            counters: Counters::default(),
            observer: None,
        }
    }

    /// The same metrics, also telling `observer` about every valid report.
    pub fn with_observer(mut self, observer: Arc<dyn Observer>) -> Self {
        self.observer = Some(observer);
        self
    }

    /// The instance registry (Watch registers connections in it).
    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    /// The usage aggregates.
    pub fn usage(&self) -> &Usage {
        &self.usage
    }

    /// Ingests a validated report received at `now` (see the module docs for the order).
    pub fn ingest(&self, r: &ValidReport, now: SystemTime) -> Ingested {
        let watermark = now
            .checked_sub(self.options.watermark)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let late = r.window.is_some_and(|(_, end)| end < watermark);
        let sequence = self.registry.report(r, !late, now);
        let (outcome, counter) = match (late, sequence) {
            (true, _) => (Ingested::Late, &self.counters.late),
            (false, Sequence::Duplicate) => (Ingested::Duplicate, &self.counters.duplicates),
            (false, Sequence::New) => {
                if let Some((start, _)) = r.window {
                    self.usage.merge(&r.environment, start, &r.series, now);
                }
                self.counters
                    .dropped_series
                    .fetch_add(r.dropped_series, Ordering::Relaxed);
                (Ingested::Accepted, &self.counters.accepted)
            }
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(observer) = &self.observer {
            observer.observe(r, outcome);
        }
        if outcome != Ingested::Accepted {
            tracing::debug!(
                environment = %r.environment,
                instance = %r.instance_id,
                sequence = r.sequence,
                outcome = ?outcome,
                "report ignored"
            );
        }
        outcome
    }

    /// Counts `reports` refused reports (a refused batch refuses all of its reports).
    pub fn rejected(&self, reports: u64) {
        self.counters.rejected.fetch_add(reports, Ordering::Relaxed);
    }

    /// The report counters.
    pub fn counts(&self) -> ReportCounts {
        let c = &self.counters;
        ReportCounts {
            accepted: c.accepted.load(Ordering::Relaxed),
            duplicates: c.duplicates.load(Ordering::Relaxed),
            late: c.late.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            dropped_series: c.dropped_series.load(Ordering::Relaxed),
        }
    }
}

/// Nanoseconds since the Unix epoch (negative before it).
pub(crate) fn unix_nanos(t: SystemTime) -> i128 {
    match t.duration_since(SystemTime::UNIX_EPOCH) {
        Ok(d) => d.as_nanos() as i128,
        Err(e) => -(e.duration().as_nanos() as i128),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::report::ValidSeries;
    use crate::metrics::usage::Aggregate;

    fn report(sequence: u64, end: SystemTime) -> ValidReport {
        ValidReport {
            cohort_outcomes: Vec::new(),
            cohort_metrics: Vec::new(),
            environment: "prod".into(),
            instance_id: "00000000-0000-4000-8000-00000000000a".into(),
            sequence,
            sdk_name: String::new(),
            sdk_version: String::new(),
            applied_revision: sequence,
            window: Some((end - Duration::from_secs(10), end)),
            series: vec![ValidSeries {
                flag_key: "f".into(),
                variant: "on".into(),
                cohort: String::new(),
                rollout_id: String::new(),
                aggregate: Aggregate {
                    evaluations: 3,
                    ..Default::default()
                },
            }],
            dropped_series: 2,
        }
    }

    #[test]
    fn accepted_duplicate_late_and_counted() {
        let m = Metrics::new(
            MetricsOptions::default(),
            Arc::new(crate::clock::SystemClock),
        );
        let now = SystemTime::now();
        assert_eq!(m.ingest(&report(1, now), now), Ingested::Accepted);
        assert_eq!(m.ingest(&report(1, now), now), Ingested::Duplicate);
        let old = now - Duration::from_secs(601);
        assert_eq!(m.ingest(&report(2, old), now), Ingested::Late);
        m.rejected(1);
        assert_eq!(
            m.counts(),
            ReportCounts {
                accepted: 1,
                duplicates: 1,
                late: 1,
                rejected: 1,
                dropped_series: 2,
            }
        );
        let rows = m.usage().query("prod", None, None, None);
        assert_eq!(rows.len(), 1);
        assert_eq!(
            rows[0].evaluations, 3,
            "neither the duplicate nor the late one merged"
        );
        // The late report still moved the applied revision.
        assert_eq!(m.registry().list(None, now)[0].applied_revision, 2);
    }
}
