//! Audit log queries.

use super::Catalog;
use crate::error::Result;
use crate::store::keys;
use flagwire_proto::v1::AuditEvent;
use prost_types::Timestamp;

/// Filters and paging of [`Catalog::list_audit`].
#[derive(Debug, Default, Clone)]
pub struct AuditFilter {
    /// Only events about this flag.
    pub flag_key: String,
    /// Only events by this actor.
    pub actor: String,
    /// Only events at or after this time.
    pub start: Option<Timestamp>,
    /// Only events before this time.
    pub end: Option<Timestamp>,
    /// Only events with ids below this (the page token); 0 = from the newest.
    pub before_id: u64,
    /// At most this many.
    pub limit: usize,
}

fn key(t: &Option<Timestamp>) -> (i64, i32) {
    t.map_or((0, 0), |t| (t.seconds, t.nanos))
}

impl AuditFilter {
    fn matches(&self, e: &AuditEvent) -> bool {
        (self.flag_key.is_empty() || (e.resource_type == "flag" && e.resource_key == self.flag_key))
            && (self.actor.is_empty() || e.actor == self.actor)
            && (self.start.is_none() || key(&e.time) >= key(&self.start))
            && (self.end.is_none() || key(&e.time) < key(&self.end))
    }
}

impl Catalog {
    /// Events newest first; the second value is the next page token (empty on the last page).
    pub fn list_audit(&self, filter: &AuditFilter) -> Result<(Vec<AuditEvent>, String)> {
        // Scan in chunks so a selective filter does not load the whole log at once.
        const CHUNK: usize = 512;
        let mut end = if filter.before_id == 0 {
            keys::prefix_end(b"a/")
        } else {
            keys::audit(filter.before_id)
        };
        let mut out = Vec::new();
        loop {
            let chunk = self.store().range_rev(b"a/", &end, CHUNK)?;
            let exhausted = chunk.len() < CHUNK;
            for (k, v) in &chunk {
                let event: AuditEvent = super::decode(k, v)?;
                if filter.matches(&event) {
                    if out.len() == filter.limit {
                        let token = out
                            .last()
                            .map_or(String::new(), |e: &AuditEvent| e.id.to_string());
                        return Ok((out, token));
                    }
                    out.push(event);
                }
            }
            match chunk.last() {
                Some((k, _)) if !exhausted => end = k.clone(),
                _ => return Ok((out, String::new())),
            }
        }
    }
}
