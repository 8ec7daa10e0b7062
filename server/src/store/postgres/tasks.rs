//! The store's background tasks: the listener that hears other replicas' commits, and the
//! probe behind `/healthz`.

use super::{CHANNEL, LEADER_LOCK, Shared, pool_error};
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_postgres::AsyncMessage;
use tokio_postgres_rustls::MakeRustlsConnect;

/// How often the probe checks the database.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// `LISTEN`s on a dedicated connection (never a pooled one: the pool would hand it to others,
/// and notifications are per session) and wakes the catalog's follower at every notification.
/// Reconnects after a second when the connection drops; the follower also polls every second,
/// because notifications sent while this connection is down are lost.
pub(super) async fn listen(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    shared: Arc<Shared>,
) {
    loop {
        match config.connect(tls.clone()).await {
            Ok((client, mut connection)) => {
                let commits = Arc::clone(&shared.commits);
                let messages = tokio::spawn(async move {
                    let mut messages =
                        futures::stream::poll_fn(move |cx| connection.poll_message(cx));
                    while let Some(message) = futures::StreamExt::next(&mut messages).await {
                        match message {
                            Ok(AsyncMessage::Notification(_)) => commits.notify_one(),
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "postgres listener connection lost");
                                break;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    // Catch up on whatever was committed while nobody listened.
                    Ok(()) => shared.commits.notify_one(),
                    Err(e) => tracing::warn!(error = %e, "postgres LISTEN failed"),
                }
                let _ = messages.await;
                drop(client);
            }
            Err(e) => tracing::debug!(error = %e, "postgres listener cannot connect"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

/// Checks the database every second (and reads its size for `/metrics`), so `/healthz` turns
/// unhealthy while it is down even when nothing writes, and healthy again when it is back.
pub(super) async fn probe(pool: Pool, shared: Arc<Shared>) {
    loop {
        let checked = tokio::time::timeout(PROBE_EVERY * 3, async {
            let client = pool.get().await.map_err(pool_error)?;
            let row = client
                .query_one(
                    "SELECT pg_database_size(current_database()), \
                     (SELECT coalesce(max(seq), 0) FROM batches)",
                    &[],
                )
                .await
                .map_err(super::pg_error)?;
            Ok::<_, crate::store::StoreError>((row.get::<_, i64>(0), row.get::<_, i64>(1)))
        })
        .await;
        match checked {
            Ok(Ok((size, head))) => {
                shared.size.store(size.max(0) as u64, Ordering::Relaxed);
                shared.head.store(head.max(0) as u64, Ordering::Relaxed);
                shared.healthy.store(true, Ordering::Relaxed);
            }
            Ok(Err(e)) => {
                tracing::debug!(error = %e, "postgres probe failed");
                shared.healthy.store(false, Ordering::Relaxed);
            }
            Err(_) => shared.healthy.store(false, Ordering::Relaxed),
        }
        tokio::time::sleep(PROBE_EVERY).await;
    }
}

/// How often a standby tries to take the leadership, and a leader checks its connection: a dead
/// leader is replaced within about this long (its lock goes with its connection).
pub const LEAD_EVERY: Duration = Duration::from_secs(2);

/// Tries to take the leader lock on a dedicated connection; once held, raises the fencing token
/// and publishes it, then checks the connection and trims the log every [`LEAD_EVERY`]; a lost
/// connection loses the lock, so it steps down at once and tries again.
pub(super) async fn lead(
    config: tokio_postgres::Config,
    tls: MakeRustlsConnect,
    shared: Arc<Shared>,
) {
    let holder = format!("{}:{}", hostname(), std::process::id());
    // A replica behind the trimmed log never leads: its catalog is stale, and it is stopping
    // (see `StoreError::Behind`). Leaving drops the connection, which releases the lock.
    let stalled = || shared.stalled.get().is_some();
    while !stalled() {
        if let Ok((client, connection)) = config.connect(tls.clone()).await {
            let driver = tokio::spawn(connection);
            while !stalled() {
                match try_lead(&client, &holder).await {
                    Ok(Some(token)) => {
                        tracing::info!(token, "this replica leads");
                        shared.leader.send_replace(Some(token));
                        while !stalled() && client.simple_query("SELECT 1").await.is_ok() {
                            trim(&client, shared.log_retention).await;
                            tokio::time::sleep(LEAD_EVERY).await;
                        }
                        if !stalled() {
                            tracing::warn!("lost the database connection that held the leadership");
                        }
                        shared.leader.send_replace(None);
                        break;
                    }
                    Ok(None) => tokio::time::sleep(LEAD_EVERY).await,
                    Err(e) => {
                        tracing::debug!(error = %e, "leader election failed");
                        break;
                    }
                }
            }
            driver.abort();
        }
        shared.leader.send_replace(None);
        if !stalled() {
            tokio::time::sleep(LEAD_EVERY).await;
        }
    }
}

/// Batches removed by one trim at most, so that a first trim of a long log does not hold its
/// rows (and the disk's attention) in one long statement; the next trims take the rest.
const TRIM_AT_MOST: i64 = 10_000;

/// Removes logged batches committed more than `retention` ago (at most [`TRIM_AT_MOST`] of the
/// oldest), except the newest, whose sequence number is the log's head that a starting replica
/// reads; and raises the floor to the last one removed, in the same statement. Runs at every
/// turn of the leader ([`LEAD_EVERY`]); a first query of the oldest batch alone makes a turn
/// with nothing to trim cost one index lookup. A trim that fails is logged and tried again at
/// the next turn; it never costs the leadership.
async fn trim(client: &tokio_postgres::Client, retention: Duration) {
    let retention = retention.as_secs_f64();
    let due = client
        .query_opt(
            "SELECT committed_at < now() - make_interval(secs => $1) \
             FROM batches ORDER BY seq LIMIT 1",
            &[&retention],
        )
        .await;
    match due {
        Ok(Some(row)) if row.get::<_, bool>(0) => {}
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(error = %e, "could not trim the store's log");
            return;
        }
    }
    let trimmed = client
        .query_one(
            "WITH oldest AS (
                 SELECT seq FROM batches WHERE seq < (SELECT max(seq) FROM batches)
                 ORDER BY seq LIMIT $2),
             gone AS (
                 DELETE FROM batches b USING oldest o
                 WHERE b.seq = o.seq AND b.committed_at < now() - make_interval(secs => $1)
                 RETURNING b.seq)
             UPDATE log_floor SET seq = greatest(seq, (SELECT coalesce(max(seq), 0) FROM gone))
             WHERE id = 1
             RETURNING seq, (SELECT count(*) FROM gone)",
            &[&retention, &TRIM_AT_MOST],
        )
        .await;
    match trimmed {
        Ok(row) if row.get::<_, i64>(1) > 0 => {
            let (floor, removed) = (row.get::<_, i64>(0), row.get::<_, i64>(1));
            tracing::debug!(floor, removed, "trimmed the store's log");
        }
        Ok(_) => {}
        Err(e) => tracing::warn!(error = %e, "could not trim the store's log"),
    }
}

/// Takes the leader lock if free; then raises the token under the writer lock.
async fn try_lead(
    client: &tokio_postgres::Client,
    holder: &str,
) -> Result<Option<u64>, tokio_postgres::Error> {
    let got: bool = client
        .query_one("SELECT pg_try_advisory_lock($1)", &[&LEADER_LOCK])
        .await?
        .get(0);
    if !got {
        return Ok(None);
    }
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({})",
            super::WRITER_LOCK
        ))
        .await?;
    let epoch: i64 = client
        .query_one(
            "UPDATE leader SET epoch = epoch + 1, holder = $1, since = now() WHERE id = 1 \
             RETURNING epoch",
            &[&holder],
        )
        .await?
        .get(0);
    client.batch_execute("COMMIT").await?;
    Ok(Some(epoch as u64))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_owned())
        .unwrap_or_default()
}
