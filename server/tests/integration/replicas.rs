//! Several replicas of the real binary on one PostgreSQL database: writes on one reach the
//! watchers of the others in revision order with nothing lost; racing writes of the same
//! version from two replicas give exactly one winner; `kill -9` of a replica mid-storm loses no
//! acknowledged write; a database outage is `UNAVAILABLE` everywhere, then everyone catches up.

use crate::support::eventually::DEADLINE;
use crate::support::postgres::{Cluster, shared};
use crate::support::scrape::Scrape;
use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tokio::sync::Mutex;
use tonic::Code;

/// `n` replicas on database `url`, each with its own data directory.
fn replicas(url: &str, n: usize) -> (Vec<tempfile::TempDir>, Vec<Server>) {
    let dirs: Vec<_> = (0..n).map(|_| tempdir()).collect();
    let servers = dirs
        .iter()
        .map(|d| Server::start(d.path(), &["--store", url]))
        .collect();
    (dirs, servers)
}

/// The next change of a stream (heartbeats skipped).
async fn next_change(stream: &mut tonic::Streaming<WatchResponse>) -> Change {
    loop {
        match next(stream).await {
            Event::Change(c) => return c,
            Event::Heartbeat(_) => {}
            other => panic!("expected a change, got {other:?}"),
        }
    }
}

/// A Watch stream on `server` once its snapshot is at `revision` (the replica has caught up).
async fn watch_at(server: &Server, revision: u64) -> tonic::Streaming<WatchResponse> {
    let mut flags = server.flags_as(Some(ADMIN)).await;
    eventually(DEADLINE, "the replica to catch up", async || {
        let request = WatchRequest {
            environment: "production".into(),
            ..Default::default()
        };
        // NOT_FOUND until the replica has applied the environment's creation.
        let mut stream = flags.watch(request).await.ok()?.into_inner();
        match next(&mut stream).await {
            Event::Snapshot(s) if s.revision == revision => Some(stream),
            _ => None,
        }
    })
    .await
}

