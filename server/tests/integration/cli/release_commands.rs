//! `release create|start|approve|promote|rollback|status|list` and `flags delete`: the real
//! `flagwire` client. Stages are numbered from 0 wherever the CLI names one, as on the wire;
//! `status` says what each flag really serves (its baseline after a rollback, its last stage's
//! variant once completed) and shows the numbers the judge decided on (no control row at a
//! stage without control).

use super::fixtures::*;
use crate::support::inproc::InProcess;
use crate::support::release::{Traffic, get, send, window_report};
use crate::support::*;
use std::time::Duration;

/// Two flags over three stages: 1 % (needs approval), 10 % with only `new-ui` on (needs
/// approval), everyone; each stage held for an hour, so nothing moves unless someone decides.
const RELEASE: &str = "name: checkout redesign
environment: production
flags:
  - {flagKey: new-ui, baselineVariant: 'off'}
  - {flagKey: banner, baselineVariant: 'off'}
stages:
  - audience: {basisPoints: 100}
    variants: {new-ui: 'on', banner: 'on'}
    minDuration: 3600s
    requireApproval: true
  - audience: {basisPoints: 1000}
    variants: {new-ui: 'on'}
    minDuration: 3600s
    requireApproval: true
  - audience: {everyone: true}
    variants: {new-ui: 'on', banner: 'on'}
    minDuration: 3600s
policy:
  window: 60s
";

async fn with_flags<S: Connect>(server: S) -> S {
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    for key in ["new-ui", "banner"] {
        cli(&server, &["flags", "create", key, "--type", "bool"]).ok();
        cli(&server, &["enable", key, "--env", "production"]).ok();
    }
    server
}

