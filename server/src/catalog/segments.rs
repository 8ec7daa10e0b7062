//! Segment operations.

use super::{Catalog, Meta, State, flags::check_version};
use crate::error::{Error, Result};
use flagwire_core::validate::validate_segment;
use flagwire_proto::v1::{AuditSubject, Operator, Segment, audit_subject};
use prost_types::value::Kind;

fn subject(seg: &Segment) -> Option<AuditSubject> {
    Some(AuditSubject {
        kind: Some(audit_subject::Kind::Segment(seg.clone())),
    })
}

fn stored<'a>(state: &'a State, env: &str, key: &str) -> Result<&'a Segment> {
    state
        .segments
        .get(&(env.to_owned(), key.to_owned()))
        .ok_or_else(|| Error::NotFound(format!("segment {key:?} in environment {env:?}")))
}

/// The first flag whose config in `env` names segment `key`.
fn user_of<'a>(state: &'a State, env: &str, key: &str) -> Option<&'a str> {
    state.flags.values().find_map(|f| {
        let config = f.environments.get(env)?;
        let uses = config.rules.iter().flat_map(|r| &r.clauses).any(|c| {
            matches!(
                Operator::try_from(c.operator),
                Ok(Operator::InSegment | Operator::NotInSegment)
            ) && c
                .values
                .iter()
                .any(|v| matches!(&v.kind, Some(Kind::StringValue(s)) if s == key))
        });
        uses.then_some(f.key.as_str())
    })
}

impl Catalog {
    /// Creates a segment at version 1.
    pub async fn create_segment(&self, meta: &Meta, segment: Segment) -> Result<Segment> {
        self.write(meta, |state, txn| {
            validate_segment(&segment, state)?;
            if stored(state, &segment.environment, &segment.key).is_ok() {
                return Err(Error::AlreadyExists(format!("segment {:?}", segment.key)));
            }
            let seg = Segment {
                version: 1,
                update_time: Some(txn.now()),
                ..segment
            };
            txn.put_segment(state, seg.clone());
            txn.audit("segment.create", "segment", &seg.key, None, subject(&seg));
            Ok(seg)
        })
        .await
    }

    /// Replaces a segment if `expected_version` is the stored one.
    pub async fn update_segment(
        &self,
        meta: &Meta,
        segment: Segment,
        expected_version: u64,
    ) -> Result<Segment> {
        if expected_version == 0 {
            return Err(Error::invalid(
                "expectedVersion",
                "required: the version you read (optimistic concurrency)",
            ));
        }
        self.write(meta, |state, txn| {
            validate_segment(&segment, state)?;
            let before = stored(state, &segment.environment, &segment.key)?;
            let what = format!("segment {:?}", segment.key);
            check_version(&what, expected_version, before.version)?;
            let seg = Segment {
                version: before.version + 1,
                update_time: Some(txn.now()),
                ..segment
            };
            txn.put_segment(state, seg.clone());
            txn.audit(
                "segment.update",
                "segment",
                &seg.key,
                subject(before),
                subject(&seg),
            );
            Ok(seg)
        })
        .await
    }

    /// Deletes a segment no flag uses.
    pub async fn delete_segment(&self, meta: &Meta, env: &str, key: &str) -> Result<()> {
        self.write(meta, |state, txn| {
            let before = stored(state, env, key)?;
            if let Some(flag) = user_of(state, env, key) {
                return Err(Error::FailedPrecondition(format!(
                    "segment {key:?} is used by flag {flag:?}"
                )));
            }
            txn.audit("segment.delete", "segment", key, subject(before), None);
            txn.delete_segment(state, env, key);
            Ok(())
        })
        .await
    }

    /// One segment.
    pub fn get_segment(&self, env: &str, key: &str) -> Result<Segment> {
        stored(&self.read(), env, key).cloned()
    }

    /// The segments of an environment, by key.
    pub fn list_segments(&self, env: &str) -> Result<Vec<Segment>> {
        let state = self.read();
        if !state.envs.contains_key(env) {
            return Err(Error::NotFound(format!("environment {env:?}")));
        }
        Ok(state
            .segments
            .iter()
            .filter(|((e, _), _)| e == env)
            .map(|(_, s)| s.clone())
            .collect())
    }
}
