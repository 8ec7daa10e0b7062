//! Gates on the team's own metrics, on compressed time (the server in process on a manual
//! clock): the mem0 write-success gate rolls a release back while errors and latency stay
//! normal; a two-tier gate holds, then rolls back past its rollback threshold; an event count
//! gate; the gates' results in the decision log and the metrics in the windows; definitions a
//! running release gates on cannot change kind or go; bad gates refused with their field.

use crate::support::inproc::InProcess;
use crate::support::release::*;
use crate::support::*;
use flagwire_proto::v1::*;
use std::time::Duration;
use tonic::Code;

const MIN: Duration = Duration::from_secs(60);
const INSTANCE: &str = "00000000-0000-4000-8000-0000000000a1";

async fn define(admin: &mut Admin, name: &str, kind: MetricKind, direction: MetricDirection) {
    let metric = MetricDefinition {
        environment: "prod".into(),
        name: name.into(),
        kind: kind as i32,
        direction: direction as i32,
        ..Default::default()
    };
    let request = DefineMetricRequest {
        metric: Some(metric),
        ..Default::default()
    };
    admin.define_metric(request).await.unwrap();
}

fn absolute(name: &str, metric: &str, comparison: Comparison, threshold: f64) -> Gate {
    Gate {
        name: name.into(),
        kind: Some(gate::Kind::Absolute(AbsoluteGate {
            metric: metric.into(),
            comparison: comparison as i32,
            threshold,
            ..Default::default()
        })),
    }
}

/// Environment `prod`, flags `mem0-writes` and `fast-path`, metrics `mem0.write` (a rate)
/// and `workflow.stuck` (a mean), and a release of both flags at 10 %, 25 %, 50 %.
async fn setup(server: &InProcess) -> Release {
    let mut admin = server.admin().await;
    create_env(&mut admin, "prod").await;
    flags(&mut admin, "prod", &["mem0-writes", "fast-path"]).await;
    use MetricDirection::*;
    define(&mut admin, "mem0.write", MetricKind::Rate, HigherIsBetter).await;
    define(
        &mut admin,
        "workflow.stuck",
        MetricKind::Mean,
        LowerIsBetter,
    )
    .await;
    let on = ["mem0-writes", "fast-path"];
    let stages = [1_000, 2_500, 5_000]
        .into_iter()
        .map(|bp| stage(share(bp), &on, 2 * MIN))
        .collect();
    release("prod", &on, stages, MIN)
}

/// One window of traffic: 2,000 requests per cohort with 1 % errors, and each cohort's
/// `mem0.write` outcomes (`write_failures` of 2,000 failed) and `stuck` stuck workflows.
struct Window {
    write_failures: [u64; 2],
    stuck: [u64; 2],
}

fn metric(r: &Release, cohort: &str, name: &str) -> MetricSeries {
    MetricSeries {
        name: name.into(),
        cohort: cohort.into(),
        rollout_id: r.id.clone(),
        ..Default::default()
    }
}

async fn window(server: &InProcess, r: &Release, sequence: u64, w: Window) -> Release {
    let traffic = Traffic::new(2_000, 20);
    let mut report = window_report(
        r,
        INSTANCE,
        sequence,
        server.now(),
        MIN,
        traffic,
        Some(traffic),
    );
    for (i, cohort) in ["canary", "control"].into_iter().enumerate() {
        report.metrics.push(MetricSeries {
            successes: 2_000 - w.write_failures[i],
            failures: w.write_failures[i],
            requests: 2_000,
            ..metric(r, cohort, "mem0.write")
        });
        if w.stuck[i] > 0 {
            report.metrics.push(MetricSeries {
                count: w.stuck[i],
                sum: w.stuck[i] as f64,
                sum_of_squares: w.stuck[i] as f64,
                requests: w.stuck[i],
                request_sum_of_squares: w.stuck[i] as f64,
                ..metric(r, cohort, "workflow.stuck")
            });
        }
    }
    send(&mut server.metrics().await, report).await;
    server.advance(MIN);
    server.caught_up().await;
    get(&mut server.releases().await, &r.id, 1).await
}

