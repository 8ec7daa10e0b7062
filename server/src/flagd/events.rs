//! `EventStream`: `provider_ready` once, then `configuration_change` naming the flags that
//! changed (`{"flags": {"<key>": {"type": "write" | "update" | "delete"}}}`, flagd's shape) on
//! every revision that changed any.

use super::context::value;
use super::revisions::revisions;
use crate::catalog::Catalog;
use flagwire_core::Snapshot;
use futures::{Stream, StreamExt};
use prost_types::{Struct, value::Kind};
use std::pin::Pin;
use std::sync::Arc;
use tonic::Status;

/// An event: flagd's `type` and `data`, before it is put in v1's or v2's message.
pub type Event = (&'static str, Option<Struct>);

/// A boxed stream of events.
pub type Events = Pin<Box<dyn Stream<Item = Result<Event, Status>> + Send>>;

/// `data` of a `configuration_change` from `old` to `new`; `None` when no flag changed.
pub fn changes(old: &Snapshot, new: &Snapshot) -> Option<Struct> {
    let changed = old.changed_flags(new);
    if changed.is_empty() {
        return None;
    }
    let before = old.flag_keys();
    let after = new.flag_keys();
    let flags = changed
        .into_iter()
        .map(|key| {
            let kind = match (
                before.contains(&key.as_str()),
                after.contains(&key.as_str()),
            ) {
                (false, _) => "write",
                (true, false) => "delete",
                (true, true) => "update",
            };
            let mut entry = Struct::default();
            entry
                .fields
                .insert("type".into(), value(Kind::StringValue(kind.into())));
            entry
                .fields
                .insert("flagKey".into(), value(Kind::StringValue(key.clone())));
            (key, value(Kind::StructValue(entry)))
        })
        .collect();
    let mut data = Struct::default();
    data.fields.insert(
        "flags".into(),
        value(Kind::StructValue(Struct { fields: flags })),
    );
    Some(data)
}

/// The events of `env` for a caller holding token `token_id`.
pub fn events(catalog: Arc<Catalog>, env: &str, token_id: &str) -> Result<Events, Status> {
    let mut previous: Option<Arc<Snapshot>> = None;
    let stream = revisions(catalog, env, token_id)?.filter_map(move |snapshot| {
        let event = match snapshot {
            Err(e) => Some(Err(e)),
            Ok(snapshot) => {
                let event = match &previous {
                    None => Some(Ok(("provider_ready", None))),
                    Some(old) => {
                        changes(old, &snapshot).map(|data| Ok(("configuration_change", Some(data))))
                    }
                };
                previous = Some(snapshot);
                event
            }
        };
        std::future::ready(event)
    });
    Ok(Box::pin(stream))
}
