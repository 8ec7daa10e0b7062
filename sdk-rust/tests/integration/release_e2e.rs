//! End to end on the real server binary: SDK instances of every language send real traffic
//! through their request scopes, each request reading the three flags of one release, with
//! one-second windows, to three releases at once:
//! - `h`: healthy; it completes, every flag serving its last stage's variant;
//! - `x`: errors rise only for requests served `x2` and `x3` together, which no stage serves
//!   before the last: it rolls back at that stage on its own, every flag back to its baseline in
//!   one revision, acknowledged by every connected instance;
//! - `p`: a person rolls one flag back at stage 1; the others keep serving and the release goes
//!   on to complete without it.
//!
//! Rust instances run in this process. Python and TypeScript instances join when
//! `FLAGWIRE_E2E_PYTHON_TRAFFIC` / `FLAGWIRE_E2E_TS_TRAFFIC` name their traffic generator's
//! command line (`scripts/test` sets both); the binary is `FLAGWIRE_BIN` or this profile's.
//!
//! Ignored by a plain `cargo test`: it takes half a minute of real traffic, so `scripts/test`
//! runs it once, at the end, with all three SDKs (`cargo test -p flagwire --test integration
//! -- --ignored release_e2e::`).

use flagwire::{Client, Context};
use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, flag_service_client::FlagServiceClient,
    release_service_client::ReleaseServiceClient,
};
use flagwire_proto::v1::*;
use prost_types::Duration as PbDuration;

use crate::support::binary;
use crate::support::e2e;
use binary::{auth, bool_flag, start};
use e2e::{Children, eventually, get_release, progress, state};
use std::time::Duration;
use tonic::transport::Channel;

const RUST_INSTANCES: usize = 3;
const GROUPS: [&str; 3] = ["h", "x", "p"];

fn seconds(s: i64) -> Option<PbDuration> {
    Some(PbDuration {
        seconds: s,
        nanos: 0,
    })
}

fn keys(group: &str) -> [String; 3] {
    [1, 2, 3].map(|i| format!("{group}{i}"))
}

/// Stage 0: flag 1 at 25 %; stage 1: flags 1 and 2 at 25 %; stage 2: flags 2 and 3 at 50 %.
fn definition(group: &str) -> Release {
    let [f1, f2, f3] = keys(group);
    let stage = |bp, on: &[&String]| Stage {
        audience: Some(Audience {
            kind: Some(audience::Kind::BasisPoints(bp)),
        }),
        variants: on
            .iter()
            .map(|k| (k.to_string(), "on".to_string()))
            .collect(),
        min_duration: seconds(4),
        min_outcomes_per_cohort: 100,
        ..Default::default()
    };
    Release {
        name: format!("release {group}"),
        environment: "prod".into(),
        flags: [&f1, &f2, &f3]
            .iter()
            .map(|k| ReleaseFlag {
                flag_key: k.to_string(),
                baseline_variant: "off".into(),
            })
            .collect(),
        stages: vec![
            stage(2_500, &[&f1]),
            stage(2_500, &[&f1, &f2]),
            stage(5_000, &[&f2, &f3]),
        ],
        policy: Some(RolloutPolicy {
            window: seconds(1),
            ..Default::default()
        }),
        ..Default::default()
    }
}

async fn launch(client: &mut ReleaseServiceClient<Channel>, group: &str) -> String {
    let release = Some(definition(group));
    let created = client
        .create_release(auth(CreateReleaseRequest { release }))
        .await
        .unwrap()
        .into_inner()
        .release
        .unwrap();
    let start = StartReleaseRequest {
        id: created.id.clone(),
        reason: "e2e".into(),
    };
    client.start_release(auth(start)).await.unwrap();
    created.id
}

async fn get(client: &mut ReleaseServiceClient<Channel>, id: &str) -> Release {
    get_release(client, id, false).await
}

