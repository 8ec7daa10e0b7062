//! The background task: runs `Watch`, applies snapshots and changes in revision order, resumes
//! with `since_revision` after a disconnect (on the next endpoint when there are several),
//! reconnects with capped exponential backoff and jitter, treats missed heartbeats as a dead
//! connection, and acknowledges applied revisions.
//! The rules are `docs/reference/sync.md`'s; `tests/sync/` pins them (the runner is
//! `sync_scenarios`).

use crate::bootstrap;
use crate::client::{FlagChange, Shared, State};
use crate::endpoints::Endpoints;
use flagwire_core::Snapshot;
use flagwire_proto::grpc::flag_service_client::FlagServiceClient;
use flagwire_proto::grpc::metrics_service_client::MetricsServiceClient;
use flagwire_proto::v1::{WatchRequest, watch_response::Event};
use rand::Rng;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;
use tonic::transport::Channel;
use tonic::{Code, Request, Status};

/// The SDK's name as the server's instance registry shows it.
pub(crate) const SDK_NAME: &str = "flagwire-rust";

/// Wait before resending an acknowledgement that failed for a reason other than a refusal.
const ACK_RETRY: Duration = Duration::from_millis(250);

/// A connection being made for one session.
pub(crate) type Connecting =
    Pin<Box<dyn Future<Output = Result<Channel, tonic::transport::Error>> + Send>>;

/// How each session gets its connection: a new one per session, as after a server restart.
pub(crate) enum Dial {
    /// The configured endpoints (TCP, TLS), the current one; boxed, being much larger than the
    /// other variant.
    Endpoints(Box<Endpoints>),
    /// Anything else that makes channels: the scenario tests' in-memory pipes.
    #[cfg_attr(not(test), allow(dead_code))]
    With(Arc<dyn Fn() -> Connecting + Send + Sync>),
}

impl Dial {
    /// Connects to the current endpoint. When it is not the one reports go to, reports move
    /// there too (a lazy channel: the session's own connection is not shared with them, as
    /// before there were several endpoints).
    async fn connect(
        &mut self,
        shared: &Shared,
        reports_at: &mut Option<String>,
    ) -> Result<Channel, tonic::transport::Error> {
        match self {
            Self::Endpoints(endpoints) => {
                let target = endpoints.current().await;
                if reports_at.as_deref() != Some(target.key.as_str()) {
                    if let Some(reports) = &shared.reports {
                        reports.store(Arc::new(target.endpoint.connect_lazy()));
                    }
                    *reports_at = Some(target.key.clone());
                }
                target.endpoint.connect().await
            }
            Self::With(dial) => dial().await,
        }
    }

    /// The next session goes to the next endpoint.
    fn rotate(&mut self) {
        if let Self::Endpoints(endpoints) = self {
            endpoints.advance();
        }
    }
}

/// Why a session ended.
enum End {
    /// The server refused the token: wait long, do not spin.
    Refused(String),
    /// Anything else; `ready` when the session reached `Ready` (which resets the backoff).
    Failed { reason: String, ready: bool },
    /// The client is closing.
    Shutdown,
}

/// `message` with the client's bearer token.
pub(crate) fn request<T>(shared: &Shared, message: T) -> Request<T> {
    let mut request = Request::new(message);
    if let Ok(value) = format!("Bearer {}", shared.options.token).parse() {
        request.metadata_mut().insert("authorization", value);
    }
    request
}

fn refused(status: &Status) -> bool {
    matches!(
        status.code(),
        Code::Unauthenticated | Code::PermissionDenied
    )
}

