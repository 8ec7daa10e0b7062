//! Metric definitions: the team's own metrics as an environment declares them, so a gate can
//! name one and the judge knows how to read it (its kind) and which way is worse (its
//! direction). SDKs may record metrics nobody defined; those show in usage but gate nothing.

use super::{Catalog, Meta, State, flags::check_version};
use crate::error::{Error, Result};
use crate::metrics::custom::{MAX_NAME, valid_name};
use flagwire_proto::v1::{MetricDefinition, MetricDirection, MetricKind, Release, gate};

/// Longest unit.
const MAX_UNIT: usize = 32;
/// Longest description.
const MAX_DESCRIPTION: usize = 1024;

fn stored<'a>(state: &'a State, env: &str, name: &str) -> Result<&'a MetricDefinition> {
    state
        .metrics
        .get(&(env.to_owned(), name.to_owned()))
        .ok_or_else(|| Error::NotFound(format!("metric {name:?} in environment {env:?}")))
}

/// The metrics the gates of `release` (release-wide and per stage) name.
pub fn gated_metrics(release: &Release) -> impl Iterator<Item = &str> {
    let stage_gates = release.stages.iter().flat_map(|s| &s.gates);
    release
        .gates
        .iter()
        .chain(stage_gates)
        .filter_map(|g| match &g.kind {
            Some(gate::Kind::Relative(r)) => Some(r.metric.as_str()),
            Some(gate::Kind::Absolute(a)) => Some(a.metric.as_str()),
            _ => None,
        })
}

/// The first active release of `env` whose gates name metric `name`.
fn gated_by<'a>(state: &'a State, env: &str, name: &str) -> Option<&'a Release> {
    state.releases.values().find(|r| {
        r.environment == env
            && flagwire_core::release::wire::active(r)
            && gated_metrics(r).any(|m| m == name)
    })
}

/// Refuses to change the kind or direction of a metric an active release gates on: its
/// windows so far were judged the old way.
pub fn check_redefinition(
    state: &State,
    before: &MetricDefinition,
    after: &MetricDefinition,
) -> Result<()> {
    if before.kind == after.kind && before.direction == after.direction {
        return Ok(());
    }
    match gated_by(state, &before.environment, &before.name) {
        Some(r) => Err(Error::FailedPrecondition(format!(
            "metric {:?} is gated on by active release {:?}: its kind and direction cannot \
             change until the release ends",
            before.name, r.id
        ))),
        None => Ok(()),
    }
}

/// Checks a definition as given (version aside).
pub fn validate_definition(state: &State, m: &MetricDefinition) -> Result<()> {
    if !state.envs.contains_key(&m.environment) {
        return Err(Error::invalid(
            "metric.environment",
            format!("no environment {:?}", m.environment),
        ));
    }
    if !valid_name(&m.name) {
        return Err(Error::invalid(
            "metric.name",
            format!(
                "{:?}: lowercase letters, digits, '.', '_' and '-', starting with a letter or \
                 digit, at most {MAX_NAME}",
                m.name
            ),
        ));
    }
    if !matches!(
        MetricKind::try_from(m.kind),
        Ok(MetricKind::Rate | MetricKind::Mean | MetricKind::Distribution)
            | Ok(MetricKind::CountPerRequest)
    ) {
        return Err(Error::invalid(
            "metric.kind",
            "required: RATE, MEAN, DISTRIBUTION or COUNT_PER_REQUEST",
        ));
    }
    if !matches!(
        MetricDirection::try_from(m.direction),
        Ok(MetricDirection::HigherIsBetter | MetricDirection::LowerIsBetter)
    ) {
        return Err(Error::invalid(
            "metric.direction",
            "required: HIGHER_IS_BETTER or LOWER_IS_BETTER (what a relative gate guards)",
        ));
    }
    if m.unit.chars().count() > MAX_UNIT {
        return Err(Error::invalid(
            "metric.unit",
            format!("at most {MAX_UNIT} characters"),
        ));
    }
    if m.description.chars().count() > MAX_DESCRIPTION {
        return Err(Error::invalid(
            "metric.description",
            format!("at most {MAX_DESCRIPTION} characters"),
        ));
    }
    Ok(())
}

impl Catalog {
    /// Creates or changes a metric definition (see [`check_redefinition`]).
    pub async fn define_metric(
        &self,
        meta: &Meta,
        metric: MetricDefinition,
        expected_version: u64,
    ) -> Result<MetricDefinition> {
        self.write(meta, |state, txn| {
            validate_definition(state, &metric)?;
            let (env, name) = (metric.environment.clone(), metric.name.clone());
            let before = stored(state, &env, &name).ok();
            let what = format!("metric {name:?}");
            check_version(&what, expected_version, before.map_or(0, |b| b.version))?;
            if let Some(b) = before {
                check_redefinition(state, b, &metric)?;
            }
            if let Some(b) = before
                && *b
                    == (MetricDefinition {
                        version: b.version,
                        ..metric.clone()
                    })
            {
                return Ok(b.clone());
            }
            let defined = MetricDefinition {
                version: before.map_or(1, |b| b.version + 1),
                ..metric
            };
            let action = if before.is_some() {
                "metric.update"
            } else {
                "metric.create"
            };
            txn.audit(action, "metric", &format!("{env}/{name}"), None, None);
            txn.put_metric(defined.clone());
            Ok(defined)
        })
        .await
    }

    /// Deletes a metric definition no active release gates on.
    pub async fn delete_metric(&self, meta: &Meta, env: &str, name: &str) -> Result<()> {
        self.write(meta, |state, txn| {
            stored(state, env, name)?;
            if let Some(r) = gated_by(state, env, name) {
                return Err(Error::FailedPrecondition(format!(
                    "metric {name:?} is gated on by active release {:?}",
                    r.id
                )));
            }
            txn.audit(
                "metric.delete",
                "metric",
                &format!("{env}/{name}"),
                None,
                None,
            );
            txn.delete_metric(env, name);
            Ok(())
        })
        .await
    }

    /// One definition.
    pub fn get_metric(&self, env: &str, name: &str) -> Result<MetricDefinition> {
        stored(&self.read(), env, name).cloned()
    }

    /// The definitions of `env` (every environment if empty), by environment and name.
    pub fn list_metrics(&self, env: &str) -> Result<Vec<MetricDefinition>> {
        let state = self.read();
        if !env.is_empty() && !state.envs.contains_key(env) {
            return Err(Error::NotFound(format!("environment {env:?}")));
        }
        Ok(state
            .metrics
            .iter()
            .filter(|((e, _), _)| env.is_empty() || e == env)
            .map(|(_, m)| m.clone())
            .collect())
    }
}
