//! Fan-out of committed changes to Watch streams.
//!
//! One `tokio::sync::broadcast` channel per environment. Writers publish after the store has
//! committed and never wait for subscribers: a subscriber that falls more than the channel's
//! capacity behind gets `Lagged` and resynchronises from a fresh snapshot instead of blocking
//! anyone. sled's own subscribers are not used: their channel is bounded and blocks writers.
//!
//! Each change travels with its Watch message already encoded as a gRPC frame ([`Published`]):
//! encoded once per environment when it is published, then the same refcounted bytes are
//! written to every watcher's stream, instead of a clone and an encode per watcher.

use bytes::{BufMut, Bytes, BytesMut};
use flagwire_proto::v1::{Change, WatchResponse, watch_response::Event};
use prost::Message;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::broadcast;

/// The gRPC length-prefixed message of `message`: a zero compression flag, the length as a
/// big-endian `u32`, then the protobuf encoding, in one allocation of exactly that size.
/// `None` when the message is too long for the length prefix (4 GiB).
pub fn grpc_frame(message: &impl Message) -> Option<Bytes> {
    let len = message.encoded_len();
    let prefix = u32::try_from(len).ok()?;
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(prefix);
    // Cannot fail: the buffer has room for exactly `encoded_len` bytes.
    message.encode(&mut buf).ok()?;
    Some(buf.freeze())
}

/// A committed change as the hub carries it: the change, and the `WatchResponse` that carries
/// it encoded once as a gRPC frame for every Watch stream of the environment.
pub struct Published {
    change: Arc<Change>,
    // None only for a message over 4 GiB, which the 4 MiB request limit rules out.
    frame: Option<Bytes>,
}

impl Published {
    /// Wraps `change` and encodes its Watch message.
    pub fn new(change: Arc<Change>) -> Self {
        let message = WatchResponse {
            event: Some(Event::Change(Change::clone(&change))),
        };
        Self {
            frame: grpc_frame(&message),
            change,
        }
    }

    /// The change.
    pub fn change(&self) -> &Change {
        &self.change
    }

    /// The environment revision the change produced.
    pub fn revision(&self) -> u64 {
        self.change.revision
    }

    /// `WatchResponse { change }` as a gRPC frame (shared, not copied); `None` when too long.
    pub fn frame(&self) -> Option<&Bytes> {
        self.frame.as_ref()
    }
}

/// The per-environment broadcast channels.
pub struct Hub {
    // None once closed; a std mutex because it is held only to look up or insert a sender.
    channels: Mutex<Option<HashMap<String, broadcast::Sender<Arc<Published>>>>>,
    capacity: usize,
}

impl Hub {
    /// A hub whose channels buffer `capacity` changes per environment. A subscriber further
    /// behind than that resynchronises from a snapshot.
    pub fn new(capacity: usize) -> Self {
        Self {
            channels: Mutex::new(Some(HashMap::new())),
            capacity: capacity.max(1),
        }
    }

    /// A receiver of every change published to `env` from now on; `None` once closed.
    pub fn subscribe(&self, env: &str) -> Option<broadcast::Receiver<Arc<Published>>> {
        let mut guard = self.channels.lock().expect("poisoned");
        let channels = guard.as_mut()?;
        let sender = channels
            .entry(env.to_owned())
            .or_insert_with(|| broadcast::channel(self.capacity).0);
        Some(sender.subscribe())
    }

    /// Publishes committed changes of `env`, in revision order.
    pub fn publish(&self, env: &str, changes: impl IntoIterator<Item = Arc<Change>>) {
        let guard = self.channels.lock().expect("poisoned");
        if let Some(sender) = guard.as_ref().and_then(|c| c.get(env)) {
            // Nobody to encode for: every subscriber has gone.
            if sender.receiver_count() == 0 {
                return;
            }
            for change in changes {
                // An error only means the last subscriber has just gone.
                let _ = sender.send(Arc::new(Published::new(change)));
            }
        }
    }

    /// Number of open receivers across environments (connected watchers).
    pub fn receivers(&self) -> usize {
        let guard = self.channels.lock().expect("poisoned");
        guard.as_ref().map_or(0, |c| {
            c.values().map(broadcast::Sender::receiver_count).sum()
        })
    }

    /// Open receivers (connected watchers) per environment, for `/metrics`.
    pub fn receivers_by_env(&self) -> Vec<(String, usize)> {
        let guard = self.channels.lock().expect("poisoned");
        guard.as_ref().map_or_else(Vec::new, |c| {
            c.iter()
                .map(|(env, sender)| (env.clone(), sender.receiver_count()))
                .collect()
        })
    }

    /// Drops every sender, so each Watch stream sees `Closed` and ends cleanly (shutdown).
    pub fn close(&self) {
        self.channels.lock().expect("poisoned").take();
    }
}
