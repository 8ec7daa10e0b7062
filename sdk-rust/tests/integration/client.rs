//! The SDK against a real server on loopback: readiness, live changes, outages and resume,
//! refused tokens, bootstrap files and offline mode.

use crate::support::*;
use flagwire::{Client, Context, Error, Reason, State};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

async fn state_becomes(client: &Client, want: State) {
    let mut states = client.states();
    tokio::time::timeout(WAIT, states.wait_for(|s| *s == want))
        .await
        .unwrap_or_else(|_| panic!("state never became {want:?}, is {:?}", client.state()))
        .unwrap();
}

async fn setup() -> (TestServer, Admin, String) {
    let server = TestServer::start().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("new-checkout", "production").await;
    let token = admin.sdk_token("svc", "production").await;
    (server, admin, token)
}

#[tokio::test]
async fn ready_then_changes_arrive_and_apply() {
    let (server, mut admin, token) = setup().await;
    let client = Client::builder(server.url(), &token).build().unwrap();
    let ctx = Context::new("user-1").with("country", "NL");
    let before = client.bool_details("new-checkout", &ctx, true);
    assert_eq!(before.error_code_name(), Some("PROVIDER_NOT_READY"));
    client.wait_ready(WAIT).await.unwrap();
    assert_eq!(client.state(), State::Ready);
    let off = client.bool_details("new-checkout", &ctx, true);
    assert_eq!(
        (off.value, off.reason, off.variant.as_deref()),
        (false, Reason::Disabled, Some("off"))
    );

    let mut changes = client.changes();
    admin.set("new-checkout", "production", true).await;
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.flags, ["new-checkout"]);
    assert_eq!(change.revision, client.revision());
    let on = client.bool_details("new-checkout", &ctx, false);
    assert_eq!(
        (on.value, on.reason, on.flag_version),
        (true, Reason::Static, 2)
    );
    assert!(client.bool_value("new-checkout", &ctx, false));

    // Wrong type and unknown flag: the caller's default, never a panic.
    assert_eq!(client.string_value("new-checkout", &ctx, "dflt"), "dflt");
    assert_eq!(
        client
            .string_details("new-checkout", &ctx, "d")
            .error_code_name(),
        Some("TYPE_MISMATCH")
    );
    assert_eq!(
        client.int_details("nope", &ctx, 7).error_code_name(),
        Some("FLAG_NOT_FOUND")
    );
    assert_eq!(client.int_value("nope", &ctx, 7), 7);
    client.close().await;
}

#[tokio::test]
async fn serves_last_values_through_an_outage_then_resumes_in_order() {
    let (mut server, mut admin, token) = setup().await;
    let client = Client::builder(server.url(), &token)
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .heartbeat_timeout(Duration::from_secs(2))
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let mut changes = client.changes();
    admin.set("new-checkout", "production", true).await;
    let ctx = Context::new("u");
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();

    server.stop().await;
    state_becomes(&client, State::Stale).await;
    assert!(
        client.bool_value("new-checkout", &ctx, false),
        "last good value while down"
    );
    let held = client.revision();

    server.restart().await;
    let mut admin = server.admin().await;
    for i in 0..5 {
        admin.set("new-checkout", "production", i % 2 == 0).await;
    }
    let target = admin.revision("production").await;
    let mut seen = Vec::new();
    while seen.last() != Some(&target) {
        let change = tokio::time::timeout(WAIT, changes.recv())
            .await
            .unwrap()
            .unwrap();
        seen.push(change.revision);
    }
    let expected: Vec<u64> = (held + 1..=target).collect();
    assert_eq!(
        seen, expected,
        "every change after the outage, once, in order"
    );
    assert_eq!(client.state(), State::Ready);
    assert!(client.bool_value("new-checkout", &ctx, false));
    client.close().await;
}

/// A TCP forwarder that counts the connections the SDK opens.
async fn counting_proxy(
    target: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let count = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = std::sync::Arc::clone(&count);
    tokio::spawn(async move {
        while let Ok((mut inbound, _)) = listener.accept().await {
            counter.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                if let Ok(mut outbound) = tokio::net::TcpStream::connect(target).await {
                    let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                }
            });
        }
    });
    (format!("http://{addr}"), count)
}

#[tokio::test]
async fn a_refused_token_surfaces_error_without_a_busy_loop() {
    let (server, _admin, _token) = setup().await;
    let (url, connections) = counting_proxy(server.addr).await;
    let client = Client::builder(url, "fw_wrong")
        .backoff(Duration::from_millis(10), Duration::from_millis(500))
        .build()
        .unwrap();
    match client.wait_ready(WAIT).await {
        Err(Error::Unauthorized(message)) => assert!(message.contains("token"), "{message}"),
        other => panic!("expected Unauthorized, got {other:?}"),
    }
    assert!(matches!(client.state(), State::Error(_)));
    tokio::time::sleep(Duration::from_millis(1600)).await;
    let attempts = connections.load(std::sync::atomic::Ordering::SeqCst);
    // With a 500 ms wait after each refusal: the first attempt plus at most four more.
    assert!(
        (2..=5).contains(&attempts),
        "{attempts} connections in ~1.6 s"
    );
    client.close().await;
}

