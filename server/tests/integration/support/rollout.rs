//! Rollout test helpers shared by the compressed-time tests (in-process server on a manual
//! clock) and the real-binary ones: definitions, synthetic reports, polling.

use super::binary::{Metrics, Rollouts};
use super::eventually::{DEADLINE, eventually};
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::*;
use prost_types::Duration as PbDuration;
use std::time::{Duration, SystemTime};

/// A step of `bp` basis points lasting at least `min` with `outcomes` per cohort.
pub fn step(bp: u32, min: Duration, outcomes: u64) -> RolloutStep {
    RolloutStep {
        basis_points: bp,
        min_duration: Some(PbDuration {
            seconds: min.as_secs() as i64,
            nanos: min.subsec_nanos() as i32,
        }),
        min_outcomes_per_cohort: outcomes,
        max_duration: None,
    }
}

/// A rollout of `flag` in `env` from `off` to `on` over `steps`, judged every `window`.
pub fn definition(flag: &str, env: &str, steps: Vec<RolloutStep>, window: Duration) -> Rollout {
    Rollout {
        flag_key: flag.into(),
        environment: env.into(),
        treatment_variant: "on".into(),
        baseline_variant: "off".into(),
        steps,
        policy: Some(RolloutPolicy {
            window: Some(PbDuration {
                seconds: window.as_secs() as i64,
                nanos: window.subsec_nanos() as i32,
            }),
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Creates a rollout (DRAFT); returns it as stored.
pub async fn create(client: &mut Rollouts, r: Rollout) -> Rollout {
    client
        .create_rollout(CreateRolloutRequest { rollout: Some(r) })
        .await
        .expect("create rollout")
        .into_inner()
        .rollout
        .unwrap()
}

/// Creates and starts a rollout; returns it as started.
pub async fn create_and_start(client: &mut Rollouts, r: Rollout) -> Rollout {
    let created = create(client, r).await;
    client
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .expect("start rollout")
        .into_inner()
        .rollout
        .unwrap()
}

/// The rollout with up to `windows` recent windows.
pub async fn get(client: &mut Rollouts, id: &str, windows: u32) -> Rollout {
    client
        .get_rollout(GetRolloutRequest {
            id: id.into(),
            window_limit: windows,
        })
        .await
        .expect("get rollout")
        .into_inner()
        .rollout
        .unwrap()
}

/// One cohort's series: `n` evaluations and outcomes, `errors` failed, latencies `latency_us`.
pub fn series(rollout: &Rollout, cohort: &str, n: u64, errors: u64, latency_us: u64) -> Series {
    let mut h = Histogram::new();
    h.record_n(latency_us, n);
    let variant = if cohort == "canary" {
        &rollout.treatment_variant
    } else {
        &rollout.baseline_variant
    };
    Series {
        flag_key: rollout.flag_key.clone(),
        variant: variant.clone(),
        cohort: cohort.into(),
        rollout_id: rollout.id.clone(),
        evaluations: vec![ReasonCount {
            reason: "SPLIT".into(),
            count: n,
        }],
        successes: n - errors,
        errors,
        latency_us: Some(h.to_proto()),
    }
}

/// Sends one report of instance `instance` for the window ending at `end`.
pub async fn report(
    metrics: &mut Metrics,
    env: &str,
    instance: &str,
    sequence: u64,
    end: SystemTime,
    window: Duration,
    series: Vec<Series>,
) {
    let accepted = metrics
        .report(ReportRequest {
            metrics: Vec::new(),
            cohort_outcomes: Vec::new(),
            instance_id: instance.into(),
            sequence,
            sdk_name: "test".into(),
            sdk_version: "0".into(),
            environment: env.into(),
            applied_revision: 0,
            window_start: Some((end - window).into()),
            window_end: Some(end.into()),
            series,
            dropped_series: 0,
        })
        .await
        .expect("report")
        .into_inner()
        .accepted;
    assert!(accepted, "report {sequence} not accepted");
}

/// Polls the rollout until `done` holds (10 s at most).
pub async fn wait_for(
    client: &mut Rollouts,
    id: &str,
    windows: u32,
    what: &str,
    done: impl Fn(&Rollout) -> bool,
) -> Rollout {
    let mut last = None;
    let found = tokio::time::timeout(
        DEADLINE,
        eventually(DEADLINE * 2, what, async || {
            let r = get(client, id, windows).await;
            if done(&r) {
                return Some(r);
            }
            last = Some(r);
            None
        }),
    )
    .await;
    found.unwrap_or_else(|_| {
        let r = last.unwrap_or_default();
        panic!(
            "timed out waiting for {what}: state {:?} step {} decisions {:#?}",
            RolloutState::try_from(r.state),
            r.current_step,
            r.decisions
                .iter()
                .map(|d| format!("{} {} {}", d.step, d.reason_code, d.detail))
                .collect::<Vec<_>>()
        )
    })
}

/// The state of a rollout.
pub fn state(r: &Rollout) -> RolloutState {
    RolloutState::try_from(r.state).unwrap()
}

/// The reason codes of the decision log, in order.
pub fn reasons(r: &Rollout) -> Vec<String> {
    r.decisions.iter().map(|d| d.reason_code.clone()).collect()
}
