//! `segments ...` and `tokens ...` on the real binary.

use super::fixtures::*;
use crate::support::*;

#[tokio::test]
async fn segments_create_update_list_get_delete() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let out = cli(
        &server,
        &[
            "segments",
            "create",
            "beta",
            "--env",
            "production",
            "--include",
            "alice,bob",
            "--description",
            "Early adopters",
        ],
    )
    .ok();
    assert_eq!(
        out,
        "created segment beta in production: 2 included, 0 excluded\n"
    );
    let out = cli(
        &server,
        &[
            "segments",
            "update",
            "beta",
            "--env",
            "production",
            "--exclude",
            "bob",
            "--include",
            "carol",
        ],
    )
    .ok();
    assert_eq!(out, "updated segment beta in production, version 1 → 2\n");
    let out = cli(&server, &["segments", "list", "--env", "production"]).ok();
    assert_eq!(
        out,
        "KEY   ENVIRONMENT  INCLUDED     EXCLUDED  RULES  VERSION  DESCRIPTION\n\
         beta  production   alice,carol  bob       0      2        Early adopters\n"
    );

    // Rules come from a file in the export format.
    let file = write(
        dir.path(),
        "segment.yaml",
        "key: beta\nenvironment: production\ndescription: Staff\nrules:\n\
         - clauses:\n  - attribute: email\n    operator: OPERATOR_ENDS_WITH\n    values: ['@example.com']\n",
    );
    cli(&server, &["segments", "update", "-f", &file]).ok();
    let j = cli(
        &server,
        &[
            "segments",
            "get",
            "beta",
            "--env",
            "production",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(
        j["segment"]["rules"][0]["clauses"][0]["values"][0],
        "@example.com"
    );
    assert!(
        j["segment"].get("included").is_none(),
        "the file replaces it whole: {j}"
    );
    let err = cli(
        &server,
        &[
            "segments", "update", "beta", "--env", "staging", "-f", &file,
        ],
    )
    .fails(2);
    assert!(
        err.contains("differs from the file's \"production\""),
        "{err}"
    );

    let out = cli(
        &server,
        &["segments", "delete", "beta", "--env", "production"],
    )
    .ok();
    assert_eq!(out, "deleted segment beta in production\n");
    let err = cli(&server, &["segments", "get", "beta", "--env", "production"]).fails(3);
    assert!(err.contains("NOT_FOUND"), "{err}");
}

#[tokio::test]
async fn tokens_create_print_the_secret_once_and_revoke_stops_them() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    let out = cli(
        &server,
        &["tokens", "create", "ci-reader", "--role", "read-only"],
    )
    .ok();
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 3, "{out}");
    assert!(lines[0].starts_with("created token ci-reader ("), "{out}");
    assert!(lines[0].ends_with("), role read-only"), "{out}");
    let secret = lines[2];
    assert!(secret.starts_with("fw_"), "{out}");
    // The secret works, with its role's rights.
    flagwire(&server.grpc, Some(secret), &["env", "list"]).ok();
    let err = flagwire(&server.grpc, Some(secret), &["env", "create", "x"]).fails(3);
    assert!(err.contains("PERMISSION_DENIED"), "{err}");

    let j = cli(
        &server,
        &[
            "tokens",
            "create",
            "web",
            "--role",
            "sdk",
            "--env",
            "production",
            "-o",
            "json",
        ],
    )
    .json();
    assert_eq!(j["token"]["role"], "ROLE_SDK");
    assert!(text(&j, "/secret").starts_with("fw_"));

    let out = cli(&server, &["tokens", "list"]).ok();
    assert!(!out.contains(secret), "list never shows secrets: {out}");
    let row = out.lines().find(|l| l.contains(" ci-reader ")).unwrap();
    let id = row.split_whitespace().next().unwrap().to_owned();
    assert!(row.contains("read-only  -"), "{out}");
    assert!(
        out.lines()
            .any(|l| l.contains(" web ") && l.contains("sdk        production")),
        "{out}"
    );

    let out = cli(&server, &["tokens", "revoke", &id, "--reason", "rotated"]).ok();
    assert_eq!(out, format!("revoked token ci-reader ({id})\n"));
    let err = flagwire(&server.grpc, Some(secret), &["env", "list"]).fails(3);
    assert!(err.contains("UNAUTHENTICATED"), "{err}");
    let out = cli(&server, &["tokens", "list"]).ok();
    assert!(!out.contains(&id), "revoked tokens are hidden: {out}");
    let out = cli(&server, &["tokens", "list", "--revoked"]).ok();
    assert!(out.contains(&id), "{out}");
}