/// Starts another language's generator for the flags of `group`, if its command is configured.
fn generator(
    var: &str,
    url: &str,
    token: &str,
    group: &str,
) -> Option<(String, std::process::Child)> {
    let [f1, f2, f3] = keys(group);
    let mut args = vec!["--endpoint", url, "--rps", "40", "--instances", "1"];
    args.extend(["--flush-ms", "250", "--duration", "90"]);
    args.extend(["--flag", &f1, "--flag", &f2, "--flag", &f3]);
    args.extend(["--error-rate", "on=0.01", "--error-rate", "off=0.01"]);
    let both = format!("{f2}=on,{f3}=on:0.3");
    if group == "x" {
        args.extend(["--error-when", &both]);
    }
    let args: Vec<String> = args.into_iter().map(String::from).collect();
    e2e::generator(var, token, &args)
}

async fn setup(admin: &mut AdminServiceClient<Channel>) -> String {
    let environment = Environment {
        key: "prod".into(),
        ..Default::default()
    };
    let request = CreateEnvironmentRequest {
        environment: Some(environment),
        reason: String::new(),
    };
    admin.create_environment(auth(request)).await.unwrap();
    for group in GROUPS {
        for key in keys(group) {
            let flag = Some(bool_flag(&key, "prod", "off"));
            let request = CreateFlagRequest {
                flag,
                reason: String::new(),
            };
            admin.create_flag(auth(request)).await.unwrap();
        }
    }
    let request = CreateApiTokenRequest {
        name: "e2e".into(),
        role: Role::Sdk as i32,
        environment: "prod".into(),
        reason: String::new(),
    };
    admin
        .create_api_token(auth(request))
        .await
        .unwrap()
        .into_inner()
        .secret
}

/// Rust traffic: 240 requests/s over the instances and the three releases; each request reads
/// its release's three flags in one scope and fails 1 % of the time, 30 % when it was served
/// `x2` and `x3` on together.
fn rust_traffic(clients: Vec<Client>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(Duration::from_micros(4_166));
        for i in 0u64.. {
            tick.tick().await;
            let client = clients[(i as usize) % clients.len()].clone();
            let ctx = Context::new(format!("user-{}", (i * 7_919) % 100_000));
            let group = GROUPS[(i as usize / clients.len()) % GROUPS.len()];
            tokio::spawn(async move {
                let scoped = client.clone();
                let _ = client
                    .scope(async move {
                        let [f1, f2, f3] = keys(group);
                        let served: Vec<bool> = [&f1, &f2, &f3]
                            .iter()
                            .map(|k| scoped.bool_value(k, &ctx, false))
                            .collect();
                        tokio::time::sleep(Duration::from_millis(2 + i % 5)).await;
                        let rate = if group == "x" && served[1] && served[2] {
                            30
                        } else {
                            1
                        };
                        if (i / 3) % 100 < rate {
                            Err(())
                        } else {
                            Ok(())
                        }
                    })
                    .await;
            });
        }
    })
}

