//! Fan-out of committed changes to Watch streams.
//!
//! One `tokio::sync::broadcast` channel per environment. Writers publish after the store has
//! committed and never wait for subscribers: a subscriber that falls more than the channel's
//! capacity behind gets `Lagged` and resynchronises from a fresh snapshot instead of blocking
//! anyone. sled's own subscribers are not used: their channel is bounded and blocks writers.

use flagwire_proto::v1::Change;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The per-environment broadcast channels.
pub struct Hub {
    // None once closed; a std mutex because it is held only to look up or insert a sender.
    channels: Mutex<Option<HashMap<String, broadcast::Sender<Arc<Change>>>>>,
    capacity: usize,
}

impl Hub {
    /// A hub whose channels buffer `capacity` changes per environment. A subscriber further
    /// behind than that resynchronises from a snapshot.
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(Some(HashMap::new())),
            capacity: capacity.max(1),
        }
    }

    /// A receiver of every change published to `env` from now on; `None` once closed.
    pub fn subscribe(&self, env: &str) -> Option<broadcast::Receiver<Arc<Change>>> {
        let mut guard = self.channels.lock().expect("poisoned");
        let channels = guard.as_mut()?;
        let sender = channels
            .entry(env.to_owned())
            .or_insert_with(|| broadcast::channel(self.capacity).0);
        Some(sender.subscribe())
    }

    /// Publishes committed changes of `env`, in revision order.
    pub fn publish(&self, env: &str, changes: impl IntoIterator<Item = Arc<Change>>) {
        let guard = self.channels.lock().expect("poisoned");
        if let Some(sender) = guard.as_ref().and_then(|c| c.get(env)) {
            for change in changes {
                // An error only means nobody is subscribed right now.
                let _ = sender.send(change);
            }
        }
    }

    /// Number of open receivers across environments (connected watchers).
    pub fn receivers(&self) -> usize {
        let guard = self.channels.lock().expect("poisoned");
        guard.as_ref().map_or(0, |c| {
            c.values().map(broadcast::Sender::receiver_count).sum()
        })
    }

    /// Open receivers (connected watchers) per environment, for `/metrics`.
    pub fn receivers_by_env(&self) -> Vec<(String, usize)> {
        let guard = self.channels.lock().expect("poisoned");
        guard.as_ref().map_or_else(Vec::new, |c| {
            c.iter()
                .map(|(env, sender)| (env.clone(), sender.receiver_count()))
                .collect()
        })
    }

    /// Drops every sender, so each Watch stream sees `Closed` and ends cleanly (shutdown).
    pub fn close(&self) {
        self.channels.lock().expect("poisoned").take();
    }
}
