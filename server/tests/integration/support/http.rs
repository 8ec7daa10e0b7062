//! A minimal HTTP/1.1 GET for the plain-HTTP port, over TCP or over TLS trusting a test CA.

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::sync::Arc;

/// A response: status, `Content-Type`, body.
pub struct Response {
    /// Status code.
    pub status: u16,
    /// The `Content-Type` header (empty if none).
    pub content_type: String,
    /// The body as text.
    pub body: String,
}

async fn send<IO>(io: IO, addr: &str, path: &str) -> Response
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(io))
        .await
        .expect("HTTP handshake");
    tokio::spawn(conn);
    let request = http::Request::get(path)
        .header(http::header::HOST, addr)
        .body(http_body_util::Empty::<hyper::body::Bytes>::new())
        .unwrap();
    let response = sender.send_request(request).await.expect("HTTP request");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get(http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap().to_owned())
        .unwrap_or_default();
    let body = response.into_body().collect().await.unwrap().to_bytes();
    Response {
        status,
        content_type,
        body: String::from_utf8(body.to_vec()).unwrap(),
    }
}

/// `GET http://addr/path`.
pub async fn get(addr: &str, path: &str) -> Response {
    let tcp = tokio::net::TcpStream::connect(addr).await.expect("connect");
    send(tcp, addr, path).await
}

/// `GET http://addr/path`, or `None` when nothing accepts the connection (a server starting).
pub async fn try_get(addr: &str, path: &str) -> Option<Response> {
    let tcp = tokio::net::TcpStream::connect(addr).await.ok()?;
    Some(send(tcp, addr, path).await)
}

/// A TLS client config trusting only `ca_pem`, offering `alpn`.
pub fn client_config(ca_pem: &str, alpn: &[&[u8]]) -> Arc<rustls::ClientConfig> {
    use rustls_pki_types::{CertificateDer, pem::PemObject};
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Arc::new(config)
}

/// A TLS connection to `addr` (`127.0.0.1:port`) verified against `ca_pem` as `server_name`.
pub async fn tls_connect(
    addr: &str,
    server_name: &str,
    ca_pem: &str,
    alpn: &[&[u8]],
) -> std::io::Result<tokio_rustls::client::TlsStream<tokio::net::TcpStream>> {
    let connector = tokio_rustls::TlsConnector::from(client_config(ca_pem, alpn));
    let tcp = tokio::net::TcpStream::connect(addr).await?;
    let name = rustls_pki_types::ServerName::try_from(server_name.to_owned()).unwrap();
    connector.connect(name, tcp).await
}

/// `GET https://addr/path`, trusting only `ca_pem`.
pub async fn get_tls(addr: &str, path: &str, ca_pem: &str) -> Response {
    let tls = tls_connect(addr, "127.0.0.1", ca_pem, &[b"http/1.1"])
        .await
        .expect("TLS connect");
    send(tls, addr, path).await
}
