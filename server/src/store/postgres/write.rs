//! A write holding the global writer lock: an open transaction on a pooled connection.

use super::log::write_batch;
use super::{PgStore, block_on, pg_error};
use crate::store::{Batch, Logged, StoreError, WriteTxn};
use deadpool_postgres::Object;
use std::sync::Arc;

/// The transaction [`PgStore::begin`](crate::store::Store::begin) opened.
pub(super) struct PgWrite {
    store: Arc<PgStore>,
    // `None` once committed; dropped with `Some`, the transaction is rolled back.
    client: Option<Object>,
    head: u64,
    pending: Vec<Logged>,
}

impl PgWrite {
    pub(super) fn new(
        store: Arc<PgStore>,
        client: Object,
        head: u64,
        pending: Vec<Logged>,
    ) -> Self {
        Self {
            store,
            client: Some(client),
            head,
            pending,
        }
    }
}

impl WriteTxn for PgWrite {
    fn take_pending(&mut self) -> Vec<Logged> {
        std::mem::take(&mut self.pending)
    }

    fn head(&self) -> u64 {
        self.head
    }

    fn commit(mut self: Box<Self>, batch: Batch) -> Result<u64, StoreError> {
        let client = self.client.take().expect("a write commits once");
        block_on(self.store.handle(), &self.store.shared, async move {
            let written = async {
                let seq = write_batch(&client, &batch).await?;
                client.batch_execute("COMMIT").await.map_err(pg_error)?;
                Ok(seq)
            }
            .await;
            if written.is_err() {
                drop(Object::take(client));
            }
            written
        })
    }
}

impl Drop for PgWrite {
    fn drop(&mut self) {
        if let Some(client) = self.client.take() {
            // Not committed (the request was refused): roll back, which releases the lock.
            self.store.spawn(async move {
                if client.batch_execute("ROLLBACK").await.is_err() {
                    drop(Object::take(client));
                }
            });
        }
    }
}
