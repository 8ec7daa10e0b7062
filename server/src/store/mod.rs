//! Durable key-value storage behind one small trait.
//!
//! The catalog above encodes every object under a typed key (see [`keys`]) and hands the store a
//! [`Batch`] per logical change: the data, the environment's change-log entry, the version
//! history and the audit event together. [`Store::commit`] applies a batch atomically (all or
//! nothing, also across a crash) and returns only once it is durable, so an acknowledged write
//! survives `kill -9` and power loss alike.
//!
//! Several replicas may share one store ([`postgres`]): then every commit also appends its batch
//! to a log with a global sequence, under one global writer lock, and [`Store::begin`] hands a
//! writer the batches other replicas committed since it last looked, so it validates against
//! the current state. The embedded stores have one writer and an empty log.
//!
//! - [`sled_store`]: the default, embedded sled in the data directory.
//! - [`memory`]: a map in memory, for tests that do not exercise durability.
//! - [`postgres`]: PostgreSQL, shared by any number of replicas.
//! - [`codec`]: the byte encoding of a batch in that log.

pub mod codec;
pub mod fleet;
pub mod keys;
pub mod memory;
pub mod postgres;
pub mod sled_store;

use std::sync::Arc;

/// A storage failure. Surfaces as gRPC `INTERNAL` (callers cannot fix it by retrying with other
/// input), except [`StoreError::Unavailable`], which is `UNAVAILABLE`: retry later.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The database cannot be reached now (down, restarting, connection lost). Nothing was
    /// applied in memory; the write may be retried.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// The database answered with an error other than a lost connection.
    #[error("postgres: {0}")]
    Postgres(String),
    /// This replica stopped following the shared log for longer than the log keeps batches
    /// (`--store-log-retention-secs`): the batches it has not applied are gone, so it cannot
    /// catch up. `flagwire serve` then stops; started again, it loads the database afresh.
    #[error(
        "this replica fell behind the store's log: it applied batches through {applied}, but \
         batches through {trimmed} have been trimmed (--store-log-retention-secs); it stops, and \
         loads the database afresh when started again"
    )]
    Behind {
        /// The last batch this replica applied.
        applied: u64,
        /// The last batch trimmed from the log.
        trimmed: u64,
    },
    /// A leader-only write from a replica that is no longer the leader (its token is stale).
    #[error("this replica is no longer the leader (token {0} is stale)")]
    Fenced(u64),
    /// The database's schema is newer than this binary knows, or otherwise unusable.
    #[error("{0}")]
    Schema(String),
    /// The underlying sled database failed.
    #[error("sled: {0}")]
    Sled(#[from] sled::Error),
    /// The file system failed (open, fsync).
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
    /// A stored value could not be decoded: the data directory is damaged or foreign.
    #[error("corrupt value under {key}: {source}")]
    Decode {
        /// The key whose value failed to decode.
        key: String,
        /// The decoder's complaint.
        source: prost::DecodeError,
    },
}

/// One write in a [`Batch`].
#[derive(Debug, Clone)]
pub enum Op {
    /// Set `key` to `value`.
    Put(Vec<u8>, Vec<u8>),
    /// Remove `key` (no-op when absent).
    Delete(Vec<u8>),
}

/// Writes applied together by [`Store::commit`].
#[derive(Debug, Default, Clone)]
pub struct Batch {
    /// In order; a later op on the same key wins.
    pub ops: Vec<Op>,
}

impl Batch {
    /// Adds a put.
    pub fn put(&mut self, key: Vec<u8>, value: Vec<u8>) {
        self.ops.push(Op::Put(key, value));
    }
    /// Adds a delete.
    pub fn delete(&mut self, key: Vec<u8>) {
        self.ops.push(Op::Delete(key));
    }
}

/// A key and its value, as scans return them.
pub type Entry = (Vec<u8>, Vec<u8>);

/// A committed batch and its place in the global log.
pub type Logged = (u64, Batch);

