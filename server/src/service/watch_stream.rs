//! The stream a Watch call returns: frames, each either a change the hub has already encoded
//! (shared by every watcher of the environment) or a message of this stream alone.

use crate::catalog::Catalog;
use crate::error::{Error, Result};
use crate::hub::{Published, grpc_frame};
use crate::metrics::instances::Connection;
use bytes::Bytes;
use flagwire_proto::v1::{Heartbeat, Snapshot, WatchResponse, watch_response::Event};
use futures::Stream;
use std::collections::VecDeque;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, SystemTime};
use tokio::sync::broadcast::{Receiver, error::RecvError};
use tonic::Status;

/// One message of a Watch stream.
pub enum WatchFrame {
    /// A live change, encoded once by the hub for every watcher of its environment.
    Change(Arc<Published>),
    /// A snapshot, catch-up change or heartbeat of this stream alone (boxed: a frame is moved
    /// through several layers, and a live change is a pointer).
    Message(Box<WatchResponse>),
}

impl WatchFrame {
    /// The gRPC frame (length prefix and protobuf) to write: the hub's shared bytes for a live
    /// change, a fresh encoding otherwise.
    pub fn into_frame(self) -> Result<Bytes, Status> {
        let frame = match &self {
            Self::Change(published) => published.frame().cloned(),
            Self::Message(message) => grpc_frame(message.as_ref()),
        };
        frame.ok_or_else(|| Status::resource_exhausted("Watch message over 4 GiB"))
    }

    /// The message itself, for a caller that encodes it ([`WatchStream`]).
    pub fn into_message(self) -> WatchResponse {
        match self {
            Self::Change(published) => event(Event::Change(published.change().clone())),
            Self::Message(message) => *message,
        }
    }
}

