//! `schedule create|list|cancel`: flag changes the server applies at a time, exactly once.

use super::client::Connect;
use super::files;
use super::output::{self, Table};
use super::parse;
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    CancelScheduledChangeRequest, ListScheduledChangesRequest, PlanStep, RevertAction,
    ScheduleChangeRequest, ScheduledChange, ScheduledChangeState, SetEnabledAction,
    SetVariantAction, SetWeightsAction, plan_step,
};
use prost_types::Timestamp;
use std::path::PathBuf;
use std::time::Duration;

/// `flagwire schedule ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ScheduleCommand {
    /// Schedule one change of a flag for a time.
    Create(CreateArgs),
    /// List pending changes (`--all`: also applied, cancelled and failed ones).
    List(ListArgs),
    /// Cancel a pending change.
    Cancel(CancelArgs),
}

/// Options of `schedule create`: when (`--at` or `--in`) and one change.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("when").args(["at", "after"])))]
#[command(group(clap::ArgGroup::new("change").required(true)
    .args(["enable", "disable", "serve", "weights", "revert", "abort_rollout", "file"])))]
pub struct CreateArgs {
    /// When (RFC 3339, e.g. 2026-05-01T09:00:00Z).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub at: Option<Timestamp>,
    /// This long from now (e.g. 10m, 1h30m).
    #[arg(long = "in", value_name = "DURATION", value_parser = parse::duration)]
    pub after: Option<Duration>,
    /// The flag to change.
    #[arg(long, required_unless_present_any = ["abort_rollout", "file"])]
    pub flag: Option<String>,
    /// The environment to change it in.
    #[arg(long, required_unless_present_any = ["revert", "abort_rollout", "file"])]
    pub env: Option<String>,
    /// Turn the flag on.
    #[arg(long)]
    pub enable: bool,
    /// Turn the flag off.
    #[arg(long)]
    pub disable: bool,
    /// Serve this variant by default.
    #[arg(long, value_name = "VARIANT")]
    pub serve: Option<String>,
    /// Set the default split's weights, as VARIANT=WEIGHT,...
    #[arg(long, value_name = "VARIANT=WEIGHT", value_parser = parse::weight, value_delimiter = ',')]
    pub weights: Vec<(String, u32)>,
    /// Revert the flag to this version (in every environment).
    #[arg(long, value_name = "VERSION")]
    pub revert: Option<u64>,
    /// Roll this rollout back.
    #[arg(long, value_name = "ROLLOUT_ID")]
    pub abort_rollout: Option<String>,
    /// A scheduled change as a file (`at`, `reason`, and `step` or a whole `flag`); `--at` or
    /// `--in` override its time.
    #[arg(short = 'f', long)]
    pub file: Option<PathBuf>,
    /// Why (recorded in the audit log when it is applied).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `schedule list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only changes of this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// Also applied, cancelled and failed changes.
    #[arg(long)]
    pub all: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `schedule cancel`.
#[derive(Debug, clap::Args)]
pub struct CancelArgs {
    /// The scheduled change's id.
    pub id: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `schedule` subcommand.
pub async fn run(command: ScheduleCommand) -> Outcome {
    match command {
        ScheduleCommand::Create(a) => create(a).await,
        ScheduleCommand::List(a) => list(a).await,
        ScheduleCommand::Cancel(a) => cancel(a).await,
    }
}

/// The change the options describe (clap has checked that exactly one is named).
fn step(a: &CreateArgs) -> PlanStep {
    use plan_step::Action;
    let flag_key = a.flag.clone().unwrap_or_default();
    let environment = a.env.clone().unwrap_or_default();
    let action = if a.enable || a.disable {
        Action::SetEnabled(SetEnabledAction {
            flag_key,
            environment,
            enabled: a.enable,
        })
    } else if let Some(variant) = &a.serve {
        Action::SetVariant(SetVariantAction {
            flag_key,
            environment,
            variant: variant.clone(),
        })
    } else if let Some(version) = a.revert {
        Action::Revert(RevertAction { flag_key, version })
    } else if let Some(id) = &a.abort_rollout {
        Action::AbortRolloutId(id.clone())
    } else {
        Action::SetWeights(SetWeightsAction {
            flag_key,
            environment,
            weights: a.weights.iter().cloned().collect(),
        })
    };
    PlanStep {
        action: Some(action),
    }
}

/// A change in words: `disable promo in production`.
pub fn describe(c: &ScheduledChange) -> String {
    use plan_step::Action;
    if let Some(f) = &c.flag {
        return format!("replace flag {}", f.key);
    }
    match c.step.as_ref().and_then(|s| s.action.as_ref()) {
        Some(Action::SetEnabled(x)) => {
            let word = if x.enabled { "enable" } else { "disable" };
            format!("{word} {} in {}", x.flag_key, x.environment)
        }
        Some(Action::SetVariant(x)) => {
            format!(
                "serve {} for {} in {}",
                x.variant, x.flag_key, x.environment
            )
        }
        Some(Action::Revert(x)) => format!("revert {} to version {}", x.flag_key, x.version),
        Some(Action::SetWeights(x)) => {
            let mut w: Vec<String> = x.weights.iter().map(|(k, v)| format!("{k}={v}")).collect();
            w.sort();
            format!(
                "weights {} for {} in {}",
                w.join(","),
                x.flag_key,
                x.environment
            )
        }
        Some(Action::AbortRolloutId(id)) => format!("roll back rollout {id}"),
        Some(Action::Wait(_)) | None => "-".into(),
    }
}

fn state(c: &ScheduledChange) -> String {
    let s = ScheduledChangeState::try_from(c.state).unwrap_or(ScheduledChangeState::Unspecified);
    output::enum_name(s.as_str_name(), "SCHEDULED_CHANGE_STATE_")
}

async fn create(a: CreateArgs) -> Outcome {
    let mut change = match &a.file {
        Some(path) => files::read::<ScheduledChange>(path, "scheduled change")?,
        None => ScheduledChange {
            step: Some(step(&a)),
            ..Default::default()
        },
    };
    if let Some(at) = a.at.or(a.after.map(parse::from_now)) {
        change.at = Some(at);
    }
    if change.at.is_none() {
        return Err(Failure::Usage(
            "schedule create: say when with --at or --in".into(),
        ));
    }
    if !a.reason.is_empty() {
        change.reason = a.reason.clone();
    }
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .schedule_change(ScheduleChangeRequest {
            change: Some(change),
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let c = response.change.unwrap_or_default();
        output::line(&format!(
            "scheduled {} ({}) at {}: {}",
            c.id,
            state(&c),
            output::time(c.at.as_ref()),
            describe(&c)
        ));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .list_scheduled_changes(ListScheduledChangesRequest {
            flag_key: a.flag,
            include_done: a.all,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&["ID", "AT", "STATE", "CHANGE", "BY", "REASON", "DETAIL"]);
    for c in &response.changes {
        t.row(vec![
            c.id.clone(),
            output::time(c.at.as_ref()),
            state(c),
            describe(c),
            c.actor.clone(),
            c.reason.clone(),
            c.detail.clone(),
        ]);
    }
    t.print();
    Ok(())
}

async fn cancel(a: CancelArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    let response = client
        .cancel_scheduled_change(CancelScheduledChangeRequest {
            id: a.id,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let c = response.change.unwrap_or_default();
        output::line(&format!("cancelled {} ({})", c.id, describe(&c)));
    }
    Ok(())
}
