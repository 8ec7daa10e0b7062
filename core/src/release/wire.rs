//! The stored `flagwire.v1.Release` as the state machine sees it, and a one-flag
//! `flagwire.v1.Rollout` as the release it is: pure conversions, so the catalog, the bundle
//! importer and the server's release engine read a record the same way.

use super::{Audience, EVERYONE, FlagSpec, Phase, Spec, StageSpec, State};
use flagwire_proto::v1::{
    Audience as PbAudience, Decision, DecisionKind, Release, ReleaseFlag, ReleaseState, Rollout,
    RolloutState, RolloutStep, Stage, audience,
};
use prost_types::Timestamp;

/// The spec of a stored release.
pub fn spec(r: &Release) -> Spec {
    Spec {
        flags: r
            .flags
            .iter()
            .map(|f| FlagSpec {
                key: f.flag_key.clone(),
                baseline: f.baseline_variant.clone(),
            })
            .collect(),
        stages: r
            .stages
            .iter()
            .map(|s| StageSpec {
                audience: audience_of(s.audience.as_ref()),
                variants: s.variants.clone().into_iter().collect(),
                require_approval: s.require_approval,
            })
            .collect(),
    }
}

/// The audience of a stage (no audience reads as a share of zero, which validation refuses).
pub fn audience_of(a: Option<&PbAudience>) -> Audience {
    match a.and_then(|a| a.kind.as_ref()) {
        Some(audience::Kind::BasisPoints(bp)) => Audience::Share(*bp),
        Some(audience::Kind::Segment(s)) => Audience::Segment(s.clone()),
        Some(audience::Kind::Everyone(_)) => Audience::Everyone,
        None => Audience::Share(0),
    }
}

/// The phase of a stored state.
pub fn phase_of(state: i32) -> Phase {
    match ReleaseState::try_from(state) {
        Ok(ReleaseState::Running) => Phase::Running,
        Ok(ReleaseState::Paused) => Phase::Paused,
        Ok(ReleaseState::AwaitingApproval) => Phase::AwaitingApproval,
        Ok(ReleaseState::Completed) => Phase::Completed,
        Ok(ReleaseState::RolledBack) => Phase::RolledBack,
        _ => Phase::Draft,
    }
}

/// The stored state of a phase.
pub fn release_state(p: Phase) -> ReleaseState {
    match p {
        Phase::Draft => ReleaseState::Draft,
        Phase::Running => ReleaseState::Running,
        Phase::Paused => ReleaseState::Paused,
        Phase::AwaitingApproval => ReleaseState::AwaitingApproval,
        Phase::Completed => ReleaseState::Completed,
        Phase::RolledBack => ReleaseState::RolledBack,
    }
}

/// The state of a stored release. A stage is served once `stage_start_time` is set.
pub fn state(r: &Release) -> State {
    State {
        phase: phase_of(r.state),
        stage: r.stage_start_time.map(|_| r.current_stage as usize),
        rolled_back: r.rolled_back_flags.iter().cloned().collect(),
    }
}

/// Writes `s` into the record (the caller stamps `stage_start_time` when a stage begins).
pub fn store_state(r: &mut Release, s: &State) {
    r.state = release_state(s.phase) as i32;
    r.current_stage = s.stage.map_or(0, |i| i as u32);
    r.rolled_back_flags = s.rolled_back.iter().cloned().collect();
    r.approval_stage = if s.phase == Phase::AwaitingApproval {
        s.next_stage() as u32
    } else {
        0
    };
}

/// Whether a stored release owns its flags now.
pub fn active(r: &Release) -> bool {
    phase_of(r.state).active()
}

