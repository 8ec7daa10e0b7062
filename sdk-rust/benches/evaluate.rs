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

    // With metrics on (a client that reports; nothing listens, and it never retries during
    // the run), reads also count, and measure() adds its bookkeeping.
    let online = Client::builder("http://127.0.0.1:9", "-")
        .bootstrap_file(&path)
        .backoff(
            std::time::Duration::from_secs(3600),
            std::time::Duration::from_secs(3600),
        )
        .metrics_flush_interval(std::time::Duration::from_secs(3600))
        .build()
        .unwrap();
    c.bench_function("sdk bool_value with metrics, no rules", |b| {
        b.iter(|| online.bool_value(black_box("bool-flag"), black_box(&ctx), false))
    });
    c.bench_function(
        "sdk bool_value with metrics, 5 rules + 3-way split (with_str_value)",
        |b| {
            b.iter(|| {
                online.with_str_value(black_box("split-flag"), black_box(&ctx), "none", str::len)
            })
        },
    );
    c.bench_function(
        "sdk start_measure + finish (bool flag), excluding the work",
        |b| {
            b.iter(|| {
                online
                    .start_measure(black_box("bool-flag"), black_box(&ctx))
                    .finish(true)
            })
        },
    );
}

criterion_group!(sdk, benches);
criterion_main!(sdk);
