//! Evaluating a boolean flag, or a flag with five rules and a 3-way split, allocates nothing,
//! from a plain context or a prepared one: dhat's counting allocator observes every heap block.

#[path = "support/fixtures.rs"]
mod fixtures;

use flagwire_proto::v1::{Reason, ValueType};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

#[test]
fn evaluation_does_not_allocate() {
    let _profiler = dhat::Profiler::builder().testing().build();
    let snapshot = fixtures::snapshot(0);
    let ctx = fixtures::context();
    let prepared = flagwire_core::PreparedContext::new(ctx.clone());
    let before = dhat::HeapStats::get().total_blocks;
    for _ in 0..1000 {
        let b = snapshot.evaluate("bool-flag", &ctx, Some(ValueType::Boolean));
        assert_eq!(b.reason, Reason::Static);
        let s = snapshot.evaluate("split-flag", &ctx, Some(ValueType::String));
        assert_eq!(s.reason, Reason::Split);
        let p = snapshot.evaluate_prepared("split-flag", &prepared, Some(ValueType::String));
        assert_eq!(p, s);
    }
    let allocated = dhat::HeapStats::get().total_blocks - before;
    assert_eq!(allocated, 0, "heap blocks allocated by 3,000 evaluations");
}