/// A one-flag rollout as a release with the same id: each step below 100 % a stage serving the
/// treatment to a share with control; a final 100 % step is what completion does anyway, so it
/// is no stage (a rollout of only 100 % becomes one stage for everyone).
pub fn from_rollout(r: &Rollout) -> Release {
    let mut stages: Vec<Stage> = r
        .steps
        .iter()
        .filter(|s| s.basis_points < EVERYONE)
        .map(|s| stage(r, s, audience::Kind::BasisPoints(s.basis_points)))
        .collect();
    if stages.is_empty()
        && let Some(s) = r.steps.first()
    {
        stages.push(stage(r, s, audience::Kind::Everyone(true)));
    }
    Release {
        id: r.id.clone(),
        name: format!("rollout of {}", r.flag_key),
        environment: r.environment.clone(),
        flags: vec![ReleaseFlag {
            flag_key: r.flag_key.clone(),
            baseline_variant: r.baseline_variant.clone(),
        }],
        stages,
        guardrails: r.guardrails.clone(),
        policy: r.policy.clone(),
        state: match RolloutState::try_from(r.state) {
            Ok(RolloutState::Running) => ReleaseState::Running,
            Ok(RolloutState::Paused) => ReleaseState::Paused,
            Ok(RolloutState::Completed) => ReleaseState::Completed,
            Ok(RolloutState::RolledBack) => ReleaseState::RolledBack,
            _ => ReleaseState::Draft,
        } as i32,
        current_stage: r.current_step,
        salt: r.salt.clone(),
        decisions: r.decisions.clone(),
        latest_decision: r.latest_decision.clone(),
        create_time: r.create_time,
        start_time: r.start_time,
        stage_start_time: r.step_start_time,
        end_time: r.end_time,
        final_revision: r.rollback_revision,
        acknowledgement: r.acknowledgement.clone(),
        time_to_detect: r.time_to_detect,
        blast_radius_requests: r.blast_radius_requests,
        blast_radius_errors: r.blast_radius_errors,
        blast_radius_basis_points: r.blast_radius_basis_points,
        windows: r.windows.clone(),
        ..Release::default()
    }
}

fn stage(r: &Rollout, s: &RolloutStep, kind: audience::Kind) -> Stage {
    Stage {
        audience: Some(PbAudience { kind: Some(kind) }),
        variants: [(r.flag_key.clone(), r.treatment_variant.clone())].into(),
        min_duration: s.min_duration,
        min_outcomes_per_cohort: s.min_outcomes_per_cohort,
        max_duration: s.max_duration,
        ..Stage::default()
    }
}

/// Whether a release is a one-flag rollout: one flag and every stage a share serving it one
/// treatment, with nothing a rollout cannot say (approvals, stage guardrails or policies,
/// gates).
pub fn is_rollout(r: &Release) -> bool {
    let [flag] = r.flags.as_slice() else {
        return false;
    };
    let treatment = r
        .stages
        .first()
        .and_then(|s| s.variants.get(&flag.flag_key));
    // Gates have no place in a rollout: a gated release is always shown as a release.
    treatment.is_some()
        && r.gates.is_empty()
        && r.stages.iter().all(|s| {
            matches!(
                audience_of(s.audience.as_ref()),
                Audience::Share(_) | Audience::Everyone
            ) && s.variants.len() == 1
                && s.variants.get(&flag.flag_key) == treatment
                && !s.require_approval
                && s.guardrails.is_none()
                && s.max_duration_policy == 0
                && s.gates.is_empty()
        })
}

