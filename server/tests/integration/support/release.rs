//! Release test helpers: the seeds' release files, boolean flags to move, synthetic windows of
//! SDK reports with per-release cohort outcomes, and the calls people make.

use super::binary::{Admin, Metrics, Releases, bool_flag, create_flag, set_enabled};
use flagwire_core::histogram::Histogram;
use flagwire_core::release::wire;
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};

/// `deploy/releases/NAME` as a release definition.
pub fn load(name: &str) -> Release {
    let path = format!("{}/../deploy/releases/{name}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap();
    flagwire_server::protojson::from_yaml::<Release>(&text)
        .unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Creates boolean flags `on`/`off` enabled in `env`, serving `off`.
pub async fn flags(admin: &mut Admin, env: &str, keys: &[&str]) {
    for key in keys {
        let mut f = bool_flag(key, &[env]);
        f.environments.get_mut(env).unwrap().default_rule = Some(Serve {
            kind: Some(serve::Kind::Variant("off".into())),
        });
        create_flag(admin, f).await;
        set_enabled(admin, key, env, true).await;
    }
}

/// A share, segment or everyone as an audience.
pub fn share(bp: u32) -> Option<flagwire_proto::v1::Audience> {
    Some(flagwire_proto::v1::Audience {
        kind: Some(audience::Kind::BasisPoints(bp)),
    })
}

/// A stage for `audience` serving `on` for `on`, with a minimum duration.
pub fn stage(audience: Option<flagwire_proto::v1::Audience>, on: &[&str], min: Duration) -> Stage {
    Stage {
        audience,
        variants: on
            .iter()
            .map(|k| (k.to_string(), "on".to_string()))
            .collect(),
        min_duration: Some(prost_types::Duration {
            seconds: min.as_secs() as i64,
            nanos: 0,
        }),
        min_outcomes_per_cohort: 100,
        ..Default::default()
    }
}

/// A release of `keys` (baseline `off`) in `env` over `stages`, judged every `window`.
pub fn release(env: &str, keys: &[&str], stages: Vec<Stage>, window: Duration) -> Release {
    Release {
        name: "test release".into(),
        environment: env.into(),
        flags: keys
            .iter()
            .map(|k| ReleaseFlag {
                flag_key: k.to_string(),
                baseline_variant: "off".into(),
            })
            .collect(),
        stages,
        policy: Some(RolloutPolicy {
            window: Some(prost_types::Duration {
                seconds: window.as_secs() as i64,
                nanos: 0,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates a release (DRAFT).
pub async fn create(client: &mut Releases, r: Release) -> Release {
    client
        .create_release(CreateReleaseRequest { release: Some(r) })
        .await
        .expect("create release")
        .into_inner()
        .release
        .unwrap()
}

/// Starts a release.
pub async fn start(client: &mut Releases, id: &str) -> Release {
    client
        .start_release(StartReleaseRequest {
            id: id.into(),
            reason: "go".into(),
        })
        .await
        .expect("start release")
        .into_inner()
        .release
        .unwrap()
}

/// Creates and starts a release.
pub async fn launch(client: &mut Releases, r: Release) -> Release {
    let id = create(client, r).await.id;
    start(client, &id).await
}

/// The release with up to `windows` recent windows.
pub async fn get(client: &mut Releases, id: &str, windows: u32) -> Release {
    client
        .get_release(GetReleaseRequest {
            id: id.into(),
            window_limit: windows,
        })
        .await
        .expect("get release")
        .into_inner()
        .release
        .unwrap()
}

/// The state of a release.
pub fn state(r: &Release) -> ReleaseState {
    ReleaseState::try_from(r.state).unwrap()
}

/// What one cohort of a window saw: `n` scoped requests, `errors` failed, each reading every
/// flag of the release.
#[derive(Debug, Clone, Copy)]
pub struct Traffic {
    /// Requests.
    pub n: u64,
    /// Failed requests.
    pub errors: u64,
    /// Latency of each, microseconds.
    pub latency_us: u64,
}

impl Traffic {
    /// `n` requests with `errors` failures at 20 ms.
    pub fn new(n: u64, errors: u64) -> Self {
        Self {
            n,
            errors,
            latency_us: 20_000,
        }
    }
}

fn histogram(t: Traffic) -> Option<ExponentialHistogram> {
    let mut h = Histogram::new();
    h.record_n(t.latency_us, t.n);
    Some(h.to_proto())
}

/// The report an SDK instance sends for one window of scoped requests to release `r` at its
/// current stage: one series per (flag, variant, cohort) and one cohort outcome per cohort.
pub fn window_report(
    r: &Release,
    instance: &str,
    sequence: u64,
    end: SystemTime,
    window: Duration,
    canary: Traffic,
    control: Option<Traffic>,
) -> ReportRequest {
    let stage = wire::state(r).stage.and_then(|i| r.stages.get(i));
    let cohorts = [("canary", Some(canary)), ("control", control)];
    let mut series = Vec::new();
    let mut cohort_outcomes = Vec::new();
    for (cohort, traffic) in cohorts {
        let Some(t) = traffic.filter(|t| t.n > 0) else {
            continue;
        };
        for f in &r.flags {
            let rolled_back = r.rolled_back_flags.contains(&f.flag_key);
            let variant = match (cohort, stage, rolled_back) {
                ("canary", Some(s), false) => s
                    .variants
                    .get(&f.flag_key)
                    .cloned()
                    .unwrap_or_else(|| f.baseline_variant.clone()),
                _ => f.baseline_variant.clone(),
            };
            series.push(Series {
                flag_key: f.flag_key.clone(),
                variant,
                cohort: cohort.into(),
                rollout_id: r.id.clone(),
                evaluations: vec![ReasonCount {
                    reason: "SPLIT".into(),
                    count: t.n,
                }],
                successes: t.n - t.errors,
                errors: t.errors,
                latency_us: histogram(t),
            });
        }
        cohort_outcomes.push(CohortOutcome {
            release_id: r.id.clone(),
            cohort: cohort.into(),
            successes: t.n - t.errors,
            errors: t.errors,
            latency_us: histogram(t),
        });
    }
    ReportRequest {
        metrics: Vec::new(),
        instance_id: instance.into(),
        sequence,
        sdk_name: "test".into(),
        sdk_version: "0".into(),
        environment: r.environment.clone(),
        applied_revision: 0,
        window_start: Some((end - window).into()),
        window_end: Some(end.into()),
        series,
        dropped_series: 0,
        cohort_outcomes,
    }
}

/// Sends a report; panics unless it is accepted.
pub async fn send(metrics: &mut Metrics, report: ReportRequest) {
    let accepted = metrics
        .report(report)
        .await
        .expect("report")
        .into_inner()
        .accepted;
    assert!(accepted, "report not accepted");
}

/// Whether the stage being served has a control cohort.
pub fn controlled(r: &Release) -> bool {
    wire::state(r)
        .stage
        .and_then(|i| r.stages.get(i))
        .is_some_and(|s| wire::audience_of(s.audience.as_ref()).controlled())
}
