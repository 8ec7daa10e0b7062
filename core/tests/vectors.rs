//! Runs every case of `tests/vectors/` (and `FLAGWIRE_VECTORS`) through `flagwire-core`, with
//! the plain context and with it prepared ([`PreparedContext`]), plus the murmur3 and
//! bucketing pairs of `bucketing.json`.

#[path = "support/vectors.rs"]
mod support;

use flagwire_core::bucket;
use flagwire_core::{Evaluation, PreparedContext, Snapshot};
use support::*;

#[test]
fn every_vector_case() {
    let mut tally = Tally::default();
    for file in load_all() {
        let snapshot = Snapshot::new(
            &file.environment,
            0,
            file.flags.clone(),
            file.segments.clone(),
        );
        for case in &file.cases {
            let r = snapshot.evaluate(&case.flag, &case.context, case.expected_type);
            tally.check(&file, case, &outcome(&r));
            let prepared = PreparedContext::new(case.context.clone());
            let p = snapshot.evaluate_prepared(&case.flag, &prepared, case.expected_type);
            assert_eq!(
                p,
                r,
                "{}: {} (the prepared context's result differs)",
                file.path.display(),
                case.description
            );
        }
    }
    let passed = tally.finish();
    println!("vectors: {passed} passed, 0 failed");
}

fn outcome(r: &Evaluation<'_>) -> Outcome {
    Outcome {
        value: r.value.map(value_json),
        variant: r.variant.to_owned(),
        reason: r.reason,
        error_code: r.error_code,
        cohort: r.cohort.to_owned(),
        rollout_id: r.rollout_id.to_owned(),
        flag_version: r.flag_version,
    }
}

#[test]
fn bucketing_pairs_and_murmur3_known_answers() {
    let json = read_json(&vectors_dir().join("bucketing.json"));
    let known = json["murmur3"].as_array().unwrap();
    for k in known {
        let input = k["input"].as_str().unwrap();
        let seed = k["seed"].as_u64().unwrap_or(0) as u32;
        let h = if seed == 0 {
            bucket::hash("", input)
        } else {
            mur3::murmurhash3_x86_32(input.as_bytes(), seed)
        };
        assert_eq!(
            u64::from(h),
            k["hash"].as_u64().unwrap(),
            "murmur3({input:?}, seed {seed})"
        );
    }
    let pairs = json["buckets"].as_array().unwrap();
    assert!(pairs.len() >= 3000);
    for p in pairs {
        let (salt, key) = (p["salt"].as_str().unwrap(), p["key"].as_str().unwrap());
        let h = bucket::hash(salt, key);
        assert_eq!(
            bucket::SaltedHash::new(salt).hash(key),
            h,
            "pre-hashed salt {salt:?} + {key:?}"
        );
        assert_eq!(
            u64::from(h),
            p["hash"].as_u64().unwrap(),
            "hash of {salt:?} + {key:?}"
        );
        let total = p["totalWeight"].as_u64().unwrap();
        assert_eq!(
            bucket::bucket(h, total),
            p["bucket"].as_u64().unwrap(),
            "bucket of {salt:?} + {key:?} / {total}"
        );
    }
}
