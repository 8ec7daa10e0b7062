//! The admin CLI: `flagwire` subcommands that talk to a running server over gRPC with the token
//! in `FLAGWIRE_TOKEN`, printing tables for people and, with `--output json|yaml` (`-o`), the
//! protobuf JSON mapping (what grpcurl prints) for scripts. `restore` and `completions` are the
//! exceptions: they work offline.
//!
//! Exit codes: 0 success, 1 a local failure (a file that cannot be read, parsed or typed), 2 a
//! usage error (bad arguments, no `FLAGWIRE_TOKEN`), 3 the server refused the request (the gRPC
//! code and message are printed), 4 the server cannot be reached.
//!
//! # Layout
//! - [`client`]: endpoint, token, TLS and the gRPC clients; [`output`]: tables, JSON, YAML;
//!   [`parse`]: argument values; [`files`]: definitions given with `-f FILE`.
//! - [`env`]: `env ...`; [`segments`]: `segments ...`; [`tokens`]: `tokens ...`.
//! - [`flags`]: `flags list|get` and the command list; [`flag_edit`]: `flags create|update`;
//!   [`flag_versions`]: `flags archive|unarchive|delete|history|revert`; [`toggles`]:
//!   `set-variant`, `enable`, `disable`.
//! - [`rollouts`]: `rollout create|start|pause|resume|promote|rollback|list`;
//!   [`rollout_status`]: `rollout status [--watch]`; [`kill`]: `kill`, `undo-kill`.
//! - [`releases`]: `release create|start|approve|pause|resume|promote|rollback|list`;
//!   [`release_status`]: `release status [--watch]`.
//! - [`plans`]: `plans ...`; [`schedule`]: `schedule ...`; [`ramps`]: `ramp ...`;
//!   [`usage`]: `usage`, `instances`; [`metrics`]: `metrics define|list|delete`; [`audit`]:
//!   `audit`.
//! - [`bundle`]: `export`, `import`; [`dotenv`], [`from_env`], [`env_import`]:
//!   `import --from-env`; [`backup`]: `backup`, `restore`; [`completions`]: `completions`.

pub mod audit;
pub mod backup;
pub mod bundle;
pub mod client;
pub mod completions;
pub mod dotenv;
pub mod env;
pub mod env_import;
pub mod files;
pub mod flag_edit;
pub mod flag_versions;
pub mod flags;
pub mod from_env;
pub mod kill;
pub mod metrics;
pub mod output;
pub mod parse;
pub mod plans;
pub mod ramps;
pub mod release_status;
pub mod releases;
pub mod rollout_status;
pub mod rollouts;
pub mod schedule;
pub mod segments;
pub mod toggles;
pub mod tokens;
pub mod usage;

use clap::Subcommand;
use std::io::Write;
use tonic::{Code, Status};

/// The client subcommands (everything but `serve`).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Environments: create, list, get, delete.
    #[command(subcommand, alias = "environments")]
    Env(env::EnvCommand),
    /// Flags: list, get, create, update, archive, unarchive, delete, history, revert.
    #[command(subcommand, alias = "flag")]
    Flags(flags::FlagsCommand),
    /// Serve one variant by default in an environment (rewrites the default rule).
    SetVariant(toggles::SetVariantArgs),
    /// Turn a flag on in an environment.
    Enable(toggles::ToggleArgs),
    /// Turn a flag off in an environment (it serves its off variant).
    Disable(toggles::ToggleArgs),
    /// Segments of an environment: create, update, list, get, delete.
    #[command(subcommand, alias = "segment")]
    Segments(segments::SegmentsCommand),
    /// API tokens: create (the secret is printed once), list, revoke.
    #[command(subcommand, alias = "token")]
    Tokens(tokens::TokensCommand),
    /// The kill switch: serve the off variant for a flag, a tag, a rollout's flag, an
    /// environment or everything.
    Kill(kill::KillArgs),
    /// Restore exactly what a kill replaced.
    UndoKill(kill::UndoKillArgs),
    /// Canary rollouts: create, start, pause, resume, promote, rollback, list, status.
    #[command(subcommand, alias = "rollouts")]
    Rollout(rollouts::RolloutCommand),
    /// Releases of several flags through stages: create, start, approve, pause, resume,
    /// promote, rollback (whole or one flag), list, status.
    #[command(subcommand, alias = "releases")]
    Release(releases::ReleaseCommand),
    /// Rollback plans and their executions: create, list, execute, status, cancel.
    #[command(subcommand, alias = "plan")]
    Plans(plans::PlansCommand),
    /// Flag changes applied at a time: create, list, cancel.
    #[command(subcommand)]
    Schedule(schedule::ScheduleCommand),
    /// Time-based gradual rollouts: create, list, pause, resume, rollback.
    #[command(subcommand, alias = "ramps")]
    Ramp(ramps::RampCommand),
    /// Evaluations, outcomes and latency per flag and variant, as the SDKs reported them.
    Usage(usage::UsageArgs),
    /// The team's own metrics an environment defines (what release gates may name): define,
    /// list, delete.
    #[command(subcommand, alias = "metric")]
    Metrics(metrics::MetricsCommand),
    /// The SDK instances the server knows and the revision each has applied.
    Instances(usage::InstancesArgs),
    /// Show the audit log, newest first.
    Audit(audit::AuditArgs),
    /// Write environments, flags, segments and rollout definitions as YAML or JSON.
    Export(bundle::ExportArgs),
    /// Apply a file written by `export` (all or nothing; `--dry-run` shows the changes), or
    /// make flags of a `.env` file's variables (`--from-env`).
    Import(bundle::ImportArgs),
    /// Write a consistent snapshot of the running server's whole store to a file.
    Backup(backup::BackupArgs),
    /// Load a backup into an empty data directory (offline).
    Restore(backup::RestoreArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(completions::CompletionsArgs),
}

