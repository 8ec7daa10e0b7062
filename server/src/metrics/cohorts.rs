//! Validation of a report's per-release cohort outcomes (`cohortOutcomes[i]`): what releases
//! are judged on, counted by the SDK once per request scope that touched the release.

use super::usage::Aggregate;
use crate::error::{Error, Result};
use flagwire_core::histogram::Histogram;
use flagwire_proto::v1::CohortOutcome;

/// Longest accepted release id.
const MAX_ID: usize = 128;

/// One valid cohort outcome.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidCohortOutcome {
    /// The release.
    pub release_id: String,
    /// "canary" or "control".
    pub cohort: String,
    /// Outcomes and their latency (evaluations are counted by the series).
    pub aggregate: Aggregate,
}

/// Checks `cohortOutcomes[i]`.
pub fn validate(i: usize, c: CohortOutcome) -> Result<ValidCohortOutcome> {
    let at = |field: &str| format!("cohortOutcomes[{i}].{field}");
    if c.release_id.is_empty() || c.release_id.chars().count() > MAX_ID {
        return Err(Error::invalid(
            at("releaseId"),
            format!("required, at most {MAX_ID} characters"),
        ));
    }
    if c.cohort != "canary" && c.cohort != "control" {
        return Err(Error::invalid(
            at("cohort"),
            format!("must be \"canary\" or \"control\", not {:?}", c.cohort),
        ));
    }
    let outcomes = c
        .successes
        .checked_add(c.errors)
        .ok_or_else(|| Error::invalid(at("errors"), "successes plus errors overflows"))?;
    let latency = match &c.latency_us {
        None => Histogram::new(),
        Some(h) => {
            let latency = Histogram::from_proto(h)
                .map_err(|e| Error::invalid(at(&format!("latencyUs.{}", e.field)), e.reason))?;
            if latency.count() != outcomes {
                return Err(Error::invalid(
                    at("successes"),
                    format!(
                        "successes ({}) plus errors ({}) must equal latencyUs.count ({})",
                        c.successes,
                        c.errors,
                        latency.count()
                    ),
                ));
            }
            latency
        }
    };
    Ok(ValidCohortOutcome {
        release_id: c.release_id,
        cohort: c.cohort,
        aggregate: Aggregate {
            evaluations: 0,
            successes: c.successes,
            errors: c.errors,
            latency,
            metrics: Default::default(),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn outcome(cohort: &str, successes: u64, errors: u64) -> CohortOutcome {
        let mut h = Histogram::new();
        h.record_n(1_000, successes + errors);
        CohortOutcome {
            release_id: "rel-1".into(),
            cohort: cohort.into(),
            successes,
            errors,
            latency_us: Some(h.to_proto()),
        }
    }

    fn field(c: CohortOutcome) -> String {
        match validate(3, c) {
            Err(Error::Invalid(e)) => e.field,
            other => panic!("expected Invalid, got {other:?}"),
        }
    }

    #[test]
    fn valid_and_each_rejection_named() {
        let ok = validate(0, outcome("canary", 9, 1)).unwrap();
        assert_eq!((ok.aggregate.successes, ok.aggregate.errors), (9, 1));
        assert_eq!(field(outcome("beta", 1, 0)), "cohortOutcomes[3].cohort");
        let mut no_id = outcome("control", 1, 0);
        no_id.release_id.clear();
        assert_eq!(field(no_id), "cohortOutcomes[3].releaseId");
        let mut wrong = outcome("control", 1, 0);
        wrong.successes = 5;
        assert_eq!(field(wrong), "cohortOutcomes[3].successes");
    }
}
