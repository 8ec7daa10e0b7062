//! `plans create|list|execute|status|cancel`: named rollback plans and their executions.
//! A plan is written as a file (`-f`, a rollback plan as in an exported bundle: `name`,
//! `description`, `scope`, `steps`).

use super::Outcome;
use super::client::Connect;
use super::files;
use super::kill::{execution_state, print_execution};
use super::output::{self, Table};
use super::parse;
use flagwire_proto::v1::{
    CancelExecutionRequest, CreateRollbackPlanRequest, ExecuteRollbackPlanRequest, Execution,
    GetExecutionRequest, ListRollbackPlansRequest, RollbackPlan, Scope, plan_step, scope,
};
use prost_types::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// `flagwire plans ...`.
#[derive(Debug, clap::Subcommand)]
pub enum PlansCommand {
    /// Store a plan from a file.
    Create(CreateArgs),
    /// List plans.
    List(ListArgs),
    /// Execute a plan now, or at a time (`--at`, `--in`).
    Execute(ExecuteArgs),
    /// Show an execution (of a plan or a kill): state, steps, acknowledgements.
    Status(ExecutionArgs),
    /// Cancel a running or scheduled execution.
    Cancel(ExecutionArgs),
}

/// Options of `plans create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The plan (YAML, or JSON for a `.json` file; `-` reads standard input).
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `plans list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `plans execute`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("when").args(["at", "after"])))]
pub struct ExecuteArgs {
    /// The plan id (`plans list` shows it).
    pub plan_id: String,
    /// Run at this time (RFC 3339, e.g. 2026-05-01T09:00:00Z) instead of now.
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub at: Option<Timestamp>,
    /// Run this long from now (e.g. 10m, 1h30m) instead of now.
    #[arg(long = "in", value_name = "DURATION", value_parser = parse::duration)]
    pub after: Option<Duration>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Write even if an active release or ramp owns the flag there (audited; the release then
    /// pauses until someone resumes it).
    #[arg(long)]
    pub force: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `plans status` and `plans cancel`.
#[derive(Debug, clap::Args)]
pub struct ExecutionArgs {
    /// The execution id (`plans execute` and `kill` print it).
    pub execution_id: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `plans` subcommand.
pub async fn run(command: PlansCommand) -> Outcome {
    match command {
        PlansCommand::Create(a) => create(a).await,
        PlansCommand::List(a) => list(a).await,
        PlansCommand::Execute(a) => execute(a).await,
        PlansCommand::Status(a) => status(a, false).await,
        PlansCommand::Cancel(a) => status(a, true).await,
    }
}

/// A scope in short: `flag new-checkout in production`, `tag web`, `everything`.
pub fn scope_text(s: Option<&Scope>) -> String {
    let Some(s) = s else { return "-".into() };
    let what = match &s.kind {
        Some(scope::Kind::FlagKey(f)) => format!("flag {f}"),
        Some(scope::Kind::Tag(t)) => format!("tag {t}"),
        Some(scope::Kind::RolloutId(r)) => format!("rollout {r}"),
        Some(scope::Kind::ReleaseId(r)) => format!("release {r}"),
        Some(scope::Kind::SystemWide(_)) => "everything".into(),
        None => "-".into(),
    };
    if s.environment.is_empty() {
        what
    } else {
        format!("{what} in {}", s.environment)
    }
}

fn step_names(p: &RollbackPlan) -> String {
    use plan_step::Action;
    let names: Vec<&str> = p
        .steps
        .iter()
        .map(|s| match s.action {
            Some(Action::SetVariant(_)) => "set-variant",
            Some(Action::SetEnabled(_)) => "set-enabled",
            Some(Action::Revert(_)) => "revert",
            Some(Action::SetWeights(_)) => "set-weights",
            Some(Action::AbortRolloutId(_)) => "abort-rollout",
            Some(Action::Wait(_)) => "wait",
            None => "?",
        })
        .collect();
    names.join(",")
}

async fn create(a: CreateArgs) -> Outcome {
    let plan: RollbackPlan = files::read(&a.file, "rollback plan")?;
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .create_rollback_plan(CreateRollbackPlanRequest { plan: Some(plan) })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let p = response.plan.unwrap_or_default();
        output::line(&format!(
            "created plan {} ({:?}): {} steps; run it with: flagwire plans execute {}",
            p.id,
            p.name,
            p.steps.len(),
            p.id
        ));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .list_rollback_plans(ListRollbackPlansRequest {})
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&["ID", "NAME", "SCOPE", "STEPS", "DESCRIPTION"]);
    for p in &response.plans {
        t.row(vec![
            p.id.clone(),
            p.name.clone(),
            scope_text(p.scope.as_ref()),
            step_names(p),
            p.description.clone(),
        ]);
    }
    t.print();
    Ok(())
}

async fn execute(a: ExecuteArgs) -> Outcome {
    let at = a.at.or(a.after.map(parse::from_now));
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .execute_rollback_plan(ExecuteRollbackPlanRequest {
            force: a.force,
            plan_id: a.plan_id,
            at,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let e = response.execution.unwrap_or_default();
        print_execution(&e);
        if e.end_time.is_none() {
            output::line(&format!(
                "follow it with: flagwire plans status {}; stop it with: flagwire plans cancel {}",
                e.id, e.id
            ));
        }
    }
    Ok(())
}

fn describe(e: &Execution) -> String {
    let mut text = format!(
        "execution: {}\nkind:      {}\nstate:     {}\n",
        e.id,
        e.kind,
        execution_state(e)
    );
    for (label, value) in [
        ("plan", e.plan_id.clone()),
        ("rollout", e.rollout_id.clone()),
        (
            "scope",
            e.scope
                .as_ref()
                .map(|s| scope_text(Some(s)))
                .unwrap_or_default(),
        ),
        ("by", e.actor.clone()),
        ("reason", e.reason.clone()),
    ] {
        if !value.is_empty() {
            text += &format!("{:<10} {value}\n", format!("{label}:"));
        }
    }
    text += &format!("started:   {}\n", output::time(e.start_time.as_ref()));
    if e.end_time.is_some() {
        text += &format!("ended:     {}\n", output::time(e.end_time.as_ref()));
    }
    let mut steps = Table::new(&["STEP", "OK", "DETAIL"]);
    for s in &e.steps {
        steps.row(vec![
            s.index.to_string(),
            s.ok.to_string(),
            s.detail.clone(),
        ]);
    }
    let mut acks = Table::new(&["ENVIRONMENT", "REVISION", "ACKNOWLEDGED", "CONNECTED"]);
    for a in &e.acknowledgements {
        acks.row(vec![
            a.environment.clone(),
            a.revision.to_string(),
            a.acknowledged.to_string(),
            a.connected.to_string(),
        ]);
    }
    if !e.steps.is_empty() {
        text += &format!("\n{}", steps.render());
    }
    if !e.acknowledgements.is_empty() {
        text += &format!("\n{}", acks.render());
    }
    text
}

async fn status(a: ExecutionArgs, cancel: bool) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let id = a.execution_id;
    let execution = if cancel {
        client
            .cancel_execution(CancelExecutionRequest { id })
            .await?
            .into_inner()
            .execution
    } else {
        client
            .get_execution(GetExecutionRequest { id })
            .await?
            .into_inner()
            .execution
    };
    let response = flagwire_proto::v1::GetExecutionResponse { execution };
    if !a.connect.structured(&response) {
        output::emit(&describe(&response.execution.unwrap_or_default()));
    }
    Ok(())
}
