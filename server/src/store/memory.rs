//! An in-memory [`Store`] for tests of everything above storage.

use super::{Batch, Direct, Entry, Op, Store, StoreError, WriteTxn};
use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::Mutex;

/// A store that lives and dies with the process.
#[derive(Debug, Default)]
pub struct MemoryStore {
    // A plain mutex: every operation is short and never awaits.
    map: Mutex<BTreeMap<Vec<u8>, Vec<u8>>>,
}

impl MemoryStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Store for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(self.map.lock().expect("poisoned").get(key).cloned())
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let map = self.map.lock().expect("poisoned");
        Ok(map
            .range(start.to_vec()..end.to_vec())
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn range_rev(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        let map = self.map.lock().expect("poisoned");
        Ok(map
            .range(start.to_vec()..end.to_vec())
            .rev()
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let mut map = self.map.lock().expect("poisoned");
        for op in batch.ops {
            match op {
                Op::Put(k, v) => map.insert(k, v),
                Op::Delete(k) => map.remove(&k),
            };
        }
        Ok(())
    }

    fn flush(&self) -> Result<(), StoreError> {
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
        0
    }
}
