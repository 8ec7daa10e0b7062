//! Serving both ports over TLS (rustls with the ring provider) when given a certificate and key.
//!
//! The server does the handshakes itself and hands finished TLS streams to tonic and axum,
//! rather than using tonic's own TLS option, for two reasons: the gRPC port must offer ALPN
//! `http/1.1` next to `h2` (gRPC-web from `fetch` may arrive over HTTP/1.1, and rustls refuses
//! a client whose ALPN list shares nothing with the server's), and one acceptor serves the HTTP
//! port too. Each handshake runs in its own task with a deadline, so a client that connects and
//! says nothing holds up nobody.

use anyhow::Context;
use rustls::ServerConfig;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};
use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::server::TlsStream;

/// How long a client has to finish the TLS handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshaken connections waiting for the server to take them.
const BACKLOG: usize = 64;

/// The certificate chain and key both ports present, with the ALPN each port offers.
#[derive(Clone)]
pub struct TlsConfig {
    grpc: Arc<ServerConfig>,
    http: Arc<ServerConfig>,
}

impl std::fmt::Debug for TlsConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TlsConfig").finish_non_exhaustive()
    }
}

impl TlsConfig {
    /// Reads a PEM certificate chain (leaf first) and a PEM private key (PKCS#8, PKCS#1 or
    /// SEC1) from files; errors name the file and what is wrong with it.
    pub fn from_pem_files(cert: &Path, key: &Path) -> anyhow::Result<Self> {
        let cert_pem = std::fs::read(cert)
            .with_context(|| format!("read TLS certificate {}", cert.display()))?;
        let key_pem =
            std::fs::read(key).with_context(|| format!("read TLS key {}", key.display()))?;
        Self::from_pem(&cert_pem, &key_pem).with_context(|| {
            format!(
                "TLS certificate {} with key {}",
                cert.display(),
                key.display()
            )
        })
    }

    /// Like [`TlsConfig::from_pem_files`], from PEM text.
    pub fn from_pem(cert_pem: &[u8], key_pem: &[u8]) -> anyhow::Result<Self> {
        let certs = CertificateDer::pem_slice_iter(cert_pem)
            .collect::<Result<Vec<_>, _>>()
            .context("the certificate file is not PEM")?;
        anyhow::ensure!(
            !certs.is_empty(),
            "the certificate file holds no CERTIFICATE block"
        );
        let key = PrivateKeyDer::from_pem_slice(key_pem)
            .context("the key file holds no PEM private key")?;
        let config = |alpn: &[&[u8]]| -> anyhow::Result<Arc<ServerConfig>> {
            let provider = Arc::new(rustls::crypto::ring::default_provider());
            let mut config = ServerConfig::builder_with_provider(provider)
                .with_safe_default_protocol_versions()?
                .with_no_client_auth()
                .with_single_cert(certs.clone(), key.clone_key())
                .context("the key does not fit the certificate")?;
            config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
            Ok(Arc::new(config))
        };
        Ok(Self {
            grpc: config(&[b"h2", b"http/1.1"])?,
            http: config(&[b"http/1.1"])?,
        })
    }

    /// Handshaken connections to the gRPC port.
    pub fn accept_grpc(&self, listener: TcpListener) -> Accepted {
        accept(listener, Arc::clone(&self.grpc))
    }

    /// Handshaken connections to the HTTP port.
    pub fn accept_http(&self, listener: TcpListener) -> Accepted {
        accept(listener, Arc::clone(&self.http))
    }
}

/// Connections that finished their handshake, in the order they did. Usable as tonic's
/// incoming stream ([`Accepted::into_stream`]) or as an axum listener.
pub struct Accepted {
    rx: mpsc::Receiver<(TlsStream<TcpStream>, SocketAddr)>,
    local: SocketAddr,
}

impl Accepted {
    /// The stream tonic's `serve_with_incoming*` takes.
    pub fn into_stream(
        self,
    ) -> impl tokio_stream::Stream<Item = std::io::Result<TlsStream<TcpStream>>> {
        use tokio_stream::StreamExt;
        tokio_stream::wrappers::ReceiverStream::new(self.rx).map(|(stream, _)| Ok(stream))
    }
}

impl axum::serve::Listener for Accepted {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(accepted) => accepted,
            // The accept loop only stops once this side is gone, so this is not reached; wait
            // for shutdown rather than spin.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<SocketAddr> {
        Ok(self.local)
    }
}

fn accept(listener: TcpListener, config: Arc<ServerConfig>) -> Accepted {
    let local = listener
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let (tx, rx) = mpsc::channel(BACKLOG);
    let acceptor = TlsAcceptor::from(config);
    tokio::spawn(async move {
        loop {
            let accepted = tokio::select! {
                // The server stopped taking connections (shutdown): stop accepting.
                () = tx.closed() => return,
                accepted = listener.accept() => accepted,
            };
            let (tcp, peer) = match accepted {
                Ok(a) => a,
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            };
            // A change pushed to watchers must not wait for an ACK (as for plain TCP).
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
            let (acceptor, tx) = (acceptor.clone(), tx.clone());
            tokio::spawn(async move {
                match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                    Ok(Ok(stream)) => {
                        let _ = tx.send((stream, peer)).await;
                    }
                    Ok(Err(e)) => tracing::debug!(%peer, error = %e, "TLS handshake failed"),
                    Err(_) => tracing::debug!(%peer, "TLS handshake timed out"),
                }
            });
        }
    });
    Accepted { rx, local }
}
