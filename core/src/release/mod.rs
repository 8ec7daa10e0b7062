//! The release state machine: a release moves several flags of one environment through ordered
//! stages over one cohort. [`apply`] is a pure function of (spec, state, event) returning the
//! next state, the flag changes to make (in one write) and the log entry that explains them; the
//! server stores and publishes what it returns and decides nothing itself. The judge's
//! PROMOTE / HOLD / ROLLBACK arrive here as events like a person's.
//!
//! What a flag serves is a function of the state alone ([`serving`]): every transition's
//! changes are exactly the flags whose serving differs between the two states, so no sequence
//! of events can leave a flag serving something the release does not explain (a property test
//! checks it).
//!
//! - [`serving`]: what each flag serves in a state; [`wire`]: the stored record (and a one-flag
//!   rollout) as the state machine sees it;
//! - [`Event`]s and their [`Refusal`]s; the [`Log`] entry of each transition.

mod serving;
#[cfg(test)]
mod tests;
pub mod wire;

pub use serving::{Serving, serving};

use std::collections::{BTreeMap, BTreeSet};

/// A share of units meaning "everyone", in basis points.
pub const EVERYONE: u32 = 10_000;

/// Who a stage's variants are served to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Audience {
    /// A share of units (basis points) with an equal control cohort served every baseline;
    /// [`EVERYONE`] means everyone, without control.
    Share(u32),
    /// The units of a segment; no control.
    Segment(String),
    /// Everyone; no control.
    Everyone,
}

impl Audience {
    /// Whether the stage has a randomised control cohort (and so relative tests).
    pub fn controlled(&self) -> bool {
        matches!(self, Audience::Share(bp) if *bp < EVERYONE)
    }
}

/// One flag of a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagSpec {
    /// The flag key.
    pub key: String,
    /// What it serves outside the stage's audience, to control, and after a rollback.
    pub baseline: String,
}

/// One stage.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StageSpec {
    /// Its audience.
    pub audience: Audience,
    /// Flag key -> variant served to the audience; flags not named serve their baseline.
    pub variants: BTreeMap<String, String>,
    /// The stage begins only once approved.
    pub require_approval: bool,
}

/// What a release is: its flags and stages.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Spec {
    /// The flags, in declared order.
    pub flags: Vec<FlagSpec>,
    /// The stages, in order.
    pub stages: Vec<StageSpec>,
}

impl Spec {
    /// The variant `flag` is served in stage `stage` (its baseline if the stage names none).
    pub fn variant(&self, stage: usize, flag: &FlagSpec) -> String {
        self.stages
            .get(stage)
            .and_then(|s| s.variants.get(&flag.key))
            .unwrap_or(&flag.baseline)
            .clone()
    }
}

/// Where a release is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Phase {
    /// Defined, not started.
    Draft,
    /// A stage is served and judged.
    Running,
    /// No automatic decisions; the current stage (if any) keeps serving.
    Paused,
    /// The next stage awaits approval; the current stage (if any) keeps serving and is judged
    /// for rollback.
    AwaitingApproval,
    /// Every flag serves its last-stage variant to everyone.
    Completed,
    /// Every flag serves its baseline.
    RolledBack,
}

impl Phase {
    /// Whether the release still owns its flags (started and not ended).
    pub fn active(self) -> bool {
        matches!(
            self,
            Phase::Running | Phase::Paused | Phase::AwaitingApproval
        )
    }
}

/// The state of a release: all that [`serving`] and [`apply`] read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct State {
    /// The phase.
    pub phase: Phase,
    /// The stage being served; `None` before the first stage begins.
    pub stage: Option<usize>,
    /// Flags returned to their baseline by partial rollbacks.
    pub rolled_back: BTreeSet<String>,
}

impl Default for State {
    fn default() -> Self {
        Self {
            phase: Phase::Draft,
            stage: None,
            rolled_back: BTreeSet::new(),
        }
    }
}

impl State {
    /// The stage the release would go to next.
    pub fn next_stage(&self) -> usize {
        self.stage.map_or(0, |s| s + 1)
    }
}

/// Who caused an event: the judge acting on the evidence, or a person.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum By {
    /// The judge.
    Judge,
    /// A person (an admin token).
    Person,
}

