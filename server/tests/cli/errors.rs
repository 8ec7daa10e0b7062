//! Every command's failures, one described case per row: bad input, unknown objects, the wrong
//! role (read-only and sdk tokens) and a server that is down. Each gets its message on stderr
//! and the exit code of the scheme (1 local file, 2 usage, 3 refused by the server, 4
//! unreachable); the rows that a read-only token may run succeed.

use crate::common::*;
use crate::fixtures::*;
use crate::operator::*;

/// Who runs a case.
#[derive(Clone, Copy, Debug)]
enum As {
    Admin,
    Reader,
    Sdk,
    NoToken,
    /// The admin token against an address nothing listens on.
    Down,
}

struct Case {
    what: &'static str,
    who: As,
    args: Vec<String>,
    code: i32,
    stderr: &'static str,
}

fn case(what: &'static str, who: As, args: &[&str], code: i32, stderr: &'static str) -> Case {
    Case {
        what,
        who,
        args: args.iter().map(|s| s.to_string()).collect(),
        code,
        stderr,
    }
}

const OK_ROLLOUT: &str = "flagKey: new-checkout\nenvironment: staging\ntreatmentVariant: 'on'\n\
                          baselineVariant: 'off'\nsteps: [{basisPoints: 100}, {basisPoints: 10000}]\n";

