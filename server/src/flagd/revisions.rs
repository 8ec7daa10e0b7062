//! An environment's evaluation snapshots, one per revision: the current one at once, then a
//! newer one after each commit. `EventStream` diffs consecutive ones, `SyncFlags` exports them.

use crate::catalog::Catalog;
use flagwire_core::Snapshot;
use futures::Stream;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::broadcast::{Receiver, error::RecvError, error::TryRecvError};
use tonic::Status;

/// How often an idle stream checks that its token is still live (revocation is not a change
/// of the environment, so nothing else would wake it).
const TOKEN_CHECK: Duration = Duration::from_secs(5);

struct Cursor {
    catalog: Arc<Catalog>,
    env: String,
    token_id: String,
    rx: Receiver<Arc<crate::hub::Published>>,
    // The revision of the last snapshot yielded; `None` before the first.
    last: Option<u64>,
    done: bool,
}

impl Cursor {
    async fn next(mut self) -> Option<(Result<Arc<Snapshot>, Status>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if !self.token_id.is_empty() && !self.catalog.token_live(&self.token_id) {
                self.done = true;
                return Some((Err(Status::unauthenticated("token revoked")), self));
            }
            if self.last.is_some() {
                let received = tokio::select! {
                    received = self.rx.recv() => received,
                    () = tokio::time::sleep(TOKEN_CHECK) => continue,
                };
                match received {
                    Ok(_) => {}
                    // Behind: the snapshot read below covers whatever was dropped.
                    Err(RecvError::Lagged(_)) => self.rx = self.rx.resubscribe(),
                    Err(RecvError::Closed) => return None,
                }
                // A commit of several changes publishes several; one snapshot covers them all.
                loop {
                    match self.rx.try_recv() {
                        Ok(_) => {}
                        Err(TryRecvError::Lagged(_)) => self.rx = self.rx.resubscribe(),
                        Err(TryRecvError::Empty | TryRecvError::Closed) => break,
                    }
                }
            }
            match self.catalog.engine(&self.env) {
                Ok(snapshot) if Some(snapshot.revision()) == self.last => continue,
                Ok(snapshot) => {
                    self.last = Some(snapshot.revision());
                    return Some((Ok(snapshot), self));
                }
                Err(e) => {
                    self.done = true;
                    return Some((Err(e.into()), self));
                }
            }
        }
    }
}

/// The snapshots of `env`, the current one first. Subscribes before reading, so no commit
/// falls between the first snapshot and the next; ends when the server shuts down, and with
/// `UNAUTHENTICATED` once the token `token_id` (empty: none) is revoked.
pub fn revisions(
    catalog: Arc<Catalog>,
    env: &str,
    token_id: &str,
) -> Result<impl Stream<Item = Result<Arc<Snapshot>, Status>> + Send + 'static, Status> {
    let rx = catalog
        .hub()
        .subscribe(env)
        .ok_or_else(|| Status::unavailable("server is shutting down"))?;
    // Fail the call itself (not the first message) for an unknown environment.
    catalog.revision(env)?;
    let cursor = Cursor {
        catalog,
        env: env.to_owned(),
        token_id: token_id.to_owned(),
        rx,
        last: None,
        done: false,
    };
    Ok(futures::stream::unfold(cursor, Cursor::next))
}
