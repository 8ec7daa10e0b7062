//! An environment's flags as flagd flag-definition JSON (`https://flagd.dev/schema/v0/flags.json`),
//! for flagd's in-process providers, which evaluate it with their own JsonLogic engine.
//!
//! Every exported flag evaluates to the variant `flagwire-core` serves (reasons are flagd's:
//! `TARGETING_MATCH` when targeting returns a variant, `DEFAULT` when it returns null, `STATIC`
//! without targeting). What flagd JSON cannot express with the same meaning is never exported
//! with another: such a flag is left out (in-process providers then answer `FLAG_NOT_FOUND` and
//! the caller's default) and its key is listed in the flag set's metadata under
//! [`OMITTED_KEY`], with the reason in the server log. See `docs/reference/flagd.md`.
//!
//! - Individual targets, rules, segments (inlined), prerequisites (the prerequisite flag's own
//!   targeting inlined, to a depth of 16) and every clause operator but `BEFORE` / `AFTER` are
//!   translated ([`clause`], [`flag`]).
//! - Splits are not by default: flagd providers now hash the CBOR encoding of the bucketing
//!   value (flagd ADR "fractional-non-string-rand-units"), not its UTF-8 bytes as Flagwire does,
//!   so no `fractional` reproduces our buckets. A client whose provider still has the earlier
//!   high-precision `fractional` (murmur3 of the UTF-8 bytes, `(hash × total) >> 32`: ours) asks
//!   for [`Options::fractional_utf8`] with `fractional=utf8` in its selector, and gets splits as
//!   `fractional` on `cat(salt, bucketing key)`.
//! - A disabled flag is exported enabled, serving its off variant: flagd's `DISABLED` state
//!   returns the caller's default instead.

pub mod clause;
pub mod flag;
#[cfg(test)]
mod tests;

use super::access::Selector;
use flagwire_proto::v1::{Flag, Segment};
use serde_json::{Map, Value as Json, json};

/// The flag-set metadata key listing the flags left out, comma-separated.
pub const OMITTED_KEY: &str = "flagwireOmitted";

/// How to export.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Options {
    /// Export splits as flagd's pre-CBOR `fractional`, whose bucketing is Flagwire's.
    pub fractional_utf8: bool,
}

impl From<Selector<'_>> for Options {
    fn from(s: Selector<'_>) -> Self {
        Self {
            fractional_utf8: s.fractional_utf8,
        }
    }
}

/// Why a flag cannot be exported.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Untranslatable {
    /// A weighted split: flagd's `fractional` buckets differently.
    #[error("serves a weighted split (flagd's fractional hashes CBOR, not the key's bytes)")]
    Split,
    /// An operator flagd JSON has no equivalent for.
    #[error("uses {0}, which JsonLogic cannot compare")]
    Operator(&'static str),
    /// An attribute name JsonLogic's `var` would read as a path.
    #[error("names the attribute {0:?}, which JsonLogic reads as a path")]
    AttributeName(String),
    /// Data the server refuses on write (a variant the flag does not have, ...), which the
    /// engine answers with an error.
    #[error("{0}")]
    Damaged(&'static str),
    /// A prerequisite that cannot be exported.
    #[error("has a prerequisite that cannot be exported: {0}")]
    Prerequisite(String),
}

/// The document and the flags left out, with why.
#[derive(Debug, Clone)]
pub struct Export {
    /// The flagd flag-definition document.
    pub document: Json,
    /// `(flag key, reason)` of every flag left out, sorted by key.
    pub omitted: Vec<(String, Untranslatable)>,
}

/// The flags of `env` (archived ones are left out, as they do not exist for evaluation) with the
/// segments of every environment (only `env`'s count) at `revision`.
pub fn export(
    env: &str,
    revision: u64,
    flags: &[Flag],
    segments: &[Segment],
    options: Options,
) -> Export {
    let segments: clause::Segments<'_> = segments
        .iter()
        .filter(|s| s.environment == env)
        .map(|s| (s.key.as_str(), s))
        .collect();
    let all: flag::Flags<'_> = flags
        .iter()
        .filter(|f| !f.archived)
        .map(|f| (f.key.as_str(), f))
        .collect();
    let context = flag::Context {
        env,
        flags: &all,
        segments: &segments,
        options,
    };
    let mut out = Map::new();
    let mut omitted = Vec::new();
    for (key, f) in &all {
        match flag::definition(&context, f) {
            Ok(definition) => {
                out.insert((*key).to_owned(), definition);
            }
            Err(why) => omitted.push(((*key).to_owned(), why)),
        }
    }
    let mut metadata = Map::new();
    metadata.insert("flagSetId".into(), json!(env));
    metadata.insert("version".into(), json!(revision.to_string()));
    if !omitted.is_empty() {
        let keys: Vec<&str> = omitted.iter().map(|(k, _)| k.as_str()).collect();
        metadata.insert(OMITTED_KEY.into(), json!(keys.join(",")));
    }
    Export {
        document: json!({
            "$schema": "https://flagd.dev/schema/v0/flags.json",
            "flags": out,
            "metadata": metadata,
        }),
        omitted,
    }
}
