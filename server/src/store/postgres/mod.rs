//! A [`Store`] on PostgreSQL, shared by any number of replicas.
//!
//! Tables (see [`schema`]): `kv` holds every key and value; `batches` logs every committed batch
//! under a global sequence. Every commit is one transaction that first takes one global
//! transaction-scoped advisory lock ([`WRITER_LOCK`]), so commits from all replicas are totally
//! ordered and `batches.seq` is their commit order; it writes the ops, appends the batch, and
//! `NOTIFY`s the other replicas, which tail the log (see `catalog::follow`). Durable on return:
//! the commit is acknowledged by PostgreSQL with `synchronous_commit` on.
//!
//! Leadership (for everything that acts on time): the replica holding a session advisory lock
//! on a dedicated connection leads; on taking it, it raises the fencing token in the `leader`
//! row, and its leader-only writes carry that token, checked under the writer lock, so a
//! deposed leader that has not noticed yet cannot write. A dead leader's session ends with its
//! connection and a standby takes the lock at its next try (every [`tasks::LEAD_EVERY`]).
//!
//! One lock rather than a row lock per environment's revision counter: admin writes are rare
//! (tens per second at most), a write may touch every environment (a flag change gives each a
//! revision), and one lock also orders the log, which per-environment locks would not.
//!
//! The driver is tokio-postgres (with deadpool's pool) on a runtime of its own, two threads
//! named `flagwire-pg`. The [`Store`] trait is synchronous because sled is; its callers already
//! run commits on the blocking pool, and the few reads made from async code (history, the
//! change log a resuming watcher needs) wait one loopback round trip. A separate runtime rather
//! than `block_in_place` because the latter panics on the current-thread runtimes the tests use,
//! and because the listener and the health probe must keep running while the caller's runtime
//! is busy. Never call these methods from the store's own runtime.
//!
//! TLS: every connection (pool, listener, leader) goes through one rustls connector built from
//! the URL's `sslmode` and `sslrootcert`, with libpq's meanings (see [`tls`]).

mod errors;
pub mod fleet;
mod log;
pub mod schema;
mod tasks;
pub mod tls;
mod write;

use super::{Batch, Entry, Logged, Store, StoreError, WriteTxn};
use deadpool_postgres::{Manager, ManagerConfig, Object, Pool, RecyclingMethod};
pub(crate) use errors::pg_error;
use errors::pool_error;
use log::{lock, read_log, write_batch};
use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;
use tokio::sync::Notify;

/// Advisory-lock key every commit takes ("fwwriter" as ASCII).
pub const WRITER_LOCK: i64 = 0x6677777269746572;
/// Session advisory-lock key the leader holds ("fwleader").
pub const LEADER_LOCK: i64 = 0x66776c6561646572;
/// The channel commits are announced on.
pub const CHANNEL: &str = "flagwire_batches";
/// How long a commit waits for the writer lock before failing as unavailable.
const LOCK_TIMEOUT: &str = "10s";
/// Pooled connections for reads and commits (the listener has its own).
const POOL_SIZE: usize = 8;
/// How long logged batches are kept by default: a week, far longer than any replica that is
/// still running stays cut off from the database (one that was, restarts; see `read_log`).
pub const DEFAULT_LOG_RETENTION: Duration = Duration::from_secs(7 * 86_400);

/// PostgreSQL as the store.
pub struct PgStore {
    rt: Option<tokio::runtime::Runtime>,
    pool: Pool,
    shared: Arc<Shared>,
}

/// What the store's background tasks share with it.
struct Shared {
    healthy: AtomicBool,
    size: AtomicU64,
    // The log's last sequence number at the last probe.
    head: AtomicU64,
    commits: Arc<Notify>,
    // `Some(token)` while this replica leads (see `tasks::lead`).
    leader: tokio::sync::watch::Sender<Option<u64>>,
    // Why this replica can no longer follow the log, once it cannot (`StoreError::Behind`).
    stalled: std::sync::OnceLock<String>,
    // How long the leader keeps logged batches (see `tasks::trim`).
    log_retention: Duration,
}

impl Shared {
    /// Notes the outcome of a request for `/healthz`: a lost connection is unhealthy until a
    /// request or the probe succeeds.
    /// A replica behind the trimmed log is stalled for good (see `read_log`).
    fn saw<T>(&self, result: &Result<T, StoreError>) {
        match result {
            Ok(_) => self.healthy.store(true, Ordering::Relaxed),
            Err(StoreError::Unavailable(_)) => self.healthy.store(false, Ordering::Relaxed),
            Err(e @ StoreError::Behind { .. }) => {
                if self.stalled.set(e.to_string()).is_ok() {
                    tracing::error!(error = %e, "cannot follow the store's log");
                }
            }
            Err(_) => {}
        }
    }
}

