//! The rollout tests' harness: the real server in process (real sled in a temp dir, real gRPC
//! on loopback) on a manual clock, one synthetic SDK instance reporting deterministic windows,
//! and the flag `checkout` in environment `prod` that the rollouts change.

use crate::support::inproc::InProcess;
use crate::support::rollout::*;
use crate::support::{Connect, Metrics, Rollouts, bool_flag, create_env, create_flag, set_enabled};
use flagwire_proto::v1::*;
use std::time::{Duration, SystemTime};

pub const MIN: Duration = Duration::from_secs(60);
pub const INSTANCE: &str = "00000000-0000-4000-8000-000000000001";

/// The in-process server plus the report sequence the synthetic SDK instance is at.
pub struct Harness {
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
    pub async fn start() -> Self {
        Self {
            server: InProcess::start().await,
            sequence: 0,
        }
    }

    pub async fn restart(&mut self) {
        self.server.restart().await;
    }

    /// Environment `prod` with flag `checkout` (on/off) enabled there, serving off.
    pub async fn checkout(&self) {
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
    pub async fn window(
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

pub fn default_rule(flag: &Flag) -> serve::Kind {
    flag.environments["prod"]
        .default_rule
        .clone()
        .unwrap()
        .kind
        .unwrap()
}

pub async fn flag(h: &Harness) -> Flag {
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

pub fn steps() -> Vec<RolloutStep> {
    vec![
        step(500, 30 * MIN, 1_000),
        step(2_500, 30 * MIN, 1_000),
        step(5_000, 30 * MIN, 1_000),
        step(10_000, Duration::ZERO, 0),
    ]
}
