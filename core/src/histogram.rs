//! Latency histograms: OpenTelemetry's base-2 exponential layout at the fixed scale 3, for
//! integer microseconds.
//!
//! SDKs record outcome latencies into a [`Histogram`], ship it in a `Report` as
//! `flagwire.v1.ExponentialHistogram`, and the server merges histograms from many instances and
//! windows before reading quantiles off them. Merging is exact (bucket counts add) only if every
//! language puts every value into the same bucket, so the bucket index is computed with integer
//! arithmetic alone, never a floating-point logarithm (which rounds differently between libms
//! right at the bucket boundaries). `docs/evaluation.md` ("Latency histograms") specifies the
//! algorithm and `tests/vectors/histogram.json` pins it for the Python and TypeScript SDKs.
//!
//! Bucket `i` holds the values `v` with `2^(i/8) < v <= 2^((i+1)/8)`; `0` goes to the zero
//! count. For `u64` values the index lies in [`MIN_INDEX`]`..=`[`MAX_INDEX`] (`-1..=511`), so a
//! histogram never holds more than 513 buckets, whatever it is fed; latencies from 1 µs to an
//! hour span fewer than 300.

use flagwire_proto::v1::ExponentialHistogram;

use crate::validate::FieldError;

/// The only scale Flagwire uses: 2^3 = 8 buckets per power of two (a bucket's upper bound is
/// about 9 % above its lower bound).
pub const SCALE: i32 = 3;

/// The index of the bucket of `1` (`2^(-1/8) < 1 <= 2^0`), the smallest non-zero `u64`.
pub const MIN_INDEX: i32 = -1;

/// The index of the bucket of `u64::MAX` (`2^(511/8) < 2^64 - 1 <= 2^64`).
pub const MAX_INDEX: i32 = 511;

/// `T[k] = floor(2^(63 + k/8))` for `k = 0..8`: the lower boundaries of the eight sub-buckets of
/// one power of two, scaled to the range `[2^63, 2^64)` of a normalised value.
///
/// Each is the largest integer `r` with `r^8 <= 2^(504 + k)`, computed with exact integer
/// arithmetic (an integer 8th root in Python; the unit test `boundaries_are_exact_8th_roots`
/// re-checks `r^8 <= 2^(504+k) < (r+1)^8` with 512-bit integers). Comparing against the floor is
/// exact: for `k` in `1..8` the boundary `x = 2^(63 + k/8)` is irrational, so for an integer `m`,
/// `m > x` holds exactly when `m > floor(x)` (`m > floor(x)` means `m >= floor(x) + 1 > x`).
/// `T[0] = 2^63` is the exact boundary itself; powers of two, which sit on it, are handled
/// separately.
pub const BOUNDARIES: [u64; 8] = [
    0x8000_0000_0000_0000, // 2^63
    0x8b95_c1e3_ea8b_d6e6, // floor(2^(63 + 1/8)) = 10058158527438640870
    0x9837_f051_8db8_a96f, // floor(2^(63 + 2/8)) = 10968499650544839023
    0xa5fe_d6a9_b151_38ea, // floor(2^(63 + 3/8)) = 11961233684655323370
    0xb504_f333_f9de_6484, // floor(2^(63 + 4/8)) = 13043817825332782212 (sqrt 2)
    0xc567_2a11_5506_dadd, // floor(2^(63 + 5/8)) = 14224384202002324189
    0xd744_fcca_d69d_6af4, // floor(2^(63 + 6/8)) = 15511800964685064948
    0xeac0_c6e7_dd24_392e, // floor(2^(63 + 7/8)) = 16915738899553466670
];

/// The bucket index of `v` at scale 3, or `None` for `0` (the zero bucket).
///
/// `e = floor(log2 v)`; `m = v << (63 - e)`, so `2^63 <= m < 2^64`. A power of two
/// (`m == 2^63`) is the upper bound of bucket `8e - 1`; otherwise the index is `8e + k` for the
/// largest `k` with `m > BOUNDARIES[k]`.
pub fn bucket_index(v: u64) -> Option<i32> {
    if v == 0 {
        return None;
    }
    let e = 63 - v.leading_zeros() as i32;
    let m = v << (63 - e);
    if m == BOUNDARIES[0] {
        return Some(8 * e - 1);
    }
    // At most 7 comparisons against constants; `k = 0` always holds here (m > 2^63).
    let k = BOUNDARIES.iter().rposition(|&t| m > t).unwrap_or(0) as i32;
    Some(8 * e + k)
}

