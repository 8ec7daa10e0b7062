use super::*;

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn series(flag: &str, variant: &str, evaluations: u64, latencies: &[u64]) -> ValidSeries {
    let mut latency = Histogram::new();
    latencies.iter().for_each(|v| latency.record(*v));
    ValidSeries {
        flag_key: flag.into(),
        variant: variant.into(),
        cohort: String::new(),
        rollout_id: String::new(),
        aggregate: Aggregate {
            evaluations,
            successes: latencies.len() as u64 - 1,
            errors: 1,
            latency,
            metrics: Default::default(),
        },
    }
}

#[test]
fn slots_truncate_to_the_grid() {
    assert_eq!(slot_of(at(1_000_009)), 1_000_000);
    assert_eq!(slot_of(at(1_000_010)), 1_000_010);
    assert_eq!(
        slot_of(SystemTime::UNIX_EPOCH - Duration::from_millis(1)),
        -GRID_SECS
    );
}

#[test]
fn merges_queries_and_prunes() {
    let usage = Usage::new(Duration::from_secs(3600));
    let now = at(100_000);
    usage.merge(
        "prod",
        at(99_001),
        &[series("a", "on", 5, &[100, 200, 300])],
        now,
    );
    usage.merge(
        "prod",
        at(99_005),
        &[series("a", "on", 2, &[400, 500])],
        now,
    );
    usage.merge("prod", at(99_011), &[series("a", "off", 1, &[0, 1])], now);
    usage.merge("test", at(99_011), &[series("a", "on", 7, &[1, 2])], now);
    assert_eq!(usage.slots(), 2);

    let rows = usage.query("prod", None, None, None);
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0].variant.as_str(), rows[0].evaluations), ("off", 1));
    let on = &rows[1];
    assert_eq!((on.evaluations, on.successes, on.errors), (7, 3, 2));
    assert!((on.error_rate - 0.4).abs() < 1e-12);
    // 5 values: p50 rank 3 = 300, p99 rank 5 = 500; upper bounds of their buckets.
    let bound = |v| {
        let i = flagwire_core::histogram::bucket_index(v).unwrap();
        flagwire_core::histogram::upper_bound(i)
    };
    assert_eq!(on.p50_us, bound(300));
    assert_eq!(on.p99_us, bound(500));

    // [start, end) selects slots by their start.
    assert_eq!(usage.query("prod", None, Some(at(99_010)), None).len(), 1);
    assert_eq!(usage.query("prod", None, None, Some(at(99_010))).len(), 1);
    let half = SystemTime::UNIX_EPOCH + Duration::from_millis(99_000_500);
    assert!(
        usage
            .query("prod", None, Some(half), Some(at(99_010)))
            .is_empty()
    );
    assert!(usage.query("prod", Some("b"), None, None).is_empty());
    assert!(
        usage
            .query("prod", None, Some(at(5)), Some(at(5)))
            .is_empty()
    );

    // An insert an hour later prunes both old slots; a window before the retention is ignored.
    usage.merge(
        "prod",
        at(103_700),
        &[series("a", "on", 1, &[5])],
        at(103_700),
    );
    assert_eq!(usage.slots(), 1);
    usage.merge(
        "prod",
        at(99_000),
        &[series("a", "on", 1, &[5])],
        at(103_700),
    );
    assert_eq!(usage.slots(), 1);
}

#[test]
fn totals_outlive_the_retention_and_count_late_slots_once() {
    let usage = Usage::new(Duration::from_secs(60));
    let evaluations = |rows: &[SeriesTotal]| -> Vec<(String, u64)> {
        rows.iter()
            .map(|r| {
                (
                    format!("{}/{}", r.environment, r.variant),
                    r.aggregate.evaluations,
                )
            })
            .collect()
    };
    usage.merge(
        "prod",
        at(1_000),
        &[series("a", "on", 5, &[1, 2])],
        at(1_000),
    );
    usage.merge(
        "prod",
        at(1_010),
        &[series("a", "on", 2, &[3, 4])],
        at(1_010),
    );
    usage.merge(
        "test",
        at(1_010),
        &[series("a", "off", 1, &[5, 6])],
        at(1_010),
    );
    // Seal up to slot 1_010 (so 1_000 is folded), then a late report into 1_000.
    let rows = usage.totals(at(1_010));
    assert_eq!(
        evaluations(&rows),
        [("prod/on".into(), 7), ("test/off".into(), 1)]
    );
    usage.merge(
        "prod",
        at(1_000),
        &[series("a", "on", 10, &[7, 8])],
        at(1_015),
    );
    assert_eq!(evaluations(&usage.totals(at(1_010)))[0].1, 17);
    // Two minutes on, both slots left the retention: queries forget, totals do not.
    usage.merge(
        "prod",
        at(1_200),
        &[series("a", "on", 1, &[9, 9])],
        at(1_200),
    );
    assert_eq!(usage.query("prod", None, None, None)[0].evaluations, 1);
    let rows = usage.totals(at(1_100));
    assert_eq!(
        evaluations(&rows),
        [("prod/on".into(), 18), ("test/off".into(), 1)]
    );
    assert_eq!(rows[0].aggregate.latency.count(), 8);
}
