//! The catalog: every environment, flag, segment and token, kept in memory for reads and in the
//! [`Store`] for durability, with one writer at a time.
//!
//! A write runs in three phases (see [`Catalog::write`]): build a [`Txn`] against the current
//! state while holding the writer lock, commit its batch to the store (durable when it returns),
//! then apply it to memory and publish its changes to the [`Hub`]. Readers never wait for the
//! store: they take a short read lock on the in-memory state. On a store shared by several
//! replicas the writer lock is also the store's global one, and a write first applies what the
//! others committed ([`follow`]), which also runs on its own after their notifications.
//!
//! - [`txn`]: the transaction builder (revisions, change log, audit, history).
//! - [`flags`], [`segments`], [`environments`], [`tokens`], [`audit`], [`metrics`]: operations
//!   by object;
//!   [`owners`]: which flags an active release or ramp owns, and the guard of other writes.
//! - [`follow`]: decoding stored entries into the state, at start and from the log;
//!   [`leader`]: which replica runs the timers, and the fencing of their writes.
//! - [`watch`]: snapshots and change-log reads for Watch; [`evaluation`]: snapshots for
//!   remote evaluation; [`snapshot`]: a consistent copy of the whole store for backups.

pub mod audit;
pub mod environments;
pub mod evaluation;
pub mod flags;
pub mod follow;
pub mod leader;
pub mod metrics;
pub mod owners;
pub mod segments;
pub mod snapshot;
pub mod tokens;
pub mod txn;
pub mod watch;

use crate::clock::{Clock, SystemClock};
use crate::error::{Error, Result};
use crate::hub::Hub;
use crate::store::{Store, StoreError, keys, scan_prefix};
use flagwire_proto::v1::{
    Environment, Execution, Flag, MetricDefinition, Ramp, Release, RollbackPlan, Rollout,
    ScheduledChange, Segment,
};
use prost::Message;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock, RwLockReadGuard};
use tokens::StoredToken;
pub use txn::Txn;

/// Who is writing and why, recorded in the audit log.
#[derive(Debug, Clone, Default)]
pub struct Meta {
    /// The token name.
    pub actor: String,
    /// The reason given, if any.
    pub reason: String,
}

/// The in-memory copy of everything stored except history, change log and audit.
#[derive(Debug, Default, Clone)]
pub struct State {
    /// Environments by key.
    pub envs: BTreeMap<String, Environment>,
    /// Current flags by key.
    pub flags: BTreeMap<String, Flag>,
    /// Segments by (environment, key).
    pub segments: BTreeMap<(String, String), Segment>,
    /// Tokens by id.
    pub tokens: BTreeMap<String, StoredToken>,
    /// Releases (and one-flag rollouts) by id, every state; their windows live in the store.
    pub releases: BTreeMap<String, Release>,
    /// Rollback plans by id.
    pub plans: BTreeMap<String, RollbackPlan>,
    /// Executions (plan runs and kills) by id.
    pub executions: BTreeMap<String, Execution>,
    /// Scheduled changes by id.
    pub scheduled: BTreeMap<String, ScheduledChange>,
    /// Ramps by id.
    pub ramps: BTreeMap<String, Ramp>,
    /// Metric definitions by (environment, name).
    pub metrics: BTreeMap<(String, String), MetricDefinition>,
    /// Id the next audit event gets.
    pub next_audit_id: u64,
}

impl flagwire_core::validate::Catalog for State {
    fn environment_exists(&self, environment: &str) -> bool {
        self.envs.contains_key(environment)
    }
    fn segment_exists(&self, environment: &str, key: &str) -> bool {
        self.segments
            .contains_key(&(environment.to_owned(), key.to_owned()))
    }
    fn flag(&self, key: &str) -> Option<&Flag> {
        self.flags.get(key)
    }
}

/// Tunables of the catalog.
#[derive(Clone)]
pub struct CatalogOptions {
    /// Change-log entries kept per environment for resume.
    pub change_log_retention: u64,
    /// Changes buffered per environment for each watcher before it must resynchronise.
    pub hub_capacity: usize,
    /// The time every write is stamped with, and that everything acting on time in the server
    /// goes by (a [`ManualClock`](crate::clock::ManualClock) in tests).
    pub clock: Arc<dyn Clock>,
}

impl Default for CatalogOptions {
    fn default() -> Self {
        Self {
            change_log_retention: 10_000,
            hub_capacity: 1024,
            clock: Arc::new(SystemClock),
        }
    }
}

/// The catalog. Shared by every service as `Arc<Catalog>`.
pub struct Catalog {
    store: Arc<dyn Store>,
    state: RwLock<State>,
    // Serialises writers: revisions must be assigned in commit order, without gaps. A tokio
    // mutex because it is held across the store commit. It guards the sequence number of the
    // last logged batch applied to `state` (0 on stores without a log).
    writer: tokio::sync::Mutex<u64>,
    hub: Hub,
    options: CatalogOptions,
    // Evaluation snapshots by environment (see `evaluation`); a std mutex held only to look up
    // or rebuild one.
    engines: std::sync::Mutex<std::collections::HashMap<String, Arc<flagwire_core::Snapshot>>>,
    // The writer's `applied`, readable without its lock (for `/metrics`).
    applied_seen: std::sync::atomic::AtomicU64,
    // Time in the store per write (lock, catch-up, commit), for `/metrics`.
    commit_latency: prometheus_client::metrics::histogram::Histogram,
}