fn last(r: &Release) -> &Decision {
    r.decisions.last().expect("a decision")
}

// Multi-threaded: the CLI runs as a child process the test waits for, while this process's
// server answers it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_mem0_write_gate_rolls_back_while_errors_and_latency_stay_normal() {
    let server = InProcess::start().await;
    let mut r = setup(&server).await;
    r.gates = vec![absolute(
        "write-success",
        "mem0.write",
        Comparison::GreaterThan,
        0.99,
    )];
    let mut r = launch(&mut server.releases().await, r).await;
    let healthy = || Window {
        write_failures: [6, 6],
        stuck: [0, 0],
    };
    let mut sequence = 0;
    while r.current_stage < 2 && state(&r) == ReleaseState::Running {
        sequence += 1;
        r = window(&server, &r, sequence, healthy()).await;
        assert!(sequence < 20, "the healthy stages never promoted: {r:?}");
    }
    assert_eq!(
        (state(&r), r.current_stage),
        (ReleaseState::Running, 2),
        "{:?}",
        last(&r)
    );
    let gate = &r.latest_decision.as_ref().unwrap().gates[0];
    assert_eq!(
        (gate.name.as_str(), gate.kind.as_str()),
        ("write-success", "absolute")
    );
    assert!(gate.passed && (gate.value - 0.997).abs() < 1e-9, "{gate:?}");

    // Stage 3: the canary's writes succeed 97 % of the time; requests are as healthy as ever.
    let broken = Window {
        write_failures: [60, 6],
        stuck: [0, 0],
    };
    r = window(&server, &r, sequence + 1, broken).await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:?}", last(&r));
    let decision = last(&r);
    assert_eq!(decision.reason_code, "GATE_BREACHED");
    assert_eq!(decision.step, 2);
    let gate = &decision.gates[0];
    assert!(!gate.passed && (gate.value - 0.97).abs() < 1e-9, "{gate:?}");
    assert!(
        decision.detail.contains("write-success"),
        "{}",
        decision.detail
    );
    // The gate decided, at step 1 of the judge, before the relative tests run: what shows
    // that errors and latency stayed normal is the cohorts' own numbers.
    let rate = |c: &str| {
        let s = decision.cohorts.iter().find(|s| s.cohort == c).unwrap();
        (s.error_rate, s.p95_us)
    };
    assert_eq!(rate("canary"), rate("control"), "{:?}", decision.cohorts);

    // `release status` shows the gates and each cohort's metrics the decision read.
    let out = cli(&server, &["release", "status", &r.id]).ok();
    let row = |start: &str| {
        out.lines()
            .find(|l| l.starts_with(start))
            .map(str::to_owned)
    };
    let gate = row("write-success").unwrap_or_else(|| panic!("{out}"));
    let cells: Vec<&str> = gate.split_whitespace().collect();
    assert_eq!(
        cells[..6],
        ["write-success", "absolute", "0.97", "-", "0.99", "no"],
        "{out}"
    );
    let canary = out
        .lines()
        .map(|l| l.split_whitespace().collect::<Vec<_>>())
        .find(|cells| cells[..] == ["canary", "mem0.write", "10000", "0.9916", "-", "-"]);
    assert!(
        canary.is_some(),
        "the canary's rate over the controlled stages: {out}"
    );

    // The window shows each cohort's rate.
    let window = r.windows.last().unwrap();
    let canary = window
        .cohorts
        .iter()
        .find(|c| c.cohort == "canary")
        .unwrap();
    let write = canary
        .metrics
        .iter()
        .find(|m| m.name == "mem0.write")
        .unwrap();
    assert_eq!((write.n, write.value), (2_000, 0.97));
}

