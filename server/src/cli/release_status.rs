//! `release status [--watch]`: a release's state, stage and audience, what each flag serves
//! there, approvals, the latest decision and the statistics of both cohorts behind it; with
//! `--watch`, again every judging window until the release ends.

use super::Outcome;
use super::client::Connect;
use super::output;
use super::rollout_status::{decision, policy_window, watch_frame};
use flagwire_core::release::{Audience, EVERYONE, wire};
use flagwire_proto::v1::{GetReleaseRequest, GetReleaseResponse, Release, ReleaseState};
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

/// `2/4 (50% (+ 50% control))`: the stage served of all, and its audience (`-/4` before the
/// first stage begins, `4/4 (done)` once completed).
pub fn stage(r: &Release) -> String {
    let n = r.stages.len();
    if ReleaseState::try_from(r.state) == Ok(ReleaseState::Completed) {
        return format!("{n}/{n} (done)");
    }
    match wire::state(r).stage {
        None => format!("-/{n}"),
        Some(i) => format!("{}/{n} ({})", i + 1, audience(r, i)),
    }
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
    let served = wire::state(r).stage;
    for f in &r.flags {
        let now = if r.rolled_back_flags.contains(&f.flag_key) {
            format!("{} (rolled back)", f.baseline_variant)
        } else {
            served
                .and_then(|i| r.stages.get(i))
                .and_then(|s| s.variants.get(&f.flag_key))
                .cloned()
                .unwrap_or_else(|| f.baseline_variant.clone())
        };
        text += &format!(
            "flag:      {} serves {now} (baseline {})\n",
            f.flag_key, f.baseline_variant
        );
    }
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
    text + &decision(r.latest_decision.as_ref())
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
