//! Applying a bundle: every object is compared with the stored one, the result is validated as
//! a whole (references between objects of the bundle resolve against the bundle itself), and
//! the changes commit in one catalog write, so an import lands entirely or not at all.
//!
//! No optimistic concurrency: the plan is computed under the catalog's writer lock, against the
//! state it then changes, so nothing can slip in between; a dry run reads the current state
//! and may therefore differ from a later real import if someone writes in between.

use super::definition;
use super::plan::{Plan, Step, check_shape, plan};
use crate::catalog::owners::guard;
use crate::catalog::{Catalog, Meta, State, Txn};
use crate::error::Result;
use crate::store::keys;
use flagwire_core::release::wire;
use flagwire_proto::v1::{
    AuditSubject, Bundle, BundleChange, BundleChangeAction, BundleObject, audit_subject,
    bundle_object,
};
use prost_types::Timestamp;
use std::collections::BTreeMap;

/// How to import.
#[derive(Debug, Clone, Copy, Default)]
pub struct Options {
    /// Compute the changes, apply nothing.
    pub dry_run: bool,
    /// Delete flags and segments the bundle does not name.
    pub prune: bool,
    /// Write flags an active release or ramp owns even where that changes what they serve
    /// (audited; such a release pauses). Without it the import is refused, naming the owner.
    pub force: bool,
}

/// What an import changed, or in a dry run would change.
#[derive(Debug, Clone, Default)]
pub struct Outcome {
    /// Created, updated and deleted objects (definitions before and after).
    pub changes: Vec<BundleChange>,
    /// Objects of the bundle already as it says.
    pub unchanged: u32,
    /// Whether the changes were committed.
    pub applied: bool,
    /// Environment revisions the import produced.
    pub revisions: BTreeMap<String, u64>,
}

/// Applies `bundle` to the catalog (see the module documentation).
pub async fn import(
    catalog: &Catalog,
    meta: &Meta,
    bundle: &Bundle,
    options: Options,
) -> Result<Outcome> {
    check_shape(bundle)?;
    let last_version = |key: &str| -> Result<u64> {
        let prefix = keys::flag_versions(key);
        let last = catalog
            .store()
            .range_rev(&prefix, &keys::prefix_end(&prefix), 1)?;
        Ok(last.first().map_or(0, |(k, _)| keys::trailing_u64(k)))
    };
    if options.dry_run {
        let now = Timestamp::from(catalog.clock().now());
        let plan = plan(&catalog.read(), bundle, options.prune, now, &last_version)?;
        return Ok(plan.outcome());
    }
    catalog
        .write(meta, |state, txn| {
            let plan = plan(state, bundle, options.prune, txn.now(), &last_version)?;
            let mut outcome = plan.outcome();
            if outcome.changes.is_empty() {
                return Ok(outcome);
            }
            plan.record(state, txn, meta, options.force)?;
            outcome.applied = true;
            let envs = state
                .envs
                .keys()
                .chain(bundle.environments.iter().map(|e| &e.key));
            outcome.revisions = envs
                .filter_map(|e| Some((e.clone(), txn.revision(e)?)))
                .collect();
            Ok(outcome)
        })
        .await
}

/// At first start (no environments, flags, segments or rollouts yet) imports `bundle` as the
/// actor `bootstrap`; otherwise does nothing and answers `None`.
pub async fn bootstrap(
    catalog: &Catalog,
    bundle: &Bundle,
    source: &str,
) -> Result<Option<Outcome>> {
    {
        let state = catalog.read();
        let empty = state.envs.is_empty()
            && state.flags.is_empty()
            && state.segments.is_empty()
            && state.releases.is_empty();
        if !empty {
            return Ok(None);
        }
    }
    let meta = Meta {
        actor: "bootstrap".into(),
        reason: format!("serve --bootstrap {source}"),
    };
    import(catalog, &meta, bundle, Options::default())
        .await
        .map(Some)
}

fn object(kind: bundle_object::Kind) -> Option<BundleObject> {
    Some(BundleObject { kind: Some(kind) })
}

fn subject(kind: audit_subject::Kind) -> Option<AuditSubject> {
    Some(AuditSubject { kind: Some(kind) })
}

fn change(
    action: BundleChangeAction,
    kind: &str,
    key: &str,
    env: &str,
    before: Option<bundle_object::Kind>,
    after: Option<bundle_object::Kind>,
) -> BundleChange {
    BundleChange {
        action: action as i32,
        resource_type: kind.into(),
        resource_key: key.into(),
        environment: env.into(),
        before: before.and_then(object),
        after: after.and_then(object),
    }
}

fn action<T>(before: &Option<T>) -> (BundleChangeAction, &'static str) {
    match before {
        Some(_) => (BundleChangeAction::Update, "update"),
        None => (BundleChangeAction::Create, "create"),
    }
}

