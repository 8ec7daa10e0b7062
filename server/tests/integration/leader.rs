//! Exactly one leader for what acts on time, on three replicas of the real binary sharing one
//! PostgreSQL: `kill -9` of the leader during a running release, another replica takes over
//! within 10 s (read from `/metrics`' `flagwire_leader`), and the release's judge, now on the
//! new leader, rolls it back once, as its policy says.

use crate::support::eventually::DEADLINE;
use crate::support::postgres::shared;
use crate::support::rollout::*;
use crate::support::scrape::Scrape;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::{Duration, Instant};

async fn leads(server: &Server) -> Option<bool> {
    let r = http::try_get(&server.http, "/metrics").await?;
    Some(Scrape::parse(&r.body).value("flagwire_leader", &[]) == 1.0)
}

/// The index of the one replica that leads, once exactly one does.
pub(crate) async fn the_leader(servers: &[&Server]) -> usize {
    eventually(DEADLINE, "exactly one leader", async || {
        let mut leaders = Vec::new();
        for (i, s) in servers.iter().enumerate() {
            if leads(s).await? {
                leaders.push(i);
            }
        }
        (leaders.len() == 1).then(|| leaders[0])
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_leader_mid_release_hands_the_judge_to_another_replica() {
    let url = shared().create_db();
    let dirs: Vec<_> = (0..3).map(|_| tempdir()).collect();
    let mut servers: Vec<Server> = dirs
        .iter()
        .map(|d| Server::start(d.path(), &["--store", &url]))
        .collect();
    let leader = the_leader(&servers.iter().collect::<Vec<_>>()).await;
    let other = (leader + 1) % 3;
    let mut admin = servers[other].admin().await;
    create_env(&mut admin, "prod").await;
    let mut flag = bool_flag("checkout", &["prod"]);
    flag.environments.get_mut("prod").unwrap().default_rule = Some(Serve {
        kind: Some(serve::Kind::Variant("off".into())),
    });
    create_flag(&mut admin, flag).await;
    set_enabled(&mut admin, "checkout", "prod", true).await;
    // No SDK reports: the judge rolls back after 6 s without canary data, on whichever replica
    // leads then.
    let mut definition = definition(
        "checkout",
        "prod",
        vec![step(500, Duration::from_secs(3600), 1_000)],
        Duration::from_secs(1),
    );
    definition.policy.as_mut().unwrap().missing_data_grace = Some(prost_types::Duration {
        seconds: 6,
        nanos: 0,
    });
    let mut client = servers[other].rollouts().await;
    let r = create_and_start(&mut client, definition).await;
    assert_eq!(state(&r), RolloutState::Running);

    let killed = Instant::now();
    servers[leader].kill9();
    let survivors: Vec<&Server> = servers
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != leader)
        .map(|(_, s)| s)
        .collect();
    the_leader(&survivors).await;
    let takeover = killed.elapsed();
    eprintln!("leader failover: {takeover:?}");
    assert!(
        takeover < Duration::from_secs(10),
        "took over after {takeover:?}"
    );

    let done = wait_for(&mut client, &r.id, 100, "the new leader's rollback", |x| {
        state(x) != RolloutState::Running
    })
    .await;
    assert_eq!(
        state(&done),
        RolloutState::RolledBack,
        "{:?}",
        reasons(&done)
    );
    // Started once, rolled back once (holds in between are logged, not applied): no step
    // applied twice.
    let log = reasons(&done);
    let count = |code: &str| log.iter().filter(|r| *r == code).count();
    assert_eq!(
        (count("STARTED"), count("NO_CANARY_DATA")),
        (1, 1),
        "{log:?}"
    );
    assert_eq!(
        log.last().map(String::as_str),
        Some("NO_CANARY_DATA"),
        "{log:?}"
    );
    let flag = admin
        .get_flag(GetFlagRequest {
            key: "checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert_eq!(
        flag.environments["prod"].default_rule.clone().unwrap().kind,
        Some(serve::Kind::Variant("off".into()))
    );
    assert_eq!(
        flag.version, 4,
        "create, enable, start's split, the rollback's baseline"
    );
    // The killed replica comes back as a follower.
    let back = servers[leader].restart();
    assert_eq!(leads(&back).await, Some(false));
    servers.push(back);
}
