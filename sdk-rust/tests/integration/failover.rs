//! Several endpoints (`docs/reference/sync.md`, "Several endpoints") against real server
//! binaries: kill -9 of server A moves the client to server B, where it resumes with
//! `since_revision`, serving its copy meanwhile, and ends with B's state; a first endpoint that is
//! down at start is skipped; a name with several addresses is one endpoint per address.
//!
//! The replicas: B is restored from a backup of A (same flags, tokens and revisions), which is
//! what a second replica on the same store looks like to an SDK; [`pg_replicas`] starts both
//! on one PostgreSQL database instead (the cluster started by the server's test support), for
//! the same failover and for kill -9 of the client's replica during a write storm on the other:
//! the client resumes there with every change, none lost or reordered. The binary is
//! `FLAGWIRE_BIN` or this profile's.

use flagwire::{Client, Context, FlagChange, Reason, State};
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::grpc::metrics_service_client::MetricsServiceClient;
use flagwire_proto::v1::*;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

use crate::support::binary;
use crate::support::certs;
use crate::support::postgres;
use binary::{Binary, auth, bool_flag};

const ENV: &str = "production";
const FLAG: &str = "new-checkout";
const WAIT: Duration = Duration::from_secs(10);

/// Admin calls to one server.
struct Admin(AdminServiceClient<Channel>, MetricsServiceClient<Channel>);

impl Admin {
    async fn connect(server: &Binary) -> Self {
        let channel = Channel::from_shared(server.url.clone())
            .unwrap()
            .connect()
            .await
            .unwrap();
        Self::over(channel)
    }

    fn over(channel: Channel) -> Self {
        Self(
            AdminServiceClient::new(channel.clone()),
            MetricsServiceClient::new(channel),
        )
    }

    async fn set(&mut self, enabled: bool) {
        let request = SetFlagEnabledRequest {
            key: FLAG.into(),
            environment: ENV.into(),
            enabled,
            ..Default::default()
        };
        self.0.set_flag_enabled(auth(request)).await.unwrap();
    }

    async fn revision(&mut self) -> u64 {
        let request = GetEnvironmentRequest { key: ENV.into() };
        let response = self.0.get_environment(auth(request)).await.unwrap();
        response.into_inner().environment.unwrap().revision
    }

    /// Whether the server has a Watch stream of `instance` open.
    async fn connected(&mut self, instance: uuid::Uuid) -> bool {
        let request = ListInstancesRequest {
            environment: ENV.into(),
        };
        let response = self.1.list_instances(auth(request)).await.unwrap();
        let id = instance.to_string();
        response
            .into_inner()
            .instances
            .iter()
            .any(|i| i.instance_id == id && i.connected)
    }

    /// (connected instances, of which applied `revision`).
    async fn applied(&mut self, revision: u64) -> (u32, u32) {
        let request = CountAppliedInstancesRequest {
            environment: ENV.into(),
            revision,
        };
        let r = self.1.count_applied_instances(auth(request)).await.unwrap();
        (r.get_ref().connected, r.get_ref().applied)
    }
}

/// Servers A and B holding the same state; `revision` is the environment's on both.
struct Replicas {
    a: Binary,
    b: Binary,
    admin_a: Admin,
    admin_b: Admin,
    token: String,
    revision: u64,
    _backup: Option<tempfile::TempDir>,
}

/// Environment `production`, flag `new-checkout` (serving `on`: true) and an sdk token, whose
/// secret it returns.
async fn populate(admin: &mut Admin) -> String {
    let environment = Some(Environment {
        key: ENV.into(),
        ..Default::default()
    });
    let request = CreateEnvironmentRequest {
        environment,
        ..Default::default()
    };
    admin.0.create_environment(auth(request)).await.unwrap();
    let request = CreateFlagRequest {
        flag: Some(bool_flag(FLAG, ENV, "on")),
        reason: String::new(),
    };
    admin.0.create_flag(auth(request)).await.unwrap();
    let request = CreateApiTokenRequest {
        name: "svc".into(),
        role: Role::Sdk as i32,
        environment: ENV.into(),
        reason: String::new(),
    };
    let token = admin.0.create_api_token(auth(request)).await.unwrap();
    token.into_inner().secret
}

/// A, populated, then B restored from A's backup, listening on `b_listen(A's port)`.
async fn replicas(b_listen: impl FnOnce(u16) -> String) -> Replicas {
    let a = binary::start();
    let mut admin_a = Admin::connect(&a).await;
    let token = populate(&mut admin_a).await;
    let backup = tempfile::tempdir().unwrap();
    let path = backup.path().join("a.backup");
    a.cli(&["backup", "--out", path.to_str().unwrap()]);
    let b = binary::start_restored(&path, &b_listen(a.port()), &[]);
    let admin_b = Admin::connect(&b).await;
    let revision = admin_a.revision().await;
    Replicas {
        a,
        b,
        admin_a,
        admin_b,
        token,
        revision,
        _backup: Some(backup),
    }
}

