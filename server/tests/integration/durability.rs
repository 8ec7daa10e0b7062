//! An acknowledged write survives `kill -9` of the server, and the store reopens cleanly.

use crate::support::eventually::DEADLINE;
use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::sync::Arc;
use tokio::sync::Mutex;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_writes_survive_kill_9_mid_burst() {
    let dir = tempdir();
    let mut server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let mut acked: Vec<String> = Vec::new();
    for round in 0..3 {
        // Four writers hammer the server; it is killed while they are mid-burst.
        let done = Arc::new(Mutex::new(Vec::new()));
        let mut writers = Vec::new();
        for w in 0..4 {
            let mut admin = server.admin().await;
            let done = Arc::clone(&done);
            writers.push(tokio::spawn(async move {
                for i in 0.. {
                    let key = format!("r{round}-w{w}-{i}");
                    let request = CreateFlagRequest {
                        flag: Some(bool_flag(&key, &["production"])),
                        reason: String::new(),
                    };
                    match admin.create_flag(request).await {
                        Ok(_) => done.lock().await.push(key),
                        Err(_) => break,
                    }
                }
            }));
        }
        // Killed mid-burst: after some writes were acknowledged, while more are in flight.
        eventually(DEADLINE, "acknowledged writes", async || {
            (done.lock().await.len() >= 20).then_some(())
        })
        .await;
        server.kill9();
        for w in writers {
            w.await.unwrap();
        }
        let done = done.lock().await.clone();
        assert!(
            !done.is_empty(),
            "round {round}: some writes were acknowledged before the kill"
        );
        eprintln!(
            "round {round}: {} writes acknowledged before kill -9",
            done.len()
        );
        acked.extend(done);

        server = server.restart();
        let mut admin = server.admin().await;
        for key in &acked {
            let got = admin.get_flag(GetFlagRequest { key: key.clone() }).await;
            assert!(got.is_ok(), "acknowledged flag {key} lost after kill -9");
        }
        // The change log and revision agree with the data: a snapshot holds every flag, and
        // the revision counts every committed flag (acknowledged or not) without gaps.
        let mut flags = server.flags_as(Some(ADMIN)).await;
        let mut stream = watch(&mut flags, "production", 0).await;
        let Event::Snapshot(snapshot) = next(&mut stream).await else {
            panic!("snapshot")
        };
        assert!(snapshot.flags.len() >= acked.len());
        assert_eq!(snapshot.revision, snapshot.flags.len() as u64);
        let mut resumed = watch(
            &mut flags,
            "production",
            snapshot.revision.saturating_sub(5),
        )
        .await;
        let mut revision = snapshot.revision.saturating_sub(5);
        while revision < snapshot.revision {
            match next(&mut resumed).await {
                Event::Change(c) => {
                    assert_eq!(c.revision, revision + 1);
                    revision = c.revision;
                }
                other => panic!("expected the retained change log, got {other:?}"),
            }
        }
    }
}
