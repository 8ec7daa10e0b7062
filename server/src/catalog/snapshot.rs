//! A consistent copy of the whole store, for backups.

use super::Catalog;
use crate::error::{Error, Result};
use crate::store::{Entry, keys};
use std::collections::BTreeMap;
use std::sync::Arc;

/// Every entry of the store at one instant between catalog writes.
#[derive(Debug, Clone, Default)]
pub struct StoreSnapshot {
    /// Each environment's revision at that instant.
    pub revisions: BTreeMap<String, u64>,
    /// Every key and value, in key order.
    pub entries: Vec<Entry>,
}

impl Catalog {
    /// Copies every entry of the store while holding the writer lock, so no catalog write
    /// (flags, segments, environments, tokens, audit, history, change log, rollout records)
    /// commits during the copy: the snapshot is exactly the state after one write and before
    /// the next. The copy is made in memory and the lock released before anything is sent, so
    /// a slow reader does not hold up writers.
    ///
    /// Rollout evidence windows are stored beside the catalog without this lock; each window
    /// is committed atomically, so the copy holds a window whole or not at all.
    pub async fn store_snapshot(&self) -> Result<StoreSnapshot> {
        let _writer = self.writer.lock().await;
        let revisions = self
            .read()
            .envs
            .values()
            .map(|e| (e.key.clone(), e.revision))
            .collect();
        let store = Arc::clone(&self.store);
        // Keys are ASCII (see `keys`), so the end of the empty prefix bounds them all.
        let entries = tokio::task::spawn_blocking(move || {
            store.range(b"", &keys::prefix_end(b""), usize::MAX)
        })
        .await
        .map_err(|e| Error::Unavailable(format!("snapshot task failed: {e}")))??;
        Ok(StoreSnapshot { revisions, entries })
    }
}
