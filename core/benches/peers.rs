//! Our engine beside Unleash's (`unleash-yggdrasil`), in the same run, on the same decision:
//! five single-attribute conditions the context does not match, then a 100 % rollout over three
//! equal variants (`cargo bench -p flagwire-core --bench peers`). The ratio of the two is the
//! figure issue 18 sets a goal for; absolute times move with the machine's load, the ratio less.
//! Ours runs twice: from the plain context, and from a [`flagwire_core::PreparedContext`] (the
//! form closest to Unleash's, whose context is a typed struct parsed before the call).

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use flagwire_proto::v1::{Reason, ValueType};
use serde_json::json;
use std::hint::black_box;
use unleash_yggdrasil::{EngineState, UpdateMessage};

/// The Unleash feature equivalent to `fixtures::split_flag()`: each of our rules becomes a
/// strategy with one constraint (Unleash enables a feature when any strategy matches), and the
/// default split becomes a flexible rollout at 100 % with three variable-weight variants.
fn unleash_features() -> UpdateMessage {
    let constraint = |name: &str, operator: &str, values: serde_json::Value| {
        json!({
            "name": "default",
            "parameters": {},
            "constraints": [{"contextName": name, "operator": operator, "values": values}]
        })
    };
    let variant = |name: &str| json!({"name": name, "weight": 333, "weightType": "variable", "stickiness": "default"});
    let features = json!({
        "version": 2,
        "features": [{
            "name": "split-flag",
            "type": "release",
            "enabled": true,
            "strategies": [
                constraint("country", "IN", json!(["US", "CA", "GB"])),
                constraint("email", "STR_ENDS_WITH", json!(["@flagwire.dev"])),
                {
                    "name": "default",
                    "parameters": {},
                    "constraints": [{"contextName": "age", "operator": "NUM_GTE", "value": "65"}]
                },
                constraint("plan", "IN", json!(["free", "trial"])),
                constraint("groups", "STR_CONTAINS", json!(["beta"])),
                {
                    "name": "flexibleRollout",
                    "parameters": {"rollout": "100", "stickiness": "default", "groupId": "split-flag"},
                    "constraints": [],
                    "variants": [variant("red"), variant("green"), variant("blue")]
                }
            ]
        }]
    });
    serde_json::from_value(features).expect("a valid Unleash features document")
}

fn peers(c: &mut Criterion) {
    let snapshot = fixtures::snapshot(0);
    let ctx = fixtures::context();
    let ours = snapshot.evaluate("split-flag", &ctx, Some(ValueType::String));
    assert_eq!(ours.reason, Reason::Split, "ours reaches the split");

    let engine = EngineState::default();
    if let Some(warnings) = engine.take_state(unleash_features())
        && !warnings.is_empty()
    {
        panic!("Unleash refused part of the features: {warnings:?}");
    }
    let unleash_ctx = serde_json::from_value(json!({
        "userId": "user-1234567",
        "properties": {
            "country": "NL", "email": "ada@example.com", "age": "31", "plan": "pro",
            "groups": "staff"
        }
    }))
    .expect("a valid Unleash context");
    let theirs = engine.get_variant("split-flag", &unleash_ctx, &None);
    assert!(
        theirs.feature_enabled && ["red", "green", "blue"].contains(&theirs.name.as_str()),
        "Unleash reaches the rollout's variants: {theirs:?}"
    );

    let mut group = c.benchmark_group("5 rules + 3-way split");
    group.bench_function("flagwire-core", |b| {
        b.iter(|| {
            snapshot.evaluate(
                black_box("split-flag"),
                black_box(&ctx),
                Some(ValueType::String),
            )
        })
    });
    let prepared = flagwire_core::PreparedContext::new(ctx.clone());
    group.bench_function("flagwire-core, prepared context", |b| {
        b.iter(|| {
            snapshot.evaluate_prepared(
                black_box("split-flag"),
                black_box(&prepared),
                Some(ValueType::String),
            )
        })
    });
    group.bench_function("unleash-yggdrasil 0.21.7", |b| {
        b.iter(|| engine.get_variant(black_box("split-flag"), black_box(&unleash_ctx), &None))
    });
    group.finish();
}

criterion_group!(benches, peers);
criterion_main!(benches);
