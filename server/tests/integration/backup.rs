//! Backup and restore on the real binary: `flagwire backup` from a running server (also while
//! it is being written to), `flagwire restore` into a fresh data dir, and a server started on
//! it serving the same data, history and tokens.

use crate::support::eventually::DEADLINE;
use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use tonic::Code;

/// Everything a client can read back, for comparing two servers.
#[derive(Debug, PartialEq)]
struct Everything {
    envs: Vec<Environment>,
    flags: Vec<Flag>,
    versions: Vec<Vec<Flag>>,
    segments: Vec<Vec<Segment>>,
    audit: Vec<AuditEvent>,
    tokens: Vec<ApiToken>,
    rollouts: Vec<Rollout>,
}

async fn everything(server: &Server) -> Everything {
    let mut admin = server.admin().await;
    let envs = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .environments;
    let flags = admin
        .list_flags(ListFlagsRequest {
            page_size: 1000,
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .flags;
    let mut versions = Vec::new();
    for f in &flags {
        let v = admin
            .list_flag_versions(ListFlagVersionsRequest { key: f.key.clone() })
            .await
            .unwrap()
            .into_inner()
            .versions;
        versions.push(v);
    }
    let mut segments = Vec::new();
    for e in &envs {
        let s = admin
            .list_segments(ListSegmentsRequest {
                environment: e.key.clone(),
            })
            .await
            .unwrap()
            .into_inner()
            .segments;
        segments.push(s);
    }
    let audit = admin
        .list_audit_events(ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .events;
    let tokens = admin
        .list_api_tokens(ListApiTokensRequest {
            include_revoked: true,
        })
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let rollouts = server
        .rollouts()
        .await
        .list_rollouts(ListRolloutsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rollouts;
    Everything {
        envs,
        flags,
        versions,
        segments,
        audit,
        tokens,
        rollouts,
    }
}

#[tokio::test]
async fn a_restored_server_serves_identical_data_history_and_tokens() {
    let (d1, d2) = (tempdir(), tempdir());
    let source = Server::start(d1.path(), &[]);
    seed(&source, false).await;
    let mut admin = source.admin().await;
    let reader = create_token(&mut admin, "dashboard", Role::ReadOnly, "").await;
    let sdk = create_token(&mut admin, "web", Role::Sdk, "production").await;
    create_token(&mut admin, "old", Role::ReadOnly, "").await;
    let old = admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens
        .into_iter()
        .find(|t| t.name == "old")
        .unwrap();
    admin
        .revoke_api_token(RevokeApiTokenRequest {
            id: old.id,
            reason: String::new(),
        })
        .await
        .unwrap();
    let file = d1.path().join("fw.backup");
    let file = file.to_str().unwrap();
    let out = cli(&source, &["backup", "--out", file]).ok();
    assert!(out.starts_with("backup of "), "{out}");
    let before = everything(&source).await;

    let data = d2.path().join("data");
    let data = data.to_str().unwrap();
    let out = flagwire(
        "",
        Some(ADMIN),
        &["restore", "--in", file, "--data-dir", data],
    )
    .ok();
    assert!(out.contains("flags 4, tokens 4"), "{out}");
    assert_eq!(
        std::fs::read_to_string(d2.path().join("data/admin-token")).unwrap(),
        format!("{ADMIN}\n"),
        "the admin token in FLAGWIRE_TOKEN is written for scripts/run"
    );
    // Restored into sled whatever the source ran on: under FLAGWIRE_TEST_STORE=postgres this is
    // a backup of a PostgreSQL server restored into sled.
    let restored = Server::start(std::path::Path::new(data), &["--store", "sled"]);
    assert_eq!(before, everything(&restored).await);

    // Tokens are stored as hashes: the old secrets work, the revoked one still does not.
    let mut as_reader = restored.admin_as(Some(&reader)).await;
    as_reader
        .get_flag(GetFlagRequest {
            key: "banner".into(),
        })
        .await
        .unwrap();
    let mut flags = restored.flags_as(Some(&sdk)).await;
    let mut stream = watch(&mut flags, "", 0).await;
    let Event::Snapshot(s) = next(&mut stream).await else {
        panic!("a Watch from revision 0 starts with a snapshot");
    };
    let revision = s.revision;
    assert_eq!(s.flags.len(), 4);
    // The change log came along: a client resuming just behind gets the change, not a snapshot.
    let mut stream = watch(&mut flags, "", revision - 1).await;
    match next(&mut stream).await {
        Event::Change(c) => assert_eq!(c.revision, revision),
        other => panic!("expected the change at {revision}, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backup_taken_under_writes_is_one_state_of_the_source() {
    let (d1, d2) = (tempdir(), tempdir());
    let source = Server::start(d1.path(), &[]);
    seed(&source, false).await;
    let stop = Arc::new(AtomicBool::new(false));
    let rounds = Arc::new(AtomicU32::new(0));
    let mut admin = source.admin().await;
    let writer = {
        let (stop, rounds) = (Arc::clone(&stop), Arc::clone(&rounds));
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                set_enabled(&mut admin, "new-checkout", "staging", n.is_multiple_of(2)).await;
                create_flag(&mut admin, bool_flag(&format!("load-{n}"), &["production"])).await;
                n += 1;
                rounds.store(n, Ordering::Relaxed);
            }
            n
        })
    };
    let wrote = |at_least: u32| {
        let rounds = Arc::clone(&rounds);
        eventually(DEADLINE, "the writer's rounds", async move || {
            (rounds.load(Ordering::Relaxed) >= at_least).then_some(())
        })
    };
    // The backup starts while writes are landing, and writes go on while it is taken.
    wrote(3).await;
    let before = rounds.load(Ordering::Relaxed);
    let file = d1.path().join("fw.backup").to_str().unwrap().to_owned();
    let endpoint = source.grpc.clone();
    let backup = tokio::task::spawn_blocking(move || {
        flagwire(&endpoint, Some(ADMIN), &["backup", "--out", &file]).ok();
        file
    });
    let file = backup.await.unwrap();
    wrote(before + 3).await;
    stop.store(true, Ordering::Relaxed);
    writer.await.unwrap();

    let data = d2.path().join("data");
    let data = data.to_str().unwrap();
    flagwire("", None, &["restore", "--in", &file, "--data-dir", data]).ok();
    assert!(!d2.path().join("data/admin-token").exists());
    let restored = Server::start(std::path::Path::new(data), &["--store", "sled"]);
    let restored = everything(&restored).await;
    let now = everything(&source).await;
    assert!(
        restored.flags.len() < now.flags.len(),
        "writes went on after the backup"
    );

    // The restored audit log is exactly the source's log up to some event, and every restored
    // flag is the version the source had stored under that number: one moment of the source.
    let last = restored.audit.first().map_or(0, |e| e.id);
    let prefix: Vec<AuditEvent> = now.audit.iter().filter(|e| e.id <= last).cloned().collect();
    assert_eq!(restored.audit, prefix);
    for flag in &restored.flags {
        let versions = &now.versions[now.flags.iter().position(|f| f.key == flag.key).unwrap()];
        assert!(
            versions.contains(flag),
            "{} v{} differs",
            flag.key,
            flag.version
        );
    }
    let after: u64 = restored
        .audit
        .iter()
        .filter_map(|e| e.revisions.get("production"))
        .copied()
        .max()
        .unwrap();
    let production = restored
        .envs
        .iter()
        .find(|e| e.key == "production")
        .unwrap();
    assert_eq!(
        production.revision, after,
        "the revision is the last audited change's"
    );
}

#[tokio::test]
async fn restore_refuses_non_empty_dirs_and_damaged_files_and_backup_needs_an_admin() {
    let dir = tempdir();
    let source = Server::start(&dir.path().join("src"), &[]);
    seed(&source, false).await;
    let file = dir.path().join("fw.backup").to_str().unwrap().to_owned();
    cli(&source, &["backup", "--out", &file]).ok();
    let restore = |file: &str, data: &str| {
        let data = dir.path().join(data);
        flagwire(
            "",
            None,
            &[
                "restore",
                "--in",
                file,
                "--data-dir",
                data.to_str().unwrap(),
            ],
        )
    };

    let busy = dir.path().join("busy");
    std::fs::create_dir(&busy).unwrap();
    std::fs::write(busy.join("keep"), "x").unwrap();
    let err = restore(&file, "busy").fails(1);
    assert!(err.contains("is not empty"), "{err}");
    assert!(busy.join("keep").exists());

    let bytes = std::fs::read(&file).unwrap();
    let short = write(dir.path(), "short.backup", "");
    std::fs::write(&short, &bytes[..bytes.len() - 20]).unwrap();
    let err = restore(&short, "d1").fails(1);
    assert!(
        err.contains("truncated") || err.contains("before its trailer"),
        "{err}"
    );
    let mut flipped = bytes.clone();
    let at = flipped.len() / 2;
    flipped[at] ^= 0x01;
    let flipped_path = write(dir.path(), "flipped.backup", "");
    std::fs::write(&flipped_path, &flipped).unwrap();
    let err = restore(&flipped_path, "d2").fails(1);
    let damaged = ["checksum", "corrupt", "truncated"];
    assert!(damaged.iter().any(|d| err.contains(d)), "{err}");
    let junk = write(dir.path(), "junk.backup", "hello");
    let err = restore(&junk, "d3").fails(1);
    assert!(err.contains("is not a flagwire backup"), "{err}");
    for d in ["d1", "d2", "d3"] {
        assert!(
            !dir.path().join(d).exists(),
            "nothing written for a bad backup"
        );
    }

    let mut admin = source.admin().await;
    let reader = create_token(&mut admin, "reader", Role::ReadOnly, "").await;
    let out = dir.path().join("denied.backup");
    let out = out.to_str().unwrap();
    let err = flagwire(&source.grpc, Some(&reader), &["backup", "--out", out]).fails(3);
    assert!(err.contains("PERMISSION_DENIED"), "{err}");
    assert!(!std::path::Path::new(out).exists());
    let err = flagwire(&source.grpc, None, &["backup", "--out", out]).fails(2);
    assert!(err.contains("FLAGWIRE_TOKEN is not set"), "{err}");
    let mut raw = source.admin().await;
    let denied = raw.backup(BackupRequest { batch_size: 1 }).await;
    assert!(denied.is_ok(), "admins may back up over plain gRPC too");
    let denied = source
        .admin_as(Some(&reader))
        .await
        .backup(BackupRequest::default())
        .await;
    code(denied, Code::PermissionDenied);
}

/// A team moving from one machine to replicas: a sled server's backup restored into an empty
/// PostgreSQL database serves the same data, history and tokens there; the database then refuses
/// a second restore. (The other direction, PostgreSQL into sled, is every test above under
/// `FLAGWIRE_TEST_STORE=postgres`.)
#[tokio::test]
async fn a_sled_backup_restores_into_postgres() {
    let (d1, d2) = (tempdir(), tempdir());
    let source = Server::start(d1.path(), &["--store", "sled"]);
    seed(&source, false).await;
    let file = d1.path().join("fw.backup");
    let file = file.to_str().unwrap();
    cli(&source, &["backup", "--out", file]).ok();
    let before = everything(&source).await;
    let url = postgres::shared().create_db();
    // The cluster trusts local connections, so the password is never asked for; it must still
    // never be printed.
    let with_password = url.replacen("postgres@", "postgres:hunter2@", 1);
    let shown = url.replacen("postgres@", "postgres:***@", 1);
    let out = flagwire(
        "",
        None,
        &["restore", "--in", file, "--store", &with_password],
    )
    .ok();
    assert!(out.contains("flags 4") && out.contains(&shown), "{out}");
    let restored = Server::start(d2.path(), &["--store", &url]);
    assert_eq!(before, everything(&restored).await);
    drop(restored);
    let again = flagwire(
        "",
        None,
        &["restore", "--in", file, "--store", &with_password],
    )
    .fails(1);
    assert!(again.contains("already holds a catalog"), "{again}");
    assert!(
        again.contains(&shown) && !again.contains("hunter2") && !out.contains("hunter2"),
        "{out}\n{again}"
    );
}