/// A write in progress, holding the store's global writer lock until it is committed or
/// dropped (dropping rolls back and releases the lock).
pub trait WriteTxn: Send {
    /// The batches committed by others after the sequence number `begin` was given, in order.
    fn take_pending(&mut self) -> Vec<Logged>;
    /// The sequence number of the last committed batch when the lock was taken.
    fn head(&self) -> u64;
    /// Commits `batch` atomically and durably, returning its sequence number (0 for stores
    /// without a log).
    fn commit(self: Box<Self>, batch: Batch) -> Result<u64, StoreError>;
}

/// The storage contract. Reads see every committed batch; a batch is never seen in part.
pub trait Store: Send + Sync + 'static {
    /// The value under `key`.
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError>;
    /// Every entry whose key is in `[start, end)`, in key order, at most `limit` of them.
    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// Like [`Store::range`] but from the end backwards.
    fn range_rev(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError>;
    /// Applies `batch` atomically; returns once it is durable on disk.
    fn commit(&self, batch: Batch) -> Result<(), StoreError>;
    /// Makes everything committed durable (a no-op for stores whose commit already is).
    fn flush(&self) -> Result<(), StoreError>;
    /// Bytes the store occupies on disk (0 in memory).
    fn size_on_disk(&self) -> u64;
    /// Takes the global writer lock and returns the batches committed after `after`. With
    /// `fence` (a write of a leader-only task, carrying the leadership token it runs under) the
    /// write is refused with [`StoreError::Fenced`] unless that token is still the current one.
    fn begin(
        self: Arc<Self>,
        after: u64,
        fence: Option<u64>,
    ) -> Result<Box<dyn WriteTxn>, StoreError>;
    /// This replica's leadership: `Some(token)` while it leads, `None` while another does;
    /// `None` (the method's, not the channel's) for embedded stores, whose one process always
    /// leads.
    fn leadership(&self) -> Option<tokio::sync::watch::Receiver<Option<u64>>> {
        None
    }
    /// Whether other processes may commit to this store (then the catalog tails its log).
    fn shared(&self) -> bool {
        false
    }
    /// Batches committed after `after`, in order, at most `limit` (without taking the lock:
    /// the lock orders commits, so no earlier batch can appear after a later one is seen).
    fn batches_after(&self, _after: u64, _limit: usize) -> Result<Vec<Logged>, StoreError> {
        Ok(Vec::new())
    }
    /// Woken after another replica may have committed (a notification); `None` when the store
    /// has no other writers.
    fn commits(&self) -> Option<Arc<tokio::sync::Notify>> {
        None
    }
    /// The sequence number of the last logged batch, as of the store's last probe (0 without
    /// a log).
    fn log_head(&self) -> u64 {
        0
    }
    /// Publishes this replica's SDK instances (`mine`, as replica `replica`) to the other
    /// replicas and returns theirs, forgetting replicas silent for longer than `retention`;
    /// `None` for stores no other process shares (the registry stays local).
    fn exchange_instances(
        &self,
        _replica: &str,
        _mine: fleet::Published,
        _retention: std::time::Duration,
    ) -> Option<Result<Vec<fleet::SharedInstance>, StoreError>> {
        None
    }
    /// Whether the store answered its last request or probe (a `/healthz` and gRPC health
    /// input); embedded stores always do.
    fn healthy(&self) -> bool {
        true
    }
    /// Why this replica can no longer follow the store, once it cannot ([`StoreError::Behind`]);
    /// [`Store::healthy`] is then false for good, and `flagwire serve` stops. `None` while it
    /// can, and always for embedded stores.
    fn stalled(&self) -> Option<String> {
        None
    }
}

/// The [`WriteTxn`] of a store with one writer: no lock, no log; the catalog's own writer mutex
/// serialises writers.
pub struct Direct(pub Arc<dyn Store>);

impl WriteTxn for Direct {
    fn take_pending(&mut self) -> Vec<Logged> {
        Vec::new()
    }
    fn head(&self) -> u64 {
        0
    }
    fn commit(self: Box<Self>, batch: Batch) -> Result<u64, StoreError> {
        self.0.commit(batch)?;
        Ok(0)
    }
}

/// Every entry whose key starts with `prefix`, in key order.
pub fn scan_prefix(store: &dyn Store, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
    store.range(prefix, &keys::prefix_end(prefix), usize::MAX)
}
