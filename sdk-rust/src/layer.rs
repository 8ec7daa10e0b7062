//! A `tower::Layer` that measures every request (duration; error = `Err` or a server-error
//! response) and attributes it to the flags evaluated while handling that request.
//!
//! The request scope is a Tokio task-local set around the inner service's future, so flags read
//! by the handler (in the same task) are remembered; work spawned onto other tasks is not.

use crate::client::Client;
use crate::metrics::Served;
use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Instant;

tokio::task_local! {
    static SCOPE: RefCell<Vec<Served>>;
}

/// Remembers a served flag in the current request scope, if there is one.
pub(crate) fn remember(flag: &str, variant: &str, cohort: &str, rollout_id: &str) {
    let _ = SCOPE.try_with(|scope| {
        let mut scope = scope.borrow_mut();
        let seen = scope
            .iter()
            .any(|s| s.flag == flag && s.variant == variant && s.cohort == cohort);
        // One split serves one rollout at a time, so (flag, variant, cohort) identifies it.
        if !seen {
            scope.push(Served {
                flag: flag.to_owned(),
                variant: variant.to_owned(),
                cohort: cohort.to_owned(),
                rollout_id: rollout_id.to_owned(),
            });
        }
    });
}

/// Whether a response counts as a failed outcome.
pub trait ResponseOutcome {
    /// True for server errors: HTTP 5xx, or a gRPC status the server is to blame for
    /// (UNKNOWN, DEADLINE_EXCEEDED, INTERNAL, UNAVAILABLE, DATA_LOSS) in the headers.
    fn is_server_error(&self) -> bool;
}

impl<B> ResponseOutcome for http::Response<B> {
    fn is_server_error(&self) -> bool {
        let grpc = self
            .headers()
            .get("grpc-status")
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u8>().ok());
        self.status().is_server_error() || matches!(grpc, Some(2 | 4 | 13 | 14 | 15))
    }
}

/// Measures requests through the wrapped service against the flags they read.
#[derive(Clone)]
pub struct FlagwireLayer {
    client: Client,
}

impl FlagwireLayer {
    /// A layer recording into `client`'s metrics.
    pub fn new(client: Client) -> Self {
        Self { client }
    }
}

impl<S> tower::Layer<S> for FlagwireLayer {
    type Service = FlagwireService<S>;
    fn layer(&self, inner: S) -> Self::Service {
        FlagwireService {
            inner,
            client: self.client.clone(),
        }
    }
}

/// The service [`FlagwireLayer`] produces.
#[derive(Clone)]
pub struct FlagwireService<S> {
    inner: S,
    client: Client,
}

impl<S, R> tower::Service<R> for FlagwireService<S>
where
    S: tower::Service<R> + Clone + Send + 'static,
    S::Future: Send + 'static,
    S::Response: ResponseOutcome + Send + 'static,
    S::Error: Send + 'static,
    R: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<S::Response, S::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: R) -> Self::Future {
        // The clone was not readied; swap so the readied service handles this call.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let client = self.client.clone();
        Box::pin(SCOPE.scope(RefCell::new(Vec::new()), async move {
            let started = Instant::now();
            let result = inner.call(request).await;
            let ok = match &result {
                Ok(response) => !response.is_server_error(),
                Err(_) => false,
            };
            let served = SCOPE.with(|s| std::mem::take(&mut *s.borrow_mut()));
            client.outcomes(&served, ok, started.elapsed());
            result
        }))
    }
}
