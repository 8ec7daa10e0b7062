//! Shell completions, and TLS: an `https://` endpoint is trusted through the system's root
//! certificates (stood in for by `SSL_CERT_FILE`, which the system store loader honours) and
//! `--ca-file` adds a private CA to them.

use crate::support::*;
use std::process::Command;

#[test]
fn completions_are_generated_for_each_shell() {
    for (shell, marker) in [
        ("bash", "_flagwire()"),
        ("zsh", "#compdef flagwire"),
        ("fish", "complete -c flagwire"),
    ] {
        let out = flagwire("127.0.0.1:1", None, &["completions", shell]).ok();
        assert!(
            out.contains(marker),
            "{shell}: {}",
            &out[..out.len().min(300)]
        );
        for command in ["rollout", "segments", "schedule", "import"] {
            assert!(out.contains(command), "{shell} completes {command}");
        }
    }
    let bash = flagwire("127.0.0.1:1", None, &["completions", "bash"]).ok();
    for sub in [
        "flagwire__subcmd__rollout__subcmd__status",
        "flagwire__subcmd__flags__subcmd__history",
    ] {
        assert!(bash.contains(sub), "bash knows {sub}");
    }
    assert!(bash.contains("--from-env"), "and options");
}

#[test]
fn https_trusts_the_system_roots_and_ca_file_adds_one() {
    let dir = tempdir();
    let certs = crate::support::certs::make(dir.path());
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = crate::support::certs::make(&other_dir);
    let empty = dir.path().join("empty.pem");
    std::fs::write(&empty, "").unwrap();
    let (cert, key) = (
        certs.cert_path.to_str().unwrap(),
        certs.key_path.to_str().unwrap(),
    );
    let server = Server::start(
        &dir.path().join("data"),
        &["--tls-cert", cert, "--tls-key", key],
    );
    let endpoint = format!(
        "https://localhost:{}",
        server.grpc.rsplit(':').next().unwrap()
    );
    let run = |system: &std::path::Path, ca_file: Option<&std::path::Path>| {
        let mut cmd = Command::new(flagwire_bin());
        cmd.args(["env", "list", "--endpoint", &endpoint])
            .env("FLAGWIRE_TOKEN", ADMIN)
            .env_remove("FLAGWIRE_CA_FILE")
            .env_remove("SSL_CERT_DIR")
            .env("SSL_CERT_FILE", system);
        if let Some(ca) = ca_file {
            cmd.arg("--ca-file").arg(ca);
        }
        let out = cmd.output().unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let cases = [
        (
            "the system trusts the CA",
            &certs.ca_path,
            None,
            Some(0),
            "",
        ),
        (
            "the system does not",
            &other.ca_path,
            None,
            Some(4),
            "pass --ca-file",
        ),
        (
            "--ca-file adds it",
            &other.ca_path,
            Some(&certs.ca_path),
            Some(0),
            "",
        ),
        (
            "no system roots, --ca-file alone",
            &empty,
            Some(&certs.ca_path),
            Some(0),
            "",
        ),
        (
            "no system roots at all",
            &empty,
            None,
            Some(2),
            "no system root certificates",
        ),
        (
            "the wrong CA",
            &other.ca_path,
            Some(&other.ca_path),
            Some(4),
            "not trusted",
        ),
    ];
    for (what, system, ca, code, fragment) in cases {
        let (got, stderr) = run(system, ca.map(|p| p.as_path()));
        assert_eq!(got, code, "{what}: {stderr}");
        assert!(stderr.contains(fragment), "{what}: {stderr}");
    }
}
