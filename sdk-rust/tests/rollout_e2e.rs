//! End to end on the real server binary: SDK instances send real traffic through `measure`
//! with one-second windows to two canary rollouts at once. With an error regression injected
//! into the treatment of one, it rolls back on its own and every connected instance
//! acknowledges the rollback revision; the other, healthy, reaches 100 %.
//!
//! Rust instances run in this process. Python and TypeScript instances join when
//! `FLAGWIRE_E2E_PYTHON_TRAFFIC` / `FLAGWIRE_E2E_TS_TRAFFIC` name their traffic generator's
//! command line (`scripts/test` sets both); the binary is `FLAGWIRE_BIN` or this profile's.
//!
//! Ignored by a plain `cargo test`: it takes a minute of real traffic, so `scripts/test` runs it
//! once, at the end, with all three SDKs (`cargo test -p flagwire --test rollout_e2e --
//! --ignored`).

use flagwire::{Client, Context};
use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, rollout_service_client::RolloutServiceClient,
};
use flagwire_proto::v1::*;
use prost_types::Duration as PbDuration;
use std::process::{Child, Command, Stdio};

#[path = "support/binary.rs"]
mod binary;
use binary::{auth, bool_flag, start};
use std::time::Duration;
use tonic::transport::Channel;

const RUST_INSTANCES: usize = 3;

fn seconds(s: i64) -> Option<PbDuration> {
    Some(PbDuration {
        seconds: s,
        nanos: 0,
    })
}

async fn flag(admin: &mut AdminServiceClient<Channel>, key: &str) {
    let flag = bool_flag(key, "prod", "off");
    admin
        .create_flag(auth(CreateFlagRequest {
            flag: Some(flag),
            reason: String::new(),
        }))
        .await
        .unwrap();
}

