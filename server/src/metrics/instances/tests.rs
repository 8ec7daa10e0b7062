use super::*;

const A: &str = "00000000-0000-4000-8000-00000000000a";
const B: &str = "00000000-0000-4000-8000-00000000000b";

fn at(secs: u64) -> SystemTime {
    SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
}

fn registry() -> Arc<Registry> {
    Arc::new(Registry::new(
        Duration::from_secs(86_400),
        Duration::from_secs(600),
        Arc::new(crate::clock::SystemClock),
    ))
}

fn report(id: &str, sequence: u64, applied: u64) -> ValidReport {
    ValidReport {
        cohort_outcomes: Vec::new(),
        cohort_metrics: Vec::new(),
        environment: "prod".into(),
        instance_id: id.into(),
        sequence,
        sdk_name: "flagwire-rust".into(),
        sdk_version: "0.1.0".into(),
        applied_revision: applied,
        window: None,
        series: Vec::new(),
        dropped_series: 0,
    }
}

#[test]
fn connections_and_applied_revisions() {
    let r = registry();
    let a1 = r.connect("prod", A, "flagwire-rust", "0.1.0", at(1_000));
    let a2 = r.connect("prod", A, "", "", at(1_001)); // a reconnect overlapping the old stream
    let _b = r.connect("prod", B, "flagwire-py", "0.2.0", at(1_002));
    assert_eq!(r.count_applied("prod", 5).connected, 2);
    assert_eq!(r.count_applied("prod", 5).applied, 0);
    assert_eq!(r.count_applied("test", 5).connected, 0);

    assert_eq!(r.report(&report(A, 1, 5), true, at(1_010)), Sequence::New);
    assert_eq!(
        r.report(&report(A, 1, 5), true, at(1_011)),
        Sequence::Duplicate
    );
    // The applied revision never goes back.
    assert_eq!(r.report(&report(A, 2, 3), true, at(1_012)), Sequence::New);
    assert_eq!(r.report(&report(B, 1, 6), true, at(1_020)), Sequence::New);
    let c = r.count_applied("prod", 5);
    assert_eq!(
        (c.connected, c.applied, c.last_applied),
        (2, 2, Some(at(1_020)))
    );
    let c = r.count_applied("prod", 6);
    assert_eq!((c.applied, c.last_applied), (1, Some(at(1_020))));
    // A at 5 since t = 1010; reaching 7 later moves only the time for revisions above 5.
    r.report(&report(A, 3, 7), true, at(1_030));
    assert_eq!(r.count_applied("prod", 5).last_applied, Some(at(1_020)));
    assert_eq!(r.count_applied("prod", 7).last_applied, Some(at(1_030)));

    let list = r.list(None, at(1_040));
    assert_eq!(list.len(), 2);
    assert_eq!(list[0].instance_id, A);
    assert_eq!((list[0].applied_revision, list[0].connected), (7, true));
    assert_eq!(list[0].sdk_name, "flagwire-rust");
    assert_eq!(list[0].connected_since, Some(at(1_000).into()));

    drop(a1);
    assert_eq!(
        r.count_applied("prod", 0).connected,
        2,
        "A has another stream"
    );
    drop(a2);
    assert_eq!(r.count_applied("prod", 0).connected, 1);
    let list = r.list(Some("prod"), at(1_040));
    assert!(!list[0].connected && list[0].connected_since.is_none());
    assert!(r.list(Some("test"), at(1_040)).is_empty());
}

#[test]
fn idle_instances_and_old_sequences_are_forgotten() {
    let r = registry();
    r.report(&report(A, 1, 0), true, at(1_000));
    // Within the watermark the sequence is remembered.
    assert_eq!(
        r.report(&report(A, 1, 0), true, at(1_500)),
        Sequence::Duplicate
    );
    // Later it is pruned (a report that old is dropped as late before it gets here).
    r.report(&report(A, 9, 0), true, at(2_000));
    assert_eq!(r.report(&report(A, 1, 0), false, at(2_001)), Sequence::New);
    let _b = r.connect("prod", B, "", "", at(2_000));
    let day_later = at(2_002 + 86_400);
    assert_eq!(r.list(None, day_later).len(), 1, "only the connected one");
    r.report(&report(B, 1, 0), true, day_later);
    assert_eq!(r.lock().instances.len(), 1, "pruned on insert");
}

fn shared(id: &str, connected: bool, applied: u64, at_secs: u64) -> SharedInstance {
    SharedInstance {
        environment: "prod".into(),
        instance_id: id.into(),
        sdk_name: "flagwire-py".into(),
        sdk_version: "0.2.0".into(),
        first_seen: at(at_secs),
        last_seen: at(at_secs),
        connected_since: connected.then(|| at(at_secs)),
        applied_revision: applied,
        steps: vec![(applied, at(at_secs))],
    }
}

#[test]
fn other_replicas_instances_are_merged_and_only_changes_are_published() {
    let r = registry();
    let _a = r.connect("prod", A, "flagwire-rust", "0.1.0", at(1_000));
    let first = r.take_changes();
    assert!(first.everything && first.changed.len() == 1);
    assert!(r.take_changes().changed.is_empty(), "nothing changed since");
    // B on another replica at 7; A also on another replica (a reconnect) at 9.
    r.set_remote(vec![
        shared(B, true, 7, 1_010),
        shared(A, true, 9, 1_020),
        shared(B, false, 3, 1_005), // a dead replica's view of B
    ]);
    let c = r.count_applied("prod", 7);
    assert_eq!((c.connected, c.applied), (2, 2));
    assert_eq!(
        c.last_applied,
        Some(at(1_020)),
        "A reached 7 (at 9) on the other"
    );
    let list = r.list(Some("prod"), at(1_030));
    assert_eq!(list.len(), 2, "A once, B once");
    assert_eq!(
        (list[0].instance_id.as_str(), list[0].applied_revision),
        (A, 9)
    );
    assert_eq!(r.counts(at(1_030))["prod"].connected, 2);
    // A report here is published; B gone from the others is no longer counted.
    r.report(&report(A, 1, 9), true, at(1_040));
    assert_eq!(r.take_changes().changed.len(), 1);
    r.set_remote(vec![shared(B, false, 7, 1_010)]);
    assert_eq!(r.count_applied("prod", 0).connected, 1);
}
