//! The series computed at scrape time from state the server keeps anyway: the catalog
//! (revisions, flags, rollouts, executions), the store's size, the Watch hub, the SDK-instance
//! registry and the usage aggregates. Nothing here is updated on a hot path; a scrape holds the
//! catalog's read lock only to copy out a few numbers per environment and rollout.

use super::families::{Num, single, write};
use crate::catalog::{Catalog, State};
use crate::clock::{Clock, Timers};
use crate::metrics::Metrics;
use crate::metrics::instances::EnvInstances;
use crate::metrics::usage::{GRID_SECS, SeriesTotal};
use flagwire_core::release::{Audience, EVERYONE, wire};
use flagwire_proto::v1::{DecisionKind, ExecutionState, ReleaseState};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::MetricType::{Counter, Gauge};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

/// Outcome latency buckets in seconds, for SDK-reported latencies.
const LATENCY_BUCKETS: [f64; 15] = [
    0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
];

/// Reads the server's state on every scrape.
pub struct Scrape {
    catalog: Arc<Catalog>,
    metrics: Arc<Metrics>,
    clock: Arc<dyn Clock>,
    watermark: Duration,
    timers: Arc<Timers>,
}

impl Scrape {
    /// The catalog it reads (Telemetry registers the catalog's own histograms).
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }
}

impl std::fmt::Debug for Scrape {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Scrape").finish_non_exhaustive()
    }
}

impl Scrape {
    /// A collector over the running server's parts; `watermark` is the late-report watermark
    /// (usage slots older than it, and one slot more, no longer change); `timers` are the
    /// timer loops' pulses.
    pub fn new(
        catalog: Arc<Catalog>,
        metrics: Arc<Metrics>,
        clock: Arc<dyn Clock>,
        watermark: Duration,
        timers: Arc<Timers>,
    ) -> Self {
        Self {
            catalog,
            metrics,
            clock,
            watermark,
            timers,
        }
    }
}

const RELEASE_STATES: [ReleaseState; 6] = [
    ReleaseState::Draft,
    ReleaseState::Running,
    ReleaseState::Paused,
    ReleaseState::AwaitingApproval,
    ReleaseState::Completed,
    ReleaseState::RolledBack,
];

const EXECUTION_STATES: [ExecutionState; 6] = [
    ExecutionState::Scheduled,
    ExecutionState::Running,
    ExecutionState::Succeeded,
    ExecutionState::Failed,
    ExecutionState::Cancelled,
    ExecutionState::Undone,
];

fn release_state(state: i32) -> &'static str {
    match ReleaseState::try_from(state) {
        Ok(ReleaseState::Draft) => "draft",
        Ok(ReleaseState::Running) => "running",
        Ok(ReleaseState::Paused) => "paused",
        Ok(ReleaseState::AwaitingApproval) => "awaiting_approval",
        Ok(ReleaseState::Completed) => "completed",
        Ok(ReleaseState::RolledBack) => "rolled_back",
        _ => "unspecified",
    }
}

fn decision_kind(kind: i32) -> &'static str {
    match DecisionKind::try_from(kind) {
        Ok(DecisionKind::Hold) => "hold",
        Ok(DecisionKind::Promote) => "promote",
        Ok(DecisionKind::Rollback) => "rollback",
        _ => "unspecified",
    }
}

fn execution_state(state: i32) -> &'static str {
    match ExecutionState::try_from(state) {
        Ok(ExecutionState::Scheduled) => "scheduled",
        Ok(ExecutionState::Running) => "running",
        Ok(ExecutionState::Succeeded) => "succeeded",
        Ok(ExecutionState::Failed) => "failed",
        Ok(ExecutionState::Cancelled) => "cancelled",
        Ok(ExecutionState::Undone) => "undone",
        _ => "unspecified",
    }
}