#[tokio::test]
async fn a_two_tier_gate_holds_below_its_threshold_and_rolls_back_past_the_other() {
    let server = InProcess::start().await;
    let mut r = setup(&server).await;
    let mut completion = absolute("completion", "mem0.write", Comparison::GreaterThan, 0.99);
    if let Some(gate::Kind::Absolute(a)) = completion.kind.as_mut() {
        a.rollback_threshold = Some(0.95);
    }
    r.gates = vec![completion];
    let mut r = launch(&mut server.releases().await, r).await;
    // 98 %: not good enough to promote, not bad enough to roll back.
    let middling = || Window {
        write_failures: [40, 6],
        stuck: [0, 0],
    };
    for sequence in 1..=4 {
        r = window(&server, &r, sequence, middling()).await;
    }
    assert_eq!((state(&r), r.current_stage), (ReleaseState::Running, 0));
    let latest = r.latest_decision.clone().unwrap();
    assert_eq!(latest.reason_code, "GATE_NOT_MET", "{latest:?}");
    assert!(latest.repeats >= 2, "held window after window: {latest:?}");
    // Half the canary's writes fail: the stage's rate falls past 95 %.
    let bad = Window {
        write_failures: [1_000, 6],
        stuck: [0, 0],
    };
    r = window(&server, &r, 5, bad).await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:?}", last(&r));
    assert_eq!(last(&r).reason_code, "GATE_BREACHED");
}

#[tokio::test]
async fn a_count_gate_rolls_back_on_the_fourth_stuck_workflow() {
    let server = InProcess::start().await;
    let mut r = setup(&server).await;
    let mut stuck = absolute("stuck", "workflow.stuck", Comparison::LessOrEqual, 3.0);
    if let Some(gate::Kind::Absolute(a)) = stuck.kind.as_mut() {
        a.total = true;
    }
    r.gates = vec![stuck];
    let mut r = launch(&mut server.releases().await, r).await;
    let with = |canary| Window {
        write_failures: [6, 6],
        stuck: [canary, 1],
    };
    r = window(&server, &r, 1, with(3)).await;
    assert_eq!(state(&r), ReleaseState::Running, "{:?}", last(&r));
    assert_eq!(r.latest_decision.as_ref().unwrap().gates[0].value, 3.0);
    r = window(&server, &r, 2, with(1)).await;
    assert_eq!(state(&r), ReleaseState::RolledBack, "{:?}", last(&r));
    assert!(last(&r).detail.contains("stuck"), "{}", last(&r).detail);
}

#[tokio::test]
async fn definitions_a_running_release_gates_on_keep_their_kind_and_stay() {
    let server = InProcess::start().await;
    let mut r = setup(&server).await;
    r.gates = vec![absolute("w", "mem0.write", Comparison::GreaterThan, 0.9)];
    launch(&mut server.releases().await, r).await;
    let mut admin = server.admin().await;
    let as_mean = MetricDefinition {
        environment: "prod".into(),
        name: "mem0.write".into(),
        kind: MetricKind::Mean as i32,
        direction: MetricDirection::HigherIsBetter as i32,
        ..Default::default()
    };
    let rows = vec![
        table::row("changing the kind of a gated metric")
            .sends(DefineMetricRequest {
                metric: Some(as_mean),
                ..Default::default()
            })
            .answers(Code::FailedPrecondition, "gated on by active release"),
        table::row("deleting a gated metric")
            .sends(DeleteMetricRequest {
                environment: "prod".into(),
                name: "mem0.write".into(),
                reason: String::new(),
            })
            .answers(Code::FailedPrecondition, "gated on by active release"),
    ];
    table::assert_table(&mut admin, &rows).await;
}