impl PgStore {
    /// [`PgStore::open_with`] with the default log retention.
    pub fn open(url: &str) -> Result<Arc<Self>, StoreError> {
        Self::open_with(url, DEFAULT_LOG_RETENTION)
    }

    /// Connects to `url` (`postgres://USER:PASSWORD@HOST:PORT/DB?sslmode=…`), applies the missing
    /// migrations and starts the listener, the health probe and the leader election (whose
    /// leader trims logged batches older than `log_retention`). Fails when the URL is invalid,
    /// the database cannot be reached (TLS included) or its schema is newer than this binary
    /// knows.
    pub fn open_with(url: &str, log_retention: Duration) -> Result<Arc<Self>, StoreError> {
        let (mut config, tls) = tls::connect_config(url)
            .map_err(|e| StoreError::Schema(format!("--store {:?}: {e}", tls::redact(url))))?;
        config
            .application_name("flagwire")
            .connect_timeout(Duration::from_secs(3));
        let rt = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("flagwire-pg")
            .enable_all()
            .build()?;
        let manager = Manager::from_config(
            config.clone(),
            tls.clone(),
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(deadpool_postgres::Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(5)))
            .create_timeout(Some(Duration::from_secs(3)))
            .recycle_timeout(Some(Duration::from_secs(3)))
            .build()
            .map_err(|e| StoreError::Schema(format!("connection pool: {e}")))?;
        let shared = Arc::new(Shared {
            healthy: AtomicBool::new(true),
            size: AtomicU64::new(0),
            head: AtomicU64::new(0),
            commits: Arc::new(Notify::new()),
            leader: tokio::sync::watch::Sender::new(None),
            stalled: std::sync::OnceLock::new(),
            log_retention,
        });
        let store = Self {
            rt: Some(rt),
            pool,
            shared,
        };
        let (migrate_config, migrate_tls) = (config.clone(), tls.clone());
        store.block(async move {
            let (mut client, connection) = migrate_config
                .connect(migrate_tls)
                .await
                .map_err(pg_error)?;
            let driver = tokio::spawn(connection);
            let migrated = Self::migrate(&mut client, schema::MIGRATIONS).await;
            drop(client);
            let _ = driver.await;
            migrated.map(drop)
        })?;
        store.spawn(tasks::listen(
            config.clone(),
            tls.clone(),
            Arc::clone(&store.shared),
        ));
        store.spawn(tasks::lead(config, tls, Arc::clone(&store.shared)));
        store.spawn(tasks::probe(store.pool.clone(), Arc::clone(&store.shared)));
        Ok(Arc::new(store))
    }

    fn handle(&self) -> &tokio::runtime::Handle {
        self.rt.as_ref().expect("runtime until drop").handle()
    }

    fn spawn(&self, task: impl Future<Output = ()> + Send + 'static) {
        self.handle().spawn(task);
    }

    /// Runs `work` on the store's runtime and waits for it on this thread.
    fn block<T: Send + 'static>(
        &self,
        work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
    ) -> Result<T, StoreError> {
        block_on(self.handle(), &self.shared, work)
    }

    async fn client(pool: &Pool) -> Result<Object, StoreError> {
        pool.get().await.map_err(pool_error)
    }

    fn scan(
        &self,
        start: &[u8],
        end: &[u8],
        limit: usize,
        rev: bool,
    ) -> Result<Vec<Entry>, StoreError> {
        let pool = self.pool.clone();
        let (start, end) = (start.to_vec(), end.to_vec());
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        self.block(async move {
            let client = Self::client(&pool).await?;
            let sql = if rev {
                "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key DESC LIMIT $3"
            } else {
                "SELECT key, value FROM kv WHERE key >= $1 AND key < $2 ORDER BY key LIMIT $3"
            };
            let statement = client.prepare_cached(sql).await.map_err(pg_error)?;
            let rows = client
                .query(&statement, &[&start, &end, &limit])
                .await
                .map_err(pg_error)?;
            Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
        })
    }
}

