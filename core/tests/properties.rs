//! Properties of bucketing that every implementation must have: determinism, monotone ramps,
//! nested canary and control cohorts, and a uniform distribution.

use flagwire_core::Snapshot;
use flagwire_core::bucket;
use flagwire_proto::v1::*;
use proptest::prelude::*;

fn split(entries: &[(&str, u32, &str)], salt: &str) -> Flag {
    let variant = |k: &str| Variant {
        key: k.into(),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::StringValue(k.into())),
        }),
        description: String::new(),
    };
    let config = FlagConfig {
        enabled: true,
        off_variant: entries[0].0.into(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Split(Split {
                entries: entries
                    .iter()
                    .map(|(v, w, l)| SplitEntry {
                        variant: v.to_string(),
                        weight: *w,
                        label: l.to_string(),
                    })
                    .collect(),
                bucket_by: String::new(),
                salt: salt.into(),
                rollout_id: String::new(),
            })),
        }),
        ..Default::default()
    };
    let mut keys: Vec<&str> = entries.iter().map(|e| e.0).collect();
    keys.dedup();
    Flag {
        key: "f".into(),
        r#type: ValueType::String as i32,
        variants: keys.into_iter().map(variant).collect(),
        environments: [("e".to_string(), config)].into(),
        ..Default::default()
    }
}

fn ctx(key: &str) -> EvaluationContext {
    EvaluationContext {
        targeting_key: key.into(),
        attributes: Default::default(),
    }
}

/// (variant, cohort) served to `key`.
fn served(flag: &Flag, key: &str) -> (String, String) {
    let snapshot = Snapshot::new("e", 1, [flag.clone()], []);
    let r = snapshot.evaluate("f", &ctx(key), None);
    assert_eq!(r.reason, Reason::Split);
    (r.variant.to_owned(), r.cohort.to_owned())
}

proptest! {
    #[test]
    fn deterministic(salt in "\\PC{0,12}", key in "\\PC{1,40}", w in 1u32..10_000) {
        let flag = split(&[("a", w, ""), ("b", 10_000 - w + 1, "")], &salt);
        prop_assert_eq!(served(&flag, &key), served(&flag, &key));
        prop_assert_eq!(bucket::hash(&salt, &key), bucket::hash(&salt, &key));
    }

    #[test]
    fn raising_a_weight_at_the_last_entrys_expense_only_moves_units_in(
        salt in "[a-z0-9]{0,8}",
        keys in proptest::collection::vec("[a-z0-9-]{1,24}", 1..50),
        first in 0u32..3_000, second in 1u32..3_000, grow in 1u32..3_000,
    ) {
        let total = 10_000u32;
        let before = split(&[("a", first, ""), ("b", second, ""), ("c", total - first - second, "")], &salt);
        let after_a = split(&[("a", first + grow.min(total - first - second), ""), ("b", second, ""), ("c", total - first - second - grow.min(total - first - second), "")], &salt);
        for key in &keys {
            if served(&before, key).0 == "a" {
                prop_assert_eq!(served(&after_a, key).0, "a");
            }
        }
    }

    #[test]
    fn canary_and_control_cohorts_are_nested_and_never_swap(
        salt in "[a-z0-9]{1,8}",
        keys in proptest::collection::vec("[a-z0-9-]{1,24}", 1..50),
        w1 in 1u32..2_500, dw in 1u32..2_500,
    ) {
        let layout = |w: u32| split(&[("new", w, "canary"), ("old", 10_000 - 2 * w, ""), ("old", w, "control")], &salt);
        let (small, large) = (layout(w1), layout(w1 + dw));
        for key in &keys {
            let (s, l) = (served(&small, key).1, served(&large, key).1);
            if s == "canary" { prop_assert_eq!(&l, "canary"); }
            if s == "control" { prop_assert_eq!(&l, "control"); }
        }
    }
}

#[test]
fn equal_cohorts_in_the_canary_layout_and_uniform_buckets() {
    // 100,000 keys over a 4-way equal split: chi-square with 3 degrees of freedom must stay
    // below 16.27 (p = 0.001).
    let flag = split(
        &[("a", 25, ""), ("b", 25, ""), ("c", 25, ""), ("d", 25, "")],
        "",
    );
    let snapshot = Snapshot::new("e", 1, [flag], []);
    let mut counts = std::collections::HashMap::<String, f64>::new();
    for i in 0..100_000 {
        let key = format!("user-{i}");
        *counts
            .entry(snapshot.evaluate("f", &ctx(&key), None).variant.to_owned())
            .or_default() += 1.0;
    }
    let expected = 25_000.0;
    let chi2: f64 = counts
        .values()
        .map(|o| (o - expected).powi(2) / expected)
        .sum();
    assert_eq!(counts.len(), 4);
    assert!(chi2 < 16.27, "chi-square {chi2:.2} over {counts:?}");
}
