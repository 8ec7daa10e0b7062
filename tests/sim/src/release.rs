//! The state machine's side of a run. A run moves a `flagwire_core::release::Spec` with
//! `flagwire_core::release::apply`, exactly as the server does; this module only reads what the
//! machine says each flag serves ([`Cohorts`], [`serves_all`]), turns a rollout into the one-flag
//! release the server stores it as ([`rollout_spec`]), builds a release's plan the way the
//! server does ([`steps`]) and hands the judge's decisions to the machine as the server's driver
//! does ([`event_for`]).

use std::collections::BTreeMap;

use flagwire_core::judge::{Judgement, Kind, Plan, Reason, Step};
use flagwire_core::release::{
    Audience, By, EVERYONE, Event, FlagSpec, Phase, Serving, Spec, StageSpec, State, serving,
};

/// The flag of a one-flag rollout.
pub const ROLLOUT_FLAG: &str = "flag";
/// What it serves outside the canary, and after a rollback.
pub const BASELINE: &str = "off";
/// What the canary gets.
pub const TREATMENT: &str = "on";

/// The one-flag release a rollout over `plan` is (as `flagwire_core::release::wire::from_rollout`
/// makes it): one stage per step, up to the first complete (100 %) step, which is what
/// completion serves. A plan that starts at 100 % has no stage: it is complete at once (the
/// server would judge one stage for everyone instead; no row does this).
pub fn rollout_spec(plan: &Plan) -> Spec {
    Spec {
        flags: vec![flag(ROLLOUT_FLAG)],
        stages: plan
            .steps
            .iter()
            .take_while(|s| s.basis_points < EVERYONE)
            .map(|s| stage(Audience::Share(s.basis_points), &[ROLLOUT_FLAG]))
            .collect(),
    }
}

/// A flag of a release, with the [`BASELINE`] variant.
pub fn flag(key: &str) -> FlagSpec {
    FlagSpec {
        key: key.to_owned(),
        baseline: BASELINE.to_owned(),
    }
}

/// A stage serving [`TREATMENT`] of the flags `on` to `audience` (the others their baseline).
pub fn stage(audience: Audience, on: &[&str]) -> StageSpec {
    StageSpec {
        audience,
        variants: on
            .iter()
            .map(|&k| (k.to_owned(), TREATMENT.to_owned()))
            .collect::<BTreeMap<_, _>>(),
        require_approval: false,
    }
}

/// The judge's steps for the stages of `spec`, as the server's plan of a release has them
/// (`server/src/releases/spec.rs`): `template`'s durations and limits, the stage's share (100 %
/// for a segment or everyone) and, for a stage without a randomised control, `no_control`.
pub fn steps(spec: &Spec, template: &Step) -> Vec<Step> {
    spec.stages
        .iter()
        .map(|s| Step {
            basis_points: match s.audience {
                Audience::Share(bp) => bp,
                _ => EVERYONE,
            },
            no_control: !s.audience.controlled(),
            ..template.clone()
        })
        .collect()
}

/// Who a state's cohorts are.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Cohorts {
    /// Share of all requests served the stage (the "canary" cohort).
    pub canary: f64,
    /// Share of all requests in the randomised control cohort (0 without one).
    pub control: f64,
    /// Flags of the release a request reads with a cohort label (each is a series; the request
    /// is still one outcome and one unit of the cohort's size).
    pub reads: u64,
}

impl Cohorts {
    /// The cohorts of `state`: every flag serving a stage (not fixed at a baseline) labels the
    /// requests of its audience "canary" and of its control "control". All of a stage's flags
    /// share its audience, so the cohorts are those of any one of them.
    pub fn of(spec: &Spec, state: &State, segment_share: f64) -> Self {
        let mut audience = None;
        let mut reads = 0;
        for f in &spec.flags {
            if let Some(Serving::Stage { audience: a, .. }) = serving(spec, state, f) {
                audience = Some(a);
                reads += 1;
            }
        }
        let (canary, control) = match audience {
            None => (0.0, 0.0),
            Some(Audience::Share(bp)) if bp < EVERYONE => {
                let share = f64::from(bp) / 10_000.0;
                (share, share)
            }
            Some(Audience::Share(_) | Audience::Everyone) => (1.0, 0.0),
            Some(Audience::Segment(_)) => (segment_share, 0.0),
        };
        Self {
            canary,
            control,
            reads,
        }
    }
}

/// Whether the canary is served the stage variant, not the baseline, of every flag in `keys`.
pub fn serves_all(spec: &Spec, state: &State, keys: &[String]) -> bool {
    keys.iter().all(|k| {
        spec.flags.iter().find(|f| &f.key == k).is_some_and(|f| {
            matches!(
                serving(spec, state, f),
                Some(Serving::Stage { variant, baseline, .. }) if variant != baseline
            )
        })
    })
}

/// Whether the server's driver asks the judge about a release in `state`: while a stage is
/// served and no person holds it.
pub fn judged(state: &State) -> bool {
    state.stage.is_some() && matches!(state.phase, Phase::Running | Phase::AwaitingApproval)
}

/// The event the server's driver (`server/src/releases/driver.rs`) hands the state machine for
/// judgement `j` of a release in `phase`.
pub fn event_for(j: &Judgement, phase: Phase) -> Event {
    let awaiting = phase == Phase::AwaitingApproval;
    match (j.kind, j.reason) {
        (Kind::Rollback, _) => Event::Rollback(By::Judge),
        // Awaiting approval already: the judge's wish to promote changes nothing.
        (Kind::Promote, _) if awaiting => Event::Hold,
        (Kind::Promote, _) => Event::Promote(By::Judge),
        (Kind::Hold, Reason::AwaitingApproval) if !awaiting => Event::Pause,
        (Kind::Hold, _) => Event::Hold,
    }
}
