//! The Prometheus gates' credentials. A real Prometheus demanding basic auth (its web config,
//! a bcrypt hash) answers the server's client given the right password, and refuses it (401)
//! without one or with a wrong one; the password file is read again at every query. A bearer
//! token reaches a real Prometheus through an auth proxy (a few lines here, standing in for the
//! nginx or oauth2-proxy a deployment puts in front, which checks the header and forwards); a
//! rotated token is picked up from its file. `flagwire serve` refuses credentials it cannot use
//! before it listens, without printing them.

use crate::support::promserver::basic_auth::{PASSWORD, USER};
use crate::support::promserver::{Exporter, Prometheus};
use crate::support::*;
use flagwire_server::releases::prometheus::{self as client, PrometheusAuth, PrometheusOptions};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

const SERIES: &str = "app_memory_bytes";

fn client_for(url: &str, auth: PrometheusAuth) -> client::Prometheus {
    let options = PrometheusOptions {
        url: url.to_owned(),
        timeout: Duration::from_secs(10),
        auth,
    };
    client::Prometheus::new(&options).unwrap()
}

fn write(path: &Path, secret: &str) {
    std::fs::write(path, format!("{secret}\n")).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn basic_auth_passes_prometheus_and_its_password_file_is_read_at_every_query() {
    let exporter = Exporter::start().await;
    exporter.set(SERIES, 42.0);
    let prometheus = Prometheus::spawn_with_basic_auth(&exporter);
    prometheus.ready().await;
    prometheus.wait_for(SERIES, 42.0).await;
    let dir = tempdir();
    let password = dir.path().join("password");
    write(&password, PASSWORD);
    let basic = client_for(
        &prometheus.url,
        PrometheusAuth::Basic {
            user: USER.into(),
            password_file: password.clone(),
        },
    );
    assert_eq!(basic.query(SERIES).await, Ok(42.0));

    let anonymous = client_for(&prometheus.url, PrometheusAuth::None);
    let refused = anonymous.query(SERIES).await.unwrap_err();
    assert!(refused.starts_with("HTTP 401"), "{refused}");

    // A changed password is read at the next query: wrong, then right again.
    write(&password, "not-the-password");
    let refused = basic.query(SERIES).await.unwrap_err();
    assert!(refused.starts_with("HTTP 401"), "{refused}");
    write(&password, PASSWORD);
    assert_eq!(basic.query(SERIES).await, Ok(42.0));
    // A password file gone: the query fails naming the file (the gate then holds).
    std::fs::remove_file(&password).unwrap();
    let failed = basic.query(SERIES).await.unwrap_err();
    assert!(failed.contains("--prometheus-password-file"), "{failed}");
    assert!(failed.contains("cannot read it"), "{failed}");
}

/// An auth proxy in front of `upstream`: forwards requests whose `Authorization` is `Bearer`
/// and the current token, answers 401 to the others. Its URL.
async fn bearer_proxy(upstream: Arc<Prometheus>, token: Arc<Mutex<String>>) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let app = axum::Router::new().fallback(move |request: axum::extract::Request| {
        let (upstream, token) = (Arc::clone(&upstream), Arc::clone(&token));
        async move {
            let expected = format!("Bearer {}", token.lock().unwrap());
            let given = request.headers().get(::http::header::AUTHORIZATION);
            if given.and_then(|v| v.to_str().ok()) != Some(expected.as_str()) {
                return (
                    ::http::StatusCode::UNAUTHORIZED,
                    "unauthorized\n".to_owned(),
                );
            }
            let path = request.uri().path_and_query().unwrap().as_str();
            let (status, body) = upstream.get(path).await.expect("Prometheus answers");
            (::http::StatusCode::from_u16(status).unwrap(), body)
        }
    });
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    format!("http://{addr}")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bearer_token_reaches_prometheus_through_an_auth_proxy_and_rotates_with_its_file() {
    let exporter = Exporter::start().await;
    exporter.set(SERIES, 7.0);
    let prometheus = Prometheus::start(&exporter).await;
    prometheus.wait_for(SERIES, 7.0).await;
    let current = Arc::new(Mutex::new("token-1".to_owned()));
    let proxy = bearer_proxy(Arc::new(prometheus), Arc::clone(&current)).await;
    let dir = tempdir();
    let file = dir.path().join("token");
    write(&file, "token-1");
    let bearer = client_for(&proxy, PrometheusAuth::BearerFile(file.clone()));
    assert_eq!(bearer.query(SERIES).await, Ok(7.0));
    let anonymous = client_for(&proxy, PrometheusAuth::None);
    let refused = anonymous.query(SERIES).await.unwrap_err();
    assert!(refused.starts_with("HTTP 401"), "{refused}");

    // The token rotates: the proxy wants the new one, the old file is refused, the new file
    // passes at the next query, without a new client.
    *current.lock().unwrap() = "token-2".to_owned();
    let refused = bearer.query(SERIES).await.unwrap_err();
    assert!(refused.starts_with("HTTP 401"), "{refused}");
    write(&file, "token-2");
    assert_eq!(bearer.query(SERIES).await, Ok(7.0));
}

#[test]
fn serve_refuses_prometheus_credentials_it_cannot_use_without_printing_them() {
    let dir = tempdir();
    let password = dir.path().join("password");
    write(&password, PASSWORD);
    let password = password.display().to_string();
    let url = "http://127.0.0.1:9";
    let cases: &[(&[&str], &[&str])] = &[
        (
            &["--prometheus-url", "http://flagwire:hunter2@127.0.0.1:9"],
            &["--prometheus-url must not carry credentials"],
        ),
        (
            &["--prometheus-url", "flagwire:hunter2@127.0.0.1:9"],
            &["--prometheus-url must not carry credentials"],
        ),
        (
            &[
                "--prometheus-url",
                url,
                "--prometheus-basic-auth-user",
                USER,
                "--prometheus-password-file",
                "/nonexistent/password",
            ],
            &["--prometheus-password-file /nonexistent/password: cannot read it"],
        ),
        (
            &[
                "--prometheus-url",
                url,
                "--prometheus-basic-auth-user",
                USER,
            ],
            &["--prometheus-password-file"],
        ),
        (
            &[
                "--prometheus-url",
                url,
                "--prometheus-password-file",
                &password,
            ],
            &["--prometheus-basic-auth-user"],
        ),
        (
            &["--prometheus-bearer-token-file", &password],
            &["--prometheus-url"],
        ),
        (
            &[
                "--prometheus-url",
                url,
                "--prometheus-bearer-token-file",
                &password,
                "--prometheus-basic-auth-user",
                USER,
                "--prometheus-password-file",
                &password,
            ],
            &[
                "--prometheus-bearer-token-file",
                "--prometheus-basic-auth-user",
            ],
        ),
        (
            &[
                "--prometheus-url",
                url,
                "--prometheus-basic-auth-user",
                "a:b",
                "--prometheus-password-file",
                &password,
            ],
            &["must be non-empty and without ':'"],
        ),
    ];
    for (args, expected) in cases {
        let stderr = failed_start(dir.path(), args);
        for text in *expected {
            assert!(stderr.contains(text), "{args:?}: {stderr}");
        }
        assert!(!stderr.contains("hunter2"), "{args:?}: {stderr}");
        assert!(!stderr.contains(PASSWORD), "{args:?}: {stderr}");
    }
}
