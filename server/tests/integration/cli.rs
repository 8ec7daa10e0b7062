//! The admin CLI on the real binary: each command's table and `--json` output, and its errors
//! (missing token, unknown objects, wrong role, server down, bad usage). The commands of
//! issue 12 are tested in `cli/`: one file per group of commands, every command's failures in
//! the table of `cli/errors.rs`.

mod access_commands;
mod env_migration;
mod errors;
mod fixtures;
mod flag_commands;
mod manager_commands;
mod metrics_commands;
mod release_commands;
mod rollout_commands;
mod shell_and_tls;
mod yaml_export;

use crate::support::*;
use flagwire_proto::v1::*;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

async fn flag(server: &Server, key: &str) -> Flag {
    let mut admin = server.admin().await;
    admin
        .get_flag(GetFlagRequest { key: key.into() })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

#[tokio::test]
async fn flags_list_and_get_print_tables_and_json() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let out = cli(&server, &["flags", "list"]).ok();
    assert_eq!(
        out,
        "KEY           TYPE     VERSION  ENVIRONMENTS               TAGS\n\
         banner        string   1        production:on              marketing,web\n\
         new-checkout  boolean  2        production:off,staging:on  -\n\
         pricing       boolean  4        production:on              -\n"
    );
    let out = cli(&server, &["flags", "list", "--archived", "--tag", "web"]).ok();
    assert_eq!(out.lines().count(), 2, "{out}");
    let out = cli(&server, &["flags", "list", "--archived", "--prefix", "old"]).ok();
    assert!(out.contains("old-search (archived)"), "{out}");
    let out = cli(&server, &["flags", "list", "--env", "production"]).ok();
    assert_eq!(
        out,
        "KEY           ENABLED  SERVES                OFF   VERSION  TAGS\n\
         banner        on       blue 30% / green 70%  blue  1        marketing,web\n\
         new-checkout  off      on                    off   2        -\n\
         pricing       on       on                    off   4        -\n"
    );
    let json = cli(&server, &["flags", "list", "--json"]).json();
    let keys: Vec<&str> = json["flags"]
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["key"].as_str().unwrap())
        .collect();
    assert_eq!(keys, ["banner", "new-checkout", "pricing"]);
    assert_eq!(
        json["flags"][0]["version"], "1",
        "protobuf JSON: 64-bit as strings"
    );

    let out = cli(&server, &["flags", "get", "new-checkout"]).ok();
    assert!(
        out.starts_with("key:          new-checkout\ntype:         boolean\n"),
        "{out}"
    );
    assert!(out.contains("variants:     on=true off=false\n"), "{out}");
    assert!(
        out.contains(
            "ENVIRONMENT  ENABLED  SERVES  OFF  RULES  TARGETS  PREREQUISITES\n\
             production   off      on      off  1      0        -\n\
             staging      on       on      off  0      0        -\n"
        ),
        "{out}"
    );
    let out = cli(&server, &["flags", "get", "banner"]).ok();
    assert!(
        out.contains("new-checkout=on"),
        "prerequisites are shown: {out}"
    );
    let json = cli(&server, &["flags", "get", "banner", "--json"]).json();
    assert_eq!(
        json["flag"]["environments"]["production"]["salt"],
        "banner-2026"
    );
}

