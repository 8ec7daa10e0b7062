//! Remote evaluation: a `flagwire-core` snapshot per environment, rebuilt lazily when the
//! environment's revision has moved on, so writes never pay for it and evaluations after a
//! write pay once.

use super::Catalog;
use crate::error::{Error, Result};
use flagwire_core::Snapshot;
use std::sync::Arc;

impl Catalog {
    /// The evaluation snapshot of `env` at its current revision.
    pub fn engine(&self, env: &str) -> Result<Arc<Snapshot>> {
        let revision = self.revision(env)?;
        let mut cache = self.engines.lock().expect("engine cache poisoned");
        if let Some(snapshot) = cache.get(env).filter(|s| s.revision() == revision) {
            return Ok(Arc::clone(snapshot));
        }
        let state = self.read();
        let environment = state
            .envs
            .get(env)
            .ok_or_else(|| Error::NotFound(format!("environment {env:?}")))?;
        let snapshot = Arc::new(Snapshot::new(
            env,
            environment.revision,
            state.flags.values().cloned(),
            state
                .segments
                .iter()
                .filter(|((e, _), _)| e == env)
                .map(|(_, s)| s.clone()),
        ));
        cache.insert(env.to_owned(), Arc::clone(&snapshot));
        Ok(snapshot)
    }
}
