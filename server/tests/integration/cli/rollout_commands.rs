//! `rollout create|start|pause|resume|promote|rollback|list|status --watch`: the real `flagwire`
//! client; `--watch` against the server in this process, whose manual clock closes the windows.

use super::fixtures::*;
use crate::support::eventually::DEADLINE;
use crate::support::inproc::InProcess;
use crate::support::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;

/// Two steps, the first held for an hour (nothing moves unless someone decides), judged
/// every second.
const ROLLOUT: &str = "flagKey: new-ui
environment: production
treatmentVariant: 'on'
baselineVariant: 'off'
steps:
  - basisPoints: 500
    minDuration: 3600s
  - basisPoints: 10000
policy:
  window: 1s
";

async fn with_flag<S: Connect>(server: S) -> S {
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    cli(&server, &["flags", "create", "new-ui", "--type", "bool"]).ok();
    cli(&server, &["enable", "new-ui", "--env", "production"]).ok();
    server
}

/// The id in `created rollout <id> (DRAFT): ...`.
fn created_id(out: &str) -> String {
    out.strip_prefix("created rollout ")
        .and_then(|r| r.split_whitespace().next())
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned()
}

#[tokio::test]
async fn rollouts_are_created_from_files_and_driven_by_hand() {
    let dir = tempdir();
    let server = with_flag(Server::start(dir.path(), &[])).await;
    let file = write(dir.path(), "rollout.yaml", ROLLOUT);
    let out = cli(&server, &["rollout", "create", "-f", &file]).ok();
    let id = created_id(&out);
    assert!(
        out.ends_with(&format!(
            "(DRAFT): new-ui in production, 2 steps; start it with: flagwire rollout start {id}\n"
        )),
        "{out}"
    );
    let line = |state: &str, step: &str| {
        format!("rollout {id} (new-ui in production): {state}, step {step}\n")
    };
    let run = |args: &[&str]| {
        let mut all = vec!["rollout"];
        all.extend_from_slice(args);
        cli(&server, &all).ok()
    };
    assert_eq!(run(&["start", &id]), line("RUNNING", "1/2 (5%)"));
    assert_eq!(
        run(&["pause", &id, "--reason", "look"]),
        line("PAUSED", "1/2 (5%)")
    );
    assert_eq!(run(&["resume", &id]), line("RUNNING", "1/2 (5%)"));
    let out = run(&["status", &id]);
    assert!(
        out.contains("state:     RUNNING\nstep:      1/2 (5%)\n"),
        "{out}"
    );
    assert_eq!(
        run(&["rollback", &id, "--reason", "errors"]),
        line("ROLLED_BACK", "1/2 (5%)")
    );
    let j = cli(&server, &["rollout", "status", &id, "-o", "json"]).json();
    assert_eq!(j["rollout"]["state"], "ROLLOUT_STATE_ROLLED_BACK");
    assert_eq!(j["rollout"]["latestDecision"]["detail"], "errors");

    // The same definition wrapped as a CreateRolloutRequest, in JSON.
    let definition: serde_json::Value = serde_norway::from_str(ROLLOUT).unwrap();
    let wrapped = serde_json::json!({ "rollout": definition }).to_string();
    let file = write(dir.path(), "request.json", &wrapped);
    let y = yaml(cli(
        &server,
        &["rollout", "create", "-f", &file, "-o", "yaml"],
    ));
    let second = text(&y, "/rollout/id");
    assert_eq!(y["rollout"]["state"], "ROLLOUT_STATE_DRAFT");
    cli(&server, &["rollout", "start", &second]).ok();
    assert_eq!(
        run(&["promote", &second]),
        format!("rollout {second} (new-ui in production): COMPLETED, step 2/2 (100%)\n")
    );
    let out = run(&["list", "--flag", "new-ui"]);
    assert!(
        out.contains(&format!("{second}  new-ui  production   COMPLETED")),
        "{out}"
    );
    assert!(
        out.contains(&format!("{id}  new-ui  production   ROLLED_BACK")),
        "{out}"
    );
}

// Multi-threaded: each CLI run blocks a thread while the server in this process answers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_watch_redraws_every_window_and_exits_when_the_rollout_ends() {
    let dir = tempdir();
    let server = with_flag(InProcess::start().await).await;
    let file = write(dir.path(), "rollout.yaml", ROLLOUT);
    let id = created_id(&cli(&server, &["rollout", "create", "-f", &file]).ok());
    cli(&server, &["rollout", "start", &id]).ok();

    let mut child = Command::new(flagwire_bin())
        .args(["rollout", "status", &id, "--watch"])
        .env("FLAGWIRE_ENDPOINT", server.address())
        .env("FLAGWIRE_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let (tx, rx) = mpsc::channel();
    let stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            let _ = tx.send(line);
        }
    });
    let mut seen: Vec<String> = Vec::new();
    let frames = |seen: &mut Vec<String>| {
        seen.extend(rx.try_iter());
        seen.iter()
            .filter(|l| l.starts_with("Every 1s: flagwire rollout status"))
            .count()
    };
    // Two frames one window apart, the judge's HOLD with both cohorts in the second.
    eventually(DEADLINE, "two frames", async || {
        (frames(&mut seen) >= 2).then_some(())
    })
    .await;
    let text = seen.join("\n");
    assert!(text.contains("state:     RUNNING"), "{text}");
    // A window closes on the server's clock; the next frame shows the judge's decision.
    server.advance(std::time::Duration::from_secs(1));
    server.caught_up().await;
    eventually(DEADLINE, "the judge's first decision", async || {
        frames(&mut seen);
        seen.iter()
            .any(|l| l.starts_with("decision:  HOLD MIN_DURATION by judge"))
            .then_some(())
    })
    .await;
    eventually(DEADLINE, "both cohorts", async || {
        frames(&mut seen);
        (seen.iter().any(|l| l.starts_with("canary "))
            && seen.iter().any(|l| l.starts_with("control ")))
        .then_some(())
    })
    .await;

    cli(
        &server,
        &["rollout", "promote", &id, "--reason", "looks good"],
    )
    .ok();
    let status = eventually(DEADLINE, "watch to exit", async || {
        child.try_wait().unwrap()
    })
    .await;
    assert!(status.success(), "{status:?}");
    // The reader thread may not have passed on the last frame when the child exits: it ends at
    // the pipe's end, so joining it first makes `seen` the whole output.
    reader.join().unwrap();
    frames(&mut seen);
    let text = seen.join("\n");
    let last = text.rsplit("Every 1s:").next().unwrap();
    assert!(last.contains("state:     COMPLETED"), "{text}");
    assert!(
        last.contains("decision:  PROMOTE MANUAL_PROMOTE by admin"),
        "{text}"
    );

    // An ended rollout is printed once; the watch returns at once.
    let out = cli(&server, &["rollout", "status", &id, "--watch"]).ok();
    assert_eq!(out.matches("Every 1s:").count(), 1, "{out}");
    let docs = cli(
        &server,
        &["rollout", "status", &id, "--watch", "-o", "yaml"],
    )
    .ok();
    assert!(docs.starts_with("---\nrollout:\n"), "{docs}");
}
