//! Starts the real `flagwire` binary on loopback for integration tests, and gives authenticated
//! clients to it.

use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, flag_service_client::FlagServiceClient,
    metrics_service_client::MetricsServiceClient, release_service_client::ReleaseServiceClient,
    rollout_service_client::RolloutServiceClient,
};
use flagwire_proto::v1::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The `flagwire` binary under test: `FLAGWIRE_BIN` when set (CI passes the binary it built
/// and runs every suite against), else the one cargo built for this run. Never a guess at
/// `target/`: a stale binary there would test old code.
pub fn flagwire_bin() -> std::path::PathBuf {
    std::env::var_os("FLAGWIRE_BIN")
        .map(Into::into)
        .unwrap_or_else(|| env!("CARGO_BIN_EXE_flagwire").into())
}

/// The admin token every test server bootstraps with.
pub const ADMIN: &str = "fw_test_admin_token";

/// Lines a server wrote to stderr, collected as they come.
pub type StderrLines = std::sync::Arc<std::sync::Mutex<Vec<String>>>;

/// A running server process.
pub struct Server {
    child: Child,
    /// gRPC address.
    pub grpc: String,
    /// HTTP address.
    pub http: String,
    /// Data directory.
    pub data_dir: PathBuf,
    extra: Vec<String>,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(pub Option<String>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        if let Some(t) = &self.0 {
            r.metadata_mut()
                .insert("authorization", format!("Bearer {t}").parse().unwrap());
        }
        Ok(r)
    }
}

/// An admin client type.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;
/// A flag client type.
pub type Flags = FlagServiceClient<InterceptedService<Channel, Bearer>>;
/// A metrics client type.
pub type Metrics = MetricsServiceClient<InterceptedService<Channel, Bearer>>;
/// A rollout client type.
pub type Rollouts = RolloutServiceClient<InterceptedService<Channel, Bearer>>;
/// A release client type.
pub type Releases = ReleaseServiceClient<InterceptedService<Channel, Bearer>>;

/// Authenticated clients of a server, whichever way it runs (a process or in this one).
pub trait Connect {
    /// The gRPC address (host:port), for clients that dial it themselves (the CLI).
    fn address(&self) -> String;

    /// The plain-HTTP address (host:port): `/metrics`, `/healthz`.
    fn http_address(&self) -> String;

    /// A fresh channel (a new TCP connection).
    async fn channel(&self) -> Channel {
        connect(&self.address()).await
    }

    /// An AdminService client with `token`.
    async fn admin_as(&self, token: Option<&str>) -> Admin {
        AdminServiceClient::with_interceptor(self.channel().await, Bearer(token.map(Into::into)))
    }

    /// An AdminService client with the admin token.
    async fn admin(&self) -> Admin {
        self.admin_as(Some(ADMIN)).await
    }

    /// A FlagService client with `token`.
    async fn flags_as(&self, token: Option<&str>) -> Flags {
        FlagServiceClient::with_interceptor(self.channel().await, Bearer(token.map(Into::into)))
    }

    /// A MetricsService client with `token`.
    async fn metrics_as(&self, token: Option<&str>) -> Metrics {
        MetricsServiceClient::with_interceptor(self.channel().await, Bearer(token.map(Into::into)))
    }

    /// A MetricsService client with the admin token.
    async fn metrics(&self) -> Metrics {
        self.metrics_as(Some(ADMIN)).await
    }

    /// A RolloutService client with the admin token.
    async fn rollouts(&self) -> Rollouts {
        RolloutServiceClient::with_interceptor(self.channel().await, Bearer(Some(ADMIN.into())))
    }

    /// A ReleaseService client with `token`.
    async fn releases_as(&self, token: Option<&str>) -> Releases {
        ReleaseServiceClient::with_interceptor(self.channel().await, Bearer(token.map(Into::into)))
    }

    /// A ReleaseService client with the admin token.
    async fn releases(&self) -> Releases {
        self.releases_as(Some(ADMIN)).await
    }
}

/// Connects to `addr` (host:port, plaintext).
pub async fn connect(addr: &str) -> Channel {
    Channel::from_shared(format!("http://{addr}"))
        .unwrap()
        .connect()
        .await
        .expect("connect")
}

impl Connect for Server {
    fn address(&self) -> String {
        self.grpc.clone()
    }

    fn http_address(&self) -> String {
        self.http.clone()
    }
}

impl Server {
    /// Starts a server on `data_dir` with extra `serve` arguments.
    pub fn start(data_dir: &Path, extra: &[&str]) -> Server {
        Self::start_on(data_dir, extra, "127.0.0.1:0", "127.0.0.1:0")
    }

    fn start_on(data_dir: &Path, extra: &[&str], grpc: &str, http: &str) -> Server {
        Self::spawn(data_dir, extra, grpc, http, &[], None)
    }

    /// `extra` with `--store` added when the suites run on PostgreSQL and the test chose no
    /// store itself (`--store`, `--in-memory`).
    fn with_store(data_dir: &Path, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = extra.iter().map(|s| s.to_string()).collect();
        let chosen = extra
            .iter()
            .any(|a| a.starts_with("--store") || *a == "--in-memory");
        if !chosen && let Some(url) = super::postgres::store_for(data_dir) {
            args.extend(["--store".to_owned(), url]);
        }
        args
    }

    /// Starts a server with extra environment variables (they win over the defaults, e.g.
    /// `RUST_LOG`), its stderr lines collected into `stderr` when given.
    pub fn start_env(
        data_dir: &Path,
        extra: &[&str],
        envs: &[(&str, &str)],
        stderr: Option<StderrLines>,
    ) -> Server {
        Self::spawn(data_dir, extra, "127.0.0.1:0", "127.0.0.1:0", envs, stderr)
    }

    fn spawn(
        data_dir: &Path,
        extra: &[&str],
        grpc: &str,
        http: &str,
        envs: &[(&str, &str)],
        stderr: Option<StderrLines>,
    ) -> Server {
        let extra = Self::with_store(data_dir, extra);
        let mut command = Command::new(flagwire_bin());
        command
            .args([
                "serve",
                "--listen",
                grpc,
                "--http-listen",
                http,
                "--data-dir",
            ])
            .arg(data_dir)
            .args(&extra)
            .env("FLAGWIRE_ADMIN_TOKEN", ADMIN)
            .env("RUST_LOG", "warn")
            .envs(envs.iter().copied())
            .stdout(Stdio::piped())
            .stderr(if stderr.is_some() {
                Stdio::piped()
            } else {
                Stdio::inherit()
            });
        let mut child = command.spawn().expect("spawn flagwire");
        if let (Some(lines), Some(pipe)) = (stderr, child.stderr.take()) {
            std::thread::spawn(move || {
                for line in BufReader::new(pipe).lines().map_while(Result::ok) {
                    eprintln!("{line}");
                    lines.lock().unwrap().push(line);
                }
            });
        }
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let line = loop {
            let line = lines
                .next()
                .expect("flagwire exited before listening")
                .unwrap();
            if line.starts_with("flagwire listening") {
                break line;
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        let field = |name: &str| {
            line.split_whitespace()
                .find_map(|w| w.strip_prefix(name))
                .unwrap()
                .to_owned()
        };
        Server {
            child,
            grpc: field("grpc="),
            http: field("http="),
            data_dir: data_dir.to_owned(),
            extra,
        }
    }

    /// The process id.
    #[allow(
        dead_code,
        reason = "the benches that include this file measure the process"
    )]
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Resident set size of the server process, in KiB.
    #[allow(
        dead_code,
        reason = "the benches that include this file measure the process"
    )]
    pub fn rss_kib(&self) -> u64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    /// Its exit status once it has exited by itself; `None` while it runs.
    pub fn exited(&mut self) -> Option<std::process::ExitStatus> {
        self.child.try_wait().unwrap()
    }

    /// SIGKILL, no chance to flush.
    pub fn kill9(&mut self) {
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }

    /// SIGTERM and wait; returns whether it exited successfully.
    pub fn terminate(&mut self) -> bool {
        Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status()
            .unwrap();
        self.child.wait().unwrap().success()
    }

    /// Starts the same data dir again on the same ports.
    pub fn restart(&self) -> Server {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        Self::start_on(&self.data_dir, &extra, &self.grpc, &self.http)
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Asserts the code of a failed call, returning its message.
pub fn code<T: std::fmt::Debug>(result: Result<T, Status>, expected: Code) -> String {
    match result {
        Ok(v) => panic!("expected {expected:?}, got success {v:?}"),
        Err(s) => {
            assert_eq!(s.code(), expected, "unexpected status: {s:?}");
            s.message().to_owned()
        }
    }
}

/// A boolean flag `key` with variants on/off, configured in `envs` (disabled, default on).
pub fn bool_flag(key: &str, envs: &[&str]) -> Flag {
    let variant = |k: &str, b: bool| Variant {
        key: k.into(),
        value: Some(FlagValue {
            kind: Some(flag_value::Kind::BoolValue(b)),
        }),
        description: String::new(),
    };
    Flag {
        key: key.into(),
        r#type: ValueType::Boolean as i32,
        variants: vec![variant("on", true), variant("off", false)],
        environments: envs
            .iter()
            .map(|e| {
                (
                    e.to_string(),
                    FlagConfig {
                        enabled: false,
                        off_variant: "off".into(),
                        default_rule: Some(Serve {
                            kind: Some(serve::Kind::Variant("on".into())),
                        }),
                        ..Default::default()
                    },
                )
            })
            .collect(),
        ..Default::default()
    }
}

/// Creates environment `key`.
pub async fn create_env(admin: &mut Admin, key: &str) -> Environment {
    admin
        .create_environment(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: key.into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .environment
        .unwrap()
}

/// Creates a flag.
pub async fn create_flag(admin: &mut Admin, flag: Flag) -> Flag {
    admin
        .create_flag(CreateFlagRequest {
            flag: Some(flag),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

/// Creates a token and returns its secret.
pub async fn create_token(admin: &mut Admin, name: &str, role: Role, env: &str) -> String {
    admin
        .create_api_token(CreateApiTokenRequest {
            name: name.into(),
            role: role as i32,
            environment: env.into(),
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .secret
}

/// Toggles a flag in an environment.
pub async fn set_enabled(admin: &mut Admin, key: &str, env: &str, enabled: bool) -> Flag {
    admin
        .set_flag_enabled(SetFlagEnabledRequest {
            force: false,
            key: key.into(),
            environment: env.into(),
            enabled,
            expected_version: 0,
            reason: String::new(),
        })
        .await
        .unwrap()
        .into_inner()
        .flag
        .unwrap()
}

/// Opens a Watch stream.
pub async fn watch(flags: &mut Flags, env: &str, since: u64) -> tonic::Streaming<WatchResponse> {
    flags
        .watch(WatchRequest {
            environment: env.into(),
            since_revision: since,
            ..Default::default()
        })
        .await
        .unwrap()
        .into_inner()
}

/// The next message of a stream, within 10 seconds.
pub async fn next(stream: &mut tonic::Streaming<WatchResponse>) -> watch_response::Event {
    tokio::time::timeout(Duration::from_secs(10), stream.message())
        .await
        .expect("no Watch message within 10 s")
        .expect("stream error")
        .expect("stream ended")
        .event
        .unwrap()
}

/// Runs `flagwire serve` on `data_dir` (free ports, the suites' admin token) with `args`, which
/// must fail at start, before it listens; returns its stderr.
pub fn failed_start(data_dir: &Path, args: &[&str]) -> String {
    let output = Command::new(flagwire_bin())
        .args([
            "serve",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
            "--data-dir",
        ])
        .arg(data_dir)
        .args(args)
        .env("FLAGWIRE_ADMIN_TOKEN", ADMIN)
        .env("RUST_BACKTRACE", "0")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(!output.status.success(), "started with {args:?}: {stderr}");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(!stdout.contains("flagwire listening"), "{stdout}");
    stderr
}

/// A fresh temporary directory.
pub fn tempdir() -> tempfile::TempDir {
    tempfile::tempdir().unwrap()
}
