//! `metrics define|list|delete`: the team's own metrics as an environment defines them, so
//! that release gates can name them (SDKs record any name; only defined ones gate).

use super::Outcome;
use super::client::Connect;
use super::output::{self, Table};
use flagwire_proto::v1::{
    DefineMetricRequest, DeleteMetricRequest, ListMetricsRequest, MetricDefinition,
    MetricDirection, MetricKind,
};

/// `flagwire metrics ...`.
#[derive(Debug, clap::Subcommand)]
pub enum MetricsCommand {
    /// Define a metric, or change its definition (unit, description; kind and direction only
    /// while no running release gates on it).
    Define(DefineArgs),
    /// List the metric definitions of an environment (or of every environment).
    List(ListArgs),
    /// Delete a definition no running release gates on.
    Delete(DeleteArgs),
}

/// How a metric is read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Successes out of outcomes (track_outcome).
    Rate,
    /// The mean of the values tracked (track).
    Mean,
    /// Quantiles of the values observed (observe, timers).
    Distribution,
    /// The total tracked per measured request.
    CountPerRequest,
}

/// Which way is better.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Direction {
    /// Higher is better (a success rate, a hit rate, a score).
    Higher,
    /// Lower is better (a latency, stuck workflows).
    Lower,
}

/// Options of `metrics define`.
#[derive(Debug, clap::Args)]
pub struct DefineArgs {
    /// The name SDKs record it under.
    pub name: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// How it is read.
    #[arg(long, value_enum)]
    pub kind: Kind,
    /// Which way is better (what a relative gate guards against).
    #[arg(long, value_enum)]
    pub direction: Direction,
    /// Unit for people, e.g. ms, %, score.
    #[arg(long, default_value = "")]
    pub unit: String,
    /// Free text.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Fail unless the stored version is this one.
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    pub expected_version: u64,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `metrics list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this environment.
    #[arg(long, default_value = "")]
    pub env: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `metrics delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The metric.
    pub name: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `metrics` subcommand.
pub async fn run(command: MetricsCommand) -> Outcome {
    match command {
        MetricsCommand::Define(a) => define(a).await,
        MetricsCommand::List(a) => list(a).await,
        MetricsCommand::Delete(a) => delete(a).await,
    }
}

fn table(metrics: &[MetricDefinition]) -> Table {
    let mut t = Table::new(&[
        "NAME",
        "ENVIRONMENT",
        "KIND",
        "DIRECTION",
        "UNIT",
        "VERSION",
        "DESCRIPTION",
    ]);
    for m in metrics {
        let kind = MetricKind::try_from(m.kind).unwrap_or_default();
        let direction = MetricDirection::try_from(m.direction).unwrap_or_default();
        t.row(vec![
            m.name.clone(),
            m.environment.clone(),
            output::enum_name(kind.as_str_name(), "METRIC_KIND_"),
            output::enum_name(direction.as_str_name(), "METRIC_DIRECTION_"),
            if m.unit.is_empty() {
                "-".into()
            } else {
                m.unit.clone()
            },
            m.version.to_string(),
            m.description.clone(),
        ]);
    }
    t
}

async fn define(a: DefineArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let kind = match a.kind {
        Kind::Rate => MetricKind::Rate,
        Kind::Mean => MetricKind::Mean,
        Kind::Distribution => MetricKind::Distribution,
        Kind::CountPerRequest => MetricKind::CountPerRequest,
    };
    let direction = match a.direction {
        Direction::Higher => MetricDirection::HigherIsBetter,
        Direction::Lower => MetricDirection::LowerIsBetter,
    };
    let metric = MetricDefinition {
        environment: a.env,
        name: a.name,
        kind: kind as i32,
        unit: a.unit,
        direction: direction as i32,
        description: a.description,
        version: 0,
    };
    let response = admin
        .define_metric(DefineMetricRequest {
            metric: Some(metric),
            expected_version: a.expected_version,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let m = response.metric.unwrap_or_default();
        output::line(&format!(
            "defined metric {} in {}, version {}",
            m.name, m.environment, m.version
        ));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .list_metrics(ListMetricsRequest { environment: a.env })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        table(&response.metrics).print();
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .delete_metric(DeleteMetricRequest {
            environment: a.env.clone(),
            name: a.name.clone(),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::line(&format!("deleted metric {} in {}", a.name, a.env));
    }
    Ok(())
}