/// The rollout view of a one-flag release (see [`is_rollout`]): a step per stage, then the
/// 100 % that completion serves (the step a completed rollout is at).
pub fn to_rollout(r: &Release) -> Rollout {
    let flag = r.flags.first().cloned().unwrap_or_default();
    let mut steps: Vec<RolloutStep> = r
        .stages
        .iter()
        .map(|s| RolloutStep {
            basis_points: match audience_of(s.audience.as_ref()) {
                Audience::Share(bp) => bp,
                _ => EVERYONE,
            },
            min_duration: s.min_duration,
            min_outcomes_per_cohort: s.min_outcomes_per_cohort,
            max_duration: s.max_duration,
        })
        .collect();
    if steps.last().is_none_or(|s| s.basis_points < EVERYONE) {
        steps.push(RolloutStep {
            basis_points: EVERYONE,
            ..RolloutStep::default()
        });
    }
    let completed = phase_of(r.state) == Phase::Completed;
    let treatment = r
        .stages
        .first()
        .and_then(|s| s.variants.get(&flag.flag_key))
        .cloned()
        .unwrap_or_default();
    Rollout {
        id: r.id.clone(),
        flag_key: flag.flag_key,
        environment: r.environment.clone(),
        treatment_variant: treatment,
        baseline_variant: flag.baseline_variant,
        guardrails: r.guardrails.clone(),
        policy: r.policy.clone(),
        state: match phase_of(r.state) {
            Phase::Draft => RolloutState::Draft,
            Phase::Running => RolloutState::Running,
            Phase::Paused | Phase::AwaitingApproval => RolloutState::Paused,
            Phase::Completed => RolloutState::Completed,
            Phase::RolledBack => RolloutState::RolledBack,
        } as i32,
        current_step: if completed {
            steps.len() as u32 - 1
        } else {
            r.current_stage
        },
        salt: r.salt.clone(),
        decisions: r.decisions.clone(),
        create_time: r.create_time,
        step_start_time: r.stage_start_time,
        rollback_revision: if phase_of(r.state) == Phase::RolledBack {
            r.final_revision
        } else {
            0
        },
        rollback_acknowledged: match (&r.acknowledgement, phase_of(r.state)) {
            (Some(a), Phase::RolledBack) => a.acknowledged,
            _ => 0,
        },
        blast_radius_requests: r.blast_radius_requests,
        latest_decision: r.latest_decision.clone(),
        acknowledgement: r.acknowledgement.clone(),
        time_to_detect: r.time_to_detect,
        blast_radius_basis_points: r.blast_radius_basis_points,
        start_time: r.start_time,
        end_time: r.end_time,
        windows: r.windows.clone(),
        blast_radius_errors: r.blast_radius_errors,
        steps,
    }
}

/// Entries kept in a release's log; beyond it the oldest HOLD entries (never the first entry,
/// a promotion or a rollback) are dropped so a long release cannot grow without bound.
pub const MAX_LOG: usize = 1_000;

/// A log entry for a person's action or the server's own (STARTED, FORCED_WRITE, ...).
pub fn log_entry(
    kind: DecisionKind,
    code: &str,
    detail: &str,
    actor: &str,
    stage: u32,
    time: Timestamp,
) -> Decision {
    Decision {
        time: Some(time),
        kind: kind as i32,
        reason_code: code.to_owned(),
        detail: detail.to_owned(),
        step: stage,
        actor: actor.to_owned(),
        repeats: 1,
        ..Decision::default()
    }
}

/// Whether `d` repeats the last logged entry (same kind, reason and stage).
pub fn repeats_last(r: &Release, d: &Decision) -> bool {
    r.decisions.last().is_some_and(|last| {
        last.kind == d.kind && last.reason_code == d.reason_code && last.step == d.step
    })
}

/// Puts `latest` (the driver's in-memory count of a repeated HOLD) in place of the log's last
/// entry when it repeats it.
pub fn fold_latest(r: &mut Release, latest: &Decision) {
    if repeats_last(r, latest)
        && let Some(last) = r.decisions.last_mut()
    {
        *last = latest.clone();
    }
}

/// Appends `d` to the log, or folds it into the last entry when it repeats it.
pub fn append(r: &mut Release, d: Decision) {
    if repeats_last(r, &d)
        && let Some(last) = r.decisions.last_mut()
    {
        let repeats = last.repeats.saturating_add(1);
        *last = Decision { repeats, ..d };
        return;
    }
    r.decisions.push(d);
    if r.decisions.len() > MAX_LOG
        && let Some(i) = r
            .decisions
            .iter()
            .skip(1)
            .position(|e| e.kind == DecisionKind::Hold as i32)
    {
        r.decisions.remove(i + 1);
    }
}
