//! Reading the store into the in-memory [`State`]: at start (every entry of the loaded
//! prefixes) and, on a shared store, after other replicas commit (every op of their logged
//! batches, in log order). One decoding for both, so a replica that follows the log ends in the
//! state it would load after a restart.
//!
//! The follower wakes on the store's notification of a commit and at least every second
//! (notifications sent while the listener was reconnecting are lost), applies what was committed
//! since its last batch under the writer lock, and publishes the change-log entries to the hub
//! in revision order, exactly as a local write does.

use super::{Catalog, State, decode, tokens::StoredToken};
use crate::error::{Error, Result};
use crate::store::{Logged, Op, StoreError, keys};
use flagwire_proto::v1::{
    Change, Environment, Execution, Flag, MetricDefinition, Ramp, Release, RollbackPlan,
    ScheduledChange, Segment,
};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;

/// The prefixes loaded into [`State`] at start, in load order. History (`v/`), the change log
/// (`c/`), audit (`a/`) and evidence windows (`w/`) stay in the store.
pub(super) const LOADED: &[&[u8]] = &[
    b"e/", b"f/", b"s/", b"t/", b"l/", b"p/", b"x/", b"q/", b"m/", b"d/",
];

/// Batches read from the log per round trip.
const PAGE: usize = 1000;
/// How often the follower polls when it hears no notification.
const POLL: Duration = Duration::from_secs(1);

/// The part of `key` after its two-byte prefix, as text.
fn rest(key: &[u8]) -> String {
    String::from_utf8_lossy(key.get(2..).unwrap_or_default()).into_owned()
}

/// `a/b` split at its `/`.
fn pair(key: &[u8]) -> (String, String) {
    let rest = rest(key);
    match rest.split_once('/') {
        Some((a, b)) => (a.to_owned(), b.to_owned()),
        None => (rest, String::new()),
    }
}

/// Applies a stored `key = value` to `state`; returns the change-log entry it is, if any, with
/// its environment.
pub(super) fn put(
    state: &mut State,
    key: &[u8],
    value: &[u8],
) -> Result<Option<(String, Change)>, StoreError> {
    match key.get(..2).unwrap_or_default() {
        b"e/" => {
            let env: Environment = decode(key, value)?;
            state.envs.insert(env.key.clone(), env);
        }
        b"f/" => {
            let flag: Flag = decode(key, value)?;
            state.flags.insert(flag.key.clone(), flag);
        }
        b"s/" => {
            let s: Segment = decode(key, value)?;
            state
                .segments
                .insert((s.environment.clone(), s.key.clone()), s);
        }
        b"t/" => {
            let token: StoredToken = decode(key, value)?;
            let id = token
                .token
                .as_ref()
                .map(|t| t.id.clone())
                .unwrap_or_default();
            state.tokens.insert(id, token);
        }
        b"l/" => {
            let r: Release = decode(key, value)?;
            state.releases.insert(r.id.clone(), r);
        }
        b"p/" => {
            let p: RollbackPlan = decode(key, value)?;
            state.plans.insert(p.id.clone(), p);
        }
        b"x/" => {
            let x: Execution = decode(key, value)?;
            state.executions.insert(x.id.clone(), x);
        }
        b"q/" => {
            let q: ScheduledChange = decode(key, value)?;
            state.scheduled.insert(q.id.clone(), q);
        }
        b"m/" => {
            let m: Ramp = decode(key, value)?;
            state.ramps.insert(m.id.clone(), m);
        }
        b"d/" => {
            let m: MetricDefinition = decode(key, value)?;
            state
                .metrics
                .insert((m.environment.clone(), m.name.clone()), m);
        }
        b"a/" => {
            state.next_audit_id = state.next_audit_id.max(keys::trailing_u64(key) + 1);
        }
        b"c/" if key.len() > 11 => {
            let env = String::from_utf8_lossy(&key[2..key.len() - 9]).into_owned();
            return Ok(Some((env, decode(key, value)?)));
        }
        // History, evidence windows, old rollout records: read from the store when needed.
        _ => {}
    }
    Ok(None)
}

/// Applies the deletion of `key` to `state`.
pub(super) fn delete(state: &mut State, key: &[u8]) {
    match key.get(..2).unwrap_or_default() {
        b"e/" => drop(state.envs.remove(&rest(key))),
        b"f/" => drop(state.flags.remove(&rest(key))),
        b"s/" => drop(state.segments.remove(&pair(key))),
        b"t/" => drop(state.tokens.remove(&rest(key))),
        b"l/" => drop(state.releases.remove(&rest(key))),
        b"p/" => drop(state.plans.remove(&rest(key))),
        b"x/" => drop(state.executions.remove(&rest(key))),
        b"q/" => drop(state.scheduled.remove(&rest(key))),
        b"m/" => drop(state.ramps.remove(&rest(key))),
        b"d/" => drop(state.metrics.remove(&pair(key))),
        _ => {}
    }
}

impl Catalog {
    /// Applies batches other replicas committed (the caller holds the writer lock and passes
    /// its `applied` sequence), then publishes their changes in revision order.
    pub(super) fn apply_logged(&self, applied: &mut u64, batches: Vec<Logged>) -> Result<()> {
        for (seq, batch) in batches {
            if seq <= *applied {
                continue;
            }
            let mut published: BTreeMap<String, Vec<Arc<Change>>> = BTreeMap::new();
            {
                let mut state = self.state.write().expect("catalog state poisoned");
                for op in &batch.ops {
                    match op {
                        Op::Put(k, v) => {
                            if let Some((env, change)) = put(&mut state, k, v)? {
                                published.entry(env).or_default().push(Arc::new(change));
                            }
                        }
                        Op::Delete(k) => delete(&mut state, k),
                    }
                }
            }
            for (env, mut changes) in published {
                changes.sort_by_key(|c| c.revision);
                self.hub.publish(&env, changes);
            }
            *applied = seq;
            self.applied_seen
                .store(seq, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Applies everything committed to the store since the last batch this replica applied.
    pub async fn catch_up(&self) -> Result<()> {
        let mut applied = self.writer.lock().await;
        loop {
            let store = Arc::clone(&self.store);
            let after = *applied;
            let batches = tokio::task::spawn_blocking(move || store.batches_after(after, PAGE))
                .await
                .map_err(|e| Error::Unavailable(format!("log read task failed: {e}")))??;
            let full = batches.len() == PAGE;
            self.apply_logged(&mut applied, batches)?;
            if !full {
                return Ok(());
            }
        }
    }

    /// The sequence number of the last logged batch this replica has applied (0 on stores
    /// without a log).
    pub async fn applied(&self) -> u64 {
        *self.writer.lock().await
    }

    /// Follows the other replicas' commits until `stop` resolves: on each notification and at
    /// least every second. Returns at once on a store without other writers, and when this
    /// replica has fallen behind the trimmed log (it cannot follow any more).
    pub async fn follow(self: Arc<Self>, stop: impl Future<Output = ()>) {
        let Some(commits) = self.store.commits() else {
            return;
        };
        tokio::pin!(stop);
        loop {
            tokio::select! {
                () = &mut stop => return,
                () = commits.notified() => {}
                () = tokio::time::sleep(POLL) => {}
            }
            match self.catch_up().await {
                Ok(()) => {}
                // Nothing more to follow: the store has logged why, and `flagwire serve` stops
                // this replica (a restart loads the database afresh).
                Err(Error::Store(StoreError::Behind { .. })) => return,
                Err(e) => tracing::warn!(error = %e, "could not read other replicas' commits"),
            }
        }
    }
}
