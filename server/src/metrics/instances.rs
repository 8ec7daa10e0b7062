//! The SDK-instance registry: who is connected to which environment, and which revision each
//! has applied, so a rollout can tell when every connected SDK runs its latest change.
//!
//! Instances are keyed by (environment, instance id). Watch streams open and close
//! [`Connection`]s (a guard the stream holds: dropping the stream, however it ends, marks the
//! instance disconnected once its last stream is gone); reports move the applied revision,
//! which only ever goes forward, and carry the report sequence numbers used to drop duplicates.
//! Instances neither connected nor heard from within the retention are forgotten.

use super::instance_entry::Entry;
use super::report::ValidReport;
use crate::clock::Clock;
use crate::store::fleet::{Published, SharedInstance};
use flagwire_proto::v1::{Acknowledgement, Instance};
use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

/// Report sequence numbers remembered per instance (beyond the watermark pruning).
const MAX_SEQUENCES: usize = 4096;

/// How often the registry looks for instances to forget.
const PRUNE_EVERY: Duration = Duration::from_secs(60);

type Key = (String, String);

#[derive(Debug, Default)]
struct Inner {
    instances: BTreeMap<Key, Entry>,
    last_prune: Option<SystemTime>,
    // Set once the registry is shared with other replicas (see `metrics::fleet`); only then
    // are `dirty` and `forgotten` kept, for the next exchange.
    sharing: bool,
    dirty: BTreeSet<Key>,
    forgotten: Vec<Key>,
    // The next exchange publishes everything (the first one, and any after a failure).
    republish: bool,
    // Every other live replica's instances, merged per key; empty unless shared.
    remote: BTreeMap<Key, Entry>,
}

impl Inner {
    fn touch(&mut self, key: &Key) {
        if self.sharing && !self.dirty.contains(key) {
            self.dirty.insert(key.clone());
        }
    }

    /// Every instance this replica or another knows, one view per key (unordered).
    fn merged(&self) -> impl Iterator<Item = (&Key, Cow<'_, Entry>)> {
        let local = self
            .instances
            .iter()
            .map(|(k, e)| match self.remote.get(k) {
                Some(r) => (k, Cow::Owned(e.merge(r))),
                None => (k, Cow::Borrowed(e)),
            });
        let remote = self
            .remote
            .iter()
            .filter(|(k, _)| !self.instances.contains_key(*k))
            .map(|(k, e)| (k, Cow::Borrowed(e)));
        local.chain(remote)
    }
}

/// What [`Registry::count_applied`] answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AppliedCount {
    /// Connected instances of the environment.
    pub connected: u32,
    /// Of those, how many have applied at least the revision.
    pub applied: u32,
    /// The latest of the moments those reached it.
    pub last_applied: Option<SystemTime>,
}

/// Instances of one environment, as `/metrics` shows them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct EnvInstances {
    /// Instances seen within the retention or connected now.
    pub known: u32,
    /// Of those, connected now (an open Watch stream).
    pub connected: u32,
}

/// Whether a report's sequence number was new.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sequence {
    /// First time seen (now remembered).
    New,
    /// Seen before: the report is a duplicate.
    Duplicate,
}

/// The registry. Shared as `Arc<Registry>` by Watch (connections) and the metrics service.
#[derive(Debug)]
pub struct Registry {
    // A std mutex: held for one map update or one scan, never across an await.
    inner: Mutex<Inner>,
    retention: Duration,
    watermark: Duration,
    // Stamps disconnections, which happen in `Drop` where no caller can pass the time.
    clock: Arc<dyn Clock>,
}