#[tokio::test]
async fn bad_gates_are_refused_with_the_field() {
    let server = InProcess::start().await;
    let good = setup(&server).await;
    let mut client = server.releases().await;
    let gate_of = |kind| Gate {
        name: String::new(),
        kind: Some(kind),
    };
    let relative = |metric: &str, margin, quantile| {
        gate_of(gate::Kind::Relative(RelativeGate {
            metric: metric.into(),
            margin,
            quantile,
        }))
    };
    let prometheus = |query: &str, comparison: Comparison| {
        gate_of(gate::Kind::Prometheus(PrometheusGate {
            query: query.into(),
            comparison: comparison as i32,
            ..Default::default()
        }))
    };
    let mut two_tier = absolute("t", "mem0.write", Comparison::GreaterThan, 0.99);
    if let Some(gate::Kind::Absolute(a)) = two_tier.kind.as_mut() {
        a.rollback_threshold = Some(0.999);
    }
    let cases: Vec<(&str, Vec<Gate>, &str)> = vec![
        ("release.gates[0]", vec![gate_of_none()], "one of relative"),
        (
            "release.gates[0].relative.metric",
            vec![relative("nope", 0.0, 0.0)],
            "no metric \"nope\" is defined in \"prod\"",
        ),
        (
            "release.gates[0].relative.margin",
            vec![relative("mem0.write", -0.1, 0.0)],
            "must not be negative",
        ),
        (
            "release.gates[0].relative.quantile",
            vec![relative("mem0.write", 0.0, 0.5)],
            "only for DISTRIBUTION metrics",
        ),
        (
            "release.gates[0].absolute.comparison",
            vec![absolute("a", "mem0.write", Comparison::Unspecified, 0.9)],
            "required",
        ),
        (
            "release.gates[0].absolute.threshold",
            vec![absolute(
                "a",
                "mem0.write",
                Comparison::GreaterThan,
                f64::NAN,
            )],
            "finite",
        ),
        (
            "release.gates[0].absolute.rollbackThreshold",
            vec![two_tier],
            "failing side",
        ),
        (
            "release.gates[0].prometheus.query",
            vec![prometheus(" ", Comparison::LessThan)],
            "required",
        ),
        (
            "release.gates[1].name",
            vec![
                absolute("same", "mem0.write", Comparison::GreaterThan, 0.9),
                absolute("same", "mem0.write", Comparison::GreaterThan, 0.8),
            ],
            "taken",
        ),
        (
            "release.gates[0].name",
            vec![absolute(
                "Bad Name",
                "mem0.write",
                Comparison::GreaterThan,
                0.9,
            )],
            "lowercase",
        ),
    ];
    for (field, gates, says) in cases {
        let bad = Release {
            gates,
            ..good.clone()
        };
        let err = client
            .create_release(CreateReleaseRequest { release: Some(bad) })
            .await
            .unwrap_err();
        assert_eq!(err.code(), Code::InvalidArgument, "{field}: {err:?}");
        let expected = format!("invalid argument: {field}: ");
        assert!(
            err.message().starts_with(&expected) && err.message().contains(says),
            "{field}: {}",
            err.message()
        );
    }
    // A stage's gates are checked the same way, under the stage's path.
    let mut bad = good.clone();
    bad.stages[1].gates = vec![relative("nope", 0.0, 0.0)];
    let err = client
        .create_release(CreateReleaseRequest { release: Some(bad) })
        .await
        .unwrap_err();
    assert!(
        err.message()
            .starts_with("invalid argument: release.stages[1].gates[0].relative.metric: "),
        "{}",
        err.message()
    );
    // Prometheus gates need a server that knows where Prometheus is.
    let with_query = Release {
        gates: vec![prometheus("up", Comparison::GreaterThan)],
        ..good.clone()
    };
    let err = client
        .create_release(CreateReleaseRequest {
            release: Some(with_query),
        })
        .await
        .unwrap_err();
    assert_eq!(err.code(), Code::FailedPrecondition, "{err:?}");
    assert!(
        err.message().contains("--prometheus-url"),
        "{}",
        err.message()
    );
    let listed = client
        .list_releases(ListReleasesRequest::default())
        .await
        .unwrap()
        .into_inner()
        .releases;
    assert!(listed.is_empty(), "nothing was stored");
}

fn gate_of_none() -> Gate {
    Gate {
        name: "g".into(),
        kind: None,
    }
}
