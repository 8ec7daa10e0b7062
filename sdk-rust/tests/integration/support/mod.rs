//! A real Flagwire server (the server crate's `run`, real sled in a temp dir, real gRPC on
//! loopback) that a test can stop and start again on the same port and data.
#![allow(dead_code)]

pub mod binary;
pub mod certs;
pub mod e2e;
pub mod gates;
// The server's PostgreSQL and Prometheus test support (a real cluster as the `postgres` user;
// a real Prometheus and an exporter) and the core's vector loader, shared rather than copied;
// these tests use only part of each.
#[path = "../../../../server/tests/integration/support/ports.rs"]
pub mod ports;
#[allow(dead_code)]
#[path = "../../../../server/tests/integration/support/postgres.rs"]
pub mod postgres;
#[path = "../../../../server/tests/integration/support/promserver.rs"]
pub mod prometheus;
#[path = "../../../../core/tests/support/vectors.rs"]
pub mod vectors;

use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::metrics_service_client::MetricsServiceClient;
use flagwire_proto::v1::*;
use flagwire_server::catalog::{Catalog, CatalogOptions};
use flagwire_server::store::sled_store::SledStore;
use flagwire_server::tls::TlsConfig;
use flagwire_server::{Settings, run};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tonic::Request;
use tonic::transport::Channel;

/// The admin token of every test server.
pub const ADMIN: &str = "fw_sdk_tests_admin";

/// A running (or stopped) server.
pub struct TestServer {
    /// The gRPC address.
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
    // Serve over TLS with this certificate; clients trust `ca_pem`.
    tls: Option<TlsConfig>,
    ca_pem: Option<String>,
}

impl TestServer {
    /// Starts a server on a fresh data dir and a free port.
    pub async fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let mut server = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            stop: None,
            task: None,
            tls: None,
            ca_pem: None,
        };
        server.launch().await;
        server
    }

    /// Starts a server on a fresh data dir whose store first holds `batch` (as a restore
    /// would write it: for contents the admin API would refuse, like invalid vector flags).
    pub async fn start_seeded(batch: flagwire_server::store::Batch) -> Self {
        use flagwire_server::store::Store;
        let dir = tempfile::tempdir().unwrap();
        // Seeded through the store the server then runs on: sled releases its directory lock
        // only after its background threads let go, so closing and reopening it here raced
        // (WouldBlock under load).
        let store = SledStore::open(dir.path()).unwrap();
        store.commit(batch).unwrap();
        let mut server = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            stop: None,
            task: None,
            tls: None,
            ca_pem: None,
        };
        server.launch_on(Arc::new(store)).await;
        server
    }

    /// Starts a server serving TLS with a certificate for localhost and 127.0.0.1 signed by a
    /// CA made for the test; [`TestServer::ca_pem`] is that CA.
    pub async fn start_tls() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let certs = certs::make();
        let mut server = Self {
            addr: "127.0.0.1:0".parse().unwrap(),
            dir,
            stop: None,
            task: None,
            tls: Some(
                TlsConfig::from_pem(certs.cert_pem.as_bytes(), certs.key_pem.as_bytes()).unwrap(),
            ),
            ca_pem: Some(certs.ca_pem),
        };
        server.launch().await;
        server
    }

    /// The CA a TLS server's certificate chains to.
    pub fn ca_pem(&self) -> &str {
        self.ca_pem.as_deref().expect("not a TLS server")
    }

    async fn launch(&mut self) {
        let store = Arc::new(SledStore::open(self.dir.path()).unwrap());
        self.launch_on(store).await;
    }

    async fn launch_on(&mut self, store: Arc<SledStore>) {
        let catalog = Arc::new(Catalog::open(store, CatalogOptions::default()).unwrap());
        catalog.bootstrap_admin(Some(ADMIN.into())).await.unwrap();
        let grpc = tokio::net::TcpListener::bind(self.addr).await.unwrap();
        self.addr = grpc.local_addr().unwrap();
        let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let settings = Settings {
            heartbeat: Duration::from_millis(500),
            shutdown_grace: Duration::from_millis(200),
            tls: self.tls.clone(),
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
    }

    /// The endpoint URL SDKs connect to.
    pub fn url(&self) -> String {
        match self.tls {
            Some(_) => format!("https://localhost:{}", self.addr.port()),
            None => format!("http://{}", self.addr),
        }
    }

    /// Stops the server (streams end, the store is flushed and closed).
    pub async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop().await;
        self.launch().await;
    }

    /// An admin client.
    pub async fn admin(&self) -> Admin {
        let mut endpoint = Channel::from_shared(self.url()).unwrap();
        if let Some(ca) = &self.ca_pem {
            let tls = tonic::transport::ClientTlsConfig::new()
                .ca_certificate(tonic::transport::Certificate::from_pem(ca));
            endpoint = endpoint.tls_config(tls).unwrap();
        }
        let channel = endpoint.connect().await.unwrap();
        Admin(
            AdminServiceClient::new(channel.clone()),
            MetricsServiceClient::new(channel),
        )
    }
}

