//! Release outcomes end to end on the real server binary (`FLAGWIRE_BIN` or this profile's):
//! a three-flag release at a 25 % stage (25 % canary, 25 % control, 50 % neither), request
//! scopes that each read all three flags, and the release's closed windows as `GetRelease`
//! shows them. Each cohort counts one outcome per scope (with the scope's errors), not one per
//! flag read, while its evaluations count every flag.

use flagwire::{Client, Context};
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::release_service_client::ReleaseServiceClient;
use flagwire_proto::v1::*;
use prost_types::Duration as PbDuration;
use std::collections::BTreeMap;
use std::time::Duration;
use tonic::transport::Channel;

#[path = "support/binary.rs"]
mod binary;
use binary::{auth, bool_flag, start};

const FLAGS: [&str; 3] = ["search", "ranker", "snippets"];
const SCOPES: usize = 200;
const DEADLINE: Duration = Duration::from_secs(20);

fn seconds(s: i64) -> Option<PbDuration> {
    Some(PbDuration {
        seconds: s,
        nanos: 0,
    })
}

/// Environment `prod` with the three flags serving "off", and an sdk token for it.
async fn setup(admin: &mut AdminServiceClient<Channel>) -> String {
    let environment = Environment {
        key: "prod".into(),
        ..Default::default()
    };
    admin
        .create_environment(auth(CreateEnvironmentRequest {
            environment: Some(environment),
            reason: String::new(),
        }))
        .await
        .unwrap();
    for key in FLAGS {
        let flag = Some(bool_flag(key, "prod", "off"));
        let reason = String::new();
        let request = CreateFlagRequest { flag, reason };
        admin.create_flag(auth(request)).await.unwrap();
    }
    let request = CreateApiTokenRequest {
        name: "svc".into(),
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

/// Creates and starts the release; it holds at its first stage for the whole test (an hour's
/// minimum, no relative tests that chance could trip).
async fn release(releases: &mut ReleaseServiceClient<Channel>) -> String {
    let stage = Stage {
        name: "a quarter".into(),
        audience: Some(Audience {
            kind: Some(audience::Kind::BasisPoints(2_500)),
        }),
        variants: FLAGS.iter().map(|f| (f.to_string(), "on".into())).collect(),
        min_duration: seconds(3_600),
        min_outcomes_per_cohort: 1_000_000,
        ..Default::default()
    };
    let release = Release {
        name: "search revamp".into(),
        environment: "prod".into(),
        flags: FLAGS
            .iter()
            .map(|f| ReleaseFlag {
                flag_key: f.to_string(),
                baseline_variant: "off".into(),
            })
            .collect(),
        stages: vec![stage],
        guardrails: Some(Guardrails {
            relative_error_rate: false,
            relative_latency_quantiles: Vec::new(),
            ..Default::default()
        }),
        policy: Some(RolloutPolicy {
            window: seconds(1),
            ..Default::default()
        }),
        ..Default::default()
    };
    let request = CreateReleaseRequest {
        release: Some(release),
    };
    let created = releases.create_release(auth(request)).await.unwrap();
    let id = created.into_inner().release.unwrap().id;
    let request = StartReleaseRequest {
        id: id.clone(),
        reason: "test".into(),
    };
    releases.start_release(auth(request)).await.unwrap();
    id
}

async fn get(releases: &mut ReleaseServiceClient<Channel>, id: &str) -> Release {
    let request = GetReleaseRequest {
        id: id.into(),
        window_limit: 1_000,
    };
    let response = releases.get_release(auth(request)).await.unwrap();
    response.into_inner().release.unwrap()
}

/// Per cohort: (outcomes, errors, evaluations) over every closed window.
fn totals(r: &Release) -> BTreeMap<String, (u64, u64, u64)> {
    let mut out = BTreeMap::new();
    for s in r.windows.iter().flat_map(|w| &w.series) {
        let t: &mut (u64, u64, u64) = out.entry(s.cohort.clone()).or_default();
        t.0 += s.successes + s.errors;
        t.1 += s.errors;
        t.2 += s.evaluations.iter().map(|e| e.count).sum::<u64>();
    }
    out
}

#[tokio::test]
async fn a_release_cohort_counts_one_outcome_per_scope_not_per_flag() {
    let server = start();
    let channel = Channel::from_shared(server.url.clone())
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = AdminServiceClient::new(channel.clone());
    let mut releases = ReleaseServiceClient::new(channel);
    let token = setup(&mut admin).await;
    let client = Client::builder(server.url.clone(), token)
        .metrics_flush_interval(Duration::from_secs(3_600))
        .build()
        .unwrap();
    client.wait_ready(Duration::from_secs(10)).await.unwrap();
    let id = release(&mut releases).await;

    // Wait for the release's rewrite to reach the client (without reading a flag, which would
    // count an evaluation).
    let request = GetEnvironmentRequest { key: "prod".into() };
    let env = admin.get_environment(auth(request)).await.unwrap();
    let revision = env.into_inner().environment.unwrap().revision;
    let deadline = tokio::time::Instant::now() + DEADLINE;
    while client.revision() < revision {
        assert!(
            tokio::time::Instant::now() < deadline,
            "never applied r{revision}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Every scope reads the three flags; one in five fails. Expected per cohort: (scopes,
    // failed scopes), from what the scope itself was served.
    let mut expected: BTreeMap<String, (u64, u64)> = BTreeMap::new();
    for i in 0..SCOPES {
        let ctx = Context::new(format!("user-{i}"));
        let fails = i % 5 == 0;
        let cohort = client
            .scope(async {
                let mut cohorts = Vec::new();
                for flag in FLAGS {
                    let d = client.bool_details(flag, &ctx, false);
                    assert_eq!(d.rollout_id.as_deref(), Some(id.as_str()), "{flag}");
                    cohorts.push(d.cohort.unwrap_or_default());
                }
                assert!(cohorts.iter().all(|c| c == &cohorts[0]), "{cohorts:?}");
                let cohort = cohorts.swap_remove(0);
                if fails { Err(cohort) } else { Ok(cohort) }
            })
            .await
            .unwrap_or_else(|cohort| cohort);
        let e = expected.entry(cohort).or_default();
        e.0 += 1;
        e.1 += u64::from(fails);
    }
    let (canary, control) = (expected["canary"], expected["control"]);
    assert!(canary.1 > 0 && control.1 > 0, "{expected:?}");
    assert!(expected[""].0 > 0, "some units are in neither cohort");
    assert!(
        client.flush().await,
        "the report with cohort outcomes was accepted"
    );

    // The report lands in the open window; poll until the windows that closed hold it all.
    let deadline = tokio::time::Instant::now() + DEADLINE;
    let seen = loop {
        let r = get(&mut releases, &id).await;
        assert_eq!(
            ReleaseState::try_from(r.state),
            Ok(ReleaseState::Running),
            "{:?}",
            r.latest_decision
        );
        let t = totals(&r);
        let outcomes = |c: &str| t.get(c).map_or(0, |t| t.0);
        if outcomes("canary") + outcomes("control") >= canary.0 + control.0 {
            break t;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the windows hold {t:?}, expected {expected:?} scopes"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let flags = FLAGS.len() as u64;
    for (cohort, (scopes, failed)) in [("canary", canary), ("control", control)] {
        assert_eq!(
            seen[cohort],
            (scopes, failed, flags * scopes),
            "{cohort}: outcomes and errors are per scope, evaluations per flag read"
        );
    }
    client.close().await;
}
