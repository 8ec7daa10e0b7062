//! `/metrics` parsed with a strict OpenMetrics text parser (the format the server serves), and
//! looked up by name and labels.

use openmetrics_parser::{MetricNumber, OpenMetricsValue};
use std::collections::BTreeMap;

/// One sample's value: counters and gauges as a number, histograms as (count, sum, buckets).
#[derive(Debug, Clone)]
pub enum Value {
    /// Counter, gauge or info.
    Number(f64),
    /// Histogram: count, sum and cumulative `(le, count)` buckets.
    Histogram(u64, f64, Vec<(f64, f64)>),
}

/// A sample's labels, by name.
pub type Labels = BTreeMap<String, String>;

/// Every sample: family name -> (labels, value) pairs.
pub struct Scrape {
    /// The samples.
    pub families: BTreeMap<String, Vec<(Labels, Value)>>,
}

fn number(n: &MetricNumber) -> f64 {
    n.as_f64()
}

impl Scrape {
    /// Parses an exposition, panicking with the parser's complaint when it is not valid.
    pub fn parse(text: &str) -> Scrape {
        let exposition = openmetrics_parser::openmetrics::parse_openmetrics(text)
            .unwrap_or_else(|e| panic!("/metrics is not valid OpenMetrics: {e:?}\n{text}"));
        let mut families = BTreeMap::new();
        for (name, family) in exposition.families {
            let mut samples = Vec::new();
            for sample in family.iter_samples() {
                let labels: Labels = sample
                    .get_labelset()
                    .unwrap()
                    .iter()
                    .map(|(k, v)| (k.clone(), v.clone()))
                    .collect();
                let value = match &sample.value {
                    OpenMetricsValue::Counter(c) => Value::Number(number(&c.value)),
                    OpenMetricsValue::Gauge(n) | OpenMetricsValue::Unknown(n) => {
                        Value::Number(number(n))
                    }
                    OpenMetricsValue::Info => Value::Number(1.0),
                    OpenMetricsValue::Histogram(h) => Value::Histogram(
                        h.count.unwrap_or(0),
                        h.sum.as_ref().map_or(0.0, number),
                        h.buckets
                            .iter()
                            .map(|b| (b.upper_bound, number(&b.count)))
                            .collect(),
                    ),
                    other => panic!("{name}: unexpected value {other:?}"),
                };
                samples.push((labels, value));
            }
            families.insert(name, samples);
        }
        Scrape { families }
    }

    /// Whether a family of that name (without `_total`) was exposed.
    pub fn has(&self, family: &str) -> bool {
        self.families.contains_key(family)
    }

    /// The sample of `family` whose labels include all of `labels`; `None` if there is none.
    pub fn find(&self, family: &str, labels: &[(&str, &str)]) -> Option<&Value> {
        self.families.get(family)?.iter().find_map(|(l, v)| {
            labels
                .iter()
                .all(|(k, want)| l.get(*k).is_some_and(|have| have == want))
                .then_some(v)
        })
    }

    /// The number of a counter or gauge sample; panics if it is missing.
    pub fn value(&self, family: &str, labels: &[(&str, &str)]) -> f64 {
        match self.find(family, labels) {
            Some(Value::Number(n)) => *n,
            other => panic!("{family}{labels:?}: {other:?}"),
        }
    }

    /// A histogram's (count, sum, buckets); panics if it is missing.
    pub fn histogram(&self, family: &str, labels: &[(&str, &str)]) -> (u64, f64, Vec<(f64, f64)>) {
        match self.find(family, labels) {
            Some(Value::Histogram(c, s, b)) => (*c, *s, b.clone()),
            other => panic!("{family}{labels:?}: {other:?}"),
        }
    }
}
