//! The real server binary for end-to-end tests and benchmarks: `FLAGWIRE_BIN`, or the one of
//! this cargo profile, on loopback ports and a temporary data directory.
#![allow(dead_code)]

use flagwire_proto::v1::{
    Flag, FlagConfig, FlagValue, Serve, ValueType, Variant, flag_value, serve,
};
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

/// The admin token the server is started with.
pub const ADMIN: &str = "fw_e2e_admin_token_0001";

/// The binary to run: `FLAGWIRE_BIN` (scripts/test passes the one it built), else the server
/// binary of this test's own cargo profile, which `cargo test --workspace` has just built.
/// Never the newest of several profiles: that could be a stale build of old code.
pub fn binary() -> PathBuf {
    if let Some(path) = std::env::var_os("FLAGWIRE_BIN") {
        return path.into();
    }
    // target/<profile>/deps/<test> -> target/<profile>/flagwire
    let profile_dir = std::env::current_exe()
        .unwrap()
        .ancestors()
        .nth(2)
        .unwrap()
        .to_path_buf();
    let path = profile_dir.join("flagwire");
    assert!(
        path.exists(),
        "no server binary at {}: set FLAGWIRE_BIN or build it in this profile \
         (cargo build -p flagwire-server --bin flagwire)",
        path.display()
    );
    path
}

/// The server process, killed on drop (its data directory goes with it).
pub struct Binary {
    child: Child,
    /// The gRPC URL.
    pub url: String,
    _data: tempfile::TempDir,
}

impl Drop for Binary {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts the server.
pub fn start() -> Binary {
    start_with(&[])
}

/// Starts the server with more `serve` options (e.g. `--prometheus-url URL`).
pub fn start_with(options: &[&str]) -> Binary {
    spawn(tempfile::tempdir().unwrap(), "127.0.0.1:0", options)
}

/// Starts a server on a data directory restored from `backup` (`flagwire restore`): the same
/// flags, tokens and revisions as the server the backup was taken from, as a second replica
/// has. `listen` is its gRPC address (`127.0.0.1:0` for any free port).
pub fn start_restored(backup: &std::path::Path, listen: &str, options: &[&str]) -> Binary {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(binary())
        .arg("restore")
        .arg("--in")
        .arg(backup)
        .arg("--data-dir")
        .arg(dir.path())
        .env("FLAGWIRE_TOKEN", ADMIN)
        .output()
        .expect("run flagwire restore");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "flagwire restore: {stderr}");
    spawn(dir, listen, options)
}

/// Starts the server listening on `listen` (e.g. another loopback address), with more `serve`
/// options.
pub fn start_on(listen: &str, options: &[&str]) -> Binary {
    spawn(tempfile::tempdir().unwrap(), listen, options)
}

fn spawn(dir: tempfile::TempDir, listen: &str, options: &[&str]) -> Binary {
    let mut child = Command::new(binary())
        .args(["serve", "--listen", listen, "--http-listen", "127.0.0.1:0"])
        .args(options)
        .arg("--data-dir")
        .arg(dir.path())
        .env("FLAGWIRE_ADMIN_TOKEN", ADMIN)
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("spawn flagwire");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = loop {
        let line = lines.next().expect("flagwire exited early").unwrap();
        if line.starts_with("flagwire listening") {
            break line;
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let grpc = line
        .split_whitespace()
        .find_map(|w| w.strip_prefix("grpc="))
        .unwrap()
        .to_owned();
    Binary {
        child,
        url: format!("http://{grpc}"),
        _data: dir,
    }
}

impl Binary {
    /// Kills the server (SIGKILL: no goodbye to open streams).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// Its gRPC port.
    pub fn port(&self) -> u16 {
        self.url.rsplit(':').next().unwrap().parse().unwrap()
    }

    /// Runs the CLI command `args` against this server as the admin (`--endpoint` added),
    /// and returns its standard output; a failure fails the test with its standard error.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new(binary())
            .args(args)
            .args(["--endpoint", &self.url])
            .env("FLAGWIRE_TOKEN", ADMIN)
            .output()
            .expect("run the flagwire CLI");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "flagwire {args:?}: {stderr}");
        String::from_utf8(out.stdout).unwrap()
    }
}

/// `m` with the admin token.
pub fn auth<T>(m: T) -> tonic::Request<T> {
    let mut r = tonic::Request::new(m);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    r
}

/// A boolean flag (variants on/off) enabled in `env`, its default rule serving `serving`.
pub fn bool_flag(key: &str, env: &str, serving: &str) -> Flag {
    let variant = |k: &str, b: bool| Variant {
        key: k.into(),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::BoolValue(b)),
        }),
        description: String::new(),
    };
    let config = FlagConfig {
        enabled: true,
        off_variant: "off".into(),
        default_rule: Some(Serve {
            kind: Some(serve::Kind::Variant(serving.into())),
        }),
        ..Default::default()
    };
    Flag {
        key: key.into(),
        r#type: ValueType::Boolean as i32,
        variants: vec![variant("on", true), variant("off", false)],
        environments: [(env.to_string(), config)].into(),
        ..Default::default()
    }
}
