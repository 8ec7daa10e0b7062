//! The PostgreSQL store on a real PostgreSQL 15: migrations applied once and a newer schema
//! refused, and an outage of the database: reads keep serving from memory, writes fail with
//! `UNAVAILABLE`, health says so, and everything resumes when the database is back.

use crate::support::eventually::DEADLINE;
use crate::support::postgres::{Cluster, shared};
use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use flagwire_server::store::postgres::schema::latest;
use tonic::Code;
use tonic_health::pb::{HealthCheckRequest, health_check_response::ServingStatus, health_client};

fn flag_request(key: &str) -> CreateFlagRequest {
    CreateFlagRequest {
        flag: Some(bool_flag(key, &["production"])),
        reason: String::new(),
    }
}

async fn health(server: &Server) -> i32 {
    let mut client = health_client::HealthClient::new(server.channel().await);
    client
        .check(HealthCheckRequest {
            service: "flagwire.v1.AdminService".into(),
        })
        .await
        .unwrap()
        .into_inner()
        .status
}

#[tokio::test]
async fn migrations_apply_once_even_when_replicas_start_together() {
    let cluster = shared();
    let url = cluster.create_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let (a, b) = (tempdir(), tempdir());
    // Both start against the empty database at the same moment: one migrates, the other
    // waits for its lock and finds the schema current.
    let (first, second) = std::thread::scope(|s| {
        let first = s.spawn(|| Server::start(a.path(), &["--store", &url]));
        let second = s.spawn(|| Server::start(b.path(), &["--store", &url]));
        (first.join().unwrap(), second.join().unwrap())
    });
    let all: Vec<String> = (1..=latest()).map(|v| v.to_string()).collect();
    assert_eq!(
        cluster.sql(
            &db,
            "SELECT string_agg(version::text, ',' ORDER BY version) FROM schema_version"
        ),
        all.join(","),
        "each migration applied once"
    );
    let mut admin = first.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("shared", &["production"])).await;
    assert_eq!(
        cluster.sql(&db, "SELECT count(*) FROM kv WHERE key = 'f/shared'::bytea"),
        "1"
    );
    drop((first, second));
}

#[tokio::test]
async fn a_newer_schema_is_refused_with_a_clear_message() {
    let cluster = shared();
    let url = cluster.create_db();
    let db = url.rsplit('/').next().unwrap().to_owned();
    let dir = tempdir();
    drop(Server::start(dir.path(), &["--store", &url]));
    cluster.sql(&db, "INSERT INTO schema_version (version) VALUES (99)");
    let stderr = failed_start(dir.path(), &["--store", &url]);
    assert!(
        stderr.contains("schema is at version 99")
            && stderr.contains(&format!("(version {})", latest())),
        "{stderr}"
    );
    // Nothing was changed by the refused start.
    assert_eq!(
        cluster.sql(&db, "SELECT max(version) FROM schema_version"),
        "99"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn database_outage_keeps_reads_refuses_writes_and_recovers() {
    let mut cluster = Cluster::start();
    let url = cluster.create_db();
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--store", &url]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("before", &["production"])).await;
    let sdk = create_token(&mut admin, "sdk", Role::Sdk, "production").await;
    let mut flags = server.flags_as(Some(&sdk)).await;
    let mut stream = watch(&mut flags, "production", 0).await;
    let Event::Snapshot(snapshot) = next(&mut stream).await else {
        panic!("snapshot first")
    };
    assert_eq!(health(&server).await, ServingStatus::Serving as i32);
    assert_eq!(http::get(&server.http, "/healthz").await.status, 200);

    cluster.stop();

    let refused = admin.create_flag(flag_request("during")).await;
    let message = code(refused, Code::Unavailable);
    assert!(message.contains("unavailable"), "{message}");
    eventually(
        DEADLINE,
        "/healthz to report the database down",
        async || (http::get(&server.http, "/healthz").await.status == 503).then_some(()),
    )
    .await;
    eventually(DEADLINE, "gRPC health NOT_SERVING", async || {
        (health(&server).await == ServingStatus::NotServing as i32).then_some(())
    })
    .await;
    // Reads are served from memory: evaluation, a fresh Watch snapshot, the flag itself.
    let result = flags
        .evaluate(EvaluateRequest {
            environment: String::new(),
            flag_key: "before".into(),
            context: None,
            expected_type: ValueType::Boolean as i32,
        })
        .await
        .unwrap()
        .into_inner()
        .result
        .unwrap();
    assert_eq!(result.variant, "off");
    let mut during = watch(&mut flags, "production", 0).await;
    let Event::Snapshot(again) = next(&mut during).await else {
        panic!("snapshot during the outage")
    };
    assert_eq!(again.revision, snapshot.revision);
    assert!(again.flags.iter().any(|f| f.key == "before"));
    // The refused write left nothing behind in memory.
    assert!(!again.flags.iter().any(|f| f.key == "during"));

    cluster.restart();

    let created = eventually(DEADLINE, "writes to succeed again", async || {
        admin.create_flag(flag_request("after")).await.ok()
    })
    .await;
    assert_eq!(created.into_inner().flag.unwrap().key, "after");
    // The open stream never broke and gets the change, with the next revision.
    let change = loop {
        if let Event::Change(c) = next(&mut stream).await {
            break c;
        }
    };
    assert_eq!(change.revision, snapshot.revision + 1);
    eventually(DEADLINE, "/healthz to recover", async || {
        (http::get(&server.http, "/healthz").await.status == 200).then_some(())
    })
    .await;
    eventually(DEADLINE, "gRPC health SERVING", async || {
        (health(&server).await == ServingStatus::Serving as i32).then_some(())
    })
    .await;
    // The refused flag was never stored; the one after was, once.
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(
        cluster.sql(
            db,
            "SELECT count(*) FROM kv WHERE key IN ('f/during'::bytea, 'f/after'::bytea)"
        ),
        "1"
    );
}

/// The fencing of leader-only writes, on the store itself: the token of the leadership this
/// store holds opens a write; any other token (a deposed leader's) is refused before anything
/// is read or written, and the refusal is `FAILED_PRECONDITION` on the wire.
#[tokio::test]
async fn a_stale_leader_token_is_refused_under_the_writer_lock() {
    use flagwire_server::store::{Batch, Store, StoreError, postgres::PgStore};
    let url = shared().create_db();
    let store = PgStore::open(&url).unwrap();
    let mut leadership = store.leadership().expect("a shared store elects a leader");
    let token = tokio::time::timeout(DEADLINE, leadership.wait_for(Option::is_some))
        .await
        .expect("the only replica leads")
        .unwrap()
        .unwrap();
    let db = url.rsplit('/').next().unwrap();
    assert_eq!(
        shared().sql(db, "SELECT epoch FROM leader"),
        token.to_string()
    );
    let mut batch = Batch::default();
    batch.put(b"x/fenced".to_vec(), b"ok".to_vec());
    let write = std::sync::Arc::clone(&store).begin(0, Some(token)).unwrap();
    write.commit(batch).unwrap();
    let stale = std::sync::Arc::clone(&store).begin(0, Some(token - 1));
    let err = stale.err().expect("a stale token is refused");
    assert!(
        matches!(err, StoreError::Fenced(t) if t == token - 1),
        "{err}"
    );
    let status = tonic::Status::from(flagwire_server::error::Error::from(err));
    assert_eq!(status.code(), Code::FailedPrecondition);
    assert_eq!(store.get(b"x/fenced").unwrap(), Some(b"ok".to_vec()));
}
