use super::*;
use proptest::prelude::*;

/// Little-endian 64-bit limbs of a non-negative integer, for exact checks beyond `u128`.
type Big = Vec<u64>;

fn big(v: u128) -> Big {
    vec![v as u64, (v >> 64) as u64]
}

fn mul(a: &Big, b: &Big) -> Big {
    let mut out = vec![0u64; a.len() + b.len()];
    for (i, &x) in a.iter().enumerate() {
        let mut carry = 0u128;
        for (j, &y) in b.iter().enumerate() {
            let t = u128::from(x) * u128::from(y) + u128::from(out[i + j]) + carry;
            out[i + j] = t as u64;
            carry = t >> 64;
        }
        let mut k = i + b.len();
        while carry > 0 {
            let t = u128::from(out[k]) + carry;
            out[k] = t as u64;
            carry = t >> 64;
            k += 1;
        }
    }
    out
}

fn pow8(v: u128) -> Big {
    let sq = mul(&big(v), &big(v));
    let q = mul(&sq, &sq);
    mul(&q, &q)
}

fn pow2(e: u32) -> Big {
    let mut out = vec![0u64; e as usize / 64 + 1];
    out[e as usize / 64] = 1 << (e % 64);
    out
}

fn cmp(a: &Big, b: &Big) -> std::cmp::Ordering {
    let n = a.len().max(b.len());
    let at = |x: &Big, i: usize| x.get(i).copied().unwrap_or(0);
    (0..n)
        .rev()
        .map(|i| at(a, i).cmp(&at(b, i)))
        .find(|o| o.is_ne())
        .unwrap_or(std::cmp::Ordering::Equal)
}

fn bit_length(a: &Big) -> u32 {
    a.iter()
        .enumerate()
        .rev()
        .find(|(_, l)| **l != 0)
        .map_or(0, |(i, l)| i as u32 * 64 + 64 - l.leading_zeros())
}

fn minus_one(a: &Big) -> Big {
    let mut out = a.clone();
    for limb in &mut out {
        let (v, borrow) = limb.overflowing_sub(1);
        *limb = v;
        if !borrow {
            break;
        }
    }
    out
}

/// The index straight from the definition: `2^(i/8) < v <= 2^((i+1)/8)` is
/// `2^i < v^8 <= 2^(i+1)`, so `i + 1` is the least `j` with `v^8 <= 2^j`, which is the bit
/// length of `v^8 - 1`.
fn reference_index(v: u64) -> Option<i32> {
    (v != 0).then(|| bit_length(&minus_one(&pow8(u128::from(v)))) as i32 - 1)
}

/// The same with `u128` only, for `v < 2^16` (so `v^8 < 2^128`).
fn small_reference_index(v: u64) -> Option<i32> {
    let w = u128::from(v).pow(8);
    (v != 0).then(|| (128 - (w - 1).leading_zeros()) as i32 - 1)
}

#[test]
fn boundaries_are_exact_8th_roots() {
    for (k, &t) in BOUNDARIES.iter().enumerate() {
        let bound = pow2(504 + k as u32);
        assert_ne!(
            cmp(&pow8(u128::from(t)), &bound),
            std::cmp::Ordering::Greater,
            "T[{k}]^8 > 2^(504+{k})"
        );
        assert_eq!(
            cmp(&pow8(u128::from(t) + 1), &bound),
            std::cmp::Ordering::Greater,
            "(T[{k}]+1)^8 <= 2^(504+{k})"
        );
    }
    assert_eq!(BOUNDARIES[0], 1 << 63);
}

#[test]
fn zero_one_and_extremes() {
    assert_eq!(bucket_index(0), None);
    assert_eq!(bucket_index(1), Some(-1));
    assert_eq!(bucket_index(2), Some(7));
    assert_eq!(bucket_index(3), Some(12)); // 2^(12/8) = 2.83 < 3 <= 2^(13/8) = 3.08
    assert_eq!(bucket_index(u64::MAX), Some(MAX_INDEX));
    assert_eq!(bucket_index(1 << 63), Some(8 * 63 - 1));
}

