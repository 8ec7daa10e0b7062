//! `import --from-env`: flags from a `.env` file like the ones services read their settings
//! from today (see the seeds' pydantic settings classes), on the real binary.

use super::fixtures::*;
use crate::support::*;
use flagwire_proto::v1::*;

const DEVELOPMENT: &str = "# .env (development)
FEATURE_WHATSAPP_ENABLED=false
FEATURE_IMAGE_GENERATION_ENABLED=true  # Test image generation
FEATURE_TTS_CACHE_ENABLED=True
FEATURE_DATABASE_TYPE=sqlite
export FEATURE_MAX_SESSIONS=25
FEATURE_SAMPLE_RATE=0.25
FEATURE_GREETING=\"Hello, I am Rose\"
FEATURE_BUILD='007'
DATABASE_URL=sqlite:///data/rose.db
";

/// What the evaluation API serves for `key` in `env`.
async fn served(server: &Server, env: &str, key: &str) -> flag_value::Kind {
    let mut flags = server.flags_as(Some(ADMIN)).await;
    let result = flags
        .evaluate(EvaluateRequest {
            environment: env.into(),
            flag_key: key.into(),
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    let value = result.value.clone().and_then(|v| v.kind);
    value.unwrap_or_else(|| panic!("{key}: {result:?}"))
}

#[tokio::test]
async fn a_dotenv_file_becomes_typed_flags_serving_its_values() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "development").await;
    let file = write(dir.path(), ".env", DEVELOPMENT);
    let import = |extra: &[&str]| {
        let mut args = vec!["import", "--from-env", &file, "--prefix", "FEATURE_"];
        args.extend_from_slice(extra);
        cli(&server, &args).ok()
    };

    let table = "LINE  VARIABLE                          FLAG                              TYPE     VALUE               @@@@@@\n\
                 2     FEATURE_WHATSAPP_ENABLED          feature-whatsapp-enabled          boolean  false               @@@@@@\n\
                 3     FEATURE_IMAGE_GENERATION_ENABLED  feature-image-generation-enabled  boolean  true                @@@@@@\n\
                 4     FEATURE_TTS_CACHE_ENABLED         feature-tts-cache-enabled         boolean  true                @@@@@@\n\
                 5     FEATURE_DATABASE_TYPE             feature-database-type             string   \"sqlite\"            @@@@@@\n\
                 6     FEATURE_MAX_SESSIONS              feature-max-sessions              integer  25                  @@@@@@\n\
                 7     FEATURE_SAMPLE_RATE               feature-sample-rate               float    0.25                @@@@@@\n\
                 8     FEATURE_GREETING                  feature-greeting                  string   \"Hello, I am Rose\"  @@@@@@\n\
                 9     FEATURE_BUILD                     feature-build                     string   \"007\"               @@@@@@\n";
    // The only environment is the default; a dry run shows the mapping and changes nothing.
    let out = import(&["--dry-run"]);
    assert_eq!(
        out,
        table
            .replacen("@@@@@@", "ACTION", 1)
            .replace("@@@@@@", "create")
            + "dry run for development: 8 to create, 0 to update, 0 unchanged; nothing was changed\n"
    );
    assert!(!exists(&server, "feature-tts-cache-enabled").await);

    let out = import(&[]);
    assert!(
        out.ends_with("imported into development: 8 created, 0 updated, 0 unchanged\n"),
        "{out}"
    );
    assert!(
        !exists(&server, "database-url").await,
        "--prefix leaves other settings out"
    );
    use flag_value::Kind;
    for (key, value) in [
        ("feature-whatsapp-enabled", Kind::BoolValue(false)),
        ("feature-tts-cache-enabled", Kind::BoolValue(true)),
        ("feature-database-type", Kind::StringValue("sqlite".into())),
        ("feature-max-sessions", Kind::IntValue(25)),
        ("feature-sample-rate", Kind::FloatValue(0.25)),
        ("feature-build", Kind::StringValue("007".into())),
    ] {
        assert_eq!(served(&server, "development", key).await, value, "{key}");
    }
    let f = flag(&server, "feature-database-type").await;
    assert_eq!(f.description, "Imported from FEATURE_DATABASE_TYPE in .env");
    assert_eq!(
        import(&[]),
        table
            .replacen("@@@@@@", "ACTION", 1)
            .replace("@@@@@@", "unchanged")
            + "imported into development: 0 created, 0 updated, 8 unchanged\n"
    );

    // Another environment's file: existing flags gain its configuration and, where needed, a
    // variant; development keeps serving its values.
    create_env(&mut admin, "production").await;
    let prod = write(
        dir.path(),
        "prod.env",
        "FEATURE_DATABASE_TYPE=postgresql\nFEATURE_TTS_CACHE_ENABLED=true\nFEATURE_NEW=on\n",
    );
    let err = cli(&server, &["import", "--from-env", &prod]).fails(2);
    assert!(err.contains("--environment"), "two environments now: {err}");
    let j = cli(
        &server,
        &[
            "import",
            "--from-env",
            &prod,
            "--environment",
            "production",
            "-o",
            "json",
        ],
    )
    .json();
    let actions: Vec<(&str, &str)> = j["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["resourceKey"].as_str().unwrap(),
                c["action"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        actions,
        [
            ("feature-database-type", "BUNDLE_CHANGE_ACTION_UPDATE"),
            ("feature-tts-cache-enabled", "BUNDLE_CHANGE_ACTION_UPDATE"),
            ("feature-new", "BUNDLE_CHANGE_ACTION_CREATE"),
        ]
    );
    let f = flag(&server, "feature-database-type").await;
    let variants: Vec<&str> = f.variants.iter().map(|v| v.key.as_str()).collect();
    assert_eq!(variants, ["sqlite", "postgresql"]);
    assert_eq!(
        served(&server, "production", "feature-database-type").await,
        Kind::StringValue("postgresql".into())
    );
    assert_eq!(
        served(&server, "development", "feature-database-type").await,
        Kind::StringValue("sqlite".into())
    );
}

#[tokio::test]
async fn a_file_it_cannot_type_is_refused_by_line_and_nothing_is_created() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &[]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "development").await;
    cli(
        &server,
        &[
            "flags",
            "create",
            "feature-mode",
            "--type",
            "string",
            "--variant",
            "a=a",
        ],
    )
    .ok();
    let cases = [
        (
            "unreadable line",
            "FEATURE_A=1\nFEATURE_B\n",
            "line 2: expected NAME=VALUE",
        ),
        (
            "no value",
            "FEATURE_A=1\n\nFEATURE_B=\n",
            "line 3: FEATURE_B: no value, so no type",
        ),
        (
            "too large",
            "FEATURE_A=1\nFEATURE_B=99999999999999999999\n",
            "line 2: FEATURE_B: 99999999999999999999 does not fit a 64-bit integer",
        ),
        (
            "bad JSON",
            "FEATURE_A=1\nFEATURE_B={\"a\":\n",
            "line 2: FEATURE_B: \"{\\\"a\\\":\" is not JSON",
        ),
        (
            "substitution",
            "FEATURE_A=1\nFEATURE_B=${HOME}/x\n",
            "line 2: variable references ($NAME) are not expanded",
        ),
        (
            "same key twice",
            "FEATURE_A=1\nFEATURE_a=2\n",
            "line 2: FEATURE_a: maps to the key feature-a as FEATURE_A on line 1 does",
        ),
        (
            "another type",
            "FEATURE_A=1\nFEATURE_MODE=3\n",
            "line 2: FEATURE_MODE: the flag feature-mode exists as a string flag; the file's value is an integer",
        ),
        (
            "nothing selected",
            "OTHER=1\n",
            "no variables starting with FEATURE_ in the file",
        ),
    ];
    for (what, text, message) in cases {
        let file = write(dir.path(), "bad.env", text);
        let err = cli(
            &server,
            &["import", "--from-env", &file, "--prefix", "FEATURE_"],
        )
        .fails(1);
        assert!(
            err.starts_with(&format!("flagwire: {file}: "))
                || what == "another type"
                || what == "nothing selected",
            "{what}: {err}"
        );
        assert!(err.contains(message), "{what}: {err}");
        assert!(
            !exists(&server, "feature-a").await,
            "{what}: nothing is created"
        );
    }
    let err = cli(&server, &["import", "--from-env", "/nonexistent.env"]).fails(1);
    assert!(err.contains("read /nonexistent.env"), "{err}");
}