async fn rollout(client: &mut RolloutServiceClient<Channel>, key: &str) -> String {
    let step = |bp, secs| RolloutStep {
        basis_points: bp,
        min_duration: seconds(secs),
        min_outcomes_per_cohort: 100,
        max_duration: None,
    };
    let r = Rollout {
        flag_key: key.into(),
        environment: "prod".into(),
        treatment_variant: "on".into(),
        baseline_variant: "off".into(),
        steps: vec![step(2_500, 4), step(5_000, 4), step(10_000, 0)],
        policy: Some(RolloutPolicy {
            window: seconds(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let id = client
        .create_rollout(auth(CreateRolloutRequest { rollout: Some(r) }))
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap()
        .id;
    client
        .start_rollout(auth(StartRolloutRequest { id: id.clone() }))
        .await
        .unwrap();
    id
}

async fn get(client: &mut RolloutServiceClient<Channel>, id: &str) -> Rollout {
    client
        .get_rollout(auth(GetRolloutRequest {
            id: id.into(),
            window_limit: 0,
        }))
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap()
}

fn finished(r: &Rollout) -> bool {
    !matches!(
        RolloutState::try_from(r.state),
        Ok(RolloutState::Running | RolloutState::Paused)
    )
}

/// Starts another language's generator for `flag`, if its command line is configured.
fn generator(var: &str, url: &str, token: &str, flag: &str, on_error: f64) -> Option<Child> {
    let command = std::env::var(var).ok().filter(|c| !c.trim().is_empty())?;
    let mut words = command.split_whitespace();
    let child = Command::new(words.next()?)
        .args(words)
        .args([
            "--endpoint",
            url,
            "--flag",
            flag,
            "--rps",
            "60",
            "--instances",
            "1",
        ])
        .args(["--flush-ms", "250", "--duration", "60"])
        .args([
            "--error-rate",
            &format!("on={on_error}"),
            "--error-rate",
            "off=0.01",
        ])
        .env("FLAGWIRE_TOKEN", token)
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| panic!("{var}: {command}: {e}"));
    Some(child)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[ignore = "a minute of real traffic: scripts/test runs it once, with every SDK's generator"]
async fn rollouts_promote_and_roll_back_on_real_traffic_from_every_sdk() {
    let server = start();
    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut rollouts = RolloutServiceClient::new(channel);
    admin
        .create_environment(auth(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: "prod".into(),
                ..Default::default()
            }),
            reason: String::new(),
        }))
        .await
        .unwrap();
    flag(&mut admin, "checkout").await;
    flag(&mut admin, "search").await;
    let token = admin
        .create_api_token(auth(CreateApiTokenRequest {
            name: "e2e".into(),
            role: Role::Sdk as i32,
            environment: "prod".into(),
            reason: String::new(),
        }))
        .await
        .unwrap()
        .into_inner()
        .secret;

    let mut clients = Vec::new();
    for _ in 0..RUST_INSTANCES {
        let c = Client::builder(server.url.clone(), token.clone())
            .metrics_flush_interval(Duration::from_millis(250))
            .build()
            .unwrap();
        c.wait_ready(Duration::from_secs(10)).await.unwrap();
        clients.push(c);
    }
    let mut others: Vec<Child> = Vec::new();
    for var in ["FLAGWIRE_E2E_PYTHON_TRAFFIC", "FLAGWIRE_E2E_TS_TRAFFIC"] {
        others.extend(generator(var, &server.url, &token, "checkout", 0.3));
        others.extend(generator(var, &server.url, &token, "search", 0.01));
    }
    let expected_instances = (RUST_INSTANCES + others.len()) as u32;

    let bad = rollout(&mut rollouts, "checkout").await;
    let good = rollout(&mut rollouts, "search").await;

    // Rust traffic: 300 requests/s over the instances; the treatment of `checkout` fails 30 %
    // of the time (against 1 % for everything else).
    let traffic = {
        let clients = clients.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(Duration::from_micros(3_333));
            for i in 0u64.. {
                tick.tick().await;
                let client = clients[(i as usize) % clients.len()].clone();
                let ctx = Context::new(format!("user-{}", (i * 7_919) % 100_000));
                let flag = if i % 2 == 0 { "checkout" } else { "search" };
                let fails = move |variant: &str| {
                    let rate = if flag == "checkout" && variant == "on" {
                        30
                    } else {
                        1
                    };
                    (i / 2) % 100 < rate
                };
                tokio::spawn(async move {
                    let _ = client
                        .measure(flag, &ctx, |variant| async move {
                            tokio::time::sleep(Duration::from_millis(2 + i % 5)).await;
                            if fails(&variant) { Err(()) } else { Ok(()) }
                        })
                        .await;
                });
            }
        })
    };

    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let (bad_r, good_r) = loop {
        let (b, g) = (
            get(&mut rollouts, &bad).await,
            get(&mut rollouts, &good).await,
        );
        if finished(&b) && finished(&g) {
            break (b, g);
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "rollouts still running: checkout {:?} {:?}, search {:?} {:?}",
            RolloutState::try_from(b.state),
            b.latest_decision
                .as_ref()
                .map(|d| (&d.reason_code, &d.detail)),
            RolloutState::try_from(g.state),
            g.latest_decision
                .as_ref()
                .map(|d| (&d.reason_code, &d.detail)),
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(
        RolloutState::try_from(bad_r.state),
        Ok(RolloutState::RolledBack),
        "{:#?}",
        bad_r.decisions
    );
    let why = &bad_r.decisions.last().unwrap();
    assert_eq!(why.actor, "judge");
    assert!(
        ["CRITICAL_ERROR_RATE", "ERROR_RATE_REGRESSION"].contains(&why.reason_code.as_str()),
        "{why:?}"
    );
    assert!(bad_r.blast_radius_requests > 0 && bad_r.blast_radius_errors > 0);
    assert_eq!(
        RolloutState::try_from(good_r.state),
        Ok(RolloutState::Completed),
        "{:#?}",
        good_r.decisions
    );

    // Every connected instance, of every language, acknowledges the rollback revision.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let r = get(&mut rollouts, &bad).await;
        let ack = r.acknowledgement.clone().unwrap();
        assert_eq!(ack.revision, r.rollback_revision);
        if ack.connected >= expected_instances && ack.acknowledged == ack.connected {
            assert!(ack.last_acknowledged_time.is_some());
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "acknowledged {} of {} connected (expected {expected_instances})",
            ack.acknowledged,
            ack.connected
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // And serves accordingly: the baseline of `checkout`, the treatment of `search`, to all.
    for c in &clients {
        for u in 0..200 {
            let ctx = Context::new(format!("user-{u}"));
            assert!(!c.bool_value("checkout", &ctx, true));
            assert!(c.bool_value("search", &ctx, false));
        }
    }
    traffic.abort();
    for mut child in others {
        let _ = child.kill();
        let _ = child.wait();
    }
    for c in clients {
        c.close().await;
    }
}
