use super::*;
use flagwire_proto::v1::{Environment, ExponentialHistogram, Flag, ReasonCount, Variant};

const ID: &str = "6f1c2a9e-4d3b-4c8a-9f00-0123456789ab";

fn state() -> State {
    let mut state = State::default();
    state.envs.insert(
        "prod".into(),
        Environment {
            key: "prod".into(),
            revision: 7,
            ..Default::default()
        },
    );
    let variant = |k: &str| Variant {
        key: k.into(),
        ..Default::default()
    };
    state.flags.insert(
        "checkout".into(),
        Flag {
            key: "checkout".into(),
            variants: vec![variant("on"), variant("off")],
            ..Default::default()
        },
    );
    state
}

fn histogram(values: &[u64]) -> ExponentialHistogram {
    let mut h = Histogram::new();
    values.iter().for_each(|v| h.record(*v));
    h.to_proto()
}

fn report(now: SystemTime) -> ReportRequest {
    ReportRequest {
        instance_id: ID.to_uppercase(),
        sequence: 1,
        applied_revision: 7,
        window_start: Some((now - Duration::from_secs(10)).into()),
        window_end: Some(now.into()),
        series: vec![Series {
            flag_key: "checkout".into(),
            variant: "on".into(),
            cohort: "canary".into(),
            evaluations: vec![ReasonCount {
                reason: "SPLIT".into(),
                count: 9,
            }],
            successes: 2,
            errors: 1,
            latency_us: Some(histogram(&[10, 20, 30])),
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn field(r: &ReportRequest, now: SystemTime) -> String {
    match validate(&state(), "prod", r.clone(), now) {
        Err(Error::Invalid(e)) => e.field,
        other => panic!("expected Invalid, got {other:?}"),
    }
}

#[test]
fn a_valid_report() {
    let now = SystemTime::now();
    let v = validate(&state(), "prod", report(now), now).unwrap();
    assert_eq!(v.instance_id, ID);
    assert_eq!(v.series[0].aggregate.evaluations, 9);
    assert_eq!(v.series[0].aggregate.latency.count(), 3);
    // Applied-revision-only reports carry neither series nor window.
    let bare = ReportRequest {
        instance_id: ID.into(),
        ..Default::default()
    };
    assert_eq!(
        validate(&state(), "prod", bare.clone(), now)
            .unwrap()
            .window,
        None
    );
    assert!(matches!(
        validate(&state(), "nope", bare, now),
        Err(Error::NotFound(_))
    ));
}

#[test]
fn every_rejection_names_its_field() {
    let now = SystemTime::now();
    let with = |f: &dyn Fn(&mut ReportRequest)| {
        let mut r = report(now);
        f(&mut r);
        field(&r, now)
    };
    assert_eq!(with(&|r| r.instance_id = "nope".into()), "instanceId");
    assert_eq!(
        with(&|r| r.instance_id = uuid::Uuid::nil().to_string()),
        "instanceId"
    );
    assert_eq!(with(&|r| r.sdk_name = "x".repeat(129)), "sdkName");
    assert_eq!(with(&|r| r.applied_revision = 8), "appliedRevision");
    assert_eq!(with(&|r| r.window_start = None), "windowStart");
    assert_eq!(with(&|r| r.window_end = None), "windowEnd");
    assert_eq!(
        with(&|r| r.window_end = Some((now - Duration::from_secs(60)).into())),
        "windowEnd"
    );
    assert_eq!(
        with(&|r| {
            r.window_start = Some(now.into());
            r.window_end = Some((now + Duration::from_secs(3600)).into());
        }),
        "windowEnd"
    );
    assert_eq!(
        with(&|r| r.series[0].flag_key = "other".into()),
        "series[0].flagKey"
    );
    assert_eq!(
        with(&|r| r.series[0].variant = "maybe".into()),
        "series[0].variant"
    );
    assert_eq!(
        with(&|r| r.series[0].variant = String::new()),
        "series[0].evaluations[0].reason"
    );
    assert_eq!(
        with(&|r| r.series[0].evaluations[0].reason = "LUCK".into()),
        "series[0].evaluations[0].reason"
    );
    assert_eq!(
        with(&|r| r.series[0].cohort = "c".repeat(200)),
        "series[0].cohort"
    );
    assert_eq!(
        with(&|r| r.series[0].latency_us.as_mut().unwrap().scale = 2),
        "series[0].latencyUs.scale"
    );
    assert_eq!(
        with(&|r| r.series[0].latency_us.as_mut().unwrap().count = 4),
        "series[0].latencyUs.count"
    );
    assert_eq!(
        with(&|r| r.series[0].latency_us.as_mut().unwrap().sum = -1.0),
        "series[0].latencyUs.sum"
    );
    assert_eq!(with(&|r| r.series[0].errors = 2), "series[0].successes");
    assert_eq!(
        with(&|r| {
            r.series.push(r.series[0].clone());
            r.series[1].latency_us.as_mut().unwrap().scale = 4;
        }),
        "series[1].latencyUs.scale"
    );
}

#[test]
fn errors_are_reported_without_a_variant() {
    let now = SystemTime::now();
    let mut r = report(now);
    r.series[0].variant = String::new();
    r.series[0].evaluations[0].reason = "ERROR".into();
    let v = validate(&state(), "prod", r, now).unwrap();
    assert_eq!(v.series[0].variant, "");
}