/// An admin client that adds the token (admin and metrics services).
pub struct Admin(
    pub AdminServiceClient<Channel>,
    pub MetricsServiceClient<Channel>,
);

fn auth<T>(message: T) -> Request<T> {
    let mut r = Request::new(message);
    r.metadata_mut()
        .insert("authorization", format!("Bearer {ADMIN}").parse().unwrap());
    r
}

impl Admin {
    /// Creates an environment.
    pub async fn env(&mut self, key: &str) {
        let environment = Some(Environment {
            key: key.into(),
            ..Default::default()
        });
        self.0
            .create_environment(auth(CreateEnvironmentRequest {
                environment,
                reason: String::new(),
            }))
            .await
            .unwrap();
    }

    /// Creates a boolean flag on/off, disabled in `env`, default on.
    pub async fn bool_flag(&mut self, key: &str, env: &str) {
        let variant = |k: &str, b: bool| Variant {
            key: k.into(),
            value: Some(FlagValue {
                kind: Some(flag_value::Kind::BoolValue(b)),
            }),
            description: String::new(),
        };
        let config = FlagConfig {
            off_variant: "off".into(),
            default_rule: Some(Serve {
                kind: Some(serve::Kind::Variant("on".into())),
            }),
            ..Default::default()
        };
        let flag = Flag {
            key: key.into(),
            r#type: ValueType::Boolean as i32,
            variants: vec![variant("on", true), variant("off", false)],
            environments: [(env.to_string(), config)].into(),
            ..Default::default()
        };
        self.0
            .create_flag(auth(CreateFlagRequest {
                flag: Some(flag),
                reason: String::new(),
            }))
            .await
            .unwrap();
    }

    /// Toggles a flag.
    pub async fn set(&mut self, key: &str, env: &str, enabled: bool) -> u64 {
        let request = SetFlagEnabledRequest {
            key: key.into(),
            environment: env.into(),
            enabled,
            ..Default::default()
        };
        let flag = self
            .0
            .set_flag_enabled(auth(request))
            .await
            .unwrap()
            .into_inner()
            .flag
            .unwrap();
        flag.version
    }

    /// An sdk token's secret.
    pub async fn sdk_token(&mut self, name: &str, env: &str) -> String {
        let request = CreateApiTokenRequest {
            name: name.into(),
            role: Role::Sdk as i32,
            environment: env.into(),
            reason: String::new(),
        };
        self.0
            .create_api_token(auth(request))
            .await
            .unwrap()
            .into_inner()
            .secret
    }

    /// Usage rows of a flag over the last hour.
    pub async fn usage(&mut self, env: &str, flag: &str) -> Vec<UsageRow> {
        let now = std::time::SystemTime::now();
        let request = GetUsageRequest {
            environment: env.into(),
            flag_key: flag.into(),
            start_time: Some((now - Duration::from_secs(3600)).into()),
            end_time: Some((now + Duration::from_secs(3600)).into()),
        };
        self.1
            .get_usage(auth(request))
            .await
            .unwrap()
            .into_inner()
            .rows
    }

    /// (connected instances, of which applied `revision`).
    pub async fn applied(&mut self, env: &str, revision: u64) -> (u32, u32) {
        let request = CountAppliedInstancesRequest {
            environment: env.into(),
            revision,
        };
        let r = self
            .1
            .count_applied_instances(auth(request))
            .await
            .unwrap()
            .into_inner();
        (r.connected, r.applied)
    }

    /// Creates a boolean flag enabled in `env` with a 50/50 split of on/off by targeting key.
    pub async fn split_flag(&mut self, key: &str, env: &str) {
        let variant = |k: &str, b: bool| Variant {
            key: k.into(),
            value: Some(FlagValue {
                kind: Some(flag_value::Kind::BoolValue(b)),
            }),
            description: String::new(),
        };
        let entry = |v: &str| SplitEntry {
            variant: v.into(),
            weight: 50,
            label: String::new(),
        };
        let config = FlagConfig {
            enabled: true,
            off_variant: "off".into(),
            default_rule: Some(Serve {
                kind: Some(serve::Kind::Split(Split {
                    entries: vec![entry("on"), entry("off")],
                    ..Default::default()
                })),
            }),
            ..Default::default()
        };
        let flag = Flag {
            key: key.into(),
            r#type: ValueType::Boolean as i32,
            variants: vec![variant("on", true), variant("off", false)],
            environments: [(env.to_string(), config)].into(),
            ..Default::default()
        };
        self.0
            .create_flag(auth(CreateFlagRequest {
                flag: Some(flag),
                reason: String::new(),
            }))
            .await
            .unwrap();
    }

    /// The environment's revision.
    pub async fn revision(&mut self, env: &str) -> u64 {
        let request = GetEnvironmentRequest { key: env.into() };
        self.0
            .get_environment(auth(request))
            .await
            .unwrap()
            .into_inner()
            .environment
            .unwrap()
            .revision
    }
}