#[tokio::test]
async fn failures_name_the_problem_and_set_the_exit_code() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, true).await;
    let tokens = tokens(&server).await;
    let d = dir.path();
    let f = |name: &str, text: &str| write(d, name, text);
    let ok_rollout = f("ok-rollout.yaml", OK_ROLLOUT);
    let missing_flag = f(
        "missing-flag.yaml",
        &OK_ROLLOUT.replace("new-checkout", "nope"),
    );
    let bad_window = f(
        "bad-window.yaml",
        &format!("{OK_ROLLOUT}policy: {{window: 0.5s}}\n"),
    );
    let typo = f("typo.yaml", "key: x\nkee: y\n");
    let plan = f(
        "plan.yaml",
        "name: p2\nsteps: [{setEnabled: {flagKey: banner, environment: production}}]\n",
    );
    let empty_plan = f("empty-plan.yaml", "name: p3\n");
    let ok_env = f("ok.env", "FEATURE_X=true\n");
    let bad_env = f("bad.env", "FEATURE_X\n");
    let j = cli(&server, &["rollout", "list", "-o", "json"]).json();
    let ro = text(&j, "/rollouts/0/id");
    let j = cli(&server, &["plans", "list", "-o", "json"]).json();
    let plan_id = text(&j, "/plans/0/id");
    let (ro, plan_id) = (ro.as_str(), plan_id.as_str());
    let ramp = [
        "ramp",
        "create",
        "banner",
        "--env",
        "production",
        "--variant",
        "green",
        "--other",
        "blue",
    ];
    let ramp_with = |extra: &[&'static str]| -> Vec<String> {
        ramp.iter().chain(extra).map(|s| s.to_string()).collect()
    };

    use As::*;
    let mut cases = vec![
        // Bad input.
        case(
            "invalid key",
            Admin,
            &["env", "create", "Bad Key"],
            3,
            "INVALID_ARGUMENT: invalid argument: environment.key",
        ),
        case("no type", Admin, &["flags", "create", "x"], 2, "--type"),
        case(
            "int variant",
            Admin,
            &[
                "flags",
                "create",
                "x",
                "--type",
                "int",
                "--variant",
                "a=1.5",
            ],
            2,
            "\"1.5\" is not a 64-bit integer",
        ),
        case(
            "bool variant",
            Admin,
            &[
                "flags",
                "create",
                "x",
                "--type",
                "bool",
                "--variant",
                "on=yes",
            ],
            2,
            "\"yes\" is not a boolean",
        ),
        case(
            "json variant",
            Admin,
            &[
                "flags",
                "create",
                "x",
                "--type",
                "json",
                "--variant",
                "a=[1]",
            ],
            2,
            "not a JSON object",
        ),
        case(
            "variant without =",
            Admin,
            &["flags", "create", "x", "--type", "string", "--variant", "a"],
            2,
            "is not NAME=VALUE",
        ),
        case(
            "missing file",
            Admin,
            &["flags", "create", "-f", "/nonexistent.yaml"],
            1,
            "read /nonexistent.yaml",
        ),
        case(
            "unknown field",
            Admin,
            &["flags", "create", "-f", &typo],
            1,
            "not a valid flag",
        ),
        case(
            "--serve needs --env",
            Admin,
            &["flags", "update", "banner", "--serve", "blue"],
            2,
            "--env",
        ),
        case(
            "unknown variant",
            Admin,
            &[
                "flags",
                "update",
                "banner",
                "--env",
                "production",
                "--serve",
                "purple",
            ],
            3,
            "INVALID_ARGUMENT",
        ),
        case(
            "bad weight",
            Admin,
            &[
                "flags",
                "update",
                "banner",
                "--env",
                "production",
                "--split",
                "blue=x",
            ],
            2,
            "not a whole number",
        ),
        case(
            "stale version",
            Admin,
            &[
                "flags",
                "update",
                "banner",
                "--description",
                "x",
                "--expected-version",
                "99",
            ],
            3,
            "FAILED_PRECONDITION",
        ),
        case(
            "bad limit",
            Admin,
            &["flags", "history", "banner", "--limit", "many"],
            2,
            "invalid value 'many'",
        ),
        case(
            "segments need --env",
            Admin,
            &["segments", "list"],
            2,
            "--env",
        ),
        case(
            "unknown role",
            Admin,
            &["tokens", "create", "t", "--role", "root"],
            2,
            "invalid value 'root'",
        ),
        case(
            "sdk without env",
            Admin,
            &["tokens", "create", "t", "--role", "sdk"],
            3,
            "INVALID_ARGUMENT",
        ),
        case(
            "rollout window",
            Admin,
            &["rollout", "create", "-f", &bad_window],
            3,
            "rollout.policy.window",
        ),
        case(
            "rollout file typo",
            Admin,
            &["rollout", "create", "-f", &typo],
            1,
            "not a valid rollout",
        ),
        case(
            "rollout id missing",
            Admin,
            &["rollout", "status"],
            2,
            "<ID>",
        ),
        case(
            "plan without steps",
            Admin,
            &["plans", "create", "-f", &empty_plan],
            3,
            "plan.steps",
        ),
        case(
            "bad time",
            Admin,
            &["plans", "execute", plan_id, "--at", "yesterday"],
            2,
            "invalid value 'yesterday'",
        ),
        case(
            "two times",
            Admin,
            &[
                "plans",
                "execute",
                plan_id,
                "--at",
                "2030-01-01T00:00:00Z",
                "--in",
                "1h",
            ],
            2,
            "cannot be used with",
        ),
        case(
            "schedule without time",
            Admin,
            &[
                "schedule",
                "create",
                "--flag",
                "banner",
                "--env",
                "production",
                "--disable",
            ],
            2,
            "say when with --at or --in",
        ),
        case(
            "schedule without change",
            Admin,
            &["schedule", "create", "--in", "1h"],
            2,
            "required",
        ),
        case(
            "two changes",
            Admin,
            &[
                "schedule",
                "create",
                "--in",
                "1h",
                "--flag",
                "banner",
                "--env",
                "production",
                "--enable",
                "--disable",
            ],
            2,
            "cannot be used with",
        ),
        case(
            "bad duration",
            Admin,
            &[
                "schedule",
                "create",
                "--in",
                "soon",
                "--flag",
                "banner",
                "--env",
                "production",
                "--enable",
            ],
            2,
            "invalid value 'soon'",
        ),
        case(
            "percent too high",
            Admin,
            &ramp_with(&["--to", "150", "--duration", "1h"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            2,
            "not between 0 and 100",
        ),
        case(
            "ramp too short",
            Admin,
            &ramp_with(&["--to", "50", "--duration", "500ms"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            3,
            "at least 1 s",
        ),
        case("usage needs --env", Admin, &["usage"], 2, "--env"),
        case(
            "bad since",
            Admin,
            &["usage", "--env", "production", "--since", "forever"],
            2,
            "invalid value 'forever'",
        ),
        case("import needs a file", Admin, &["import"], 2, "required"),
        case(
            "file or --from-env",
            Admin,
            &["import", &typo, "--from-env", &ok_env],
            2,
            "cannot be used with",
        ),
        case(
            "untypable .env",
            Admin,
            &[
                "import",
                "--from-env",
                &bad_env,
                "--environment",
                "production",
            ],
            1,
            "line 1: expected NAME=VALUE",
        ),
        case(
            "unknown shell",
            Admin,
            &["completions", "nosh"],
            2,
            "invalid value 'nosh'",
        ),
        case(
            "unknown format",
            Admin,
            &["env", "list", "-o", "xml"],
            2,
            "invalid value 'xml'",
        ),
        case(
            "no token",
            NoToken,
            &["env", "list"],
            2,
            "FLAGWIRE_TOKEN is not set",
        ),
        // Unknown objects.
        case(
            "env",
            Admin,
            &["env", "get", "nope"],
            3,
            "NOT_FOUND: environment \"nope\"",
        ),
        case(
            "env delete",
            Admin,
            &["env", "delete", "nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "flag update",
            Admin,
            &["flags", "update", "nope", "--description", "x"],
            3,
            "NOT_FOUND: flag \"nope\"",
        ),
        case(
            "flag archive",
            Admin,
            &["flags", "archive", "nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "flag delete",
            Admin,
            &["flags", "delete", "nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "flag history",
            Admin,
            &["flags", "history", "nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "flag revert",
            Admin,
            &["flags", "revert", "nope", "1"],
            3,
            "NOT_FOUND",
        ),
        case(
            "flag version",
            Admin,
            &["flags", "revert", "banner", "99"],
            3,
            "NOT_FOUND",
        ),
        case(
            "segment",
            Admin,
            &["segments", "get", "nope", "--env", "production"],
            3,
            "NOT_FOUND",
        ),
        case(
            "segment update",
            Admin,
            &[
                "segments",
                "update",
                "nope",
                "--env",
                "production",
                "--include",
                "a",
            ],
            3,
            "NOT_FOUND",
        ),
        case(
            "segment delete",
            Admin,
            &["segments", "delete", "nope", "--env", "production"],
            3,
            "NOT_FOUND",
        ),
        case(
            "segments of",
            Admin,
            &["segments", "list", "--env", "nowhere"],
            3,
            "NOT_FOUND",
        ),
        case(
            "token",
            Admin,
            &["tokens", "revoke", "nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "rollout flag",
            Admin,
            &["rollout", "create", "-f", &missing_flag],
            3,
            "NOT_FOUND: flag \"nope\"",
        ),
        case(
            "rollout start",
            Admin,
            &["rollout", "start", "ro-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "rollout pause",
            Admin,
            &["rollout", "pause", "ro-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "rollout promote",
            Admin,
            &["rollout", "promote", "ro-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "rollout rollback",
            Admin,
            &["rollout", "rollback", "ro-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "rollout watch",
            Admin,
            &["rollout", "status", "ro-nope", "--watch"],
            3,
            "NOT_FOUND",
        ),
        case(
            "plan",
            Admin,
            &["plans", "execute", "plan-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "execution",
            Admin,
            &["plans", "status", "ex-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "execution cancel",
            Admin,
            &["plans", "cancel", "ex-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "scheduled change",
            Admin,
            &["schedule", "cancel", "sc-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "scheduled flag",
            Admin,
            &[
                "schedule",
                "create",
                "--in",
                "1h",
                "--flag",
                "nope",
                "--env",
                "production",
                "--enable",
            ],
            3,
            "NOT_FOUND",
        ),
        case(
            "ramp",
            Admin,
            &["ramp", "pause", "ramp-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "ramp resume",
            Admin,
            &["ramp", "resume", "ramp-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "ramp rollback",
            Admin,
            &["ramp", "rollback", "ramp-nope"],
            3,
            "NOT_FOUND",
        ),
        case(
            "ramp flag",
            Admin,
            &[
                "ramp",
                "create",
                "nope",
                "--env",
                "production",
                "--variant",
                "a",
                "--other",
                "b",
                "--to",
                "5",
                "--duration",
                "1h",
            ],
            3,
            "NOT_FOUND",
        ),
        case(
            "usage env",
            Admin,
            &["usage", "--env", "nowhere"],
            3,
            "NOT_FOUND",
        ),
        case(
            "import env",
            Admin,
            &["import", "--from-env", &ok_env, "--environment", "nowhere"],
            3,
            "NOT_FOUND",
        ),
        // What a read-only token may do, and may not.
        case("reader lists", Reader, &["env", "list"], 0, ""),
        case(
            "reader history",
            Reader,
            &["flags", "history", "banner"],
            0,
            "",
        ),
        case(
            "reader segments",
            Reader,
            &["segments", "list", "--env", "production"],
            0,
            "",
        ),
        case("reader plans", Reader, &["plans", "list"], 0, ""),
        case("reader schedule", Reader, &["schedule", "list"], 0, ""),
        case("reader ramps", Reader, &["ramp", "list"], 0, ""),
        case("reader rollout", Reader, &["rollout", "status", ro], 0, ""),
        case(
            "reader usage",
            Reader,
            &["usage", "--env", "production"],
            0,
            "",
        ),
        case("reader instances", Reader, &["instances"], 0, ""),
        case(
            "reader env create",
            Reader,
            &["env", "create", "x"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader env delete",
            Reader,
            &["env", "delete", "staging"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader flag create",
            Reader,
            &["flags", "create", "x", "--type", "bool"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader flag update",
            Reader,
            &["flags", "update", "banner", "--description", "x"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader archive",
            Reader,
            &["flags", "archive", "banner"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader delete",
            Reader,
            &["flags", "delete", "banner"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader revert",
            Reader,
            &["flags", "revert", "banner", "1"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader segment",
            Reader,
            &["segments", "create", "s", "--env", "production"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader segment update",
            Reader,
            &[
                "segments",
                "update",
                "beta",
                "--env",
                "production",
                "--include",
                "z",
            ],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader tokens",
            Reader,
            &["tokens", "list"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader token",
            Reader,
            &["tokens", "create", "t", "--role", "admin"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader revoke",
            Reader,
            &["tokens", "revoke", "x"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader rollout create",
            Reader,
            &["rollout", "create", "-f", &ok_rollout],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader rollout promote",
            Reader,
            &["rollout", "promote", ro],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader plan",
            Reader,
            &["plans", "create", "-f", &plan],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader execute",
            Reader,
            &["plans", "execute", plan_id],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader schedule create",
            Reader,
            &[
                "schedule",
                "create",
                "--in",
                "1h",
                "--flag",
                "banner",
                "--env",
                "production",
                "--enable",
            ],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader ramp",
            Reader,
            &ramp_with(&["--to", "50", "--duration", "1h"])
                .iter()
                .map(String::as_str)
                .collect::<Vec<_>>(),
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "reader import",
            Reader,
            &[
                "import",
                "--from-env",
                &ok_env,
                "--environment",
                "production",
            ],
            3,
            "PERMISSION_DENIED",
        ),
        // An sdk token reads flags through the SDK API only.
        case("sdk env", Sdk, &["env", "list"], 3, "PERMISSION_DENIED"),
        case(
            "sdk flags",
            Sdk,
            &["flags", "history", "banner"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "sdk segments",
            Sdk,
            &["segments", "list", "--env", "production"],
            3,
            "PERMISSION_DENIED",
        ),
        case(
            "sdk rollout",
            Sdk,
            &["rollout", "status", ro],
            3,
            "PERMISSION_DENIED",
        ),
        case("sdk plans", Sdk, &["plans", "list"], 3, "PERMISSION_DENIED"),
        case("sdk ramps", Sdk, &["ramp", "list"], 3, "PERMISSION_DENIED"),
        case(
            "sdk usage",
            Sdk,
            &["usage", "--env", "production"],
            3,
            "PERMISSION_DENIED",
        ),
        case("sdk instances", Sdk, &["instances"], 3, "PERMISSION_DENIED"),
        // The server is down.
        case(
            "down env",
            Down,
            &["env", "list"],
            4,
            "cannot reach the server",
        ),
        case(
            "down env create",
            Down,
            &["env", "create", "x"],
            4,
            "cannot reach the server",
        ),
        case(
            "down flag create",
            Down,
            &["flags", "create", "x", "--type", "bool"],
            4,
            "cannot reach the server",
        ),
        case(
            "down flag update",
            Down,
            &["flags", "update", "banner", "--description", "x"],
            4,
            "cannot reach the server",
        ),
        case(
            "down history",
            Down,
            &["flags", "history", "banner"],
            4,
            "cannot reach the server",
        ),
        case(
            "down segments",
            Down,
            &["segments", "list", "--env", "production"],
            4,
            "cannot reach the server",
        ),
        case(
            "down tokens",
            Down,
            &["tokens", "create", "t", "--role", "admin"],
            4,
            "cannot reach the server",
        ),
        case(
            "down rollout",
            Down,
            &["rollout", "create", "-f", &ok_rollout],
            4,
            "cannot reach the server",
        ),
        case(
            "down watch",
            Down,
            &["rollout", "status", ro, "--watch"],
            4,
            "cannot reach the server",
        ),
        case(
            "down plans",
            Down,
            &["plans", "execute", plan_id],
            4,
            "cannot reach the server",
        ),
        case(
            "down schedule",
            Down,
            &["schedule", "list"],
            4,
            "cannot reach the server",
        ),
        case(
            "down ramps",
            Down,
            &["ramp", "list"],
            4,
            "cannot reach the server",
        ),
        case(
            "down usage",
            Down,
            &["usage", "--env", "production"],
            4,
            "cannot reach the server",
        ),
        case(
            "down instances",
            Down,
            &["instances"],
            4,
            "cannot reach the server",
        ),
        case(
            "down import",
            Down,
            &["import", "--from-env", &ok_env],
            4,
            "cannot reach the server",
        ),
    ];
    cases.push(case(
        "completions need no server",
        Down,
        &["completions", "fish"],
        0,
        "",
    ));

    let down = down();
    let mut failed = Vec::new();
    for c in &cases {
        let args: Vec<&str> = c.args.iter().map(String::as_str).collect();
        let run = match c.who {
            Admin => flagwire(&server.grpc, Some(ADMIN), &args),
            Reader => flagwire(&server.grpc, Some(&tokens.reader), &args),
            Sdk => flagwire(&server.grpc, Some(&tokens.sdk), &args),
            NoToken => flagwire(&server.grpc, None, &args),
            Down => flagwire(&down, Some(ADMIN), &args),
        };
        let prefixed = c.code == 0
            || run.stderr.starts_with("flagwire: ")
            || run.stderr.starts_with("error: ");
        if run.code != c.code || !run.stderr.contains(c.stderr) || (c.code != 0 && !prefixed) {
            failed.push(format!(
                "{} ({:?} {}): want exit {} with {:?}, got {}: {}",
                c.what,
                c.who,
                c.args.join(" "),
                c.code,
                c.stderr,
                run.code,
                run.stderr.trim()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        cases.len(),
        failed.join("\n")
    );
    // Nothing the failures tried was written.
    assert!(!exists(&server, "x").await);
}
