//! The shared SDK-instance registry on PostgreSQL: each replica upserts its instances into
//! `sdk_instances` under its own replica id and beats in `replicas` once a second (see
//! `metrics::fleet`); a replica whose heartbeat is older than [`LIVE_FOR`] is dead, and its
//! instances count as disconnected. Not in the batch log and not under the writer lock:
//! these rows are soft state, rewritten every second, and never read back by the replica that
//! wrote them.

use super::{PgStore, pg_error};
use crate::store::StoreError;
use crate::store::fleet::{Published, SharedInstance};
use std::time::{Duration, SystemTime};

/// How long a replica's instances count as connected after its last heartbeat: a few missed
/// beats (one a second) before its streams are taken for gone.
pub const LIVE_FOR: Duration = Duration::from_secs(5);

fn row(r: &tokio_postgres::Row) -> SharedInstance {
    let live: bool = r.get("live");
    let revisions: Vec<i64> = r.get("step_revisions");
    let times: Vec<SystemTime> = r.get("step_times");
    SharedInstance {
        environment: r.get("environment"),
        instance_id: r.get("instance_id"),
        sdk_name: r.get("sdk_name"),
        sdk_version: r.get("sdk_version"),
        first_seen: r.get("first_seen"),
        last_seen: r.get("last_seen"),
        connected_since: if live { r.get("connected_since") } else { None },
        applied_revision: r.get::<_, i64>("applied_revision").max(0) as u64,
        steps: revisions
            .into_iter()
            .zip(times)
            .map(|(rev, t)| (rev.max(0) as u64, t))
            .collect(),
    }
}

impl PgStore {
    /// Publishes `mine` as replica `replica`'s, beats its heartbeat, drops the rows of
    /// replicas dead for longer than `retention`, and returns every other replica's instances
    /// (a dead one's as disconnected). One transaction.
    pub(super) fn exchange(
        &self,
        replica: &str,
        mine: Published,
        retention: Duration,
    ) -> Result<Vec<SharedInstance>, StoreError> {
        let pool = self.pool.clone();
        let replica = replica.to_owned();
        self.block(async move {
            let mut client = Self::client(&pool).await?;
            let tx = client.transaction().await.map_err(pg_error)?;
            tx.execute(
                "INSERT INTO replicas (replica, heartbeat) VALUES ($1, now())
                 ON CONFLICT (replica) DO UPDATE SET heartbeat = now()",
                &[&replica],
            )
            .await
            .map_err(pg_error)?;
            tx.execute(
                "DELETE FROM replicas WHERE heartbeat < now() - make_interval(secs => $1)",
                &[&retention.as_secs_f64()],
            )
            .await
            .map_err(pg_error)?;
            if mine.everything {
                tx.execute("DELETE FROM sdk_instances WHERE replica = $1", &[&replica])
                    .await
                    .map_err(pg_error)?;
            }
            let forget = tx
                .prepare(
                    "DELETE FROM sdk_instances
                     WHERE replica = $1 AND environment = $2 AND instance_id = $3",
                )
                .await
                .map_err(pg_error)?;
            for (env, id) in &mine.forgotten {
                tx.execute(&forget, &[&replica, env, id])
                    .await
                    .map_err(pg_error)?;
            }
            let upsert = tx
                .prepare(
                    "INSERT INTO sdk_instances (replica, environment, instance_id, sdk_name,
                         sdk_version, first_seen, last_seen, connected_since, applied_revision,
                         step_revisions, step_times)
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)
                     ON CONFLICT (replica, environment, instance_id) DO UPDATE SET
                         sdk_name = excluded.sdk_name, sdk_version = excluded.sdk_version,
                         first_seen = excluded.first_seen, last_seen = excluded.last_seen,
                         connected_since = excluded.connected_since,
                         applied_revision = excluded.applied_revision,
                         step_revisions = excluded.step_revisions,
                         step_times = excluded.step_times",
                )
                .await
                .map_err(pg_error)?;
            // Pipelined: tokio-postgres sends the upserts without waiting for each answer.
            let upserts = mine.changed.iter().map(|i| {
                let revisions: Vec<i64> = i.steps.iter().map(|(r, _)| *r as i64).collect();
                let times: Vec<SystemTime> = i.steps.iter().map(|(_, t)| *t).collect();
                let tx = &tx;
                let upsert = &upsert;
                let replica = &replica;
                async move {
                    tx.execute(
                        upsert,
                        &[
                            replica,
                            &i.environment,
                            &i.instance_id,
                            &i.sdk_name,
                            &i.sdk_version,
                            &i.first_seen,
                            &i.last_seen,
                            &i.connected_since,
                            &(i.applied_revision as i64),
                            &revisions,
                            &times,
                        ],
                    )
                    .await
                }
            });
            futures::future::try_join_all(upserts)
                .await
                .map_err(pg_error)?;
            let rows = tx
                .query(
                    "SELECT i.*, r.heartbeat > now() - make_interval(secs => $2) AS live
                     FROM sdk_instances i JOIN replicas r USING (replica)
                     WHERE i.replica <> $1",
                    &[&replica, &LIVE_FOR.as_secs_f64()],
                )
                .await
                .map_err(pg_error)?;
            tx.commit().await.map_err(pg_error)?;
            Ok(rows.iter().map(row).collect())
        })
    }
}
