//! Every command's failures, one described case per row: bad input, unknown objects, the wrong
//! role (read-only and sdk tokens) and a server that is down. Each gets its message on stderr
//! and the exit code of the scheme (1 local file, 2 usage, 3 refused by the server, 4
//! unreachable); the rows a read-only token may run succeed.

use super::fixtures::*;
use crate::support::*;

/// `what | who | exit code | stderr fragment (- for none) | arguments`. Arguments are split on
/// spaces; `$NAME` is the fixture of that name. Who: `admin`, `reader` (read-only), `sdk` (bound
/// to production), `none` (no token), `down` (admin, at an address nothing listens on).
const CASES: &str = r#"
invalid key          | admin  | 3 | INVALID_ARGUMENT: invalid argument: environment.key | env create BadKey
no type              | admin  | 2 | --type                          | flags create x
int variant          | admin  | 2 | "1.5" is not a 64-bit integer   | flags create x --type int --variant a=1.5
bool variant         | admin  | 2 | "yes" is not a boolean          | flags create x --type bool --variant on=yes
json variant         | admin  | 2 | not a JSON object               | flags create x --type json --variant a=[1]
variant without =    | admin  | 2 | is not NAME=VALUE               | flags create x --type string --variant a
missing file         | admin  | 1 | read /nonexistent.yaml          | flags create -f /nonexistent.yaml
unknown field        | admin  | 1 | not a valid flag                | flags create -f $TYPO
--serve needs --env  | admin  | 2 | --env                           | flags update banner --serve blue
unknown variant      | admin  | 3 | INVALID_ARGUMENT                | flags update banner --env production --serve purple
bad weight           | admin  | 2 | not a whole number              | flags update banner --env production --split blue=x
stale version        | admin  | 3 | FAILED_PRECONDITION             | flags update banner --description x --expected-version 99
bad limit            | admin  | 2 | invalid value 'many'            | flags history banner --limit many
segments need --env  | admin  | 2 | --env                           | segments list
unknown role         | admin  | 2 | invalid value 'root'            | tokens create t --role root
sdk without env      | admin  | 3 | INVALID_ARGUMENT                | tokens create t --role sdk
rollout window       | admin  | 3 | rollout.policy.window           | rollout create -f $BAD_WINDOW
rollout file typo    | admin  | 1 | not a valid rollout             | rollout create -f $TYPO
rollout id missing   | admin  | 2 | <ID>                            | rollout status
plan without steps   | admin  | 3 | plan.steps                      | plans create -f $EMPTY_PLAN
bad time             | admin  | 2 | invalid value 'yesterday'       | plans execute $PLAN_ID --at yesterday
two times            | admin  | 2 | cannot be used with             | plans execute $PLAN_ID --at 2030-01-01T00:00:00Z --in 1h
schedule, no time    | admin  | 2 | say when with --at or --in      | schedule create --flag banner --env production --disable
schedule, no change  | admin  | 2 | required                        | schedule create --in 1h
two changes          | admin  | 2 | cannot be used with             | schedule create --in 1h --flag banner --env production --enable --disable
bad duration         | admin  | 2 | invalid value 'soon'            | schedule create --in soon --flag banner --env production --enable
percent too high     | admin  | 2 | not between 0 and 100           | ramp create banner --env production --variant green --other blue --to 150 --duration 1h
ramp too short       | admin  | 3 | at least 1 s                    | ramp create banner --env production --variant green --other blue --to 50 --duration 500ms
usage needs --env    | admin  | 2 | --env                           | usage
bad since            | admin  | 2 | invalid value 'forever'         | usage --env production --since forever
import needs a file  | admin  | 2 | required                        | import
file or --from-env   | admin  | 2 | cannot be used with             | import $TYPO --from-env $OK_ENV
untypable .env       | admin  | 1 | line 1: expected NAME=VALUE     | import --from-env $BAD_ENV --environment production
unknown shell        | admin  | 2 | invalid value 'nosh'            | completions nosh
unknown format       | admin  | 2 | invalid value 'xml'             | env list -o xml
env key missing      | admin  | 2 | <KEY>                           | env create
segment needs --env  | admin  | 2 | --env                           | segments get beta
segment file typo    | admin  | 1 | not a valid segment             | segments create -f $TYPO
token id missing     | admin  | 2 | <ID>                            | tokens revoke
plan file missing    | admin  | 1 | read /nonexistent.yaml          | plans create -f /nonexistent.yaml
plans extra argument | admin  | 2 | unexpected argument             | plans list extra
change file typo     | admin  | 1 | not a valid scheduled change    | schedule create -f $TYPO
ramp without --to    | admin  | 2 | --to                            | ramp create banner --env production --variant green --other blue --duration 1h
instances option     | admin  | 2 | unexpected argument             | instances --limit 5
no token             | none   | 2 | FLAGWIRE_TOKEN is not set       | env list
env                  | admin  | 3 | NOT_FOUND: environment "nope"   | env get nope
env delete           | admin  | 3 | NOT_FOUND                       | env delete nope
flag update          | admin  | 3 | NOT_FOUND: flag "nope"          | flags update nope --description x
flag archive         | admin  | 3 | NOT_FOUND                       | flags archive nope
flag delete          | admin  | 3 | NOT_FOUND                       | flags delete nope
flag history         | admin  | 3 | NOT_FOUND                       | flags history nope
flag revert          | admin  | 3 | NOT_FOUND                       | flags revert nope 1
flag version         | admin  | 3 | NOT_FOUND                       | flags revert banner 99
segment              | admin  | 3 | NOT_FOUND                       | segments get nope --env production
segment update       | admin  | 3 | NOT_FOUND                       | segments update nope --env production --include a
segment delete       | admin  | 3 | NOT_FOUND                       | segments delete nope --env production
segments of          | admin  | 3 | NOT_FOUND                       | segments list --env nowhere
token                | admin  | 3 | NOT_FOUND                       | tokens revoke nope
rollout flag         | admin  | 3 | NOT_FOUND: flag "nope"          | rollout create -f $MISSING_FLAG
rollout start        | admin  | 3 | NOT_FOUND                       | rollout start ro-nope
rollout pause        | admin  | 3 | NOT_FOUND                       | rollout pause ro-nope
rollout promote      | admin  | 3 | NOT_FOUND                       | rollout promote ro-nope
rollout rollback     | admin  | 3 | NOT_FOUND                       | rollout rollback ro-nope
rollout resume       | admin  | 3 | NOT_FOUND                       | rollout resume ro-nope
rollout watch        | admin  | 3 | NOT_FOUND                       | rollout status ro-nope --watch
plan                 | admin  | 3 | NOT_FOUND                       | plans execute plan-nope
execution            | admin  | 3 | NOT_FOUND                       | plans status ex-nope
execution cancel     | admin  | 3 | NOT_FOUND                       | plans cancel ex-nope
scheduled change     | admin  | 3 | NOT_FOUND                       | schedule cancel sc-nope
scheduled flag       | admin  | 3 | NOT_FOUND                       | schedule create --in 1h --flag nope --env production --enable
ramp                 | admin  | 3 | NOT_FOUND                       | ramp pause ramp-nope
ramp resume          | admin  | 3 | NOT_FOUND                       | ramp resume ramp-nope
ramp rollback        | admin  | 3 | NOT_FOUND                       | ramp rollback ramp-nope
ramp flag            | admin  | 3 | NOT_FOUND                       | ramp create nope --env production --variant a --other b --to 5 --duration 1h
usage env            | admin  | 3 | NOT_FOUND                       | usage --env nowhere
import env           | admin  | 3 | NOT_FOUND                       | import --from-env $OK_ENV --environment nowhere
reader lists         | reader | 0 | -                               | env list
reader history       | reader | 0 | -                               | flags history banner
reader segments      | reader | 0 | -                               | segments list --env production
reader plans         | reader | 0 | -                               | plans list
reader schedule      | reader | 0 | -                               | schedule list
reader ramps         | reader | 0 | -                               | ramp list
reader rollout       | reader | 0 | -                               | rollout status $RO
reader usage         | reader | 0 | -                               | usage --env production
reader instances     | reader | 0 | -                               | instances
reader env create    | reader | 3 | PERMISSION_DENIED               | env create x
reader env delete    | reader | 3 | PERMISSION_DENIED               | env delete staging
reader flag create   | reader | 3 | PERMISSION_DENIED               | flags create x --type bool
reader flag update   | reader | 3 | PERMISSION_DENIED               | flags update banner --description x
reader archive       | reader | 3 | PERMISSION_DENIED               | flags archive banner
reader delete        | reader | 3 | PERMISSION_DENIED               | flags delete banner
reader revert        | reader | 3 | PERMISSION_DENIED               | flags revert banner 1
reader segment       | reader | 3 | PERMISSION_DENIED               | segments create s --env production
reader segment edit  | reader | 3 | PERMISSION_DENIED               | segments update beta --env production --include z
reader tokens        | reader | 3 | PERMISSION_DENIED               | tokens list
reader token         | reader | 3 | PERMISSION_DENIED               | tokens create t --role admin
reader revoke        | reader | 3 | PERMISSION_DENIED               | tokens revoke x
reader rollout       | reader | 3 | PERMISSION_DENIED               | rollout create -f $OK_ROLLOUT
reader promote       | reader | 3 | PERMISSION_DENIED               | rollout promote $RO
reader plan          | reader | 3 | PERMISSION_DENIED               | plans create -f $PLAN
reader execute       | reader | 3 | PERMISSION_DENIED               | plans execute $PLAN_ID
reader schedule      | reader | 3 | PERMISSION_DENIED               | schedule create --in 1h --flag banner --env production --enable
reader ramp          | reader | 3 | PERMISSION_DENIED               | ramp create banner --env production --variant green --other blue --to 50 --duration 1h
reader import        | reader | 3 | PERMISSION_DENIED               | import --from-env $OK_ENV --environment production
reader pause         | reader | 3 | PERMISSION_DENIED               | rollout pause $RO
reader plan cancel   | reader | 3 | PERMISSION_DENIED               | plans cancel ex-x
reader change cancel | reader | 3 | PERMISSION_DENIED               | schedule cancel sc-x
reader ramp pause    | reader | 3 | PERMISSION_DENIED               | ramp pause ramp-x
sdk env              | sdk    | 3 | PERMISSION_DENIED               | env list
sdk flags            | sdk    | 3 | PERMISSION_DENIED               | flags history banner
sdk segments         | sdk    | 3 | PERMISSION_DENIED               | segments list --env production
sdk rollout          | sdk    | 3 | PERMISSION_DENIED               | rollout status $RO
sdk plans            | sdk    | 3 | PERMISSION_DENIED               | plans list
sdk ramps            | sdk    | 3 | PERMISSION_DENIED               | ramp list
sdk usage            | sdk    | 3 | PERMISSION_DENIED               | usage --env production
sdk instances        | sdk    | 3 | PERMISSION_DENIED               | instances
down env             | down   | 4 | cannot reach the server         | env list
down env create      | down   | 4 | cannot reach the server         | env create x
down flag create     | down   | 4 | cannot reach the server         | flags create x --type bool
down flag update     | down   | 4 | cannot reach the server         | flags update banner --description x
down history         | down   | 4 | cannot reach the server         | flags history banner
down segments        | down   | 4 | cannot reach the server         | segments list --env production
down tokens          | down   | 4 | cannot reach the server         | tokens create t --role admin
down rollout         | down   | 4 | cannot reach the server         | rollout create -f $OK_ROLLOUT
down watch           | down   | 4 | cannot reach the server         | rollout status $RO --watch
down plans           | down   | 4 | cannot reach the server         | plans execute $PLAN_ID
down schedule        | down   | 4 | cannot reach the server         | schedule list
down ramps           | down   | 4 | cannot reach the server         | ramp list
down usage           | down   | 4 | cannot reach the server         | usage --env production
down instances       | down   | 4 | cannot reach the server         | instances
down import          | down   | 4 | cannot reach the server         | import --from-env $OK_ENV
down env delete      | down   | 4 | cannot reach the server         | env delete staging
down segment create  | down   | 4 | cannot reach the server         | segments create s --env production
down token list      | down   | 4 | cannot reach the server         | tokens list
down plan status     | down   | 4 | cannot reach the server         | plans status ex-x
down change cancel   | down   | 4 | cannot reach the server         | schedule cancel sc-x
down ramp pause      | down   | 4 | cannot reach the server         | ramp pause ramp-x
completions, offline | down   | 0 | -                               | completions fish
"#;

