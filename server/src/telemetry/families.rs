//! Writing a metric family at scrape time from computed samples (prometheus-client's encoder
//! API, without building a metric object per sample).
//!
//! A family without samples is left out entirely, as prometheus-client does for its own
//! families: a `# HELP`/`# TYPE` pair with nothing under it tells a reader nothing.

use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, NoLabelSet};
use prometheus_client::metrics::MetricType;

/// A sample's value.
#[derive(Debug, Clone, Copy)]
pub enum Num {
    /// A count.
    Int(u64),
    /// A ratio or other fraction (gauges only).
    Float(f64),
}

impl From<u64> for Num {
    fn from(v: u64) -> Self {
        Num::Int(v)
    }
}

impl From<f64> for Num {
    fn from(v: f64) -> Self {
        Num::Float(v)
    }
}

/// Writes a gauge (`kind` Gauge) or counter family; a counter's `name` has no `_total` (the
/// encoder appends it to samples). `help` ends with a full stop (the collector API adds none).
pub fn write<S: EncodeLabelSet>(
    e: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    kind: MetricType,
    samples: &[(S, Num)],
) -> Result<(), std::fmt::Error> {
    if samples.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(name, help, None, kind)?;
    for (labels, value) in samples {
        let mut sample = family.encode_family(labels)?;
        match (kind, *value) {
            (MetricType::Counter, Num::Int(v)) => {
                sample.encode_counter::<NoLabelSet, u64, u64>(&v, None)?
            }
            (MetricType::Counter, Num::Float(v)) => {
                sample.encode_counter::<NoLabelSet, f64, u64>(&v, None)?
            }
            (_, Num::Int(v)) => sample.encode_gauge(&v)?,
            (_, Num::Float(v)) => sample.encode_gauge(&v)?,
        }
    }
    Ok(())
}

/// Writes a family of one sample without labels.
pub fn single(
    e: &mut DescriptorEncoder,
    name: &'static str,
    help: &str,
    kind: MetricType,
    value: u64,
) -> Result<(), std::fmt::Error> {
    let mut family = e.encode_descriptor(name, help, None, kind)?;
    match kind {
        MetricType::Counter => family.encode_counter::<NoLabelSet, u64, u64>(&value, None),
        _ => family.encode_gauge(&value),
    }
}
