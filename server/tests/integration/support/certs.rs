//! Certificates made at test time: a CA and a server certificate it signed for 127.0.0.1 and
//! localhost, as PEM files in a directory.

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, SanType,
};
use std::path::{Path, PathBuf};

/// PEM files of one test PKI.
pub struct TestCerts {
    /// The CA certificate clients trust.
    pub ca_pem: String,
    /// Its file.
    pub ca_path: PathBuf,
    /// The server's certificate file.
    pub cert_path: PathBuf,
    /// The server's private key file.
    pub key_path: PathBuf,
}

/// Makes a CA and a server certificate for localhost and 127.0.0.1 under `dir`.
pub fn make(dir: &Path) -> TestCerts {
    make_for(dir, &["127.0.0.1"])
}

/// Makes a CA and a server certificate for localhost and `ips` under `dir`.
pub fn make_for(dir: &Path, ips: &[&str]) -> TestCerts {
    let ca_key = KeyPair::generate().unwrap();
    let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name
        .push(DnType::CommonName, "flagwire test CA");
    let ca_cert = ca.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::new(ca, ca_key);

    let key = KeyPair::generate().unwrap();
    let mut leaf = CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    for ip in ips {
        leaf.subject_alt_names
            .push(SanType::IpAddress(ip.parse().unwrap()));
    }
    leaf.distinguished_name
        .push(DnType::CommonName, "flagwire test server");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    let cert = leaf.signed_by(&key, &issuer).unwrap();

    let write = |name: &str, pem: &str| {
        let path = dir.join(name);
        std::fs::write(&path, pem).unwrap();
        path
    };
    TestCerts {
        ca_pem: ca_cert.pem(),
        ca_path: write("ca.pem", &ca_cert.pem()),
        cert_path: write("server.pem", &cert.pem()),
        key_path: write("server-key.pem", &key.serialize_pem()),
    }
}
