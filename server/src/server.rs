//! Wiring: builds the gRPC and HTTP servers over a catalog and runs them until shutdown.

use crate::auth::AuthLayer;
use crate::catalog::Catalog;
use crate::clock::Timers;
use crate::flagd::{
    evaluation_v1::{EvaluationV1, Evaluator},
    evaluation_v2::EvaluationV2,
    sync::Sync as FlagdSync,
};
use crate::manager::Manager;
use crate::metrics::{Metrics, MetricsOptions};
use crate::ofrep::{Ofrep, OfrepOptions};
use crate::releases::evidence::Evidence;
use crate::releases::{ReleaseOptions, Releases};
use crate::service::{
    admin::Admin, flags::Flags, metrics::MetricsApi, releases::ReleaseApi, rollouts::RolloutApi,
    watch_route::FlagRoutes,
};
use crate::telemetry::{Telemetry, flag_states, scrape::Scrape};
use crate::tls::TlsConfig;
use flagwire_proto::flagd::evaluation::{
    v1::service_server::ServiceServer as FlagdEvaluationV1Server,
    v2::service_server::ServiceServer as FlagdEvaluationV2Server,
};
use flagwire_proto::flagd::sync::v1::flag_sync_service_server::FlagSyncServiceServer;
use flagwire_proto::grpc::{
    admin_service_server::AdminServiceServer, flag_service_server::FlagServiceServer,
    metrics_service_server::MetricsServiceServer, release_service_server::ReleaseServiceServer,
    rollout_service_server::RolloutServiceServer,
};
use std::future::{Future, IntoFuture};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_stream::wrappers::TcpListenerStream;
use tower_http::cors::{AllowOrigin, CorsLayer};

/// What [`run`] needs besides the listeners.
#[derive(Clone)]
pub struct Settings {
    /// The opened catalog.
    pub catalog: Arc<Catalog>,
    /// Interval between heartbeats on an idle Watch stream.
    pub heartbeat: Duration,
    /// How long shutdown waits for connections to finish before closing them anyway: a client
    /// that never answers GOAWAY must not keep the store from being flushed.
    pub shutdown_grace: Duration,
    /// Retention and watermark of the in-memory usage metrics and instance registry.
    pub metrics: MetricsOptions,
    /// Release windows and the timers' tick.
    pub releases: ReleaseOptions,
    /// Serve both ports over TLS with this certificate; plaintext when `None`.
    pub tls: Option<TlsConfig>,
    /// Where the timer loops mark their passes (shared with tests that advance a manual clock
    /// and need to know when the server has caught up with it).
    pub timers: Arc<Timers>,
    /// The OFREP endpoints' rate limit.
    pub ofrep: OfrepOptions,
    /// The environment flagd calls without a token act on (`--flagd-environment`); `None`
    /// refuses them.
    pub flagd_environment: Option<String>,
}

impl Settings {
    /// Defaults for everything but the catalog (tests and embedding).
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            heartbeat: Duration::from_secs(15),
            shutdown_grace: Duration::from_secs(10),
            metrics: MetricsOptions::default(),
            releases: ReleaseOptions::default(),
            tls: None,
            timers: Arc::default(),
            ofrep: OfrepOptions::default(),
            flagd_environment: None,
        }
    }
}

/// A server future, boxed so the plaintext and TLS variants have one type.
type Serving<E> = Pin<Box<dyn Future<Output = Result<(), E>> + Send>>;

fn cors() -> CorsLayer {
    // gRPC-web from browsers and fetch-only runtimes: any origin, the headers gRPC-web needs,
    // and the trailers-as-headers it reads exposed.
    CorsLayer::new()
        .allow_origin(AllowOrigin::mirror_request())
        .allow_credentials(true)
        .allow_methods([http::Method::POST, http::Method::OPTIONS])
        .allow_headers([
            http::header::AUTHORIZATION,
            http::header::CONTENT_TYPE,
            http::HeaderName::from_static("x-grpc-web"),
            http::HeaderName::from_static("x-user-agent"),
            http::HeaderName::from_static("grpc-timeout"),
            http::HeaderName::from_static("x-flagwire-reason"),
        ])
        .expose_headers([
            http::HeaderName::from_static("grpc-status"),
            http::HeaderName::from_static("grpc-message"),
            http::HeaderName::from_static("grpc-status-details-bin"),
        ])
        .max_age(Duration::from_secs(86_400))
}

