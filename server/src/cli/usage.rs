//! `usage` (what SDKs reported: evaluations, outcomes and latency per flag and variant, and
//! the team's own metrics) and
//! `instances` (the SDK instances the server knows, and the revision each has applied).

use super::Outcome;
use super::client::Connect;
use super::output::{self, Table};
use super::parse;
use flagwire_proto::v1::{GetUsageRequest, ListInstancesRequest};
use prost_types::Timestamp;
use std::time::Duration;

/// Options of `usage`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("start").args(["since", "from"])))]
pub struct UsageArgs {
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Only this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// From this long ago (e.g. 15m, 1h) until now.
    #[arg(long, value_name = "DURATION", value_parser = parse::duration)]
    pub since: Option<Duration>,
    /// From this time (RFC 3339).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub from: Option<Timestamp>,
    /// Until this time (RFC 3339; default now).
    #[arg(long, value_name = "TIME", value_parser = parse::time)]
    pub to: Option<Timestamp>,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `instances`.
#[derive(Debug, clap::Args)]
pub struct InstancesArgs {
    /// Only this environment.
    #[arg(long, default_value = "")]
    pub env: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

fn ms(us: f64) -> String {
    output::round(us / 1000.0)
}

/// `usage`.
pub async fn usage(a: UsageArgs) -> Outcome {
    let start = a.from.or(a.since.map(parse::ago));
    let mut metrics = a.connect.connect().await?.metrics;
    let response = metrics
        .get_usage(GetUsageRequest {
            environment: a.env,
            flag_key: a.flag,
            start_time: start,
            end_time: a.to,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&[
        "FLAG",
        "VARIANT",
        "COHORT",
        "EVALUATIONS",
        "SUCCESSES",
        "ERRORS",
        "ERROR RATE",
        "P50 MS",
        "P95 MS",
        "P99 MS",
    ]);
    for r in &response.rows {
        t.row(vec![
            r.flag_key.clone(),
            r.variant.clone(),
            if r.cohort.is_empty() {
                "-".into()
            } else {
                r.cohort.clone()
            },
            r.evaluations.to_string(),
            r.successes.to_string(),
            r.errors.to_string(),
            format!("{}%", output::round(r.error_rate * 100.0)),
            ms(r.p50_us),
            ms(r.p95_us),
            ms(r.p99_us),
        ]);
    }
    t.print();
    metrics_table(&response.rows);
    Ok(())
}

/// A metric's value with four decimals, without trailing zeros (a rate of 0.9972 must not
/// print as 1).
pub fn figure(v: f64) -> String {
    let text = format!("{v:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// The team's own metrics of each row, when SDKs recorded any: the rate, mean or per-request
/// count in VALUE, a distribution's median there and its p95 / p99 beside it.
fn metrics_table(rows: &[flagwire_proto::v1::UsageRow]) {
    let mut t = Table::new(&[
        "FLAG", "VARIANT", "COHORT", "METRIC", "N", "VALUE", "P95", "P99",
    ]);
    let mut any = false;
    for r in rows {
        for m in &r.metrics {
            any = true;
            let quantile = |v: f64| {
                if v == 0.0 { "-".to_owned() } else { figure(v) }
            };
            t.row(vec![
                r.flag_key.clone(),
                r.variant.clone(),
                if r.cohort.is_empty() {
                    "-".into()
                } else {
                    r.cohort.clone()
                },
                m.name.clone(),
                m.n.to_string(),
                figure(m.value),
                quantile(m.p95),
                quantile(m.p99),
            ]);
        }
    }
    if any {
        output::line("");
        t.print();
    }
}

/// `instances`.
pub async fn instances(a: InstancesArgs) -> Outcome {
    let mut metrics = a.connect.connect().await?.metrics;
    let response = metrics
        .list_instances(ListInstancesRequest { environment: a.env })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&[
        "INSTANCE",
        "SDK",
        "ENVIRONMENT",
        "CONNECTED",
        "REVISION",
        "LAST SEEN",
    ]);
    for i in &response.instances {
        t.row(vec![
            i.instance_id.clone(),
            format!("{} {}", i.sdk_name, i.sdk_version),
            i.environment.clone(),
            if i.connected {
                format!("since {}", output::time(i.connected_since.as_ref()))
            } else {
                "no".into()
            },
            i.applied_revision.to_string(),
            output::time(i.last_seen.as_ref()),
        ]);
    }
    t.print();
    Ok(())
}
