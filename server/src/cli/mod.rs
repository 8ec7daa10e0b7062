//! The admin CLI: `flagwire` subcommands that talk to a running server over gRPC with the token
//! in `FLAGWIRE_TOKEN`, printing tables for people and, with `--json`, the protobuf JSON
//! mapping (what grpcurl prints) for scripts. `restore` is the exception: it works offline on a
//! data directory.
//!
//! Exit codes: 0 success, 1 a local failure (a file that cannot be read or parsed), 2 a usage
//! error (bad arguments, no `FLAGWIRE_TOKEN`), 3 the server refused the request (the gRPC code
//! and message are printed), 4 the server cannot be reached.
//!
//! - [`client`]: endpoint, token and the gRPC clients; [`output`]: tables, JSON and errors.
//! - [`flags`]: `flags list|get`, `set-variant`, `enable`, `disable`.
//! - [`rollouts`]: `rollout list|status`, `kill`, `undo-kill`; [`audit`]: `audit`.
//! - [`bundle`]: `export`, `import`; [`backup`]: `backup`, `restore`.

pub mod audit;
pub mod backup;
pub mod bundle;
pub mod client;
pub mod flags;
pub mod output;
pub mod rollouts;

use clap::Subcommand;
use std::io::Write;
use tonic::{Code, Status};

/// The client subcommands (everything but `serve`).
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// List flags or show one.
    #[command(subcommand)]
    Flags(flags::FlagsCommand),
    /// Serve one variant by default in an environment (rewrites the default rule).
    SetVariant(flags::SetVariantArgs),
    /// Turn a flag on in an environment.
    Enable(flags::ToggleArgs),
    /// Turn a flag off in an environment (it serves its off variant).
    Disable(flags::ToggleArgs),
    /// The kill switch: serve the off variant for a flag, a tag, a rollout's flag, an
    /// environment or everything.
    Kill(rollouts::KillArgs),
    /// Restore exactly what a kill replaced.
    UndoKill(rollouts::UndoKillArgs),
    /// List canary rollouts or show one's status.
    #[command(subcommand)]
    Rollout(rollouts::RolloutCommand),
    /// Show the audit log, newest first.
    Audit(audit::AuditArgs),
    /// Write environments, flags, segments and rollout definitions as YAML or JSON.
    Export(bundle::ExportArgs),
    /// Apply a file written by `export` (all or nothing; `--dry-run` shows the changes).
    Import(bundle::ImportArgs),
    /// Write a consistent snapshot of the running server's whole store to a file.
    Backup(backup::BackupArgs),
    /// Load a backup into an empty data directory (offline).
    Restore(backup::RestoreArgs),
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

async fn dispatch(command: ClientCommand) -> Outcome {
    match command {
        ClientCommand::Flags(c) => flags::run(c).await,
        ClientCommand::SetVariant(a) => flags::set_variant(a).await,
        ClientCommand::Enable(a) => flags::toggle(a, true).await,
        ClientCommand::Disable(a) => flags::toggle(a, false).await,
        ClientCommand::Kill(a) => rollouts::kill(a).await,
        ClientCommand::UndoKill(a) => rollouts::undo_kill(a).await,
        ClientCommand::Rollout(c) => rollouts::run(c).await,
        ClientCommand::Audit(a) => audit::run(a).await,
        ClientCommand::Export(a) => bundle::export(a).await,
        ClientCommand::Import(a) => bundle::import(a).await,
        ClientCommand::Backup(a) => backup::backup(a).await,
        ClientCommand::Restore(a) => backup::restore(a),
    }
}

/// Runs a client command; prints any failure on stderr and returns the exit code.
pub async fn run(command: ClientCommand) -> i32 {
    let outcome = dispatch(command).await;
    let _ = std::io::stdout().flush();
    match outcome {
        Ok(()) => 0,
        Err(failure) => {
            eprintln!("flagwire: {}", failure.message());
            failure.exit_code()
        }
    }
}
