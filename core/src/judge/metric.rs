//! The team's own metrics as the judge sees them: what one cohort recorded of one metric over
//! some windows (`flagwire.v1.MetricSeries` added up; see `tests/metrics/README.md` for how SDKs
//! record it), and the statistics a gate reads from it.

use crate::histogram::Histogram;

/// One metric's aggregates for one cohort.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetricAgg {
    /// Values recorded (track, observe).
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// The sum of their squares.
    pub sum_of_squares: f64,
    /// observe(): the values in thousandths of the unit, in the latency histogram's layout.
    pub histogram: Histogram,
    /// track_outcome(): successes.
    pub successes: u64,
    /// track_outcome(): failures.
    pub failures: u64,
    /// Request scopes that recorded the metric.
    pub requests: u64,
    /// The sum of the squares of each such request's total.
    pub request_sum_of_squares: f64,
}

impl MetricAgg {
    /// Adds `other` into `self`.
    pub fn add(&mut self, other: &MetricAgg) {
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.sum_of_squares += other.sum_of_squares;
        self.histogram.merge(&other.histogram);
        self.successes = self.successes.saturating_add(other.successes);
        self.failures = self.failures.saturating_add(other.failures);
        self.requests = self.requests.saturating_add(other.requests);
        self.request_sum_of_squares += other.request_sum_of_squares;
    }

    /// Successes out of outcomes (track_outcome); `None` without any.
    pub fn rate(&self) -> Option<f64> {
        let n = self.successes.saturating_add(self.failures);
        (n > 0).then(|| self.successes as f64 / n as f64)
    }

    /// The mean of the values; `None` without any.
    pub fn mean(&self) -> Option<f64> {
        (self.count > 0).then(|| self.sum / self.count as f64)
    }

    /// The mean total per request over `requests` measured requests of the cohort (those that
    /// recorded nothing count as zero); `None` without requests.
    pub fn per_request(&self, requests: u64) -> Option<f64> {
        (requests > 0).then(|| self.sum / requests as f64)
    }

    /// The `q` quantile of the observed values in the metric's unit (the upper bound of its
    /// histogram bucket); `None` without observations.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let at = self.histogram.quantile(q)?;
        Some(at.upper_bound_us / 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statistics_of_each_kind() {
        let mut a = MetricAgg {
            count: 2,
            sum: 9.0,
            sum_of_squares: 41.0,
            successes: 99,
            failures: 1,
            requests: 2,
            request_sum_of_squares: 41.0,
            ..MetricAgg::default()
        };
        a.histogram.record(420_000);
        assert_eq!(a.rate(), Some(0.99));
        assert_eq!(a.mean(), Some(4.5));
        assert_eq!(
            a.per_request(3),
            Some(3.0),
            "a request without events counts as zero"
        );
        let p50 = a.quantile(0.5).unwrap();
        assert!((420.0..=420.0 * 1.1).contains(&p50), "{p50}");
        let mut b = MetricAgg::default();
        assert_eq!(
            (b.rate(), b.mean(), b.per_request(0), b.quantile(0.5)),
            (None, None, None, None)
        );
        b.add(&a);
        b.add(&a);
        assert_eq!(
            (b.count, b.successes, b.requests, b.histogram.count()),
            (4, 198, 4, 2)
        );
    }
}
