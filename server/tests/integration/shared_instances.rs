//! The SDK-instance registry shared by replicas on one PostgreSQL database: instances watching
//! B and C count on A (`CountAppliedInstances`, the kill switch's acknowledgements,
//! `flagwire instances`), applied revisions reported to B and C acknowledge a kill made on A,
//! and a dead replica's instances stop counting as connected.

use crate::support::cli::cli;
use crate::support::eventually::DEADLINE;
use crate::support::postgres::shared;
use crate::support::*;
use flagwire_proto::v1::*;

const ON_B: &str = "00000000-0000-4000-8000-0000000000b1";
const ON_C: &str = "00000000-0000-4000-8000-0000000000c1";

/// A Watch stream of SDK instance `id` on `server`, once the replica has the environment.
async fn sdk_watch(server: &Server, id: &str) -> tonic::Streaming<WatchResponse> {
    let mut flags = server.flags_as(Some(ADMIN)).await;
    eventually(
        DEADLINE,
        "the replica to know the environment",
        async || {
            let request = WatchRequest {
                environment: "production".into(),
                instance_id: id.into(),
                sdk_name: "flagwire-test".into(),
                sdk_version: "1".into(),
                ..Default::default()
            };
            let mut stream = flags.watch(request).await.ok()?.into_inner();
            next(&mut stream).await;
            Some(stream)
        },
    )
    .await
}

async fn count(server: &Server, revision: u64) -> (u32, u32) {
    let r = server
        .metrics()
        .await
        .count_applied_instances(CountAppliedInstancesRequest {
            environment: "production".into(),
            revision,
        })
        .await
        .unwrap()
        .into_inner();
    (r.connected, r.applied)
}

async fn execution(server: &Server, id: &str) -> Acknowledgement {
    server
        .rollouts()
        .await
        .get_execution(GetExecutionRequest { id: id.into() })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap()
        .acknowledgements
        .into_iter()
        .find(|a| a.environment == "production")
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_on_one_replica_counts_the_instances_of_every_replica() {
    let url = shared().create_db();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let mut servers: Vec<_> = dirs
        .iter()
        .map(|d| Server::start(d.path(), &["--store", &url]))
        .collect();
    let mut admin = servers[0].admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("checkout", &["production"])).await;
    set_enabled(&mut admin, "checkout", "production", true).await;
    let _on_b = sdk_watch(&servers[1], ON_B).await;
    let on_c = sdk_watch(&servers[2], ON_C).await;
    // A knows no instance of its own, yet counts both.
    eventually(DEADLINE, "A to count B's and C's instances", async || {
        (count(&servers[0], 0).await == (2, 2)).then_some(())
    })
    .await;

    let kill = servers[0]
        .rollouts()
        .await
        .kill(KillRequest {
            scope: Some(Scope {
                kind: Some(scope::Kind::FlagKey("checkout".into())),
                environment: "production".into(),
            }),
            reason: "pager".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .execution
        .unwrap();
    let ack = execution(&servers[0], &kill.id).await;
    let revision = ack.revision;
    assert_eq!((ack.connected, ack.acknowledged), (2, 0), "{ack:?}");
    // Each instance reports the kill's revision to the replica it watches (accepted once that
    // replica has applied the revision itself).
    for (server, id) in [(&servers[1], ON_B), (&servers[2], ON_C)] {
        let mut metrics = server.metrics().await;
        eventually(DEADLINE, "the report to be accepted", async || {
            let report = ReportRequest {
                instance_id: id.into(),
                sequence: 1,
                environment: "production".into(),
                applied_revision: revision,
                ..Default::default()
            };
            metrics.report(report).await.ok()
        })
        .await;
    }
    eventually(
        DEADLINE,
        "A's kill to be acknowledged by both",
        async || {
            let ack = execution(&servers[0], &kill.id).await;
            ((ack.connected, ack.acknowledged) == (2, 2)).then_some(())
        },
    )
    .await;
    assert_eq!(count(&servers[0], revision).await, (2, 2));
    // `flagwire instances` on A lists both, connected, at the kill's revision.
    let out = cli(&servers[0], &["instances", "--env", "production"]).ok();
    for id in [ON_B, ON_C] {
        let line = out.lines().find(|l| l.contains(id)).unwrap_or_else(|| {
            panic!("{id} missing from `flagwire instances` on A:\n{out}");
        });
        assert!(line.contains(&revision.to_string()), "{line}");
    }

    // C's stream closes: it no longer counts as connected anywhere.
    drop(on_c);
    eventually(DEADLINE, "C's instance to disconnect on A", async || {
        (count(&servers[0], revision).await == (1, 1)).then_some(())
    })
    .await;
    // B dies with its stream open: once its heartbeat is stale, A stops counting B's instance.
    servers[1].kill9();
    eventually(
        DEADLINE,
        "the dead replica's instance to expire on A",
        async || (count(&servers[0], revision).await == (0, 0)).then_some(()),
    )
    .await;
}