#[tokio::test]
async fn bootstrap_file_serves_while_the_server_is_unreachable_and_offline() {
    let (mut server, mut admin, token) = setup().await;
    admin.set("new-checkout", "production", true).await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("flags.bin");
    let client = Client::builder(server.url(), &token)
        .bootstrap_file(&file)
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.unwrap();
    let mut changes = client.changes();
    admin.set("new-checkout", "production", false).await;
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();
    client.close().await;
    let url = server.url();
    server.stop().await;

    let ctx = Context::new("u");
    let cold = Client::builder(url, &token)
        .bootstrap_file(&file)
        .build()
        .unwrap();
    assert_eq!(cold.state(), State::Stale);
    let r = cold.bool_details("new-checkout", &ctx, true);
    assert_eq!(
        (r.value, r.reason, r.flag_version),
        (false, Reason::Disabled, 3)
    );
    cold.close().await;

    let offline = Client::builder("http://unused.invalid", "-")
        .bootstrap_file(&file)
        .offline(true)
        .build()
        .unwrap();
    assert_eq!(offline.state(), State::Ready);
    offline.wait_ready(Duration::from_millis(10)).await.unwrap();
    assert!(!offline.bool_value("new-checkout", &ctx, true));
    let missing = Client::builder("http://x", "-")
        .bootstrap_file(dir.path().join("none"))
        .offline(true)
        .build();
    assert!(matches!(missing, Err(Error::Config(_))));
}

#[tokio::test]
async fn remote_evaluator_asks_the_server() {
    let (server, mut admin, token) = setup().await;
    admin.set("new-checkout", "production", true).await;
    let remote = flagwire::remote::RemoteEvaluator::new(&server.url(), &token).unwrap();
    let ctx = Context::new("user-9");
    let r = remote
        .evaluate("new-checkout", &ctx, serde_json::Value::Bool(false))
        .await;
    assert_eq!(
        (r.value, r.reason, r.flag_version),
        (serde_json::Value::Bool(true), Reason::Static, 2)
    );
    let all = remote.evaluate_all(&ctx).await;
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].0, "new-checkout");
    let missing = remote.evaluate("nope", &ctx, "d".into()).await;
    assert_eq!(
        (missing.value.clone(), missing.error_code_name()),
        ("d".into(), Some("FLAG_NOT_FOUND"))
    );
    let wrong = flagwire::remote::RemoteEvaluator::new(&server.url(), "fw_bad").unwrap();
    let refused = wrong.evaluate("new-checkout", &ctx, 1.into()).await;
    assert_eq!(
        (refused.value.clone(), refused.error_code_name()),
        (1.into(), Some("GENERAL"))
    );
}

/// A TCP forwarder that can be frozen: bytes stop flowing but no connection closes, the way a
/// dead network path looks to both ends.
async fn freezable_proxy(
    target: std::net::SocketAddr,
) -> (String, std::sync::Arc<std::sync::atomic::AtomicBool>) {
    use std::sync::atomic::{AtomicBool, Ordering};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let frozen = std::sync::Arc::new(AtomicBool::new(false));
    let flag = std::sync::Arc::clone(&frozen);
    tokio::spawn(async move {
        while let Ok((inbound, _)) = listener.accept().await {
            let Ok(outbound) = tokio::net::TcpStream::connect(target).await else {
                continue;
            };
            let (ri, wi) = inbound.into_split();
            let (ro, wo) = outbound.into_split();
            for (mut from, mut to, frozen) in [
                (
                    Box::new(ri) as Box<dyn tokio::io::AsyncRead + Unpin + Send>,
                    Box::new(wo) as Box<dyn tokio::io::AsyncWrite + Unpin + Send>,
                    std::sync::Arc::clone(&flag),
                ),
                (Box::new(ro), Box::new(wi), std::sync::Arc::clone(&flag)),
            ] {
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 16 * 1024];
                    loop {
                        let n = match from.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => n,
                        };
                        while frozen.load(Ordering::SeqCst) {
                            tokio::time::sleep(Duration::from_millis(10)).await;
                        }
                        if to.write_all(&buf[..n]).await.is_err() {
                            return;
                        }
                    }
                });
            }
        }
    });
    (format!("http://{addr}"), frozen)
}

#[tokio::test]
async fn a_silent_connection_is_declared_dead_by_the_heartbeat_timeout() {
    let (server, mut admin, token) = setup().await;
    let (url, frozen) = freezable_proxy(server.addr).await;
    // The test server sends a heartbeat every 500 ms when idle.
    let client = Client::builder(url, &token)
        .heartbeat_timeout(Duration::from_millis(1500))
        .backoff(Duration::from_millis(50), Duration::from_millis(200))
        .build()
        .unwrap();
    client.ready().await.unwrap();
    frozen.store(true, std::sync::atomic::Ordering::SeqCst);
    state_becomes(&client, State::Stale).await;
    assert!(
        !client.bool_value("new-checkout", &Context::new("u"), true),
        "still the last good copy"
    );
    let mut changes = client.changes();
    admin.set("new-checkout", "production", true).await;
    frozen.store(false, std::sync::atomic::Ordering::SeqCst);
    let change = tokio::time::timeout(WAIT, changes.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(change.revision, 2);
    state_becomes(&client, State::Ready).await;
    assert!(client.bool_value("new-checkout", &Context::new("u"), false));
    client.close().await;
}
