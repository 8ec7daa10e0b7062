//! `rollout list`, `rollout status`, `kill`, `undo-kill`.

use super::client::Connect;
use super::output::{self, Table};
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    DecisionKind, Execution, ExecutionState, GetRolloutRequest, GetRolloutResponse, KillRequest,
    ListRolloutsRequest, Rollout, RolloutState, Scope, UndoKillRequest, scope,
};

/// `flagwire rollout ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// List rollouts, newest first.
    List(ListArgs),
    /// Show a rollout: state, step, latest decision and its evidence.
    Status(StatusArgs),
}

/// Options of `rollout list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this environment.
    #[arg(long, default_value = "")]
    pub env: String,
    /// Only this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `rollout status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The rollout id.
    pub id: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `kill`. Name exactly one of `--flag`, `--tag`, `--rollout`, `--all`, or only
/// `--env` to kill every flag of that environment.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("what").args(["flag", "tag", "rollout", "all"])))]
pub struct KillArgs {
    /// One flag.
    #[arg(long)]
    pub flag: Option<String>,
    /// Every flag carrying this tag.
    #[arg(long)]
    pub tag: Option<String>,
    /// The flag of this rollout.
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

/// Runs `rollout list` or `rollout status`.
pub async fn run(command: RolloutCommand) -> Outcome {
    match command {
        RolloutCommand::List(a) => list(a).await,
        RolloutCommand::Status(a) => status(a).await,
    }
}

fn state(r: &Rollout) -> String {
    let s = RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified);
    s.as_str_name()
        .trim_start_matches("ROLLOUT_STATE_")
        .to_owned()
}

/// `2/4 (5%)`: the current step of all, and its canary share.
fn step(r: &Rollout) -> String {
    let bp = r
        .steps
        .get(r.current_step as usize)
        .map_or(0, |s| s.basis_points);
    format!(
        "{}/{} ({}%)",
        r.current_step + 1,
        r.steps.len(),
        output::round(f64::from(bp) / 100.0)
    )
}

async fn list(a: ListArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let rollouts = client
        .list_rollouts(ListRolloutsRequest {
            environment: a.env,
            flag_key: a.flag,
        })
        .await?
        .into_inner();
    if a.connect.json {
        output::json(&rollouts);
        return Ok(());
    }
    let mut t = Table::new(&["ID", "FLAG", "ENVIRONMENT", "STATE", "STEP", "CREATED"]);
    for r in &rollouts.rollouts {
        t.row(vec![
            r.id.clone(),
            r.flag_key.clone(),
            r.environment.clone(),
            state(r),
            step(r),
            output::time(r.create_time.as_ref()),
        ]);
    }
    t.print();
    Ok(())
}

async fn status(a: StatusArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let r = client
        .get_rollout(GetRolloutRequest {
            id: a.id,
            window_limit: 0,
        })
        .await?
        .into_inner()
        .rollout
        .unwrap_or_default();
    if a.connect.json {
        output::json(&GetRolloutResponse { rollout: Some(r) });
        return Ok(());
    }
    output::emit(&describe(&r));
    Ok(())
}

fn describe(r: &Rollout) -> String {
    let mut text = format!(
        "id:        {}\nflag:      {} in {}\nvariants:  {} (treatment) against {} (baseline)\n\
         state:     {}\nstep:      {}\nstarted:   {}\n",
        r.id,
        r.flag_key,
        r.environment,
        r.treatment_variant,
        r.baseline_variant,
        state(r),
        step(r),
        output::time(r.start_time.as_ref()),
    );
    if r.end_time.is_some() {
        text += &format!("ended:     {}\n", output::time(r.end_time.as_ref()));
    }
    if let Some(ack) = &r.acknowledgement
        && ack.revision > 0
    {
        text += &format!(
            "applied:   {} of {} connected instances at revision {}\n",
            ack.acknowledged, ack.connected, ack.revision
        );
    }
    let Some(d) = &r.latest_decision else {
        return text;
    };
    let kind = DecisionKind::try_from(d.kind).unwrap_or(DecisionKind::Unspecified);
    text += &format!(
        "decision:  {} {} by {} at {}\n",
        kind.as_str_name().trim_start_matches("DECISION_KIND_"),
        d.reason_code,
        d.actor,
        output::time(d.time.as_ref()),
    );
    if !d.detail.is_empty() {
        text += &format!("detail:    {}\n", d.detail);
    }
    if d.cohorts.is_empty() {
        return text;
    }
    let mut t = Table::new(&[
        "COHORT",
        "OUTCOMES",
        "ERRORS",
        "ERROR RATE",
        "P95 MS",
        "P99 MS",
    ]);
    for c in &d.cohorts {
        t.row(vec![
            c.cohort.clone(),
            c.n.to_string(),
            c.errors.to_string(),
            format!("{}%", output::round(c.error_rate * 100.0)),
            output::round(c.p95_us / 1000.0),
            output::round(c.p99_us / 1000.0),
        ]);
    }
    text + "\n" + &t.render()
}

fn scope_of(a: &KillArgs) -> Result<Scope, Failure> {
    let kind = match (&a.flag, &a.tag, &a.rollout, a.all) {
        (Some(f), _, _, _) => scope::Kind::FlagKey(f.clone()),
        (_, Some(t), _, _) => scope::Kind::Tag(t.clone()),
        (_, _, Some(r), _) => scope::Kind::RolloutId(r.clone()),
        (_, _, _, true) => scope::Kind::SystemWide(true),
        _ if a.env.is_some() => scope::Kind::SystemWide(true),
        _ => {
            return Err(Failure::Usage(
                "kill: name what to turn off: --flag KEY, --tag TAG, --rollout ID, --env ENV \
                 or --all"
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

fn execution_state(e: &Execution) -> String {
    let s = ExecutionState::try_from(e.state).unwrap_or(ExecutionState::Unspecified);
    s.as_str_name()
        .trim_start_matches("EXECUTION_STATE_")
        .to_owned()
}

fn print_execution(e: &Execution) {
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
    if a.connect.json {
        output::json(&response);
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
    if a.connect.json {
        output::json(&response);
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