#[tokio::test]
async fn enable_disable_and_set_variant_change_the_flag() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let out = cli(
        &server,
        &[
            "enable",
            "new-checkout",
            "--env",
            "production",
            "--reason",
            "launch",
        ],
    )
    .ok();
    assert_eq!(out, "new-checkout: enabled in production, version 3\n");
    assert!(flag(&server, "new-checkout").await.environments["production"].enabled);
    let json = cli(
        &server,
        &["disable", "new-checkout", "--env", "production", "--json"],
    )
    .json();
    assert_eq!(json["flag"]["version"], "4");
    assert!(
        json["flag"]["environments"]["production"]
            .get("enabled")
            .is_none()
    );

    let out = cli(
        &server,
        &["set-variant", "new-checkout", "off", "--env", "staging"],
    )
    .ok();
    assert_eq!(
        out,
        "new-checkout: staging serves off by default, version 5\n"
    );
    let f = flag(&server, "new-checkout").await;
    let rule = f.environments["staging"].default_rule.clone().unwrap();
    assert_eq!(rule.kind, Some(serve::Kind::Variant("off".into())));
    let out = cli(
        &server,
        &["set-variant", "banner", "green", "--env", "production"],
    )
    .ok();
    assert!(
        out.contains("banner: production serves green by default"),
        "{out}"
    );
    let out = cli(
        &server,
        &["set-variant", "new-checkout", "on", "--env", "production"],
    )
    .ok();
    assert!(out.contains("(the flag is off there"), "{out}");

    let err = cli(
        &server,
        &["set-variant", "new-checkout", "maybe", "--env", "staging"],
    )
    .fails(3);
    assert!(
        err.contains("INVALID_ARGUMENT") && err.contains("unknown variant \"maybe\""),
        "{err}"
    );
    let err = cli(&server, &["enable", "new-checkout", "--env", "qa"]).fails(3);
    assert_eq!(err, "flagwire: NOT_FOUND: environment \"qa\" not found\n");

    let out = cli(
        &server,
        &["audit", "--flag", "new-checkout", "--limit", "2"],
    )
    .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("ID  TIME"), "{out}");
    assert!(
        lines[1].contains("admin  flag.update  flag new-checkout"),
        "{out}"
    );
    let json = cli(
        &server,
        &["audit", "--flag", "new-checkout", "--limit", "50", "--json"],
    )
    .json();
    let actions: Vec<&str> = json["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(
        actions,
        [
            "flag.update",
            "flag.update",
            "flag.disable",
            "flag.enable",
            "flag.enable",
            "flag.create"
        ]
    );
    let launch = &json["events"][3];
    assert_eq!(launch["reason"], "launch");
}

#[tokio::test]
async fn rollout_list_and_status() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, true).await;
    let out = cli(&server, &["rollout", "list"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 4, "{out}");
    assert!(lines[0].starts_with("ID "), "{out}");
    assert!(
        lines[1].contains("new-checkout  production   RUNNING    1/3 (1%)"),
        "{out}"
    );
    assert!(
        lines[2].contains("pricing       production   COMPLETED  1/1 (100%)"),
        "{out}"
    );
    assert!(
        lines[3].contains("old-search    production   DRAFT      1/2 (5%)"),
        "{out}"
    );
    let json = cli(&server, &["rollout", "list", "--flag", "pricing", "--json"]).json();
    let listed = json["rollouts"].as_array().unwrap();
    assert_eq!(listed.len(), 1);
    let id = listed[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(listed[0]["state"], "ROLLOUT_STATE_COMPLETED");

    let running = lines[1].split_whitespace().next().unwrap();
    let out = cli(&server, &["rollout", "status", running]).ok();
    assert!(
        out.contains("flag:      new-checkout in production\n"),
        "{out}"
    );
    assert!(
        out.contains("state:     RUNNING\nstep:      1/3 (1%)\n"),
        "{out}"
    );
    assert!(out.contains("decision:  PROMOTE STARTED by admin"), "{out}");
    let json = cli(&server, &["rollout", "status", &id, "--json"]).json();
    assert_eq!(json["rollout"]["flagKey"], "pricing");
    let err = cli(&server, &["rollout", "status", "ro-nope"]).fails(3);
    assert_eq!(err, "flagwire: NOT_FOUND: rollout \"ro-nope\" not found\n");
}

#[tokio::test]
async fn kill_and_undo_kill() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let err = cli(&server, &["kill", "--reason", "incident"]).fails(2);
    assert!(err.contains("name what to turn off"), "{err}");
    let usage = cli(&server, &["kill", "--flag", "banner"]);
    assert_eq!(usage.code, 2, "--reason is required: {usage:?}");
    assert!(usage.stderr.contains("--reason"), "{usage:?}");
    let usage = cli(
        &server,
        &["kill", "--flag", "banner", "--all", "--reason", "x"],
    );
    assert_eq!(usage.code, 2, "one scope at a time: {usage:?}");
    let err = cli(&server, &["kill", "--flag", "banner", "--reason", " "]).fails(2);
    assert!(err.contains("--reason must not be empty"), "{err}");

    let out = cli(
        &server,
        &[
            "kill",
            "--flag",
            "banner",
            "--env",
            "production",
            "--reason",
            "incident",
        ],
    )
    .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    let id = lines[0]
        .strip_prefix("execution ")
        .and_then(|l| l.strip_suffix(": SUCCEEDED"))
        .unwrap_or_else(|| panic!("{out}"))
        .to_owned();
    assert_eq!(lines[1], "flags:     banner");
    assert_eq!(lines[2], format!("undo with: flagwire undo-kill {id}"));
    assert!(!flag(&server, "banner").await.environments["production"].enabled);

    let out = cli(&server, &["undo-kill", &id, "--reason", "fixed"]).ok();
    assert!(
        out.starts_with(&format!("execution {id}: UNDONE\n")),
        "{out}"
    );
    assert!(flag(&server, "banner").await.environments["production"].enabled);
    let err = cli(&server, &["undo-kill", &id]).fails(3);
    assert!(
        err.contains("FAILED_PRECONDITION"),
        "an undone kill stays undone: {err}"
    );
    let err = cli(&server, &["undo-kill", "ex-nope"]).fails(3);
    assert!(err.contains("NOT_FOUND"), "{err}");

    // An environment alone turns off everything in it; --json prints the execution.
    let json = cli(
        &server,
        &[
            "kill",
            "--env",
            "production",
            "--reason",
            "outage",
            "--json",
        ],
    )
    .json();
    let execution = &json["execution"];
    assert_eq!(execution["state"], "EXECUTION_STATE_SUCCEEDED");
    assert_eq!(execution["scope"]["systemWide"], true);
    assert_eq!(execution["scope"]["environment"], "production");
    assert!(!flag(&server, "pricing").await.environments["production"].enabled);
    assert!(
        flag(&server, "new-checkout").await.environments["staging"].enabled,
        "other environments are untouched"
    );
}

