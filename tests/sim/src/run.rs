//! One simulated rollout or release, driven exactly as the server drives it: a window closes
//! every `policy.window_ms`, the judge sees every closed window, and its decision goes to the
//! release state machine (`flagwire_core::release::apply`) as the server's driver hands it over;
//! what the machine then serves decides the next window's cohorts. A promotion starts the next
//! stage from that instant; a rollback ends the run.

use flagwire_core::judge::{Cohort, Judgement, Kind, Position, Reason, Window, judge};
use flagwire_core::release::{Action, Event, Phase, Spec, State, apply};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::release::{Cohorts, event_for, judged, serves_all};
use crate::scenario::{Onset, Scenario};
use crate::traffic::Source;

/// Mixed into a run's seed for the fault stream (any constant other than 0 does).
const FAULT_STREAM: u64 = 0x5eed_fa17_5eed_fa17;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Promoted past its last stage (into the complete 100 % step of a rollout).
    Completed,
    /// The judge rolled back, for this reason.
    RolledBack(Reason),
    /// Still going at the scenario's horizon.
    Horizon,
}

/// What happened in one run.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    /// How it ended.
    pub end: End,
    /// When (ms after the start): the deciding window's close, or the horizon.
    pub end_ms: i64,
    /// When the regression started, if it did before the end.
    pub onset_ms: Option<i64>,
    /// The stage served last: the one rolled back from, the last one, or the one at the horizon.
    pub stage: usize,
    /// Windows judged.
    pub windows: u32,
    /// Windows the judge held for, by reason (minimum duration included).
    pub holds: Vec<(Reason, u32)>,
    /// The gate that decided a rollback (a relative gate's regression, an absolute gate's
    /// breach), if one did.
    pub gate: Option<String>,
    /// Evaluations in the judged cohorts (canary and control) over the run, as the server
    /// received them.
    pub evaluations: u64,
    /// Outcomes in the judged cohorts over the run.
    pub outcomes: u64,
    /// Reports dropped as late.
    pub late_reports: u64,
    /// Reports lost on the way.
    pub lost_reports: u64,
    /// Duplicate reports discarded by deduplication.
    pub duplicate_reports: u64,
}

impl Outcome {
    /// A rollback with nothing wrong yet: the A/A failure the calibration bounds.
    pub fn false_rollback(&self) -> bool {
        matches!(self.end, End::RolledBack(_))
            && self.onset_ms.is_none_or(|onset| self.end_ms <= onset)
    }

    /// Time from the regression's start to the rollback, when it was caught.
    pub fn detection_ms(&self) -> Option<i64> {
        match (self.end, self.onset_ms) {
            (End::RolledBack(_), Some(onset)) if self.end_ms > onset => Some(self.end_ms - onset),
            _ => None,
        }
    }

    /// Time to 100 %, when the rollout got there.
    pub fn completed_ms(&self) -> Option<i64> {
        (self.end == End::Completed).then_some(self.end_ms)
    }

    fn hold(&mut self, reason: Reason) {
        match self.holds.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.holds.push((reason, 1)),
        }
    }
}

/// How much of the window `[start, start + window_ms)` the canary spends regressed under
/// `onset`, given the onset found so far (`known`) and where the release is.
fn regressed_ms(
    onset: &Onset,
    known: Option<i64>,
    (spec, state, at): (&Spec, &State, &Position),
    start: i64,
    window_ms: i64,
) -> (i64, Option<i64>) {
    let from = match onset {
        // Only while the state serves every flag of the interaction; stages change at window
        // closes, so a window is regressed whole or not at all.
        Onset::WhenServing(keys) => {
            return if serves_all(spec, state, keys) {
                (window_ms, known.or(Some(start)))
            } else {
                (0, known)
            };
        }
        Onset::AtMs(t) => known.or(Some(*t)),
        Onset::AtStep(s) => known.or_else(|| (at.step >= *s).then_some(at.step_start_ms)),
    };
    let end = start + window_ms;
    let bad = from.map_or(0, |t| (end - t.max(start)).clamp(0, window_ms));
    (bad, from.filter(|&t| t < end).or(known))
}

/// The gate behind a rollback decided by one: the first gate result of the decision's kind
/// that asks for a rollback.
fn deciding_gate(j: &Judgement) -> Option<String> {
    let kind = match j.reason {
        Reason::MetricRegression => "relative",
        Reason::GateBreached => "absolute",
        _ => return None,
    };
    let g = j.gates.iter().find(|g| g.kind == kind && g.rollback)?;
    Some(g.name.clone())
}

