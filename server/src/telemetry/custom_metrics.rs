//! The team's own metrics on `/metrics`, as SDKs reported them per environment, flag, variant
//! and cohort: what Prometheus can alert on or graph beside the flag's evaluations. Totals since
//! start, like the usage families ([`crate::metrics::usage::Usage::totals`]).
//!
//! - `flagwire_metric_values_total{...,metric}`: values recorded (track, observe);
//! - `flagwire_metric_value_sum{...,metric}`: their sum (a gauge: values may be negative);
//! - `flagwire_metric_outcomes_total{...,metric,result}`: track_outcome successes and failures.

use super::families::{Num, write};
use crate::metrics::usage::SeriesTotal;
use prometheus_client::encoding::DescriptorEncoder;
use prometheus_client::metrics::MetricType::{Counter, Gauge};

type Labels = Vec<(&'static str, String)>;

fn labels(t: &SeriesTotal, metric: &str) -> Labels {
    vec![
        ("environment", t.environment.clone()),
        ("flag", t.flag_key.clone()),
        ("variant", t.variant.clone()),
        ("cohort", t.cohort.clone()),
        ("metric", metric.to_owned()),
    ]
}

/// Writes the three families (each only if it has samples).
pub fn encode(e: &mut DescriptorEncoder, usage: &[SeriesTotal]) -> Result<(), std::fmt::Error> {
    let (mut values, mut sums, mut outcomes) = (Vec::new(), Vec::new(), Vec::new());
    for t in usage {
        for (name, m) in &t.aggregate.metrics {
            if m.count > 0 {
                values.push((labels(t, name), Num::from(m.count)));
                sums.push((labels(t, name), Num::from(m.sum)));
            }
            if m.successes + m.failures > 0 {
                for (result, n) in [("success", m.successes), ("failure", m.failures)] {
                    let mut set = labels(t, name);
                    set.push(("result", result.to_owned()));
                    outcomes.push((set, Num::from(n)));
                }
            }
        }
    }
    write(
        e,
        "flagwire_metric_values",
        "Values of the team's own metrics SDKs recorded (track, observe), per variant and cohort.",
        Counter,
        &values,
    )?;
    write(
        e,
        "flagwire_metric_value_sum",
        "The sum of those values, per variant and cohort.",
        Gauge,
        &sums,
    )?;
    write(
        e,
        "flagwire_metric_outcomes",
        "Outcomes of the team's own metrics (track_outcome), by result (success or failure).",
        Counter,
        &outcomes,
    )
}
