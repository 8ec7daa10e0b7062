//! Criterion benchmarks of local evaluation (`cargo bench -p flagwire-core --bench evaluate`).

#[path = "../tests/support/fixtures.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use flagwire_proto::v1::ValueType;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let snapshot = fixtures::snapshot(1000);
    let ctx = fixtures::context();
    c.bench_function("boolean flag, no rules", |b| {
        b.iter(|| {
            snapshot.evaluate(
                black_box("bool-flag"),
                black_box(&ctx),
                Some(ValueType::Boolean),
            )
        })
    });
    c.bench_function("5 rules + 3-way split", |b| {
        b.iter(|| {
            snapshot.evaluate(
                black_box("split-flag"),
                black_box(&ctx),
                Some(ValueType::String),
            )
        })
    });
    let prepared = flagwire_core::PreparedContext::new(ctx.clone());
    c.bench_function("5 rules + 3-way split, prepared context", |b| {
        b.iter(|| {
            snapshot.evaluate_prepared(
                black_box("split-flag"),
                black_box(&prepared),
                Some(ValueType::String),
            )
        })
    });
    c.bench_function("prepare the context (5 attributes)", |b| {
        b.iter(|| flagwire_core::PreparedContext::new(black_box(&ctx).clone()))
    });
    c.bench_function("evaluate all, 1,002 flags", |b| {
        b.iter(|| {
            let keys = snapshot.flag_keys();
            keys.iter()
                .map(|k| snapshot.evaluate(k, black_box(&ctx), None).reason as i32)
                .sum::<i32>()
        })
    });
}

criterion_group!(evaluate, benches);
criterion_main!(evaluate, hash);

fn hashing(c: &mut Criterion) {
    c.bench_function("murmur3 salt+key (22 bytes)", |b| {
        b.iter(|| flagwire_core::bucket::hash(black_box("split-flag"), black_box("user-1234567")))
    });
    let ctx = fixtures::context();
    c.bench_function("attribute lookup", |b| {
        b.iter(|| flagwire_core::context::attribute(black_box(&ctx), black_box("plan")).is_some())
    });
}

criterion_group!(hash, hashing);