/// The upper bound of bucket `index`, `2^((index + 1) / 8)`, as the SDKs compute it:
/// `2f64.powf((index + 1) as f64 / 8.0)`. Implementations may differ from it in the last bits
/// (libm `pow`); compare with a relative tolerance.
pub fn upper_bound(index: i32) -> f64 {
    2f64.powf(f64::from(index + 1) / 8.0)
}

/// A quantile read off a histogram: the bucket that holds it and that bucket's upper bound.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuantileAt {
    /// The bucket index; `None` for the zero bucket.
    pub index: Option<i32>,
    /// The bucket's upper bound in microseconds (`0.0` for the zero bucket): the quantile is at
    /// most this, and more than the bucket's lower bound.
    pub upper_bound_us: f64,
}

/// A histogram of latencies in integer microseconds.
///
/// Invariants, kept by every constructor and operation: `count = zero_count + Σ buckets`; the
/// buckets are dense from `offset` and trimmed (the first and the last are non-zero, or there
/// are none and `offset` is 0), so equal contents have equal representations; every index lies
/// in `MIN_INDEX..=MAX_INDEX`. Counts saturate at `u64::MAX` instead of wrapping.
///
/// `sum` is an `f64` of microseconds, as on the wire (`ExponentialHistogram.sum` is a double):
/// exact while the total stays below 2^53 µs (285 years); beyond that it rounds, which no
/// quantile depends on.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Histogram {
    count: u64,
    sum: f64,
    zero_count: u64,
    offset: i32,
    buckets: Vec<u64>,
}

impl Histogram {
    /// An empty histogram.
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of recorded values.
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of recorded values, in microseconds.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// Number of recorded zeros.
    pub fn zero_count(&self) -> u64 {
        self.zero_count
    }

    /// Index of the first bucket (0 when there are none).
    pub fn offset(&self) -> i32 {
        self.offset
    }

    /// Counts of consecutive buckets from [`Histogram::offset`]; the first and last are non-zero.
    pub fn bucket_counts(&self) -> &[u64] {
        &self.buckets
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Records one value.
    pub fn record(&mut self, v: u64) {
        self.count = self.count.saturating_add(1);
        self.sum += v as f64;
        match bucket_index(v) {
            None => self.zero_count = self.zero_count.saturating_add(1),
            Some(i) => self.add(i, 1),
        }
    }

    /// Records `n` copies of `v` at once (simulators and bulk loads; same as `n` records).
    pub fn record_n(&mut self, v: u64, n: u64) {
        if n == 0 {
            return;
        }
        self.count = self.count.saturating_add(n);
        self.sum += v as f64 * n as f64;
        match bucket_index(v) {
            None => self.zero_count = self.zero_count.saturating_add(n),
            Some(i) => self.add(i, n),
        }
    }

    /// Adds every value of `other` (bucket counts add; the result is what recording both sets of
    /// values into one histogram gives).
    pub fn merge(&mut self, other: &Histogram) {
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        if other.buckets.is_empty() {
            return;
        }
        // Grow once to cover both ranges, then add in place.
        let last = other.offset + other.buckets.len() as i32 - 1;
        self.cover(other.offset);
        self.cover(last);
        let start = (other.offset - self.offset) as usize;
        for (slot, n) in self.buckets[start..].iter_mut().zip(&other.buckets) {
            *slot = slot.saturating_add(*n);
        }
    }

    /// The quantile `q` (in `(0, 1]`): the bucket holding the value of rank `ceil(q × count)`
    /// (1-based; the product in IEEE double), walking the zero bucket first, then the buckets
    /// by increasing index. `None` when the histogram is empty or `q` is outside `(0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<QuantileAt> {
        if self.count == 0 || q.is_nan() || q <= 0.0 || q > 1.0 {
            return None;
        }
        let rank = ((q * self.count as f64).ceil() as u64).clamp(1, self.count);
        if rank <= self.zero_count {
            return Some(QuantileAt {
                index: None,
                upper_bound_us: 0.0,
            });
        }
        let mut seen = self.zero_count;
        for (i, n) in self.buckets.iter().enumerate() {
            seen = seen.saturating_add(*n);
            if seen >= rank {
                let index = self.offset + i as i32;
                return Some(QuantileAt {
                    index: Some(index),
                    upper_bound_us: upper_bound(index),
                });
            }
        }
        // Unreachable while count = zero_count + Σ buckets; saturated counts end here.
        let index = self.offset + self.buckets.len() as i32 - 1;
        Some(QuantileAt {
            index: Some(index),
            upper_bound_us: upper_bound(index),
        })
    }