#[test]
fn every_small_value_matches_the_definition() {
    for v in 0..=u64::from(u16::MAX) {
        assert_eq!(bucket_index(v), small_reference_index(v), "v = {v}");
    }
}

#[test]
fn the_two_references_agree() {
    for v in (0..=u64::from(u16::MAX)).step_by(97) {
        assert_eq!(reference_index(v), small_reference_index(v), "v = {v}");
    }
}

#[test]
fn powers_of_two_and_their_neighbours() {
    for e in 0..64u32 {
        let p = 1u64 << e;
        assert_eq!(bucket_index(p), Some(8 * e as i32 - 1), "2^{e}");
        for v in [p - 1, p, p.saturating_add(1)] {
            assert_eq!(bucket_index(v), reference_index(v), "v = {v}");
        }
    }
}

#[test]
fn values_next_to_every_irrational_boundary() {
    // floor(2^(j/8)) lies below bucket j and floor + 1 in bucket j or above (j not a
    // multiple of 8). Once buckets are wider than 1 (2^((j-1)/8) > 11.05, j >= 29), that
    // is exactly bucket j - 1 and bucket j.
    for e in 0..64u32 {
        for k in 1..8u32 {
            // floor(2^(e + k/8)) = floor(T[k] / 2^(63 - e)), exactly.
            let floor = BOUNDARIES[k as usize] >> (63 - e);
            let j = (8 * e + k) as i32;
            if floor >= 1 {
                assert!(bucket_index(floor).unwrap() < j, "floor(2^({j}/8))");
            }
            assert!(bucket_index(floor + 1).unwrap() >= j, "ceil(2^({j}/8))");
            if j >= 29 {
                assert_eq!(bucket_index(floor), Some(j - 1), "floor(2^({j}/8))");
                assert_eq!(bucket_index(floor + 1), Some(j), "ceil(2^({j}/8))");
            }
            for v in [
                floor.saturating_sub(1),
                floor,
                floor + 1,
                floor.saturating_add(2),
            ] {
                assert_eq!(bucket_index(v), reference_index(v), "v = {v}");
            }
        }
    }
}

proptest! {
    #[test]
    fn index_matches_the_definition(v in any::<u64>()) {
        prop_assert_eq!(bucket_index(v), reference_index(v));
    }

    #[test]
    fn index_matches_the_definition_for_small_values(v in 0u64..65_536) {
        prop_assert_eq!(bucket_index(v), small_reference_index(v));
    }

    #[test]
    fn merge_equals_recording_everything(
        a in prop::collection::vec(any::<u64>(), 0..40),
        b in prop::collection::vec(0u64..5_000_000, 0..40),
    ) {
        let (mut ha, mut hb, mut all) = (Histogram::new(), Histogram::new(), Histogram::new());
        a.iter().for_each(|v| ha.record(*v));
        b.iter().for_each(|v| hb.record(*v));
        a.iter().chain(&b).for_each(|v| all.record(*v));
        let mut ab = ha.clone();
        ab.merge(&hb);
        let mut ba = hb.clone();
        ba.merge(&ha);
        prop_assert_eq!(ab.bucket_counts(), all.bucket_counts());
        prop_assert_eq!(ab.offset(), all.offset());
        prop_assert_eq!(ab.count(), all.count());
        prop_assert_eq!(ab.zero_count(), all.zero_count());
        prop_assert_eq!(ba.bucket_counts(), all.bucket_counts());
        prop_assert_eq!(ba.offset(), all.offset());
        prop_assert!(all.bucket_counts().len() <= (MAX_INDEX - MIN_INDEX + 1) as usize);
        let round = Histogram::from_proto(&all.to_proto()).unwrap();
        prop_assert_eq!(round, all);
    }
}

