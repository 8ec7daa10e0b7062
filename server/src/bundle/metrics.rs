//! The metric definitions of a bundle: created or updated as DefineMetric would (checked, the
//! version bumped), before the bundle's releases are checked, since their gates name them.
//! An import never deletes a definition (not even with `prune`): a definition costs nothing
//! and a running release may gate on it.

use crate::catalog::State;
use crate::catalog::metrics::{check_redefinition, validate_definition};
use crate::error::{Error, Result};
use flagwire_core::validate::FieldError;
use flagwire_proto::v1::{Bundle, MetricDefinition};
use std::collections::HashSet;

/// A definition to store: the one it replaces, if any, and the new one.
pub type Planned = (Option<MetricDefinition>, MetricDefinition);

/// What a bundle carries of a definition: everything but its version.
pub fn definition(m: &MetricDefinition) -> MetricDefinition {
    MetricDefinition {
        version: 0,
        ..m.clone()
    }
}

fn locate(e: Error, i: usize) -> Error {
    match e {
        Error::Invalid(e) => Error::Invalid(FieldError {
            field: e.field.replacen("metric", &format!("metrics[{i}]"), 1),
            reason: e.reason,
        }),
        other => other,
    }
}

/// The bundle's new and changed definitions, checked against the catalog as it will be
/// (`next`, which gets them); counts the ones already stored as they are.
pub fn plan(next: &mut State, bundle: &Bundle, unchanged: &mut u32) -> Result<Vec<Planned>> {
    let mut seen = HashSet::new();
    let mut planned = Vec::new();
    for (i, m) in bundle.metrics.iter().enumerate() {
        if !seen.insert((m.environment.as_str(), m.name.as_str())) {
            return Err(Error::invalid(
                format!("metrics[{i}].name"),
                format!("duplicate metric {:?} in {:?}", m.name, m.environment),
            ));
        }
        validate_definition(next, m).map_err(|e| locate(e, i))?;
        let id = (m.environment.clone(), m.name.clone());
        let before = next.metrics.get(&id).cloned();
        if before.as_ref().map(definition) == Some(definition(m)) {
            *unchanged += 1;
            continue;
        }
        if let Some(b) = &before {
            check_redefinition(next, b, m)?;
        }
        let after = MetricDefinition {
            version: before.as_ref().map_or(0, |b| b.version) + 1,
            ..m.clone()
        };
        next.metrics.insert(id, after.clone());
        planned.push((before, after));
    }
    Ok(planned)
}
