//! Release evidence shared by replicas on one PostgreSQL database: SDK reports sent only to the
//! two replicas that do not lead reach the leader's judge, which promotes a healthy release
//! to completion and rolls back a regression for its errors (not for missing canary data).

use crate::leader::the_leader;
use crate::support::postgres::shared;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::{Duration, Instant, SystemTime};

const INSTANCES: [&str; 2] = [
    "00000000-0000-4000-8000-0000000000e1",
    "00000000-0000-4000-8000-0000000000e2",
];

/// Runs a one-flag, two-stage release judged every second on three replicas, reporting
/// `canary_errors` of 2,000 canary requests (20 of 2,000 in the control) to the two
/// followers only, until the release ends; the ended release, as the leader tells it.
async fn judged_on_the_leader(canary_errors: u64) -> Release {
    let url = shared().create_db();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start(d.path(), &["--store", &url]))
        .collect();
    let leader = the_leader(&servers.iter().collect::<Vec<_>>()).await;
    let followers: Vec<&Server> = (1..3).map(|i| &servers[(leader + i) % 3]).collect();
    let mut admin = servers[leader].admin().await;
    create_env(&mut admin, "prod").await;
    flags(&mut admin, "prod", &["checkout"]).await;
    let second = Duration::from_secs(1);
    let def = release(
        "prod",
        &["checkout"],
        vec![
            stage(share(1_000), &["checkout"], second),
            stage(share(5_000), &["checkout"], second),
        ],
        second,
    );
    let mut client = servers[leader].releases().await;
    let mut r = launch(&mut client, def).await;
    let mut metrics = Vec::new();
    for f in &followers {
        metrics.push(f.metrics().await);
    }
    let deadline = Instant::now() + Duration::from_secs(60);
    let mut sequence = 0;
    // Reports every 200 ms of wall time, alternating between the followers; the release's
    // windows are a second long, so this polls the leader's verdict as it goes.
    while state(&r) == ReleaseState::Running {
        assert!(
            Instant::now() < deadline,
            "still running: {:#?}",
            r.decisions
        );
        sequence += 1;
        let i = (sequence % 2) as usize;
        let report = window_report(
            &r,
            INSTANCES[i],
            sequence,
            SystemTime::now(),
            Duration::from_millis(200),
            Traffic::new(2_000, canary_errors),
            Some(Traffic::new(2_000, 20)),
        );
        send(&mut metrics[i], report).await;
        tokio::time::sleep(Duration::from_millis(200)).await;
        r = get(&mut client, &r.id, 0).await;
    }
    r
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_healthy_release_reported_to_followers_completes_on_the_leader() {
    let r = judged_on_the_leader(20).await;
    assert_eq!(state(&r), ReleaseState::Completed, "{:#?}", r.decisions);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_regression_reported_to_followers_is_rolled_back_by_the_leader() {
    let r = judged_on_the_leader(400).await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:#?}", r.decisions);
    let rollback = r.decisions.last().unwrap();
    assert_eq!(rollback.actor, "judge");
    assert_ne!(
        rollback.reason_code, "NO_CANARY_DATA",
        "the leader saw the followers' reports: {rollback:#?}"
    );
}
