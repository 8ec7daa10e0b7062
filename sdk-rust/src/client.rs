//! The client: typed getters over the current snapshot, readiness and change events.

use crate::builder::{ClientBuilder, Options};
use crate::context::Context;
use crate::details::EvaluationDetails;
use crate::error::Error;
use crate::metrics::Recorder;
use arc_swap::{ArcSwap, ArcSwapOption};
use flagwire_core::{Evaluation, Snapshot};
use flagwire_proto::v1::{ErrorCode, FlagValue, Reason, ValueType, flag_value::Kind};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{broadcast, watch};
use tokio::task::JoinHandle;

/// Where the client's copy of the flags stands.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum State {
    /// No snapshot yet; getters return defaults with `PROVIDER_NOT_READY`.
    Connecting,
    /// The stream is up and the copy is current.
    Ready,
    /// Disconnected (or started from a bootstrap file): serving the last good copy.
    Stale,
    /// The server refused the token; retried slowly, surfaced here rather than spun on.
    Error(String),
}

/// Flags that changed with one applied revision.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FlagChange {
    /// The revision now applied.
    pub revision: u64,
    /// Keys of the flags added, changed or removed (sorted).
    pub flags: Vec<String>,
}

/// What the client and its sync task share.
pub(crate) struct Shared {
    pub options: Options,
    // Readers load it without taking any lock; the sync task swaps whole snapshots in.
    pub snapshot: ArcSwapOption<Snapshot>,
    pub state: watch::Sender<State>,
    pub changes: broadcast::Sender<FlagChange>,
    pub instance_id: uuid::Uuid,
    pub shutdown: watch::Sender<bool>,
    /// Sequence numbers of this instance's `Report` calls (the server drops duplicates by them).
    pub sequence: std::sync::atomic::AtomicU64,
    /// Usage and outcome counters; `None` offline (there is nobody to report to).
    pub recorder: Option<Recorder>,
    /// When the current metrics window began.
    pub window_start: Mutex<std::time::SystemTime>,
    /// The channel reports go through (lazy; `None` offline): the current session's endpoint's,
    /// swapped by the sync task when a session moves to another endpoint.
    pub reports: Option<ArcSwap<tonic::transport::Channel>>,
}

impl Shared {
    pub(crate) fn new(
        options: Options,
        initial: Option<Snapshot>,
        state: State,
        reports: Option<tonic::transport::Channel>,
    ) -> Self {
        Self {
            recorder: reports.as_ref().map(|_| Recorder::default()),
            window_start: Mutex::new(std::time::SystemTime::now()),
            reports: reports.map(ArcSwap::from_pointee),
            options,
            snapshot: ArcSwapOption::new(initial.map(Arc::new)),
            state: watch::channel(state).0,
            changes: broadcast::channel(256).0,
            instance_id: uuid::Uuid::new_v4(),
            shutdown: watch::channel(false).0,
            sequence: std::sync::atomic::AtomicU64::new(0),
        }
    }
}

impl Shared {
    /// The channel reports go through now (`None` offline).
    pub(crate) fn reports_channel(&self) -> Option<tonic::transport::Channel> {
        self.reports
            .as_ref()
            .map(|r| tonic::transport::Channel::clone(&r.load()))
    }
}

// Dropped with the last Client clone: stops the sync task (linkerd's tonic-watch habit).
struct Handle {
    shared: Arc<Shared>,
    task: Mutex<Option<JoinHandle<()>>>,
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.shared.shutdown.send_replace(true);
    }
}

/// A Flagwire client. Cheap to clone; every clone shares one copy of the flags and one stream.
#[derive(Clone)]
pub struct Client {
    pub(crate) shared: Arc<Shared>,
    handle: Arc<Handle>,
}

impl std::fmt::Debug for Client {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Client")
            .field("endpoints", &self.shared.options.endpoints)
            .field("state", &self.state())
            .field("revision", &self.revision())
            .finish()
    }
}

