//! `rollout status [--watch]`: a rollout's state, step, latest decision and the statistics of
//! both cohorts behind it; with `--watch`, again every judging window until the rollout ends.

use super::Outcome;
use super::client::Connect;
use super::output::{self, Format, Table};
use super::usage::figure;
use crate::protojson::Named;
use flagwire_proto::v1::{
    Decision, DecisionKind, GetRolloutRequest, GetRolloutResponse, Rollout, RolloutState,
};
use std::io::IsTerminal;
use std::time::Duration;

/// Options of `rollout status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The rollout id.
    pub id: String,
    /// Redraw every judging window until the rollout completes or rolls back (then exit 0).
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// The state's name without its prefix, e.g. `RUNNING`.
pub fn state(r: &Rollout) -> String {
    let s = RolloutState::try_from(r.state).unwrap_or(RolloutState::Unspecified);
    output::enum_name(s.as_str_name(), "ROLLOUT_STATE_")
}

/// Whether the rollout has ended (nothing will change it any more).
pub fn ended(r: &Rollout) -> bool {
    matches!(
        RolloutState::try_from(r.state),
        Ok(RolloutState::Completed | RolloutState::RolledBack)
    )
}

/// `2/4 (5%)`: the current step of all, and its canary share (`4/4 (100%)` once completed,
/// which a promotion can reach from any step).
pub fn step(r: &Rollout) -> String {
    if RolloutState::try_from(r.state) == Ok(RolloutState::Completed) {
        return format!("{0}/{0} (100%)", r.steps.len());
    }
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

/// The judging window (the server fills in its 10 s default when the rollout is created).
pub fn window(r: &Rollout) -> Duration {
    policy_window(r.policy.as_ref())
}

/// The window of a rollout or release policy (10 s when unset).
pub fn policy_window(p: Option<&flagwire_proto::v1::RolloutPolicy>) -> Duration {
    let w = p.and_then(|p| p.window.as_ref());
    w.and_then(|w| Duration::try_from(*w).ok())
        .filter(|w| !w.is_zero())
        .unwrap_or(Duration::from_secs(10))
}

/// `rollout status`, once or every window.
pub async fn status(a: StatusArgs) -> Outcome {
    let mut client = a.connect.connect().await?.rollouts;
    // Redraw in place on a terminal; append frames (blank-line separated) to a pipe or file.
    let tty = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        let r = client
            .get_rollout(GetRolloutRequest {
                id: a.id.clone(),
                window_limit: 0,
            })
            .await?
            .into_inner()
            .rollout
            .unwrap_or_default();
        if a.watch {
            frame(&a.connect, &r, tty, first);
        } else if !a.connect.structured(&GetRolloutResponse {
            rollout: Some(r.clone()),
        }) {
            output::emit(&describe(&r));
        }
        if !a.watch || ended(&r) {
            return Ok(());
        }
        first = false;
        tokio::time::sleep(window(&r)).await;
    }
}

fn frame(connect: &Connect, r: &Rollout, tty: bool, first: bool) {
    let response = GetRolloutResponse {
        rollout: Some(r.clone()),
    };
    let command = format!("flagwire rollout status {} --watch", r.id);
    watch_frame(
        connect,
        &response,
        &command,
        window(r),
        &describe(r),
        (tty, first),
    );
}

/// One frame of a `--watch`: the response as JSON or YAML, or a header naming `command` and
/// its period, then `body`; on a terminal the screen is cleared first, in a pipe frames are
/// separated by a blank line. `(tty, first)`: where it goes, and whether it is the first.
pub fn watch_frame<M: Named>(
    connect: &Connect,
    response: &M,
    command: &str,
    every: Duration,
    body: &str,
    (tty, first): (bool, bool),
) {
    match connect.format() {
        Format::Yaml => output::emit("---\n"),
        Format::Json => {}
        Format::Table if tty => output::emit("\x1b[H\x1b[2J"),
        Format::Table if !first => output::emit("\n"),
        Format::Table => {}
    }
    if !connect.structured(response) {
        let now = prost_types::Timestamp::from(std::time::SystemTime::now());
        output::emit(&format!(
            "Every {}: {command}   {}\n\n{body}",
            humantime::format_duration(every),
            output::time(Some(&now)),
        ));
    }
}

/// A person's view of a rollout: where it is, the latest decision and its cohorts.
pub fn describe(r: &Rollout) -> String {
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
    text + &decision(r.latest_decision.as_ref())
}

/// The latest decision: what, why, by whom, and the statistics of each cohort behind it.
pub fn decision(d: Option<&Decision>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    if d.cohorts.is_empty() {
        return decision_lines(d);
    }
    decision_lines(d) + "\n" + &cohort_table(d) + &metric_table(d)
}

/// What a decision was, why and by whom.
pub fn decision_lines(d: &Decision) -> String {
    let kind = DecisionKind::try_from(d.kind).unwrap_or(DecisionKind::Unspecified);
    let mut text = format!(
        "decision:  {} {} by {} at {}\n",
        kind.as_str_name().trim_start_matches("DECISION_KIND_"),
        d.reason_code,
        d.actor,
        output::time(d.time.as_ref()),
    );
    if !d.detail.is_empty() {
        text += &format!("detail:    {}\n", d.detail);
    }
    text
}

/// The statistics of each cohort of a decision, as a table.
pub fn cohort_table(d: &Decision) -> String {
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
    t.render()
}

/// The team's own metrics of each cohort the decision read, when SDKs recorded any.
pub fn metric_table(d: &Decision) -> String {
    let mut t = Table::new(&["COHORT", "METRIC", "N", "VALUE", "P95", "P99"]);
    let quantile = |v: f64| if v == 0.0 { "-".into() } else { figure(v) };
    let mut any = false;
    for c in &d.cohorts {
        for m in &c.metrics {
            any = true;
            t.row(vec![
                c.cohort.clone(),
                m.name.clone(),
                m.n.to_string(),
                figure(m.value),
                quantile(m.p95),
                quantile(m.p99),
            ]);
        }
    }
    if any {
        format!("\n{}", t.render())
    } else {
        String::new()
    }
}
