//! The PostgreSQL store's batch log is trimmed (`--store-log-retention-secs`): the leader
//! removes batches older than the retention, replicas that follow keep following, and a replica
//! cut off for longer than the retention (here: stopped with SIGSTOP) finds out, refuses writes
//! as UNAVAILABLE and reports itself unhealthy, saying to restart it; restarted, it loads the
//! database afresh. The retention is PostgreSQL's clock (`committed_at`), so this test waits
//! a few real seconds for it.

use crate::leader::the_leader;
use crate::support::eventually::DEADLINE;
use crate::support::postgres::shared;
use crate::support::*;
use flagwire_proto::v1::*;
use std::process::Command;
use tonic::Code;

/// Short enough to wait for here; long enough that a replica that follows normally (within a
/// second) is never behind it, even on a busy machine.
const RETENTION: &str = "3";

fn signal(server: &Server, signal: &str) {
    let status = Command::new("kill")
        .args([signal, &server.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success(), "kill {signal}");
}

async fn banner_version(server: &Server) -> Option<u64> {
    let mut admin = server.admin().await;
    let request = GetFlagRequest {
        key: "banner".into(),
    };
    Some(
        admin
            .get_flag(request)
            .await
            .ok()?
            .into_inner()
            .flag?
            .version,
    )
}

async fn toggle(server: &Server, enabled: bool) -> Result<Flag, tonic::Status> {
    let mut admin = server.admin().await;
    let request = SetFlagEnabledRequest {
        key: "banner".into(),
        environment: "production".into(),
        enabled,
        ..Default::default()
    };
    Ok(admin
        .set_flag_enabled(request)
        .await?
        .into_inner()
        .flag
        .unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_leader_trims_the_log_and_a_replica_cut_off_for_longer_must_restart() {
    let cluster = shared();
    let url = cluster.create_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let args = [
        "--store",
        url.as_str(),
        "--store-log-retention-secs",
        RETENTION,
    ];
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start(d.path(), &args))
        .collect();
    let leader = the_leader(&servers.iter().collect::<Vec<_>>()).await;
    let (live, cut) = match leader {
        0 => (1, 2),
        1 => (0, 2),
        _ => (0, 1),
    };
    let mut admin = servers[leader].admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("banner", &["production"])).await;
    for server in &servers {
        eventually(DEADLINE, "every replica to serve the flag", async || {
            (banner_version(server).await == Some(1)).then_some(())
        })
        .await;
    }
    let head: u64 = cluster
        .sql(&db, "SELECT max(seq) FROM batches")
        .parse()
        .unwrap();

    // One replica is cut off (stopped) while the leader writes three versions.
    signal(&servers[cut], "-STOP");
    for enabled in [true, false, true] {
        toggle(&servers[leader], enabled).await.unwrap();
    }
    // The premise: the leader trimmed everything but the newest batch (the log's head), so
    // also the first two toggles, which the stopped replica never applied.
    let floor = head + 2;
    eventually(DEADLINE, "the leader to trim the log", async || {
        let trimmed: u64 = cluster.sql(&db, "SELECT seq FROM log_floor").parse().ok()?;
        (trimmed == floor).then_some(())
    })
    .await;
    let left = cluster.sql(&db, "SELECT count(*), min(seq) FROM batches");
    assert_eq!(
        left,
        format!("1|{}", head + 3),
        "only the newest batch is left"
    );

    // The replica that followed all along still follows, writes and is healthy.
    eventually(
        DEADLINE,
        "the live replica to serve version 4",
        async || (banner_version(&servers[live]).await == Some(4)).then_some(()),
    )
    .await;
    assert_eq!(toggle(&servers[live], false).await.unwrap().version, 5);
    assert_eq!(
        http::get(&servers[live].http, "/healthz").await.body,
        "ok\n"
    );

    // The cut-off replica, resumed, cannot catch up: it says so, refuses writes, and its
    // /healthz turns 503 for good, with the reason, for an orchestrator to restart it.
    signal(&servers[cut], "-CONT");
    let message = code(toggle(&servers[cut], true).await, Code::Unavailable);
    let why = format!("applied batches through {head}, but batches through {floor}");
    assert!(message.contains("fell behind the store's log"), "{message}");
    assert!(message.contains(&why), "{message}");
    assert!(message.contains("restart it"), "{message}");
    let health = eventually(
        DEADLINE,
        "/healthz to report the replica behind",
        async || {
            let r = http::try_get(&servers[cut].http, "/healthz").await?;
            (r.status == 503).then_some(r.body)
        },
    )
    .await;
    assert!(health.contains(&why), "{health}");
    // It still serves what it had (version 1), as during a database outage.
    assert_eq!(banner_version(&servers[cut]).await, Some(1));

    // Restarted, it loads the database afresh: the latest version, healthy, writing.
    servers[cut].kill9();
    let restarted = servers[cut].restart();
    eventually(
        DEADLINE,
        "the restarted replica to serve version 5",
        async || (banner_version(&restarted).await == Some(5)).then_some(()),
    )
    .await;
    assert_eq!(http::get(&restarted.http, "/healthz").await.body, "ok\n");
    assert_eq!(toggle(&restarted, true).await.unwrap().version, 6);
    eventually(DEADLINE, "the others to follow its write", async || {
        (banner_version(&servers[leader]).await == Some(6)
            && banner_version(&servers[live]).await == Some(6))
        .then_some(())
    })
    .await;
}

#[test]
fn a_retention_under_a_second_is_refused_at_start() {
    let dir = tempdir();
    for bad in ["0", "0.5", "-1", "inf", "a week"] {
        let arg = format!("--store-log-retention-secs={bad}");
        let stderr = failed_start(dir.path(), &[&arg]);
        assert!(
            stderr.contains("--store-log-retention-secs"),
            "{bad}: {stderr}"
        );
        assert!(stderr.contains("seconds"), "{bad}: {stderr}");
    }
}
