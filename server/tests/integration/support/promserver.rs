//! A real Prometheus (Debian's `prometheus` binary: `PROMETHEUS_BIN`, else `prometheus` on
//! PATH; `scripts/test` installs it) on a free loopback port with a temporary TSDB, scraping an
//! [`Exporter`] this process serves: gauges the test sets, as an application exporting its
//! containers' memory per cohort would.

use super::eventually::eventually;
use std::collections::BTreeMap;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// How long Prometheus may take to start and to scrape a new value: it starts in about a
/// second and scrapes every 200 ms, but a loaded CI machine is slow.
const SLOW: Duration = Duration::from_secs(30);

/// Gauges served as Prometheus text on `/metrics`, settable while served, and counters that
/// grow by a fixed step at every scrape (an application's traffic, for `rate()`).
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
                    for (k, (value, step)) in samples.iter_mut() {
                        *value += *step;
                        text.push_str(&format!("{k} {value}\n"));
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
        self.samples
            .lock()
            .unwrap()
            .insert(series.into(), (value, 0.0));
    }

    /// Makes `series` a counter growing by `step` at every scrape.
    pub fn grow(&self, series: &str, step: f64) {
        self.samples
            .lock()
            .unwrap()
            .insert(series.into(), (0.0, step));
    }
}

/// A running Prometheus, killed on drop.
pub struct Prometheus {
    child: Option<Child>,
    /// Its base URL, e.g. `http://127.0.0.1:40123`.
    pub url: String,
    port: u16,
    dir: tempfile::TempDir,
}

fn binary() -> String {
    std::env::var("PROMETHEUS_BIN").unwrap_or_else(|_| "prometheus".into())
}

/// A port free now (Prometheus binds it itself; a clash makes `start` fail loudly).
fn free_port() -> u16 {
    let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    l.local_addr().unwrap().port()
}

impl Prometheus {
    /// Starts Prometheus scraping `exporter` every 200 ms, and waits until it is ready.
    pub async fn start(exporter: &Exporter) -> Prometheus {
        let dir = tempfile::tempdir().unwrap();
        let config = format!(
            "global:\n  scrape_interval: 200ms\n  scrape_timeout: 150ms\nscrape_configs:\n  \
             - job_name: app\n    static_configs:\n      - targets: ['{}']\n",
            exporter.addr
        );
        std::fs::write(dir.path().join("prometheus.yml"), config).unwrap();
        let port = free_port();
        let mut p = Prometheus {
            child: None,
            url: format!("http://127.0.0.1:{port}"),
            port,
            dir,
        };
        p.launch().await;
        p
    }

    async fn launch(&mut self) {
        let child = Command::new(binary())
            .arg(format!(
                "--config.file={}",
                self.dir.path().join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                self.dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{}", self.port))
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
        let ready = format!("{}/-/ready", self.url);
        eventually(SLOW, "Prometheus to be ready", async || {
            let addr = ready.trim_start_matches("http://");
            let (host, path) = addr.split_once('/').unwrap();
            let r = super::http::try_get(host, &format!("/{path}")).await?;
            (r.status == 200).then_some(())
        })
        .await;
    }

    /// Stops Prometheus (an outage), keeping its data.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts it again on the same port and data.
    pub async fn restart(&mut self) {
        self.stop();
        self.launch().await;
    }

    /// Waits until `query` answers `value` (the exporter's new value has been scraped).
    pub async fn wait_for(&self, query: &str, value: f64) {
        let host = self.url.trim_start_matches("http://").to_owned();
        let path = format!("/api/v1/query?query={}", encode(query));
        let what = format!("Prometheus to answer {value} to {query}");
        eventually(SLOW, &what, async || {
            let r = super::http::try_get(&host, &path).await?;
            let v: serde_json::Value = serde_json::from_str(&r.body).ok()?;
            let sample = v["data"]["result"][0]["value"][1].as_str()?;
            (sample.parse::<f64>().ok()? == value).then_some(())
        })
        .await;
    }
}

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