/// Runs until the client closes.
pub(crate) async fn run(shared: Arc<Shared>, mut dial: Dial) {
    let acks = Arc::new(Acker::new(Arc::clone(&shared)));
    let mut shutdown = shared.shutdown.subscribe();
    let mut delay = shared.options.min_backoff;
    // Where reports go: the builder connects them to the first endpoint as configured.
    let mut reports_at = shared.options.endpoints.first().cloned();
    loop {
        let end = tokio::select! {
            end = session(&shared, &mut dial, &mut reports_at, &acks) => end,
            _ = shutdown.wait_for(|s| *s) => End::Shutdown,
        };
        let wait = match end {
            End::Shutdown => return,
            End::Refused(message) => {
                tracing::warn!(%message, "flagwire: token refused; retrying slowly");
                shared.state.send_replace(State::Error(message));
                shared.options.max_backoff
            }
            End::Failed { reason, ready } => {
                tracing::debug!(%reason, "flagwire: stream ended; reconnecting");
                // The next session goes to the next endpoint (replica), if there are several;
                // a refusal would be the same on every replica, so it stays.
                dial.rotate();
                let state = if shared.snapshot.load().is_some() {
                    State::Stale
                } else {
                    State::Connecting
                };
                shared.state.send_replace(state);
                if ready {
                    delay = shared.options.min_backoff;
                }
                let current = delay;
                delay = (delay * 2).min(shared.options.max_backoff);
                // Full jitter in [d/2, d]: spreads a fleet reconnecting after a server restart.
                let millis = current.as_millis().max(2) as u64;
                Duration::from_millis(rand::rng().random_range(millis / 2..=millis))
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = shutdown.wait_for(|s| *s) => return,
        }
    }
}

async fn session(
    shared: &Arc<Shared>,
    dial: &mut Dial,
    reports_at: &mut Option<String>,
    acks: &Arc<Acker>,
) -> End {
    let failed = |reason: String, ready| End::Failed { reason, ready };
    let channel = match dial.connect(shared, reports_at).await {
        Ok(c) => c,
        Err(e) => return failed(format!("connect: {e}"), false),
    };
    let since = shared.snapshot.load().as_ref().map_or(0, |s| s.revision());
    let watch = WatchRequest {
        environment: shared.options.environment.clone(),
        since_revision: since,
        instance_id: shared.instance_id.to_string(),
        sdk_name: SDK_NAME.into(),
        sdk_version: env!("CARGO_PKG_VERSION").into(),
    };
    // The heartbeat timeout runs from the start of the call (a server that never answers is
    // as dead as a silent stream) and again from each message.
    let timeout = shared.options.heartbeat_timeout;
    let mut deadline = Instant::now() + timeout;
    let mut flags = FlagServiceClient::new(channel);
    let call = flags.watch(request(shared, watch));
    let mut stream = match tokio::time::timeout_at(deadline, call).await {
        Err(_) => return failed("no answer within the heartbeat timeout".into(), false),
        Ok(Ok(r)) => r.into_inner(),
        Ok(Err(s)) if refused(&s) => return End::Refused(s.message().to_owned()),
        Ok(Err(s)) => return failed(format!("watch: {s}"), false),
    };
    let mut ready = false;
    loop {
        let message = match tokio::time::timeout_at(deadline, stream.message()).await {
            Err(_) => return failed("no message within the heartbeat timeout".into(), ready),
            Ok(Err(s)) if refused(&s) => return End::Refused(s.message().to_owned()),
            Ok(Err(s)) => return failed(format!("stream: {s}"), ready),
            Ok(Ok(None)) => return failed("stream ended".into(), ready),
            Ok(Ok(Some(m))) => m,
        };
        deadline = Instant::now() + timeout;
        let current = shared.snapshot.load_full();
        let (next, changed) = match message.event {
            Some(Event::Snapshot(s)) => {
                let next = Snapshot::from_proto(s);
                let changed = match &current {
                    Some(old) => old.changed_flags(&next),
                    None => next.flag_keys().into_iter().map(str::to_owned).collect(),
                };
                (next, changed)
            }
            Some(Event::Change(c)) => {
                let Some(old) = current else {
                    return failed("a change arrived before any snapshot".into(), ready);
                };
                let mut next = (*old).clone();
                if let Err(e) = next.apply(&c) {
                    // Reconnecting resumes from what we hold; the server fills the gap.
                    return failed(e.to_string(), ready);
                }
                (next, next_keys(&old, &c))
            }
            Some(Event::Heartbeat(h)) => {
                let held = current.as_ref().map_or(0, |s| s.revision());
                if h.revision > held {
                    return failed(
                        format!("heartbeat at {} but holding {held}", h.revision),
                        ready,
                    );
                }
                if current.is_some() {
                    // The copy is confirmed current: the session is healthy, and a copy never
                    // acknowledged (a bootstrap) is acknowledged now.
                    ready = true;
                    if *shared.state.borrow() != State::Ready {
                        shared.state.send_replace(State::Ready);
                    }
                    acks.applied(held);
                }
                continue;
            }
            None => continue,
        };
        ready = true;
        let revision = next.revision();
        let next = Arc::new(next);
        shared.snapshot.store(Some(Arc::clone(&next)));
        // Announce before declaring Ready, so whoever subscribes after `wait_ready` returns sees
        // only later revisions.
        let _ = shared.changes.send(FlagChange {
            revision,
            flags: changed,
        });
        shared.state.send_replace(State::Ready);
        acks.applied(revision);
        if let Some(path) = shared.options.bootstrap_file.clone() {
            let persist = tokio::task::spawn_blocking(move || bootstrap::save(&path, &next)).await;
            if let Ok(Err(e)) = persist {
                tracing::warn!(error = %e, "flagwire: could not persist the bootstrap file");
            }
        }
    }
}

fn next_keys(old: &Snapshot, change: &flagwire_proto::v1::Change) -> Vec<String> {
    use flagwire_proto::v1::change::Kind;
    match &change.kind {
        Some(Kind::FlagUpserted(f)) => vec![f.key.clone()],
        Some(Kind::FlagsUpserted(batch)) => batch.flags.iter().map(|f| f.key.clone()).collect(),
        Some(Kind::FlagDeleted(k)) => vec![k.clone()],
        // A segment change can alter any flag that uses it; listeners re-read what they need.
        Some(Kind::SegmentUpserted(_) | Kind::SegmentDeleted(_)) => {
            old.flag_keys().into_iter().map(str::to_owned).collect()
        }
        None => Vec::new(),
    }
}

/// Tells the server which revision this instance has applied, through `MetricsService.Report`
/// (docs/reference/sync.md, "Applied-revision acknowledgements"): the primitive that confirms
/// a rollback reached everyone.
pub(crate) struct Acker {
    applied: tokio::sync::watch::Sender<u64>,
}

impl Acker {
    fn new(shared: Arc<Shared>) -> Self {
        let (applied, rx) = tokio::sync::watch::channel(0);
        tokio::spawn(ack_loop(shared, rx));
        Self { applied }
    }

    fn applied(&self, revision: u64) {
        self.applied.send_replace(revision);
    }
}

async fn ack_loop(shared: Arc<Shared>, mut applied: tokio::sync::watch::Receiver<u64>) {
    if shared.reports.is_none() {
        return;
    }
    let mut shutdown = shared.shutdown.subscribe();
    let mut acked = 0u64;
    loop {
        tokio::select! {
            changed = applied.changed() => if changed.is_err() { return },
            _ = shutdown.wait_for(|s| *s) => return,
        }
        // No timer: a kill switch is confirmed only when every instance has said so
        // (BENCHMARKS.md, "kill switch"). One report in flight at a time; whatever was applied
        // meanwhile is read when it returns, so a burst costs one more report. "Differs", not
        // "is greater": a server restored from a backup sends a lower revision.
        loop {
            let revision = *applied.borrow_and_update();
            if revision == acked {
                break;
            }
            let report = crate::report::report_base(&shared, revision);
            let Some(channel) = shared.reports_channel() else {
                return;
            };
            let wait = match MetricsServiceClient::new(channel)
                .report(request(&shared, report))
                .await
            {
                Ok(_) => {
                    acked = revision;
                    continue;
                }
                // Resending would be refused the same way: this revision is given up.
                Err(s) if matches!(s.code(), Code::Unimplemented | Code::InvalidArgument) => {
                    acked = revision;
                    continue;
                }
                Err(s) if refused(&s) => shared.options.max_backoff,
                Err(s) => {
                    tracing::debug!(status = %s, "flagwire: applied-revision report failed");
                    ACK_RETRY
                }
            };
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                _ = shutdown.wait_for(|s| *s) => return,
            }
        }
    }
}