/// What can happen to a release.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// Start a draft: the first stage begins, or awaits approval.
    Start,
    /// Approve stage `stage`, which must be the one awaiting approval; it begins.
    Approve {
        /// The stage approved.
        stage: usize,
    },
    /// Go to the next stage (or complete after the last). From a person this also approves a
    /// stage that requires approval; from the judge it stops at such a stage to await it.
    Promote(By),
    /// The judge found nothing to act on (logged, nothing changes).
    Hold,
    /// Every flag back to baseline; the release ends.
    Rollback(By),
    /// One flag back to its baseline; the release goes on, or pauses with `hold`.
    RollbackFlag {
        /// The flag.
        flag: String,
        /// Pause after it.
        hold: bool,
        /// Who.
        by: By,
    },
    /// Stop automatic decisions.
    Pause,
    /// Resume automatic decisions.
    Resume,
    /// Somebody changed what one of the release's flags serves with `force`: the evidence no
    /// longer describes the stage, so the release pauses until a person looks.
    ForcedWrite {
        /// The flag written.
        flag: String,
    },
}

/// What a transition did, for the decision log.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    /// The first stage began (or awaits approval: see the phase).
    Started,
    /// A stage began, after a promotion or an approval.
    StageStarted,
    /// The judge wanted to promote; the next stage awaits approval.
    AwaitingApproval,
    /// The last stage was promoted.
    Completed,
    /// Nothing changed.
    Held,
    /// Every flag went back to its baseline.
    RolledBack,
    /// One flag went back to its baseline.
    FlagRolledBack,
    /// Automatic decisions stopped.
    Paused,
    /// Automatic decisions resumed.
    Resumed,
    /// A forced write paused the release.
    ForcedWrite,
}

/// One log entry: what a transition did, to which stage and flag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Log {
    /// What happened.
    pub action: Action,
    /// The stage served after it (or awaiting approval, for [`Action::AwaitingApproval`]).
    pub stage: Option<usize>,
    /// The flag of a partial rollback or forced write.
    pub flag: Option<String>,
}

/// One flag change a transition makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    /// The flag.
    pub flag: String,
    /// What it now serves.
    pub serving: Serving,
}

/// The result of an accepted event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// The new state.
    pub state: State,
    /// The flags whose serving changes, in the spec's order: one write.
    pub changes: Vec<Change>,
    /// The log entry.
    pub log: Log,
}

/// Why an event was refused (the state is unchanged).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// The event does not apply in this phase.
    #[error("the release is {}: cannot {what}", phase_name(*.phase))]
    Phase {
        /// The phase.
        phase: Phase,
        /// What was asked.
        what: &'static str,
    },
    /// Approval of a stage that is not the one awaiting it.
    #[error("stage {asked} does not await approval ({})", awaiting_text(.awaiting))]
    NotAwaiting {
        /// The stage named.
        asked: usize,
        /// The stage that awaits approval, if any.
        awaiting: Option<usize>,
    },
    /// A flag the release does not move.
    #[error("flag {0:?} is not part of the release")]
    UnknownFlag(String),
    /// A flag already returned to its baseline.
    #[error("flag {0:?} is already back at its baseline")]
    AlreadyRolledBack(String),
    /// A release without stages or flags cannot start.
    #[error("a release needs at least one flag and one stage")]
    Empty,
}

/// A phase as people read it in messages: the wire's name (`ROLLED_BACK`), never Rust's.
fn phase_name(phase: Phase) -> &'static str {
    wire::release_state(phase)
        .as_str_name()
        .trim_start_matches("RELEASE_STATE_")
}

fn awaiting_text(awaiting: &Option<usize>) -> String {
    awaiting.map_or_else(|| "no stage does".to_owned(), |s| format!("stage {s} does"))
}

