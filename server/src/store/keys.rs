//! The key layout of the store. One byte-string namespace, one prefix per kind of object, so a
//! whole catalog change is one atomic batch in one tree.
//!
//! | prefix | key | value |
//! |---|---|---|
//! | `e/` | environment key | `Environment` |
//! | `f/` | flag key | `Flag` (current) |
//! | `v/` | flag key `/` version (u64 BE) | `Flag` (every version, for history and revert) |
//! | `s/` | environment `/` segment key | `Segment` |
//! | `c/` | environment `/` revision (u64 BE) | `Change` (the retained change log) |
//! | `a/` | event id (u64 BE) | `AuditEvent` |
//! | `t/` | token id | `StoredToken` |
//! | `r/` | rollout id | `Rollout` (with its decision log) |
//! | `w/` | rollout id `/` window end (u64 BE, ms) | `RolloutWindow` (closed judging windows) |
//! | `p/` | plan id | `RollbackPlan` |
//! | `x/` | execution id | `Execution` (plan runs and kills) |
//! | `q/` | scheduled change id | `ScheduledChange` |
//! | `m/` | ramp id | `Ramp` |
//! | `d/` | environment `/` metric name | `MetricDefinition` |
//!
//! Keys never contain `/` (validation allows only `[a-z0-9._-]`), so prefixes do not collide.
//! Numbers are big-endian so byte order is numeric order.

/// Environment record.
pub fn environment(key: &str) -> Vec<u8> {
    join(b"e/", &[key.as_bytes()])
}
/// Current flag.
pub fn flag(key: &str) -> Vec<u8> {
    join(b"f/", &[key.as_bytes()])
}
/// One stored version of a flag.
pub fn flag_version(key: &str, version: u64) -> Vec<u8> {
    join(b"v/", &[key.as_bytes(), b"/", &version.to_be_bytes()])
}
/// Prefix of every version of a flag.
pub fn flag_versions(key: &str) -> Vec<u8> {
    join(b"v/", &[key.as_bytes(), b"/"])
}
/// A segment.
pub fn segment(env: &str, key: &str) -> Vec<u8> {
    join(b"s/", &[env.as_bytes(), b"/", key.as_bytes()])
}
/// Prefix of every segment of an environment.
pub fn segments(env: &str) -> Vec<u8> {
    join(b"s/", &[env.as_bytes(), b"/"])
}
/// One change-log entry.
pub fn change(env: &str, revision: u64) -> Vec<u8> {
    join(b"c/", &[env.as_bytes(), b"/", &revision.to_be_bytes()])
}
/// One audit event.
pub fn audit(id: u64) -> Vec<u8> {
    join(b"a/", &[&id.to_be_bytes()])
}
/// One token.
pub fn token(id: &str) -> Vec<u8> {
    join(b"t/", &[id.as_bytes()])
}

/// A rollout record of an older version (`r/<id>`): read once at start and rewritten as a
/// release.
pub fn rollout(id: &str) -> Vec<u8> {
    join(b"r/", &[id.as_bytes()])
}

/// A release record (`l/<id>`; single-flag rollouts are stored as releases too).
pub fn release(id: &str) -> Vec<u8> {
    join(b"l/", &[id.as_bytes()])
}
/// One closed window of a rollout.
pub fn rollout_window(id: &str, end_ms: u64) -> Vec<u8> {
    join(b"w/", &[id.as_bytes(), b"/", &end_ms.to_be_bytes()])
}
/// A partial window of release `id` gathered by another replica (`replica`, its `seq`-th
/// flush), merged into the leader's next window.
pub fn rollout_partial(id: &str, replica: &str, seq: u64) -> Vec<u8> {
    join(
        b"wp/",
        &[
            id.as_bytes(),
            b"/",
            replica.as_bytes(),
            b"/",
            &seq.to_be_bytes(),
        ],
    )
}
/// Prefix of every partial window of release `id`.
pub fn rollout_partials(id: &str) -> Vec<u8> {
    join(b"wp/", &[id.as_bytes(), b"/"])
}
/// Prefix of every window of a rollout.
pub fn rollout_windows(id: &str) -> Vec<u8> {
    join(b"w/", &[id.as_bytes(), b"/"])
}

/// A rollback plan.
pub fn plan(id: &str) -> Vec<u8> {
    join(b"p/", &[id.as_bytes()])
}
/// An execution.
pub fn execution(id: &str) -> Vec<u8> {
    join(b"x/", &[id.as_bytes()])
}
/// A scheduled change.
pub fn scheduled(id: &str) -> Vec<u8> {
    join(b"q/", &[id.as_bytes()])
}
/// A ramp.
pub fn ramp(id: &str) -> Vec<u8> {
    join(b"m/", &[id.as_bytes()])
}

/// A metric definition.
pub fn metric(env: &str, name: &str) -> Vec<u8> {
    join(b"d/", &[env.as_bytes(), b"/", name.as_bytes()])
}

/// The smallest key greater than every key starting with `prefix`.
pub fn prefix_end(prefix: &[u8]) -> Vec<u8> {
    let mut end = prefix.to_vec();
    while let Some(last) = end.pop() {
        if last < 0xff {
            end.push(last + 1);
            return end;
        }
    }
    vec![0xff; prefix.len() + 1]
}

/// The big-endian u64 at the end of a key.
pub fn trailing_u64(key: &[u8]) -> u64 {
    let mut bytes = [0u8; 8];
    if key.len() >= 8 {
        bytes.copy_from_slice(&key[key.len() - 8..]);
    }
    u64::from_be_bytes(bytes)
}

fn join(prefix: &[u8], parts: &[&[u8]]) -> Vec<u8> {
    let mut key = prefix.to_vec();
    for part in parts {
        key.extend_from_slice(part);
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_sort_numerically() {
        assert!(change("p", 255) < change("p", 256));
        assert_eq!(trailing_u64(&change("p", 256)), 256);
    }

    #[test]
    fn prefix_end_bounds_the_prefix() {
        assert_eq!(prefix_end(b"s/"), b"s0".to_vec());
        assert!(segment("prod", "zz") < prefix_end(&segments("prod")));
        assert!(segment("prod2", "a") > prefix_end(&segments("prod")));
    }
}
