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

/// murmur3_x86_32 (seed 0) of `salt + key` with the salt's whole 4-byte blocks hashed ahead
/// of time, for splits, whose salt is fixed when their flag is compiled.
///
/// Hand-written because `mur3` cannot resume from a saved state (its streaming hasher is also
/// slower than its one-shot function); the property test below holds it to `mur3` on arbitrary
/// salts and keys, and the vectors' bucketing pairs go through it.
#[derive(Debug, Clone)]
pub struct SaltedHash {
    // The state after the salt's whole blocks, the salt's last 0–3 bytes (little-endian) and
    // how many there are, and the salt's length.
    h1: u32,
    tail: u32,
    tail_len: usize,
    salt_len: usize,
}

const C1: u32 = 0xcc9e_2d51;
const C2: u32 = 0x1b87_3593;

fn mix(k: u32) -> u32 {
    k.wrapping_mul(C1).rotate_left(15).wrapping_mul(C2)
}

fn block(h1: u32, k: u32) -> u32 {
    (h1 ^ mix(k))
        .rotate_left(13)
        .wrapping_mul(5)
        .wrapping_add(0xe654_6b64)
}

/// murmur3's blocks of `bytes` from `h1`, starting with `k` holding `n` (< 4) bytes already;
/// returns the state and the last partial block (`k`, `n`). Byte loops rather than slice
/// copies: keys are short, and the compiler keeps these in registers.
fn blocks(mut h1: u32, mut k: u32, mut n: usize, bytes: &[u8]) -> (u32, u32, usize) {
    let mut i = 0;
    while n > 0 && i < bytes.len() {
        k |= u32::from(bytes[i]) << (8 * n);
        n += 1;
        i += 1;
        if n == 4 {
            h1 = block(h1, k);
            (k, n) = (0, 0);
        }
    }
    while i + 4 <= bytes.len() {
        h1 = block(
            h1,
            u32::from_le_bytes([bytes[i], bytes[i + 1], bytes[i + 2], bytes[i + 3]]),
        );
        i += 4;
    }
    while i < bytes.len() {
        k |= u32::from(bytes[i]) << (8 * n);
        n += 1;
        i += 1;
    }
    (h1, k, n)
}

impl SaltedHash {
    /// Hashes `salt`'s whole blocks.
    pub fn new(salt: &str) -> Self {
        let (h1, tail, tail_len) = blocks(0, 0, 0, salt.as_bytes());
        Self {
            h1,
            tail,
            tail_len,
            salt_len: salt.len(),
        }
    }

    /// `hash(salt, key)`.
    pub fn hash(&self, key: &str) -> u32 {
        let (mut h1, k, n) = blocks(self.h1, self.tail, self.tail_len, key.as_bytes());
        if n > 0 {
            h1 ^= mix(k);
        }
        finish(h1, self.salt_len + key.len())
    }
}

fn finish(h1: u32, len: usize) -> u32 {
    // murmur3 folds the length in modulo 2^32.
    let mut h = h1 ^ len as u32;
    h ^= h >> 16;
    h = h.wrapping_mul(0x85eb_ca6b);
    h ^= h >> 13;
    h = h.wrapping_mul(0xc2b2_ae35);
    h ^ (h >> 16)
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

    proptest::proptest! {
        #[test]
        fn salted_hash_is_murmur3(salt in ".{0,40}", key in ".{0,40}") {
            let whole = format!("{salt}{key}");
            proptest::prop_assert_eq!(
                SaltedHash::new(&salt).hash(&key),
                mur3::murmurhash3_x86_32(whole.as_bytes(), 0)
            );
        }
    }

    #[test]
    fn salted_hash_every_split_of_a_string() {
        let s = "split-flaguser-1234567é";
        for i in (0..=s.len()).filter(|i| s.is_char_boundary(*i)) {
            let (salt, key) = s.split_at(i);
            assert_eq!(SaltedHash::new(salt).hash(key), hash(salt, key), "{salt:?}");
        }
    }

    #[test]
    fn bucket_range() {
        assert_eq!(bucket(u32::MAX, 100), 99);
        assert_eq!(bucket(0, 100), 0);
        assert_eq!(bucket(u32::MAX, (1 << 31) - 1), (1 << 31) - 2);
    }
}