impl Registry {
    /// An empty registry forgetting idle instances after `retention` and report sequences once
    /// their window is older than `watermark` (such reports are dropped as late anyway).
    pub fn new(retention: Duration, watermark: Duration, clock: Arc<dyn Clock>) -> Self {
        Self {
            inner: Mutex::new(Inner::default()),
            retention,
            watermark,
            clock,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("registry poisoned")
    }

    fn prune(&self, inner: &mut Inner, now: SystemTime) {
        if inner
            .last_prune
            .is_some_and(|t| now.duration_since(t).unwrap_or_default() < PRUNE_EVERY)
        {
            return;
        }
        inner.last_prune = Some(now);
        let cutoff = now
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let Inner {
            instances,
            sharing,
            forgotten,
            ..
        } = inner;
        instances.retain(|k, e| {
            let keep = e.streams > 0 || e.last_seen >= cutoff;
            if !keep && *sharing {
                forgotten.push(k.clone());
            }
            keep
        });
    }

    /// What changed since the last call, for publishing to the other replicas; from the first
    /// call on, the registry keeps track (and publishes everything on the first).
    pub fn take_changes(&self) -> Published {
        let mut inner = self.lock();
        if !inner.sharing {
            inner.sharing = true;
            inner.republish = true;
        }
        let everything = std::mem::take(&mut inner.republish);
        let dirty = std::mem::take(&mut inner.dirty);
        let forgotten = std::mem::take(&mut inner.forgotten);
        let changed = if everything {
            inner
                .instances
                .iter()
                .map(|((env, id), e)| e.to_shared(env, id))
                .collect()
        } else {
            dirty
                .iter()
                .filter_map(|k| inner.instances.get(k).map(|e| e.to_shared(&k.0, &k.1)))
                .collect()
        };
        Published {
            changed,
            forgotten: if everything { Vec::new() } else { forgotten },
            everything,
        }
    }

    /// An exchange failed: publish everything next time.
    pub fn republish(&self) {
        self.lock().republish = true;
    }

    /// Replaces the other replicas' instances with `others` (several replicas may know one).
    pub fn set_remote(&self, others: Vec<SharedInstance>) {
        let mut remote: BTreeMap<Key, Entry> = BTreeMap::new();
        for i in others {
            let key = (i.environment.clone(), i.instance_id.clone());
            let entry = Entry::from_shared(i);
            match remote.get_mut(&key) {
                Some(e) => *e = e.merge(&entry),
                None => {
                    remote.insert(key, entry);
                }
            }
        }
        self.lock().remote = remote;
    }

    /// Registers an open Watch stream of instance `id` in `env`. The instance counts as
    /// connected until the returned guard (and every other stream's) is dropped.
    pub fn connect(
        self: &Arc<Self>,
        env: &str,
        id: &str,
        sdk_name: &str,
        sdk_version: &str,
        now: SystemTime,
    ) -> Connection {
        let key = (env.to_owned(), id.to_owned());
        let mut inner = self.lock();
        self.prune(&mut inner, now);
        let entry = inner
            .instances
            .entry(key.clone())
            .or_insert_with(|| Entry::new(now));
        entry.identify(sdk_name, sdk_version);
        entry.last_seen = now;
        if entry.streams == 0 {
            entry.connected_since = Some(now);
        }
        entry.streams += 1;
        inner.touch(&key);
        Connection {
            registry: Arc::clone(self),
            key,
        }
    }

    fn disconnect(&self, key: &(String, String), now: SystemTime) {
        let mut inner = self.lock();
        if let Some(entry) = inner.instances.get_mut(key) {
            entry.streams = entry.streams.saturating_sub(1);
            entry.last_seen = now;
            if entry.streams == 0 {
                entry.connected_since = None;
            }
            inner.touch(key);
        }
    }

    /// Records a valid report: last seen, SDK identity and applied revision (always, even for
    /// a duplicate or late report: they still show the instance is alive), and the sequence
    /// number, answering whether it is new. `remember_sequence` is false for a report dropped
    /// as late, whose sequence need not be remembered.
    pub fn report(&self, r: &ValidReport, remember_sequence: bool, now: SystemTime) -> Sequence {
        let key = (r.environment.clone(), r.instance_id.clone());
        let mut inner = self.lock();
        self.prune(&mut inner, now);
        inner.touch(&key);
        let entry = inner
            .instances
            .entry(key)
            .or_insert_with(|| Entry::new(now));
        entry.identify(&r.sdk_name, &r.sdk_version);
        entry.last_seen = now;
        entry.apply(r.applied_revision, now);
        if entry.sequences.contains_key(&r.sequence) {
            return Sequence::Duplicate;
        }
        if remember_sequence {
            let cutoff = now
                .checked_sub(self.watermark)
                .unwrap_or(SystemTime::UNIX_EPOCH);
            // SDK sequences grow with time, so the expired ones are the smallest: drop them from
            // the front instead of scanning every remembered sequence on every report. Any
            // that arrive out of order linger until MAX_SEQUENCES, which only dedupes longer.
            while entry
                .sequences
                .first_key_value()
                .is_some_and(|(_, until)| *until < cutoff)
            {
                entry.sequences.pop_first();
            }
            if entry.sequences.len() >= MAX_SEQUENCES {
                entry.sequences.pop_first();
            }
            let until = r.window.map_or(now, |(_, end)| end);
            entry.sequences.insert(r.sequence, until);
        }
        Sequence::New
    }

    /// Instances of `env` (every environment when `None`) seen within the retention or
    /// connected now, ordered by environment then id.
    pub fn list(&self, env: Option<&str>, now: SystemTime) -> Vec<Instance> {
        let cutoff = now
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let inner = self.lock();
        let mut list: Vec<Instance> = inner
            .merged()
            .filter(|((e, _), entry)| {
                env.is_none_or(|env| env == e) && (entry.streams > 0 || entry.last_seen >= cutoff)
            })
            .map(|((e, id), entry)| entry.to_proto(e, id))
            .collect();
        if !inner.remote.is_empty() {
            list.sort_by(|a, b| {
                (&a.environment, &a.instance_id).cmp(&(&b.environment, &b.instance_id))
            });
        }
        list
    }

    /// Known and connected instances per environment (environments without any are absent).
    pub fn counts(&self, now: SystemTime) -> BTreeMap<String, EnvInstances> {
        let cutoff = now
            .checked_sub(self.retention)
            .unwrap_or(SystemTime::UNIX_EPOCH);
        let mut counts: BTreeMap<String, EnvInstances> = BTreeMap::new();
        for ((env, _), entry) in self.lock().merged() {
            if entry.streams == 0 && entry.last_seen < cutoff {
                continue;
            }
            // One allocation per environment, not per instance.
            let c = match counts.get_mut(env.as_str()) {
                Some(c) => c,
                None => counts.entry(env.clone()).or_default(),
            };
            c.known += 1;
            c.connected += u32::from(entry.streams > 0);
        }
        counts
    }

    /// `ack` (an environment and a revision) with its counts filled in: connected instances,
    /// how many have applied the revision, and when the last of them did.
    pub fn acknowledge(&self, ack: &Acknowledgement) -> Acknowledgement {
        let count = self.count_applied(&ack.environment, ack.revision);
        Acknowledgement {
            connected: count.connected,
            acknowledged: count.applied,
            last_acknowledged_time: count.last_applied.map(Into::into),
            ..ack.clone()
        }
    }

    /// How many instances of `env` are connected, how many of those have applied `revision`
    /// or later, and when the last of them got there.
    pub fn count_applied(&self, env: &str, revision: u64) -> AppliedCount {
        let inner = self.lock();
        let mut count = AppliedCount {
            connected: 0,
            applied: 0,
            last_applied: None,
        };
        let connected = inner
            .merged()
            .filter(|((e, _), entry)| e == env && entry.streams > 0);
        for (_, entry) in connected {
            count.connected += 1;
            if let Some(at) = entry.reached(revision) {
                count.applied += 1;
                count.last_applied = count.last_applied.max(Some(at));
            }
        }
        count
    }
}

/// An open Watch stream of one instance; dropping it ends the connection.
#[derive(Debug)]
pub struct Connection {
    registry: Arc<Registry>,
    key: (String, String),
}

impl Drop for Connection {
    fn drop(&mut self) {
        self.registry
            .disconnect(&self.key, self.registry.clock.now());
    }
}

#[cfg(test)]
mod tests;
