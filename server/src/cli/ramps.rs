//! `ramp create|list|pause|resume|rollback`: time-based gradual rollouts, where the server
//! moves a variant's share of a flag's default split from one percentage to another in equal
//! steps.

use super::client::{Connect, Rollouts};
use super::output::{self, Table};
use super::parse;
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    CreateRampRequest, GetRampResponse, ListRampsRequest, PauseRampRequest, Ramp, RampState,
    ResumeRampRequest, RollbackRampRequest,
};
use std::time::Duration;

/// `flagwire ramp ...`.
#[derive(Debug, clap::Subcommand)]
pub enum RampCommand {
    /// Start ramping a variant's share of a flag in one environment.
    Create(CreateArgs),
    /// List ramps, newest first.
    List(ListArgs),
    /// Hold a ramp at its current share.
    Pause(ActionArgs),
    /// Continue a paused ramp.
    Resume(ActionArgs),
    /// Serve the other variant to everyone and end the ramp.
    Rollback(ActionArgs),
}

/// Options of `ramp create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The flag (enabled in `--env`).
    pub flag: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// The variant whose share ramps.
    #[arg(long)]
    pub variant: String,
    /// The variant serving the rest.
    #[arg(long)]
    pub other: String,
    /// The starting share, in percent.
    #[arg(long, value_parser = parse::percent, default_value = "0")]
    pub from: u32,
    /// The target share, in percent.
    #[arg(long, value_parser = parse::percent)]
    pub to: u32,
    /// Time from start to target (e.g. 2h, 1d).
    #[arg(long, value_parser = parse::duration)]
    pub duration: Duration,
    /// Number of equal steps.
    #[arg(long, default_value_t = 10)]
    pub steps: u32,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `ramp list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only ramps of this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `ramp pause|resume|rollback`.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// The ramp id.
    pub id: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

#[derive(Clone, Copy)]
enum Action {
    Pause,
    Resume,
    Rollback,
}

/// Runs a `ramp` subcommand.
pub async fn run(command: RampCommand) -> Outcome {
    match command {
        RampCommand::Create(a) => create(a).await,
        RampCommand::List(a) => list(a).await,
        RampCommand::Pause(a) => act(a, Action::Pause).await,
        RampCommand::Resume(a) => act(a, Action::Resume).await,
        RampCommand::Rollback(a) => act(a, Action::Rollback).await,
    }
}

fn state(r: &Ramp) -> String {
    let s = RampState::try_from(r.state).unwrap_or(RampState::Unspecified);
    output::enum_name(s.as_str_name(), "RAMP_STATE_")
}

fn pct(bp: u32) -> String {
    format!("{}%", output::round(f64::from(bp) / 100.0))
}

/// One line: `ramp-1: new-ui in production, on 10% → 50% (now 20%), RUNNING, step 2/4`.
fn summary(r: &Ramp) -> String {
    format!(
        "ramp {}: {} in {}, {} {} → {} (now {}), {}, step {}/{}",
        r.id,
        r.flag_key,
        r.environment,
        r.variant,
        pct(r.from_basis_points),
        pct(r.to_basis_points),
        pct(r.current_basis_points),
        state(r),
        r.steps_done,
        r.steps
    )
}

async fn create(a: CreateArgs) -> Outcome {
    if a.steps == 0 {
        return Err(Failure::Usage("--steps must be at least 1".into()));
    }
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .create_ramp(CreateRampRequest {
            ramp: Some(Ramp {
                flag_key: a.flag,
                environment: a.env,
                variant: a.variant,
                other_variant: a.other,
                from_basis_points: a.from,
                to_basis_points: a.to,
                duration: Some(parse::pb_duration(a.duration)),
                steps: a.steps,
                ..Default::default()
            }),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::line(&summary(&response.ramp.unwrap_or_default()));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .list_ramps(ListRampsRequest { flag_key: a.flag })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID",
        "FLAG",
        "ENVIRONMENT",
        "VARIANT",
        "FROM",
        "TO",
        "NOW",
        "STATE",
        "STEP",
        "NEXT STEP",
    ]);
    for r in &response.ramps {
        t.row(vec![
            r.id.clone(),
            r.flag_key.clone(),
            r.environment.clone(),
            format!("{} (else {})", r.variant, r.other_variant),
            pct(r.from_basis_points),
            pct(r.to_basis_points),
            pct(r.current_basis_points),
            state(r),
            format!("{}/{}", r.steps_done, r.steps),
            output::time(r.next_step_time.as_ref()),
        ]);
    }
    t.print();
    Ok(())
}

async fn call(client: &mut Rollouts, a: &ActionArgs, action: Action) -> Result<Ramp, Failure> {
    let (id, reason) = (a.id.clone(), a.reason.clone());
    let ramp = match action {
        Action::Pause => {
            client
                .pause_ramp(PauseRampRequest { id, reason })
                .await?
                .into_inner()
                .ramp
        }
        Action::Resume => {
            client
                .resume_ramp(ResumeRampRequest { id, reason })
                .await?
                .into_inner()
                .ramp
        }
        Action::Rollback => {
            client
                .rollback_ramp(RollbackRampRequest { id, reason })
                .await?
                .into_inner()
                .ramp
        }
    };
    Ok(ramp.unwrap_or_default())
}

async fn act(a: ActionArgs, action: Action) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let ramp = call(&mut client, &a, action).await?;
    let response = GetRampResponse { ramp: Some(ramp) };
    if !a.connect.structured(&response) {
        output::line(&summary(&response.ramp.unwrap_or_default()));
    }
    Ok(())
}
