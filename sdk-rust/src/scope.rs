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

use crate::client::Client;
use crate::metrics::Served;
use std::cell::RefCell;
use std::future::Future;
use std::time::Instant;

tokio::task_local! {
    static SCOPE: RefCell<Vec<Served>>;
}

fn same(s: &Served, flag: &str, variant: &str, cohort: &str, rollout_id: &str) -> bool {
    s.flag == flag && s.variant == variant && s.cohort == cohort && s.rollout_id == rollout_id
}

/// Remembers a served flag in the current scope, if there is one.
pub(crate) fn remember(flag: &str, variant: &str, cohort: &str, rollout_id: &str) {
    let _ = SCOPE.try_with(|scope| {
        let mut scope = scope.borrow_mut();
        if !scope
            .iter()
            .any(|s| same(s, flag, variant, cohort, rollout_id))
        {
            scope.push(Served {
                flag: flag.to_owned(),
                variant: variant.to_owned(),
                cohort: cohort.to_owned(),
                rollout_id: rollout_id.to_owned(),
            });
        }
    });
}

/// Hands what an inner scope served to the enclosing one, if any.
fn adopt(served: Vec<Served>) {
    let _ = SCOPE.try_with(|scope| {
        let mut scope = scope.borrow_mut();
        for s in served {
            if !scope
                .iter()
                .any(|o| same(o, &s.flag, &s.variant, &s.cohort, &s.rollout_id))
            {
                scope.push(s);
            }
        }
    });
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
        if let Ok(served) = SCOPE.try_with(|s| std::mem::take(&mut *s.borrow_mut())) {
            self.client
                .scope_outcome(&served, false, self.started.elapsed());
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
    let (output, served) = SCOPE
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
    client.scope_outcome(&served, ok(&output), started.elapsed());
    adopt(served);
    output
}
