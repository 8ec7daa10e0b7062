//! Bucketing: which split entry a unit lands in. The formula is flagd's `fractional`, so
//! providers built for it agree with us (see `docs/evaluation.md`).

use flagwire_proto::v1::{Split, SplitEntry};
use std::hash::Hasher;

/// Salt and key up to this many bytes are hashed from a stack copy in one pass; longer ones
/// stream through the (slower) incremental hasher. Neither allocates.
const STACK: usize = 128;

/// `murmur3_x86_32(utf8(salt + key), seed 0)`, with tikv's `mur3`.
pub fn hash(salt: &str, key: &str) -> u32 {
    let (salt, key) = (salt.as_bytes(), key.as_bytes());
    let len = salt.len() + key.len();
    if len <= STACK {
        let mut buf = [0u8; STACK];
        buf[..salt.len()].copy_from_slice(salt);
        buf[salt.len()..len].copy_from_slice(key);
        return mur3::murmurhash3_x86_32(&buf[..len], 0);
    }
    let mut hasher = mur3::Hasher32::with_seed(0);
    hasher.write(salt);
    hasher.write(key);
    hasher.finish32()
}

/// `(h × total) >> 32` in 64 bits: a bucket in `[0, total)`.
pub fn bucket(h: u32, total: u64) -> u64 {
    (u64::from(h) * total) >> 32
}

/// The entry of `split` that `salt + key` falls into; `None` only for an all-zero split.
pub fn choose<'a>(split: &'a Split, salt: &str, key: &str) -> Option<&'a SplitEntry> {
    let total: u64 = split.entries.iter().map(|e| u64::from(e.weight)).sum();
    if total == 0 {
        return None;
    }
    let b = bucket(hash(salt, key), total);
    let mut cumulative = 0u64;
    split.entries.iter().find(|e| {
        cumulative += u64::from(e.weight);
        cumulative > b
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn murmur3_known_answers() {
        assert_eq!(hash("", ""), 0);
        assert_eq!(hash("hel", "lo"), 613_153_351);
        assert_eq!(
            hash("The quick brown fox ", "jumps over the lazy dog"),
            0x2e4f_f723
        );
    }

    #[test]
    fn long_inputs_stream_to_the_same_hash() {
        let salt = "s".repeat(100);
        let key = "k".repeat(100);
        let whole = format!("{salt}{key}");
        assert_eq!(
            hash(&salt, &key),
            mur3::murmurhash3_x86_32(whole.as_bytes(), 0)
        );
        assert_eq!(
            hash(&salt, &key[..20]),
            mur3::murmurhash3_x86_32(&whole.as_bytes()[..120], 0)
        );
    }

    #[test]
    fn bucket_range() {
        assert_eq!(bucket(u32::MAX, 100), 99);
        assert_eq!(bucket(0, 100), 0);
        assert_eq!(bucket(u32::MAX, (1 << 31) - 1), (1 << 31) - 2);
    }
}