#[test]
fn quantiles_walk_the_zero_bucket_first() {
    let mut h = Histogram::new();
    assert_eq!(h.quantile(0.5), None);
    for v in [0, 0, 1, 100, 100, 1000] {
        h.record(v);
    }
    // ranks: 0.5*6 = 3 -> value 1 (bucket -1); 0.95*6 = 5.7 -> 6 -> 1000.
    assert_eq!(
        h.quantile(0.3),
        Some(QuantileAt {
            index: None,
            upper_bound_us: 0.0
        })
    );
    assert_eq!(h.quantile(0.5).unwrap().index, Some(-1));
    assert_eq!(h.quantile(0.5).unwrap().upper_bound_us, 1.0);
    let p95 = h.quantile(0.95).unwrap();
    assert_eq!(p95.index, bucket_index(1000));
    assert!(p95.upper_bound_us >= 1000.0 && p95.upper_bound_us < 1000.0 * 1.091);
    assert_eq!(h.quantile(1.0).unwrap().index, bucket_index(1000));
    assert_eq!(h.quantile(0.0), None);
    assert_eq!(h.quantile(1.5), None);
    assert_eq!(h.quantile(f64::NAN), None);
}

#[test]
fn upper_bounds() {
    assert_eq!(upper_bound(-1), 1.0);
    assert_eq!(upper_bound(7), 2.0);
    assert!((upper_bound(3) - std::f64::consts::SQRT_2).abs() < 1e-15);
    // Every bucket's upper bound is at least each value in it.
    for v in 1..5000u64 {
        let i = bucket_index(v).unwrap();
        assert!(upper_bound(i) * (1.0 + 1e-12) >= v as f64, "v = {v}");
        assert!(upper_bound(i - 1) < v as f64 * (1.0 + 1e-12), "v = {v}");
    }
}

#[test]
fn proto_round_trip_and_rejections() {
    let mut h = Histogram::new();
    for v in [0, 5, 5, 17, 3_600_000_000] {
        h.record(v);
    }
    let p = h.to_proto();
    assert_eq!(p.scale, 3);
    assert_eq!(p.count, 5);
    assert_eq!(p.zero_count, 1);
    assert_eq!(p.offset, bucket_index(5).unwrap());
    assert_eq!(Histogram::from_proto(&p).unwrap(), h);

    // Zero buckets at the ends are trimmed.
    let mut padded = p.clone();
    padded.offset -= 2;
    padded.bucket_counts.splice(0..0, [0, 0]);
    padded.bucket_counts.push(0);
    assert_eq!(Histogram::try_from(&padded).unwrap(), h);

    let field = |p: &ExponentialHistogram| Histogram::from_proto(p).unwrap_err().field;
    assert_eq!(
        field(&ExponentialHistogram {
            scale: 2,
            ..p.clone()
        }),
        "scale"
    );
    assert_eq!(
        field(&ExponentialHistogram {
            count: 6,
            ..p.clone()
        }),
        "count"
    );
    assert_eq!(
        field(&ExponentialHistogram {
            sum: -1.0,
            ..p.clone()
        }),
        "sum"
    );
    assert_eq!(
        field(&ExponentialHistogram {
            sum: f64::NAN,
            ..p.clone()
        }),
        "sum"
    );
    let below = ExponentialHistogram {
        offset: -2,
        bucket_counts: vec![1],
        count: 1,
        zero_count: 0,
        ..p.clone()
    };
    assert_eq!(field(&below), "bucketCounts[0]");
    let overflow = ExponentialHistogram {
        offset: 0,
        bucket_counts: vec![u64::MAX, 1],
        count: 0,
        zero_count: 0,
        ..p.clone()
    };
    assert_eq!(field(&overflow), "count");
    // An empty histogram.
    let empty = Histogram::new().to_proto();
    assert_eq!((empty.offset, empty.bucket_counts.len()), (0, 0));
    assert_eq!(Histogram::from_proto(&empty).unwrap(), Histogram::new());
}

#[test]
fn memory_is_bounded_by_the_index_range() {
    let mut h = Histogram::new();
    h.record(1);
    h.record(u64::MAX);
    assert_eq!(h.offset(), MIN_INDEX);
    assert_eq!(h.bucket_counts().len(), 513);
    assert_eq!(h.buckets().collect::<Vec<_>>(), vec![(-1, 1), (511, 1)]);
}
