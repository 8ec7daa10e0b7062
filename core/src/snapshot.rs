//! An environment's flags and segments, indexed for evaluation, and the evaluation algorithm of
//! `docs/evaluation.md`.

use crate::compile::{CompiledFlag, CompiledSegment};
use flagwire_proto::v1::{Change, Flag, Segment, change};
use std::sync::Arc;
// foldhash instead of SipHash: flag and segment keys come from the operator, not from an
// attacker choosing collisions, and the lookup is on every evaluation.
use foldhash::HashMap;

/// A change that does not follow the snapshot's revision.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("change {got} does not follow revision {}", expected - 1)]
pub struct ApplyError {
    /// The revision that would have followed.
    pub expected: u64,
    /// The revision received.
    pub got: u64,
}

/// Prerequisite chains deeper than this fail (writes reject cycles; this guards damaged data).
pub const MAX_PREREQUISITE_DEPTH: usize = 16;

/// One environment, ready to evaluate: each flag and segment is compiled as it enters (see
/// `compile`). SDKs treat it as immutable: they clone it, apply a change to the clone and swap
/// it in, so readers never wait for writers; compiled entries are shared between the clones.
#[derive(Clone)]
pub struct Snapshot {
    environment: String,
    revision: u64,
    pub(crate) flags: HashMap<String, Arc<CompiledFlag>>,
    pub(crate) segments: HashMap<String, Arc<CompiledSegment>>,
}

impl Snapshot {
    /// Indexes `flags` and `segments` of `environment` at `revision`.
    pub fn new(
        environment: &str,
        revision: u64,
        flags: impl IntoIterator<Item = Flag>,
        segments: impl IntoIterator<Item = Segment>,
    ) -> Self {
        let mut snapshot = Self {
            environment: environment.to_owned(),
            revision,
            flags: HashMap::default(),
            segments: HashMap::default(),
        };
        for flag in flags {
            snapshot.upsert_flag(flag);
        }
        for segment in segments {
            snapshot.upsert_segment(segment);
        }
        snapshot
    }

    /// The environment.
    pub fn environment(&self) -> &str {
        &self.environment
    }

    /// The revision.
    pub fn revision(&self) -> u64 {
        self.revision
    }

    /// Inserts or replaces a flag, compiling its config for this environment.
    pub fn upsert_flag(&mut self, flag: Flag) {
        let key = flag.key.clone();
        let compiled = CompiledFlag::new(flag, &self.environment);
        self.flags.insert(key, Arc::new(compiled));
    }

    /// Removes a flag.
    pub fn remove_flag(&mut self, key: &str) {
        self.flags.remove(key);
    }

    /// Inserts or replaces a segment; one of another environment is ignored (segments belong to
    /// one environment and are invisible elsewhere).
    pub fn upsert_segment(&mut self, segment: Segment) {
        if segment.environment.is_empty() || segment.environment == self.environment {
            let key = segment.key.clone();
            self.segments
                .insert(key, Arc::new(CompiledSegment::new(segment)));
        }
    }

    /// Removes a segment.
    pub fn remove_segment(&mut self, key: &str) {
        self.segments.remove(key);
    }

    /// Sets the revision (after applying a change).
    pub fn set_revision(&mut self, revision: u64) {
        self.revision = revision;
    }

    /// Builds a snapshot from the wire form a Watch stream sends.
    pub fn from_proto(snapshot: flagwire_proto::v1::Snapshot) -> Self {
        Self::new(
            &snapshot.environment,
            snapshot.revision,
            snapshot.flags,
            snapshot.segments,
        )
    }

    /// The wire form, e.g. to persist as a bootstrap file.
    pub fn to_proto(&self) -> flagwire_proto::v1::Snapshot {
        let mut flags: Vec<Flag> = self
            .flags
            .values()
            .map(|e| {
                let mut flag = e.flag.clone();
                flag.environments
                    .insert(self.environment.clone(), e.config.clone());
                flag
            })
            .collect();
        flags.sort_by(|a, b| a.key.cmp(&b.key));
        let mut segments: Vec<Segment> =
            self.segments.values().map(|s| s.segment.clone()).collect();
        segments.sort_by(|a, b| a.key.cmp(&b.key));
        flagwire_proto::v1::Snapshot {
            environment: self.environment.clone(),
            revision: self.revision,
            flags,
            segments,
        }
    }

    /// Applies the change that follows this snapshot's revision. A change that does not
    /// (a gap, or an old one) is refused and nothing changes: the caller resynchronises.
    pub fn apply(&mut self, change: &Change) -> Result<(), ApplyError> {
        if change.revision != self.revision + 1 {
            return Err(ApplyError {
                expected: self.revision + 1,
                got: change.revision,
            });
        }
        match &change.kind {
            Some(change::Kind::FlagUpserted(f)) => self.upsert_flag(f.clone()),
            Some(change::Kind::FlagsUpserted(batch)) => {
                for f in &batch.flags {
                    self.upsert_flag(f.clone());
                }
            }
            Some(change::Kind::FlagDeleted(k)) => self.remove_flag(k),
            Some(change::Kind::SegmentUpserted(s)) => self.upsert_segment(s.clone()),
            Some(change::Kind::SegmentDeleted(k)) => self.remove_segment(k),
            None => {}
        }
        self.revision = change.revision;
        Ok(())
    }

    /// Keys of flags that differ between `self` and `newer` (added, removed, or another
    /// version), sorted: what change listeners are told after a snapshot replaces another.
    pub fn changed_flags(&self, newer: &Snapshot) -> Vec<String> {
        let mut keys: Vec<String> = newer
            .flags
            .iter()
            .filter(|(k, e)| {
                self.flags
                    .get(*k)
                    .is_none_or(|o| o.flag.version != e.flag.version)
            })
            .map(|(k, _)| k.clone())
            .chain(
                self.flags
                    .keys()
                    .filter(|k| !newer.flags.contains_key(*k))
                    .cloned(),
            )
            .collect();
        keys.sort();
        keys
    }

    /// Keys of every flag that is not archived, sorted.
    pub fn flag_keys(&self) -> Vec<&str> {
        let mut keys: Vec<&str> = self
            .flags
            .values()
            .filter(|e| !e.flag.archived)
            .map(|e| e.flag.key.as_str())
            .collect();
        keys.sort_unstable();
        keys
    }
}
