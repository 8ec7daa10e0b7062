//! The rollback manager and the server's own scheduler: the emergency kill switch and its undo,
//! named rollback plans and their executions, changes scheduled for a time, and time-based
//! ramps. Every flag change they make is an ordinary catalog write (streamed, versioned,
//! audited); their records (`Execution`, `ScheduledChange`, `Ramp`) are written in the same
//! batch as the change they describe, which is what makes "applied exactly once, even across a
//! restart" hold.
//!
//! - [`kill`]: `Kill` / `UndoKill`; [`plans`]: plans and executions; [`scheduled`]: scheduled
//!   changes; [`ramps`]: ramps; [`actions`]: the flag changes plans and schedules share;
//! - [`timer`]: applies what is due (scheduled changes, scheduled executions, ramp steps).

pub mod actions;
pub mod kill;
pub mod plans;
pub mod ramps;
pub mod scheduled;
pub mod timer;

use crate::catalog::{Catalog, State};
use crate::clock::Clock;
use crate::error::{Error, Result};
use crate::metrics::instances::Registry;
use crate::releases::Releases;
use crate::store::keys;
use flagwire_proto::v1::{Execution, Flag};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The rollback manager. Shared as `Arc<Manager>`.
pub struct Manager {
    catalog: Arc<Catalog>,
    registry: Arc<Registry>,
    releases: Arc<Releases>,
    clock: Arc<dyn Clock>,
    tick: Duration,
    // Running executions → a signal that cancels them.
    running: Mutex<HashMap<String, tokio::sync::watch::Sender<bool>>>,
}

/// A copy of execution `id`, or NOT_FOUND.
pub(crate) fn stored_execution(state: &State, id: &str) -> Result<Execution> {
    state
        .executions
        .get(id)
        .cloned()
        .ok_or_else(|| Error::NotFound(format!("execution {id:?}")))
}

/// A new server-assigned id with `prefix`.
pub(crate) fn new_id(prefix: &str) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}-{}", &id[..12])
}

impl Manager {
    /// Runs the rollback plans of releases as they roll back, until `stop` resolves; a plan
    /// that cannot start is an error in the log, with the release named.
    pub async fn run_rollback_plans(
        self: Arc<Self>,
        mut rolled_back: tokio::sync::mpsc::UnboundedReceiver<crate::releases::RolledBack>,
        stop: impl std::future::Future<Output = ()>,
    ) {
        tokio::pin!(stop);
        loop {
            let r = tokio::select! {
                () = &mut stop => return,
                r = rolled_back.recv() => match r {
                    Some(r) => r,
                    None => return,
                },
            };
            let meta = crate::catalog::Meta {
                actor: "judge".into(),
                reason: format!("release {} rolled back", r.release_id),
            };
            if let Err(e) = self
                .execute(&meta, &r.plan_id, None, &r.release_id, false)
                .await
            {
                tracing::error!(release = %r.release_id, plan = %r.plan_id, error = %e, "rollback plan did not start");
            }
        }
    }

    /// The manager over `catalog`; `tick` is how often the timer looks for due work.
    pub fn new(
        catalog: Arc<Catalog>,
        registry: Arc<Registry>,
        releases: Arc<Releases>,
        clock: Arc<dyn Clock>,
        tick: Duration,
    ) -> Self {
        Self {
            catalog,
            registry,
            releases,
            clock,
            tick,
            running: Mutex::default(),
        }
    }

    /// A stored version of a flag (for reverts).
    pub(crate) fn flag_version(&self, key: &str, version: u64) -> Result<Option<Flag>> {
        let Some(bytes) = self
            .catalog
            .store()
            .get(&keys::flag_version(key, version))?
        else {
            return Ok(None);
        };
        Flag::decode(bytes.as_slice())
            .map(Some)
            .map_err(|e| Error::FailedPrecondition(format!("stored version unreadable: {e}")))
    }

    /// An execution with its acknowledgement counts filled in from the instance registry.
    pub fn execution(&self, id: &str) -> Result<Execution> {
        let e = stored_execution(&self.catalog.read(), id)?;
        Ok(self.acknowledged(e))
    }

    fn acknowledged(&self, mut e: Execution) -> Execution {
        for ack in &mut e.acknowledgements {
            *ack = self.registry.acknowledge(ack);
        }
        e
    }
}
