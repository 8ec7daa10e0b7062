//! The PostgreSQL store's batch log is trimmed (`--store-log-retention-secs`): the leader
//! removes batches older than the retention, except the newest, and replicas that follow keep
//! following. A replica cut off for longer than the retention (here: stopped with SIGSTOP)
//! finds out when it resumes and stops, saying why, so that its SDKs move to other replicas and
//! its supervisor starts it again; started again, it loads the database afresh.
//!
//! The batches' age is PostgreSQL's (`committed_at`); rather than wait out a retention, the
//! test makes the batches it wants trimmed an hour older.

use crate::leader::the_leader;
use crate::support::eventually::DEADLINE;
use crate::support::postgres::shared;
use crate::support::*;
use flagwire_proto::v1::*;
use std::process::Command;

/// The shortest retention the server takes.
const RETENTION: &str = "60";

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
async fn the_leader_trims_the_log_and_a_replica_cut_off_for_longer_stops() {
    let cluster = shared();
    let url = cluster.create_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let args = [
        "--store",
        url.as_str(),
        "--store-log-retention-secs",
        RETENTION,
    ];
    let stderr = StderrLines::default();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start_env(d.path(), &args, &[], Some(stderr.clone())))
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

    // One replica is cut off (stopped) while the leader writes three versions, the first two of
    // which then age past the retention.
    signal(&servers[cut], "-STOP");
    for enabled in [true, false, true] {
        toggle(&servers[leader], enabled).await.unwrap();
    }
    // The premise: nothing is trimmed while it is younger than the retention.
    let floor: u64 = cluster
        .sql(&db, "SELECT seq FROM log_floor")
        .parse()
        .unwrap();
    assert!(
        floor < head,
        "trimmed too early: floor {floor}, head {head}"
    );
    cluster.sql(
        &db,
        &format!(
            "UPDATE batches SET committed_at = committed_at - interval '1 hour' \
             WHERE seq <= {}",
            head + 2
        ),
    );
    // The leader trims everything that old, but keeps the newest batch (the log's head).
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

    // The cut-off replica, resumed, cannot catch up: it stops, non-zero, saying why.
    signal(&servers[cut], "-CONT");
    let status = eventually(DEADLINE, "the cut-off replica to stop", async || {
        servers[cut].exited()
    })
    .await;
    assert!(!status.success(), "{status:?}");
    let why = format!("applied batches through {head}, but batches through {floor}");
    let said = stderr.lock().unwrap().join("\n");
    assert!(said.contains("fell behind the store's log"), "{said}");
    assert!(said.contains(&why), "{said}");
    assert!(said.contains("loads the database afresh"), "{said}");

    // Started again, it loads the database afresh: the latest version, healthy, writing; the
    // others follow its write.
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
    // The trim goes on at every turn of the leader: the batches before version 6, once older
    // than the retention, go too.
    cluster.sql(
        &db,
        "UPDATE batches SET committed_at = committed_at - interval '1 hour'",
    );
    let head: u64 = cluster
        .sql(&db, "SELECT max(seq) FROM batches")
        .parse()
        .unwrap();
    eventually(DEADLINE, "the leader to trim again", async || {
        let left = cluster.sql(&db, "SELECT count(*), min(seq) FROM batches");
        (left == format!("1|{head}")).then_some(())
    })
    .await;
    // Up to date, every replica stays up through it.
    for server in [&servers[leader], &servers[live], &restarted] {
        assert_eq!(http::get(&server.http, "/healthz").await.body, "ok\n");
    }
}

#[test]
fn a_retention_out_of_range_is_refused_at_start() {
    let dir = tempdir();
    for bad in ["59", "0", "-1", "inf", "NaN", "1e20", "a week"] {
        let arg = format!("--store-log-retention-secs={bad}");
        let stderr = failed_start(dir.path(), &[&arg]);
        assert!(
            stderr.contains("--store-log-retention-secs"),
            "{bad}: {stderr}"
        );
        assert!(stderr.contains("seconds"), "{bad}: {stderr}");
    }
}
