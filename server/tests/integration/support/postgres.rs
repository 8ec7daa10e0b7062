//! A real PostgreSQL 15 (Debian's binaries: `PG_BIN`, else `/usr/lib/postgresql/15/bin`) for the
//! tests: a cluster initialised on a temp dir as the `postgres` user (`initdb` refuses root),
//! serving on a free loopback port with trust authentication, one database per test.
//!
//! [`shared`] is one cluster for the whole test process, started on first use; a watchdog shell
//! stops it and removes its directory when this process exits (statics are never dropped).
//! Tests that stop the database start a [`Cluster`] of their own, removed on drop.
//!
//! `FLAGWIRE_TEST_STORE=postgres` makes every server the suites start ([`super::binary`] and
//! [`super::inproc`]) use a database of the shared cluster instead of sled: [`store_for`]
//! maps each data directory to its own database, so a restart on the same directory finds
//! the same data.

use std::collections::HashMap;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Mutex, OnceLock};

fn bin(name: &str) -> String {
    let dir = std::env::var("PG_BIN").unwrap_or_else(|_| "/usr/lib/postgresql/15/bin".into());
    format!("{dir}/{name}")
}

/// Whether the suites run their servers on PostgreSQL (`FLAGWIRE_TEST_STORE=postgres`).
pub fn enabled() -> bool {
    std::env::var("FLAGWIRE_TEST_STORE").is_ok_and(|s| s == "postgres")
}

