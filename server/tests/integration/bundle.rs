//! Flags as code on the real binary: `flagwire export` / `flagwire import` (round trip, dry
//! run, all or nothing, prune) and `serve --bootstrap`.

use crate::support::*;
use flagwire_proto::v1::*;
use flagwire_server::bundle::file::{self, Format};

async fn all_flags(server: &Server) -> Vec<Flag> {
    let mut admin = server.admin().await;
    admin
        .list_flags(ListFlagsRequest {
            page_size: 1000,
            include_archived: true,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .flags
}

async fn revisions(server: &Server) -> Vec<(String, u64)> {
    let mut admin = server.admin().await;
    let envs = admin
        .list_environments(ListEnvironmentsRequest {})
        .await
        .unwrap()
        .into_inner()
        .environments;
    envs.into_iter().map(|e| (e.key, e.revision)).collect()
}

async fn audit_len(server: &Server) -> usize {
    let mut admin = server.admin().await;
    let page = admin
        .list_audit_events(ListAuditEventsRequest {
            page_size: 1000,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner();
    page.events.len()
}

#[tokio::test]
async fn export_import_export_is_lossless() {
    let (d1, d2) = (tempdir(), tempdir());
    let source = Server::start(d1.path(), &[]);
    seed(&source, true).await;
    let a = write(d1.path(), "a.yaml", "");
    cli(&source, &["export", "--out", &a]).ok();
    let exported = std::fs::read_to_string(&a).unwrap();
    for wanted in [
        "key: new-checkout",
        "archived: true",
        "salt: banner-2026",
        "included:",
        "treatmentVariant:",
        "rolloutId:",
        "rollbackPlanId:",
        "name: pricing off",
    ] {
        assert!(exported.contains(wanted), "{wanted:?} missing:\n{exported}");
    }
    let bundle = file::parse(&exported, Format::Yaml).unwrap();
    assert_eq!(
        (bundle.environments.len(), bundle.flags.len()),
        (2, 4),
        "{exported}"
    );
    assert_eq!((bundle.segments.len(), bundle.rollouts.len()), (1, 3));
    assert_eq!(bundle.rollback_plans.len(), 1);
    assert!(
        !exported.contains("version: '") && !exported.contains("Time:"),
        "server-managed fields are not exported:\n{exported}"
    );

    let target = Server::start(d2.path(), &[]);
    let out = cli(&target, &["import", &a]).ok();
    assert!(out.contains("applied: 11 created"), "{out}");
    let b = write(d2.path(), "b.yaml", "");
    cli(&target, &["export", "--out", &b]).ok();
    assert_eq!(exported, std::fs::read_to_string(&b).unwrap());
    let json = |s: &Server| cli(s, &["export", "--format", "json"]).ok();
    assert_eq!(json(&source), json(&target), "JSON exports match too");

    // Importing the same definitions again changes nothing, on either server.
    let before = (all_flags(&target).await, revisions(&target).await);
    let out = cli(&target, &["import", &a]).ok();
    assert_eq!(
        out,
        "nothing to change: 11 objects already as the file says\n"
    );
    assert_eq!(before, (all_flags(&target).await, revisions(&target).await));
    let out = cli(&source, &["import", &a]).ok();
    assert!(out.starts_with("nothing to change"), "{out}");

    // The imported rollouts keep their ids and wait as drafts.
    let mut rollouts = target.rollouts().await;
    let listed = rollouts
        .list_rollouts(ListRolloutsRequest::default())
        .await
        .unwrap()
        .into_inner()
        .rollouts;
    let mut ids: Vec<&str> = listed.iter().map(|r| r.id.as_str()).collect();
    ids.sort();
    let mut want: Vec<&str> = bundle.rollouts.iter().map(|r| r.id.as_str()).collect();
    want.sort();
    assert_eq!(ids, want);
    assert!(listed.iter().all(|r| r.state == RolloutState::Draft as i32));
}

#[tokio::test]
async fn dry_run_prints_the_diff_and_changes_nothing() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let text = cli(&server, &["export"]).ok();
    let mut bundle = file::parse(&text, Format::Yaml).unwrap();
    let checkout = bundle
        .flags
        .iter_mut()
        .find(|f| f.key == "new-checkout")
        .unwrap();
    checkout.environments.get_mut("production").unwrap().enabled = true;
    checkout.description = "Checkout, redesigned".into();
    bundle.flags.push(bool_flag("dark-mode", &["qa"]));
    bundle.environments.push(Environment {
        key: "qa".into(),
        name: "QA".into(),
        ..Default::default()
    });
    let path = write(
        dir.path(),
        "changed.yaml",
        &file::render(&bundle, Format::Yaml),
    );

    let flags = all_flags(&server).await;
    let revs = revisions(&server).await;
    let events = audit_len(&server).await;
    let out = cli(&server, &["import", "--dry-run", &path]).ok();
    assert_eq!(
        out,
        "+ environment qa\n\
         ~ flag new-checkout\n\
         \x20   description: \"The redesigned checkout flow\" → \"Checkout, redesigned\"\n\
         \x20   environments.production.enabled: (unset) → true\n\
         + flag dark-mode\n\
         dry run: 2 to create, 1 to update, 0 to delete, 9 unchanged; nothing was applied\n"
    );
    let json = cli(&server, &["import", "--dry-run", "--json", &path]).json();
    assert_eq!(json["changes"].as_array().unwrap().len(), 3);
    assert_eq!(json["changes"][1]["action"], "BUNDLE_CHANGE_ACTION_UPDATE");
    assert!(json.get("applied").is_none(), "{json}");
    assert_eq!(flags, all_flags(&server).await, "a dry run changes no flag");
    assert_eq!(revs, revisions(&server).await);
    assert_eq!(events, audit_len(&server).await, "nor the audit log");

    let out = cli(&server, &["import", &path, "--reason", "quarterly cleanup"]).ok();
    assert!(
        out.contains(
            "applied: 2 created, 1 updated, 0 deleted, 9 unchanged; revisions production="
        ),
        "{out}"
    );
    let mut admin = server.admin().await;
    let flag = admin
        .get_flag(GetFlagRequest {
            key: "new-checkout".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap();
    assert!(flag.environments["production"].enabled);
    let audit = cli(&server, &["audit", "--limit", "3", "--json"]).json();
    let events = audit["events"].as_array().unwrap();
    assert!(
        events
            .iter()
            .all(|e| e["reason"] == "quarterly cleanup" && e["actor"] == "admin"),
        "{audit}"
    );
}

#[tokio::test]
async fn an_invalid_file_changes_nothing() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let mut bundle = file::parse(&cli(&server, &["export"]).ok(), Format::Yaml).unwrap();
    bundle.flags.push(bool_flag("fine", &["production"]));
    let mut broken = bool_flag("broken", &["production"]);
    broken
        .environments
        .get_mut("production")
        .unwrap()
        .off_variant = "nope".into();
    bundle.flags.push(broken);
    let path = write(dir.path(), "bad.yaml", &file::render(&bundle, Format::Yaml));
    let revs = revisions(&server).await;
    let events = audit_len(&server).await;

    let err = cli(&server, &["import", &path]).fails(3);
    assert!(
        err.contains(
            "INVALID_ARGUMENT: invalid argument: flags[5].environments.production.offVariant"
        ),
        "{err}"
    );
    assert!(err.contains("flag \"broken\""), "{err}");
    let mut admin = server.admin().await;
    let fine = admin.get_flag(GetFlagRequest { key: "fine".into() }).await;
    code(fine, tonic::Code::NotFound);
    assert_eq!(revs, revisions(&server).await, "all or nothing");
    assert_eq!(events, audit_len(&server).await);

    // Unknown fields, a wrong format version and broken references are refused the same way.
    let typo = write(
        dir.path(),
        "typo.yaml",
        "version: 1\nflags:\n- key: x\n  tpye: VALUE_TYPE_BOOLEAN\n",
    );
    let err = cli(&server, &["import", &typo]).fails(1);
    assert!(
        err.contains("not a valid bundle") && err.contains("tpye"),
        "{err}"
    );
    let v2 = write(dir.path(), "v2.json", "{\"version\": 2}");
    let err = cli(&server, &["import", &v2]).fails(3);
    assert!(err.contains("version: must be 1"), "{err}");
    let dangling = write(
        dir.path(),
        "dangling.yaml",
        "version: 1\nrollouts:\n- id: r1\n  flagKey: ghost\n  environment: production\n",
    );
    let err = cli(&server, &["import", &dangling]).fails(3);
    assert!(
        err.contains("rollouts[0].flagKey: unknown flag \"ghost\""),
        "{err}"
    );
    let metric = write(
        dir.path(),
        "metric.yaml",
        "version: 1\nmetrics:\n- environment: production\n  name: ok\n  kind: METRIC_KIND_RATE\n  \
         direction: METRIC_DIRECTION_HIGHER_IS_BETTER\n- environment: production\n  name: no\n  \
         kind: METRIC_KIND_RATE\n",
    );
    let err = cli(&server, &["import", &metric]).fails(3);
    assert!(
        err.contains("invalid argument: metrics[1].direction: required"),
        "{err}"
    );
    let missing = cli(&server, &["import", "/nonexistent/file.yaml"]).fails(1);
    assert!(missing.contains("/nonexistent/file.yaml"), "{missing}");
    assert_eq!(revs, revisions(&server).await);
    assert_eq!(
        events,
        audit_len(&server).await,
        "no metric was defined either"
    );
}

#[tokio::test]
async fn prune_deletes_what_the_file_does_not_name_unless_still_used() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, false).await;
    let mut bundle = file::parse(&cli(&server, &["export"]).ok(), Format::Yaml).unwrap();
    // Dropping the segment alone would leave new-checkout's rule dangling.
    let segments = std::mem::take(&mut bundle.segments);
    let path = write(dir.path(), "p.yaml", &file::render(&bundle, Format::Yaml));
    let err = cli(&server, &["import", "--prune", &path]).fails(3);
    assert!(
        err.contains("FAILED_PRECONDITION") && err.contains("unknown segment \"beta\""),
        "{err}"
    );
    // Without --prune, absent objects are left alone.
    let out = cli(&server, &["import", &path]).ok();
    assert!(out.starts_with("nothing to change"), "{out}");

    bundle.segments = segments;
    // A rollback plan still turns pricing off.
    let mut no_pricing = bundle.clone();
    no_pricing.flags.retain(|f| f.key != "pricing");
    let path = write(
        dir.path(),
        "p2.yaml",
        &file::render(&no_pricing, Format::Yaml),
    );
    let err = cli(&server, &["import", "--prune", &path]).fails(3);
    assert!(
        err.contains("prune would leave rollback plan") && err.contains("flag \"pricing\""),
        "{err}"
    );

    bundle.flags.retain(|f| f.key != "old-search");
    let path = write(dir.path(), "p3.yaml", &file::render(&bundle, Format::Yaml));
    let out = cli(&server, &["import", "--prune", "--dry-run", &path]).ok();
    assert_eq!(
        out,
        "- flag old-search\ndry run: 0 to create, 0 to update, 1 to delete, 9 unchanged; nothing was applied\n"
    );
    let out = cli(&server, &["import", "--prune", &path]).ok();
    assert!(
        out.starts_with("- flag old-search\napplied: 0 created, 0 updated, 1 deleted"),
        "{out}"
    );
    let mut admin = server.admin().await;
    let gone = admin
        .get_flag(GetFlagRequest {
            key: "old-search".into(),
        })
        .await;
    code(gone, tonic::Code::NotFound);
}

// Two workers: `terminate` blocks this thread until the server exits, and the dropped client's
// connection can only close (letting the server stop before its 10 s grace) on another.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bootstrap_applies_at_first_start_only() {
    let dir = tempdir();
    let data = dir.path().join("data");
    let mut bundle = Bundle {
        version: 1,
        environments: vec![Environment {
            key: "production".into(),
            ..Default::default()
        }],
        flags: vec![bool_flag("launch", &["production"])],
        ..Default::default()
    };
    let path = write(
        dir.path(),
        "seed.json",
        &file::render(&bundle, Format::Json),
    );
    let mut server = Server::start(&data, &["--bootstrap", &path]);
    let flags = all_flags(&server).await;
    assert_eq!(flags.len(), 1);
    assert_eq!(flags[0].key, "launch");
    let audit = cli(&server, &["audit", "--json"]).json();
    assert!(
        audit["events"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["actor"] == "bootstrap" && e["action"] == "flag.create"),
        "{audit}"
    );
    assert!(server.terminate());

    // Once the store holds something the file is not applied again, even when it changed.
    bundle.flags.push(bool_flag("second", &["production"]));
    std::fs::write(&path, file::render(&bundle, Format::Json)).unwrap();
    let server = server.restart();
    let keys: Vec<String> = all_flags(&server)
        .await
        .into_iter()
        .map(|f| f.key)
        .collect();
    assert_eq!(keys, ["launch"]);
}

#[test]
fn an_invalid_bootstrap_file_stops_the_first_start() {
    let dir = tempdir();
    let path = write(
        dir.path(),
        "seed.yaml",
        "version: 1\nflags:\n- key: orphan\n  type: VALUE_TYPE_BOOLEAN\n  variants:\n  - key: on\n    value: {boolValue: true}\n  environments:\n    nowhere: {offVariant: on, defaultRule: {variant: on}}\n",
    );
    let stderr = failed_start(&dir.path().join("data"), &["--bootstrap", &path]);
    assert!(
        stderr.contains("flags[0].environments.nowhere: unknown environment"),
        "{stderr}"
    );
}

#[tokio::test]
async fn a_release_of_several_flags_travels_in_a_bundle() {
    let (d1, d2) = (tempdir(), tempdir());
    let (a, b) = (Server::start(d1.path(), &[]), Server::start(d2.path(), &[]));
    let mut admin = a.admin().await;
    create_env(&mut admin, "prod").await;
    let keys = ["shadow", "fast-path"];
    crate::support::release::flags(&mut admin, "prod", &keys).await;
    let minute = std::time::Duration::from_secs(60);
    let stages = vec![
        crate::support::release::stage(crate::support::release::share(1_000), &["shadow"], minute),
        crate::support::release::stage(crate::support::release::share(5_000), &keys, minute),
    ];
    let mut def = crate::support::release::release("prod", &keys, stages, minute);
    // Gated on a metric the bundle defines too: the definition imports before the release.
    let args = [
        "metrics",
        "define",
        "mem0.write",
        "--env",
        "prod",
        "--kind",
        "rate",
        "--direction",
        "higher",
        "--unit",
        "%",
    ];
    cli(&a, &args).ok();
    def.gates = vec![Gate {
        name: "writes".into(),
        kind: Some(gate::Kind::Absolute(AbsoluteGate {
            metric: "mem0.write".into(),
            comparison: Comparison::GreaterThan as i32,
            threshold: 0.99,
            rollback_threshold: Some(0.97),
            ..Default::default()
        })),
    }];
    let created = crate::support::release::create(&mut a.releases().await, def).await;

    let exported = cli(&a, &["export"]).ok();
    assert!(exported.contains("releases:"), "{exported}");
    assert!(
        exported.contains("metrics:\n- environment: prod\n  name: mem0.write"),
        "{exported}"
    );
    assert!(exported.contains("rollbackThreshold: 0.97"), "{exported}");
    let path = write(d1.path(), "bundle.yaml", &exported);
    cli(&b, &["import", &path]).ok();
    assert_eq!(
        cli(&b, &["export"]).ok(),
        exported,
        "export, import, export is lossless"
    );
    let copy = crate::support::release::get(&mut b.releases().await, &created.id, 0).await;
    assert_eq!(copy.stages, created.stages);
    assert_eq!(copy.gates, created.gates);
    assert_eq!(
        ReleaseState::try_from(copy.state),
        Ok(ReleaseState::Draft),
        "imported as a draft"
    );
    // Importing it again changes nothing.
    let again = cli(&b, &["import", &path]).ok();
    assert!(again.starts_with("nothing to change"), "{again}");
}
