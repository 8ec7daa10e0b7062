//! `env ...` and `flags create|update|archive|unarchive|delete|history|revert` on the real
//! binary: what they print in each format and what they change.

use super::fixtures::*;
use crate::support::*;
use flagwire_proto::v1::*;

#[tokio::test]
async fn env_create_list_get_delete() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let out = cli(
        &server,
        &[
            "env",
            "create",
            "production",
            "--name",
            "Production",
            "--description",
            "Live traffic",
        ],
    )
    .ok();
    assert_eq!(out, "created environment production (Production)\n");
    cli(&server, &["env", "create", "staging"]).ok();
    let out = cli(&server, &["env", "list"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(
        lines[0].starts_with("KEY         NAME        REVISION  CREATED"),
        "{out}"
    );
    assert!(
        lines[1].starts_with("production  Production  0         20"),
        "{out}"
    );
    assert!(lines[1].ends_with("Live traffic"), "{out}");
    assert!(lines[2].starts_with("staging     staging     0"), "{out}");

    let y = yaml(cli(&server, &["env", "get", "production", "-o", "yaml"]));
    assert_eq!(y["environment"]["name"], "Production");
    let j = cli(&server, &["env", "list", "--output", "json"]).json();
    assert_eq!(j["environments"][1]["key"], "staging");
    let alias = cli(&server, &["env", "list", "--json"]).json();
    assert_eq!(alias, j, "--json is --output json");

    let out = cli(&server, &["env", "delete", "staging", "--reason", "unused"]).ok();
    assert_eq!(out, "deleted environment staging\n");
    let err = cli(&server, &["env", "get", "staging"]).fails(3);
    assert_eq!(
        err,
        "flagwire: NOT_FOUND: environment \"staging\" not found\n"
    );
}

#[tokio::test]
async fn flags_create_from_options_and_from_a_file() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;

    let out = cli(
        &server,
        &[
            "flags", "create", "new-ui", "--type", "bool", "--tag", "web",
        ],
    )
    .ok();
    assert_eq!(
        out,
        "created flag new-ui (boolean), version 1; environments: production,staging\n"
    );
    let f = flag(&server, "new-ui").await;
    let keys: Vec<&str> = f.variants.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(keys, ["off", "on"], "booleans get off then on");
    for (env, c) in &f.environments {
        assert!(!c.enabled, "created off in {env}");
        assert_eq!(c.off_variant, "off");
        let serves = c.default_rule.clone().unwrap().kind;
        assert_eq!(serves, Some(serve::Kind::Variant("on".into())), "{env}");
    }
    assert_eq!(f.tags, ["web"]);

    let j = cli(
        &server,
        &[
            "flags",
            "create",
            "limits",
            "--type",
            "int",
            "--variant",
            "low=10",
            "--variant",
            "high=100",
            "--serve",
            "high",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(j["flag"]["type"], "VALUE_TYPE_INTEGER");
    assert_eq!(j["flag"]["variants"][1]["value"]["intValue"], "100");
    let prod = &j["flag"]["environments"]["production"];
    assert_eq!(prod["offVariant"], "low");
    assert_eq!(prod["defaultRule"]["variant"], "high");

    cli(
        &server,
        &[
            "flags",
            "create",
            "theme",
            "--type",
            "json",
            "--variant",
            r##"dark={"bg": "#000", "contrast": 2}"##,
        ],
    )
    .ok();
    let f = flag(&server, "theme").await;
    assert_eq!(f.r#type, ValueType::Object as i32);

    // -f: one flag in the export format, created as written.
    let exported = cli(&server, &["export"]).ok();
    let bundle: serde_json::Value = serde_norway::from_str(&exported).unwrap();
    let mut limits = bundle["flags"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["key"] == "limits")
        .unwrap()
        .clone();
    limits["key"] = "limits-copy".into();
    limits["description"] = "From a file".into();
    let file = write(
        dir.path(),
        "flag.yaml",
        &serde_norway::to_string(&limits).unwrap(),
    );
    let out = cli(&server, &["flags", "create", "-f", &file]).ok();
    assert!(
        out.starts_with("created flag limits-copy (integer)"),
        "{out}"
    );
    let copy = flag(&server, "limits-copy").await;
    let original = flag(&server, "limits").await;
    assert_eq!(copy.environments, original.environments);
    assert_eq!(copy.description, "From a file");
    let json_file = write(dir.path(), "flag.json", &limits.to_string());
    let err = cli(&server, &["flags", "create", "other-key", "-f", &json_file]).fails(2);
    assert!(
        err.contains("differs from the file's \"limits-copy\""),
        "{err}"
    );
}

#[tokio::test]
async fn flags_update_history_revert_archive_delete() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    cli(
        &server,
        &[
            "flags",
            "create",
            "banner",
            "--type",
            "string",
            "--variant",
            "blue=Blue",
            "--variant",
            "green=Green",
        ],
    )
    .ok();
    let out = cli(
        &server,
        &[
            "flags",
            "update",
            "banner",
            "--env",
            "production",
            "--split",
            "blue=30,green=70",
            "--description",
            "Homepage banner",
            "--add-tag",
            "web",
            "--reason",
            "campaign",
        ],
    )
    .ok();
    assert_eq!(
        out,
        "updated flag banner, version 1 → 2\n    \
         environments.production.defaultRule.variant: \"blue\" → (unset)\n    \
         environments.production.defaultRule.split: (unset) → \
         {\"entries\":[{\"variant\":\"blue\",\"weight\":30},{\"variant\":\"green\",\"weight\":70}]}\n    \
         description: (unset) → \"Homepage banner\"\n    \
         tags: (unset) → [\"web\"]\n"
    );
    let y = yaml(cli(
        &server,
        &[
            "flags",
            "update",
            "banner",
            "--variant",
            "red=Red",
            "--remove-tag",
            "web",
            "-o",
            "yaml",
        ],
    ));
    assert_eq!(y["flag"]["version"], "3");
    assert_eq!(y["flag"]["variants"][2]["value"]["stringValue"], "Red");
    assert!(y["flag"].get("tags").is_none(), "{y}");

    // A script that read version 1 does not overwrite the changes made since.
    let err = cli(
        &server,
        &[
            "flags",
            "update",
            "banner",
            "--description",
            "x",
            "--expected-version",
            "1",
        ],
    )
    .fails(3);
    assert!(err.contains("FAILED_PRECONDITION"), "{err}");
    let err = cli(&server, &["flags", "update", "banner"]).fails(2);
    assert!(err.contains("nothing to change"), "{err}");

    let out = cli(&server, &["flags", "history", "banner"]).ok();
    let lines: Vec<&str> = out.lines().collect();
    assert!(lines[0].starts_with("VERSION  UPDATED"), "{out}");
    assert!(lines[1].starts_with("3        20"), "{out}");
    assert!(lines[1].ends_with("  tags: [\"web\"] → (unset)"), "{out}");
    assert!(
        lines[2].ends_with(
            "  variants[2]: (added) → {\"key\":\"red\",\"value\":{\"stringValue\":\"Red\"}}"
        ),
        "{out}"
    );
    assert!(lines.last().unwrap().ends_with("  created"), "{out}");
    let j = cli(
        &server,
        &["flags", "history", "banner", "--limit", "2", "-o", "json"],
    )
    .json();
    assert_eq!(j["versions"].as_array().unwrap().len(), 2);

    let out = cli(
        &server,
        &["flags", "revert", "banner", "1", "--reason", "undo"],
    )
    .ok();
    assert_eq!(
        out,
        "reverted flag banner to the content of version 1: now version 4\n"
    );
    let f = flag(&server, "banner").await;
    assert_eq!((f.variants.len(), f.description.as_str()), (2, ""));

    let out = cli(&server, &["flags", "archive", "banner"]).ok();
    assert_eq!(out, "archived flag banner, version 5\n");
    assert!(cli(&server, &["flags", "list"]).ok().lines().count() == 1);
    let out = cli(&server, &["flags", "unarchive", "banner"]).ok();
    assert_eq!(out, "unarchived flag banner, version 6\n");
    let out = cli(&server, &["flags", "delete", "banner", "--reason", "done"]).ok();
    assert_eq!(out, "deleted flag banner\n");
    assert!(!exists(&server, "banner").await);
}