#[tokio::test]
async fn errors_name_the_problem_and_set_the_exit_code() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let err = flagwire(&server.grpc, None, &["flags", "list"]).fails(2);
    assert!(err.contains("FLAGWIRE_TOKEN is not set"), "{err}");
    let err = flagwire(&server.grpc, Some("fw_wrong"), &["flags", "list"]).fails(3);
    assert_eq!(err, "flagwire: UNAUTHENTICATED: unknown or revoked token\n");
    let err = cli(&server, &["flags", "get", "nope"]).fails(3);
    assert_eq!(err, "flagwire: NOT_FOUND: flag \"nope\" not found\n");
    let err = cli(&server, &["flags", "list", "--env", "nowhere"]).fails(3);
    assert!(err.contains("NOT_FOUND: environment \"nowhere\""), "{err}");

    let mut admin = server.admin().await;
    let reader = create_token(&mut admin, "reader", Role::ReadOnly, "").await;
    flagwire(&server.grpc, Some(&reader), &["flags", "list"]).ok();
    let err = flagwire(
        &server.grpc,
        Some(&reader),
        &["enable", "banner", "--env", "production"],
    )
    .fails(3);
    assert!(err.contains("PERMISSION_DENIED"), "{err}");

    // A port nobody listens on: bind one, then free it.
    let free = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let down = free.local_addr().unwrap().to_string();
    drop(free);
    let err = flagwire(&down, Some(ADMIN), &["flags", "list"]).fails(4);
    assert!(
        err.contains(&format!("cannot reach the server at http://{down}"))
            && err.contains("refused"),
        "{err}"
    );
    let usage = cli(&server, &["flags", "get"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    let usage = cli(&server, &["audit", "--limit", "0"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    let usage = cli(&server, &["frobnicate"]);
    assert_eq!(usage.code, 2, "{usage:?}");
}

#[test]
fn without_a_subcommand_flagwire_serves() {
    let dir = tempdir();
    let mut child = Command::new(flagwire_bin())
        .args([
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(dir.path())
        .env("FLAGWIRE_ADMIN_TOKEN", ADMIN)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let listening = lines.any(|l| l.unwrap().starts_with("flagwire listening"));
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(listening);
}
