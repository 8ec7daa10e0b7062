//! Rollouts on compressed time: the real server (in process, real sled in a temp dir, real
//! gRPC on loopback) driven by a manual clock, so hours of windows and steps pass in seconds.
//! Reports are synthetic and deterministic; the judge's statistics are calibrated separately
//! (`tests/sim`).

use crate::support::inproc::InProcess;
use crate::support::rollout::*;
use crate::support::{Connect, Metrics, Rollouts, bool_flag, create_env, create_flag, set_enabled};
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};
use tonic::Code;

const MIN: Duration = Duration::from_secs(60);
const INSTANCE: &str = "00000000-0000-4000-8000-000000000001";

/// The in-process server plus the report sequence the synthetic SDK instance is at.
struct Harness {
    server: InProcess,
    sequence: u64,
}

impl std::ops::Deref for Harness {
    type Target = InProcess;
    fn deref(&self) -> &InProcess {
        &self.server
    }
}

impl Harness {
    async fn start() -> Self {
        Self {
            server: InProcess::start().await,
            sequence: 0,
        }
    }

    async fn restart(&mut self) {
        self.server.restart().await;
    }

    /// Environment `prod` with flag `checkout` (on/off) enabled there, serving off.
    async fn checkout(&self) {
        let mut admin = self.admin().await;
        create_env(&mut admin, "prod").await;
        let mut flag = bool_flag("checkout", &["prod"]);
        flag.environments.get_mut("prod").unwrap().default_rule = Some(Serve {
            kind: Some(serve::Kind::Variant("off".into())),
        });
        create_flag(&mut admin, flag).await;
        set_enabled(&mut admin, "checkout", "prod", true).await;
    }

    /// Reports one window of (canary, control) = (`n`, `canary_errors`) / (`n`, `control_errors`)
    /// ending now, then moves the clock one window on and waits for the driver to close it.
    async fn window(
        &mut self,
        client: &mut Rollouts,
        metrics: &mut Metrics,
        r: &Rollout,
        n: u64,
        errors: (u64, u64),
    ) -> Rollout {
        let before = get(client, &r.id, 10_000).await.windows.len();
        self.sequence += 1;
        let series = vec![
            series(r, "canary", n, errors.0, 20_000),
            series(r, "control", n, errors.1, 20_000),
        ];
        let now = self.now();
        report(metrics, "prod", INSTANCE, self.sequence, now, MIN, series).await;
        self.advance(MIN);
        // Closed, and judged: the decision of this window is applied (or none is made while
        // paused), so the next window starts from the state it left.
        let closed_at = self.now();
        wait_for(client, &r.id, 10_000, "the window to be judged", |x| {
            let judged = x
                .latest_decision
                .as_ref()
                .and_then(|d| d.time)
                .and_then(|t| SystemTime::try_from(t).ok())
                .is_some_and(|t| t >= closed_at);
            x.windows.len() > before && (state(x) != RolloutState::Running || judged)
        })
        .await
    }
}

fn default_rule(flag: &Flag) -> serve::Kind {
    flag.environments["prod"]
        .default_rule
        .clone()
        .unwrap()
        .kind
        .unwrap()
}