/// A PostgreSQL cluster on a free port.
pub struct Cluster {
    /// Its port on 127.0.0.1.
    pub port: u16,
    root: PathBuf,
    // Serves TLS only (see `start_tls`).
    tls: bool,
    // Stops postgres and removes `root` when this process is gone.
    watchdog: Option<Child>,
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("{what}: {e}"));
    assert!(
        out.status.success(),
        "{what} failed: {}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

impl Cluster {
    /// Initialises and starts a new cluster, removed on drop.
    pub fn start() -> Cluster {
        Cluster::init(None)
    }

    /// Initialises and starts a new cluster that serves TLS with this certificate and key
    /// (PEM files) and refuses connections without it (`hostnossl … reject`), removed on drop.
    pub fn start_tls(cert: &Path, key: &Path) -> Cluster {
        Cluster::init(Some((cert, key)))
    }

    fn init(tls: Option<(&Path, &Path)>) -> Cluster {
        let root = tempfile::Builder::new()
            .prefix("flagwire-pg-")
            .tempdir()
            .unwrap()
            .keep();
        std::fs::create_dir(root.join("socket")).unwrap();
        run(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(&root),
            "chown the cluster's directory to postgres",
        );
        run(
            Command::new("runuser")
                .args(["-u", "postgres", "--"])
                .arg(bin("initdb"))
                .args([
                    "-A",
                    "trust",
                    "-U",
                    "postgres",
                    "-E",
                    "UTF8",
                    "--no-sync",
                    "-D",
                ])
                .arg(root.join("data")),
            "initdb (is Debian's postgresql-15 installed?)",
        );
        if let Some((cert, key)) = tls {
            let data = root.join("data");
            std::fs::copy(cert, data.join("server.crt")).unwrap();
            std::fs::copy(key, data.join("server.key")).unwrap();
            std::fs::write(
                data.join("pg_hba.conf"),
                "local all all trust\n\
                 hostssl all all 127.0.0.1/32 trust\n\
                 hostssl all all ::1/128 trust\n\
                 hostnossl all all 0.0.0.0/0 reject\n\
                 hostnossl all all ::/0 reject\n",
            )
            .unwrap();
            run(
                Command::new("chown")
                    .args(["postgres:postgres"])
                    .arg(data.join("server.crt"))
                    .arg(data.join("server.key"))
                    .arg(data.join("pg_hba.conf")),
                "chown the cluster's certificate to postgres",
            );
            // postgres refuses a key others can read.
            run(
                Command::new("chmod")
                    .arg("600")
                    .arg(data.join("server.key")),
                "chmod the cluster's key",
            );
        }
        let mut cluster = Cluster {
            port: super::ports::quiet_port(),
            root,
            tls: tls.is_some(),
            watchdog: None,
        };
        cluster.launch();
        cluster
    }

    fn pg_ctl(&self, args: &[&str]) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(bin("pg_ctl"))
            .arg("-D")
            .arg(self.root.join("data"))
            .args(args)
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        command
    }

    /// Starts postgres on the cluster's port and data (`pg_ctl start -w` returns once it accepts
    /// connections), and the watchdog that stops it and removes its directory once this test
    /// process is gone, however it ended (statics are never dropped; a killed process runs no
    /// destructor).
    fn launch(&mut self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c max_connections=400 -c ssl={}",
            self.port,
            self.root.join("socket").display(),
            if self.tls { "on" } else { "off" },
        );
        let log = self.root.join("postgres.log");
        run(
            self.pg_ctl(&["start", "-w", "-t", "60", "-o", &options, "-l"])
                .arg(&log),
            "pg_ctl start",
        );
        if self.watchdog.is_none() {
            // Polling once a second is the watchdog's own cadence; no test waits on it.
            let script = format!(
                "while kill -0 {parent} 2>/dev/null; do sleep 1; done; \
                 runuser -u postgres -- {pg_ctl} -D {data} stop -m immediate; rm -rf {root}",
                parent = std::process::id(),
                pg_ctl = bin("pg_ctl"),
                data = self.root.join("data").display(),
                root = self.root.display(),
            );
            let child = Command::new("sh")
                .args(["-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .process_group(0)
                .spawn()
                .expect("spawn the postgres watchdog");
            self.watchdog = Some(child);
        }
        assert!(
            self.try_sql("postgres", "SELECT 1").is_ok(),
            "postgres started but does not answer"
        );
    }

    /// Runs `sql` in `db` with psql; its output or its error.
    pub fn try_sql(&self, db: &str, sql: &str) -> Result<String, String> {
        let out = Command::new(bin("psql"))
            .args([
                "-h",
                "127.0.0.1",
                "-U",
                "postgres",
                "-XAtq",
                "-v",
                "ON_ERROR_STOP=1",
            ])
            .args(["-p", &self.port.to_string(), "-d", db, "-c", sql])
            .output()
            .map_err(|e| e.to_string())?;
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).into_owned())
        }
    }

    /// Runs `sql` in `db`, panicking on an error.
    pub fn sql(&self, db: &str, sql: &str) -> String {
        self.try_sql(db, sql)
            .unwrap_or_else(|e| panic!("psql {sql:?}: {e}"))
    }

    /// A new empty database; its `postgres://` URL.
    pub fn create_db(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.sql("postgres", &format!("CREATE DATABASE {name}"));
        self.url(&name)
    }

    /// The URL of database `db`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://postgres@127.0.0.1:{}/{db}", self.port)
    }

    /// Stops postgres (fast shutdown: connections are cut), keeping its data.
    pub fn stop(&mut self) {
        run(
            &mut self.pg_ctl(&["stop", "-w", "-m", "fast"]),
            "pg_ctl stop",
        );
    }

    /// Starts it again on the same port and data.
    pub fn restart(&mut self) {
        self.launch();
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        let _ = self.pg_ctl(&["stop", "-w", "-m", "immediate"]).status();
        let _ = std::fs::remove_dir_all(&self.root);
        if let Some(mut watchdog) = self.watchdog.take() {
            let _ = watchdog.kill();
            let _ = watchdog.wait();
        }
    }
}

/// The test process's cluster, started on first use.
pub fn shared() -> &'static Cluster {
    static SHARED: OnceLock<Cluster> = OnceLock::new();
    SHARED.get_or_init(Cluster::start)
}

/// The `--store` of a server on `data_dir` under `FLAGWIRE_TEST_STORE=postgres`: the same
/// database for the same directory (restarts find their data); `None` for sled.
pub fn store_for(data_dir: &Path) -> Option<String> {
    static DBS: OnceLock<Mutex<HashMap<PathBuf, String>>> = OnceLock::new();
    if !enabled() {
        return None;
    }
    let mut dbs = DBS.get_or_init(Default::default).lock().unwrap();
    Some(
        dbs.entry(data_dir.to_owned())
            .or_insert_with(|| shared().create_db())
            .clone(),
    )
}
