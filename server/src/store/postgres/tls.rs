//! TLS to PostgreSQL, with libpq's `sslmode` meanings, so that a URL copied from a managed
//! database's console means to Flagwire what it means to `psql`:
//!
//! | `sslmode`             | TLS                          | the server's certificate                      |
//! |-----------------------|------------------------------|-----------------------------------------------|
//! | `disable`             | never                        | -                                             |
//! | `allow`, `prefer` (default) | when the server offers it | not verified (encryption without identity) |
//! | `require`             | always                       | not verified                                  |
//! | `verify-ca`           | always                       | its chain, against `sslrootcert`              |
//! | `verify-full`         | always                       | its chain, and that it names the URL's host   |
//!
//! `sslrootcert=PATH` names a PEM file of CA certificates; without it (or with libpq's
//! `sslrootcert=system`) the `verify-*` modes trust the system's roots, where libpq would read
//! `~/.postgresql/root.crt`: a server process has no meaningful home directory.
//! tokio-postgres knows only `disable`/`prefer`/`require` and no `sslrootcert`, so [`parse`]
//! takes both out of the URL, hands tokio-postgres the rest, and builds the rustls connector
//! (tokio-postgres-rustls) that does what the mode says. Client certificates (`sslcert`,
//! `sslkey`) are refused by name rather than ignored.

use std::sync::Arc;

use percent_encoding::percent_decode_str;
use rustls::client::WebPkiServerVerifier;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{
    CertificateError, ClientConfig, DigitallySignedStruct, Error as TlsError, RootCertStore,
    SignatureScheme,
};
use tokio_postgres::config::SslMode;
use tokio_postgres_rustls::MakeRustlsConnect;

/// libpq's `sslmode` values.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// No TLS.
    Disable,
    /// TLS when the server offers it, certificate not verified (`allow` and `prefer`).
    Prefer,
    /// TLS always, certificate not verified.
    Require,
    /// TLS always, the certificate's chain verified.
    VerifyCa,
    /// TLS always, the chain and the host name verified.
    VerifyFull,
}

impl Mode {
    fn parse(value: &str) -> Result<Mode, String> {
        Ok(match value {
            "disable" => Mode::Disable,
            "allow" | "prefer" => Mode::Prefer,
            "require" => Mode::Require,
            "verify-ca" => Mode::VerifyCa,
            "verify-full" => Mode::VerifyFull,
            other => {
                return Err(format!(
                    "sslmode={other:?}: expected disable, allow, prefer, require, verify-ca or \
                     verify-full"
                ));
            }
        })
    }
}

/// A `--store` URL split into what tokio-postgres reads and what this module does.
#[derive(Debug, PartialEq, Eq)]
pub struct Split {
    /// The URL without `sslmode` and `sslrootcert`.
    pub url: String,
    /// `sslmode`, `prefer` when absent (libpq's default).
    pub mode: Mode,
    /// `sslrootcert`, decoded; `None` when absent or `system`.
    pub root_cert: Option<String>,
}

/// Takes `sslmode` and `sslrootcert` out of `url`'s query; the other parameters stay as written.
pub fn split(url: &str) -> Result<Split, String> {
    let (base, query) = url.split_once('?').unwrap_or((url, ""));
    let mut kept = Vec::new();
    let mut mode = Mode::Prefer;
    let mut root_cert = None;
    for pair in query.split('&').filter(|p| !p.is_empty()) {
        let (key, raw) = pair.split_once('=').unwrap_or((pair, ""));
        let value = percent_decode_str(raw)
            .decode_utf8()
            .map_err(|e| format!("{key}: {e}"))?;
        match key {
            "sslmode" => mode = Mode::parse(&value)?,
            "sslrootcert" if value == "system" => root_cert = None,
            "sslrootcert" => root_cert = Some(value.into_owned()),
            "sslcert" | "sslkey" | "sslpassword" => {
                return Err(format!(
                    "{key}: client certificates are not supported (authenticate with a \
                     password or trust)"
                ));
            }
            _ => kept.push(pair),
        }
    }
    let url = if kept.is_empty() {
        base.to_owned()
    } else {
        format!("{base}?{}", kept.join("&"))
    };
    Ok(Split {
        url,
        mode,
        root_cert,
    })
}

/// `url` with its password, if any, replaced by `***`, for messages and logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    match rest[..authority_end].rsplit_once('@') {
        Some((userinfo, host)) if userinfo.contains(':') => {
            let user = userinfo.split(':').next().unwrap_or_default();
            format!("{scheme}://{user}:***@{host}{}", &rest[authority_end..])
        }
        _ => url.to_owned(),
    }
}

