//! The instance registry shared by the replicas of one PostgreSQL store, so
//! `CountAppliedInstances`, rollout and release acknowledgements, the kill switch's counts,
//! `ListInstances` and `/metrics` count the SDK instances connected to every replica.
//!
//! Once a second each replica publishes the instances that changed since its last exchange
//! (connections, disconnections, reports) and reads every other replica's, which the registry
//! merges into its answers. A replica that stops beating (it died) has its instances shown as
//! disconnected after `LIVE_FOR`; its rows go once it has been silent for the retention.
//! Counts on one replica therefore trail another replica's connections by up to about two
//! seconds. Embedded stores (sled, in-memory) have one process: nothing runs, the registry
//! stays local.

use super::instances::Registry;
use crate::store::Store;
use std::sync::Arc;
use std::time::Duration;

/// How often a replica publishes its instances and reads the others'.
pub const EXCHANGE_EVERY: Duration = Duration::from_secs(1);

/// Shares `registry` through `store` until `stop` resolves; returns at once when the store
/// has no other replicas.
pub async fn share(
    registry: Arc<Registry>,
    store: Arc<dyn Store>,
    retention: Duration,
    stop: impl std::future::Future<Output = ()>,
) {
    if !store.shared() {
        return;
    }
    // A fresh id per process: a restarted replica's old rows expire with the dead one's.
    let replica = uuid::Uuid::new_v4().to_string();
    let mut stop = std::pin::pin!(stop);
    let mut every = tokio::time::interval(EXCHANGE_EVERY);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = every.tick() => {}
        }
        let mine = registry.take_changes();
        let (store, id) = (Arc::clone(&store), replica.clone());
        // The store's methods block on its own runtime: off this one's workers.
        let exchanged =
            tokio::task::spawn_blocking(move || store.exchange_instances(&id, mine, retention))
                .await;
        match exchanged {
            Ok(Some(Ok(others))) => registry.set_remote(others),
            Ok(Some(Err(e))) => {
                tracing::debug!(error = %e, "sharing SDK instances failed");
                registry.republish();
            }
            Ok(None) => return,
            Err(e) => {
                tracing::warn!(error = %e, "sharing SDK instances panicked");
                registry.republish();
            }
        }
    }
}