async fn toggle(
    admin: &mut Admin,
    key: &str,
    enabled: bool,
    expected: u64,
) -> Result<Flag, tonic::Status> {
    admin
        .set_flag_enabled(SetFlagEnabledRequest {
            force: false,
            key: key.into(),
            environment: "production".into(),
            enabled,
            expected_version: expected,
            reason: String::new(),
        })
        .await
        .map(|r| r.into_inner().flag.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_on_one_replica_reach_watchers_on_the_others_in_order() {
    let url = shared().create_db();
    let (_dirs, servers) = replicas(&url, 3);
    let mut admin = servers[0].admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("banner", &["production"])).await;
    // Watchers on B and C, opened once B and C have the flag.
    let mut streams = Vec::new();
    for server in &servers[1..] {
        streams.push(watch_at(server, 1).await);
    }
    // 60 writes on A, each acknowledged before the next; some flip the flag, some add flags.
    let mut enabled = false;
    for i in 0..60u64 {
        if i % 3 == 0 {
            create_flag(&mut admin, bool_flag(&format!("f{i}"), &["production"])).await;
        } else {
            enabled = !enabled;
            toggle(&mut admin, "banner", enabled, 0).await.unwrap();
        }
    }
    for (n, stream) in streams.iter_mut().enumerate() {
        for revision in 2..=61 {
            let change = next_change(stream).await;
            assert_eq!(
                change.revision,
                revision,
                "replica {} delivered revision {} where {revision} was next",
                n + 1,
                change.revision
            );
        }
    }
    // And what they serve is what A wrote.
    for server in &servers[1..] {
        let mut other = server.admin().await;
        let flag = other
            .get_flag(GetFlagRequest {
                key: "banner".into(),
            })
            .await
            .unwrap()
            .into_inner()
            .flag
            .unwrap();
        assert_eq!(flag.version, 41, "1 create + 40 toggles");
        // A watcher resuming on this replica from an older revision gets the gap from the log.
        let mut flags = server.flags_as(Some(ADMIN)).await;
        let mut resumed = watch(&mut flags, "production", 55).await;
        for revision in 56..=61 {
            assert_eq!(next_change(&mut resumed).await.revision, revision);
        }
        // /metrics: nothing left to apply once the probe has seen the log's head.
        eventually(
            DEADLINE,
            "the replica's applied lag to reach 0",
            async || {
                let r = http::try_get(&server.http, "/metrics").await?;
                let s = Scrape::parse(&r.body);
                (s.value("flagwire_applied_lag_batches", &[]) == 0.0).then_some(())
            },
        )
        .await;
    }
    // A's writes went through the store and were timed.
    let scrape = Scrape::parse(&http::get(&servers[0].http, "/metrics").await.body);
    let (count, _, _) = scrape.histogram("flagwire_store_commit_duration_seconds", &[]);
    assert!(count >= 62, "{count} timed writes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_version_updated_on_two_replicas_at_once_has_exactly_one_winner() {
    let url = shared().create_db();
    let (_dirs, servers) = replicas(&url, 2);
    let mut a = servers[0].admin().await;
    let mut b = servers[1].admin().await;
    create_env(&mut a, "production").await;
    create_flag(&mut a, bool_flag("contested", &["production"])).await;
    for round in 0..20u64 {
        let version = round + 1;
        // Both replicas may not have seen the last version yet: their writes apply the log
        // before checking, so neither may win with a stale version.
        let (ra, rb) = tokio::join!(
            toggle(&mut a, "contested", round % 2 == 0, version),
            toggle(&mut b, "contested", round % 2 == 0, version),
        );
        let winners: Vec<_> = [&ra, &rb].into_iter().filter(|r| r.is_ok()).collect();
        assert_eq!(winners.len(), 1, "round {round}: {ra:?} / {rb:?}");
        let loser = if ra.is_ok() { rb } else { ra };
        let message = code(loser, Code::FailedPrecondition);
        assert!(message.contains("version"), "{message}");
    }
    let stored = shared().sql(
        url.rsplit('/').next().unwrap(),
        "SELECT count(*) FROM kv WHERE key LIKE 'v/contested/%'",
    );
    assert_eq!(stored, "21", "one stored version per winning write");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_a_replica_mid_storm_loses_no_acknowledged_write() {
    let url = shared().create_db();
    let (_dirs, mut servers) = replicas(&url, 3);
    let mut admin = servers[0].admin().await;
    create_env(&mut admin, "production").await;
    let done = Arc::new(Mutex::new(Vec::new()));
    let mut writers = Vec::new();
    // Two writers on A (the one killed), two on B.
    for (w, server) in [0, 0, 1, 1].into_iter().enumerate() {
        let mut admin = servers[server].admin().await;
        let done = Arc::clone(&done);
        writers.push(tokio::spawn(async move {
            for i in 0..400 {
                let key = format!("w{w}-{i}");
                let request = CreateFlagRequest {
                    flag: Some(bool_flag(&key, &["production"])),
                    reason: String::new(),
                };
                match admin.create_flag(request).await {
                    Ok(_) => done.lock().await.push(key),
                    Err(_) if server == 0 => break,
                    Err(e) => panic!("a write on a surviving replica failed: {e:?}"),
                }
            }
        }));
    }
    eventually(
        DEADLINE,
        "acknowledged writes before the kill",
        async || (done.lock().await.len() >= 40).then_some(()),
    )
    .await;
    servers[0].kill9();
    for w in writers {
        w.await.unwrap();
    }
    let acked = done.lock().await.clone();
    // Every acknowledged write is on both survivors, and their snapshots agree.
    let mut revisions = Vec::new();
    for server in &servers[1..] {
        let mut flags = server.flags_as(Some(ADMIN)).await;
        let snapshot = eventually(DEADLINE, "the survivor to catch up", async || {
            let request = WatchRequest {
                environment: "production".into(),
                ..Default::default()
            };
            let mut stream = flags.watch(request).await.ok()?.into_inner();
            let Event::Snapshot(s) = next(&mut stream).await else {
                return None;
            };
            let keys: std::collections::HashSet<_> =
                s.flags.iter().map(|f| f.key.clone()).collect();
            acked.iter().all(|k| keys.contains(k)).then_some(s)
        })
        .await;
        assert_eq!(snapshot.revision, snapshot.flags.len() as u64);
        revisions.push(snapshot.revision);
    }
    eprintln!(
        "{} writes acknowledged, revisions {revisions:?}",
        acked.len()
    );
    // A restarted A loads the same state.
    let restarted = servers[0].restart();
    let mut admin = restarted.admin().await;
    for key in &acked {
        assert!(
            admin
                .get_flag(GetFlagRequest { key: key.clone() })
                .await
                .is_ok(),
            "acknowledged {key} lost"
        );
    }
    servers.push(restarted);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_database_outage_is_unavailable_on_every_replica_then_all_catch_up() {
    let mut cluster = Cluster::start();
    let url = cluster.create_db();
    let (_dirs, servers) = replicas(&url, 3);
    let mut a = servers[0].admin().await;
    create_env(&mut a, "production").await;
    create_flag(&mut a, bool_flag("banner", &["production"])).await;
    let mut stream = watch_at(&servers[2], 1).await;
    // The premise: every replica serves the flag before the outage (followers apply the batch
    // log a moment after the leader's commit; on a busy machine, after `watch_at` returns).
    for server in &servers {
        let mut admin = server.admin().await;
        eventually(DEADLINE, "every replica to serve the flag", async || {
            admin
                .get_flag(GetFlagRequest {
                    key: "banner".into(),
                })
                .await
                .ok()
        })
        .await;
    }
    cluster.stop();
    for server in &servers {
        let mut admin = server.admin().await;
        code(
            toggle(&mut admin, "banner", true, 0).await,
            Code::Unavailable,
        );
        // Reads still come from memory.
        let flag = admin
            .get_flag(GetFlagRequest {
                key: "banner".into(),
            })
            .await
            .unwrap();
        assert_eq!(flag.into_inner().flag.unwrap().version, 1);
    }
    cluster.restart();
    let mut b = servers[1].admin().await;
    let flag = eventually(DEADLINE, "B to write again", async || {
        toggle(&mut b, "banner", true, 1).await.ok()
    })
    .await;
    assert_eq!(flag.version, 2);
    // C's open stream gets B's change, revision 2, and A serves it.
    assert_eq!(next_change(&mut stream).await.revision, 2);
    eventually(DEADLINE, "A to catch up", async || {
        let flag = a
            .get_flag(GetFlagRequest {
                key: "banner".into(),
            })
            .await
            .ok()?
            .into_inner()
            .flag?;
        (flag.version == 2).then_some(())
    })
    .await;
}