impl Plan {
    fn outcome(&self) -> Outcome {
        use bundle_object::Kind as K;
        let d = BundleChangeAction::Delete;
        let changes = self
            .steps
            .iter()
            .map(|step| match step {
                Step::Env(old, e) => {
                    let before = old
                        .as_ref()
                        .map(|o| K::Environment(definition::environment(o)));
                    let after = Some(K::Environment(definition::environment(e)));
                    change(action(old).0, "environment", &e.key, "", before, after)
                }
                Step::Flag(old, f) => {
                    let before = old.as_ref().map(|o| K::Flag(definition::flag(o)));
                    let after = Some(K::Flag(definition::flag(f)));
                    change(action(old).0, "flag", &f.key, "", before, after)
                }
                Step::DeleteFlag(f) => {
                    let before = Some(K::Flag(definition::flag(f)));
                    change(d, "flag", &f.key, "", before, None)
                }
                Step::Segment(old, s) => {
                    let before = old.as_ref().map(|o| K::Segment(definition::segment(o)));
                    let after = Some(K::Segment(definition::segment(s)));
                    change(
                        action(old).0,
                        "segment",
                        &s.key,
                        &s.environment,
                        before,
                        after,
                    )
                }
                Step::DeleteSegment(s) => {
                    let before = Some(K::Segment(definition::segment(s)));
                    change(d, "segment", &s.key, &s.environment, before, None)
                }
                Step::Plan(p) => {
                    let after = Some(K::RollbackPlan((**p).clone()));
                    let create = BundleChangeAction::Create;
                    change(create, "rollback_plan", &p.id, "", None, after)
                }
                Step::Metric(m) => {
                    let (old, m) = &**m;
                    let def = super::metrics::definition;
                    let before = old.as_ref().map(|o| K::Metric(def(o)));
                    let after = Some(K::Metric(def(m)));
                    change(
                        action(old).0,
                        "metric",
                        &m.name,
                        &m.environment,
                        before,
                        after,
                    )
                }
                Step::Release(p) => {
                    let r = &p.release;
                    let create = BundleChangeAction::Create;
                    if p.from_rollout {
                        let after = Some(K::Rollout(definition::rollout(&wire::to_rollout(r))));
                        change(create, "rollout", &r.id, &r.environment, None, after)
                    } else {
                        let after = Some(K::Release(definition::release(r)));
                        change(create, "release", &r.id, &r.environment, None, after)
                    }
                }
            })
            .collect();
        Outcome {
            changes,
            unchanged: self.unchanged,
            ..Outcome::default()
        }
    }

    /// Puts every change into `txn`, with the audit events single writes would record; a flag
    /// an active release or ramp owns goes through the owners' guard (`current`: the state
    /// before the import).
    fn record(self, current: &State, txn: &mut Txn, meta: &Meta, force: bool) -> Result<()> {
        use audit_subject::Kind as A;
        let state = &self.next;
        for step in self.steps {
            match step {
                Step::Env(old, e) => {
                    let verb = format!("environment.{}", action(&old).1);
                    let before = old.map(A::Environment).and_then(subject);
                    txn.audit(
                        &verb,
                        "environment",
                        &e.key,
                        before,
                        subject(A::Environment(e.clone())),
                    );
                    txn.put_environment(e);
                }
                Step::Flag(old, f) => {
                    if let Some(before) = &old {
                        guard(current, txn, meta, before, Some(&f), force)?;
                    }
                    let verb = format!("flag.{}", action(&old).1);
                    let before = old.map(A::Flag).and_then(subject);
                    txn.audit(&verb, "flag", &f.key, before, subject(A::Flag(f.clone())));
                    txn.put_flag_over(state, current.flags.get(&f.key), f);
                }
                Step::DeleteFlag(f) => {
                    guard(current, txn, meta, &f, None, force)?;
                    txn.delete_flag(state, &f.key);
                    txn.audit(
                        "flag.delete",
                        "flag",
                        &f.key,
                        subject(A::Flag(f.clone())),
                        None,
                    );
                }
                Step::Segment(old, s) => {
                    let verb = format!("segment.{}", action(&old).1);
                    let before = old.map(A::Segment).and_then(subject);
                    txn.audit(
                        &verb,
                        "segment",
                        &s.key,
                        before,
                        subject(A::Segment(s.clone())),
                    );
                    txn.put_segment(state, s);
                }
                Step::DeleteSegment(s) => {
                    txn.delete_segment(state, &s.environment, &s.key);
                    let before = subject(A::Segment(s.clone()));
                    txn.audit("segment.delete", "segment", &s.key, before, None);
                }
                Step::Plan(p) => {
                    txn.audit("plan.create", "plan", &p.id, None, None);
                    txn.put_plan(*p);
                }
                Step::Metric(m) => {
                    let (old, m) = *m;
                    let verb = format!("metric.{}", action(&old).1);
                    let key = format!("{}/{}", m.environment, m.name);
                    txn.audit(&verb, "metric", &key, None, None);
                    txn.put_metric(m);
                }
                Step::Release(p) => {
                    txn.audit("release.create", "release", &p.release.id, None, None);
                    txn.put_release(p.release);
                }
            }
        }
        Ok(())
    }
}
