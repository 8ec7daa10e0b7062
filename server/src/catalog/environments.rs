//! Environment operations.

use super::{Catalog, Meta};
use crate::error::{Error, Result};
use flagwire_core::validate::validate_key;
use flagwire_proto::v1::{AuditSubject, Environment, audit_subject};

fn subject(env: &Environment) -> Option<AuditSubject> {
    Some(AuditSubject {
        kind: Some(audit_subject::Kind::Environment(env.clone())),
    })
}

impl Catalog {
    /// Creates an environment at revision 0.
    pub async fn create_environment(&self, meta: &Meta, env: Environment) -> Result<Environment> {
        validate_key("environment.key", &env.key)?;
        self.write(meta, |state, txn| {
            if state.envs.contains_key(&env.key) {
                return Err(Error::AlreadyExists(format!("environment {:?}", env.key)));
            }
            let env = Environment {
                name: if env.name.is_empty() {
                    env.key.clone()
                } else {
                    env.name
                },
                revision: 0,
                create_time: Some(txn.now()),
                ..env
            };
            txn.put_environment(env.clone());
            txn.audit(
                "environment.create",
                "environment",
                &env.key,
                None,
                subject(&env),
            );
            Ok(env)
        })
        .await
    }

    /// One environment.
    pub fn get_environment(&self, key: &str) -> Result<Environment> {
        self.read()
            .envs
            .get(key)
            .cloned()
            .ok_or_else(|| Error::NotFound(format!("environment {key:?}")))
    }

    /// Every environment, by key.
    pub fn list_environments(&self) -> Vec<Environment> {
        self.read().envs.values().cloned().collect()
    }

    /// Deletes an environment nothing refers to.
    pub async fn delete_environment(&self, meta: &Meta, key: &str) -> Result<()> {
        self.write(meta, |state, txn| {
            let env = state
                .envs
                .get(key)
                .ok_or_else(|| Error::NotFound(format!("environment {key:?}")))?;
            let busy = |what: String| {
                Err(Error::FailedPrecondition(format!(
                    "environment {key:?} is still used by {what}"
                )))
            };
            if let Some(f) = state
                .flags
                .values()
                .find(|f| f.environments.contains_key(key))
            {
                return busy(format!("flag {:?}", f.key));
            }
            if let Some((_, s)) = state.segments.keys().find(|(e, _)| e == key) {
                return busy(format!("segment {s:?}"));
            }
            if let Some((_, m)) = state.metrics.keys().find(|(e, _)| e == key) {
                return busy(format!("metric {m:?}"));
            }
            if let Some(t) = state
                .tokens
                .values()
                .filter_map(|t| t.token.as_ref())
                .find(|t| t.environment == key && t.revoke_time.is_none())
            {
                return busy(format!("token {:?}", t.name));
            }
            txn.audit("environment.delete", "environment", key, subject(env), None);
            txn.delete_environment(key);
            Ok(())
        })
        .await
    }
}
