//! YAML exports read back the same by a YAML 1.1 reader (PyYAML, as Python tooling and
//! Ansible use it) and by our own reader: strings such as `on`, `no`, `1e3`, `0x1F`, `1:30` or
//! `2026-01-01` stay strings.

use crate::support::*;
use flagwire_proto::v1::*;
use flagwire_server::protojson;
use std::process::{Command, Stdio};

/// Strings every YAML 1.1 reader would otherwise turn into something else.
const TRICKY: &[&str] = &[
    "on",
    "off",
    "yes",
    "no",
    "y",
    "n",
    "True",
    "NULL",
    "~",
    "1e3",
    "1.5",
    ".5",
    "0x1F",
    "017",
    "0b101",
    "1_000",
    "1:30",
    "2026-01-01",
    "=",
    "<<",
    "",
];

/// The Python of `<repo>/.venv` (`source scripts/lib/tools.sh && ensure_venv` makes it, with
/// PyYAML), or `FLAGWIRE_PYTHON`.
fn python() -> String {
    if let Ok(p) = std::env::var("FLAGWIRE_PYTHON") {
        return p;
    }
    let venv = concat!(env!("CARGO_MANIFEST_DIR"), "/../.venv/bin/python");
    assert!(
        std::path::Path::new(venv).exists(),
        "{venv} is missing: run `source scripts/lib/tools.sh && ensure_venv` (it installs PyYAML)"
    );
    venv.to_owned()
}

/// `yaml` read by PyYAML's safe loader, as JSON.
fn pyyaml(yaml: &str) -> String {
    let mut child = Command::new(python())
        .args([
            "-c",
            "import json, sys, yaml; json.dump(yaml.safe_load(sys.stdin), sys.stdout)",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    use std::io::Write;
    child
        .stdin
        .take()
        .unwrap()
        .write_all(yaml.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn string_variant(s: &str, i: usize) -> Variant {
    Variant {
        key: format!("v{i}"),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::StringValue(s.into())),
        }),
        description: s.into(),
    }
}

#[tokio::test]
async fn exports_read_back_the_same_through_pyyaml_and_our_reader() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    for env in ["on", "no", "production"] {
        create_env(&mut admin, env).await;
    }
    let strings = || {
        TRICKY.iter().map(|s| prost_types::Value {
            kind: Some(prost_types::value::Kind::StringValue(s.to_string())),
        })
    };
    let mut flag = Flag {
        key: "tricky".into(),
        description: "yes".into(),
        tags: vec!["on".into(), "1e3".into()],
        r#type: ValueType::String as i32,
        variants: TRICKY
            .iter()
            .enumerate()
            .map(|(i, s)| string_variant(s, i))
            .collect(),
        ..Default::default()
    };
    let mut config = FlagConfig {
        off_variant: "v0".into(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Variant("v1".into())),
        }),
        ..Default::default()
    };
    // In a clause the values are google.protobuf.Value: a YAML 1.1 boolean would change type.
    config.rules.push(Rule {
        id: "tricky".into(),
        clauses: vec![Clause {
            attribute: "plan".into(),
            operator: Operator::In as i32,
            values: strings().collect(),
            ..Default::default()
        }],
        serve: Some(Serve {
            kind: Some(serve::Kind::Variant("v2".into())),
        }),
        ..Default::default()
    });
    flag.environments.insert("on".into(), config.clone());
    flag.environments.insert("no".into(), config);
    create_flag(&mut admin, flag).await;

    let exported = cli(&server, &["export"]).ok();
    for s in ["'on'", "'1e3'", "'2026-01-01'", "description: 'yes'"] {
        assert!(exported.contains(s), "{s} is quoted: {exported}");
    }
    let ours = protojson::from_yaml::<Bundle>(&exported).unwrap();
    let theirs = protojson::from_json::<Bundle>(&pyyaml(&exported))
        .unwrap_or_else(|e| panic!("PyYAML read something else ({e}): {exported}"));
    assert_eq!(theirs, ours, "PyYAML and our reader read the same bundle");
    let f = ours.flags.iter().find(|f| f.key == "tricky").unwrap();
    let values: Vec<String> = f
        .variants
        .iter()
        .map(|v| match &v.value.as_ref().unwrap().kind {
            Some(flag_value::Kind::StringValue(s)) => s.clone(),
            other => panic!("{other:?}"),
        })
        .collect();
    assert_eq!(values, TRICKY, "every variant is still its string");
    let clause = &f.environments["on"].rules[0].clauses[0];
    assert_eq!(clause.values, strings().collect::<Vec<_>>());
    let envs: Vec<&str> = ours.environments.iter().map(|e| e.key.as_str()).collect();
    assert_eq!(envs, ["no", "on", "production"]);

    // `-o yaml` uses the same writer.
    let out = cli(&server, &["flags", "get", "tricky", "-o", "yaml"]).ok();
    let theirs: serde_json::Value = serde_json::from_str(&pyyaml(&out)).unwrap();
    assert_eq!(theirs["flag"]["tags"], serde_json::json!(["on", "1e3"]));
}
