//! One SDK instance's record in the registry ([`super::instances`]): its identity, streams,
//! applied revision and the steps it took to get there, and the report sequences that drop
//! duplicates; and how it crosses between replicas (`SharedInstance`) and onto the wire.

use crate::store::fleet::SharedInstance;
use flagwire_proto::v1::Instance;
use std::collections::{BTreeMap, VecDeque};
use std::time::SystemTime;

/// Revision steps remembered per instance, for "when did it first reach revision R".
pub(super) const MAX_STEPS: usize = 64;

/// An instance as this replica knows it (or as the replicas together do, once merged).
#[derive(Debug, Clone)]
pub(super) struct Entry {
    pub(super) sdk_name: String,
    pub(super) sdk_version: String,
    pub(super) first_seen: SystemTime,
    pub(super) last_seen: SystemTime,
    // Open Watch streams; connected while > 0.
    pub(super) streams: u32,
    pub(super) connected_since: Option<SystemTime>,
    pub(super) applied_revision: u64,
    // (revision, when the applied revision first reached it), oldest first, at most MAX_STEPS.
    pub(super) steps: VecDeque<(u64, SystemTime)>,
    // Report sequence -> the time it stops mattering (window end, or receipt for reports
    // without a window).
    pub(super) sequences: BTreeMap<u64, SystemTime>,
}

impl Entry {
    pub(super) fn new(now: SystemTime) -> Self {
        Self {
            sdk_name: String::new(),
            sdk_version: String::new(),
            first_seen: now,
            last_seen: now,
            streams: 0,
            connected_since: None,
            applied_revision: 0,
            steps: VecDeque::new(),
            sequences: BTreeMap::new(),
        }
    }

    pub(super) fn identify(&mut self, sdk_name: &str, sdk_version: &str) {
        if !sdk_name.is_empty() {
            sdk_name.clone_into(&mut self.sdk_name);
        }
        if !sdk_version.is_empty() {
            sdk_version.clone_into(&mut self.sdk_version);
        }
    }

    pub(super) fn apply(&mut self, revision: u64, now: SystemTime) {
        if revision > self.applied_revision {
            self.applied_revision = revision;
            if self.steps.len() == MAX_STEPS {
                self.steps.pop_front();
            }
            self.steps.push_back((revision, now));
        }
    }

    /// When the applied revision first reached `revision` or more; `None` if it has not.
    /// Older than the remembered steps, the oldest remembered one is the answer (an upper bound).
    pub(super) fn reached(&self, revision: u64) -> Option<SystemTime> {
        if self.applied_revision < revision {
            return None;
        }
        Some(
            self.steps
                .iter()
                .find(|(r, _)| *r >= revision)
                .map_or(self.first_seen, |(_, t)| *t),
        )
    }

    /// The instance as this replica publishes it.
    pub(super) fn to_shared(&self, env: &str, id: &str) -> SharedInstance {
        SharedInstance {
            environment: env.to_owned(),
            instance_id: id.to_owned(),
            sdk_name: self.sdk_name.clone(),
            sdk_version: self.sdk_version.clone(),
            first_seen: self.first_seen,
            last_seen: self.last_seen,
            connected_since: self.connected_since,
            applied_revision: self.applied_revision,
            steps: self.steps.iter().copied().collect(),
        }
    }

    /// Another replica's view of an instance.
    pub(super) fn from_shared(i: SharedInstance) -> Self {
        Self {
            sdk_name: i.sdk_name,
            sdk_version: i.sdk_version,
            first_seen: i.first_seen,
            last_seen: i.last_seen,
            streams: u32::from(i.connected_since.is_some()),
            connected_since: i.connected_since,
            applied_revision: i.applied_revision,
            steps: i.steps.into_iter().collect(),
            sequences: BTreeMap::new(),
        }
    }

    /// One view of an instance two replicas both know (it reconnected, or watches both):
    /// connected if either says so, at the furthest applied revision, with both replicas'
    /// steps (so "first reached R" is the earlier of the two, within MAX_STEPS).
    pub(super) fn merge(&self, other: &Entry) -> Entry {
        let newer = if other.last_seen > self.last_seen {
            other
        } else {
            self
        };
        let mut steps: Vec<_> = self.steps.iter().chain(&other.steps).copied().collect();
        steps.sort_unstable();
        steps.dedup_by_key(|(r, _)| *r);
        let skip = steps.len().saturating_sub(MAX_STEPS);
        Entry {
            sdk_name: newer.sdk_name.clone(),
            sdk_version: newer.sdk_version.clone(),
            first_seen: self.first_seen.min(other.first_seen),
            last_seen: newer.last_seen,
            streams: self.streams + other.streams,
            connected_since: match (self.connected_since, other.connected_since) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            },
            applied_revision: self.applied_revision.max(other.applied_revision),
            steps: steps.into_iter().skip(skip).collect(),
            sequences: BTreeMap::new(),
        }
    }

    pub(super) fn to_proto(&self, env: &str, id: &str) -> Instance {
        Instance {
            instance_id: id.to_owned(),
            sdk_name: self.sdk_name.clone(),
            sdk_version: self.sdk_version.clone(),
            environment: env.to_owned(),
            connected_since: self.connected_since.map(Into::into),
            last_seen: Some(self.last_seen.into()),
            applied_revision: self.applied_revision,
            connected: self.streams > 0,
        }
    }
}
