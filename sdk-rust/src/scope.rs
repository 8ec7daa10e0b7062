//! Request scopes: what [`Client::scope`], [`Client::measure`] and the tower layer measure.
//!
//! A scope is a Tokio task-local set around the scope's future, so flags read by that future
//! (in the same task) are remembered; work spawned onto other tasks is not. When the future
//! ends, its outcome (success or error, and its duration) goes on the series of every flag
//! served in the scope, and once per distinct (release, cohort) among them into the release
//! outcomes (`cohorts`).
//!
//! Evaluations outside any scope cost one failed task-local lookup here. Inside one, a flag
//! is remembered (allocating) only the first time the scope sees it; the bookkeeping of
//! releases happens at the scope's end, from what was remembered, not per evaluation.
//!
//! Scopes nest: an inner scope records its own outcome, then hands what it served to the
//! enclosing scope, which therefore still counts every flag read while it ran (a `measure`
//! inside the layer's request is one outcome of each).
//!
//! The team's own metric events (`track`, `observe`, …) recorded in a scope are held in it, per
//! name, and attributed when it ends to everything it served (`metric_window`). An inner scope
//! hands its events up with its flags instead: an event happens once, and belongs to the
//! outermost scope, the request, which is what a per-request metric counts.

use crate::client::Client;
use crate::metric_event::{MetricEvent, ScopeMetrics};
use crate::metrics::Served;
use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

/// What a scope gathers while it runs.
#[derive(Default)]
struct ScopeState {
    served: Vec<Served>,
    metrics: ScopeMetrics,
}

tokio::task_local! {
    static SCOPE: RefCell<ScopeState>;
}

/// Why a metric event could not be held by the current scope.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NotHeld {
    /// There is no scope in this task (or it is busy: never the case outside this module).
    NoScope,
    /// The scope holds as many names as it may.
    Full,
}

/// Holds a valid metric event in the current scope until it ends.
pub(crate) fn record_metric(name: &str, event: MetricEvent) -> Result<(), NotHeld> {
    SCOPE
        .try_with(|scope| {
            // `try_borrow_mut`: this runs from timers' `Drop`, where panicking would abort.
            let mut scope = scope.try_borrow_mut().map_err(|_| NotHeld::NoScope)?;
            match scope.metrics.record(name, event) {
                true => Ok(()),
                false => Err(NotHeld::Full),
            }
        })
        .unwrap_or(Err(NotHeld::NoScope))
}

fn same(s: &Served, flag: &str, variant: &str, cohort: &str, rollout_id: &str) -> bool {
    s.flag == flag && s.variant == variant && s.cohort == cohort && s.rollout_id == rollout_id
}

/// Remembers a served flag in the current scope, if there is one.
pub(crate) fn remember(flag: &str, variant: &str, cohort: &str, rollout_id: &str) {
    let _ = SCOPE.try_with(|scope| {
        let served = &mut scope.borrow_mut().served;
        if !served
            .iter()
            .any(|s| same(s, flag, variant, cohort, rollout_id))
        {
            served.push(Served {
                flag: flag.to_owned(),
                variant: variant.to_owned(),
                cohort: cohort.to_owned(),
                rollout_id: rollout_id.to_owned(),
            });
        }
    });
}

/// Hands what an inner scope served and recorded to the enclosing one; gives it back when
/// there is none. Returns the number of metric events the enclosing scope had no room for.
fn hand_up(inner: ScopeState) -> Result<u64, ScopeState> {
    let mut inner = Some(inner);
    let dropped = SCOPE.try_with(|scope| {
        let Ok(mut outer) = scope.try_borrow_mut() else {
            return 0;
        };
        let Some(inner) = inner.take() else {
            return 0;
        };
        for s in inner.served {
            if !outer
                .served
                .iter()
                .any(|o| same(o, &s.flag, &s.variant, &s.cohort, &s.rollout_id))
            {
                outer.served.push(s);
            }
        }
        outer.metrics.absorb(inner.metrics)
    });
    match (dropped, inner) {
        (Ok(dropped), None) => Ok(dropped),
        (_, Some(inner)) => Err(inner),
        (Err(_), None) => Ok(0),
    }
}

/// Ends a scope: its outcome on what it served, its metric events to the enclosing scope or,
/// in the outermost, attributed.
fn end(client: &Client, state: ScopeState, ok: bool, started: Instant) {
    client.scope_outcome(&state.served, ok, started.elapsed());
    match hand_up(state) {
        Ok(0) => {}
        Ok(dropped) => client.drop_metric_events(dropped),
        Err(state) => client.scope_metrics(&state.served, state.metrics),
    }
}

/// Records an error if the scope's future panics (and nothing if it is cancelled: a request
/// dropped before it ended has no outcome).
struct PanicGuard<'a> {
    client: &'a Client,
    started: Instant,
    ended: bool,
}

impl Drop for PanicGuard<'_> {
    fn drop(&mut self) {
        if self.ended || !std::thread::panicking() {
            return;
        }
        // The enclosing scope is out of reach from here (and unwinding too): this scope's
        // events are attributed to what it served.
        let state = SCOPE.try_with(|s| s.try_borrow_mut().map(|mut s| std::mem::take(&mut *s)));
        if let Ok(Ok(state)) = state {
            self.client
                .scope_outcome(&state.served, false, self.started.elapsed());
            self.client.scope_metrics(&state.served, state.metrics);
        }
    }
}

/// Runs `work` as a scope that has already served `seed`; `ok` judges its output.
pub(crate) async fn run<F, T>(
    client: &Client,
    seed: Vec<Served>,
    work: F,
    ok: impl FnOnce(&T) -> bool,
) -> T
where
    F: Future<Output = T>,
{
    let started = Instant::now();
    let seed = ScopeState {
        served: seed,
        metrics: ScopeMetrics::default(),
    };
    let (output, state) = SCOPE
        .scope(RefCell::new(seed), async {
            let mut guard = PanicGuard {
                client,
                started,
                ended: false,
            };
            let output = work.await;
            guard.ended = true;
            (output, SCOPE.with(|s| std::mem::take(&mut *s.borrow_mut())))
        })
        .await;
    end(client, state, ok(&output), started);
    output
}
