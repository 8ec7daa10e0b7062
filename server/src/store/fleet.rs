//! What replicas sharing a store tell each other about their SDK instances (see
//! `metrics::fleet`): each replica publishes the instances it knows, and reads every other
//! live replica's.

use std::time::SystemTime;

/// One SDK instance as one replica knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SharedInstance {
    /// Its environment.
    pub environment: String,
    /// Its instance id.
    pub instance_id: String,
    /// The SDK's name, as the instance last said.
    pub sdk_name: String,
    /// The SDK's version, as the instance last said.
    pub sdk_version: String,
    /// When this replica first heard of it.
    pub first_seen: SystemTime,
    /// When this replica last heard from it.
    pub last_seen: SystemTime,
    /// Since when it has had a Watch stream open on this replica; `None` when it has none (or
    /// the replica publishing it stopped publishing: a dead replica's streams are gone).
    pub connected_since: Option<SystemTime>,
    /// The latest revision it reported having applied.
    pub applied_revision: u64,
    /// (revision, when the applied revision first reached it), oldest first.
    pub steps: Vec<(u64, SystemTime)>,
}

/// One exchange: this replica's changes since the last one, and what it forgot.
#[derive(Debug, Default)]
pub struct Published {
    /// Instances added or changed (all of them after a failed exchange).
    pub changed: Vec<SharedInstance>,
    /// (environment, instance id) of instances this replica no longer knows.
    pub forgotten: Vec<(String, String)>,
    /// Whether `changed` is everything this replica knows (its rows are replaced).
    pub everything: bool,
}