/// The tokio-postgres configuration and the TLS connector for a `--store` URL.
pub fn connect_config(url: &str) -> Result<(tokio_postgres::Config, MakeRustlsConnect), String> {
    let split = split(url)?;
    let mut config: tokio_postgres::Config = split.url.parse().map_err(|e| format!("{e}"))?;
    config.ssl_mode(match split.mode {
        Mode::Disable => SslMode::Disable,
        Mode::Prefer => SslMode::Prefer,
        Mode::Require | Mode::VerifyCa | Mode::VerifyFull => SslMode::Require,
    });
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let verifier: Arc<dyn ServerCertVerifier> = match split.mode {
        Mode::Disable | Mode::Prefer | Mode::Require => Arc::new(Unverified(provider.clone())),
        Mode::VerifyCa | Mode::VerifyFull => {
            let roots = roots(split.root_cert.as_deref())?;
            let webpki =
                WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider.clone())
                    .build()
                    .map_err(|e| format!("sslrootcert: {e}"))?;
            if split.mode == Mode::VerifyCa {
                Arc::new(ChainOnly(webpki))
            } else {
                webpki
            }
        }
    };
    let tls = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS: {e}"))?
        .dangerous()
        .with_custom_certificate_verifier(verifier)
        .with_no_client_auth();
    Ok((config, MakeRustlsConnect::new(tls)))
}

/// The CA certificates of `sslrootcert`, or the system's.
fn roots(root_cert: Option<&str>) -> Result<RootCertStore, String> {
    let mut roots = RootCertStore::empty();
    match root_cert {
        Some(path) => {
            let certs = CertificateDer::pem_file_iter(path)
                .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
                .map_err(|e| format!("sslrootcert={path}: {e}"))?;
            let (added, _) = roots.add_parsable_certificates(certs);
            if added == 0 {
                return Err(format!("sslrootcert={path}: no CA certificate in it"));
            }
        }
        None => {
            let found = rustls_native_certs::load_native_certs();
            roots.add_parsable_certificates(found.certs);
            if roots.is_empty() {
                return Err(
                    "sslmode=verify-*: the system has no root certificates; name a CA file \
                     with sslrootcert=PATH"
                        .into(),
                );
            }
        }
    }
    Ok(roots)
}

/// `allow`, `prefer` and `require`: libpq encrypts without checking who answers. The
/// handshake's signatures are still checked against the certificate presented.
#[derive(Debug)]
struct Unverified(Arc<CryptoProvider>);

impl ServerCertVerifier for Unverified {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// `verify-ca`: webpki's verification, except that a certificate need not name the host.
#[derive(Debug)]
struct ChainOnly(Arc<WebPkiServerVerifier>);

impl ServerCertVerifier for ChainOnly {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        intermediates: &[CertificateDer<'_>],
        server_name: &ServerName<'_>,
        ocsp_response: &[u8],
        now: UnixTime,
    ) -> Result<ServerCertVerified, TlsError> {
        match self
            .0
            .verify_server_cert(end_entity, intermediates, server_name, ocsp_response, now)
        {
            Err(TlsError::InvalidCertificate(
                CertificateError::NotValidForName | CertificateError::NotValidForNameContext { .. },
            )) => Ok(ServerCertVerified::assertion()),
            other => other,
        }
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls12_signature(message, cert, dss)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, TlsError> {
        self.0.verify_tls13_signature(message, cert, dss)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.supported_verify_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sslmode_and_sslrootcert_leave_the_url_and_the_rest_stays() {
        let s = split(
            "postgres://u:p@db:5432/flags?connect_timeout=5&sslmode=verify-full&sslrootcert=%2Fetc%2Fca%20x.pem&application_name=a",
        )
        .unwrap();
        assert_eq!(
            s.url,
            "postgres://u:p@db:5432/flags?connect_timeout=5&application_name=a"
        );
        assert_eq!(s.mode, Mode::VerifyFull);
        assert_eq!(s.root_cert.as_deref(), Some("/etc/ca x.pem"));
        let s = split("postgres://db/flags").unwrap();
        assert_eq!(
            (s.url.as_str(), s.mode, s.root_cert),
            ("postgres://db/flags", Mode::Prefer, None)
        );
        let s = split("postgres://db/flags?sslmode=allow&sslrootcert=system").unwrap();
        assert_eq!((s.mode, s.root_cert), (Mode::Prefer, None));
    }

    #[test]
    fn unknown_modes_and_client_certificates_are_refused_by_name() {
        let e = split("postgres://db/f?sslmode=verify").unwrap_err();
        assert!(
            e.contains("sslmode=\"verify\"") && e.contains("verify-full"),
            "{e}"
        );
        let e = split("postgres://db/f?sslcert=/c.pem").unwrap_err();
        assert!(e.starts_with("sslcert: client certificates"), "{e}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://flagwire:s3cr%40t@db:5432/flags?sslmode=require"),
            "postgres://flagwire:***@db:5432/flags?sslmode=require"
        );
        assert_eq!(
            redact("postgres://flagwire@db/flags"),
            "postgres://flagwire@db/flags"
        );
        assert_eq!(
            redact("postgres://db/flags?x=a@b"),
            "postgres://db/flags?x=a@b"
        );
    }
}