/// A and B on one PostgreSQL database (a replica of each other, issue 15), populated on A;
/// returns once B serves A's revision.
async fn pg_replicas() -> Replicas {
    let url = postgres::shared().create_db();
    let a = binary::start_with(&["--store", &url]);
    let b = binary::start_with(&["--store", &url]);
    let mut admin_a = Admin::connect(&a).await;
    let token = populate(&mut admin_a).await;
    let revision = admin_a.revision().await;
    let mut admin_b = Admin::connect(&b).await;
    eventually("B to follow A", async || {
        let request = GetEnvironmentRequest { key: ENV.into() };
        let response = admin_b.0.get_environment(auth(request)).await;
        response.is_ok_and(|r| r.into_inner().environment.unwrap().revision == revision)
    })
    .await;
    Replicas {
        a,
        b,
        admin_a,
        admin_b,
        token,
        revision,
        _backup: None,
    }
}

/// Polls `probe` every 20 ms until it holds, for at most [`WAIT`].
async fn eventually(what: &str, mut probe: impl AsyncFnMut() -> bool) {
    let until = tokio::time::Instant::now() + WAIT;
    while !probe().await {
        assert!(tokio::time::Instant::now() < until, "timed out: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn builder(url: &str, token: &str) -> flagwire::ClientBuilder {
    Client::builder(url, token)
        .backoff(Duration::from_millis(50), Duration::from_millis(500))
        .heartbeat_timeout(Duration::from_secs(3))
}

/// Connected to A: kill -9 A; the client serves its copy meanwhile, reconnects to B, resumes
/// there (no snapshot: B has the same revisions) and follows B's changes, acknowledging to B.
async fn fail_over(r: &mut Replicas, client: &Client) {
    let ctx = Context::new("user-1");
    let mut states = client.states();
    client.wait_ready(WAIT).await.unwrap();
    assert_eq!(client.revision(), r.revision);
    let id = client.instance_id();
    assert!(r.admin_a.connected(id).await, "connected to A first");
    assert!(!r.admin_b.connected(id).await, "not to B");
    let mut changes = client.changes();

    r.a.kill();
    tokio::time::timeout(WAIT, states.wait_for(|s| *s == State::Stale))
        .await
        .expect("STALE after A died")
        .unwrap();
    let served = client.bool_details(FLAG, &ctx, false);
    assert_eq!((served.value, served.reason), (true, Reason::Static));
    eventually("a stream on B", async || r.admin_b.connected(id).await).await;
    eventually("READY on B", async || client.state() == State::Ready).await;

    r.admin_b.set(false).await;
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("B's change")
        .unwrap();
    // B's change first: the session on B resumed from the revision held instead of starting
    // from a snapshot (which would have announced a change at the revision held first).
    let expected = FlagChange {
        revision: r.revision + 1,
        flags: vec![FLAG.into()],
    };
    assert_eq!(change, expected);
    assert!(!client.bool_value(FLAG, &ctx, true));
    // Reports follow the session: B hears the applied-revision acknowledgement.
    let next = r.revision + 1;
    eventually("B counts the instance applied", async || {
        r.admin_b.applied(next).await == (1, 1)
    })
    .await;
}

#[tokio::test]
async fn fails_over_to_the_next_endpoint_resumes_and_ends_with_its_state() {
    let mut r = replicas(|_| "127.0.0.1:0".into()).await;
    let client = builder(&r.a.url, &r.token)
        .endpoints([r.a.url.clone(), r.b.url.clone()])
        .build()
        .unwrap();
    fail_over(&mut r, &client).await;
    client.close().await;
}

#[tokio::test]
async fn connects_to_the_next_endpoint_when_the_first_is_down_at_start() {
    let mut r = replicas(|_| "127.0.0.1:0".into()).await;
    let down = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        format!("http://{}", listener.local_addr().unwrap())
    };
    // The comma-separated form an environment variable holds.
    let client = builder(&format!("{down}, {}", r.b.url), &r.token)
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    assert!(r.admin_b.connected(client.instance_id()).await);
    assert!(client.bool_value(FLAG, &Context::new("u"), false));
    client.close().await;
}

/// A on 127.0.0.1:P, B on 127.0.0.2:P, and a name resolving to both. No name on this machine
/// resolves to several addresses (/etc/hosts has localhost as 127.0.0.1 only), so the resolver
/// is injected; the connections, the `:authority` and the failover are real.
#[tokio::test]
async fn a_name_with_several_addresses_is_one_endpoint_per_address() {
    let mut r = replicas(|port| format!("127.0.0.2:{port}")).await;
    let asked = Arc::new(Mutex::new(Vec::<String>::new()));
    let log = Arc::clone(&asked);
    let url = format!("http://replicas.flagwire.test:{}", r.a.port());
    let client = builder(&url, &r.token)
        .resolver(move |host: String| {
            log.lock().unwrap().push(host.clone());
            let addresses: Vec<IpAddr> = if host == "replicas.flagwire.test" {
                vec!["127.0.0.1".parse().unwrap(), "127.0.0.2".parse().unwrap()]
            } else {
                Vec::new()
            };
            async move { Ok(addresses) }
        })
        .build()
        .unwrap();
    fail_over(&mut r, &client).await;
    client.close().await;
    assert_eq!(asked.lock().unwrap()[0], "replicas.flagwire.test");
}

#[tokio::test]
async fn an_empty_endpoint_list_is_a_config_error() {
    let error = Client::builder(" , ", "t").build().unwrap_err();
    assert!(error.to_string().contains("endpoint"), "{error}");
    let error = Client::builder("http://a:1", "t")
        .endpoints(Vec::<String>::new())
        .build()
        .unwrap_err();
    assert!(error.to_string().contains("endpoint"), "{error}");
}

/// A TLS server on 127.0.0.2 with a certificate for localhost and 127.0.0.1 only, and
/// `localhost` made to resolve to 127.0.0.2 first: the client connects to 127.0.0.2 and verifies
/// the certificate against the name, as it would have without expansion.
#[tokio::test]
async fn a_pinned_address_keeps_the_name_for_tls() {
    let pki = certs::make();
    let dir = tempfile::tempdir().unwrap();
    let (cert, key) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert, &pki.cert_pem).unwrap();
    std::fs::write(&key, &pki.key_pem).unwrap();
    let tls = ["--tls-cert", cert.to_str().unwrap()];
    let server = binary::start_on(
        "127.0.0.2:0",
        &[&tls[..], &["--tls-key", key.to_str().unwrap()]].concat(),
    );
    let port = server.port();
    let trust = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(&pki.ca_pem))
        .domain_name("localhost");
    let channel = Channel::from_shared(format!("https://127.0.0.2:{port}"))
        .unwrap()
        .tls_config(trust)
        .unwrap()
        .connect()
        .await
        .unwrap();
    let mut admin = Admin::over(channel);
    let token = populate(&mut admin).await;
    let client = builder(&format!("https://localhost:{port}"), &token)
        .tls_ca_pem(pki.ca_pem.clone())
        .resolver(|host: String| async move {
            let addresses: Vec<IpAddr> = if host == "localhost" {
                vec!["127.0.0.2".parse().unwrap(), "127.0.0.1".parse().unwrap()]
            } else {
                Vec::new()
            };
            Ok(addresses)
        })
        .build()
        .unwrap();
    client
        .wait_ready(WAIT)
        .await
        .expect("ready over TLS at 127.0.0.2");
    assert!(admin.connected(client.instance_id()).await);
    client.close().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fails_over_between_replicas_on_one_postgres_database() {
    let mut r = pg_replicas().await;
    let client = builder(&r.a.url, &r.token)
        .endpoints([r.a.url.clone(), r.b.url.clone()])
        .build()
        .unwrap();
    fail_over(&mut r, &client).await;
    client.close().await;
}

