//! The team's own metrics in a report (`metrics[i]`, `flagwire.v1.MetricSeries`): validation,
//! and the conversions between the wire and the judge's [`MetricAgg`]. A series with a flag is
//! usage of that flag's variant; one without is a release cohort's, what gates judge (see
//! `tests/metrics/README.md` for how SDKs record them).

use crate::catalog::State;
use crate::error::{Error, Result};
use flagwire_core::histogram::Histogram;
use flagwire_core::judge::MetricAgg;
use flagwire_proto::v1::{MetricSeries, MetricStat};

/// Longest metric name.
pub const MAX_NAME: usize = 64;
/// Longest cohort label or release id.
const MAX_LABEL: usize = 128;

/// Whether `name` is a valid metric name: lowercase letters, digits, `.`, `_`, `-`, starting
/// with a letter or digit, at most [`MAX_NAME`] characters.
pub fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
        && name.len() <= MAX_NAME
        && chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-".contains(c))
}

/// One valid metric series of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidMetric {
    /// The metric.
    pub name: String,
    /// The flag (empty: a release cohort's).
    pub flag_key: String,
    /// The variant (per-flag series).
    pub variant: String,
    /// The split label.
    pub cohort: String,
    /// The release.
    pub rollout_id: String,
    /// What it adds.
    pub agg: MetricAgg,
}

fn finite(field: String, v: f64) -> Result<f64> {
    if v.is_finite() {
        Ok(v)
    } else {
        Err(Error::invalid(field, "must be a finite number"))
    }
}

/// Checks `metrics[i]` against the catalog.
pub fn validate(state: &State, i: usize, m: MetricSeries) -> Result<ValidMetric> {
    let at = |field: &str| format!("metrics[{i}].{field}");
    if !valid_name(&m.name) {
        return Err(Error::invalid(
            at("name"),
            format!(
                "{:?}: lowercase letters, digits, '.', '_' and '-', at most {MAX_NAME}",
                m.name
            ),
        ));
    }
    if m.cohort.chars().count() > MAX_LABEL || m.rollout_id.chars().count() > MAX_LABEL {
        return Err(Error::invalid(
            at("cohort"),
            format!("cohort and rolloutId: at most {MAX_LABEL} characters"),
        ));
    }
    if m.flag_key.is_empty() {
        if m.rollout_id.is_empty() || !["canary", "control"].contains(&m.cohort.as_str()) {
            return Err(Error::invalid(
                at("flagKey"),
                "a series without a flag is a release cohort's: rolloutId and a cohort of \
                 \"canary\" or \"control\" are required",
            ));
        }
    } else {
        let flag = state.flags.get(&m.flag_key).ok_or_else(|| {
            Error::invalid(at("flagKey"), format!("unknown flag {:?}", m.flag_key))
        })?;
        if !flag.variants.iter().any(|v| v.key == m.variant) {
            return Err(Error::invalid(
                at("variant"),
                format!("flag {:?} has no variant {:?}", m.flag_key, m.variant),
            ));
        }
    }
    let histogram = match &m.histogram {
        None => Histogram::new(),
        Some(h) => Histogram::from_proto(h)
            .map_err(|e| Error::invalid(at(&format!("histogram.{}", e.field)), e.reason))?,
    };
    let agg = MetricAgg {
        count: m.count,
        sum: finite(at("sum"), m.sum)?,
        sum_of_squares: finite(at("sumOfSquares"), m.sum_of_squares)?,
        histogram,
        successes: m.successes,
        failures: m.failures,
        requests: m.requests,
        request_sum_of_squares: finite(at("requestSumOfSquares"), m.request_sum_of_squares)?,
    };
    if agg.sum_of_squares < 0.0 || agg.request_sum_of_squares < 0.0 {
        return Err(Error::invalid(at("sumOfSquares"), "must not be negative"));
    }
    Ok(ValidMetric {
        name: m.name,
        flag_key: m.flag_key,
        variant: m.variant,
        cohort: m.cohort,
        rollout_id: m.rollout_id,
        agg,
    })
}

/// The stored form of one cohort's metric (in a rollout window).
pub fn to_series(name: &str, cohort: &str, rollout_id: &str, a: &MetricAgg) -> MetricSeries {
    MetricSeries {
        name: name.to_owned(),
        cohort: cohort.to_owned(),
        rollout_id: rollout_id.to_owned(),
        count: a.count,
        sum: a.sum,
        sum_of_squares: a.sum_of_squares,
        histogram: (!a.histogram.is_empty()).then(|| a.histogram.to_proto()),
        successes: a.successes,
        failures: a.failures,
        requests: a.requests,
        request_sum_of_squares: a.request_sum_of_squares,
        ..MetricSeries::default()
    }
}

/// The aggregate of a stored series (a damaged histogram reads as empty).
pub fn from_series(m: &MetricSeries) -> MetricAgg {
    MetricAgg {
        count: m.count,
        sum: m.sum,
        sum_of_squares: m.sum_of_squares,
        histogram: m
            .histogram
            .as_ref()
            .and_then(|h| Histogram::from_proto(h).ok())
            .unwrap_or_default(),
        successes: m.successes,
        failures: m.failures,
        requests: m.requests,
        request_sum_of_squares: m.request_sum_of_squares,
    }
}

/// A person's view of one metric's aggregate: a rate when outcomes were recorded, a
/// distribution's median (and p95/p99) when values were observed, else the mean; `requests`
/// turns a count into a per-request count when the cohort's requests are known.
pub fn stat(name: &str, a: &MetricAgg) -> MetricStat {
    let outcomes = a.successes.saturating_add(a.failures);
    let (n, value, p95, p99) = if outcomes > 0 {
        (outcomes, a.rate().unwrap_or(0.0), 0.0, 0.0)
    } else if !a.histogram.is_empty() {
        let q = |q| a.quantile(q).unwrap_or(0.0);
        (a.histogram.count(), q(0.5), q(0.95), q(0.99))
    } else {
        (a.count, a.mean().unwrap_or(0.0), 0.0, 0.0)
    };
    MetricStat {
        name: name.to_owned(),
        n,
        value,
        p95,
        p99,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        for ok in ["mem0.write", "fast_path_ms", "hits-per-query", "p95"] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        for bad in ["", "Upper", "_lead", "a b", "ms/s", long.as_str()] {
            assert!(!valid_name(bad), "{bad}");
        }
    }

    #[test]
    fn a_stored_series_reads_back_the_same_aggregate() {
        let mut a = MetricAgg {
            count: 3,
            sum: 9.5,
            sum_of_squares: 40.25,
            successes: 7,
            failures: 2,
            requests: 2,
            request_sum_of_squares: 50.0,
            ..MetricAgg::default()
        };
        a.histogram.record(420_500);
        let s = to_series("x", "canary", "rel-1", &a);
        assert_eq!(from_series(&s), a);
        let st = stat("x", &a);
        assert_eq!((st.n, st.value), (9, 7.0 / 9.0), "outcomes make it a rate");
    }
}
