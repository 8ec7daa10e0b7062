//! Metric definitions: define, redefine at the version read, list, delete; what a definition
//! blocks (deleting its environment) and that it survives a restart.

use crate::support::inproc::InProcess;
use crate::support::table::{assert_table, row};
use crate::support::*;
use flagwire_proto::v1::*;
use tonic::Code;

fn write_success() -> MetricDefinition {
    MetricDefinition {
        environment: "production".into(),
        name: "mem0.write".into(),
        kind: MetricKind::Rate as i32,
        direction: MetricDirection::HigherIsBetter as i32,
        unit: "%".into(),
        description: "mem0 writes that succeeded".into(),
        version: 0,
    }
}

fn define(metric: MetricDefinition, expected_version: u64) -> DefineMetricRequest {
    DefineMetricRequest {
        metric: Some(metric),
        expected_version,
        reason: "gate the mem0 epic".into(),
    }
}

fn delete(name: &str) -> DeleteMetricRequest {
    DeleteMetricRequest {
        environment: "production".into(),
        name: name.into(),
        reason: String::new(),
    }
}

async fn list(admin: &mut Admin, environment: &str) -> Vec<MetricDefinition> {
    let request = ListMetricsRequest {
        environment: environment.into(),
    };
    admin
        .list_metrics(request)
        .await
        .unwrap()
        .into_inner()
        .metrics
}

async fn audit_actions(admin: &mut Admin) -> Vec<String> {
    let request = ListAuditEventsRequest {
        page_size: 100,
        ..Default::default()
    };
    let events = admin.list_audit_events(request).await.unwrap().into_inner();
    let events = events.events.into_iter();
    events
        .filter(|e| e.resource_type == "metric")
        .map(|e| e.action)
        .collect()
}

#[tokio::test]
async fn metric_definitions() {
    let mut server = InProcess::start().await;
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_env(&mut admin, "staging").await;

    let defined = admin.define_metric(define(write_success(), 0)).await;
    let defined = defined.unwrap().into_inner().metric.unwrap();
    assert_eq!(defined.version, 1);
    let again = admin.define_metric(define(write_success(), 1)).await;
    let again = again.unwrap().into_inner().metric.unwrap();
    assert_eq!(again, defined, "the same definition is no change");

    let latency = MetricDefinition {
        name: "fast-path.ms".into(),
        kind: MetricKind::Distribution as i32,
        direction: MetricDirection::LowerIsBetter as i32,
        unit: "ms".into(),
        ..write_success()
    };
    admin
        .define_metric(define(latency.clone(), 0))
        .await
        .unwrap();
    let staged = MetricDefinition {
        environment: "staging".into(),
        ..write_success()
    };
    admin.define_metric(define(staged, 0)).await.unwrap();
    let names = |ms: Vec<MetricDefinition>| -> Vec<String> {
        ms.into_iter()
            .map(|m| format!("{}/{}", m.environment, m.name))
            .collect()
    };
    assert_eq!(
        names(list(&mut admin, "production").await),
        ["production/fast-path.ms", "production/mem0.write"]
    );
    assert_eq!(list(&mut admin, "").await.len(), 3, "every environment");

    let unit = MetricDefinition {
        unit: "share".into(),
        ..write_success()
    };
    let updated = admin.define_metric(define(unit.clone(), 1)).await.unwrap();
    assert_eq!(updated.into_inner().metric.unwrap().version, 2);

    let rows = vec![
        row("a redefinition from a stale version")
            .sends(define(write_success(), 1))
            .answers(
                Code::FailedPrecondition,
                "is at version 2, the request expected 1",
            ),
        row("deleting an unknown metric")
            .sends(delete("nope"))
            .answers(
                Code::NotFound,
                "metric \"nope\" in environment \"production\"",
            ),
        row("deleting an environment that defines metrics")
            .sends(DeleteEnvironmentRequest {
                key: "staging".into(),
                reason: String::new(),
            })
            .answers(Code::FailedPrecondition, "used by metric \"mem0.write\""),
    ];
    assert_table(&mut admin, &rows).await;

    admin.delete_metric(delete("fast-path.ms")).await.unwrap();
    assert_eq!(
        audit_actions(&mut admin).await,
        [
            "metric.delete",
            "metric.update",
            "metric.create",
            "metric.create",
            "metric.create"
        ],
        "newest first; the no-op redefinition left none"
    );

    server.restart().await;
    let mut admin = server.admin().await;
    let kept = list(&mut admin, "production").await;
    assert_eq!(kept, [MetricDefinition { version: 2, ..unit }]);
}
