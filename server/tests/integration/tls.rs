//! TLS on the real binary with a CA and server certificate made by the test: gRPC (HTTP/2),
//! gRPC-web over HTTP/1.1 and the HTTP port (`/healthz`, `/metrics`) all verify against the CA;
//! plaintext clients are refused; bad certificate options stop the start with a clear error.

use crate::support::*;
use flagwire_proto::grpc::admin_service_client::AdminServiceClient;
use flagwire_proto::v1::*;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::process::Command;
use tonic::transport::{Certificate, Channel, ClientTlsConfig};

fn tls_args(certs: &crate::support::certs::TestCerts) -> Vec<String> {
    vec![
        "--tls-cert".into(),
        certs.cert_path.display().to_string(),
        "--tls-key".into(),
        certs.key_path.display().to_string(),
    ]
}

async fn tls_channel(
    addr: &str,
    ca_pem: &str,
    domain: &str,
) -> Result<Channel, tonic::transport::Error> {
    let tls = ClientTlsConfig::new()
        .ca_certificate(Certificate::from_pem(ca_pem))
        .domain_name(domain);
    Channel::from_shared(format!("https://{addr}"))
        .unwrap()
        .tls_config(tls)?
        .connect()
        .await
}

/// The admin CLI over TLS: it trusts the CA given with `--ca-file`, and without it says that
/// the server's certificate is not trusted.
#[test]
fn the_admin_cli_over_tls() {
    let dir = tempdir();
    let certs = crate::support::certs::make(dir.path());
    let args = tls_args(&certs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&dir.path().join("data"), &args);
    let ca = dir.path().join("ca.pem");
    std::fs::write(&ca, &certs.ca_pem).unwrap();
    let run = |extra: &[&str]| {
        Command::new(flagwire_bin())
            .args([
                "flags",
                "list",
                "--endpoint",
                &format!(
                    "https://localhost:{}",
                    server.grpc.rsplit(':').next().unwrap()
                ),
            ])
            .args(extra)
            .env("FLAGWIRE_TOKEN", ADMIN)
            .env_remove("FLAGWIRE_CA_FILE")
            .output()
            .unwrap()
    };
    let ok = run(&["--ca-file", ca.to_str().unwrap(), "--json"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    // Without --ca-file only the system's roots are trusted, which do not hold the test CA.
    let missing = run(&[]);
    assert_eq!(missing.status.code(), Some(4));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("--ca-file"));
    let other_dir = dir.path().join("other");
    std::fs::create_dir_all(&other_dir).unwrap();
    let other = crate::support::certs::make(&other_dir);
    let wrong = dir.path().join("wrong.pem");
    std::fs::write(&wrong, &other.ca_pem).unwrap();
    let refused = run(&["--ca-file", wrong.to_str().unwrap()]);
    assert_eq!(
        refused.status.code(),
        Some(4),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

#[tokio::test]
async fn grpc_grpc_web_and_http_over_tls() {
    let dir = tempdir();
    let certs = crate::support::certs::make(dir.path());
    let args = tls_args(&certs);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let server = Server::start(&dir.path().join("data"), &args);

    // gRPC over HTTP/2, by name and by address.
    for domain in ["localhost", "127.0.0.1"] {
        let channel = tls_channel(&server.grpc, &certs.ca_pem, domain)
            .await
            .unwrap();
        let mut admin = AdminServiceClient::with_interceptor(channel, Bearer(Some(ADMIN.into())));
        admin
            .list_environments(ListEnvironmentsRequest::default())
            .await
            .expect("an admin call over TLS");
    }

    // gRPC-web over HTTP/1.1 (what fetch-only runtimes send): a health check.
    let stream =
        crate::support::http::tls_connect(&server.grpc, "localhost", &certs.ca_pem, &[b"http/1.1"])
            .await
            .expect("TLS with ALPN http/1.1 on the gRPC port");
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    let frame = vec![0u8, 0, 0, 0, 0]; // an empty HealthCheckRequest
    let request = ::http::Request::post("/grpc.health.v1.Health/Check")
        .header(::http::header::HOST, &server.grpc)
        .header(::http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1")
        .body(http_body_util::Full::new(hyper::body::Bytes::from(frame)))
        .unwrap();
    let response = sender.send_request(request).await.unwrap();
    assert_eq!(response.status(), 200);
    let body = response.into_body().collect().await.unwrap().to_bytes();
    // Data frame: SERVING (status = 1), then the trailers frame with grpc-status 0.
    assert_eq!(&body[..7], &[0, 0, 0, 0, 2, 8, 1], "{body:?}");
    let trailers = String::from_utf8_lossy(&body[7..]);
    assert!(trailers.contains("grpc-status:0"), "{trailers}");

    // The HTTP port.
    let health = crate::support::http::get_tls(&server.http, "/healthz", &certs.ca_pem).await;
    assert_eq!((health.status, health.body.as_str()), (200, "ok\n"));
    let metrics = crate::support::http::get_tls(&server.http, "/metrics", &certs.ca_pem).await;
    assert_eq!(metrics.status, 200);
    let scrape = crate::support::scrape::Scrape::parse(&metrics.body);
    let ok = [
        ("method", "flagwire.v1.AdminService/ListEnvironments"),
        ("code", "OK"),
    ];
    assert_eq!(scrape.value("flagwire_grpc_requests", &ok), 2.0);
    let web = [("method", "grpc.health.v1.Health/Check"), ("code", "OK")];
    assert_eq!(scrape.value("flagwire_grpc_requests", &web), 1.0);

    // Plaintext to a TLS port, and TLS that does not trust the CA, both fail.
    let plain = Channel::from_shared(format!("http://{}", server.grpc))
        .unwrap()
        .connect()
        .await;
    if let Ok(channel) = plain {
        let mut admin = AdminServiceClient::new(channel);
        assert!(
            admin
                .list_environments(ListEnvironmentsRequest::default())
                .await
                .is_err()
        );
    }
    let other = crate::support::certs::make(&{
        let d = dir.path().join("other");
        std::fs::create_dir_all(&d).unwrap();
        d
    });
    assert!(
        tls_channel(&server.grpc, &other.ca_pem, "localhost")
            .await
            .is_err()
    );
}

#[test]
fn bad_tls_options_stop_the_start_with_a_clear_error() {
    let dir = tempdir();
    let certs = crate::support::certs::make(dir.path());
    let cert = certs.cert_path.display().to_string();
    let key = certs.key_path.display().to_string();
    let missing = dir.path().join("missing.pem").display().to_string();

    let err = failed_start(
        &dir.path().join("data"),
        &["--tls-cert", &cert, "--tls-key", &missing],
    );
    assert!(
        err.contains("read TLS key") && err.contains("missing.pem"),
        "{err}"
    );
    let err = failed_start(&dir.path().join("data"), &["--tls-cert", &cert]);
    assert!(err.contains("--tls-key"), "{err}");
    // The CA's certificate with the server's key: they do not belong together.
    let ca = certs.ca_path.display().to_string();
    let err = failed_start(
        &dir.path().join("data"),
        &["--tls-cert", &ca, "--tls-key", &key],
    );
    assert!(
        err.contains("the key does not fit the certificate"),
        "{err}"
    );
    let err = failed_start(
        &dir.path().join("data"),
        &["--tls-cert", &key, "--tls-key", &key],
    );
    assert!(err.contains("no CERTIFICATE"), "{err}");
}