async fn flag(h: &Harness) -> Flag {
    h.admin()
        .await
        .get_flag(GetFlagRequest {
            key: "checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

fn steps() -> Vec<RolloutStep> {
    vec![
        step(500, 30 * MIN, 1_000),
        step(2_500, 30 * MIN, 1_000),
        step(5_000, 30 * MIN, 1_000),
        step(10_000, Duration::ZERO, 0),
    ]
}

#[tokio::test]
async fn a_healthy_rollout_reaches_everyone_in_its_minimum_time() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    assert_eq!(state(&r), RolloutState::Running);
    let serve::Kind::Split(split) = default_rule(&flag(&h).await) else {
        panic!("not a split")
    };
    let weights: Vec<_> = split
        .entries
        .iter()
        .map(|e| (e.variant.as_str(), e.weight, e.label.as_str()))
        .collect();
    assert_eq!(
        weights,
        [
            ("on", 500, "canary"),
            ("off", 9_000, ""),
            ("off", 500, "control")
        ]
    );
    assert_eq!(
        (split.salt.as_str(), split.rollout_id.as_str()),
        (r.id.as_str(), r.id.as_str())
    );

    let mut minutes = 0;
    let mut last = r.clone();
    while state(&last) == RolloutState::Running {
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
        minutes += 1;
        if minutes == 31 {
            let serve::Kind::Split(split) = default_rule(&flag(&h).await) else {
                panic!()
            };
            assert_eq!(
                split.entries[0].weight, 2_500,
                "promoted to 25 % after 30 minutes"
            );
        }
        assert!(
            minutes <= 91,
            "still running after {minutes} minutes: {:?}",
            reasons(&last)
        );
    }
    // Three steps of 30 minutes, each promoted at the first window close past its minimum.
    assert_eq!(minutes, 90);
    assert_eq!(state(&last), RolloutState::Completed);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("on".into())
    );
    let log = reasons(&last);
    assert_eq!(log.first().map(String::as_str), Some("STARTED"));
    let promotions: Vec<_> = last
        .decisions
        .iter()
        .filter(|d| d.kind == DecisionKind::Promote as i32 && d.actor == "judge")
        .map(|d| (d.step, d.reason_code.as_str()))
        .collect();
    assert_eq!(
        promotions,
        [
            (0, "STEP_HEALTHY"),
            (1, "STEP_HEALTHY"),
            (2, "STEP_HEALTHY")
        ]
    );
    let holds = last
        .decisions
        .iter()
        .find(|d| d.reason_code == "MIN_DURATION")
        .unwrap();
    assert!(
        holds.repeats > 1,
        "repeated HOLDs fold into one entry: {holds:?}"
    );
    let promote = last.decisions.iter().rfind(|d| d.actor == "judge").unwrap();
    assert_eq!(promote.cohorts.len(), 2);
    assert_eq!(promote.cohorts[0].cohort, "canary");
    assert!(promote.cohorts[0].n >= 30_000 && (promote.cohorts[0].error_rate - 0.01).abs() < 1e-9);
    assert!(
        promote
            .tests
            .iter()
            .any(|t| t.name == "error_rate" && !t.flagged)
    );
    assert_eq!(last.blast_radius_basis_points, 10_000);
    let ack = last.acknowledgement.clone().unwrap();
    assert!(ack.revision > 0 && ack.environment == "prod");

    // Every step is an ordinary, audited flag change made by the judge.
    let events = h
        .admin()
        .await
        .list_audit_events(ListAuditEventsRequest {
            flag_key: "checkout".into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let by_judge: Vec<_> = events
        .iter()
        .filter(|e| e.actor == "judge")
        .map(|e| e.action.as_str())
        .collect();
    assert_eq!(by_judge.len(), 3, "{by_judge:?}");
    assert!(by_judge.contains(&"release.complete"), "{by_judge:?}");
    assert_eq!(
        flag(&h).await.version,
        6,
        "create, enable, start, two promotions, completion"
    );
}

#[tokio::test]
async fn an_error_regression_rolls_back_on_its_own_with_the_evidence() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let mut last = r.clone();
    let mut minutes = 0;
    while state(&last) == RolloutState::Running {
        // 2.2 % errors on the canary against 1 % on control: not critical, but a regression.
        last = h
            .window(&mut client, &mut metrics, &r, 2_000, (44, 20))
            .await;
        minutes += 1;
        assert!(
            minutes <= 10,
            "not rolled back after {minutes} windows: {:?}",
            reasons(&last)
        );
    }
    assert_eq!(state(&last), RolloutState::RolledBack);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    let d = last.decisions.last().unwrap();
    assert_eq!(
        (d.kind, d.reason_code.as_str(), d.actor.as_str()),
        (
            DecisionKind::Rollback as i32,
            "ERROR_RATE_REGRESSION",
            "judge"
        )
    );
    let test = d.tests.iter().find(|t| t.name == "error_rate").unwrap();
    assert!(test.flagged && test.p_value < test.alpha, "{test:?}");
    assert!(d.cohorts[0].error_rate > d.cohorts[1].error_rate);
    assert!(
        d.cohorts[0].error_rate_lower > d.cohorts[1].error_rate,
        "{:?}",
        d.cohorts
    );
    assert_eq!(last.blast_radius_requests, 2_000 * minutes);
    assert_eq!(last.blast_radius_errors, 44 * minutes);
    assert_eq!(last.blast_radius_basis_points, 500);
    assert_eq!(last.time_to_detect.unwrap().seconds, 60 * minutes as i64);
    assert!(last.rollback_revision > 0);
    assert_eq!(
        last.acknowledgement.as_ref().unwrap().revision,
        last.rollback_revision
    );
    assert!(last.latest_decision.is_some());

    // Finished rollouts take no more actions.
    let err = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
}

#[tokio::test]
async fn a_critical_error_rate_rolls_back_at_the_first_window() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let last = h
        .window(&mut client, &mut metrics, &r, 1_000, (150, 10))
        .await;
    assert_eq!(state(&last), RolloutState::RolledBack);
    assert_eq!(
        last.decisions.last().unwrap().reason_code,
        "CRITICAL_ERROR_RATE"
    );
    let _ = last;
}

#[tokio::test]
async fn rollouts_and_their_windows_survive_a_restart() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    for _ in 0..31 {
        h.window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    let before = get(&mut client, &r.id, 10_000).await;
    assert_eq!(before.current_step, 1);
    h.restart().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let after = get(&mut client, &r.id, 10_000).await;
    assert_eq!(after.current_step, 1);
    assert_eq!(
        after.windows.len(),
        before.windows.len(),
        "closed windows are durable"
    );
    assert_eq!(after.decisions.len(), before.decisions.len());
    // The first window after a restart starts at the restart, then judging goes on.
    let mut last = after;
    for _ in 0..70 {
        if state(&last) != RolloutState::Running {
            break;
        }
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    assert_eq!(
        state(&last),
        RolloutState::Completed,
        "{:?}",
        reasons(&last)
    );
}

#[tokio::test]
async fn people_pause_resume_promote_and_roll_back() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let r = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    let reason = |s: &str| s.to_owned();
    let paused = client
        .pause_rollout(PauseRolloutRequest {
            id: r.id.clone(),
            reason: reason("looking at dashboards"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&paused), RolloutState::Paused);
    let d = paused.decisions.last().unwrap();
    assert_eq!(
        (d.reason_code.as_str(), d.detail.as_str(), d.actor.as_str()),
        ("MANUAL_PAUSE", "looking at dashboards", "admin")
    );
    // Paused: windows still close, but nothing is decided, even past the minimum.
    for _ in 0..31 {
        h.window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    let still = get(&mut client, &r.id, 0).await;
    assert_eq!(
        (state(&still), still.current_step),
        (RolloutState::Paused, 0)
    );
    let resumed = client
        .resume_rollout(ResumeRolloutRequest {
            id: r.id.clone(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&resumed), RolloutState::Running);
    let promoted = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: reason("ship it"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(promoted.current_step, 1);
    assert_eq!(
        promoted.decisions.last().unwrap().reason_code,
        "MANUAL_PROMOTE"
    );
    let rolled = client
        .rollback_rollout(RollbackRolloutRequest {
            id: r.id.clone(),
            reason: reason("pager"),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(state(&rolled), RolloutState::RolledBack);
    assert_eq!(
        rolled.decisions.last().unwrap().reason_code,
        "MANUAL_ROLLBACK"
    );
    assert_eq!(rolled.blast_radius_basis_points, 2_500);
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    // A rolled-back flag can get a new rollout.
    let again = create_and_start(&mut client, definition("checkout", "prod", steps(), MIN)).await;
    assert_eq!(state(&again), RolloutState::Running);
    let listed = client
        .list_rollouts(ListRolloutsRequest {
            environment: "prod".into(),
            flag_key: "checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollouts;
    assert_eq!(listed.len(), 2);
}

#[tokio::test]
async fn pause_for_a_human_waits_at_each_promotion() {
    let mut h = Harness::start().await;
    h.checkout().await;
    let (mut client, mut metrics) = (h.rollouts().await, h.metrics().await);
    let mut def = definition("checkout", "prod", steps(), MIN);
    def.policy.as_mut().unwrap().pause_for_human = true;
    let r = create_and_start(&mut client, def).await;
    let mut last = r.clone();
    for _ in 0..30 {
        last = h
            .window(&mut client, &mut metrics, &r, 1_000, (10, 10))
            .await;
    }
    assert_eq!(state(&last), RolloutState::Paused);
    assert_eq!(
        last.decisions.last().unwrap().reason_code,
        "AWAITING_APPROVAL"
    );
    assert_eq!(last.current_step, 0);
    let promoted = client
        .promote_rollout(PromoteRolloutRequest {
            id: r.id.clone(),
            reason: "approved".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    assert_eq!(
        (state(&promoted), promoted.current_step),
        (RolloutState::Running, 1)
    );
}

#[tokio::test]
async fn bad_definitions_are_refused_with_the_field_and_change_nothing() {
    let h = Harness::start().await;
    h.checkout().await;
    let mut client = h.rollouts().await;
    let good = || definition("checkout", "prod", steps(), MIN);
    let cases: Vec<(Rollout, Code, &str)> = vec![
        (
            Rollout {
                flag_key: String::new(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.flagKey",
        ),
        (
            Rollout {
                flag_key: "nope".into(),
                ..good()
            },
            Code::NotFound,
            "flag",
        ),
        (
            Rollout {
                environment: "staging".into(),
                ..good()
            },
            Code::NotFound,
            "environment",
        ),
        (
            Rollout {
                treatment_variant: "maybe".into(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.treatmentVariant",
        ),
        (
            Rollout {
                baseline_variant: "on".into(),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.baselineVariant",
        ),
        (
            Rollout {
                steps: vec![],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps",
        ),
        (
            Rollout {
                steps: vec![step(6_000, MIN, 0)],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps[0].basisPoints",
        ),
        (
            Rollout {
                steps: vec![step(500, MIN, 0), step(500, MIN, 0)],
                ..good()
            },
            Code::InvalidArgument,
            "rollout.steps[1].basisPoints",
        ),
        (
            Rollout {
                guardrails: Some(Guardrails {
                    alpha: 2.0,
                    ..Default::default()
                }),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.guardrails.alpha",
        ),
        (
            Rollout {
                guardrails: Some(Guardrails {
                    relative_latency_quantiles: vec![1.5],
                    ..Default::default()
                }),
                ..good()
            },
            Code::InvalidArgument,
            "rollout.guardrails.relativeLatencyQuantiles[0]",
        ),
        (
            definition("checkout", "prod", steps(), Duration::from_millis(500)),
            Code::InvalidArgument,
            "rollout.policy.window",
        ),
    ];
    for (r, code, field) in cases {
        let err = client
            .create_rollout(CreateRolloutRequest { rollout: Some(r) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), code, "{field}: {err:?}");
        assert!(err.message().contains(field), "{field}: {}", err.message());
    }
    assert!(
        client
            .list_rollouts(ListRolloutsRequest::default())
            .await
            .unwrap()
            .into_inner()
            .rollouts
            .is_empty()
    );
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );

    // Defaults are filled in and shown.
    let created = create(&mut client, good()).await;
    assert_eq!(state(&created), RolloutState::Draft);
    let g = created.guardrails.clone().unwrap();
    assert_eq!(
        (
            g.alpha,
            g.latency_ratio_threshold,
            g.relative_latency_quantiles.clone()
        ),
        (0.03, 1.1, vec![0.5, 0.95, 0.99])
    );
    assert!(g.relative_error_rate);
    // Step minimums are whole windows (the judge decides at window closes).
    let mut odd = good();
    odd.steps[0].min_duration = Some(prost_types::Duration {
        seconds: 90,
        nanos: 0,
    });
    let odd = create(&mut client, odd).await;
    assert_eq!(odd.steps[0].min_duration.unwrap().seconds, 120);
    assert_eq!(odd.steps[1].min_duration.unwrap().seconds, 1_800);
    // A draft changes nothing until started; one active rollout per flag and environment.
    assert_eq!(
        default_rule(&flag(&h).await),
        serve::Kind::Variant("off".into())
    );
    let other = create(&mut client, good()).await;
    client
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap();
    let err = client
        .start_rollout(StartRolloutRequest {
            id: other.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = client
        .start_rollout(StartRolloutRequest {
            id: created.id.clone(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    let err = client
        .get_rollout(GetRolloutRequest {
            id: "ro-missing".into(),
            window_limit: 0,
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::NotFound);
    let err = client
        .resume_rollout(ResumeRolloutRequest {
            id: String::new(),
            reason: String::new(),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::InvalidArgument);
}
