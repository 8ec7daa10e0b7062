//! The team's own metric events (`track`, `track_outcome`, `observe`) before attribution: what
//! makes one valid, what it adds to an aggregate, and what a request scope holds of them until
//! it ends (one aggregate per name, so a scope that tracks in a loop holds a few numbers, not a
//! list of events).
//!
//! The rules are `tests/metrics/README.md`'s; the aggregate is the judge's own
//! [`MetricAgg`], so what the SDK adds up is what the server and the judge read.

use flagwire_core::judge::MetricAgg;

/// Longest metric name (the server refuses longer ones).
const MAX_NAME: usize = 64;

/// Distinct names one scope holds at most; events under further names are dropped and counted,
/// so a scope that makes up names cannot grow without bound before it ends.
pub(crate) const MAX_SCOPE_NAMES: usize = 256;

/// One event, as the public API records it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum MetricEvent {
    /// `track(name, value)`: a count or a value.
    Track(f64),
    /// `track_outcome(name, ok)`: a sub-operation's success or failure.
    Outcome(bool),
    /// `observe(name, value)` or a timer: a value of a distribution.
    Observe(f64),
}

/// Whether `name` is one the server accepts: lowercase ASCII letters, digits, `.`, `_`, `-`,
/// starting with a letter or digit, at most 64 characters. The server's rule, repeated here
/// because an SDK must drop a bad name itself: one bad series makes the server refuse the whole
/// report.
pub(crate) fn valid_name(name: &str) -> bool {
    let word = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    let bytes = name.as_bytes();
    bytes.first().is_some_and(|c| word(*c))
        && bytes.len() <= MAX_NAME
        && bytes.iter().all(|c| word(*c) || b"._-".contains(c))
}

impl MetricEvent {
    /// Whether the event can be reported. Values must be finite with a finite square (the
    /// server refuses a window whose sums are not finite, losing every other series with it);
    /// observed values must not be negative (the histogram holds non-negative values).
    pub fn is_valid(self) -> bool {
        match self {
            Self::Track(v) => (v * v).is_finite(),
            Self::Observe(v) => (v * v).is_finite() && v >= 0.0,
            Self::Outcome(_) => true,
        }
    }

    /// Adds the event to `agg` (`requests` are the scope's business, not the event's).
    pub fn add_to(self, agg: &mut MetricAgg) {
        match self {
            Self::Track(v) => add_value(agg, v),
            Self::Observe(v) => {
                add_value(agg, v);
                // Thousandths of the unit, halves up: milliseconds land in the microsecond
                // buckets latencies use. `as` saturates, so a huge value lands in the last one.
                agg.histogram.record((v * 1000.0 + 0.5).floor() as u64);
            }
            Self::Outcome(true) => agg.successes = agg.successes.saturating_add(1),
            Self::Outcome(false) => agg.failures = agg.failures.saturating_add(1),
        }
    }

    /// The aggregate of this one event alone.
    pub fn to_agg(self) -> MetricAgg {
        let mut agg = MetricAgg::default();
        self.add_to(&mut agg);
        agg
    }
}

fn add_value(agg: &mut MetricAgg, v: f64) {
    agg.count = agg.count.saturating_add(1);
    agg.sum += v;
    agg.sum_of_squares += v * v;
}

/// How many events an aggregate holds (what dropping it loses).
pub(crate) fn events_in(agg: &MetricAgg) -> u64 {
    agg.count
        .saturating_add(agg.successes)
        .saturating_add(agg.failures)
}

/// One name's events in one scope.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScopeMetric {
    /// The metric.
    pub name: String,
    /// Its events so far.
    pub agg: MetricAgg,
    /// The total of its `track` values: the request's own count ("hits in this query").
    pub total: f64,
}

impl ScopeMetric {
    /// What the scope adds to each series the metric is attributed to: its events, one
    /// request, and the square of the request's total.
    pub fn finish(self) -> (String, MetricAgg) {
        let mut agg = self.agg;
        agg.requests = 1;
        agg.request_sum_of_squares = self.total * self.total;
        (self.name, agg)
    }
}

/// One scope's events, per name, in the order names were first recorded.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) struct ScopeMetrics {
    // A scope records a handful of names: a short vector beats a map.
    names: Vec<ScopeMetric>,
}

impl ScopeMetrics {
    /// Records a valid event; `false` when the scope already holds [`MAX_SCOPE_NAMES`] other
    /// names (the caller counts it dropped).
    pub fn record(&mut self, name: &str, event: MetricEvent) -> bool {
        let at = match self.names.iter().position(|m| m.name == name) {
            Some(at) => at,
            None if self.names.len() >= MAX_SCOPE_NAMES => return false,
            None => {
                self.names.push(ScopeMetric {
                    name: name.to_owned(),
                    ..ScopeMetric::default()
                });
                self.names.len() - 1
            }
        };
        let m = &mut self.names[at];
        event.add_to(&mut m.agg);
        if let MetricEvent::Track(v) = event {
            m.total += v;
        }
        true
    }

    /// Takes in an inner scope's events, as if they had been recorded here (the enclosing
    /// scope is the request they belong to). Returns how many events found no room.
    pub fn absorb(&mut self, inner: ScopeMetrics) -> u64 {
        let mut dropped = 0;
        for m in inner.names {
            let full = self.names.len() >= MAX_SCOPE_NAMES;
            match self.names.iter_mut().find(|o| o.name == m.name) {
                Some(o) => {
                    o.agg.add(&m.agg);
                    o.total += m.total;
                }
                None if full => dropped += events_in(&m.agg),
                None => self.names.push(m),
            }
        }
        dropped
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }

    /// The scope's metrics, one per name.
    pub fn into_metrics(self) -> impl Iterator<Item = ScopeMetric> {
        self.names.into_iter()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observed_values_are_kept_in_thousandths_rounded_half_up() {
        // Exact in binary: 62.5 and 0.5 thousandths are true halves.
        let mut agg = MetricAgg::default();
        for v in [0.0625, 0.0005, 0.0004] {
            MetricEvent::Observe(v).add_to(&mut agg);
        }
        let h = &agg.histogram;
        assert_eq!((h.count(), h.zero_count(), h.sum()), (3, 1, 63.0 + 1.0));
        assert_eq!(
            agg.sum,
            0.0625 + 0.0005 + 0.0004,
            "the sum stays in the unit"
        );
    }

    #[test]
    fn names_and_values() {
        for ok in [
            "mem0.write",
            "fast_path_ms",
            "hits-per-query",
            "p95",
            "9lives",
        ] {
            assert!(valid_name(ok), "{ok}");
        }
        let long = "x".repeat(MAX_NAME + 1);
        for bad in ["", "Upper", "_lead", "a b", "ms/s", "é", long.as_str()] {
            assert!(!valid_name(bad), "{bad}");
        }
        assert!(
            MetricEvent::Track(-3.0).is_valid(),
            "a tracked value may be negative"
        );
        assert!(!MetricEvent::Observe(-3.0).is_valid());
        assert!(
            !MetricEvent::Track(1e160).is_valid(),
            "its square is not finite"
        );
    }
}