/// Rewrites the rollout records of an older version (`r/`) as the one-flag releases they are,
/// in one batch (returned to be committed), so an upgraded server keeps every rollout with its
/// id and evidence.
fn migrate_rollouts(store: &dyn Store, state: &mut State) -> Result<crate::store::Batch> {
    let mut batch = crate::store::Batch::default();
    for (k, v) in scan_prefix(store, b"r/")? {
        let rollout: Rollout = decode(&k, &v)?;
        let release = flagwire_core::release::wire::from_rollout(&rollout);
        batch.put(keys::release(&release.id), release.encode_to_vec());
        batch.delete(k);
        state.releases.insert(release.id.clone(), release);
    }
    Ok(batch)
}

/// Decodes a stored message, naming its key when it is unreadable.
pub(crate) fn decode<M: Message + Default>(key: &[u8], value: &[u8]) -> Result<M, StoreError> {
    M::decode(value).map_err(|source| StoreError::Decode {
        key: String::from_utf8_lossy(key).into_owned(),
        source,
    })
}

impl Catalog {
    /// Loads the catalog from `store`. On a shared store the load holds the global writer lock,
    /// so the state read is exactly the one after the last logged batch, from which the
    /// follower continues.
    pub fn open(store: Arc<dyn Store>, options: CatalogOptions) -> Result<Self> {
        let mut state = State::default();
        let txn = Arc::clone(&store).begin(u64::MAX, None)?;
        for prefix in follow::LOADED {
            for (k, v) in scan_prefix(&*store, prefix)? {
                follow::put(&mut state, &k, &v)?;
            }
        }
        let last = store.range_rev(b"a/", &keys::prefix_end(b"a/"), 1)?;
        state.next_audit_id = last.first().map_or(1, |(k, _)| keys::trailing_u64(k) + 1);
        let migrated = migrate_rollouts(&*store, &mut state)?;
        let applied = if migrated.ops.is_empty() {
            txn.head()
        } else {
            txn.commit(migrated)?
        };
        Ok(Self {
            store,
            state: RwLock::new(state),
            writer: tokio::sync::Mutex::new(applied),
            hub: Hub::new(options.hub_capacity),
            options,
            engines: Default::default(),
            applied_seen: applied.into(),
            commit_latency: prometheus_client::metrics::histogram::Histogram::new(
                prometheus_client::metrics::histogram::exponential_buckets(0.0005, 2.0, 14),
            ),
        })
    }

    /// A read view of the current state. Hold it briefly and never across an await.
    pub fn read(&self) -> RwLockReadGuard<'_, State> {
        self.state.read().expect("catalog state poisoned")
    }

    /// The store underneath (for reads of history, change log and audit).
    pub fn store(&self) -> &dyn Store {
        &*self.store
    }

    /// The store, shared (for data kept beside the catalog, like rollout windows).
    pub fn shared_store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    /// The clock writes are stamped with and the server's timers go by.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.options.clock
    }

    /// The change fan-out.
    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// Runs one write: `build` checks the request against the current state and records its
    /// effects in a [`Txn`]; the batch is committed durably, then applied to memory and
    /// published. If `build` fails nothing is written.
    pub async fn write<T>(
        &self,
        meta: &Meta,
        build: impl FnOnce(&State, &mut Txn) -> Result<T>,
    ) -> Result<T> {
        let mut applied = self.writer.lock().await;
        let started = std::time::Instant::now();
        let fence = leader::fence();
        let lock = if self.store.shared() {
            let store = Arc::clone(&self.store);
            let after = *applied;
            tokio::task::spawn_blocking(move || store.begin(after, fence))
                .await
                .map_err(|e| Error::Unavailable(format!("begin task failed: {e}")))??
        } else {
            // Nothing blocks: no lock to take and no log to read.
            Arc::clone(&self.store).begin(*applied, fence)?
        };
        let mut lock = lock;
        // Validate against what other replicas committed too: stale versions are refused here
        // exactly as on one replica.
        let head = lock.head();
        self.apply_logged(&mut applied, lock.take_pending())?;
        *applied = (*applied).max(head);
        let mut txn = Txn::new(
            meta,
            self.options.clock.now(),
            self.options.change_log_retention,
        );
        let value = {
            let state = self.read();
            let value = build(&state, &mut txn)?;
            txn.finish(&state);
            value
        };
        let batch = txn.take_batch();
        let seq = tokio::task::spawn_blocking(move || lock.commit(batch))
            .await
            .map_err(|e| Error::Unavailable(format!("commit task failed: {e}")))??;
        *applied = (*applied).max(seq);
        self.commit_latency.observe(started.elapsed().as_secs_f64());
        self.applied_seen
            .store(*applied, std::sync::atomic::Ordering::Relaxed);
        let published = {
            let mut state = self.state.write().expect("catalog state poisoned");
            txn.apply(&mut state)
        };
        for (env, changes) in published {
            self.hub.publish(&env, changes);
        }
        Ok(value)
    }

    /// The store-time histogram of catalog writes.
    pub fn commit_latency(&self) -> &prometheus_client::metrics::histogram::Histogram {
        &self.commit_latency
    }

    /// Logged batches committed (as of the store's last probe) that this replica has not
    /// applied yet; 0 on stores without a log.
    pub fn log_lag(&self) -> u64 {
        let applied = self.applied_seen.load(std::sync::atomic::Ordering::Relaxed);
        self.store.log_head().saturating_sub(applied)
    }

    /// Makes everything durable (shutdown).
    pub fn flush(&self) -> Result<()> {
        Ok(self.store.flush()?)
    }
}
