//! Durable key-value storage behind one small trait.
//!
//! The catalog above encodes every object under a typed key (see [`keys`]) and hands the store a
//! [`Batch`] per logical change: the data, the environment's change-log entry, the version
//! history and the audit event together. [`Store::commit`] applies a batch atomically (all or
//! nothing, also across a crash) and returns only once it is durable, so an acknowledged write
//! survives `kill -9` and power loss alike.
//!
//! - [`sled_store`]: the default, embedded sled in the data directory.
//! - [`memory`]: a map in memory, for tests that do not exercise durability.

pub mod keys;
pub mod memory;
pub mod sled_store;

/// A storage failure. Always surfaces as gRPC `INTERNAL`: callers cannot fix it by retrying
/// with other input.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
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
}

/// Every entry whose key starts with `prefix`, in key order.
pub fn scan_prefix(store: &dyn Store, prefix: &[u8]) -> Result<Vec<Entry>, StoreError> {
    store.range(prefix, &keys::prefix_end(prefix), usize::MAX)
}
