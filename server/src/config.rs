//! Command line and environment configuration.

use crate::releases::prometheus::PrometheusAuth;
use clap::{Parser, Subcommand, ValueEnum};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flagwire: feature flags and canary releases, pushed to SDKs in milliseconds.
#[derive(Debug, Parser)]
#[command(name = "flagwire", version, about)]
pub struct Cli {
    /// What to do; `serve` when omitted.
    #[command(subcommand)]
    pub command: Option<Command>,
    /// Serve options (also accepted without the `serve` word).
    #[command(flatten)]
    pub serve: ServeArgs,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve(ServeArgs),
    /// The admin CLI (see [`crate::cli`]).
    #[command(flatten)]
    Client(crate::cli::ClientCommand),
}

/// Log line format.
#[derive(Debug, Clone, Copy, ValueEnum, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// Options of `flagwire serve`.
#[derive(Debug, Clone, clap::Args)]
pub struct ServeArgs {
    /// Address for gRPC and gRPC-web (one port).
    #[arg(long, env = "FLAGWIRE_LISTEN", default_value = "127.0.0.1:7070")]
    pub listen: SocketAddr,
    /// Address for plain HTTP (`/healthz`, `/metrics`, OFREP).
    #[arg(long, env = "FLAGWIRE_HTTP_LISTEN", default_value = "127.0.0.1:7071")]
    pub http_listen: SocketAddr,
    /// Directory of the embedded store; created if missing.
    #[arg(long, env = "FLAGWIRE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Use a throwaway in-memory store instead of the data directory (tests and demos).
    #[arg(
        long,
        env = "FLAGWIRE_IN_MEMORY",
        value_parser = clap::builder::BoolishValueParser::new(),
        action = clap::ArgAction::SetTrue
    )]
    pub in_memory: bool,
    /// Where the catalog is stored: `sled` (the default: embedded, in `--data-dir`) or
    /// `postgres://USER[:PASSWORD]@HOST:PORT/DB[?sslmode=MODE&sslrootcert=CA.pem]`, a database
    /// several replicas share (libpq's sslmode meanings). `--in-memory` wins.
    #[arg(long, env = "FLAGWIRE_STORE", default_value = "sled")]
    pub store: String,
    /// Seconds a PostgreSQL store keeps its log of committed batches, which the replicas follow
    /// (the leader trims older ones). A replica cut off from the database for longer cannot
    /// catch up: it stops, saying so, for its supervisor to start it again.
    #[arg(
        long,
        env = "FLAGWIRE_STORE_LOG_RETENTION_SECS",
        default_value_t = 604_800.0,
        value_parser = log_retention_secs
    )]
    pub store_log_retention_secs: f64,
    /// A flags-as-code file (YAML or JSON, as `flagwire export` writes it) applied at first
    /// start, while the store holds no environments, flags, segments or rollouts; ignored once
    /// it does.
    #[arg(long, env = "FLAGWIRE_BOOTSTRAP", value_name = "FILE")]
    pub bootstrap: Option<PathBuf>,
    /// Answer flagd calls (`flagd.evaluation.*`, `flagd.sync.v1`) that carry no token as an sdk
    /// token of this environment would. flagd itself has no authentication, and some flagd
    /// providers cannot send an `authorization` header; off by default, so such calls are
    /// refused with UNAUTHENTICATED. Anyone who reaches the gRPC port can then read this
    /// environment's flags: bind it to a private network.
    #[arg(long, env = "FLAGWIRE_FLAGD_ENVIRONMENT", value_name = "ENV")]
    pub flagd_environment: Option<String>,
    /// Seconds between heartbeats on an idle Watch stream.
    #[arg(long, env = "FLAGWIRE_HEARTBEAT_SECS", default_value_t = 15.0)]
    pub heartbeat_secs: f64,
    /// OFREP requests per second each sdk token may make (bursts of as many); past it the
    /// OFREP endpoints answer 429 with `Retry-After`. 0 disables the limit.
    #[arg(long, env = "FLAGWIRE_OFREP_RATE_LIMIT", default_value_t = crate::ofrep::OfrepOptions::DEFAULT_PER_SECOND)]
    pub ofrep_rate_limit: u32,
    /// Change-log entries kept per environment, for clients resuming with `since_revision`.
    #[arg(long, env = "FLAGWIRE_CHANGE_LOG_RETENTION", default_value_t = 10_000)]
    pub change_log_retention: u64,
    /// Changes buffered per environment for each watcher before it must resynchronise from a
    /// snapshot.
    #[arg(long, env = "FLAGWIRE_WATCH_BUFFER", default_value_t = 1024)]
    pub watch_buffer: usize,
    /// Seconds shutdown waits for open connections before closing them.
    #[arg(long, env = "FLAGWIRE_SHUTDOWN_GRACE_SECS", default_value_t = 10.0)]
    pub shutdown_grace_secs: f64,
    /// Seconds usage metrics (and SDK instances neither connected nor heard from) are kept
    /// in memory.
    #[arg(
        long,
        env = "FLAGWIRE_METRICS_RETENTION_SECS",
        default_value_t = 86_400.0
    )]
    pub metrics_retention_secs: f64,
    /// Metric reports whose window ended more than this many seconds ago are dropped as late.
    #[arg(long, env = "FLAGWIRE_REPORT_WATERMARK_SECS", default_value_t = 600.0)]
    pub report_watermark_secs: f64,
    /// Closed judging windows kept per rollout; older ones are merged pairwise.
    #[arg(long, env = "FLAGWIRE_ROLLOUT_MAX_WINDOWS", default_value_t = 4096)]
    pub rollout_max_windows: usize,
    /// Seconds the windows of a finished rollout are kept (its record and log stay).
    #[arg(
        long,
        env = "FLAGWIRE_ROLLOUT_RETENTION_SECS",
        default_value_t = 604_800.0
    )]
    pub rollout_retention_secs: f64,
    /// Prometheus to evaluate releases' Prometheus gates against, e.g. `http://prometheus:9090`.
    #[arg(long, env = "FLAGWIRE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// Seconds a Prometheus gate's query may take before it counts as failed.
    #[arg(long, env = "FLAGWIRE_PROMETHEUS_TIMEOUT_SECS", default_value_t = 5.0)]
    pub prometheus_timeout_secs: f64,
    /// A file holding a bearer token sent to Prometheus (`Authorization: Bearer …`), read again
    /// at every query so that a rotated token is picked up.
    #[arg(
        long,
        env = "FLAGWIRE_PROMETHEUS_BEARER_TOKEN_FILE",
        value_name = "FILE",
        requires = "prometheus_url",
        conflicts_with = "prometheus_basic_auth_user"
    )]
    pub prometheus_bearer_token_file: Option<PathBuf>,
    /// The user of HTTP basic auth to Prometheus; the password is in
    /// `--prometheus-password-file`.
    #[arg(
        long,
        env = "FLAGWIRE_PROMETHEUS_BASIC_AUTH_USER",
        value_name = "USER",
        requires_all = ["prometheus_url", "prometheus_password_file"]
    )]
    pub prometheus_basic_auth_user: Option<String>,
    /// A file holding the password of `--prometheus-basic-auth-user`, read again at every query.
    #[arg(
        long,
        env = "FLAGWIRE_PROMETHEUS_PASSWORD_FILE",
        value_name = "FILE",
        requires = "prometheus_basic_auth_user"
    )]
    pub prometheus_password_file: Option<PathBuf>,
    /// Log format.
    #[arg(long, env = "FLAGWIRE_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// Admin token to create on first start instead of a random one (nothing is printed or
    /// written then).
    #[arg(
        long = "admin-token",
        env = "FLAGWIRE_ADMIN_TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// PEM certificate chain (leaf first) to serve both ports over TLS; needs `--tls-key`.
    #[arg(long, env = "FLAGWIRE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    /// PEM private key of `--tls-cert`.
    #[arg(long, env = "FLAGWIRE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
}

