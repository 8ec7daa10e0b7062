//! The Watch stream against the real server: snapshot, live changes, resume, heartbeats,
//! resume across forced disconnects during writes, and clean shutdown.

use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tonic::Code;

fn upserted(event: Event) -> (u64, Flag) {
    match event {
        Event::Change(Change {
            revision,
            kind: Some(change::Kind::FlagUpserted(f)),
            ..
        }) => (revision, f),
        other => panic!("expected a flag change, got {other:?}"),
    }
}

#[tokio::test]
async fn snapshot_then_changes_then_resume() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "0.2"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(&mut admin, bool_flag("a", &["production", "staging"])).await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let mut flags = server.flags_as(Some(&sdk)).await;

    let mut stream = watch(&mut flags, "", 0).await;
    let Event::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("snapshot first")
    };
    assert_eq!(snapshot.revision, 1);
    assert_eq!(snapshot.flags.len(), 1);
    // Only the watched environment's config travels.
    assert_eq!(
        snapshot.flags[0].environments.keys().collect::<Vec<_>>(),
        ["production"]
    );

    set_enabled(&mut admin, "a", "production", true).await;
    // Staging's alone: no change and no revision in production (ADR 0001).
    set_enabled(&mut admin, "a", "staging", true).await;
    set_enabled(&mut admin, "a", "production", false).await;
    let (r2, f2) = upserted(next(&mut stream).await);
    let (r3, f3) = upserted(next(&mut stream).await);
    assert_eq!((r2, r3), (2, 3));
    assert!(f2.environments["production"].enabled);
    assert!(!f3.environments["production"].enabled);
    // The flag's version counts every write, the staging one too.
    assert_eq!((f2.version, f3.version), (2, 4));

    // Segments are streamed too.
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "beta".into(),
                environment: "production".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    match next(&mut stream).await {
        Event::Change(Change {
            revision: 4,
            kind: Some(change::Kind::SegmentUpserted(s)),
            ..
        }) => assert_eq!(s.key, "beta"),
        other => panic!("expected the segment at revision 4, got {other:?}"),
    }
    admin
        .delete_flag(DeleteFlagRequest {
            key: "a".into(),
            reason: String::new(),
        })
        .await
        .unwrap();
    match next(&mut stream).await {
        Event::Change(Change {
            revision: 5,
            kind: Some(change::Kind::FlagDeleted(k)),
            ..
        }) => assert_eq!(k, "a"),
        other => panic!("expected the deletion at revision 5, got {other:?}"),
    }
    // Idle: heartbeats carry the current revision.
    match next(&mut stream).await {
        Event::Heartbeat(h) => assert_eq!(h.revision, 5),
        other => panic!("expected a heartbeat, got {other:?}"),
    }
    drop(stream);

    // Resume from 2: exactly revisions 3, 4, 5, no snapshot.
    let mut resumed = watch(&mut flags, "", 2).await;
    for expected in 3..=5 {
        match next(&mut resumed).await {
            Event::Change(c) => assert_eq!(c.revision, expected),
            other => panic!("expected change {expected}, got {other:?}"),
        }
    }
    // Up to date: an immediate heartbeat, not a snapshot.
    let mut current = watch(&mut flags, "", 5).await;
    assert!(matches!(
        next(&mut current).await,
        Event::Heartbeat(Heartbeat { revision: 5, .. })
    ));
    // Ahead of the server (e.g. a restored older backup): a snapshot.
    let mut ahead = watch(&mut flags, "", 99).await;
    assert!(matches!(
        next(&mut ahead).await,
        Event::Snapshot(Snapshot { revision: 5, .. })
    ));
    let unknown = server
        .flags_as(Some(ADMIN))
        .await
        .watch(WatchRequest {
            environment: "mars".into(),
            ..Default::default()
        })
        .await;
    code(unknown, Code::NotFound);
}

#[tokio::test]
async fn resume_beyond_retention_gets_a_snapshot() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--change-log-retention", "3"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("a", &["production"])).await;
    for i in 0u32..6 {
        set_enabled(&mut admin, "a", "production", i.is_multiple_of(2)).await;
    }
    let mut flags = server.flags_as(Some(ADMIN)).await;
    // Revision 7 now; 5..=7 retained. Resuming from 4 works, from 3 needs a snapshot.
    let mut ok = watch(&mut flags, "production", 4).await;
    assert!(matches!(
        next(&mut ok).await,
        Event::Change(Change { revision: 5, .. })
    ));
    let mut old = watch(&mut flags, "production", 3).await;
    assert!(matches!(
        next(&mut old).await,
        Event::Snapshot(Snapshot { revision: 7, .. })
    ));
}