/// The first change after `revision - 1`: the one that made `revision`.
async fn change_at(flags: &mut FlagServiceClient<Channel>, revision: u64) -> Change {
    let request = WatchRequest {
        environment: "prod".into(),
        since_revision: revision - 1,
        ..Default::default()
    };
    let mut stream = flags.watch(auth(request)).await.unwrap().into_inner();
    loop {
        let message = tokio::time::timeout(Duration::from_secs(10), stream.message())
            .await
            .expect("a Watch message")
            .unwrap()
            .unwrap();
        if let Some(watch_response::Event::Change(c)) = message.event {
            return c;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "half a minute of real traffic: scripts/test runs it once, with every SDK's generator"]
async fn releases_complete_roll_back_an_interaction_and_roll_back_one_flag_on_real_traffic() {
    let server = start();
    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut releases = ReleaseServiceClient::new(channel.clone());
    let mut flags = FlagServiceClient::new(channel);
    let token = setup(&mut admin).await;

    let mut clients = Vec::new();
    for _ in 0..RUST_INSTANCES {
        let c = Client::builder(server.url.clone(), token.clone())
            .metrics_flush_interval(Duration::from_millis(250))
            .build()
            .unwrap();
        c.wait_ready(Duration::from_secs(10)).await.unwrap();
        clients.push(c);
    }
    let mut others = Children::default();
    for var in ["FLAGWIRE_E2E_PYTHON_TRAFFIC", "FLAGWIRE_E2E_TS_TRAFFIC"] {
        for group in GROUPS {
            others.extend(generator(var, &server.url, &token, group));
        }
    }
    let expected_instances = (RUST_INSTANCES + others.len()) as u32;
    let [h, x, p] = [
        launch(&mut releases, "h").await,
        launch(&mut releases, "x").await,
        launch(&mut releases, "p").await,
    ];
    let traffic = rust_traffic(clients.clone());

    // A person rolls `p1` back once `p` reaches stage 1.
    eventually(
        Duration::from_secs(40),
        "release p at stage 1",
        async || {
            let r = get(&mut releases, &p).await;
            (r.current_stage >= 1)
                .then_some(())
                .ok_or(format!("{:?}", r.latest_decision))
        },
    )
    .await;
    let request = RollbackReleaseRequest {
        id: p.clone(),
        reason: "p1 misbehaves".into(),
        flag_key: "p1".into(),
        hold: false,
        plan_id: String::new(),
    };
    let partial = releases.rollback_release(auth(request)).await.unwrap();
    let partial = partial.into_inner().release.unwrap();
    assert_eq!(state(&partial), ReleaseState::Running);
    assert_eq!(partial.rolled_back_flags, ["p1"]);

    let ended =
        |r: &Release| matches!(state(r), ReleaseState::Completed | ReleaseState::RolledBack);
    let [hr, xr, pr] = eventually(
        Duration::from_secs(60),
        "every release to end",
        async || {
            let rs = [
                get(&mut releases, &h).await,
                get(&mut releases, &x).await,
                get(&mut releases, &p).await,
            ];
            if rs.iter().all(ended) {
                return Ok(rs);
            }
            Err(rs.iter().map(progress).collect::<Vec<_>>().join("; "))
        },
    )
    .await;

    assert_eq!(state(&hr), ReleaseState::Completed, "{:#?}", hr.decisions);
    assert_eq!(state(&pr), ReleaseState::Completed, "{:#?}", pr.decisions);
    assert_eq!(state(&xr), ReleaseState::RolledBack, "{:#?}", xr.decisions);
    assert_eq!(
        xr.current_stage, 2,
        "caught where x2 and x3 are first on together"
    );
    let why = xr.decisions.last().unwrap();
    assert_eq!(why.actor, "judge");
    assert!(
        ["CRITICAL_ERROR_RATE", "ERROR_RATE_REGRESSION"].contains(&why.reason_code.as_str()),
        "{why:?}"
    );
    // One revision put every flag of `x` back: a batch of the three.
    let change = change_at(&mut flags, xr.final_revision).await;
    let Some(change::Kind::FlagsUpserted(batch)) = change.kind else {
        panic!("the rollback is one batch of flags: {change:?}")
    };
    let mut batched: Vec<&str> = batch.flags.iter().map(|f| f.key.as_str()).collect();
    batched.sort_unstable();
    assert_eq!(batched, ["x1", "x2", "x3"]);

    // Every connected instance, of every language, acknowledges the rollback revision.
    eventually(
        Duration::from_secs(15),
        "every instance to acknowledge",
        async || {
            let r = get(&mut releases, &x).await;
            let ack = r.acknowledgement.clone().unwrap();
            assert_eq!(ack.revision, r.final_revision);
            if ack.connected >= expected_instances && ack.acknowledged == ack.connected {
                return Ok(());
            }
            Err(format!(
                "acknowledged {} of {} connected (expected {expected_instances})",
                ack.acknowledged, ack.connected
            ))
        },
    )
    .await;
    // And every client serves accordingly, to every unit.
    for c in &clients {
        for u in 0..200 {
            let ctx = Context::new(format!("user-{u}"));
            let on = |k: &str| c.bool_value(k, &ctx, false);
            assert!(
                !on("h1") && on("h2") && on("h3"),
                "h's last stage, to everyone"
            );
            assert!(!on("x1") && !on("x2") && !on("x3"), "x's baselines");
            assert!(!on("p1") && on("p2") && on("p3"), "p without p1");
        }
    }
    others.assert_running();
    traffic.abort();
    drop(others);
    for c in clients {
        c.close().await;
    }
}
