//! A `tower::Layer` that measures every request (duration; error = `Err` or a server-error
//! response) and attributes it to the flags evaluated while handling that request, and once
//! to each release cohort they served.
//!
//! Each request is a scope (`scope`): a Tokio task-local set around the inner service's
//! future, so flags read by the handler (in the same task) are remembered; work spawned onto
//! other tasks is not.

use crate::client::Client;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

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
        Box::pin(async move {
            let ok = |result: &Result<S::Response, S::Error>| match result {
                Ok(response) => !response.is_server_error(),
                Err(_) => false,
            };
            // `call` runs inside the scope too: a service may read flags before its future.
            let work = async move { inner.call(request).await };
            crate::scope::run(&client, Vec::new(), work, ok).await
        })
    }
}