/// `--store-log-retention-secs`: at least a minute, far above what a follower under load lags
/// (a second or two) and the writer lock's 10 s wait, since a follower the trim passes stops;
/// at most ten years, which PostgreSQL's intervals and a `Duration` both hold.
fn log_retention_secs(value: &str) -> Result<f64, String> {
    const TEN_YEARS: f64 = 10.0 * 365.0 * 86_400.0;
    match value.parse::<f64>() {
        Ok(secs) if (60.0..=TEN_YEARS).contains(&secs) => Ok(secs),
        Ok(_) => Err("must be a number of seconds from 60 to 315360000 (ten years)".into()),
        Err(e) => Err(format!("not a number of seconds: {e}")),
    }
}

impl ServeArgs {
    /// The Prometheus credentials the flags name (clap has already checked that they go
    /// together).
    pub fn prometheus_auth(&self) -> PrometheusAuth {
        match (
            &self.prometheus_bearer_token_file,
            &self.prometheus_basic_auth_user,
            &self.prometheus_password_file,
        ) {
            (Some(file), _, _) => PrometheusAuth::BearerFile(file.clone()),
            (None, Some(user), Some(file)) => PrometheusAuth::Basic {
                user: user.clone(),
                password_file: file.clone(),
            },
            _ => PrometheusAuth::None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn serve(args: &[&str]) -> ServeArgs {
        let argv = ["flagwire", "serve"].iter().chain(args);
        match Cli::try_parse_from(argv).unwrap().command {
            Some(Command::Serve(args)) => args,
            _ => unreachable!("serve parses as serve"),
        }
    }

    #[test]
    fn prometheus_credentials_come_from_their_flags() {
        let url = ["--prometheus-url", "http://prometheus:9090"];
        assert_eq!(serve(&url).prometheus_auth(), PrometheusAuth::None);
        let bearer = serve(&[&url[..], &["--prometheus-bearer-token-file", "/run/token"]].concat());
        assert_eq!(
            bearer.prometheus_auth(),
            PrometheusAuth::BearerFile("/run/token".into())
        );
        let basic = serve(
            &[
                &url[..],
                &["--prometheus-basic-auth-user", "fw"],
                &["--prometheus-password-file", "/run/pw"],
            ]
            .concat(),
        );
        assert_eq!(
            basic.prometheus_auth(),
            PrometheusAuth::Basic {
                user: "fw".into(),
                password_file: "/run/pw".into(),
            }
        );
    }
}
