//! The in-memory server the scenarios script: the generated `FlagService` and `MetricsService`
//! servers, served over `tokio::io::duplex` pipes that the client dials through a connector
//! (one pipe per connection, so every session opens a new one, as over TCP). Every Watch call
//! and every acknowledgement (a Report without series) is queued, stamped with the (paused)
//! clock, for the runner to match and answer; nothing is sent or answered until it says so.

use crate::sync::{Connecting, Dial};
use flagwire_proto::grpc::flag_service_server::{FlagService, FlagServiceServer};
use flagwire_proto::grpc::metrics_service_server::{MetricsService, MetricsServiceServer};
use flagwire_proto::v1::*;
use futures::Stream;
use std::pin::Pin;
use std::sync::Arc;
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;
use tonic::transport::{Channel, Endpoint, Server, Uri};
use tonic::{Request, Response, Status};

/// What the runner tells one Watch call: a message, or the status that ends it (`Ok` = clean).
pub enum Command {
    Send(Box<WatchResponse>),
    End(Result<(), Status>),
}

/// One Watch call, as the runner sees it.
pub struct WatchCall {
    pub request: WatchRequest,
    pub at: Instant,
    pub commands: mpsc::UnboundedSender<Command>,
}

/// One acknowledgement, waiting for the runner's answer.
pub struct AckCall {
    pub request: ReportRequest,
    pub at: Instant,
    pub reply: oneshot::Sender<Result<(), Status>>,
}

/// The services; they hand every call to the runner.
#[derive(Clone)]
pub struct Fake {
    watches: mpsc::UnboundedSender<WatchCall>,
    acks: mpsc::UnboundedSender<AckCall>,
}

/// The runner's side: the calls, in the order the client made them.
pub struct Calls {
    pub watches: mpsc::UnboundedReceiver<WatchCall>,
    pub acks: mpsc::UnboundedReceiver<AckCall>,
}

type Messages = Pin<Box<dyn Stream<Item = Result<WatchResponse, Status>> + Send>>;

/// The rest of a call's messages, ending after the first error.
fn messages(first: WatchResponse, commands: mpsc::UnboundedReceiver<Command>) -> Messages {
    let rest = futures::stream::unfold(Some(commands), |commands| async move {
        let mut commands = commands?;
        match commands.recv().await? {
            Command::Send(m) => Some((Ok(*m), Some(commands))),
            Command::End(Ok(())) => None,
            Command::End(Err(status)) => Some((Err(status), None)),
        }
    });
    Box::pin(futures::StreamExt::chain(
        futures::stream::once(async move { Ok(first) }),
        rest,
    ))
}

#[tonic::async_trait]
impl FlagService for Fake {
    type WatchStream = Messages;

    async fn watch(&self, r: Request<WatchRequest>) -> Result<Response<Messages>, Status> {
        let (tx, mut commands) = mpsc::unbounded_channel();
        let call = WatchCall {
            request: r.into_inner(),
            at: Instant::now(),
            commands: tx,
        };
        let _ = self.watches.send(call);
        // No headers before the first command: an error first is the call's own answer
        // (trailers only), as the server refuses a token.
        match commands.recv().await {
            None => Err(Status::cancelled("the runner is gone")),
            Some(Command::End(Err(status))) => Err(status),
            Some(Command::End(Ok(()))) => Ok(Response::new(Box::pin(futures::stream::empty()))),
            Some(Command::Send(first)) => Ok(Response::new(messages(*first, commands))),
        }
    }

    async fn evaluate(
        &self,
        _: Request<EvaluateRequest>,
    ) -> Result<Response<EvaluateResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn evaluate_all(
        &self,
        _: Request<EvaluateAllRequest>,
    ) -> Result<Response<EvaluateAllResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

#[tonic::async_trait]
impl MetricsService for Fake {
    async fn report(&self, r: Request<ReportRequest>) -> Result<Response<ReportResponse>, Status> {
        let request = r.into_inner();
        // Metrics windows are not part of the sync rules; only acknowledgements are scripted.
        if request.series.is_empty() {
            let (reply, answer) = oneshot::channel();
            let at = Instant::now();
            let _ = self.acks.send(AckCall { request, at, reply });
            answer
                .await
                .map_err(|_| Status::cancelled("the runner is gone"))??;
        }
        Ok(Response::new(ReportResponse { accepted: true }))
    }

    async fn report_batch(
        &self,
        _: Request<ReportBatchRequest>,
    ) -> Result<Response<ReportBatchResponse>, Status> {
        // The SDK acknowledges with unary `Report` calls; a batch is for relays.
        Err(Status::unimplemented("not scripted"))
    }

    async fn get_usage(
        &self,
        _: Request<GetUsageRequest>,
    ) -> Result<Response<GetUsageResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn list_instances(
        &self,
        _: Request<ListInstancesRequest>,
    ) -> Result<Response<ListInstancesResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }

    async fn count_applied_instances(
        &self,
        _: Request<CountAppliedInstancesRequest>,
    ) -> Result<Response<CountAppliedInstancesResponse>, Status> {
        Err(Status::unimplemented("not scripted"))
    }
}

impl Fake {
    /// The services and the runner's end of them.
    pub fn new() -> (Self, Calls) {
        let (watches, watch_rx) = mpsc::unbounded_channel();
        let (acks, ack_rx) = mpsc::unbounded_channel();
        let calls = Calls {
            watches: watch_rx,
            acks: ack_rx,
        };
        (Self { watches, acks }, calls)
    }

    /// A connector that serves each new connection on a new in-memory pipe.
    fn connector(
        &self,
    ) -> impl tower::Service<
        Uri,
        Response = hyper_util::rt::TokioIo<tokio::io::DuplexStream>,
        Error = std::io::Error,
        Future = impl Send,
    > + Clone
    + Send
    + 'static {
        let fake = self.clone();
        tower::service_fn(move |_: Uri| {
            let fake = fake.clone();
            async move {
                let (client, server) = tokio::io::duplex(1 << 16);
                tokio::spawn(
                    Server::builder()
                        .add_service(FlagServiceServer::new(fake.clone()))
                        .add_service(MetricsServiceServer::new(fake))
                        .serve_with_incoming(tokio_stream::once(Ok::<_, std::io::Error>(server))),
                );
                Ok(hyper_util::rt::TokioIo::new(client))
            }
        })
    }

    /// How the client's sessions connect, and its (lazy) report channel.
    pub fn transport(&self) -> (Dial, Channel) {
        let endpoint = Endpoint::from_static("http://in-memory.invalid");
        let reports = endpoint.connect_with_connector_lazy(self.connector());
        let connector = self.connector();
        let dial = Dial::With(Arc::new(move || -> Connecting {
            let endpoint = endpoint.clone();
            let connector = connector.clone();
            Box::pin(async move { endpoint.connect_with_connector(connector).await })
        }));
        (dial, reports)
    }
}
