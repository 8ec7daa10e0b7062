//! One simulated rollout, driven exactly as the server drives the judge: a window closes every
//! `policy.window_ms`, the judge sees every closed window of the rollout, PROMOTE moves to the
//! next step from that instant, ROLLBACK ends the rollout.

use flagwire_core::judge::{Cohort, Kind, Position, Reason, Window, judge};
use rand::SeedableRng;
use rand_pcg::Pcg64Mcg;

use crate::COMPLETE;
use crate::scenario::{Onset, Scenario};
use crate::traffic::Source;

/// Mixed into a run's seed for the fault stream (any constant other than 0 does).
const FAULT_STREAM: u64 = 0x5eed_fa17_5eed_fa17;

/// How a run ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// Promoted into the complete step (100 %).
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
    /// Windows judged.
    pub windows: u32,
    /// Windows the judge held for, by reason (minimum duration included).
    pub holds: Vec<(Reason, u32)>,
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

/// Replays `scenario` with `seed`; the same seed gives the same outcome.
pub fn run(scenario: &Scenario, seed: u64) -> Outcome {
    let mut rng = Pcg64Mcg::seed_from_u64(seed);
    // Faults draw from their own stream, so adding faults to a scenario leaves its traffic as
    // it was: a duplicate-only run then judges exactly what the fault-free run judges.
    let mut fault_rng = Pcg64Mcg::seed_from_u64(seed ^ FAULT_STREAM);
    let plan = &scenario.plan;
    let window_ms = plan.policy.window_ms.max(1);
    let healthy = Source::new(scenario.health);
    let regressed = scenario
        .regression
        .map(|r| (r, Source::new(r.apply(scenario.health))));
    let mut at = Position {
        step: 0,
        step_start_ms: 0,
        started_ms: 0,
    };
    let mut out = Outcome {
        end: End::Horizon,
        end_ms: scenario.horizon_ms,
        onset_ms: None,
        windows: 0,
        holds: Vec::new(),
        late_reports: 0,
        lost_reports: 0,
        duplicate_reports: 0,
    };
    let onset_of = |at: &Position| match regressed.as_ref()?.0.onset {
        Onset::AtMs(t) => Some(t),
        Onset::AtStep(s) => (at.step >= s).then_some(at.step_start_ms),
    };
    if plan
        .steps
        .first()
        .is_none_or(|s| s.basis_points >= COMPLETE)
    {
        out.end = End::Completed;
        out.end_ms = 0;
        return out;
    }
    let mut windows: Vec<Window> = Vec::new();
    let mut now = 0;
    while now + window_ms <= scenario.horizon_ms {
        let (start, end) = (now, now + window_ms);
        let delivery = scenario.faults.deliver(&mut fault_rng);
        out.late_reports += u64::from(delivery.late);
        out.lost_reports += u64::from(delivery.lost);
        out.duplicate_reports += u64::from(delivery.duplicates);
        // Expected arrivals per ms in each judged cohort, from the instances that got through.
        let share = f64::from(plan.steps[at.step].basis_points) / 10_000.0;
        let per_ms = scenario.rps * share / 1000.0 * delivery.share(scenario.faults.instances);
        let mut canary = Cohort::default();
        let mut control = Cohort::default();
        healthy.draw(&mut rng, per_ms * window_ms as f64, &mut control);
        // The canary is healthy until the onset, regressed after it, within the window too.
        let onset = out.onset_ms.or_else(|| onset_of(&at));
        let bad_ms = onset.map_or(0, |t| (end - t.max(start)).clamp(0, window_ms));
        healthy.draw(&mut rng, per_ms * (window_ms - bad_ms) as f64, &mut canary);
        if let Some((_, source)) = &regressed {
            source.draw(&mut rng, per_ms * bad_ms as f64, &mut canary);
        }
        if onset.is_some_and(|t| t < end) {
            out.onset_ms = onset;
        }
        windows.push(Window {
            end_ms: end,
            step: at.step,
            canary,
            control,
            reports: u64::from(delivery.delivered),
            late_reports: u64::from(delivery.late),
            dropped_series: 0,
        });
        now = end;
        out.windows += 1;
        let j = judge(plan, &at, &windows, now);
        match j.kind {
            Kind::Hold => out.hold(j.reason),
            Kind::Rollback => {
                out.end = End::RolledBack(j.reason);
                out.end_ms = now;
                return out;
            }
            Kind::Promote => {
                at.step += 1;
                at.step_start_ms = now;
                if plan
                    .steps
                    .get(at.step)
                    .is_none_or(|s| s.basis_points >= COMPLETE)
                {
                    out.end = End::Completed;
                    out.end_ms = now;
                    return out;
                }
            }
        }
    }
    out
}
