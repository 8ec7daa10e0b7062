//! `plans ...`, `schedule ...` and `ramp ...`: the real `flagwire` client against the server in
//! this process, whose manual clock the tests move past scheduled times and ramp steps (the
//! CLI reads relative times like `--in 1s` off the wall clock, where the manual clock starts).

use super::fixtures::*;
use crate::support::eventually::DEADLINE;
use crate::support::inproc::InProcess;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;

async fn server_with_flags() -> InProcess {
    let server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["promo", "checkout"] {
        cli(&server, &["flags", "create", key, "--type", "bool"]).ok();
        cli(&server, &["enable", key, "--env", "production"]).ok();
    }
    server
}

const PLAN: &str = "name: promo off
description: Turn the promotion off
scope: {flagKey: promo, environment: production}
steps:
  - setEnabled: {flagKey: promo, environment: production, enabled: false}
";

// Multi-threaded: each CLI run blocks a thread while the server in this process answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plans_create_list_execute_status_cancel() {
    let dir = tempdir();
    let server = server_with_flags().await;
    let file = write(dir.path(), "plan.yaml", PLAN);
    let out = cli(&server, &["plans", "create", "-f", &file]).ok();
    let id = out
        .strip_prefix("created plan ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert!(
        out.ends_with(&format!(
            "(\"promo off\"): 1 steps; run it with: flagwire plans execute {id}\n"
        )),
        "{out}"
    );
    let out = cli(&server, &["plans", "list"]).ok();
    assert_eq!(
        out.lines().nth(1).unwrap(),
        format!("{id}  promo off  flag promo in production  set-enabled  Turn the promotion off")
    );

    // Later: scheduled, then cancelled.
    let j = cli(
        &server,
        &["plans", "execute", &id, "--in", "1h", "-o", "json"],
    )
    .json();
    assert_eq!(j["execution"]["state"], "EXECUTION_STATE_SCHEDULED");
    let later = text(&j, "/execution/id");
    let out = cli(&server, &["plans", "cancel", &later]).ok();
    assert!(out.contains("state:     CANCELLED\n"), "{out}");
    assert!(flag(&server, "promo").await.environments["production"].enabled);

    // Now: runs, and its status shows the step.
    let out = cli(
        &server,
        &["plans", "execute", &id, "--reason", "promo over"],
    )
    .ok();
    let execution = out
        .strip_prefix("execution ")
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    let status = eventually(DEADLINE, "the execution to succeed", async || {
        let out = cli(&server, &["plans", "status", &execution]).ok();
        out.contains("state:     SUCCEEDED").then_some(out)
    })
    .await;
    assert!(status.contains("reason:    promo over\n"), "{status}");
    assert!(
        status.contains("STEP  OK    DETAIL\n0     true"),
        "{status}"
    );
    assert!(!flag(&server, "promo").await.environments["production"].enabled);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_create_list_cancel_and_the_server_applies_it() {
    let dir = tempdir();
    let server = server_with_flags().await;
    let out = cli(
        &server,
        &[
            "schedule",
            "create",
            "--in",
            "1s",
            "--flag",
            "promo",
            "--env",
            "production",
            "--disable",
            "--reason",
            "promo ends",
        ],
    )
    .ok();
    assert!(out.starts_with("scheduled sc-"), "{out}");
    assert!(out.ends_with(": disable promo in production\n"), "{out}");
    let out = cli(
        &server,
        &[
            "schedule",
            "create",
            "--at",
            "2030-01-01T00:00:00Z",
            "--flag",
            "checkout",
            "--env",
            "production",
            "--serve",
            "off",
        ],
    )
    .ok();
    let id = out.split_whitespace().nth(1).unwrap().to_owned();
    assert!(
        out.ends_with("at 2030-01-01T00:00:00Z: serve off for checkout in production\n"),
        "{out}"
    );
    let file = write(
        dir.path(),
        "change.yaml",
        "at: '2031-01-01T00:00:00Z'\nreason: from a file\nstep:\n  revert: {flagKey: checkout, version: '1'}\n",
    );
    let j = cli(&server, &["schedule", "create", "-f", &file, "-o", "json"]).json();
    assert_eq!(j["change"]["reason"], "from a file");

    // Not yet; then past its time.
    server.caught_up().await;
    let pending = cli(&server, &["schedule", "list", "--flag", "promo"]).ok();
    assert!(pending.contains(" PENDING "), "{pending}");
    server.advance(Duration::from_secs(5));
    server.caught_up().await;
    let applied = cli(&server, &["schedule", "list", "--all", "--flag", "promo"]).ok();
    assert!(applied.contains(" APPLIED "), "{applied}");
    assert!(
        applied.contains("disable promo in production  admin  promo ends"),
        "{applied}"
    );
    assert!(!flag(&server, "promo").await.environments["production"].enabled);

    let out = cli(
        &server,
        &["schedule", "cancel", &id, "--reason", "not needed"],
    )
    .ok();
    assert_eq!(
        out,
        format!("cancelled {id} (serve off for checkout in production)\n")
    );
    let pending = cli(&server, &["schedule", "list"]).ok();
    assert_eq!(
        pending.lines().count(),
        2,
        "only the file's change is pending: {pending}"
    );
    let all = cli(&server, &["schedule", "list", "--all", "-o", "json"]).json();
    assert_eq!(all["changes"].as_array().unwrap().len(), 3);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ramps_create_pause_resume_rollback_and_complete() {
    let server = server_with_flags().await;
    let ramp = |extra: &[&str]| {
        let mut args = vec![
            "ramp",
            "create",
            "checkout",
            "--env",
            "production",
            "--variant",
            "on",
            "--other",
            "off",
            "--to",
            "50",
        ];
        args.extend_from_slice(extra);
        cli(&server, &args).ok()
    };
    let out = ramp(&["--duration", "1h", "--steps", "4"]);
    let id = out
        .strip_prefix("ramp ")
        .and_then(|r| r.split(':').next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert_eq!(
        out,
        format!("ramp {id}: checkout in production, on 0% → 50% (now 0%), RUNNING, step 0/4\n")
    );
    let act = |action: &str| cli(&server, &["ramp", action, &id]).ok();
    assert!(act("pause").contains("PAUSED"));
    assert!(act("resume").contains("RUNNING"));
    assert!(act("rollback").contains("ROLLED_BACK"));
    let rule = flag(&server, "checkout").await.environments["production"]
        .default_rule
        .clone();
    assert_eq!(rule.unwrap().kind, Some(serve::Kind::Variant("off".into())));

    // Listed newest first: the second ramp is created a second later.
    server.advance(Duration::from_secs(1));
    let out = ramp(&["--from", "10%", "--duration", "1m", "--steps", "2"]);
    assert!(
        out.contains("on 10% → 50% (now 10%), RUNNING, step 0/2"),
        "{out}"
    );
    for _ in 0..2 {
        server.advance(Duration::from_secs(30));
        server.caught_up().await;
    }
    let list = cli(&server, &["ramp", "list", "--flag", "checkout"]).ok();
    assert!(
        list.lines()
            .nth(1)
            .unwrap()
            .contains("on (else off)  10%   50%  50%  COMPLETED    2/2"),
        "{list}"
    );
    assert!(
        list.lines().nth(2).unwrap().contains("ROLLED_BACK"),
        "{list}"
    );
}
