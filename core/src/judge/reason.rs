//! Why the judge decided what it did: one stable code per cause, shown in decision logs and
//! dashboards and matched by scripts.

/// The cause of a decision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reason {
    /// The canary's error rate exceeds control's (sequential test).
    ErrorRateRegression,
    /// The canary's error rate is at least the critical multiple of control's.
    CriticalErrorRate,
    /// More canary requests than control's exceed a control latency quantile.
    LatencyRegression,
    /// The canary breaches an absolute error-rate ceiling.
    MaxErrorRate,
    /// A relative gate finds the canary worse than control on one of the team's metrics.
    MetricRegression,
    /// The canary breaches an absolute gate or a Prometheus gate.
    GateBreached,
    /// A two-tier gate's threshold is not met (its rollback threshold is not breached): hold.
    GateNotMet,
    /// A Prometheus gate could not be evaluated (held; rolled back after the gate's failures).
    GateUnavailable,
    /// The canary breaches an absolute success-rate floor.
    MinSuccessRate,
    /// The canary's p95 exceeds the absolute ceiling.
    MaxP95Latency,
    /// The canary's p99 exceeds the absolute ceiling.
    MaxP99Latency,
    /// The canary reported nothing past the policy's grace period.
    NoCanaryData,
    /// Both cohorts breach an absolute guardrail: an incident, not the canary's fault.
    GlobalIncident,
    /// Canary and control sizes differ more than chance allows.
    SampleRatioMismatch,
    /// A cohort stopped reporting.
    MissingData,
    /// Too many late reports or dropped series to trust the data.
    DataQuality,
    /// The step's minimum duration has not passed.
    MinDuration,
    /// The step's minimum outcomes per cohort are not there yet.
    InsufficientData,
    /// Waiting for non-inferiority to be shown before the step's max duration.
    AwaitingNonInferiority,
    /// A step without control holds until its max duration (nothing to show non-inferiority).
    AwaitingMaxDuration,
    /// The step reached its max duration and the policy holds.
    MaxDurationReached,
    /// Ready to promote; the policy waits for a human.
    AwaitingApproval,
    /// Minimums met with no regression.
    StepHealthy,
    /// Non-inferiority shown.
    NonInferior,
    /// Max duration reached without a regression; the policy promotes.
    MaxDurationPromote,
}

impl Reason {
    /// The stable code, e.g. `ERROR_RATE_REGRESSION`.
    pub fn code(self) -> &'static str {
        match self {
            Reason::ErrorRateRegression => "ERROR_RATE_REGRESSION",
            Reason::CriticalErrorRate => "CRITICAL_ERROR_RATE",
            Reason::LatencyRegression => "LATENCY_REGRESSION",
            Reason::MaxErrorRate => "MAX_ERROR_RATE",
            Reason::MinSuccessRate => "MIN_SUCCESS_RATE",
            Reason::MetricRegression => "METRIC_REGRESSION",
            Reason::GateBreached => "GATE_BREACHED",
            Reason::GateUnavailable => "GATE_UNAVAILABLE",
            Reason::GateNotMet => "GATE_NOT_MET",
            Reason::MaxP95Latency => "MAX_P95_LATENCY",
            Reason::MaxP99Latency => "MAX_P99_LATENCY",
            Reason::NoCanaryData => "NO_CANARY_DATA",
            Reason::GlobalIncident => "GLOBAL_INCIDENT",
            Reason::SampleRatioMismatch => "SAMPLE_RATIO_MISMATCH",
            Reason::MissingData => "MISSING_DATA",
            Reason::DataQuality => "DATA_QUALITY",
            Reason::MinDuration => "MIN_DURATION",
            Reason::InsufficientData => "INSUFFICIENT_DATA",
            Reason::AwaitingNonInferiority => "AWAITING_NON_INFERIORITY",
            Reason::AwaitingMaxDuration => "AWAITING_MAX_DURATION",
            Reason::MaxDurationReached => "MAX_DURATION_REACHED",
            Reason::AwaitingApproval => "AWAITING_APPROVAL",
            Reason::StepHealthy => "STEP_HEALTHY",
            Reason::NonInferior => "NON_INFERIOR",
            Reason::MaxDurationPromote => "MAX_DURATION_PROMOTE",
        }
    }
}
