//! Evaluating a boolean flag, or a flag with five rules and a 3-way split, allocates nothing,
//! from a plain context or a prepared one. `allocation-counter` counts the heap blocks of the
//! measuring thread only: a process-wide count (dhat's) also saw libtest's main thread record
//! the running test, which under load landed inside the measured loop.

#[path = "support/fixtures.rs"]
mod fixtures;

use flagwire_proto::v1::{Reason, ValueType};

#[test]
fn evaluation_does_not_allocate() {
    let snapshot = fixtures::snapshot(0);
    let ctx = fixtures::context();
    let prepared = flagwire_core::PreparedContext::new(ctx.clone());
    let allocated = allocation_counter::measure(|| {
        for _ in 0..1000 {
            let b = snapshot.evaluate("bool-flag", &ctx, Some(ValueType::Boolean));
            assert_eq!(b.reason, Reason::Static);
            let s = snapshot.evaluate("split-flag", &ctx, Some(ValueType::String));
            assert_eq!(s.reason, Reason::Split);
            let p = snapshot.evaluate_prepared("split-flag", &prepared, Some(ValueType::String));
            assert_eq!(p, s);
        }
    });
    assert_eq!(
        allocated.count_total, 0,
        "heap blocks allocated by 3,000 evaluations"
    );
}
