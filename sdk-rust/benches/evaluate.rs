//! Local evaluation through the SDK's public API (`cargo bench -p flagwire --bench evaluate`).

#[path = "../../core/tests/support/fixtures.rs"]
mod fixtures;

use criterion::{Criterion, criterion_group, criterion_main};
use flagwire::{Client, Context};
use prost::Message;
use std::hint::black_box;

fn benches(c: &mut Criterion) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let _guard = runtime.enter();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.bin");
    std::fs::write(&path, fixtures::snapshot(0).to_proto().encode_to_vec()).unwrap();
    let client = Client::builder("http://offline.invalid", "-")
        .bootstrap_file(&path)
        .offline(true)
        .build()
        .unwrap();
    let ctx = Context::from(fixtures::context());
    c.bench_function("sdk bool_value, no rules", |b| {
        b.iter(|| client.bool_value(black_box("bool-flag"), black_box(&ctx), false))
    });
    c.bench_function("sdk with_str_value, 5 rules + 3-way split", |b| {
        b.iter(|| client.with_str_value(black_box("split-flag"), black_box(&ctx), "none", str::len))
    });
    c.bench_function("sdk string_details, 5 rules + 3-way split", |b| {
        b.iter(|| client.string_details(black_box("split-flag"), black_box(&ctx), "none"))
    });
}

criterion_group!(sdk, benches);
criterion_main!(sdk);
