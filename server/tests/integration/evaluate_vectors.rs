//! The server's `Evaluate` agrees with `flagwire-core` on every vector case: each case file is
//! loaded into a server (in-process, over its store by `flagwire_server::vector_case`, because
//! some vector flags are deliberately invalid and the admin API rightly refuses them) and every
//! case goes through the gRPC call.

#[path = "../../../core/tests/support/vectors.rs"]
pub(crate) mod vectors;

use flagwire_proto::grpc::flag_service_client::FlagServiceClient;
use flagwire_proto::v1::*;
use flagwire_server::catalog::{Catalog, CatalogOptions};
use flagwire_server::store::{Store, memory::MemoryStore};
use flagwire_server::vector_case;
use flagwire_server::{Settings, run};
use std::sync::Arc;
use std::time::Duration;
use tonic::Request;
use vectors::*;

/// The admin token of the servers `serve` starts.
pub(crate) const TOKEN: &str = "fw_vectors_admin";

/// A server holding `file`, loaded over its store by [`flagwire_server::vector_case`] (admin
/// token [`TOKEN`]); the sender stops it.
pub(crate) async fn serve(file: &VectorFile) -> (String, tokio::sync::oneshot::Sender<()>) {
    let store = Arc::new(MemoryStore::new());
    let json = std::fs::read_to_string(&file.path).unwrap();
    store
        .commit(vector_case::batch(&json, TOKEN, "fw_vectors_sdk_unused").unwrap())
        .unwrap();
    let catalog = Arc::new(Catalog::open(store, CatalogOptions::default()).unwrap());
    let grpc = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let http = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = format!("http://{}", grpc.local_addr().unwrap());
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let settings = Settings {
        heartbeat: Duration::from_secs(60),
        shutdown_grace: Duration::from_secs(1),
        ..Settings::new(catalog)
    };
    tokio::spawn(run(grpc, http, settings, async move {
        let _ = stopped.await;
    }));
    (addr, stop)
}

#[tokio::test]
async fn remote_evaluate_agrees_with_core_on_every_vector() {
    let mut tally = Tally::default();
    for file in load_all() {
        let (addr, stop) = serve(&file).await;
        let mut client = FlagServiceClient::connect(addr).await.unwrap();
        for case in &file.cases {
            let mut request = Request::new(EvaluateRequest {
                environment: file.environment.clone(),
                flag_key: case.flag.clone(),
                context: Some(case.context.clone()),
                expected_type: case.expected_type.map_or(0, |t| t as i32),
            });
            request
                .metadata_mut()
                .insert("authorization", format!("Bearer {TOKEN}").parse().unwrap());
            let r = client
                .evaluate(request)
                .await
                .unwrap()
                .into_inner()
                .result
                .unwrap();
            let outcome = Outcome {
                value: r.value.as_ref().map(value_json),
                variant: r.variant.clone(),
                reason: Reason::try_from(r.reason).unwrap(),
                error_code: ErrorCode::try_from(r.error_code).unwrap(),
                cohort: r.cohort.clone(),
                rollout_id: r.rollout_id.clone(),
                flag_version: r.flag_version,
            };
            tally.check(&file, case, &outcome);
        }
        let _ = stop.send(());
    }
    tally.finish();
}
