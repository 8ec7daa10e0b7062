//! `release status [--watch]`: a release's state, stage and audience, what each flag serves
//! there, approvals, the latest decision and the statistics of the cohorts it was judged on;
//! with `--watch`, again every judging window until the release ends.
//!
//! Stages are numbered from 0 everywhere the CLI names one (`stage:`, `awaiting:`,
//! `approved:`, `approve --stage N`), as on the wire (`currentStage`, `approvalStage`), in the
//! server's messages and in a definition's `stages[N]`; `stage:` says so by naming the range
//! (`1 of 0-3`: the second of four).

use super::Outcome;
use super::client::Connect;
use super::output::{self, Table};
use super::rollout_status::{
    cohort_table, decision_lines, metric_table, policy_window, watch_frame,
};
use super::usage::figure;
use flagwire_core::release::{self, Audience, EVERYONE, Serving, wire};
use flagwire_proto::v1::{Decision, GetReleaseRequest, GetReleaseResponse, Release, ReleaseState};
use std::io::IsTerminal;

/// Options of `release status`.
#[derive(Debug, clap::Args)]
pub struct StatusArgs {
    /// The release id.
    pub id: String,
    /// Redraw every judging window until the release completes or rolls back (then exit 0).
    #[arg(long, short = 'w')]
    pub watch: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// The state's name without its prefix, e.g. `AWAITING_APPROVAL`.
pub fn state(r: &Release) -> String {
    let s = ReleaseState::try_from(r.state).unwrap_or(ReleaseState::Unspecified);
    output::enum_name(s.as_str_name(), "RELEASE_STATE_")
}

fn ended(r: &Release) -> bool {
    matches!(
        ReleaseState::try_from(r.state),
        Ok(ReleaseState::Completed | ReleaseState::RolledBack)
    )
}

fn audience(r: &Release, i: usize) -> String {
    let a = r.stages.get(i).and_then(|s| s.audience.as_ref());
    match wire::audience_of(a) {
        Audience::Share(bp) if bp >= EVERYONE => "everyone".into(),
        Audience::Share(bp) => {
            format!("{}% (+ {0}% control)", output::round(f64::from(bp) / 100.0))
        }
        Audience::Segment(s) => format!("segment {s}"),
        Audience::Everyone => "everyone".into(),
    }
}

/// `1 of 0-3 (50% (+ 50% control))`: the stage served, counted from 0 among all of them, and
/// its audience (`- of 0-3` before the first stage begins, `3 of 0-3 (done)` once completed).
pub fn stage(r: &Release) -> String {
    let of = format!("of 0-{}", r.stages.len().saturating_sub(1));
    if ReleaseState::try_from(r.state) == Ok(ReleaseState::Completed) {
        return format!("{} {of} (done)", r.stages.len().saturating_sub(1));
    }
    match wire::state(r).stage {
        None => format!("- {of}"),
        Some(i) => format!("{i} {of} ({})", audience(r, i)),
    }
}

/// Whether stage `i` has a control cohort (and so was judged against it).
fn controlled(r: &Release, i: usize) -> bool {
    let a = r.stages.get(i).and_then(|s| s.audience.as_ref());
    wire::audience_of(a).controlled()
}

/// What each flag serves now: the stage's variant to its audience while one is served, else
/// the variant it serves everyone (its baseline after a rollback, its last stage's variant once
/// completed).
fn flags(r: &Release) -> String {
    let spec = wire::spec(r);
    let now = wire::state(r);
    let mut text = String::new();
    for f in &spec.flags {
        let serves = match release::serving(&spec, &now, f) {
            Some(Serving::Fixed(v) | Serving::Stage { variant: v, .. }) => v,
            None => f.baseline.clone(),
        };
        let note = if now.rolled_back.contains(&f.key) {
            " (rolled back)"
        } else {
            ""
        };
        text += &format!(
            "flag:      {} serves {serves}{note} (baseline {})\n",
            f.key, f.baseline
        );
    }
    text
}

/// The latest decision and the numbers it was judged on: at a stage with control, both cohorts
/// over the release so far (its stages with control: what the relative tests compare); at a
/// stage without, the stage's canary alone.
fn judged(r: &Release, d: Option<&Decision>) -> String {
    let Some(d) = d else {
        return String::new();
    };
    let mut d = d.clone();
    let stage = d.step as usize;
    let with_control = controlled(r, stage);
    if !with_control {
        d.cohorts.retain(|c| c.cohort != "control");
    }
    let text = decision_lines(&d);
    if d.cohorts.is_empty() {
        return text;
    }
    let evidence = if with_control {
        "each cohort over the release so far (its stages with control)".to_owned()
    } else {
        format!("the canary of stage {stage} alone (no control)")
    };
    let mut text = format!("{text}evidence:  {evidence}\n\n{}", cohort_table(&d));
    text += &metric_table(&d);
    text += &gate_table(&d);
    text
}

/// The gates checked at the decision: value (and control's), threshold, whether it passed.
fn gate_table(d: &Decision) -> String {
    if d.gates.is_empty() {
        return String::new();
    }
    let mut t = Table::new(&[
        "GATE",
        "KIND",
        "VALUE",
        "CONTROL",
        "THRESHOLD",
        "OK",
        "DETAIL",
    ]);
    for g in &d.gates {
        let control = if g.kind == "absolute" {
            "-".to_owned()
        } else {
            figure(g.control_value)
        };
        t.row(vec![
            g.name.clone(),
            g.kind.clone(),
            figure(g.value),
            control,
            figure(g.threshold),
            match (g.checked, g.passed) {
                (false, true) => "not yet",
                (_, true) => "yes",
                (_, false) => "no",
            }
            .to_owned(),
            g.detail.clone(),
        ]);
    }
    format!("\n{}", t.render())
}

/// A person's view of a release.
pub fn describe(r: &Release) -> String {
    let mut text = format!(
        "id:        {}\nname:      {}\nenv:       {}\nstate:     {}\nstage:     {}\n",
        r.id,
        r.name,
        r.environment,
        state(r),
        stage(r),
    );
    if !r.state_reason.is_empty() {
        text += &format!("why:       {}\n", r.state_reason);
    }
    if ReleaseState::try_from(r.state) == Ok(ReleaseState::AwaitingApproval) {
        text += &format!(
            "awaiting:  approval of stage {} (flagwire release approve {} --stage {0} --reason ...)\n",
            r.approval_stage, r.id
        );
    }
    text += &flags(r);
    for a in &r.approvals {
        text += &format!(
            "approved:  stage {} by {} at {}: {}\n",
            a.stage,
            a.actor,
            output::time(a.time.as_ref()),
            a.reason
        );
    }
    if let Some(ack) = &r.acknowledgement
        && ack.revision > 0
    {
        text += &format!(
            "applied:   {} of {} connected instances at revision {}\n",
            ack.acknowledged, ack.connected, ack.revision
        );
    }
    text + &judged(r, r.latest_decision.as_ref())
}

/// `release status`, once or every window.
pub async fn status(a: StatusArgs) -> Outcome {
    let mut client = a.connect.connect().await?.releases;
    let tty = std::io::stdout().is_terminal();
    let mut first = true;
    loop {
        let r = client
            .get_release(GetReleaseRequest {
                id: a.id.clone(),
                window_limit: 0,
            })
            .await?
            .into_inner()
            .release
            .unwrap_or_default();
        let response = GetReleaseResponse {
            release: Some(r.clone()),
        };
        let every = policy_window(r.policy.as_ref());
        if a.watch {
            let command = format!("flagwire release status {} --watch", r.id);
            watch_frame(
                &a.connect,
                &response,
                &command,
                every,
                &describe(&r),
                (tty, first),
            );
        } else if !a.connect.structured(&response) {
            output::emit(&describe(&r));
        }
        if !a.watch || ended(&r) {
            return Ok(());
        }
        first = false;
        tokio::time::sleep(every).await;
    }
}
