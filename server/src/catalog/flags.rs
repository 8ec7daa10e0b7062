//! Flag operations.

use super::owners::guard;
use super::{Catalog, Meta, State, Txn};
use crate::error::{Error, Result};
use crate::store::keys;
use flagwire_core::validate::{validate_flag, validate_key};
use flagwire_proto::v1::{AuditSubject, Flag, audit_subject};
use prost::Message;

/// Filters and paging of [`Catalog::list_flags`].
#[derive(Debug, Default, Clone)]
pub struct FlagFilter {
    /// Flags must carry every tag.
    pub tags: Vec<String>,
    /// Keys must start with this.
    pub key_prefix: String,
    /// Include archived flags.
    pub include_archived: bool,
    /// Start after this key (the page token).
    pub after: String,
    /// At most this many.
    pub limit: usize,
}

/// A flag as an audit event's before or after.
pub(crate) fn subject(flag: &Flag) -> Option<AuditSubject> {
    Some(AuditSubject {
        kind: Some(audit_subject::Kind::Flag(flag.clone())),
    })
}

/// Fails unless `expected` is 0 (no check) or the stored version.
pub(super) fn check_version(what: &str, expected: u64, current: u64) -> Result<()> {
    if expected != 0 && expected != current {
        return Err(Error::VersionConflict {
            what: what.to_owned(),
            expected,
            current,
        });
    }
    Ok(())
}

fn stored<'a>(state: &'a State, key: &str) -> Result<&'a Flag> {
    state
        .flags
        .get(key)
        .ok_or_else(|| Error::NotFound(format!("flag {key:?}")))
}

/// `next` as the version after `before`: the server-managed fields stamped, nothing stored
/// (writes of several flags at once store them together with `Txn::put_flags`).
pub(crate) fn stamp_version(txn: &Txn, before: &Flag, mut next: Flag) -> Flag {
    next.version = before.version + 1;
    next.create_time = before.create_time;
    next.update_time = Some(txn.now());
    next
}

/// Stores `next` as the new version of `before`, stamping server-managed fields.
pub(crate) fn commit_version(
    state: &State,
    txn: &mut Txn,
    before: &Flag,
    next: Flag,
    action: &str,
) -> Flag {
    let next = stamp_version(txn, before, next);
    txn.put_flag(state, next.clone());
    txn.audit(action, "flag", &next.key, subject(before), subject(&next));
    next
}

impl Catalog {
    /// Creates a flag at version 1 (or after the last version of a deleted flag of that key).
    pub async fn create_flag(&self, meta: &Meta, mut flag: Flag) -> Result<Flag> {
        let store = self.store();
        let last_version = |key: &str| -> Result<u64> {
            let prefix = keys::flag_versions(key);
            let last = store.range_rev(&prefix, &keys::prefix_end(&prefix), 1)?;
            Ok(last.first().map_or(0, |(k, _)| keys::trailing_u64(k)))
        };
        self.write(meta, |state, txn| {
            validate_flag(&flag, state)?;
            if state.flags.contains_key(&flag.key) {
                return Err(Error::AlreadyExists(format!("flag {:?}", flag.key)));
            }
            flag.version = last_version(&flag.key)? + 1;
            flag.archived = false;
            flag.create_time = Some(txn.now());
            flag.update_time = Some(txn.now());
            txn.put_flag(state, flag.clone());
            txn.audit("flag.create", "flag", &flag.key, None, subject(&flag));
            Ok(flag)
        })
        .await
    }

    /// Replaces a flag if `expected_version` is the stored one (and, for a flag an active
    /// release or ramp owns, if the change leaves what it serves there alone or `force`).
    pub async fn update_flag(
        &self,
        meta: &Meta,
        flag: Flag,
        expected_version: u64,
        force: bool,
    ) -> Result<Flag> {
        if expected_version == 0 {
            return Err(Error::invalid(
                "expectedVersion",
                "required: the version you read (optimistic concurrency)",
            ));
        }
        self.write(meta, |state, txn| {
            validate_flag(&flag, state)?;
            let before = stored(state, &flag.key)?;
            check_version(
                &format!("flag {:?}", flag.key),
                expected_version,
                before.version,
            )?;
            let next = Flag {
                archived: before.archived,
                ..flag
            };
            guard(state, txn, meta, before, Some(&next), force)?;
            Ok(commit_version(state, txn, before, next, "flag.update"))
        })
        .await
    }

    /// Turns a flag on or off in one environment (see [`Catalog::update_flag`] for `force`).
    pub async fn set_flag_enabled(
        &self,
        meta: &Meta,
        key: &str,
        env: &str,
        enabled: bool,
        expected_version: u64,
        force: bool,
    ) -> Result<Flag> {
        self.write(meta, |state, txn| {
            validate_key("environment", env)?;
            let before = stored(state, key)?;
            check_version(&format!("flag {key:?}"), expected_version, before.version)?;
            if !state.envs.contains_key(env) {
                return Err(Error::NotFound(format!("environment {env:?}")));
            }
            let mut next = before.clone();
            let config = next
                .environments
                .entry(env.to_owned())
                .or_insert_with(|| flagwire_core::project::default_config(before));
            config.enabled = enabled;
            let action = if enabled {
                "flag.enable"
            } else {
                "flag.disable"
            };
            guard(state, txn, meta, before, Some(&next), force)?;
            Ok(commit_version(state, txn, before, next, action))
        })
        .await
    }