    /// The wire form (scale 3, dense buckets from `offset`).
    pub fn to_proto(&self) -> ExponentialHistogram {
        ExponentialHistogram {
            scale: SCALE,
            count: self.count,
            sum: self.sum,
            zero_count: self.zero_count,
            offset: self.offset,
            bucket_counts: self.buckets.clone(),
        }
    }

    /// Reads the wire form, checking it whole. A [`FieldError`] names the offending field
    /// relative to the message (`scale`, `count`, `sum`, `bucketCounts[3]`), so callers prefix
    /// its path.
    ///
    /// Rejected: a scale other than 3; `count != zeroCount + Σ bucketCounts`; a negative,
    /// infinite or NaN `sum`; a non-zero count in a bucket no `u64` can fall into (index outside
    /// `-1..=511`). Zero buckets at either end are accepted and trimmed.
    pub fn from_proto(p: &ExponentialHistogram) -> Result<Self, FieldError> {
        let invalid = |field: String, reason: String| FieldError { field, reason };
        if p.scale != SCALE {
            return Err(invalid(
                "scale".into(),
                format!("must be {SCALE}, not {}", p.scale),
            ));
        }
        if !p.sum.is_finite() || p.sum < 0.0 {
            return Err(invalid(
                "sum".into(),
                format!("must be a finite non-negative number, not {}", p.sum),
            ));
        }
        let mut total = p.zero_count;
        let mut h = Histogram {
            count: p.count,
            sum: p.sum,
            zero_count: p.zero_count,
            ..Histogram::default()
        };
        // Sized once for the non-zero range (at most every valid index): growing bucket by
        // bucket reallocated several times per histogram, on every series of every report.
        let first = p.bucket_counts.iter().position(|n| *n > 0);
        let last = p.bucket_counts.iter().rposition(|n| *n > 0);
        if let (Some(first), Some(last)) = (first, last) {
            let valid = (MAX_INDEX - MIN_INDEX + 1) as usize;
            h.buckets.reserve_exact((last - first + 1).min(valid));
        }
        for (i, &n) in p.bucket_counts.iter().enumerate() {
            if n == 0 {
                continue;
            }
            let index = i64::from(p.offset) + i as i64;
            if !(i64::from(MIN_INDEX)..=i64::from(MAX_INDEX)).contains(&index) {
                return Err(invalid(
                    format!("bucketCounts[{i}]"),
                    format!(
                        "bucket {index} holds no integer microsecond value \
                         (indexes run from {MIN_INDEX} to {MAX_INDEX})"
                    ),
                ));
            }
            total = total.checked_add(n).ok_or_else(|| {
                invalid(
                    "count".into(),
                    "zeroCount plus the bucket counts overflows".into(),
                )
            })?;
            h.add(index as i32, n);
        }
        if total != p.count {
            return Err(invalid(
                "count".into(),
                format!(
                    "{} is not zeroCount plus the bucket counts ({total})",
                    p.count
                ),
            ));
        }
        Ok(h)
    }

    /// Iterates over the non-empty buckets as `(index, count)`, by increasing index.
    pub fn buckets(&self) -> impl Iterator<Item = (i32, u64)> + '_ {
        self.buckets
            .iter()
            .enumerate()
            .filter(|(_, n)| **n > 0)
            .map(|(i, n)| (self.offset + i as i32, *n))
    }

    /// Adds `n` (> 0) to bucket `index`, growing the dense range as needed.
    fn add(&mut self, index: i32, n: u64) {
        self.cover(index);
        let slot = &mut self.buckets[(index - self.offset) as usize];
        *slot = slot.saturating_add(n);
    }

    /// Grows the dense range to include `index` (new buckets are zero).
    fn cover(&mut self, index: i32) {
        if self.buckets.is_empty() {
            self.offset = index;
            self.buckets.push(0);
        } else if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.buckets.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        } else {
            let need = (index - self.offset) as usize + 1;
            if need > self.buckets.len() {
                self.buckets.resize(need, 0);
            }
        }
    }
}

impl TryFrom<&ExponentialHistogram> for Histogram {
    type Error = FieldError;

    fn try_from(p: &ExponentialHistogram) -> Result<Self, FieldError> {
        Histogram::from_proto(p)
    }
}

impl From<&Histogram> for ExponentialHistogram {
    fn from(h: &Histogram) -> Self {
        h.to_proto()
    }
}

#[cfg(test)]
mod tests;