/// Replays `scenario` with `seed`; the same seed gives the same outcome.
pub fn run(scenario: &Scenario, seed: u64) -> Outcome {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    // Faults draw from their own stream, so adding faults to a scenario leaves its traffic as
    // it was: a duplicate-only run then judges exactly what the fault-free run judges.
    let mut fault_rng = Pcg64Mcg::seed_from_u64(seed ^ FAULT_STREAM);
    let plan = &scenario.plan;
    let spec = scenario.spec();
    let window_ms = plan.policy.window_ms.max(1);
    let healthy = Source::new(&scenario.health);
    let regressed = scenario
        .regression
        .as_ref()
        .map(|r| (&r.onset, Source::new(&r.apply(&scenario.health))));
    let mut out = Outcome {
        end: End::Horizon,
        end_ms: scenario.horizon_ms,
        onset_ms: None,
        stage: 0,
        windows: 0,
        holds: Vec::new(),
        gate: None,
        evaluations: 0,
        outcomes: 0,
        late_reports: 0,
        lost_reports: 0,
        duplicate_reports: 0,
    };
    // A person starts it. Only a rollout that starts at 100 % has no stage to start.
    let Ok(started) = apply(&spec, &State::default(), &Event::Start) else {
        out.end = End::Completed;
        out.end_ms = 0;
        return out;
    };
    let mut state = started.state;
    let mut at = Position {
        step: state.stage.unwrap_or(0),
        step_start_ms: 0,
        started_ms: 0,
    };
    let mut windows: Vec<Window> = Vec::new();
    let mut now = 0;
    while now + window_ms <= scenario.horizon_ms {
        let start = now;
        let delivery = scenario.faults.deliver(&mut fault_rng);
        out.late_reports += u64::from(delivery.late);
        out.lost_reports += u64::from(delivery.lost);
        out.duplicate_reports += u64::from(delivery.duplicates);
        let cohorts = Cohorts::of(&spec, &state, scenario.segment_share());
        // Expected arrivals in `ms` in a cohort of `share`, from the instances that got through.
        let received = delivery.share(scenario.faults.instances);
        let mean = |share: f64, ms: i64| scenario.rps * share / 1000.0 * received * ms as f64;
        let mut canary = Cohort::default();
        let mut control = Cohort::default();
        healthy.draw(&mut rng, mean(cohorts.control, window_ms), &mut control);
        // The canary is healthy until the onset, regressed after it, within the window too.
        let (bad_ms, onset) = regressed.as_ref().map_or((0, None), |(onset, _)| {
            regressed_ms(onset, out.onset_ms, (&spec, &state, &at), start, window_ms)
        });
        let good = mean(cohorts.canary, window_ms - bad_ms);
        healthy.draw(&mut rng, good, &mut canary);
        if let Some((_, source)) = &regressed {
            let bad = mean(cohorts.canary, bad_ms);
            source.draw(&mut rng, bad, &mut canary);
        }
        out.onset_ms = onset;
        out.evaluations += canary.evaluations + control.evaluations;
        out.outcomes += canary.outcomes() + control.outcomes();
        now = start + window_ms;
        windows.push(Window {
            end_ms: now,
            step: at.step,
            canary,
            control,
            reports: u64::from(delivery.delivered),
            late_reports: u64::from(delivery.late),
            dropped_series: 0,
        });
        // A paused release keeps collecting windows but is not judged.
        if !judged(&state) {
            continue;
        }
        out.windows += 1;
        let j = judge(plan, &at, &windows, now);
        if j.kind == Kind::Hold {
            out.hold(j.reason);
        }
        let event = event_for(&j, state.phase);
        let t = apply(&spec, &state, &event).unwrap_or_else(|e| {
            panic!("the state machine refused the judge's {event:?} at {now} ms: {e}")
        });
        state = t.state;
        out.stage = state.stage.unwrap_or(0);
        if t.log.action == Action::StageStarted {
            at.step = out.stage;
            at.step_start_ms = now;
        }
        match state.phase {
            Phase::Completed => out.end = End::Completed,
            Phase::RolledBack => {
                out.end = End::RolledBack(j.reason);
                out.gate = deciding_gate(&j);
            }
            _ => continue,
        }
        out.end_ms = now;
        return out;
    }
    out
}
