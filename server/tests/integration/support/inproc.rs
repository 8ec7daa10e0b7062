//! The server in this process (real sled in a temp dir, real gRPC on loopback) on a
//! [`ManualClock`]: tests of anything that acts on time (rollouts, scheduled changes, ramps,
//! plan waits) advance the clock instead of sleeping, and can stop and start the server on
//! the same data to check what survives a restart.

use super::binary::{ADMIN, Connect};
use super::eventually::{DEADLINE, eventually};
use super::postgres;
use flagwire_server::catalog::{Catalog, CatalogOptions};
use flagwire_server::clock::{Clock, ManualClock, Timers};
use flagwire_server::releases::ReleaseOptions;
use flagwire_server::releases::prometheus::PrometheusOptions;
use flagwire_server::store::{Store, postgres::PgStore, sled_store::SledStore};
use flagwire_server::{Settings, run};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

/// A server running in this process on a manual clock.
pub struct InProcess {
    /// The gRPC address (the same across restarts).
    pub addr: SocketAddr,
    /// The HTTP address (a new one after a restart).
    pub http: String,
    /// The clock the server goes by; only the test moves it.
    pub clock: Arc<ManualClock>,
    timers: Arc<Timers>,
    prometheus: Option<PrometheusOptions>,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl InProcess {
    /// Starts a server on a fresh data directory, its clock stopped at the current time.
    pub async fn start() -> Self {
        Self::start_with(None).await
    }

    /// Starts a server as [`InProcess::start`] does, evaluating Prometheus gates against
    /// `prometheus` if given.
    pub async fn start_with(prometheus: Option<PrometheusOptions>) -> Self {
        let mut server = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            http: String::new(),
            clock: Arc::new(ManualClock::at_now()),
            timers: Arc::default(),
            prometheus,
            dir: tempfile::tempdir().unwrap(),
            stop: None,
            task: None,
        };
        server.launch().await;
        server
    }

    async fn launch(&mut self) {
        let store: Arc<dyn Store> = match postgres::store_for(self.dir.path()) {
            Some(url) => PgStore::open(&url).unwrap(),
            None => Arc::new(SledStore::open(self.dir.path()).unwrap()),
        };
        let options = CatalogOptions {
            clock: Arc::clone(&self.clock) as Arc<_>,
            ..CatalogOptions::default()
        };
        let catalog = Arc::new(Catalog::open(store, options).unwrap());
        catalog.bootstrap_admin(Some(ADMIN.into())).await.unwrap();
        let grpc = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.addr = grpc.local_addr().unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        self.http = http.local_addr().unwrap().to_string();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let leads = Arc::clone(&catalog);
        let settings = Settings {
            shutdown_grace: Duration::from_millis(200),
            // The driver and the manager look at the clock this often; a short tick only makes
            // a test react sooner after it advances the clock, it never decides an outcome.
            releases: ReleaseOptions {
                tick: Duration::from_millis(2),
                prometheus: self.prometheus.clone(),
                ..ReleaseOptions::default()
            },
            timers: Arc::clone(&self.timers),
            ..Settings::new(catalog)
        };
        self.stop = Some(stop);
        self.task = Some(tokio::spawn(async move {
            run(grpc, http, settings, async move {
                let _ = stopped.await;
            })
            .await
            .unwrap();
        }));
        // Only the leader closes windows and runs timers. On PostgreSQL a restarted server
        // leads once the database has let go of the old one's lock (it retries every 2 s),
        // and a test that reports and advances the clock before then would see the window
        // open at the leadership instead of at the restart: wait, rather than hope, for it.
        eventually(DEADLINE, "the server to lead", async || {
            leads.leadership().map(drop)
        })
        .await;
    }

    /// Stops the server (it flushes the store) and starts it again on the same data and port.
    pub async fn restart(&mut self) {
        self.shut_down().await;
        self.launch().await;
    }

    /// Stops the server and waits until it has released the store.
    pub async fn shut_down(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Now, by the server's clock.
    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    /// Moves the server's clock forward.
    pub fn advance(&self, by: Duration) {
        self.clock.advance(by);
    }

    /// Waits until both timer loops (the manager's and the rollout driver's) have finished a
    /// pass that started at or after the clock's current time: whatever was due by now has been
    /// done, so a test may assert that something else was *not*.
    pub async fn caught_up(&self) {
        // Pulses keep whole milliseconds.
        let since = self.now().duration_since(SystemTime::UNIX_EPOCH).unwrap();
        let now = SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64);
        let passed = |at: Option<SystemTime>| at.is_some_and(|t| t >= now);
        eventually(
            DEADLINE,
            "the timers to catch up with the clock",
            async || {
                (passed(self.timers.manager.last()) && passed(self.timers.rollouts.last()))
                    .then_some(())
            },
        )
        .await;
    }
}

impl Connect for InProcess {
    fn address(&self) -> String {
        self.addr.to_string()
    }

    fn http_address(&self) -> String {
        self.http.clone()
    }
}
