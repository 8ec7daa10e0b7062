//! The store's background tasks: the listener that hears other replicas' commits, and the
//! probe behind `/healthz`.

use super::{CHANNEL, Shared, pool_error};
use deadpool_postgres::Pool;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio_postgres::{AsyncMessage, NoTls};

/// How often the probe checks the database.
const PROBE_EVERY: Duration = Duration::from_secs(1);

/// `LISTEN`s on a dedicated connection (never a pooled one: the pool would hand it to others,
/// and notifications are per session) and wakes the catalog's follower at every notification.
/// Reconnects after a second when the connection drops; the follower also polls every second,
/// because notifications sent while this connection is down are lost.
pub(super) async fn listen(config: tokio_postgres::Config, shared: Arc<Shared>) {
    loop {
        match config.connect(NoTls).await {
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
                .query_one("SELECT pg_database_size(current_database())", &[])
                .await
                .map_err(super::pg_error)?;
            Ok::<_, crate::store::StoreError>(row.get::<_, i64>(0))
        })
        .await;
        match checked {
            Ok(Ok(size)) => {
                shared.size.store(size.max(0) as u64, Ordering::Relaxed);
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
