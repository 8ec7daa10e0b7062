//! The stream a Watch call returns.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::metrics::instances::Connection;
use flagwire_proto::v1::{Change, Heartbeat, Snapshot, WatchResponse, watch_response::Event};
use futures::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tonic::Status;

struct Cursor {
    catalog: Arc<Catalog>,
    env: String,
    // The token the stream was opened with; once it is revoked the stream ends.
    token_id: String,
    // Set after a terminal error has been sent.
    done: bool,
    rx: Receiver<Arc<Change>>,
    // The revision the client holds once it has applied everything sent so far.
    last: u64,
    pending: VecDeque<WatchResponse>,
    heartbeat: Duration,
}

fn event(event: Event) -> WatchResponse {
    WatchResponse { event: Some(event) }
}

impl Cursor {
    fn queue_snapshot(&mut self) -> Result<()> {
        let snapshot: Snapshot = self.catalog.snapshot(&self.env)?;
        self.last = snapshot.revision;
        self.pending.clear();
        self.pending.push_back(event(Event::Snapshot(snapshot)));
        Ok(())
    }

    fn heartbeat(&self) -> WatchResponse {
        // The stream's own position, not the store's: a change committed but not yet sent on
        // this stream must not look like a gap to the client.
        event(Event::Heartbeat(Heartbeat {
            revision: self.last,
            server_time: Some(SystemTime::now().into()),
        }))
    }

    /// The next message, or `None` when the hub closed (shutdown).
    async fn next(mut self) -> Option<(Result<WatchResponse, Status>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if !self.token_id.is_empty() && !self.catalog.token_live(&self.token_id) {
                self.done = true;
                return Some((Err(Status::unauthenticated("token revoked")), self));
            }
            if let Some(message) = self.pending.pop_front() {
                return Some((Ok(message), self));
            }
            let received = tokio::select! {
                received = self.rx.recv() => received,
                () = tokio::time::sleep(self.heartbeat) => {
                    let beat = self.heartbeat();
                    return Some((Ok(beat), self));
                }
            };
            match received {
                Ok(change) if change.revision <= self.last => continue,
                Ok(change) if change.revision == self.last + 1 => {
                    self.last = change.revision;
                    return Some((Ok(event(Event::Change((*change).clone()))), self));
                }
                // A gap cannot happen with an ordered hub, but a snapshot is always safe.
                Ok(_) | Err(RecvError::Lagged(_)) => {
                    // Rejoin at the tail first (subscribe, then read): what is still buffered
                    // may be overwritten again before we get to it, and the snapshot covers it.
                    self.rx = self.rx.resubscribe();
                    if let Err(e) = self.queue_snapshot() {
                        self.done = true;
                        return Some((Err(e.into()), self));
                    }
                }
                Err(RecvError::Closed) => return None,
            }
        }
    }
}

/// Snapshot or catch-up, then live changes and heartbeats, in revision order without gaps.
pub struct WatchStream {
    inner: Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>,
    // The SDK instance's registration, released when the stream is dropped; never touched
    // per message.
    _connection: Option<Connection>,
}

impl WatchStream {
    /// Opens a stream of `env` for a client that has applied `since` (0 = nothing).
    ///
    /// Subscribes before reading state, so every change committed after the read arrives
    /// through the hub, and changes the read already covered are skipped by revision.
    /// `token_id` names the caller's token (empty for none): the stream ends with
    /// `UNAUTHENTICATED` once it is revoked.
    pub fn open(
        catalog: Arc<Catalog>,
        token_id: &str,
        env: &str,
        since: u64,
        heartbeat: Duration,
    ) -> Result<Self> {
        let rx = catalog
            .hub()
            .subscribe(env)
            .ok_or_else(|| Error::Unavailable("server is shutting down".into()))?;
        let current = catalog.revision(env)?;
        let mut cursor = Cursor {
            catalog,
            env: env.to_owned(),
            token_id: token_id.to_owned(),
            done: false,
            rx,
            last: current,
            pending: VecDeque::new(),
            heartbeat,
        };
        let resumed = if since == 0 || since > current {
            None
        } else {
            cursor.catalog.changes_between(env, since, current)?
        };
        match resumed {
            Some(changes) if changes.is_empty() => {
                // Already up to date: say so at once instead of after a heartbeat interval.
                let beat = cursor.heartbeat();
                cursor.pending.push_back(beat);
            }
            Some(changes) => cursor
                .pending
                .extend(changes.into_iter().map(|c| event(Event::Change(c)))),
            None => cursor.queue_snapshot()?,
        }
        let inner = futures::stream::unfold(cursor, Cursor::next);
        Ok(Self {
            inner: Box::pin(inner),
            _connection: None,
        })
    }

    /// The stream, keeping `connection` open for as long as it lives.
    pub fn holding(mut self, connection: Connection) -> Self {
        self._connection = Some(connection);
        self
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}
