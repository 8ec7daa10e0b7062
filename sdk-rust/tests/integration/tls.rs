//! The SDK over TLS: a server with a certificate from a CA made by the test, trusted through
//! `tls_ca_pem`; the change stream, reports and remote evaluation all go over it, and a client
//! that does not trust the CA never becomes ready.

use crate::support::*;
use flagwire::{Client, Context, State};
use std::time::Duration;

const WAIT: Duration = Duration::from_secs(10);

#[tokio::test]
async fn watch_and_changes_over_tls_with_the_ca() {
    let server = TestServer::start_tls().await;
    let mut admin = server.admin().await;
    admin.env("production").await;
    admin.bool_flag("new-checkout", "production").await;
    let token = admin.sdk_token("svc", "production").await;
    assert!(server.url().starts_with("https://"));

    let client = Client::builder(server.url(), &token)
        .tls_ca_pem(server.ca_pem())
        .build()
        .unwrap();
    client.wait_ready(WAIT).await.expect("ready over TLS");
    let ctx = Context::new("user-1");
    assert!(!client.bool_value("new-checkout", &ctx, true));
    let mut changes = client.changes();
    admin.set("new-checkout", "production", true).await;
    tokio::time::timeout(WAIT, changes.recv())
        .await
        .expect("a change pushed over TLS")
        .unwrap();
    assert!(client.bool_value("new-checkout", &ctx, false));
    client.close().await;

    // Without the CA the server's certificate is not trusted: never ready.
    let untrusted = Client::builder(server.url(), &token)
        .initial_ready_timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    assert!(untrusted.wait_ready(Duration::from_secs(2)).await.is_err());
    assert_ne!(untrusted.state(), State::Ready);
    untrusted.close().await;
}
