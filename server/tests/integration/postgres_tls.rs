//! TLS to PostgreSQL on a real PostgreSQL 15 that serves TLS only (plain connections are
//! rejected by `pg_hba.conf`), with a certificate from a CA made by the test that names
//! `localhost` but not 127.0.0.1: each `sslmode` of libpq means what it means to `psql`
//! (`server/src/store/postgres/tls.rs`). A server either starts and writes, its sessions
//! encrypted (`pg_stat_ssl`), or exits non-zero with a message naming the problem, having
//! written nothing.

use crate::support::certs;
use crate::support::postgres::Cluster;
use crate::support::*;

/// The database's URL with `host` and `query`.
fn url(cluster: &Cluster, host: &str, db: &str, query: &str) -> String {
    format!("postgres://postgres@{host}:{}/{db}{query}", cluster.port)
}

/// Starts a server on `store`, makes a flag through it, and returns how many of the database's
/// sessions from Flagwire are encrypted and how many are not.
async fn serves(cluster: &Cluster, db: &str, store: &str) -> (String, String) {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--store", store]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("over-tls", &["production"])).await;
    let count = |ssl: &str| {
        cluster.sql(
            db,
            &format!(
                "SELECT count(*) FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) \
                 WHERE a.application_name = 'flagwire' AND s.ssl = {ssl}"
            ),
        )
    };
    let counts = (count("true"), count("false"));
    drop(server);
    counts
}

/// Runs `flagwire serve --store store`, which must fail; its stderr.
fn refused(store: &str) -> String {
    failed_start(tempdir().path(), &["--store", store])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_sslmode_means_what_it_means_to_libpq() {
    let dir = tempdir();
    let pki = certs::make_for(dir.path(), &[]);
    let other_dir = dir.path().join("other");
    std::fs::create_dir(&other_dir).unwrap();
    let other = certs::make_for(&other_dir, &[]);
    let cluster = Cluster::start_tls(&pki.cert_path, &pki.key_path);
    let ca = pki.ca_path.display().to_string();
    let db = |c: &Cluster| c.create_db().rsplit('/').next().unwrap().to_owned();

    // Every mode that connects: encrypted sessions only.
    let connects = [
        // No sslmode (libpq's `prefer`) and `require`: the certificate is not checked (the
        // test CA is in no trust store here).
        ("127.0.0.1", String::new()),
        ("127.0.0.1", "?sslmode=require".to_owned()),
        // verify-ca: the chain is checked, the name is not (the certificate does not name
        // the IP).
        ("127.0.0.1", format!("?sslmode=verify-ca&sslrootcert={ca}")),
        // verify-full: the chain and the name, which `localhost` is.
        (
            "localhost",
            format!("?sslmode=verify-full&sslrootcert={ca}"),
        ),
    ];
    for (host, query) in connects {
        let name = db(&cluster);
        let store = url(&cluster, host, &name, &query);
        let (encrypted, plain) = serves(&cluster, &name, &store).await;
        assert!(
            encrypted != "0" && plain == "0",
            "{store}: {encrypted} encrypted, {plain} plain"
        );
    }

    // Refusals: each names its cause, and leaves the database empty (not even migrated).
    let cases: &[(&str, String, &str)] = &[
        (
            "disable: the server rejects sessions without TLS",
            url(&cluster, "127.0.0.1", "D", "?sslmode=disable"),
            "no encryption",
        ),
        (
            "verify-full: the certificate does not name 127.0.0.1",
            url(
                &cluster,
                "127.0.0.1",
                "D",
                &format!("?sslmode=verify-full&sslrootcert={ca}"),
            ),
            "certificate not valid for name",
        ),
        (
            "verify-ca: another CA signed the certificate",
            url(
                &cluster,
                "localhost",
                "D",
                &format!("?sslmode=verify-ca&sslrootcert={}", other.ca_path.display()),
            ),
            // Both test CAs carry the same name, so the chain is found and its signature fails.
            "invalid peer certificate: BadSignature",
        ),
        (
            "verify-full: no such CA file",
            url(
                &cluster,
                "localhost",
                "D",
                "?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem",
            ),
            "sslrootcert=/nonexistent/ca.pem",
        ),
        (
            "an sslmode libpq does not have",
            url(&cluster, "localhost", "D", "?sslmode=verify"),
            "sslmode=\"verify\": expected disable, allow, prefer, require, verify-ca or verify-full",
        ),
        (
            "client certificates",
            url(&cluster, "localhost", "D", "?sslcert=/c.pem&sslkey=/k.pem"),
            "sslcert: client certificates are not supported",
        ),
    ];
    for (what, template, expected) in cases {
        let name = db(&cluster);
        let store = template.replace("/D?", &format!("/{name}?"));
        let stderr = refused(&store);
        assert!(stderr.contains(expected), "{what}: {stderr}");
        assert_eq!(
            cluster.sql(
                &name,
                "SELECT count(*) FROM pg_tables WHERE schemaname = 'public'"
            ),
            "0",
            "{what}: tables were made"
        );
    }
}

#[test]
fn a_password_in_the_url_never_reaches_the_messages() {
    let stderr = refused("postgres://flagwire:hunter2@127.0.0.1:1/flags?sslmode=nope");
    assert!(
        stderr.contains("postgres://flagwire:***@127.0.0.1:1/flags") && !stderr.contains("hunter2"),
        "{stderr}"
    );
}