    /// Archives (true) or restores (false) a flag (see [`Catalog::update_flag`] for `force`).
    /// A flag that a flag still in use names as a prerequisite is not archived: every
    /// evaluation of that flag would fail the prerequisite (its off variant,
    /// `PREREQUISITE_FAILED`), a change of what production serves that archiving should not
    /// make on the side.
    pub async fn archive_flag(
        &self,
        meta: &Meta,
        key: &str,
        archived: bool,
        force: bool,
    ) -> Result<Flag> {
        self.write(meta, |state, txn| {
            let before = stored(state, key)?;
            if archived
                && !before.archived
                && let Some(dependent) = dependent_of(state, key, false)
            {
                return Err(Error::FailedPrecondition(format!(
                    "flag {key:?} is a prerequisite of flag {dependent:?}, which would then \
                     fail it everywhere: remove the prerequisite, or archive {dependent:?} first"
                )));
            }
            let next = Flag {
                archived,
                ..before.clone()
            };
            let action = if archived {
                "flag.archive"
            } else {
                "flag.unarchive"
            };
            guard(state, txn, meta, before, Some(&next), force)?;
            Ok(commit_version(state, txn, before, next, action))
        })
        .await
    }

    /// Deletes a flag no other flag depends on and no active release or ramp owns.
    pub async fn delete_flag(&self, meta: &Meta, key: &str) -> Result<()> {
        self.write(meta, |state, txn| {
            let before = stored(state, key)?;
            guard(state, txn, meta, before, None, false)?;
            if let Some(dependent) = dependent_of(state, key, true) {
                return Err(Error::FailedPrecondition(format!(
                    "flag {key:?} is a prerequisite of flag {dependent:?}"
                )));
            }
            txn.delete_flag(state, key);
            txn.audit("flag.delete", "flag", key, subject(before), None);
            Ok(())
        })
        .await
    }

    /// Makes the content of an earlier version current again, as a new version (see
    /// [`Catalog::update_flag`] for `force`).
    pub async fn revert_flag(
        &self,
        meta: &Meta,
        key: &str,
        version: u64,
        expected_version: u64,
        force: bool,
    ) -> Result<Flag> {
        let old = self
            .store()
            .get(&keys::flag_version(key, version))?
            .ok_or_else(|| Error::NotFound(format!("flag {key:?} version {version}")))?;
        let old = Flag::decode(old.as_slice())
            .map_err(|e| Error::FailedPrecondition(format!("stored version unreadable: {e}")))?;
        self.write(meta, |state, txn| {
            let before = stored(state, key)?;
            check_version(&format!("flag {key:?}"), expected_version, before.version)?;
            // The old version may name environments, segments or flags that are gone now.
            validate_flag(&old, state)?;
            let next = Flag {
                archived: before.archived,
                ..old
            };
            guard(state, txn, meta, before, Some(&next), force)?;
            Ok(commit_version(state, txn, before, next, "flag.revert"))
        })
        .await
    }

    /// One current flag.
    pub fn get_flag(&self, key: &str) -> Result<Flag> {
        stored(&self.read(), key).cloned()
    }

    /// A page of flags ordered by key; the second value is the next page token.
    pub fn list_flags(&self, filter: &FlagFilter) -> (Vec<Flag>, String) {
        let state = self.read();
        let start = std::ops::Bound::Excluded(filter.after.clone());
        let range = if filter.after.is_empty() {
            state.flags.range::<String, _>(..)
        } else {
            state.flags.range((start, std::ops::Bound::Unbounded))
        };
        let mut page: Vec<Flag> = range
            .map(|(_, f)| f)
            .filter(|f| f.key.starts_with(&filter.key_prefix))
            .filter(|f| filter.include_archived || !f.archived)
            .filter(|f| filter.tags.iter().all(|t| f.tags.contains(t)))
            .take(filter.limit + 1)
            .cloned()
            .collect();
        let next = if page.len() > filter.limit {
            page.truncate(filter.limit);
            page.last().map(|f| f.key.clone()).unwrap_or_default()
        } else {
            String::new()
        };
        (page, next)
    }

    /// Every stored version of a flag, newest first.
    pub fn flag_versions(&self, key: &str) -> Result<Vec<Flag>> {
        let prefix = keys::flag_versions(key);
        let entries = self
            .store()
            .range_rev(&prefix, &keys::prefix_end(&prefix), usize::MAX)?;
        if entries.is_empty() {
            return Err(Error::NotFound(format!("flag {key:?}")));
        }
        entries
            .iter()
            .map(|(k, v)| Ok(super::decode(k, v)?))
            .collect()
    }
}

/// A flag (archived ones too when `archived`) that names `key` as a prerequisite in some
/// environment.
fn dependent_of<'a>(state: &'a State, key: &str, archived: bool) -> Option<&'a str> {
    state
        .flags
        .values()
        .filter(|f| archived || !f.archived)
        .find(|f| {
            f.environments
                .values()
                .any(|c| c.prerequisites.iter().any(|p| p.flag_key == key))
        })
        .map(|f| f.key.as_str())
}
