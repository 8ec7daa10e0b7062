//! `rollout ...`: canary rollouts. `create -f FILE` defines one (DRAFT), `start` begins it,
//! `pause`/`resume` stop and restart the judge's automatic decisions, `promote` and `rollback`
//! decide now; `list` and `status` ([`rollout_status`](super::rollout_status)) show them.

use super::client::{Connect, Rollouts};
use super::files;
use super::output::{self, Table};
use super::rollout_status::{self, StatusArgs, state, step};
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    CreateRolloutRequest, ListRolloutsRequest, PauseRolloutRequest, PromoteRolloutRequest,
    ResumeRolloutRequest, RollbackRolloutRequest, Rollout, StartRolloutRequest,
};
use std::path::PathBuf;

/// `flagwire rollout ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RolloutCommand {
    /// Define a rollout from a file (it starts as DRAFT).
    Create(CreateArgs),
    /// Start a draft rollout: the flag's default rule becomes the canary split.
    Start(StartArgs),
    /// Pause automatic decisions.
    Pause(ActionArgs),
    /// Resume automatic decisions.
    Resume(ActionArgs),
    /// Advance to the next step now (from the last step: complete).
    Promote(ActionArgs),
    /// Serve the baseline to everyone now.
    Rollback(ActionArgs),
    /// List rollouts, newest first.
    List(ListArgs),
    /// Show a rollout: state, step, latest decision and its evidence (`--watch`: until it
    /// ends).
    Status(StatusArgs),
}

/// Options of `rollout create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The rollout definition: a rollout as in an exported bundle (`flagKey`, `environment`,
    /// `treatmentVariant`, `baselineVariant`, `steps`, `guardrails`, `policy`), or a whole
    /// CreateRolloutRequest (`rollout: {...}`); YAML, or JSON for a `.json` file; `-` reads
    /// standard input.
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `rollout start`.
#[derive(Debug, clap::Args)]
pub struct StartArgs {
    /// The rollout id.
    pub id: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `rollout pause|resume|promote|rollback`.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// The rollout id.
    pub id: String,
    /// Why (recorded in the decision log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
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

#[derive(Clone, Copy)]
enum Action {
    Start,
    Pause,
    Resume,
    Promote,
    Rollback,
}

/// Runs a `rollout` subcommand.
pub async fn run(command: RolloutCommand) -> Outcome {
    match command {
        RolloutCommand::Create(a) => create(a).await,
        RolloutCommand::Start(a) => {
            let a = ActionArgs {
                id: a.id,
                reason: String::new(),
                connect: a.connect,
            };
            act(a, Action::Start).await
        }
        RolloutCommand::Pause(a) => act(a, Action::Pause).await,
        RolloutCommand::Resume(a) => act(a, Action::Resume).await,
        RolloutCommand::Promote(a) => act(a, Action::Promote).await,
        RolloutCommand::Rollback(a) => act(a, Action::Rollback).await,
        RolloutCommand::List(a) => list(a).await,
        RolloutCommand::Status(a) => rollout_status::status(a).await,
    }
}

/// The file's rollout, bare or wrapped in a CreateRolloutRequest.
fn definition(path: &std::path::Path) -> Result<Rollout, Failure> {
    let text = files::text(path)?;
    match files::parse::<Rollout>(path, &text, "rollout") {
        Ok(r) => Ok(r),
        Err(bare) => match files::parse::<CreateRolloutRequest>(path, &text, "rollout") {
            Ok(request) => Ok(request.rollout.unwrap_or_default()),
            Err(_) => Err(bare),
        },
    }
}

async fn create(a: CreateArgs) -> Outcome {
    let rollout = definition(&a.file)?;
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .create_rollout(CreateRolloutRequest {
            rollout: Some(rollout),
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let r = response.rollout.unwrap_or_default();
    output::line(&format!(
        "created rollout {} ({}): {} in {}, {} steps; start it with: flagwire rollout start {}",
        r.id,
        state(&r),
        r.flag_key,
        r.environment,
        r.steps.len(),
        r.id
    ));
    Ok(())
}

async fn call(client: &mut Rollouts, a: &ActionArgs, action: Action) -> Result<Rollout, Failure> {
    let (id, reason) = (a.id.clone(), a.reason.clone());
    let rollout = match action {
        Action::Start => {
            client
                .start_rollout(StartRolloutRequest { id })
                .await?
                .into_inner()
                .rollout
        }
        Action::Pause => {
            client
                .pause_rollout(PauseRolloutRequest { id, reason })
                .await?
                .into_inner()
                .rollout
        }
        Action::Resume => {
            client
                .resume_rollout(ResumeRolloutRequest { id, reason })
                .await?
                .into_inner()
                .rollout
        }
        Action::Promote => {
            client
                .promote_rollout(PromoteRolloutRequest { id, reason })
                .await?
                .into_inner()
                .rollout
        }
        Action::Rollback => {
            client
                .rollback_rollout(RollbackRolloutRequest { id, reason })
                .await?
                .into_inner()
                .rollout
        }
    };
    Ok(rollout.unwrap_or_default())
}

async fn act(a: ActionArgs, action: Action) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let r = call(&mut client, &a, action).await?;
    // Every action answers the rollout; GetRolloutResponse has the same shape.
    let response = flagwire_proto::v1::GetRolloutResponse {
        rollout: Some(r.clone()),
    };
    if !a.connect.structured(&response) {
        output::line(&format!(
            "rollout {} ({} in {}): {}, step {}",
            r.id,
            r.flag_key,
            r.environment,
            state(&r),
            step(&r)
        ));
    }
    Ok(())
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
    if a.connect.structured(&rollouts) {
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
