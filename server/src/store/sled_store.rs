//! The default [`Store`]: embedded sled in `<data-dir>/sled`.
//!
//! Durability: sled's `flush()` writes its log with `sync_file_range`, which neither flushes the
//! drive's cache nor file metadata. After every commit we therefore also `fdatasync` sled's log
//! file ourselves. Atomicity: a batch goes through `apply_batch`, which sled recovers all or
//! nothing. The kill -9 test in `tests/durability.rs` checks both claims on the real binary.

use super::{Batch, Direct, Entry, Op, Store, StoreError, WriteTxn};
use std::fs::File;
use std::path::Path;
use std::sync::Arc;

/// sled in a directory.
pub struct SledStore {
    db: sled::Db,
    // sled's log file, kept open for fdatasync.
    log: File,
}

impl SledStore {
    /// Opens (creating if needed) the store under `dir`.
    pub fn open(dir: &Path) -> Result<Self, StoreError> {
        let path = dir.join("sled");
        let db = sled::Config::new().path(&path).open()?;
        let log = File::open(path.join("db"))?;
        Ok(Self { db, log })
    }
}

impl Store for SledStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.db.get(key)?.map(|v| v.to_vec()))
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.db
            .range(start..end)
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
            .collect()
    }

    fn range_rev(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.db
            .range(start..end)
            .rev()
            .take(limit)
            .map(|r| r.map(|(k, v)| (k.to_vec(), v.to_vec())).map_err(Into::into))
            .collect()
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut b = sled::Batch::default();
        for op in batch.ops {
            match op {
                Op::Put(k, v) => b.insert(k, v),
                Op::Delete(k) => b.remove(k),
            }
        }
        self.db.apply_batch(b)?;
        self.flush()
    }

    fn flush(&self) -> Result<(), StoreError> {
        self.db.flush()?;
        self.log.sync_data()?;
        Ok(())
    }

    fn begin(
        self: Arc<Self>,
        _after: u64,
        _fence: Option<u64>,
    ) -> Result<Box<dyn WriteTxn>, StoreError> {
        Ok(Box::new(Direct(self)))
    }

    fn size_on_disk(&self) -> u64 {
        self.db.size_on_disk().unwrap_or(0)
    }
}
