//! Helpers of the operator tests (CLI, export/import, backup/restore): running the real
//! `flagwire` binary as a client, and a catalog with a bit of everything in it.

use super::binary::*;
use flagwire_proto::v1::*;
use std::path::Path;
use std::process::{Command, Stdio};

/// What one `flagwire` client run printed.
#[derive(Debug)]
pub struct Run {
    /// The exit code.
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl Run {
    /// Asserts success and returns stdout.
    pub fn ok(self) -> String {
        assert_eq!(self.code, 0, "flagwire failed: {self:?}");
        self.stdout
    }

    /// Asserts exit code `code` and returns stderr.
    pub fn fails(self, code: i32) -> String {
        assert_eq!(self.code, code, "unexpected exit: {self:?}");
        assert!(
            self.stderr.starts_with("flagwire: "),
            "errors go to stderr, prefixed: {self:?}"
        );
        self.stderr
    }

    /// Stdout parsed as JSON.
    pub fn json(self) -> serde_json::Value {
        let out = self.ok();
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("not JSON ({e}): {out}"))
    }
}

/// Runs `flagwire ARGS` against `endpoint` with `token` in FLAGWIRE_TOKEN (none: unset).
pub fn flagwire(endpoint: &str, token: Option<&str>, args: &[&str]) -> Run {
    let mut cmd = Command::new(flagwire_bin());
    cmd.args(args)
        .env("FLAGWIRE_ENDPOINT", endpoint)
        .env_remove("FLAGWIRE_TOKEN")
        .env_remove("FLAGWIRE_DATA_DIR")
        .stdin(Stdio::null());
    if let Some(t) = token {
        cmd.env("FLAGWIRE_TOKEN", t);
    }
    let out = cmd.output().expect("run flagwire");
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `flagwire ARGS` against `server` (a process or in this one) as admin. With a server
/// in this process the test must run on a multi-threaded runtime: this call blocks its thread.
pub fn cli(server: &impl Connect, args: &[&str]) -> Run {
    flagwire(&server.address(), Some(ADMIN), args)
}

/// A rollout of `flag` in `env` from `baseline` to `treatment`.
pub fn rollout(flag: &str, env: &str, steps: &[u32]) -> Rollout {
    Rollout {
        flag_key: flag.into(),
        environment: env.into(),
        treatment_variant: "on".into(),
        baseline_variant: "off".into(),
        steps: steps
            .iter()
            .map(|bp| RolloutStep {
                basis_points: *bp,
                min_duration: Some(prost_types::Duration {
                    seconds: 60,
                    nanos: 0,
                }),
                ..Default::default()
            })
            .collect(),
        ..Default::default()
    }
}

/// Environments `production` and `staging`; segment `beta` in production; flags
/// `new-checkout` (rule on the segment, enabled in staging), `banner` (string, a split with
/// its own salt, `new-checkout` as prerequisite, tagged), `old-search` (archived, with a draft
/// rollout created before it was archived), `pricing` (a rollout naming a rollback plan that
/// completed at once);
/// with `running`, also a running rollout on `new-checkout` in production.
pub async fn seed(server: &Server, running: bool) {
    let mut admin = server.admin().await;
    let mut rollouts = server.rollouts().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                key: "beta".into(),
                environment: "production".into(),
                description: "Early adopters".into(),
                included: vec!["alice".into(), "bob".into()],
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    let mut checkout = bool_flag("new-checkout", &["production", "staging"]);
    checkout.description = "The redesigned checkout flow".into();
    let prod = checkout.environments.get_mut("production").unwrap();
    prod.rules.push(Rule {
        id: "beta".into(),
        clauses: vec![Clause {
            operator: Operator::InSegment as i32,
            values: vec![prost_types::Value {
                kind: Some(prost_types::value::Kind::StringValue("beta".into())),
            }],
            ..Default::default()
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("on".into())),
        }),
        ..Default::default()
    });
    create_flag(&mut admin, checkout).await;
    set_enabled(&mut admin, "new-checkout", "staging", true).await;
    let variant = |k: &str| Variant {
        key: k.into(),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::StringValue(format!("{k} text"))),
        }),
        description: String::new(),
    };
    let mut banner = Flag {
        key: "banner".into(),
        tags: vec!["marketing".into(), "web".into()],
        r#type: ValueType::String as i32,
        variants: vec![variant("blue"), variant("green")],
        ..Default::default()
    };
    banner.environments.insert(
        "production".into(),
        FlagConfig {
            enabled: true,
            off_variant: "blue".into(),
            salt: "banner-2026".into(),
            prerequisites: vec![Prerequisite {
                flag_key: "new-checkout".into(),
                variant: "on".into(),
            }],
            default_rule: Some(Serve {
                kind: Some(serve::Kind::Split(Split {
                    entries: vec![
                        SplitEntry {
                            variant: "blue".into(),
                            weight: 30,
                            label: String::new(),
                        },
                        SplitEntry {
                            variant: "green".into(),
                            weight: 70,
                            label: String::new(),
                        },
                    ],
                    bucket_by: "accountId".into(),
                    ..Default::default()
                })),
            }),
            ..Default::default()
        },
    );
    create_flag(&mut admin, banner).await;
    create_flag(&mut admin, bool_flag("old-search", &["production"])).await;
    rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(rollout("old-search", "production", &[500, 10_000])),
        })
        .await
        .unwrap();
    admin
        .archive_flag(ArchiveFlagRequest {
            force: false,
            key: "old-search".into(),
            archived: true,
            reason: "replaced".into(),
        })
        .await
        .unwrap();
    create_flag(&mut admin, bool_flag("pricing", &["production"])).await;
    set_enabled(&mut admin, "pricing", "production", true).await;
    let plan = rollouts
        .create_rollback_plan(CreateRollbackPlanRequest {
            plan: Some(RollbackPlan {
                name: "pricing off".into(),
                steps: vec![PlanStep {
                    action: Some(plan_step::Action::SetEnabled(SetEnabledAction {
                        flag_key: "pricing".into(),
                        environment: "production".into(),
                        enabled: false,
                    })),
                }],
                ..Default::default()
            }),
        })
        .await
        .unwrap()
        .into_inner()
        .plan
        .unwrap();
    let mut with_plan = rollout("pricing", "production", &[10_000]);
    with_plan.policy = Some(RolloutPolicy {
        rollback_plan_id: plan.id,
        ..Default::default()
    });
    let done = rollouts
        .create_rollout(CreateRolloutRequest {
            rollout: Some(with_plan),
        })
        .await
        .unwrap()
        .into_inner()
        .rollout
        .unwrap();
    rollouts
        .start_rollout(StartRolloutRequest { id: done.id })
        .await
        .unwrap();
    if running {
        set_enabled(&mut admin, "new-checkout", "production", true).await;
        let r = rollouts
            .create_rollout(CreateRolloutRequest {
                rollout: Some(rollout("new-checkout", "production", &[100, 1_000])),
            })
            .await
            .unwrap()
            .into_inner()
            .rollout
            .unwrap();
        rollouts
            .start_rollout(StartRolloutRequest { id: r.id })
            .await
            .unwrap();
    }
}

/// Writes `text` to `dir/name` and returns the path as a string.
pub fn write(dir: &Path, name: &str, text: &str) -> String {
    let path = dir.join(name);
    std::fs::write(&path, text).unwrap();
    path.to_str().unwrap().to_owned()
}
