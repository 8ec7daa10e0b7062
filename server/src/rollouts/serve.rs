//! What a rollout makes its flag serve: the canary split at each step, the treatment once
//! complete, the baseline once rolled back. Only the environment's default rule changes;
//! targets and rules that match first keep serving what they serve.

use super::spec::FULL;
use crate::error::{Error, Result};
use flagwire_proto::v1::{Flag, Rollout, Serve, Split, SplitEntry, serve};

/// What the default rule should serve.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The canary split at this many basis points.
    Step(u32),
    /// The treatment to everyone.
    Complete,
    /// The baseline to everyone.
    Rollback,
}

/// The split of a step: `[canary w, rest, control w]` on the rollout's salt. Canary is
/// `bucket < w` and control the top `w` of the range, so the cohorts are equal, nested as `w`
/// grows, and a unit never moves from canary to control.
pub fn canary_split(r: &Rollout, basis_points: u32) -> Serve {
    let entry = |variant: &str, weight, label: &str| SplitEntry {
        variant: variant.to_owned(),
        weight,
        label: label.to_owned(),
    };
    Serve {
        kind: Some(serve::Kind::Split(Split {
            entries: vec![
                entry(&r.treatment_variant, basis_points, "canary"),
                entry(&r.baseline_variant, FULL - 2 * basis_points, ""),
                entry(&r.baseline_variant, basis_points, "control"),
            ],
            bucket_by: String::new(),
            salt: r.salt.clone(),
            rollout_id: r.id.clone(),
        })),
    }
}

/// `flag` with the rollout's environment serving `target`.
pub fn rewrite(flag: &Flag, r: &Rollout, target: Target) -> Result<Flag> {
    let mut next = flag.clone();
    let config = next.environments.get_mut(&r.environment).ok_or_else(|| {
        Error::FailedPrecondition(format!(
            "flag {:?} has no configuration in environment {:?}",
            r.flag_key, r.environment
        ))
    })?;
    let fixed = |v: &str| Serve {
        kind: Some(serve::Kind::Variant(v.to_owned())),
    };
    config.default_rule = Some(match target {
        Target::Step(bp) if bp >= FULL => fixed(&r.treatment_variant),
        Target::Step(bp) => canary_split(r, bp),
        Target::Complete => fixed(&r.treatment_variant),
        Target::Rollback => fixed(&r.baseline_variant),
    });
    Ok(next)
}