/// What a scrape copies out of the catalog under its read lock.
#[derive(Default)]
struct CatalogView {
    // environment -> revision
    revisions: BTreeMap<String, u64>,
    // (environment, enabled) -> flags
    flags: BTreeMap<(String, bool), u64>,
    // (environment, state) -> rollouts
    rollouts: BTreeMap<(String, &'static str), u64>,
    // (rollout id, environment, flag) -> canary share of units, for active rollouts
    canary: Vec<([String; 3], f64)>,
    // (environment, kind, reason) -> decisions, repeats included
    decisions: BTreeMap<(String, &'static str, String), u64>,
    // (kind, state) -> executions
    executions: BTreeMap<(String, &'static str), u64>,
    kills: u64,
}

impl CatalogView {
    fn of(state: &State) -> Self {
        let mut view = Self::default();
        // Known label values start at zero, so dashboards show 0 rather than no data.
        for (key, env) in &state.envs {
            view.revisions.insert(key.clone(), env.revision);
            view.flags.insert((key.clone(), true), 0);
            view.flags.insert((key.clone(), false), 0);
            for s in RELEASE_STATES {
                view.rollouts
                    .insert((key.clone(), release_state(s as i32)), 0);
            }
        }
        for kind in ["kill", "plan"] {
            for s in EXECUTION_STATES {
                view.executions
                    .insert((kind.to_owned(), execution_state(s as i32)), 0);
            }
        }
        for flag in state.flags.values() {
            for (env, config) in &flag.environments {
                *view.flags.entry((env.clone(), config.enabled)).or_default() += 1;
            }
        }
        for r in state.releases.values() {
            *view
                .rollouts
                .entry((r.environment.clone(), release_state(r.state)))
                .or_default() += 1;
            if wire::active(r) {
                let s = wire::state(r);
                for f in r
                    .flags
                    .iter()
                    .filter(|f| !s.rolled_back.contains(&f.flag_key))
                {
                    let bp = match s.stage.and_then(|i| r.stages.get(i)) {
                        None => 0,
                        Some(stage) => match wire::audience_of(stage.audience.as_ref()) {
                            Audience::Share(bp) => bp,
                            // A segment's share of units is not known here.
                            Audience::Segment(_) => 0,
                            Audience::Everyone => EVERYONE,
                        },
                    };
                    let labels = [r.id.clone(), r.environment.clone(), f.flag_key.clone()];
                    view.canary.push((labels, f64::from(bp) / 10_000.0));
                }
            }
            for d in &r.decisions {
                let key = (
                    r.environment.clone(),
                    decision_kind(d.kind),
                    d.reason_code.clone(),
                );
                *view.decisions.entry(key).or_default() += u64::from(d.repeats.max(1));
            }
        }
        for x in state.executions.values() {
            let kind = if x.kind.is_empty() { "plan" } else { &x.kind };
            *view
                .executions
                .entry((kind.to_owned(), execution_state(x.state)))
                .or_default() += 1;
            view.kills += u64::from(x.kind == "kill");
        }
        view
    }
}

/// Labels owned by a sample (environment, flag and the like).
type Labels = Vec<(&'static str, String)>;

fn labels<const N: usize>(pairs: [(&'static str, &str); N]) -> Labels {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

impl Collector for Scrape {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let view = CatalogView::of(&self.catalog.read());
        let store_bytes = self.catalog.store().size_on_disk();
        let leader = u64::from(self.catalog.leadership().is_some());
        let store_up = u64::from(self.catalog.store().healthy());
        let lag = self.catalog.log_lag();
        let watchers = self.catalog.hub().receivers_by_env();
        let now = self.clock.now();
        let instances = self.metrics.registry().counts(now);
        let reports = self.metrics.counts();
        let settled = now
            .checked_sub(self.watermark + Duration::from_secs(GRID_SECS as u64))
            .unwrap_or(std::time::SystemTime::UNIX_EPOCH);
        let usage = self.metrics.usage().totals(settled);
        let e = &mut encoder;

        single(
            e,
            "flagwire_store_size_bytes",
            "Bytes the store occupies on disk (0 in memory).",
            Gauge,
            store_bytes,
        )?;
        single(
            e,
            "flagwire_leader",
            "1 while this replica runs what acts on time (release driver and judge, schedules, ramps, plans, retention), else 0; always 1 on an embedded store.",
            Gauge,
            leader,
        )?;
        single(
            e,
            "flagwire_store_up",
            "1 while the store answers (PostgreSQL is probed every second), else 0.",
            Gauge,
            store_up,
        )?;
        single(
            e,
            "flagwire_applied_lag_batches",
            "Batches other replicas committed that this replica had not applied at the last probe (0 on an embedded store).",
            Gauge,
            lag,
        )?;
        let revisions: Vec<(Labels, Num)> = view
            .revisions
            .iter()
            .map(|(env, r)| (labels([("environment", env)]), Num::from(*r)))
            .collect();
        write(
            e,
            "flagwire_environment_revision",
            "Revision of the latest change committed in each environment.",
            Gauge,
            &revisions,
        )?;
        let flags: Vec<(Labels, Num)> = view
            .flags
            .iter()
            .map(|((env, on), n)| {
                let state = if *on { "enabled" } else { "disabled" };
                (
                    labels([("environment", env), ("state", state)]),
                    Num::from(*n),
                )
            })
            .collect();
        write(
            e,
            "flagwire_flags",
            "Flags configured in each environment, by enabled state.",
            Gauge,
            &flags,
        )?;
        let streams: Vec<(Labels, Num)> = watchers
            .iter()
            .map(|(env, n)| (labels([("environment", env)]), Num::from(*n as u64)))
            .collect();
        write(
            e,
            "flagwire_watch_streams",
            "Open Watch streams (connected watchers) per environment.",
            Gauge,
            &streams,
        )?;
        self.encode_instances(e, &view, &instances)?;
        let passes: Vec<(Labels, Num)> = [
            ("manager", &self.timers.manager),
            ("rollouts", &self.timers.rollouts),
        ]
        .into_iter()
        .filter_map(|(timer, pulse)| {
            let at = pulse.last()?.duration_since(std::time::UNIX_EPOCH).ok()?;
            Some((labels([("timer", timer)]), Num::from(at.as_secs_f64())))
        })
        .collect();
        write(
            e,
            "flagwire_timer_last_pass_timestamp_seconds",
            "When each timer loop (manager: schedules, executions, ramps; rollouts: windows and \
             the judge) last finished a pass, by the server's clock: a stalled timer stops it.",
            Gauge,
            &passes,
        )?;

        let outcomes = [
            ("accepted", reports.accepted),
            ("duplicate", reports.duplicates),
            ("late", reports.late),
            ("rejected", reports.rejected),
        ]
        .map(|(outcome, n)| ([("outcome", outcome)], Num::from(n)));
        write(
            e,
            "flagwire_sdk_reports",
            "SDK metric reports received, by what became of them.",
            Counter,
            &outcomes,
        )?;
        single(
            e,
            "flagwire_sdk_dropped_series",
            "Series SDKs said they dropped for lack of memory.",
            Counter,
            reports.dropped_series,
        )?;
        encode_usage(e, &usage)?;
        super::custom_metrics::encode(e, &usage)?;
        encode_rollouts(e, &view)
    }
}

impl Scrape {
    fn encode_instances(
        &self,
        e: &mut DescriptorEncoder,
        view: &CatalogView,
        instances: &BTreeMap<String, EnvInstances>,
    ) -> Result<(), std::fmt::Error> {
        let per_env = |f: fn(&EnvInstances) -> u32| -> Vec<(Labels, Num)> {
            instances
                .iter()
                .map(|(env, c)| (labels([("environment", env)]), Num::from(u64::from(f(c)))))
                .collect()
        };
        write(
            e,
            "flagwire_sdk_instances_known",
            "SDK instances seen within the metrics retention or connected, per environment.",
            Gauge,
            &per_env(|c| c.known),
        )?;
        write(
            e,
            "flagwire_sdk_instances_connected",
            "SDK instances with an open Watch stream, per environment.",
            Gauge,
            &per_env(|c| c.connected),
        )?;
        let up_to_date: Vec<(Labels, Num)> = view
            .revisions
            .iter()
            .map(|(env, revision)| {
                let count = self.metrics.registry().count_applied(env, *revision);
                (
                    labels([("environment", env)]),
                    Num::from(u64::from(count.applied)),
                )
            })
            .collect();
        write(
            e,
            "flagwire_sdk_instances_up_to_date",
            "Connected SDK instances that applied their environment's latest revision.",
            Gauge,
            &up_to_date,
        )
    }
}

fn series_labels(t: &SeriesTotal) -> Labels {
    labels([
        ("environment", &t.environment),
        ("flag", &t.flag_key),
        ("variant", &t.variant),
        ("cohort", &t.cohort),
    ])
}

fn encode_usage(e: &mut DescriptorEncoder, usage: &[SeriesTotal]) -> Result<(), std::fmt::Error> {
    let evaluations: Vec<(Labels, Num)> = usage
        .iter()
        .map(|t| (series_labels(t), Num::from(t.aggregate.evaluations)))
        .collect();
    write(
        e,
        "flagwire_evaluations",
        "Flag evaluations SDKs reported, per environment, flag, variant and cohort.",
        Counter,
        &evaluations,
    )?;
    let mut outcomes: Vec<(Labels, Num)> = Vec::with_capacity(usage.len() * 2);
    for t in usage {
        for (result, n) in [
            ("success", t.aggregate.successes),
            ("error", t.aggregate.errors),
        ] {
            let mut set = series_labels(t);
            set.push(("result", result.to_owned()));
            outcomes.push((set, Num::from(n)));
        }
    }
    write(
        e,
        "flagwire_outcomes",
        "Outcomes SDKs measured, per variant and cohort, by result (success or error).",
        Counter,
        &outcomes,
    )?;
    let measured: Vec<&SeriesTotal> = usage
        .iter()
        .filter(|t| !t.aggregate.latency.is_empty())
        .collect();
    if measured.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(
        "flagwire_outcome_latency_seconds",
        "Latency of measured outcomes, per variant and cohort. An SDK bucket counts under the first bound at or above its upper edge, so quantiles read from it are upper bounds.",
        None,
        MetricType::Histogram,
    )?;
    for t in measured {
        let h = &t.aggregate.latency;
        let mut buckets: Vec<(f64, u64)> = LATENCY_BUCKETS.iter().map(|le| (*le, 0)).collect();
        buckets.push((f64::INFINITY, 0));
        buckets[0].1 = h.zero_count();
        for (index, n) in h.buckets() {
            let upper_s = flagwire_core::histogram::upper_bound(index) / 1e6;
            let slot = LATENCY_BUCKETS
                .iter()
                .position(|le| upper_s <= *le)
                .unwrap_or(LATENCY_BUCKETS.len());
            buckets[slot].1 += n;
        }
        family
            .encode_family(&series_labels(t))?
            .encode_histogram::<NoLabelSet>(h.sum() / 1e6, h.count(), &buckets, None)?;
    }
    Ok(())
}

fn encode_rollouts(e: &mut DescriptorEncoder, view: &CatalogView) -> Result<(), std::fmt::Error> {
    let rollouts: Vec<(Labels, Num)> = view
        .rollouts
        .iter()
        .map(|((env, state), n)| {
            (
                labels([("environment", env), ("state", state)]),
                Num::from(*n),
            )
        })
        .collect();
    write(
        e,
        "flagwire_rollouts",
        "Releases (and one-flag canary rollouts) per environment, by state.",
        Gauge,
        &rollouts,
    )?;
    let canary: Vec<(Labels, Num)> = view
        .canary
        .iter()
        .map(|([id, env, flag], ratio)| {
            (
                labels([("rollout", id), ("environment", env), ("flag", flag)]),
                Num::from(*ratio),
            )
        })
        .collect();
    write(
        e,
        "flagwire_rollout_canary_ratio",
        "Share of units served each active release's stage as canary, per flag still in it (control gets as many; 0 for a segment audience).",
        Gauge,
        &canary,
    )?;
    let decisions: Vec<(Labels, Num)> = view
        .decisions
        .iter()
        .map(|((env, kind, reason), n)| {
            (
                labels([("environment", env), ("kind", kind), ("reason", reason)]),
                Num::from(*n),
            )
        })
        .collect();
    write(
        e,
        "flagwire_rollout_decisions",
        "Rollout decisions logged, by kind and reason code (a HOLD repeated over windows counts once per window).",
        Counter,
        &decisions,
    )?;
    let executions: Vec<(Labels, Num)> = view
        .executions
        .iter()
        .map(|((kind, state), n)| (labels([("kind", kind), ("state", state)]), Num::from(*n)))
        .collect();
    write(
        e,
        "flagwire_executions",
        "Kill-switch and rollback-plan executions stored, by kind and state.",
        Gauge,
        &executions,
    )?;
    single(
        e,
        "flagwire_kill_switch_executions",
        "Kill-switch executions recorded (every state).",
        Counter,
        view.kills,
    )
}

#[cfg(test)]
mod tests;
