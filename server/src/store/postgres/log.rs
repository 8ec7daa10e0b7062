//! The batch log on the database side: a commit's batch written to `kv` and appended to
//! `batches` under the writer lock, and the log read back (with its trimmed floor) by the
//! replicas that follow it.

use super::{CHANNEL, LOCK_TIMEOUT, WRITER_LOCK, pg_error};
use crate::store::{Batch, Logged, Op, StoreError, codec};
use deadpool_postgres::Object;
use std::collections::BTreeMap;

/// Keys (or values) as one `bytea[]` parameter.
type Column = Vec<Vec<u8>>;

/// The ops of `batch` reduced to the last one per key, as `(put keys, their values, deleted
/// keys)`: one statement each, and `INSERT ... ON CONFLICT` may not touch a row twice.
fn last_per_key(batch: &Batch) -> (Column, Column, Column) {
    let mut last: BTreeMap<&[u8], Option<&[u8]>> = BTreeMap::new();
    for op in &batch.ops {
        match op {
            Op::Put(k, v) => last.insert(k, Some(v)),
            Op::Delete(k) => last.insert(k, None),
        };
    }
    let (mut keys, mut values, mut deletes) = (Vec::new(), Vec::new(), Vec::new());
    for (k, v) in last {
        match v {
            Some(v) => {
                keys.push(k.to_vec());
                values.push(v.to_vec());
            }
            None => deletes.push(k.to_vec()),
        }
    }
    (keys, values, deletes)
}

/// Writes `batch` and appends it to the log, inside the caller's transaction (which holds the
/// writer lock); returns its sequence number. Announced to the other replicas at commit.
pub(super) async fn write_batch(client: &Object, batch: &Batch) -> Result<u64, StoreError> {
    let (keys, values, deletes) = last_per_key(batch);
    if !keys.is_empty() {
        let upsert = client
            .prepare_cached(
                "INSERT INTO kv (key, value) SELECT * FROM unnest($1::bytea[], $2::bytea[]) \
                 ON CONFLICT (key) DO UPDATE SET value = EXCLUDED.value",
            )
            .await
            .map_err(pg_error)?;
        client
            .execute(&upsert, &[&keys, &values])
            .await
            .map_err(pg_error)?;
    }
    if !deletes.is_empty() {
        let delete = client
            .prepare_cached("DELETE FROM kv WHERE key = ANY($1::bytea[])")
            .await
            .map_err(pg_error)?;
        client
            .execute(&delete, &[&deletes])
            .await
            .map_err(pg_error)?;
    }
    let append = client
        // The time of the append, under the writer lock, rather than the column's default
        // (`now()`, when the transaction began, possibly before a wait for the lock): so the
        // age the log is trimmed by follows `seq` order.
        .prepare_cached(
            "INSERT INTO batches (ops, committed_at) VALUES ($1, clock_timestamp()) RETURNING seq",
        )
        .await
        .map_err(pg_error)?;
    let row = client
        .query_one(&append, &[&codec::encode(batch)])
        .await
        .map_err(pg_error)?;
    let seq: i64 = row.get(0);
    client
        .execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &seq.to_string()])
        .await
        .map_err(pg_error)?;
    Ok(seq as u64)
}

/// Starts a transaction and takes the writer lock.
pub(super) async fn lock(client: &Object) -> Result<(), StoreError> {
    client
        .batch_execute(&format!(
            "BEGIN; SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'; \
             SELECT pg_advisory_xact_lock({WRITER_LOCK})"
        ))
        .await
        .map_err(pg_error)
}

/// Reads the logged batches after `after`, at most `limit`; fails with [`StoreError::Behind`]
/// when the leader has trimmed batches this replica has not applied. The floor and the batches
/// come from one statement, so from one snapshot: every batch above the floor that it read
/// was there, so none is missing.
pub(super) async fn read_log(
    client: &Object,
    after: u64,
    limit: usize,
) -> Result<Vec<Logged>, StoreError> {
    let after_seq = i64::try_from(after).unwrap_or(i64::MAX);
    let limit = i64::try_from(limit).unwrap_or(i64::MAX);
    let statement = client
        .prepare_cached(
            "SELECT f.seq, b.seq, b.ops FROM log_floor f LEFT JOIN LATERAL \
             (SELECT seq, ops FROM batches WHERE seq > $1 ORDER BY seq LIMIT $2) b ON true \
             WHERE f.id = 1",
        )
        .await
        .map_err(pg_error)?;
    let rows = client
        .query(&statement, &[&after_seq, &limit])
        .await
        .map_err(pg_error)?;
    // The floor's row is always there (migration 4 inserts it); a database restored without it
    // would otherwise look like one never trimmed.
    let floor = rows
        .first()
        .ok_or_else(|| StoreError::Schema("the log_floor row is missing".into()))?
        .get::<_, i64>(0) as u64;
    if floor > after {
        return Err(StoreError::Behind {
            applied: after,
            trimmed: floor,
        });
    }
    rows.iter()
        .filter_map(|r| {
            Some((
                r.get::<_, Option<i64>>(1)? as u64,
                r.get::<_, Option<Vec<u8>>>(2)?,
            ))
        })
        .map(|(seq, ops)| Ok((seq, codec::decode(seq, &ops)?)))
        .collect()
}
