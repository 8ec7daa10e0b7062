//! A real Prometheus (Debian's `prometheus` binary: `PROMETHEUS_BIN`, else `prometheus` on
//! PATH; `scripts/test` installs it) on a free loopback port with a temporary TSDB, scraping an
//! [`Exporter`] this process serves: the series a service and its containers would export per
//! cohort, set by the test. Shared by the server's integration tests and the Rust SDK's (which
//! include this file by path), so it leans on neither crate's helpers.
#![allow(dead_code)]

use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long Prometheus may take to start and to scrape a new value: it starts in about a
/// second and scrapes every 200 ms, but a loaded CI machine is slow.
const SLOW: Duration = Duration::from_secs(30);

/// Gauges served as Prometheus text on `/metrics`, settable while served, and counters that
/// grow by a fixed step at every scrape (a service's traffic, for `rate()`).
#[derive(Clone, Default)]
pub struct Exporter {
    /// Sample lines (`name{labels}`), their values and how much each scrape adds.
    samples: Arc<Mutex<BTreeMap<String, (f64, f64)>>>,
    /// Where it listens.
    pub addr: String,
}

impl Exporter {
    /// Serves the exporter on a free loopback port.
    pub async fn start() -> Exporter {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let exporter = Exporter {
            addr: listener.local_addr().unwrap().to_string(),
            ..Exporter::default()
        };
        let samples = Arc::clone(&exporter.samples);
        let app = axum::Router::new().route(
            "/metrics",
            axum::routing::get(move || {
                let samples = Arc::clone(&samples);
                async move {
                    let mut samples = samples.lock().unwrap();
                    let mut text = String::new();
                    for (series, (value, step)) in samples.iter_mut() {
                        *value += *step;
                        text.push_str(&format!("{series} {value}\n"));
                    }
                    text
                }
            }),
        );
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        exporter
    }

    /// Sets the gauge `series` (e.g. `memory_bytes{cohort="canary"}`) to `value`.
    pub fn set(&self, series: &str, value: f64) {
        let mut samples = self.samples.lock().unwrap();
        samples.insert(series.into(), (value, 0.0));
    }

    /// Makes `series` a counter growing by `step` at every scrape.
    pub fn grow(&self, series: &str, step: f64) {
        let mut samples = self.samples.lock().unwrap();
        samples.insert(series.into(), (0.0, step));
    }
}

/// The credentials of a Prometheus started with [`Prometheus::spawn_with_basic_auth`].
pub mod basic_auth {
    /// The user it lets in.
    pub const USER: &str = "flagwire";
    /// That user's password.
    pub const PASSWORD: &str = "gate-s3cret";
    /// bcrypt of [`PASSWORD`] at cost 4, made with Python: `crypt.crypt(PASSWORD,
    /// crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=16))`.
    pub const HASH: &str = "$2b$04$ivlgoUY6mxRtKHtEOJ96v.HPtTkhDLlq4eC8Xs2Pd4.FPMv950tG6";
    /// `Basic` and base64 of `USER:PASSWORD`.
    pub const HEADER: &str = "Basic ZmxhZ3dpcmU6Z2F0ZS1zM2NyZXQ=";
}

/// A Prometheus process, killed on drop.
pub struct Prometheus {
    child: Option<Child>,
    /// Its base URL, e.g. `http://127.0.0.1:40123`, known before it is ready.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
    // The `Authorization` header this file's own requests send, when it demands one.
    authorization: Option<String>,
}

fn binary() -> String {
    std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into())
}

impl Prometheus {
    /// Starts Prometheus scraping `exporter` every 200 ms; [`Prometheus::ready`] waits for it.
    pub fn spawn(exporter: &Exporter) -> Prometheus {
        Prometheus::spawn_with(exporter, None)
    }