struct Cursor {
    catalog: Arc<Catalog>,
    env: String,
    // The token the stream was opened with; once it is revoked the stream ends.
    token_id: String,
    // Set after a terminal error has been sent.
    done: bool,
    rx: Receiver<Arc<Published>>,
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
    async fn next(mut self) -> Option<(Result<WatchFrame, Status>, Self)> {
        loop {
            if self.done {
                return None;
            }
            if !self.token_id.is_empty() && !self.catalog.token_live(&self.token_id) {
                self.done = true;
                return Some((Err(Status::unauthenticated("token revoked")), self));
            }
            if let Some(message) = self.pending.pop_front() {
                if self.pending.is_empty() {
                    // Give back the queue's buffer (room for four messages of a few hundred
                    // bytes each) instead of holding it for the life of an idle stream.
                    self.pending = VecDeque::new();
                }
                return Some((Ok(WatchFrame::Message(Box::new(message))), self));
            }
            let received = tokio::select! {
                received = self.rx.recv() => received,
                () = tokio::time::sleep(self.heartbeat) => {
                    let beat = self.heartbeat();
                    return Some((Ok(WatchFrame::Message(Box::new(beat))), self));
                }
            };
            match received {
                Ok(change) if change.revision() <= self.last => continue,
                Ok(change) if change.revision() == self.last + 1 => {
                    self.last = change.revision();
                    return Some((Ok(WatchFrame::Change(change)), self));
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

/// Snapshot or catch-up, then live changes and heartbeats, in revision order without gaps: the
/// frames [`super::watch_route`] writes.
pub struct WatchFrames {
    inner: Pin<Box<dyn Stream<Item = Result<WatchFrame, Status>> + Send>>,
    // The SDK instance's registration, released when the stream is dropped; never touched
    // per message.
    _connection: Option<Connection>,
}

impl WatchFrames {
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

impl Stream for WatchFrames {
    type Item = Result<WatchFrame, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        self.inner.as_mut().poll_next(cx)
    }
}

/// The same stream as messages, for callers that encode them (tonic's generated FlagService,
/// in-process readers).
pub struct WatchStream {
    frames: WatchFrames,
}

impl WatchStream {
    /// Opens a stream; see [`WatchFrames::open`].
    pub fn open(
        catalog: Arc<Catalog>,
        token_id: &str,
        env: &str,
        since: u64,
        heartbeat: Duration,
    ) -> Result<Self> {
        let frames = WatchFrames::open(catalog, token_id, env, since, heartbeat)?;
        Ok(Self { frames })
    }

    /// The stream, keeping `connection` open for as long as it lives.
    pub fn holding(self, connection: Connection) -> Self {
        Self {
            frames: self.frames.holding(connection),
        }
    }

    /// The frames, live changes shared with every watcher of the environment.
    pub fn into_frames(self) -> WatchFrames {
        self.frames
    }
}

impl Stream for WatchStream {
    type Item = Result<WatchResponse, Status>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        Pin::new(&mut self.frames)
            .poll_next(cx)
            .map(|frame| frame.map(|f| f.map(WatchFrame::into_message)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{CatalogOptions, Meta};
    use crate::store::Store;
    use crate::store::memory::MemoryStore;
    use flagwire_proto::v1::{Flag, FlagConfig, ValueType, Variant, change::Kind};
    use futures::StreamExt;
    use prost::Message;

    fn flag(key: &str) -> Flag {
        let variant = |key: &str| Variant {
            key: key.into(),
            value: Some(flagwire_proto::v1::FlagValue {
                kind: Some(flagwire_proto::v1::flag_value::Kind::BoolValue(key == "on")),
            }),
            description: String::new(),
        };
        let config = FlagConfig {
            off_variant: "off".into(),
            default_rule: Some(flagwire_proto::v1::Serve {
                kind: Some(flagwire_proto::v1::serve::Kind::Variant("on".into())),
            }),
            ..Default::default()
        };
        Flag {
            key: key.into(),
            r#type: ValueType::Boolean as i32,
            variants: vec![variant("on"), variant("off")],
            environments: [("prod".to_owned(), config)].into(),
            ..Default::default()
        }
    }

    /// A real write through the catalog reaches two watchers of the environment as one
    /// encoding: both streams write the very same bytes (one allocation), and those bytes are
    /// the gRPC frame of the change each of them would otherwise have encoded.
    #[tokio::test]
    async fn two_watchers_write_the_same_encoded_change() {
        let store = Arc::new(MemoryStore::new());
        let batch = crate::vector_case::batch(r#"{"environment": "prod"}"#, "a", "s").unwrap();
        store.commit(batch).unwrap();
        let catalog = Arc::new(Catalog::open(store, CatalogOptions::default()).unwrap());
        let since = catalog.revision("prod").unwrap();
        let open = || {
            let catalog = Arc::clone(&catalog);
            WatchFrames::open(catalog, "", "prod", since, Duration::from_secs(300)).unwrap()
        };
        let mut watchers = [open(), open()];
        for watcher in &mut watchers {
            // Up to date: a heartbeat of its own first.
            let first = watcher.next().await.unwrap().unwrap();
            assert!(matches!(first, WatchFrame::Message(_)));
        }
        let meta = Meta {
            actor: "test".into(),
            reason: String::new(),
        };
        catalog.create_flag(&meta, flag("checkout")).await.unwrap();
        let mut frames = Vec::new();
        for watcher in &mut watchers {
            let WatchFrame::Change(published) = watcher.next().await.unwrap().unwrap() else {
                panic!("a live change is the hub's frame");
            };
            frames.push(WatchFrame::Change(published).into_frame().unwrap());
        }
        assert_eq!(
            frames[0].as_ptr(),
            frames[1].as_ptr(),
            "one encoding, shared"
        );
        assert_eq!(frames[0].len(), frames[1].len());
        let decoded = WatchResponse::decode(&frames[0][5..]).unwrap();
        let Some(Event::Change(change)) = decoded.event else {
            panic!("not a change: {decoded:?}");
        };
        assert_eq!(change.revision, since + 1);
        assert!(matches!(change.kind, Some(Kind::FlagUpserted(f)) if f.key == "checkout"));
        assert_eq!(
            u32::from_be_bytes(frames[0][1..5].try_into().unwrap()) as usize,
            frames[0].len() - 5
        );
    }
}
