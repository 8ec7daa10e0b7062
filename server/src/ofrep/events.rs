//! The change stream of ADR-0008: `GET /ofrep/v1/events` answers `text/event-stream` and sends
//! `data: {"type":"refetchEvaluation"}` (SSE event `message`, `id` = the revision) once for
//! every revision of the token's environment, from the catalog's [`Hub`](crate::hub::Hub).
//! Notification only: the provider re-fetches the bulk evaluation, whose ETag then moves.
//!
//! Browsers' `EventSource` cannot send headers, so the URL the bulk response hands out
//! authenticates by itself: `channel=<token id>.<ticket>`, where the ticket is
//! SHA-256("flagwire-ofrep-sse" ‖ the token's stored secret hash). It never contains the
//! secret, stays valid across restarts, dies with the token (revoking it ends open streams
//! at their next event too), and grants nothing but this stream. `Authorization` /
//! `X-API-Key` work here as well. `since=<revision>` (the revision the bulk answer was
//! computed at) and `Last-Event-ID` close the gap between a bulk answer and the stream's
//! start: a revision already past them is announced at once.

use super::{Ofrep, admit, reply};
use crate::catalog::{Catalog, tokens::Principal};
use crate::hub::Published;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use flagwire_proto::v1::Role;
use sha2::{Digest, Sha256};
use std::convert::Infallible;
use std::sync::Arc;
use subtle::ConstantTimeEq;
use tokio::sync::broadcast::{Receiver, error::RecvError};

/// The stream's path.
pub const PATH: &str = "/ofrep/v1/events";

/// The ticket of token `id`, if it exists. A keyed hash whose key (the stored SHA-256 of a
/// 256-bit random secret) never leaves the server; length extension does not apply because
/// only this one fixed message is ever checked.
fn ticket(catalog: &Catalog, id: &str) -> Option<[u8; 32]> {
    let state = catalog.read();
    let stored = state.tokens.get(id)?;
    let mut h = Sha256::new();
    h.update(b"flagwire-ofrep-sse");
    h.update(&stored.hash);
    Some(h.finalize().into())
}

/// The request URI (path and query) of the stream for token `id`, as of `revision`.
pub fn request_uri(catalog: &Catalog, id: &str, revision: u64) -> String {
    match ticket(catalog, id) {
        Some(t) => format!("{PATH}?channel={id}.{}&since={revision}", hex::encode(t)),
        None => format!("{PATH}?since={revision}"),
    }
}

fn query<'a>(raw: &'a str, name: &str) -> Option<&'a str> {
    raw.split('&')
        .filter_map(|pair| pair.split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The live sdk-token principal a channel names, if its ticket is right.
fn channel_principal(catalog: &Catalog, channel: &str) -> Option<Principal> {
    let (id, presented) = channel.split_once('.')?;
    let presented = hex::decode(presented).ok()?;
    let expected = ticket(catalog, id)?;
    if !bool::from(expected.as_slice().ct_eq(&presented)) || !catalog.token_live(id) {
        return None;
    }
    let state = catalog.read();
    let token = state.tokens.get(id)?.token.as_ref()?;
    Some(Principal {
        id: token.id.clone(),
        name: token.name.clone(),
        role: Role::try_from(token.role).unwrap_or(Role::Unspecified),
        environment: token.environment.clone(),
    })
}

/// `GET /ofrep/v1/events`.
pub async fn stream(
    State(ofrep): State<Arc<Ofrep>>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
) -> Response {
    let raw = raw.unwrap_or_default();
    let principal = match (admit::presented(&headers), query(&raw, "channel")) {
        (Ok(Some(_)) | Err(_), _) | (Ok(None), None) => ofrep.admit(&headers),
        (Ok(None), Some(channel)) => match channel_principal(&ofrep.catalog, channel) {
            Some(p) => ofrep.admit_principal(p),
            None => Err(admit::unauthorized(
                "unknown channel, or its token was revoked",
            )),
        },
    };
    let principal = match principal {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let env = principal.environment;
    // Subscribe before reading the revision: a change committed in between is then both
    // counted in `current` and seen on the receiver, never neither.
    let Some(rx) = ofrep.catalog.hub().subscribe(&env) else {
        return reply::error(StatusCode::SERVICE_UNAVAILABLE, None, None, "shutting down");
    };
    let current = match ofrep.catalog.revision(&env) {
        Ok(r) => r,
        Err(e) => {
            return reply::error(
                StatusCode::INTERNAL_SERVER_ERROR,
                None,
                None,
                &e.to_string(),
            );
        }
    };
    let last_event = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let seen = query(&raw, "since")
        .and_then(|v| v.parse::<u64>().ok())
        .into_iter()
        .chain(last_event)
        .max()
        .unwrap_or(current);
    let feed = Feed {
        rx,
        catalog: Arc::clone(&ofrep.catalog),
        env,
        token: principal.id,
        sent: seen.min(current),
        pending: (seen < current).then_some(current),
    };
    Sse::new(futures::stream::unfold(feed, Feed::next))
        .keep_alive(KeepAlive::default())
        .into_response()
}

/// One open stream's state.
struct Feed {
    rx: Receiver<Arc<Published>>,
    catalog: Arc<Catalog>,
    env: String,
    token: String,
    /// The last revision announced (or known to the client).
    sent: u64,
    /// A revision to announce before waiting.
    pending: Option<u64>,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Self)> {
        if let Some(revision) = self.pending.take() {
            self.sent = revision;
            return Some((Ok(event(revision)), self));
        }
        loop {
            let revision = match self.rx.recv().await {
                Ok(change) if change.revision() <= self.sent => continue,
                Ok(change) => change.revision(),
                // Fell behind the hub's buffer: one event for where the environment is now.
                Err(RecvError::Lagged(_)) => {
                    self.catalog.revision(&self.env).unwrap_or(self.sent + 1)
                }
                Err(RecvError::Closed) => return None,
            };
            if !self.catalog.token_live(&self.token) {
                return None;
            }
            self.sent = revision;
            return Some((Ok(event(revision)), self));
        }
    }
}

fn event(revision: u64) -> Event {
    Event::default()
        .event("message")
        .id(revision.to_string())
        .data(r#"{"type":"refetchEvaluation"}"#)
}
