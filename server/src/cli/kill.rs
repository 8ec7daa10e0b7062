//! The kill switch (`kill`, `undo-kill`) and how an execution (of a kill or a rollback plan)
//! is printed.

use super::client::Connect;
use super::output;
use super::{Failure, Outcome};
use flagwire_proto::v1::{Execution, ExecutionState, KillRequest, Scope, UndoKillRequest, scope};

/// Options of `kill`. Name exactly one of `--flag`, `--tag`, `--release`, `--rollout`, `--all`,
/// or only `--env` to kill every flag of that environment.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").args(["flag", "tag", "release", "rollout", "all"])))]
pub struct KillArgs {
    /// One flag.
    #[arg(long)]
    pub flag: Option<String>,
    /// Every flag carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// Every flag of this release (which then rolls back).
    #[arg(long)]
    pub release: Option<String>,
    /// The flag of this rollout (which then rolls back).
    #[arg(long)]
    pub rollout: Option<String>,
    /// Every flag.
    #[arg(long)]
    pub all: bool,
    /// Only in this environment (alone: every flag of this environment).
    #[arg(long)]
    pub env: Option<String>,
    /// Why (required: it is the first thing people ask afterwards).
    #[arg(long)]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `undo-kill`.
#[derive(Debug, clap::Args)]
pub struct UndoKillArgs {
    /// The kill's execution id (`kill` prints it).
    pub execution_id: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

fn scope_of(a: &KillArgs) -> Result<Scope, Failure> {
    let kind = match (&a.flag, &a.tag, (&a.release, &a.rollout), a.all) {
        (Some(f), _, _, _) => scope::Kind::FlagKey(f.clone()),
        (_, Some(t), _, _) => scope::Kind::Tag(t.clone()),
        (_, _, (Some(r), _), _) => scope::Kind::ReleaseId(r.clone()),
        (_, _, (_, Some(r)), _) => scope::Kind::RolloutId(r.clone()),
        (_, _, _, true) => scope::Kind::SystemWide(true),
        _ if a.env.is_some() => scope::Kind::SystemWide(true),
        _ => {
            return Err(Failure::Usage(
                "kill: name what to turn off: --flag KEY, --tag TAG, --release ID, --rollout ID, \
                 --env ENV or --all"
                    .into(),
            ));
        }
    };
    if a.reason.trim().is_empty() {
        return Err(Failure::Usage("kill: --reason must not be empty".into()));
    }
    Ok(Scope {
        kind: Some(kind),
        environment: a.env.clone().unwrap_or_default(),
    })
}

/// An execution's state without its prefix, e.g. `SUCCEEDED`.
pub fn execution_state(e: &Execution) -> String {
    let s = ExecutionState::try_from(e.state).unwrap_or(ExecutionState::Unspecified);
    output::enum_name(s.as_str_name(), "EXECUTION_STATE_")
}

/// Prints an execution: its state, the flags a kill saved, and the steps that failed.
pub fn print_execution(e: &Execution) {
    output::line(&format!("execution {}: {}", e.id, execution_state(e)));
    let flags: Vec<String> = e.previous.iter().map(|f| f.key.clone()).collect();
    if !flags.is_empty() {
        output::line(&format!("flags:     {}", flags.join(", ")));
    }
    for s in e.steps.iter().filter(|s| !s.ok) {
        output::line(&format!("failed:    step {}: {}", s.index, s.detail));
    }
}

/// `kill`.
pub async fn kill(a: KillArgs) -> Outcome {
    let scope = scope_of(&a)?;
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .kill(KillRequest {
            scope: Some(scope),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let e = response.execution.unwrap_or_default();
    print_execution(&e);
    output::line(&format!("undo with: flagwire undo-kill {}", e.id));
    Ok(())
}

/// `undo-kill`.
pub async fn undo_kill(a: UndoKillArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .undo_kill(UndoKillRequest {
            execution_id: a.execution_id,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    print_execution(&response.execution.unwrap_or_default());
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cmd {
        #[command(flatten)]
        kill: KillArgs,
    }

    fn parse(args: &[&str]) -> Result<Scope, String> {
        let cmd = Cmd::try_parse_from(std::iter::once("kill").chain(args.iter().copied()))
            .map_err(|e| e.kind().to_string())?;
        scope_of(&cmd.kill).map_err(|e| e.message())
    }

    #[test]
    fn the_scope_is_one_thing_optionally_in_one_environment() {
        let s = parse(&["--flag", "f", "--env", "prod", "--reason", "r"]).unwrap();
        assert_eq!(s.kind, Some(scope::Kind::FlagKey("f".into())));
        assert_eq!(s.environment, "prod");
        let s = parse(&["--env", "prod", "--reason", "r"]).unwrap();
        assert_eq!(s.kind, Some(scope::Kind::SystemWide(true)));
        assert!(parse(&["--reason", "r"]).unwrap_err().contains("name what"));
        assert!(parse(&["--flag", "f", "--all", "--reason", "r"]).is_err());
        assert!(parse(&["--flag", "f"]).is_err(), "--reason is required");
    }
}