/// Why a command failed; decides the message and the exit code.
#[derive(Debug)]
pub enum Failure {
    /// Bad arguments or environment (exit 2).
    Usage(String),
    /// A local problem: a file, a parse error (exit 1).
    Local(anyhow::Error),
    /// The server answered with an error (exit 3; 4 for UNAVAILABLE).
    Server(Status),
    /// The server could not be reached (exit 4).
    Unreachable(String),
}

impl From<Status> for Failure {
    fn from(s: Status) -> Self {
        Failure::Server(s)
    }
}

impl From<anyhow::Error> for Failure {
    fn from(e: anyhow::Error) -> Self {
        Failure::Local(e)
    }
}

impl From<std::io::Error> for Failure {
    fn from(e: std::io::Error) -> Self {
        Failure::Local(e.into())
    }
}

/// What a command returns.
pub type Outcome = Result<(), Failure>;

/// The canonical name of a gRPC code, as grpcurl and the gRPC docs spell it.
pub fn code_name(code: Code) -> &'static str {
    match code {
        Code::Ok => "OK",
        Code::Cancelled => "CANCELLED",
        Code::Unknown => "UNKNOWN",
        Code::InvalidArgument => "INVALID_ARGUMENT",
        Code::DeadlineExceeded => "DEADLINE_EXCEEDED",
        Code::NotFound => "NOT_FOUND",
        Code::AlreadyExists => "ALREADY_EXISTS",
        Code::PermissionDenied => "PERMISSION_DENIED",
        Code::ResourceExhausted => "RESOURCE_EXHAUSTED",
        Code::FailedPrecondition => "FAILED_PRECONDITION",
        Code::Aborted => "ABORTED",
        Code::OutOfRange => "OUT_OF_RANGE",
        Code::Unimplemented => "UNIMPLEMENTED",
        Code::Internal => "INTERNAL",
        Code::Unavailable => "UNAVAILABLE",
        Code::DataLoss => "DATA_LOSS",
        Code::Unauthenticated => "UNAUTHENTICATED",
    }
}

impl Failure {
    /// The process exit code.
    pub fn exit_code(&self) -> i32 {
        match self {
            Failure::Local(_) => 1,
            Failure::Usage(_) => 2,
            Failure::Server(s) if s.code() == Code::Unavailable => 4,
            Failure::Server(_) => 3,
            Failure::Unreachable(_) => 4,
        }
    }

    /// The line printed on stderr.
    pub fn message(&self) -> String {
        match self {
            Failure::Usage(m) | Failure::Unreachable(m) => m.clone(),
            Failure::Local(e) => format!("{e:#}"),
            Failure::Server(s) => format!("{}: {}", code_name(s.code()), s.message()),
        }
    }
}

async fn dispatch(command: ClientCommand, app: fn() -> clap::Command) -> Outcome {
    match command {
        ClientCommand::Env(c) => env::run(c).await,
        ClientCommand::Flags(c) => flags::run(c).await,
        ClientCommand::SetVariant(a) => toggles::set_variant(a).await,
        ClientCommand::Enable(a) => toggles::toggle(a, true).await,
        ClientCommand::Disable(a) => toggles::toggle(a, false).await,
        ClientCommand::Segments(c) => segments::run(c).await,
        ClientCommand::Tokens(c) => tokens::run(c).await,
        ClientCommand::Kill(a) => kill::kill(a).await,
        ClientCommand::UndoKill(a) => kill::undo_kill(a).await,
        ClientCommand::Rollout(c) => rollouts::run(c).await,
        ClientCommand::Release(c) => releases::run(c).await,
        ClientCommand::Plans(c) => plans::run(c).await,
        ClientCommand::Schedule(c) => schedule::run(c).await,
        ClientCommand::Ramp(c) => ramps::run(c).await,
        ClientCommand::Usage(a) => usage::usage(a).await,
        ClientCommand::Metrics(c) => metrics::run(c).await,
        ClientCommand::Instances(a) => usage::instances(a).await,
        ClientCommand::Audit(a) => audit::run(a).await,
        ClientCommand::Export(a) => bundle::export(a).await,
        ClientCommand::Import(a) => bundle::import(a).await,
        ClientCommand::Backup(a) => backup::backup(a).await,
        ClientCommand::Restore(a) => backup::restore(a),
        ClientCommand::Completions(a) => completions::print(a, app()),
    }
}

/// Runs a client command; prints any failure on stderr and returns the exit code. `app` builds
/// the whole `flagwire` command (for `completions`; passed in because the command line is
/// defined in [`crate::config`], which depends on this module).
pub async fn run(command: ClientCommand, app: fn() -> clap::Command) -> i32 {
    let outcome = dispatch(command, app).await;
    let _ = std::io::stdout().flush();
    match outcome {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("flagwire: {}", failure.message());
            failure.exit_code()
        }
    }
}