/// Accepted connections with Nagle's algorithm off: tonic applies its TCP settings only to
/// listeners it binds itself, and a change pushed to watchers must not wait for an ACK.
fn incoming(
    listener: TcpListener,
) -> impl tokio_stream::Stream<Item = std::io::Result<tokio::net::TcpStream>> {
    use tokio_stream::StreamExt;
    TcpListenerStream::new(listener).map(|accepted| {
        accepted.inspect(|stream| {
            if let Err(e) = stream.set_nodelay(true) {
                tracing::warn!(error = %e, "could not set TCP_NODELAY");
            }
        })
    })
}

/// Keeps gRPC health in step with the store: every service `NOT_SERVING` while the store does
/// not answer (PostgreSQL down), `SERVING` again once it does.
async fn report_health(
    catalog: Arc<Catalog>,
    health: tonic_health::server::HealthReporter,
    stop: impl Future<Output = ()>,
) {
    let mut serving = true;
    tokio::pin!(stop);
    loop {
        tokio::select! {
            () = &mut stop => return,
            () = tokio::time::sleep(Duration::from_millis(250)) => {}
        }
        let now = catalog.store().healthy();
        if now == serving {
            continue;
        }
        serving = now;
        let status = if now {
            tonic_health::ServingStatus::Serving
        } else {
            tonic_health::ServingStatus::NotServing
        };
        for service in [
            "",
            "flagwire.v1.AdminService",
            "flagwire.v1.FlagService",
            "flagwire.v1.MetricsService",
            "flagwire.v1.RolloutService",
            "flagwire.v1.ReleaseService",
        ] {
            health.set_service_status(service, status).await;
        }
    }
}