/// Connected to A, a storm of acknowledged writes on B; A is killed (-9) in the middle. The
/// client moves to B and resumes with `since_revision`: it announces every revision of the
/// storm exactly once, in order, and ends at B's last.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_the_clients_replica_mid_storm_loses_or_reorders_no_change() {
    const WRITES: u64 = 300;
    let mut r = pg_replicas().await;
    let client = builder(&r.a.url, &r.token)
        .endpoints([r.a.url.clone(), r.b.url.clone()])
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let id = client.instance_id();
    assert!(r.admin_a.connected(id).await, "connected to A first");
    let start = r.revision;
    // Read as they come (the client's channel keeps a bounded backlog, like any subscriber).
    let mut changes = client.changes();
    let reader = tokio::spawn(async move {
        let mut seen = Vec::new();
        while seen.last() != Some(&(start + WRITES)) {
            let change = tokio::time::timeout(WAIT, changes.recv())
                .await
                .unwrap_or_else(|_| panic!("stuck after {:?}", seen.last()))
                .expect("no change dropped by the client's channel");
            seen.push(change.revision);
        }
        seen
    });
    let mut storm = Admin::connect(&r.b).await;
    // The flag starts enabled: odd writes turn it off, even ones on, so each is one revision.
    let writer = tokio::spawn(async move {
        for i in 1..=WRITES {
            storm.set(i % 2 == 0).await;
        }
    });
    eventually("the storm to be under way on the client", async || {
        client.revision() >= start + WRITES / 4
    })
    .await;
    r.a.kill();
    writer.await.expect("every write on B acknowledged");
    let last = r.admin_b.revision().await;
    assert_eq!(last, start + WRITES);
    let seen = reader.await.expect("the client's changes");
    let expected: Vec<u64> = (start + 1..=last).collect();
    assert_eq!(seen, expected, "every revision once, in order");
    assert!(r.admin_b.connected(id).await, "now on B");
    assert!(
        client.bool_value(FLAG, &Context::new("u"), false),
        "B's last write: on"
    );
    client.close().await;
}
