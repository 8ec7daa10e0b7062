//! Leadership: which replica runs what acts on time (the release driver and judge, scheduled
//! changes, ramps, plan executions, retention), and the fencing of its writes.
//!
//! The store elects the leader (PostgreSQL: a session advisory lock and a token raised by each
//! new leader; embedded stores: the one process always leads, token 0). A leader-only task runs
//! inside [`as_leader`], which makes every catalog write it makes carry the token; the store
//! refuses such a write once another replica has taken over, so a deposed leader that has not
//! noticed yet applies nothing, and no step is applied twice.

use super::Catalog;
use std::future::Future;

tokio::task_local! {
    static FENCE: u64;
}

/// The token the current task's writes carry, if it is a leader-only task.
pub(super) fn fence() -> Option<u64> {
    FENCE.try_with(|t| *t).ok()
}

/// Runs `work` as a leader-only task under `token`.
pub async fn as_leader<F: Future>(token: u64, work: F) -> F::Output {
    FENCE.scope(token, work).await
}

/// Runs `work` under the current task's token, if any (for tasks a leader-only task spawns).
pub async fn inherit<F: Future>(token: Option<u64>, work: F) -> F::Output {
    match token {
        Some(t) => FENCE.scope(t, work).await,
        None => work.await,
    }
}

/// The current task's token, to hand to [`inherit`] in a task it spawns.
pub fn current() -> Option<u64> {
    fence()
}

impl Catalog {
    /// `Some(token)` while this replica leads, `None` while another does.
    pub fn leadership(&self) -> Option<u64> {
        match self.store.leadership() {
            None => Some(0),
            Some(rx) => *rx.borrow(),
        }
    }
}
