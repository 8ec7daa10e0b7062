//! The byte encoding of a [`Batch`] in a shared store's log (`batches.ops` in PostgreSQL).
//!
//! Length-prefixed and versioned by its first byte rather than a protobuf message: the log holds
//! exactly the store's ops (raw keys and already-encoded values), and a new wire type for them
//! would be a contract change for something no client ever reads.
//!
//! Layout: `1` (version), then per op a tag (`0` put, `1` delete), the key as `u32` BE length +
//! bytes, and for a put the value likewise.

use super::{Batch, Op, StoreError};

const VERSION: u8 = 1;
const PUT: u8 = 0;
const DELETE: u8 = 1;

/// Encodes `batch` for the log.
pub fn encode(batch: &Batch) -> Vec<u8> {
    let size: usize = batch
        .ops
        .iter()
        .map(|op| match op {
            Op::Put(k, v) => 9 + k.len() + v.len(),
            Op::Delete(k) => 5 + k.len(),
        })
        .sum();
    let mut out = Vec::with_capacity(1 + size);
    out.push(VERSION);
    for op in &batch.ops {
        match op {
            Op::Put(k, v) => {
                out.push(PUT);
                bytes(&mut out, k);
                bytes(&mut out, v);
            }
            Op::Delete(k) => {
                out.push(DELETE);
                bytes(&mut out, k);
            }
        }
    }
    out
}

fn bytes(out: &mut Vec<u8>, b: &[u8]) {
    let len = u32::try_from(b.len()).expect("a key or value under 4 GiB");
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(b);
}

/// Decodes a logged batch; `seq` names it in the error.
pub fn decode(seq: u64, mut input: &[u8]) -> Result<Batch, StoreError> {
    let bad =
        |why: &str| StoreError::Schema(format!("batch {seq} in the log is unreadable: {why}"));
    match input.split_first() {
        Some((&VERSION, rest)) => input = rest,
        Some((v, _)) => return Err(bad(&format!("unknown encoding version {v}"))),
        None => return Err(bad("empty")),
    }
    let mut batch = Batch::default();
    while let Some((&tag, rest)) = input.split_first() {
        input = rest;
        let key = take(&mut input).ok_or_else(|| bad("truncated key"))?;
        match tag {
            PUT => {
                let value = take(&mut input).ok_or_else(|| bad("truncated value"))?;
                batch.put(key, value);
            }
            DELETE => batch.delete(key),
            other => return Err(bad(&format!("unknown op {other}"))),
        }
    }
    Ok(batch)
}

fn take(input: &mut &[u8]) -> Option<Vec<u8>> {
    let (len, rest) = input.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let bytes = rest.get(..len)?.to_vec();
    *input = &rest[len..];
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_puts_and_deletes_in_order() {
        let mut batch = Batch::default();
        batch.put(b"f/a".to_vec(), b"one".to_vec());
        batch.delete(b"f/b".to_vec());
        batch.put(b"f/a".to_vec(), Vec::new());
        let back = decode(7, &encode(&batch)).unwrap();
        assert_eq!(format!("{:?}", back.ops), format!("{:?}", batch.ops));
    }

    #[test]
    fn truncation_and_unknown_versions_are_errors() {
        let mut batch = Batch::default();
        batch.put(b"k".to_vec(), b"value".to_vec());
        let bytes = encode(&batch);
        let err = decode(3, &bytes[..bytes.len() - 1]).unwrap_err();
        assert!(err.to_string().contains("batch 3"), "{err}");
        assert!(decode(3, &[9]).is_err());
        assert!(decode(3, &[]).is_err());
    }
}
