//! The release definitions of a bundle: its `releases`, and its `rollouts` (one-flag releases
//! in the Rollout API's terms, as older exports wrote them), checked as CreateRelease and
//! CreateRollout check them and created as DRAFT releases under their own ids. An existing
//! release is never changed by an import: a differing definition under its id is refused.

use super::definition;
use super::plan::locate;
use crate::catalog::State;
use crate::error::{Error, Result};
use crate::releases::{rollout, spec};
use flagwire_core::release::wire;
use flagwire_proto::v1::{Bundle, Release, ReleaseState, Rollout};
use prost_types::Timestamp;

/// A release definition of the bundle, with where it came from (for messages and changes).
pub struct Planned {
    /// The release to create.
    pub release: Release,
    /// Whether the bundle wrote it as a rollout (`rollouts[i]`).
    pub from_rollout: bool,
}

/// Checks `build()` with the flags it names unarchived: an exported release of a flag archived
/// since must import again.
fn with_archived_flags<T>(
    next: &mut State,
    flags: &[String],
    build: impl FnOnce(&State) -> Result<T>,
) -> Result<T> {
    let mut archived = Vec::new();
    for key in flags {
        if let Some(f) = next.flags.get_mut(key)
            && std::mem::replace(&mut f.archived, false)
        {
            archived.push(key.clone());
        }
    }
    let result = build(next);
    for key in archived {
        if let Some(f) = next.flags.get_mut(&key) {
            f.archived = true;
        }
    }
    result
}

/// Adds a checked definition to `next` unless it is there already; refuses a different one.
fn place(
    next: &mut State,
    release: Release,
    field: &str,
    now: Timestamp,
    unchanged: &mut u32,
) -> Result<Option<Release>> {
    match next.releases.get(&release.id).map(definition::release) {
        Some(stored) if stored == definition::release(&release) => {
            *unchanged += 1;
            Ok(None)
        }
        Some(_) => Err(Error::FailedPrecondition(format!(
            "{field}: release {:?} exists with another definition; an import cannot change a \
             release (give the new definition another id)",
            release.id
        ))),
        None => {
            let release = Release {
                salt: release.id.clone(),
                state: ReleaseState::Draft as i32,
                create_time: Some(now),
                ..definition::release(&release)
            };
            next.releases.insert(release.id.clone(), release.clone());
            Ok(Some(release))
        }
    }
}

fn rollout_release(next: &mut State, r: &Rollout, i: usize) -> Result<Release> {
    let field = |name: &str| format!("rollouts[{i}].{name}");
    if !next.flags.contains_key(&r.flag_key) {
        return Err(Error::invalid(
            field("flagKey"),
            format!("unknown flag {:?}", r.flag_key),
        ));
    }
    if !next.envs.contains_key(&r.environment) {
        return Err(Error::invalid(
            field("environment"),
            format!("unknown environment {:?}", r.environment),
        ));
    }
    let flags = [r.flag_key.clone()];
    let checked = with_archived_flags(next, &flags, |state| rollout::normalise(state, r.clone()));
    let release = checked.map_err(|e| match e {
        Error::Invalid(e) => locate(e, "rollout", "rollouts", i, &r.id),
        other => other,
    })?;
    Ok(Release {
        id: r.id.clone(),
        ..release
    })
}

fn release(next: &mut State, r: &Release, i: usize) -> Result<Release> {
    if !next.envs.contains_key(&r.environment) {
        return Err(Error::invalid(
            format!("releases[{i}].environment"),
            format!("unknown environment {:?}", r.environment),
        ));
    }
    for (j, f) in r.flags.iter().enumerate() {
        if !next.flags.contains_key(&f.flag_key) {
            return Err(Error::invalid(
                format!("releases[{i}].flags[{j}].flagKey"),
                format!("unknown flag {:?}", f.flag_key),
            ));
        }
    }
    let flags: Vec<String> = r.flags.iter().map(|f| f.flag_key.clone()).collect();
    let checked = with_archived_flags(next, &flags, |state| {
        spec::normalise(state, definition::release(r))
    });
    checked.map_err(|e| match e {
        Error::Invalid(e) => locate(e, "release", "releases", i, &r.id),
        other => other,
    })
}

/// The bundle's new releases, checked against the catalog as it will be (`next`, which gets
/// them); counts the ones already stored as they are.
pub fn plan(
    next: &mut State,
    bundle: &Bundle,
    now: Timestamp,
    unchanged: &mut u32,
) -> Result<Vec<Planned>> {
    let mut created = Vec::new();
    for (i, r) in bundle.rollouts.iter().enumerate() {
        // Stored as written (an export read back): unchanged, even if its flag is archived or
        // about to be pruned (the prune's own checks speak for the flag).
        let stored = next.releases.get(&r.id).filter(|s| wire::is_rollout(s));
        if stored
            .is_some_and(|s| definition::rollout(&wire::to_rollout(s)) == definition::rollout(r))
        {
            *unchanged += 1;
            continue;
        }
        let wanted = rollout_release(next, r, i)?;
        if let Some(release) = place(next, wanted, &format!("rollouts[{i}]"), now, unchanged)? {
            created.push(Planned {
                release,
                from_rollout: true,
            });
        }
    }
    for (i, r) in bundle.releases.iter().enumerate() {
        let stored = next.releases.get(&r.id).map(definition::release);
        if stored.is_some_and(|s| s == definition::release(r)) {
            *unchanged += 1;
            continue;
        }
        let wanted = release(next, r, i)?;
        if let Some(release) = place(next, wanted, &format!("releases[{i}]"), now, unchanged)? {
            created.push(Planned {
                release,
                from_rollout: false,
            });
        }
    }
    Ok(created)
}

/// The definition of a stored release as a bundle carries it: a rollout when a rollout can
/// express it, else a release.
pub fn export(r: &Release) -> (Option<Rollout>, Option<Release>) {
    if wire::is_rollout(r) {
        (Some(definition::rollout(&wire::to_rollout(r))), None)
    } else {
        (None, Some(definition::release(r)))
    }
}
