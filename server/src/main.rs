//! `flagwire`: parses configuration, opens the store, binds, and hands over to [`run`].

use anyhow::Context;
use clap::{CommandFactory, Parser};
use flagwire_server::catalog::{Catalog, CatalogOptions};
use flagwire_server::config::{Cli, Command, ServeArgs};
use flagwire_server::metrics::MetricsOptions;
use flagwire_server::ofrep::OfrepOptions;
use flagwire_server::releases::ReleaseOptions;
use flagwire_server::releases::prometheus::PrometheusOptions;
use flagwire_server::store::{
    Store, memory::MemoryStore, postgres::PgStore, sled_store::SledStore,
};
use flagwire_server::tls::TlsConfig;
use flagwire_server::{Settings, run};
use std::sync::Arc;

use std::time::Duration;
use tokio::net::TcpListener;

// Ingestion decodes and frees thousands of small messages per second per core; glibc malloc
// spent a third of the server's time there (perf), mimalloc a fraction of it. Measured against
// glibc (`--no-default-features`) in one run (BENCHMARKS.md, "Fan-out, memory per watcher, kill
// switch (round two)"): 23.9k vs 19.5k `Report`s/s, the same Watch fan-out, and 1-2 KiB more
// per watcher (25 vs 24 KiB) and ~16 MiB more idle, so mimalloc stays. It is built without
// transparent huge pages (the `no_thp` feature in Cargo.toml): with them its eagerly committed
// arenas made the idle server twice as large and each watcher ~10 KiB larger. On hosts with
// THP `always`, set `MIMALLOC_ALLOW_THP=0` for the same effect.
#[cfg(feature = "mimalloc")]
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Installs the SIGINT/SIGTERM handlers now and returns the future that resolves on either.
/// They must be in place before the server says it is listening: until a handler exists, a
/// SIGTERM takes the default action and kills the process without flushing the store.
fn shutdown_signal() -> anyhow::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut term = signal(SignalKind::terminate()).context("install the SIGTERM handler")?;
        let mut int = signal(SignalKind::interrupt()).context("install the SIGINT handler")?;
        Ok(async move {
            tokio::select! {
                _ = int.recv() => {}
                _ = term.recv() => {}
            }
        })
    }
    #[cfg(not(unix))]
    Ok(async {
        let _ = tokio::signal::ctrl_c().await;
    })
}

fn write_admin_token(args: &ServeArgs, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    // On PostgreSQL nothing else needs the data directory.
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("create data dir {}", args.data_dir.display()))?;
    let path = args.data_dir.join("admin-token");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(&path)
        .with_context(|| format!("write {}", path.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}

async fn serve(args: ServeArgs) -> anyhow::Result<()> {
    // Before anything is opened or bound: a bad certificate, or Prometheus settings that
    // cannot work, fail the start at once.
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(TlsConfig::from_pem_files(cert, key)?),
        _ => None,
    };
    let prometheus = args.prometheus_url.clone().map(|url| PrometheusOptions {
        url,
        timeout: Duration::from_secs_f64(args.prometheus_timeout_secs.max(0.001)),
        auth: args.prometheus_auth(),
    });
    if let Some(options) = &prometheus {
        options.check()?;
    }
    let store: Arc<dyn Store> = if args.in_memory {
        Arc::new(MemoryStore::new())
    } else if args.store.starts_with("postgres://") || args.store.starts_with("postgresql://") {
        let retention = Duration::from_secs_f64(args.store_log_retention_secs);
        PgStore::open_with(&args.store, retention).context("open the PostgreSQL store")?
    } else if args.store != "sled" {
        anyhow::bail!(
            "--store {:?}: expected sled or postgres://USER[:PASSWORD]@HOST:PORT/DB[?sslmode=…]",
            args.store
        );
    } else {
        std::fs::create_dir_all(&args.data_dir)
            .with_context(|| format!("create data dir {}", args.data_dir.display()))?;
        Arc::new(SledStore::open(&args.data_dir).context("open the store")?)
    };
    let options = CatalogOptions {
        change_log_retention: args.change_log_retention,
        hub_capacity: args.watch_buffer,
        ..CatalogOptions::default()
    };
    let catalog = Arc::new(Catalog::open(Arc::clone(&store), options).context("load the catalog")?);
    if let Some(secret) = catalog.bootstrap_admin(args.admin_token.clone()).await? {
        if args.in_memory {
            println!("admin token (shown once; in-memory store): {secret}");
        } else {
            write_admin_token(&args, &secret)?;
            let path = args.data_dir.join("admin-token");
            println!(
                "admin token (shown once, also in {}): {secret}",
                path.display()
            );
        }
    }
    if let Some(path) = &args.bootstrap {
        flagwire_server::bundle::bootstrap_file(&catalog, path).await?;
    }
    let shutdown = stop_or_stall(shutdown_signal()?, Arc::clone(&store));
    let grpc = TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("bind {}", args.listen))?;
    let http = TcpListener::bind(args.http_listen)
        .await
        .with_context(|| format!("bind {}", args.http_listen))?;
    // A stable line on stdout that scripts and tests parse to find ports bound as `:0`.
    println!(
        "flagwire listening grpc={} http={}",
        grpc.local_addr()?,
        http.local_addr()?
    );
    tracing::info!(
        grpc = %grpc.local_addr()?,
        http = %http.local_addr()?,
        data_dir = %args.data_dir.display(),
        "flagwire listening"
    );
    let settings = Settings {
        catalog,
        heartbeat: Duration::from_secs_f64(args.heartbeat_secs.max(0.01)),
        shutdown_grace: Duration::from_secs_f64(args.shutdown_grace_secs.max(0.0)),
        metrics: MetricsOptions {
            retention: Duration::from_secs_f64(args.metrics_retention_secs.max(0.0)),
            watermark: Duration::from_secs_f64(args.report_watermark_secs.max(0.0)),
        },
        releases: ReleaseOptions {
            max_windows: args.rollout_max_windows,
            retention: Duration::from_secs_f64(args.rollout_retention_secs.max(0.0)),
            prometheus,
            ..ReleaseOptions::default()
        },
        tls,
        timers: Default::default(),
        ofrep: OfrepOptions::per_second(args.ofrep_rate_limit),
        flagd_environment: args.flagd_environment.clone(),
    };
    run(grpc, http, settings, shutdown).await?;
    match store.stalled() {
        Some(why) => anyhow::bail!(why),
        None => Ok(()),
    }
}

/// Resolves on `signal`, or once this replica has fallen behind the store's trimmed log
/// ([`flagwire_server::store::StoreError::Behind`]). Such a replica stops, and `serve` fails
/// saying why: its catalog can never catch up, and its open Watch streams would keep SDKs on a
/// stale copy (a kill switch would not reach them); closed, they reconnect to other replicas,
/// and the supervisor's restart loads the database afresh.
async fn stop_or_stall(signal: impl std::future::Future<Output = ()>, store: Arc<dyn Store>) {
    let stalled = async {
        while store.stalled().is_none() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    };
    tokio::select! {
        () = signal => {}
        () = stalled => {}
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Serve(args)) => args,
        Some(Command::Client(command)) => {
            std::process::exit(flagwire_server::cli::run(command, Cli::command).await)
        }
        None => cli.serve,
    };
    let otel = flagwire_server::telemetry::logging::init(args.log_format)?;
    let served = serve(args).await;
    // Export the spans of the last moments before exiting.
    if let Some(otel) = otel {
        otel.shutdown();
    }
    served
}
