//! Bucketing: which split entry a unit lands in. The formula is flagd's `fractional`, so
//! providers built for it agree with us (see `docs/evaluation.md`).

use flagwire_proto::v1::{Split, SplitEntry};
use std::hash::Hasher;

/// `murmur3_x86_32(utf8(salt + key), seed 0)`, streaming the two parts through tikv's `mur3`
/// hasher instead of concatenating them (no allocation on the evaluation path).
pub fn hash(salt: &str, key: &str) -> u32 {
    let mut hasher = mur3::Hasher32::with_seed(0);
    hasher.write(salt.as_bytes());
    hasher.write(key.as_bytes());
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
    fn bucket_range() {
        assert_eq!(bucket(u32::MAX, 100), 99);
        assert_eq!(bucket(0, 100), 0);
        assert_eq!(bucket(u32::MAX, (1 << 31) - 1), (1 << 31) - 2);
    }
}