/// Spawns `work` on `handle` and blocks this thread until it finishes, noting the outcome in
/// `shared`'s health.
fn block_on<T: Send + 'static>(
    handle: &tokio::runtime::Handle,
    shared: &Arc<Shared>,
    work: impl Future<Output = Result<T, StoreError>> + Send + 'static,
) -> Result<T, StoreError> {
    // A std channel: tokio's blocking receive panics inside an async context, which is where
    // some callers are.
    let (tx, rx) = std::sync::mpsc::sync_channel(1);
    handle.spawn(async move {
        let _ = tx.send(work.await);
    });
    let result = rx.recv().unwrap_or_else(|_| {
        Err(StoreError::Unavailable(
            "the store's runtime stopped".into(),
        ))
    });
    shared.saw(&result);
    result
}

impl Store for PgStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, StoreError> {
        let pool = self.pool.clone();
        let key = key.to_vec();
        self.block(async move {
            let client = Self::client(&pool).await?;
            let statement = client
                .prepare_cached("SELECT value FROM kv WHERE key = $1")
                .await
                .map_err(pg_error)?;
            let row = client
                .query_opt(&statement, &[&key])
                .await
                .map_err(pg_error)?;
            Ok(row.map(|r| r.get(0)))
        })
    }

    fn range(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.scan(start, end, limit, false)
    }

    fn range_rev(&self, start: &[u8], end: &[u8], limit: usize) -> Result<Vec<Entry>, StoreError> {
        self.scan(start, end, limit, true)
    }

    fn commit(&self, batch: Batch) -> Result<(), StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let client = Self::client(&pool).await?;
            let written = async {
                lock(&client).await?;
                write_batch(&client, &batch).await?;
                client.batch_execute("COMMIT").await.map_err(pg_error)
            }
            .await;
            if written.is_err() {
                // Never hand a connection with an open or aborted transaction back to the pool.
                drop(Object::take(client));
            }
            written
        })
    }

    fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    fn size_on_disk(&self) -> u64 {
        self.shared.size.load(Ordering::Relaxed)
    }

    fn begin(
        self: Arc<Self>,
        after: u64,
        fence: Option<u64>,
    ) -> Result<Box<dyn WriteTxn>, StoreError> {
        let pool = self.pool.clone();
        let (client, head, pending) = self.block(async move {
            let client = Self::client(&pool).await?;
            let locked = async {
                lock(&client).await?;
                if let Some(token) = fence {
                    // Under the writer lock: a new leader raises the epoch before it writes,
                    // so a deposed one's write is refused here, never interleaved.
                    let epoch: i64 = client
                        .query_one("SELECT epoch FROM leader WHERE id = 1", &[])
                        .await
                        .map_err(pg_error)?
                        .get(0);
                    if epoch as u64 != token {
                        return Err(StoreError::Fenced(token));
                    }
                }
                let head: i64 = client
                    .query_one("SELECT coalesce(max(seq), 0) FROM batches", &[])
                    .await
                    .map_err(pg_error)?
                    .get(0);
                let pending = read_log(&client, after, usize::MAX).await?;
                Ok((head as u64, pending))
            }
            .await;
            match locked {
                Ok((head, pending)) => Ok((client, head, pending)),
                Err(e) => {
                    drop(Object::take(client));
                    Err(e)
                }
            }
        })?;
        Ok(Box::new(write::PgWrite::new(self, client, head, pending)))
    }

    fn shared(&self) -> bool {
        true
    }

    fn batches_after(&self, after: u64, limit: usize) -> Result<Vec<Logged>, StoreError> {
        let pool = self.pool.clone();
        self.block(async move {
            let client = Self::client(&pool).await?;
            read_log(&client, after, limit).await
        })
    }

    fn leadership(&self) -> Option<tokio::sync::watch::Receiver<Option<u64>>> {
        Some(self.shared.leader.subscribe())
    }

    fn commits(&self) -> Option<Arc<Notify>> {
        Some(Arc::clone(&self.shared.commits))
    }

    fn exchange_instances(
        &self,
        replica: &str,
        mine: super::fleet::Published,
        retention: Duration,
    ) -> Option<Result<Vec<super::fleet::SharedInstance>, StoreError>> {
        Some(self.exchange(replica, mine, retention))
    }

    fn healthy(&self) -> bool {
        self.shared.healthy.load(Ordering::Relaxed) && self.shared.stalled.get().is_none()
    }

    fn stalled(&self) -> Option<String> {
        self.shared.stalled.get().cloned()
    }

    fn log_head(&self) -> u64 {
        self.shared.head.load(Ordering::Relaxed)
    }
}

impl Drop for PgStore {
    fn drop(&mut self) {
        // Dropping a runtime blocks until its tasks end, which panics inside an async context;
        // the listener and the probe loop forever, so let them go.
        if let Some(rt) = self.rt.take() {
            rt.shutdown_background();
        }
    }
}