/// Serves gRPC (and gRPC-web) on `grpc` and plain HTTP on `http` until `shutdown` resolves,
/// then ends every Watch stream cleanly, waits for in-flight calls and flushes the store.
pub async fn run(
    grpc: TcpListener,
    http: TcpListener,
    settings: Settings,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> anyhow::Result<()> {
    let catalog = settings.catalog;
    let clock = Arc::clone(catalog.clock());
    flag_states::log(&catalog.read());
    let watermark = settings.metrics.watermark;
    let retention = settings.metrics.retention;
    let evidence = Arc::new(Evidence::new(
        catalog.shared_store(),
        settings.releases.max_windows,
    ));
    let metrics = Arc::new(
        Metrics::new(settings.metrics, Arc::clone(&clock))
            .with_observer(Arc::clone(&evidence) as Arc<_>),
    );
    let tick = settings.releases.tick;
    let (releases, rolled_back) = Releases::open(
        Arc::clone(&catalog),
        evidence,
        Arc::clone(metrics.registry()),
        settings.releases,
    )?;
    let releases = Arc::new(releases);
    let manager = Arc::new(Manager::new(
        Arc::clone(&catalog),
        Arc::clone(metrics.registry()),
        Arc::clone(&releases),
        Arc::clone(&clock),
        tick,
    ));
    let telemetry = Arc::new(Telemetry::new(Scrape::new(
        Arc::clone(&catalog),
        Arc::clone(&metrics),
        Arc::clone(&clock),
        watermark,
        Arc::clone(&settings.timers),
    )));
    let (health, health_service) = tonic_health::server::health_reporter();
    health.set_serving::<AdminServiceServer<Admin>>().await;
    health.set_serving::<FlagServiceServer<Flags>>().await;
    health
        .set_serving::<MetricsServiceServer<MetricsApi>>()
        .await;
    health
        .set_serving::<RolloutServiceServer<RolloutApi>>()
        .await;
    health
        .set_serving::<ReleaseServiceServer<ReleaseApi>>()
        .await;
    health
        .set_serving::<FlagdEvaluationV1Server<EvaluationV1>>()
        .await;
    health
        .set_serving::<FlagdEvaluationV2Server<EvaluationV2>>()
        .await;
    health
        .set_serving::<FlagSyncServiceServer<FlagdSync>>()
        .await;
    health
        .set_service_status("", tonic_health::ServingStatus::Serving)
        .await;

    let reflection = |b: tonic_reflection::server::Builder<'static>| {
        b.register_encoded_file_descriptor_set(flagwire_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(flagwire_proto::FLAGD_FILE_DESCRIPTOR_SET)
    };
    let reflection_v1 = reflection(tonic_reflection::server::Builder::configure()).build_v1()?;
    let reflection_v1alpha =
        reflection(tonic_reflection::server::Builder::configure()).build_v1alpha()?;

    // One signal fans out to both servers; the hub closes first so streams end and the
    // gRPC server's graceful shutdown does not wait on them forever.
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let hub_catalog = Arc::clone(&catalog);
    tokio::spawn(async move {
        shutdown.await;
        tracing::info!("shutting down");
        hub_catalog.hub().close();
        let _ = stop_tx.send(true);
    });
    let stopped = |mut rx: tokio::sync::watch::Receiver<bool>| async move {
        let _ = rx.wait_for(|s| *s).await;
    };
    let timers = &settings.timers;
    tokio::spawn(Arc::clone(&releases).drive(Arc::clone(timers), stopped(stop_rx.clone())));
    tokio::spawn(Arc::clone(&manager).drive(Arc::clone(timers), stopped(stop_rx.clone())));
    tokio::spawn(Arc::clone(&manager).run_rollback_plans(rolled_back, stopped(stop_rx.clone())));
    tokio::spawn(Arc::clone(&catalog).follow(stopped(stop_rx.clone())));
    tokio::spawn(crate::metrics::fleet::share(
        Arc::clone(metrics.registry()),
        catalog.shared_store(),
        retention,
        stopped(stop_rx.clone()),
    ));
    tokio::spawn(report_health(
        Arc::clone(&catalog),
        health.clone(),
        stopped(stop_rx.clone()),
    ));

    let grpc_server = tonic::transport::Server::builder()
        .accept_http1(true)
        .http2_keepalive_interval(Some(Duration::from_secs(30)))
        .layer(cors())
        .layer(tonic_web::GrpcWebLayer::new())
        // Inside gRPC-web (sees plain gRPC), outside auth (counts refused calls).
        .layer(telemetry.rpc_layer())
        .layer(
            AuthLayer::new(Arc::clone(&catalog))
                .with_flagd_environment(settings.flagd_environment.clone()),
        )
        .add_service(health_service)
        .add_service(reflection_v1)
        .add_service(reflection_v1alpha)
        .add_service(AdminServiceServer::new(Admin::new(Arc::clone(&catalog))))
        .add_service(FlagRoutes::new(Flags::new(
            Arc::clone(&catalog),
            settings.heartbeat,
            Arc::clone(metrics.registry()),
        )))
        .add_service(FlagdEvaluationV1Server::new(EvaluationV1(Evaluator::new(
            Arc::clone(&catalog),
        ))))
        .add_service(FlagdEvaluationV2Server::new(EvaluationV2(Evaluator::new(
            Arc::clone(&catalog),
        ))))
        .add_service(FlagSyncServiceServer::new(FlagdSync::new(Arc::clone(
            &catalog,
        ))))
        .add_service(MetricsServiceServer::new(MetricsApi::new(
            Arc::clone(&catalog),
            Arc::clone(&metrics),
            Arc::clone(&clock),
        )))
        .add_service(ReleaseServiceServer::new(ReleaseApi::new(Arc::clone(
            &releases,
        ))))
        .add_service(RolloutServiceServer::new(RolloutApi::new(
            releases, manager,
        )));
    let console = crate::console::ConsoleConfig {
        grpc_port: grpc.local_addr()?.port(),
        tls: settings.tls.is_some(),
    };
    let ofrep = Arc::new(Ofrep::new(Arc::clone(&catalog), &settings.ofrep));
    let http_router = crate::http::router(telemetry, Arc::clone(&catalog), console)
        .merge(crate::ofrep::router(ofrep));
    let (grpc_server, http_server): (Serving<tonic::transport::Error>, Serving<std::io::Error>) =
        match &settings.tls {
            Some(tls) => (
                Box::pin(grpc_server.serve_with_incoming_shutdown(
                    tls.accept_grpc(grpc).into_stream(),
                    stopped(stop_rx.clone()),
                )),
                Box::pin(
                    axum::serve(tls.accept_http(http), http_router)
                        .with_graceful_shutdown(stopped(stop_rx.clone()))
                        .into_future(),
                ),
            ),
            None => (
                Box::pin(
                    grpc_server
                        .serve_with_incoming_shutdown(incoming(grpc), stopped(stop_rx.clone())),
                ),
                Box::pin(
                    axum::serve(http, http_router)
                        .with_graceful_shutdown(stopped(stop_rx.clone()))
                        .into_future(),
                ),
            ),
        };

    let servers = async { tokio::join!(grpc_server, http_server) };
    let deadline = async {
        stopped(stop_rx).await;
        tokio::time::sleep(settings.shutdown_grace).await;
    };
    tokio::select! {
        (grpc_result, http_result) = servers => {
            grpc_result?;
            http_result?;
        }
        () = deadline => tracing::warn!("connections still open after the grace period; closing"),
    }
    catalog.flush()?;
    tracing::info!("store flushed; bye");
    Ok(())
}