/// The id in `created release <id> (DRAFT): ...`.
fn created_id(out: &str) -> String {
    out.strip_prefix("created release ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

fn has(out: &str, lines: &[&str]) {
    for line in lines {
        assert!(
            out.lines().any(|l| l == *line),
            "no line {line:?} in:\n{out}"
        );
    }
}

#[tokio::test]
async fn stages_are_counted_from_0_wherever_the_cli_names_one() {
    let dir = tempdir();
    let server = with_flags(Server::start(dir.path(), &[])).await;
    let file = write(dir.path(), "release.yaml", RELEASE);
    let run = |args: &[&str]| {
        let mut all = vec!["release"];
        all.extend_from_slice(args);
        cli(&server, &all)
    };
    let id = created_id(&run(&["create", "-f", &file]).ok());
    let line =
        |state: &str, stage: &str| format!("release {id} (production): {state}, stage {stage}\n");

    assert_eq!(
        run(&["start", &id, "--reason", "go"]).ok(),
        line("AWAITING_APPROVAL", "- of 0-2")
    );
    let approve = format!(
        "awaiting:  approval of stage 0 (flagwire release approve {id} --stage 0 --reason ...)"
    );
    has(
        &run(&["status", &id]).ok(),
        &[
            "stage:     - of 0-2",
            "why:       AWAITING_APPROVAL: stage 0 requires approval",
            &approve,
            "flag:      new-ui serves off (baseline off)",
            "detail:    stage 0 requires approval",
        ],
    );
    assert_eq!(
        run(&["approve", &id, "--stage", "0", "--reason", "ready"]).ok(),
        line("RUNNING", "0 of 0-2 (1% (+ 1% control))")
    );
    // A person's promotion approves the stage it begins.
    assert_eq!(
        run(&["promote", &id, "--reason", "good"]).ok(),
        line("RUNNING", "1 of 0-2 (10% (+ 10% control))")
    );
    let out = run(&["status", &id]).ok();
    has(
        &out,
        &[
            "stage:     1 of 0-2 (10% (+ 10% control))",
            "flag:      new-ui serves on (baseline off)",
            "flag:      banner serves off (baseline off)",
        ],
    );
    let approved = ["approved:  stage 0 by admin", "approved:  stage 1 by admin"];
    assert!(approved.iter().all(|a| out.contains(a)), "{out}");
    run(&["promote", &id, "--reason", "soak"]).ok();
    assert_eq!(
        run(&["promote", &id, "--reason", "done"]).ok(),
        line("COMPLETED", "2 of 0-2 (done)")
    );
    has(&run(&["status", &id]).ok(), &["stage:     2 of 0-2 (done)"]);
    let second = created_id(&run(&["create", "-f", &file]).ok());
    run(&["start", &second]).ok();
    run(&["approve", &second, "--stage", "0", "--reason", "ready"]).ok();
    let refused = run(&["approve", &second, "--stage", "2", "--reason", "skip"]).fails(3);
    assert!(
        refused.contains("the release is RUNNING: cannot approve a stage"),
        "{refused}"
    );
    let out = run(&["list"]).ok();
    assert!(
        out.contains("RUNNING    0 of 0-2 (1% (+ 1% control))")
            && out.contains("COMPLETED  2 of 0-2 (done)"),
        "{out}"
    );
}

#[tokio::test]
async fn status_says_what_each_flag_serves_once_the_release_ends() {
    let dir = tempdir();
    let server = with_flags(Server::start(dir.path(), &[])).await;
    let file = write(dir.path(), "release.yaml", RELEASE);
    let run = |args: &[&str]| {
        let mut all = vec!["release"];
        all.extend_from_slice(args);
        cli(&server, &all)
    };
    let id = created_id(&run(&["create", "-f", &file]).ok());
    run(&["start", &id]).ok();
    run(&["approve", &id, "--stage", "0", "--reason", "ready"]).ok();
    let partial = [
        "rollback",
        &id,
        "--flag",
        "banner",
        "--reason",
        "banner hurts",
    ];
    // A plan that does not exist refuses the partial rollback; --plan needs --flag.
    let missing = [&partial[..4], &["--plan", "plan-missing"], &partial[4..]].concat();
    let refused = run(&missing).fails(3);
    assert!(refused.contains("plan-missing"), "{refused}");
    let usage = run(&["rollback", &id, "--plan", "p", "--reason", "r"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert!(usage.stderr.contains("--flag <FLAG>"), "{usage:?}");
    run(&partial).ok();
    for _ in 0..3 {
        run(&["promote", &id, "--reason", "good"]).ok();
    }
    // Completed: the last stage's variants to everyone, the rolled-back flag its baseline.
    has(
        &run(&["status", &id]).ok(),
        &[
            "state:     COMPLETED",
            "flag:      new-ui serves on (baseline off)",
            "flag:      banner serves off (rolled back) (baseline off)",
        ],
    );

    // A second run, rolled back whole: every flag serves its baseline.
    let second = created_id(&run(&["create", "-f", &file]).ok());
    run(&["start", &second]).ok();
    run(&["approve", &second, "--stage", "0", "--reason", "ready"]).ok();
    run(&["rollback", &second, "--reason", "errors"]).ok();
    has(
        &run(&["status", &second]).ok(),
        &[
            "state:     ROLLED_BACK",
            "flag:      new-ui serves off (baseline off)",
            "flag:      banner serves off (baseline off)",
        ],
    );
    let refused = run(&["approve", &second, "--stage", "1", "--reason", "late"]).fails(3);
    assert!(
        refused.contains("the release is ROLLED_BACK: cannot approve a stage"),
        "{refused}"
    );
}

#[tokio::test]
async fn flags_delete_has_no_force_and_refuses_a_flag_a_release_owns() {
    let dir = tempdir();
    let server = with_flags(Server::start(dir.path(), &[])).await;
    let help = cli(&server, &["flags", "delete", "--help"]).ok();
    assert!(!help.contains("--force"), "{help}");
    assert!(
        cli(&server, &["flags", "archive", "--help"])
            .ok()
            .contains("--force"),
        "archive keeps its --force"
    );
    let usage = cli(&server, &["flags", "delete", "banner", "--force"]);
    assert_eq!(usage.code, 2, "a usage error: {usage:?}");
    assert!(
        usage.stderr.contains("unexpected argument '--force'"),
        "{usage:?}"
    );
    let file = write(dir.path(), "release.yaml", RELEASE);
    let id = created_id(&cli(&server, &["release", "create", "-f", &file]).ok());
    cli(&server, &["release", "start", &id]).ok();
    let refused = cli(&server, &["flags", "delete", "banner"]).fails(3);
    assert!(
        refused.contains(&format!("is part of release {id}"))
            && refused.contains("end it before deleting the flag"),
        "{refused}"
    );
    assert!(exists(&server, "banner").await);
}

// Multi-threaded: each CLI run blocks a thread while the server in this process answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_the_cohorts_the_judge_decided_on() {
    let dir = tempdir();
    let server = with_flags(InProcess::start().await).await;
    // A soak: everyone, no control.
    let soak = RELEASE.replace("{basisPoints: 100}", "{everyone: true}");
    let file = write(dir.path(), "release.yaml", &soak);
    let id = created_id(&cli(&server, &["release", "create", "-f", &file]).ok());
    cli(&server, &["release", "start", &id]).ok();
    cli(
        &server,
        &["release", "approve", &id, "--stage", "0", "--reason", "go"],
    )
    .ok();
    let mut releases = server.releases().await;
    let r = get(&mut releases, &id, 0).await;
    // Control requests still reported (an SDK that has not applied the stage yet): the judge
    // does not use them at a stage without control, and status does not show them.
    let window = Duration::from_secs(60);
    let report = window_report(
        &r,
        "00000000-0000-4000-8000-00000000000c",
        1,
        server.now(),
        window,
        Traffic::new(500, 5),
        Some(Traffic::new(300, 0)),
    );
    send(&mut server.metrics().await, report).await;
    server.advance(window);
    server.caught_up().await;
    let out = cli(&server, &["release", "status", &id]).ok();
    has(
        &out,
        &["evidence:  the canary of stage 0 alone (no control)"],
    );
    assert!(
        out.contains("decision:  HOLD MIN_DURATION by judge"),
        "{out}"
    );
    let row = |l: &str| l.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
    assert!(out.lines().any(|l| row(l) == "canary 500 5"), "{out}");
    assert!(!out.lines().any(|l| l.starts_with("control")), "{out}");
}
