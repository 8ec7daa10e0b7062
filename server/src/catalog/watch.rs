//! Reads for Watch: snapshots and the retained change log.

use super::Catalog;
use crate::error::{Error, Result};
use crate::store::keys;
use flagwire_core::project::project;
use flagwire_proto::v1::{Change, Snapshot};

impl Catalog {
    /// The whole environment at its current revision.
    pub fn snapshot(&self, env: &str) -> Result<Snapshot> {
        let state = self.read();
        let environment = state
            .envs
            .get(env)
            .ok_or_else(|| Error::NotFound(format!("environment {env:?}")))?;
        Ok(Snapshot {
            environment: env.to_owned(),
            revision: environment.revision,
            flags: state.flags.values().map(|f| project(f, env)).collect(),
            segments: state
                .segments
                .iter()
                .filter(|((e, _), _)| e == env)
                .map(|(_, s)| s.clone())
                .collect(),
        })
    }

    /// The environment's current revision.
    pub fn revision(&self, env: &str) -> Result<u64> {
        self.read()
            .envs
            .get(env)
            .map(|e| e.revision)
            .ok_or_else(|| Error::NotFound(format!("environment {env:?}")))
    }

    /// The changes in `(since, until]`, or `None` when part of that range is no longer retained.
    pub fn changes_between(
        &self,
        env: &str,
        since: u64,
        until: u64,
    ) -> Result<Option<Vec<Change>>> {
        if since >= until {
            return Ok(Some(Vec::new()));
        }
        let entries = self.store().range(
            &keys::change(env, since + 1),
            &keys::change(env, until.saturating_add(1)),
            usize::MAX,
        )?;
        let changes: Vec<Change> = entries
            .iter()
            .map(|(k, v)| super::decode(k, v))
            .collect::<Result<_, _>>()?;
        let complete = changes.len() as u64 == until - since
            && changes.first().is_some_and(|c| c.revision == since + 1);
        Ok(complete.then_some(changes))
    }
}