    /// [`Prometheus::spawn`], with `web` as its `--web.config.file` and the `Authorization`
    /// header that passes it, if given.
    fn spawn_with(exporter: &Exporter, web: Option<(String, &str)>) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  \
             - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let authorization = web.map(|(config, authorization)| {
            std::fs::write(dir.path().join("web.yml"), config).unwrap();
            authorization.to_owned()
        });
        let port = super::ports::quiet_port();
        let mut p = Prometheus {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
            authorization,
        };
        p.launch();
        p
    }

    /// [`Prometheus::spawn`], but demanding HTTP basic auth of [`basic_auth::USER`] (its
    /// `--web.config.file`); this file's own requests pass it.
    pub fn spawn_with_basic_auth(exporter: &Exporter) -> Prometheus {
        use basic_auth::*;
        let web = format!("basic_auth_users:\n  {USER}: '{HASH}'\n");
        Prometheus::spawn_with(exporter, Some((web, HEADER)))
    }

    /// Starts Prometheus scraping `exporter` every 200 ms, and waits until it is ready.
    pub async fn start(exporter: &Exporter) -> Prometheus {
        let p = Prometheus::spawn(exporter);
        p.ready().await;
        p
    }

    fn launch(&mut self) {
        let path = |name: &str| self.dir.path().join(name).display().to_string();
        let child = Command::new(binary())
            .arg(format!("--config.file={}", path("prometheus.yml")))
            .arg(format!("--storage.tsdb.path={}", path("data")))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
            .args(
                self.authorization
                    .as_ref()
                    .map(|_| format!("--web.config.file={}", path("web.yml"))),
            )
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "cannot run {} ({e}): install Debian's prometheus package \
                     (scripts/test does) or set PROMETHEUS_BIN",
                    binary()
                )
            });
        self.child = Some(child);
    }

    /// Waits until it answers `/-/ready`.
    pub async fn ready(&self) {
        until("Prometheus to be ready", async || {
            match self.get("/-/ready").await {
                Some((200, _)) => Ok(()),
                other => Err(format!("{other:?}")),
            }
        })
        .await;
    }

    /// Stops it (an outage), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data, and waits until it is ready.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch();
        self.ready().await;
    }

    /// Waits until `query` answers `value` (a new value of the exporter has been scraped).
    pub async fn wait_for(&self, query: &str, value: f64) {
        let path = format!("/api/v1/query?query={}", encode(query));
        let what = format!("Prometheus to answer {value} to {query}");
        until(&what, async || {
            let (_, body) = self.get(&path).await.ok_or("no answer")?;
            let v: serde_json::Value = serde_json::from_str(&body).map_err(|e| e.to_string())?;
            let sample = v["data"]["result"][0]["value"][1].as_str();
            match sample.and_then(|s| s.parse::<f64>().ok()) {
                Some(got) if got == value => Ok(()),
                _ => Err(body),
            }
        })
        .await;
    }

    /// `GET path` (with this file's `Authorization`, if it demands one): the status and body,
    /// or `None` when nothing accepts the connection.
    pub async fn get(&self, path: &str) -> Option<(u16, String)> {
        let addr = format!("127.0.0.1:{}", self.port);
        let tcp = tokio::net::TcpStream::connect(&addr).await.ok()?;
        let (mut sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(tcp))
            .await
            .ok()?;
        tokio::spawn(conn);
        let mut request = http::Request::get(path).header(http::header::HOST, addr);
        if let Some(authorization) = &self.authorization {
            request = request.header(http::header::AUTHORIZATION, authorization);
        }
        let request = request
            .body(http_body_util::Empty::<hyper::body::Bytes>::new())
            .unwrap();
        let response = sender.send_request(request).await.ok()?;
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.ok()?.to_bytes();
        Some((status, String::from_utf8_lossy(&body).into_owned()))
    }
}

/// Polls `probe` every 200 ms until it succeeds; after [`SLOW`], fails the test with its last
/// error.
async fn until<T>(what: &str, mut probe: impl AsyncFnMut() -> Result<T, String>) -> T {
    let deadline = tokio::time::Instant::now() + SLOW;
    let mut poll = tokio::time::interval(Duration::from_millis(200));
    loop {
        poll.tick().await;
        match probe().await {
            Ok(v) => return v,
            Err(why) => assert!(tokio::time::Instant::now() < deadline, "{what}: {why}"),
        }
    }
}

/// Percent-encodes a query parameter.
fn encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'a'..=b'z' | b'A'..=b'Z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        self.stop();
    }
}