/// Applies `event` to `state`.
pub fn apply(spec: &Spec, state: &State, event: &Event) -> Result<Transition, Refusal> {
    use Phase::*;
    let phase = state.phase;
    let refuse = |what| Err(Refusal::Phase { phase, what });
    let mut next = state.clone();
    let mut log = Log {
        action: Action::Held,
        stage: state.stage,
        flag: None,
    };
    match event {
        Event::Start => {
            if phase != Draft {
                return refuse("start");
            }
            if spec.flags.is_empty() || spec.stages.is_empty() {
                return Err(Refusal::Empty);
            }
            enter(spec, &mut next, By::Person, &mut log);
            if next.phase == Running {
                log.action = Action::Started;
            }
        }
        Event::Approve { stage } => {
            if phase != AwaitingApproval {
                return refuse("approve a stage");
            }
            let awaiting = state.next_stage();
            if *stage != awaiting {
                return Err(Refusal::NotAwaiting {
                    asked: *stage,
                    awaiting: Some(awaiting),
                });
            }
            begin(&mut next, awaiting, &mut log);
        }
        Event::Promote(by) => {
            let allowed = match by {
                By::Judge => phase == Running,
                By::Person => phase.active(),
            };
            if !allowed {
                return refuse("promote");
            }
            enter(spec, &mut next, *by, &mut log);
        }
        Event::Hold => {
            if !phase.active() {
                return refuse("hold");
            }
        }
        Event::Rollback(by) => {
            let allowed = match by {
                // The judge also guards a stage that awaits the next one's approval.
                By::Judge => matches!(phase, Running | AwaitingApproval),
                By::Person => phase.active(),
            };
            if !allowed {
                return refuse("roll back");
            }
            end(&mut next, RolledBack, Action::RolledBack, &mut log);
        }
        Event::RollbackFlag { flag, hold, by } => {
            let allowed = match by {
                By::Judge => matches!(phase, Running | AwaitingApproval),
                By::Person => phase.active(),
            };
            if !allowed {
                return refuse("roll back a flag");
            }
            if !spec.flags.iter().any(|f| &f.key == flag) {
                return Err(Refusal::UnknownFlag(flag.clone()));
            }
            if !next.rolled_back.insert(flag.clone()) {
                return Err(Refusal::AlreadyRolledBack(flag.clone()));
            }
            log.flag = Some(flag.clone());
            if spec.flags.iter().all(|f| next.rolled_back.contains(&f.key)) {
                // Nothing of the release is served any more: it has rolled back.
                end(&mut next, RolledBack, Action::RolledBack, &mut log);
            } else {
                log.action = Action::FlagRolledBack;
                if *hold {
                    next.phase = Paused;
                }
            }
        }
        Event::Pause => {
            if !matches!(phase, Running | AwaitingApproval) {
                return refuse("pause");
            }
            next.phase = Paused;
            log.action = Action::Paused;
        }
        Event::Resume => {
            if phase != Paused {
                return refuse("resume");
            }
            // A release paused before its first stage began goes back to awaiting approval.
            next.phase = if state.stage.is_none() {
                AwaitingApproval
            } else {
                Running
            };
            log.action = Action::Resumed;
        }
        Event::ForcedWrite { flag } => {
            if !phase.active() {
                return refuse("record a forced write");
            }
            if !spec.flags.iter().any(|f| &f.key == flag) {
                return Err(Refusal::UnknownFlag(flag.clone()));
            }
            next.phase = Paused;
            log.action = Action::ForcedWrite;
            log.flag = Some(flag.clone());
        }
    }
    Ok(Transition {
        changes: changes(spec, state, &next),
        state: next,
        log,
    })
}

/// Goes to the next stage: completes after the last, awaits approval where the next stage
/// requires it (unless a person promotes, which approves it), else begins it.
fn enter(spec: &Spec, next: &mut State, by: By, log: &mut Log) {
    let stage = next.next_stage();
    let Some(s) = spec.stages.get(stage) else {
        end(next, Phase::Completed, Action::Completed, log);
        return;
    };
    // A person promoting into such a stage approves it; starting a release does not.
    if s.require_approval && (by == By::Judge || next.phase == Phase::Draft) {
        next.phase = Phase::AwaitingApproval;
        log.action = Action::AwaitingApproval;
        log.stage = Some(stage);
        return;
    }
    begin(next, stage, log);
}

fn begin(next: &mut State, stage: usize, log: &mut Log) {
    next.stage = Some(stage);
    next.phase = Phase::Running;
    log.action = Action::StageStarted;
    log.stage = Some(stage);
}

fn end(next: &mut State, phase: Phase, action: Action, log: &mut Log) {
    next.phase = phase;
    log.action = action;
    log.stage = next.stage;
}

/// The flags whose serving differs between two states, in the spec's order.
fn changes(spec: &Spec, before: &State, after: &State) -> Vec<Change> {
    spec.flags
        .iter()
        .filter_map(|f| {
            let now = serving(spec, after, f)?;
            (serving(spec, before, f).as_ref() != Some(&now)).then(|| Change {
                flag: f.key.clone(),
                serving: now,
            })
        })
        .collect()
}