#[tokio::test]
async fn resume_across_100_forced_disconnects_loses_and_reorders_nothing() {
    const FLAGS: usize = 5;
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "0.05"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for i in 0..FLAGS {
        create_flag(&mut admin, bool_flag(&format!("f{i}"), &["production"])).await;
    }
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;

    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = Arc::clone(&stop);
        let mut admin = admin.clone();
        tokio::spawn(async move {
            let mut writes = 0usize;
            while !stop.load(Ordering::Relaxed) || writes < 200 {
                let key = format!("f{}", writes % FLAGS);
                // Each write flips its flag, so each one changes production's view.
                let on = (writes / FLAGS).is_multiple_of(2);
                set_enabled(&mut admin, &key, "production", on).await;
                writes += 1;
            }
            writes
        })
    };

    let mut last = 0u64;
    let mut snapshots = 0;
    let mut versions: HashMap<String, u64> = HashMap::new();
    let mut apply = |event: Event, last: &mut u64, snapshots: &mut usize| match event {
        Event::Snapshot(s) => {
            *snapshots += 1;
            *last = s.revision;
            for f in s.flags {
                versions.insert(f.key.clone(), f.version);
            }
        }
        Event::Change(c) => {
            assert_eq!(
                c.revision,
                *last + 1,
                "changes arrive in order without gaps"
            );
            *last = c.revision;
            let Some(change::Kind::FlagUpserted(f)) = c.kind else {
                panic!("unexpected change")
            };
            let previous = versions.insert(f.key.clone(), f.version).unwrap();
            assert_eq!(f.version, previous + 1, "no lost version of {}", f.key);
        }
        Event::Heartbeat(_) => {}
    };
    for i in 0..100 {
        // A new connection each time: the previous one is torn down mid-stream.
        let mut flags = server.flags_as(Some(&sdk)).await;
        let mut stream = watch(&mut flags, "", last).await;
        for _ in 0..(1 + i % 4) {
            apply(next(&mut stream).await, &mut last, &mut snapshots);
        }
        drop(stream);
        drop(flags);
    }
    stop.store(true, Ordering::Relaxed);
    let writes = writer.await.unwrap();
    let final_revision = admin
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
        .revision;
    assert_eq!(final_revision, (FLAGS + writes) as u64);
    let mut flags = server.flags_as(Some(&sdk)).await;
    let mut stream = watch(&mut flags, "", last).await;
    while last < final_revision {
        apply(next(&mut stream).await, &mut last, &mut snapshots);
    }
    assert_eq!(snapshots, 1, "only the first connection needed a snapshot");
    let total: u64 = versions.values().sum();
    assert_eq!(
        total,
        (FLAGS + writes) as u64,
        "every write seen exactly once"
    );
}

// Multi-threaded: the test blocks one thread waiting for the process while the client's
// connection must still answer the server's GOAWAY.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_ends_streams_cleanly_and_exits_zero() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let mut flags = server.flags_as(Some(ADMIN)).await;
    let mut stream = watch(&mut flags, "production", 0).await;
    assert!(matches!(next(&mut stream).await, Event::Snapshot(_)));
    let waiter = tokio::spawn(async move { stream.message().await });
    assert!(server.terminate(), "exit status 0 after SIGTERM");
    let end = waiter.await.unwrap();
    assert!(
        matches!(end, Ok(None)),
        "the stream ends with OK, got {end:?}"
    );
    // And the data is there after restart.
    let server = server.restart();
    let mut admin = server.admin().await;
    admin
        .get_environment(GetEnvironmentRequest {
            key: "production".into(),
        })
        .await
        .unwrap();
}

/// Issue 18's contract: a write that changes only staging's configuration makes no change and
/// no revision in production, so production SDKs are not woken; an edit of the definition
/// reaches every environment.
#[tokio::test]
async fn a_staging_write_wakes_no_production_watcher() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "0.2"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    create_flag(&mut admin, bool_flag("a", &["production", "staging"])).await;
    let revisions = |envs: Vec<Environment>| -> Vec<(String, u64)> {
        envs.into_iter().map(|e| (e.key, e.revision)).collect()
    };
    let before = revisions(
        admin
            .list_environments(ListEnvironmentsRequest {})
            .await
            .unwrap()
            .into_inner()
            .environments,
    );
    let mut flags = server.flags_as(Some(ADMIN)).await;
    let mut stream = watch(&mut flags, "production", 0).await;
    let Event::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("snapshot first")
    };
    let mut last = None;
    for on in [true, false, true] {
        last = Some(set_enabled(&mut admin, "a", "staging", on).await);
    }
    let after = revisions(
        admin
            .list_environments(ListEnvironmentsRequest {})
            .await
            .unwrap()
            .into_inner()
            .environments,
    );
    assert_eq!(after[0], before[0], "production's revision did not move");
    assert_eq!(after[1].1, before[1].1 + 3, "staging's moved by three");
    // Production's stream stays idle: the next message is a heartbeat at the same revision.
    match next(&mut stream).await {
        Event::Heartbeat(h) => assert_eq!(h.revision, snapshot.revision),
        other => panic!("production was woken: {other:?}"),
    }
    // A description is the flag's definition: every environment sees it.
    let flag = last.unwrap();
    admin
        .update_flag(UpdateFlagRequest {
            expected_version: flag.version,
            flag: Some(Flag {
                description: "now described".into(),
                ..flag
            }),
            ..Default::default()
        })
        .await
        .unwrap();
    loop {
        match next(&mut stream).await {
            Event::Heartbeat(_) => continue,
            event => {
                let (revision, f) = upserted(event);
                assert_eq!(revision, snapshot.revision + 1);
                assert_eq!(f.description, "now described");
                break;
            }
        }
    }
}
