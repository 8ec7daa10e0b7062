//! The schema, as embedded, numbered migrations applied at start.
//!
//! Each migration runs once, in order, all of them in one transaction under an advisory lock so
//! two replicas starting at once do not both apply one; `schema_version` records each. A
//! replica refuses to start against a database whose schema is newer than the newest it knows:
//! it would misread tables a later version changed.

use super::{PgStore, pg_error};
use crate::store::StoreError;

/// Advisory-lock key of migrations ("fwmigrat" as ASCII).
const MIGRATE_LOCK: i64 = 0x66776d6967726174;

/// The migrations, in order; the version of `MIGRATIONS[i]` is `i + 1`. Append only: never edit
/// one that has shipped.
pub const MIGRATIONS: &[&str] = &[
    // 1: every store key and value, and the log of committed batches, tailed by the replicas.
    "CREATE TABLE kv (key bytea PRIMARY KEY, value bytea NOT NULL);
     CREATE TABLE batches (
         seq bigserial PRIMARY KEY,
         ops bytea NOT NULL,
         committed_at timestamptz NOT NULL DEFAULT now()
     );",
    // 2: the leader's fencing token, raised by every replica that becomes leader.
    "CREATE TABLE leader (
         id integer PRIMARY KEY CHECK (id = 1),
         epoch bigint NOT NULL,
         holder text NOT NULL,
         since timestamptz NOT NULL DEFAULT now()
     );
     INSERT INTO leader (id, epoch, holder) VALUES (1, 0, '');",
    // 3: the shared SDK-instance registry: each replica's heartbeat, and the instances it knows
    // (soft state, rewritten every second; see `fleet`).
    "CREATE TABLE replicas (replica text PRIMARY KEY, heartbeat timestamptz NOT NULL);
     CREATE TABLE sdk_instances (
         replica text NOT NULL REFERENCES replicas ON DELETE CASCADE,
         environment text NOT NULL,
         instance_id text NOT NULL,
         sdk_name text NOT NULL,
         sdk_version text NOT NULL,
         first_seen timestamptz NOT NULL,
         last_seen timestamptz NOT NULL,
         connected_since timestamptz,
         applied_revision bigint NOT NULL,
         step_revisions bigint[] NOT NULL,
         step_times timestamptz[] NOT NULL,
         PRIMARY KEY (replica, environment, instance_id)
     );",
    // 4: the batch log's floor: the leader trims batches older than the log's retention, and
    // raises `seq` to the last one it removed. A replica that has applied less than that can no
    // longer follow the log (see `read_log`).
    "CREATE TABLE log_floor (id integer PRIMARY KEY CHECK (id = 1), seq bigint NOT NULL);
     INSERT INTO log_floor (id, seq) VALUES (1, 0);",
];

/// The newest schema version this binary knows.
pub fn latest() -> i32 {
    MIGRATIONS.len() as i32
}

impl PgStore {
    /// Applies the missing migrations, or refuses a newer schema. Returns the version now.
    pub(super) async fn migrate(
        client: &mut tokio_postgres::Client,
        known: &[&str],
    ) -> Result<i32, StoreError> {
        let tx = client.transaction().await.map_err(pg_error)?;
        tx.execute("SELECT pg_advisory_xact_lock($1)", &[&MIGRATE_LOCK])
            .await
            .map_err(pg_error)?;
        tx.batch_execute(
            "CREATE TABLE IF NOT EXISTS schema_version (
                 version integer PRIMARY KEY,
                 applied_at timestamptz NOT NULL DEFAULT now()
             )",
        )
        .await
        .map_err(pg_error)?;
        let row = tx
            .query_one("SELECT coalesce(max(version), 0) FROM schema_version", &[])
            .await
            .map_err(pg_error)?;
        let current: i32 = row.get(0);
        let newest = known.len() as i32;
        if current > newest {
            return Err(StoreError::Schema(format!(
                "the database's schema is at version {current}, newer than this flagwire knows \
                 (version {newest}): run a flagwire at least as new as the one that migrated it"
            )));
        }
        for (i, sql) in known.iter().enumerate().skip(current as usize) {
            let version = i as i32 + 1;
            tx.batch_execute(sql).await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO schema_version (version) VALUES ($1)",
                &[&version],
            )
            .await
            .map_err(pg_error)?;
            tracing::info!(version, "applied schema migration");
        }
        tx.commit().await.map_err(pg_error)?;
        Ok(newest)
    }
}
