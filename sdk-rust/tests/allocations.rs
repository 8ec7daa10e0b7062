//! Reading a boolean or a string flag through the public API allocates nothing, outside a
//! request scope and, once the scope has remembered the flag, inside one; nor does counting
//! the reads once their series exist (a client with metrics on). `allocation-counter` counts
//! the heap blocks of the measuring thread only: a process-wide count (dhat's) also saw
//! libtest's main thread record the running test, which under load landed inside the measured
//! loop (4 blocks, a CI failure).

#[path = "../../core/tests/support/fixtures.rs"]
mod fixtures;

use flagwire::{Client, Context};
use prost::Message;
use std::time::Duration;

#[tokio::test]
async fn bool_and_str_getters_do_not_allocate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("flags.bin");
    std::fs::write(&path, fixtures::snapshot(0).to_proto().encode_to_vec()).unwrap();
    let client = Client::builder("http://offline.invalid", "-")
        .bootstrap_file(&path)
        .offline(true)
        .build()
        .unwrap();
    let ctx = Context::from(fixtures::context());
    // arc-swap registers each thread once, on its first load: not per evaluation.
    client.bool_value("bool-flag", &ctx, false);
    let mut served = 0usize;
    let allocated = allocation_counter::measure(|| {
        for _ in 0..1000 {
            served += usize::from(client.bool_value("bool-flag", &ctx, false));
            served += client.with_str_value("split-flag", &ctx, "none", str::len);
        }
    })
    .count_total;
    assert!(served > 1000, "the flags were really served");
    assert_eq!(allocated, 0, "heap blocks allocated by 2,000 evaluations");

    // A scope remembers each flag the first time it serves it; reading it again is free.
    let allocated = client
        .scope(async {
            client.bool_value("bool-flag", &ctx, false);
            client.with_str_value("split-flag", &ctx, "none", str::len);
            let allocated = allocation_counter::measure(|| {
                for _ in 0..1000 {
                    client.bool_value("bool-flag", &ctx, false);
                    client.with_str_value("split-flag", &ctx, "none", str::len);
                }
            });
            Ok::<_, ()>(allocated.count_total)
        })
        .await
        .unwrap();
    assert_eq!(
        allocated, 0,
        "heap blocks allocated by 2,000 evaluations in a scope"
    );

    // With metrics on, a read counts into its series' atomics: nothing to allocate once the
    // series exists. The test runtime has one thread and the loop never yields, so the sync
    // task (which would try to reach port 9, then back off for an hour) cannot run inside it.
    let online = Client::builder("http://127.0.0.1:9", "-")
        .bootstrap_file(&path)
        .backoff(Duration::from_secs(3600), Duration::from_secs(3600))
        .metrics_flush_interval(Duration::from_secs(3600))
        .build()
        .unwrap();
    online.bool_value("bool-flag", &ctx, false);
    online.with_str_value("split-flag", &ctx, "none", str::len);
    let mut served = 0usize;
    let allocated = allocation_counter::measure(|| {
        for _ in 0..1000 {
            served += usize::from(online.bool_value("bool-flag", &ctx, false));
            served += online.with_str_value("split-flag", &ctx, "none", str::len);
        }
    })
    .count_total;
    assert!(served > 1000, "the flags were really served");
    assert_eq!(
        allocated, 0,
        "heap blocks allocated by 2,000 counted evaluations"
    );
}
