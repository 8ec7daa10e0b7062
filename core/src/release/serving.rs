//! What each flag of a release serves in a given state: the single source both of the changes
//! a transition makes and of the property that the flags never drift from the release.

use super::{Audience, FlagSpec, Phase, Spec, State};

/// What a release makes one flag serve in its environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Serving {
    /// This variant to everyone, outside any cohort: the baseline (before the audience saw
    /// anything new, or after a rollback) or the last stage's variant once complete.
    Fixed(String),
    /// A stage: `variant` to the audience (the "canary" cohort), `baseline` to the rest and,
    /// for a share, to an equal "control" cohort, on the release's salt.
    Stage {
        /// What the audience gets.
        variant: String,
        /// What everyone else (and control) gets.
        baseline: String,
        /// Who the audience is.
        audience: Audience,
    },
}

/// What `flag` serves in `state`; `None` while the release has not touched it (a draft, or a
/// first stage awaiting approval).
pub fn serving(spec: &Spec, state: &State, flag: &FlagSpec) -> Option<Serving> {
    match state.phase {
        Phase::Draft => None,
        Phase::RolledBack => Some(Serving::Fixed(flag.baseline.clone())),
        Phase::Completed => {
            let last = spec.stages.len().checked_sub(1)?;
            Some(Serving::Fixed(if state.rolled_back.contains(&flag.key) {
                flag.baseline.clone()
            } else {
                spec.variant(last, flag)
            }))
        }
        Phase::Running | Phase::Paused | Phase::AwaitingApproval => {
            if state.rolled_back.contains(&flag.key) {
                return Some(Serving::Fixed(flag.baseline.clone()));
            }
            let stage = state.stage?;
            Some(Serving::Stage {
                variant: spec.variant(stage, flag),
                baseline: flag.baseline.clone(),
                audience: spec.stages.get(stage)?.audience.clone(),
            })
        }
    }
}