fn not_ready<T>(default: T) -> EvaluationDetails<T> {
    EvaluationDetails {
        value: default,
        variant: None,
        reason: Reason::Error,
        error_code: Some(ErrorCode::ProviderNotReady),
        error_message: Some("no flags received yet".into()),
        flag_version: 0,
        cohort: None,
        rollout_id: None,
    }
}

impl Client {
    /// A builder for a client of the server at `endpoint` (`http://host:7070`; several separated
    /// by commas, or see [`ClientBuilder::endpoints`]) with an sdk token.
    pub fn builder(endpoint: impl Into<String>, sdk_token: impl Into<String>) -> ClientBuilder {
        ClientBuilder::new(endpoint.into(), sdk_token.into())
    }

    pub(crate) fn new(shared: Arc<Shared>, task: Option<JoinHandle<()>>) -> Self {
        let handle = Arc::new(Handle {
            shared: Arc::clone(&shared),
            task: Mutex::new(task),
        });
        Self { shared, handle }
    }

    /// Resolves once a snapshot is applied (state `Ready`); fails on timeout or a refused token.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<(), Error> {
        let mut states = self.shared.state.subscribe();
        let wait = states.wait_for(|s| matches!(s, State::Ready | State::Error(_)));
        match tokio::time::timeout(timeout, wait).await {
            Ok(Ok(state)) => match &*state {
                State::Error(message) => Err(Error::Unauthorized(message.clone())),
                _ => Ok(()),
            },
            Ok(Err(_)) | Err(_) => Err(Error::Timeout(timeout)),
        }
    }

    /// [`Client::wait_ready`] with the builder's `initial_ready_timeout`.
    pub async fn ready(&self) -> Result<(), Error> {
        self.wait_ready(self.shared.options.initial_ready_timeout)
            .await
    }

    /// The current state.
    pub fn state(&self) -> State {
        self.shared.state.borrow().clone()
    }

    /// A receiver that sees every state transition.
    pub fn states(&self) -> watch::Receiver<State> {
        self.shared.state.subscribe()
    }

    /// A receiver of flag-change events, one per applied revision.
    pub fn changes(&self) -> broadcast::Receiver<FlagChange> {
        self.shared.changes.subscribe()
    }

    /// The revision of the copy being served (0 before the first snapshot).
    pub fn revision(&self) -> u64 {
        self.shared
            .snapshot
            .load()
            .as_ref()
            .map_or(0, |s| s.revision())
    }

    /// This process's instance id, as the server's instance registry shows it.
    pub fn instance_id(&self) -> uuid::Uuid {
        self.shared.instance_id
    }

    /// Evaluates with the current snapshot; `None` before the first one.
    fn with<R>(
        &self,
        key: &str,
        ctx: &Context,
        ty: ValueType,
        f: impl FnOnce(&Evaluation<'_>) -> R,
    ) -> Option<R> {
        let guard = self.shared.snapshot.load();
        let snapshot = guard.as_ref()?;
        let r = snapshot.evaluate(key, &ctx.inner, Some(ty));
        self.record(key, &r);
        Some(f(&r))
    }

    /// Counts a served evaluation and remembers it in the request scope, if any. Errors carry
    /// no variant, and the server accepts only series of known variants: they are not counted.
    pub(crate) fn record(&self, key: &str, r: &Evaluation<'_>) {
        if r.variant.is_empty() {
            return;
        }
        if let Some(recorder) = &self.shared.recorder {
            recorder.evaluation(key, r.variant, r.cohort, r.rollout_id, r.reason);
        }
        crate::scope::remember(key, r.variant, r.cohort, r.rollout_id);
    }

    fn details<T>(
        &self,
        key: &str,
        ctx: &Context,
        ty: Option<ValueType>,
        default: T,
        pick: impl FnOnce(&FlagValue) -> Option<T>,
    ) -> EvaluationDetails<T> {
        let guard = self.shared.snapshot.load();
        let Some(snapshot) = guard.as_ref() else {
            return not_ready(default);
        };
        let r = snapshot.evaluate(key, &ctx.inner, ty);
        self.record(key, &r);
        let (value, r) = match r.value.map(pick) {
            Some(Some(v)) => (v, r),
            Some(None) => (
                default,
                Evaluation::error(
                    ErrorCode::TypeMismatch,
                    "value of another type",
                    r.flag_version,
                ),
            ),
            None => (default, r),
        };
        EvaluationDetails {
            value,
            variant: (!r.variant.is_empty()).then(|| r.variant.to_owned()),
            reason: r.reason,
            error_code: (r.error_code != ErrorCode::Unspecified).then_some(r.error_code),
            error_message: (!r.error_message.is_empty()).then(|| r.error_message.to_owned()),
            flag_version: r.flag_version,
            cohort: (!r.cohort.is_empty()).then(|| r.cohort.to_owned()),
            rollout_id: (!r.rollout_id.is_empty()).then(|| r.rollout_id.to_owned()),
        }
    }

    /// A boolean flag's value, or `default` on any problem. Allocation-free.
    pub fn bool_value(&self, key: &str, ctx: &Context, default: bool) -> bool {
        self.with(key, ctx, ValueType::Boolean, |r| {
            match r.value.and_then(|v| v.kind.as_ref()) {
                Some(Kind::BoolValue(b)) => *b,
                _ => default,
            }
        })
        .unwrap_or(default)
    }

    /// A string flag's value passed to `f` without copying it (or `default` on any problem).
    /// The allocation-free way to read a string flag.
    pub fn with_str_value<R>(
        &self,
        key: &str,
        ctx: &Context,
        default: &str,
        f: impl FnOnce(&str) -> R,
    ) -> R {
        let guard = self.shared.snapshot.load();
        let value = guard.as_ref().and_then(|s| {
            let r = s.evaluate(key, &ctx.inner, Some(ValueType::String));
            self.record(key, &r);
            match r.value {
                Some(FlagValue {
                    kind: Some(Kind::StringValue(v)),
                }) => Some(v.as_str()),
                _ => None,
            }
        });
        f(value.unwrap_or(default))
    }

    /// A string flag's value, or `default` on any problem.
    pub fn string_value(&self, key: &str, ctx: &Context, default: &str) -> String {
        self.with_str_value(key, ctx, default, str::to_owned)
    }

    /// An integer flag's value, or `default` on any problem.
    pub fn int_value(&self, key: &str, ctx: &Context, default: i64) -> i64 {
        self.with(key, ctx, ValueType::Integer, |r| {
            match r.value.and_then(|v| v.kind.as_ref()) {
                Some(Kind::IntValue(i)) => *i,
                _ => default,
            }
        })
        .unwrap_or(default)
    }

    /// A float flag's value, or `default` on any problem.
    pub fn float_value(&self, key: &str, ctx: &Context, default: f64) -> f64 {
        self.with(key, ctx, ValueType::Float, |r| {
            match r.value.and_then(|v| v.kind.as_ref()) {
                Some(Kind::FloatValue(f)) => *f,
                _ => default,
            }
        })
        .unwrap_or(default)
    }

    /// A JSON-object flag's value, or `default` on any problem.
    pub fn json_value(
        &self,
        key: &str,
        ctx: &Context,
        default: serde_json::Value,
    ) -> serde_json::Value {
        self.json_details(key, ctx, default).value
    }

    /// [`Client::bool_value`] with the facts behind it.
    pub fn bool_details(&self, key: &str, ctx: &Context, default: bool) -> EvaluationDetails<bool> {
        self.details(key, ctx, Some(ValueType::Boolean), default, |v| {
            match v.kind {
                Some(Kind::BoolValue(b)) => Some(b),
                _ => None,
            }
        })
    }

    /// [`Client::string_value`] with the facts behind it.
    pub fn string_details(
        &self,
        key: &str,
        ctx: &Context,
        default: &str,
    ) -> EvaluationDetails<String> {
        self.details(
            key,
            ctx,
            Some(ValueType::String),
            default.to_owned(),
            |v| match &v.kind {
                Some(Kind::StringValue(s)) => Some(s.clone()),
                _ => None,
            },
        )
    }

    /// [`Client::int_value`] with the facts behind it.
    pub fn int_details(&self, key: &str, ctx: &Context, default: i64) -> EvaluationDetails<i64> {
        self.details(key, ctx, Some(ValueType::Integer), default, |v| {
            match v.kind {
                Some(Kind::IntValue(i)) => Some(i),
                _ => None,
            }
        })
    }

    /// [`Client::float_value`] with the facts behind it.
    pub fn float_details(&self, key: &str, ctx: &Context, default: f64) -> EvaluationDetails<f64> {
        self.details(key, ctx, Some(ValueType::Float), default, |v| {
            match v.kind {
                Some(Kind::FloatValue(f)) => Some(f),
                _ => None,
            }
        })
    }

    /// [`Client::json_value`] with the facts behind it.
    pub fn json_details(
        &self,
        key: &str,
        ctx: &Context,
        default: serde_json::Value,
    ) -> EvaluationDetails<serde_json::Value> {
        self.details(key, ctx, Some(ValueType::Object), default, |v| {
            match &v.kind {
                Some(Kind::ObjectValue(s)) => Some(struct_json(s)),
                _ => None,
            }
        })
    }

    /// Any flag's value as JSON, without a type check (integers as JSON numbers): for generic
    /// tools that do not know a flag's type. Typed getters are the everyday API.
    pub fn value_details(
        &self,
        key: &str,
        ctx: &Context,
        default: serde_json::Value,
    ) -> EvaluationDetails<serde_json::Value> {
        self.details(key, ctx, None, default, |v| {
            Some(match &v.kind {
                Some(Kind::BoolValue(b)) => (*b).into(),
                Some(Kind::StringValue(s)) => s.clone().into(),
                Some(Kind::IntValue(i)) => (*i).into(),
                Some(Kind::FloatValue(f)) => {
                    serde_json::Number::from_f64(*f).map_or(serde_json::Value::Null, Into::into)
                }
                Some(Kind::ObjectValue(o)) => struct_json(o),
                None => return None,
            })
        })
    }

    /// Sends the metrics gathered so far now (they are also sent every flush interval and on
    /// close). Returns whether they were delivered.
    pub async fn flush(&self) -> bool {
        match self.shared.reports_channel() {
            Some(channel) => crate::report::flush(&self.shared, &channel).await,
            None => true,
        }
    }

    /// Flushes metrics, stops the sync task and waits for it.
    pub async fn close(&self) {
        self.flush().await;
        self.shared.shutdown.send_replace(true);
        let task = self.handle.task.lock().expect("poisoned").take();
        if let Some(task) = task {
            let _ = task.await;
        }
    }
}

fn value_json(v: &prost_types::Value) -> serde_json::Value {
    use prost_types::value::Kind as V;
    match &v.kind {
        Some(V::NullValue(_)) | None => serde_json::Value::Null,
        Some(V::NumberValue(n)) => {
            serde_json::Number::from_f64(*n).map_or(serde_json::Value::Null, Into::into)
        }
        Some(V::StringValue(s)) => s.clone().into(),
        Some(V::BoolValue(b)) => (*b).into(),
        Some(V::StructValue(s)) => struct_json(s),
        Some(V::ListValue(l)) => l.values.iter().map(value_json).collect(),
    }
}

pub(crate) fn struct_json(s: &prost_types::Struct) -> serde_json::Value {
    s.fields
        .iter()
        .map(|(k, v)| (k.clone(), value_json(v)))
        .collect::<serde_json::Map<_, _>>()
        .into()
}