const OK_ROLLOUT: &str = "flagKey: new-checkout\nenvironment: staging\ntreatmentVariant: 'on'\n\
                          baselineVariant: 'off'\nsteps: [{basisPoints: 100}, {basisPoints: 10000}]\n";

#[tokio::test]
async fn failures_name_the_problem_and_set_the_exit_code() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    seed(&server, true).await;
    let tokens = tokens(&server).await;
    let file = |name: &str, text: &str| write(dir.path(), name, text);
    let rollouts = cli(&server, &["rollout", "list", "-o", "json"]).json();
    let plans = cli(&server, &["plans", "list", "-o", "json"]).json();
    let fixtures = [
        ("$OK_ROLLOUT", file("ok-rollout.yaml", OK_ROLLOUT)),
        (
            "$MISSING_FLAG",
            file(
                "missing-flag.yaml",
                &OK_ROLLOUT.replace("new-checkout", "nope"),
            ),
        ),
        (
            "$BAD_WINDOW",
            file(
                "bad-window.yaml",
                &format!("{OK_ROLLOUT}policy: {{window: 0.5s}}\n"),
            ),
        ),
        ("$TYPO", file("typo.yaml", "key: x\nkee: y\n")),
        ("$EMPTY_PLAN", file("empty-plan.yaml", "name: p3\n")),
        ("$PLAN_ID", text(&plans, "/plans/0/id")),
        (
            "$PLAN",
            file(
                "plan.yaml",
                "name: p2\nsteps: [{setEnabled: {flagKey: banner, environment: production}}]\n",
            ),
        ),
        ("$OK_ENV", file("ok.env", "FEATURE_X=true\n")),
        ("$BAD_ENV", file("bad.env", "FEATURE_X\n")),
        ("$RO", text(&rollouts, "/rollouts/0/id")),
    ];
    let down = down();
    let mut failed = Vec::new();
    let rows: Vec<&str> = CASES.lines().filter(|l| !l.trim().is_empty()).collect();
    for row in &rows {
        let cells: Vec<&str> = row.split(" | ").map(str::trim).collect();
        let [what, who, code, fragment, args] = cells[..] else {
            panic!("a row has five cells: {row}");
        };
        let args: Vec<String> = args
            .split_whitespace()
            .map(|a| {
                fixtures
                    .iter()
                    .find(|(k, _)| *k == a)
                    .map_or(a.to_owned(), |(_, v)| v.clone())
            })
            .collect();
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let run = match who {
            "admin" => flagwire(&server.grpc, Some(ADMIN), &args),
            "reader" => flagwire(&server.grpc, Some(&tokens.reader), &args),
            "sdk" => flagwire(&server.grpc, Some(&tokens.sdk), &args),
            "none" => flagwire(&server.grpc, None, &args),
            "down" => flagwire(&down, Some(ADMIN), &args),
            other => panic!("unknown runner {other:?}: {row}"),
        };
        let code: i32 = code.parse().unwrap();
        let fragment = if fragment == "-" { "" } else { fragment };
        let prefixed =
            code == 0 || run.stderr.starts_with("flagwire: ") || run.stderr.starts_with("error: ");
        if run.code != code || !run.stderr.contains(fragment) || !prefixed {
            failed.push(format!(
                "{what} ({who}: {}): want exit {code} with {fragment:?}, got {}: {}",
                args.join(" "),
                run.code,
                run.stderr.trim()
            ));
        }
    }
    assert!(
        failed.is_empty(),
        "{} of {} cases failed:\n{}",
        failed.len(),
        rows.len(),
        failed.join("\n")
    );
    // Nothing the failures tried was written.
    assert!(!exists(&server, "x").await);
}
