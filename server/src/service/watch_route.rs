//! `flagwire.v1.FlagService` as registered with the server: the generated service, except
//! that Watch writes [`WatchFrame`](super::watch_stream::WatchFrame)s itself.
//!
//! tonic's generated Watch encodes every message of every stream (a clone and a prost encode
//! per watcher for each change) into a buffer of 8 KiB per stream, kept for the stream's
//! life and grown to the largest snapshot the stream ever sent. Here a live change is the
//! hub's frame, encoded once per environment, and the same refcounted bytes become one HTTP/2
//! DATA frame on every watcher's stream; snapshots, catch-up changes and heartbeats get an
//! allocation of their own size, freed once written. The wire is unchanged: the same
//! length-prefixed messages, `application/grpc`, and `grpc-status` in the trailers (or in
//! the headers of a refusal). Everything else (the other methods, request decoding, the
//! handler's errors) is tonic's; reflection, gRPC-web, auth and health are layers and
//! services around this one and do not see the difference.

use super::flags::Flags;
use super::watch_stream::WatchFrames;
use bytes::Bytes;
use flagwire_proto::grpc::flag_service_server::FlagServiceServer;
use flagwire_proto::v1::{WatchRequest, WatchResponse};
use futures::Stream;
use http_body::Frame;
use std::convert::Infallible;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use tonic::body::Body;
use tonic::codec::{BufferSettings, Streaming};
use tonic::codegen::{BoxFuture, Service, StdError};
use tonic::metadata::GRPC_CONTENT_TYPE;
use tonic::server::NamedService;
use tonic::{Request, Status};
use tonic_prost::ProstCodec;

const WATCH: &str = "/flagwire.v1.FlagService/Watch";

/// FlagService with Watch served from pre-encoded frames (see the module documentation).
#[derive(Clone)]
pub struct FlagRoutes {
    generated: FlagServiceServer<Flags>,
    flags: Arc<Flags>,
}

impl FlagRoutes {
    /// Serves `flags`.
    pub fn new(flags: Flags) -> Self {
        let flags = Arc::new(flags);
        Self {
            generated: FlagServiceServer::from_arc(Arc::clone(&flags)),
            flags,
        }
    }
}

impl NamedService for FlagRoutes {
    const NAME: &'static str = <FlagServiceServer<Flags> as NamedService>::NAME;
}

impl<B> Service<http::Request<B>> for FlagRoutes
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    type Response = http::Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<Self::Response, Self::Error>;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: http::Request<B>) -> Self::Future {
        if request.uri().path() != WATCH {
            return self.generated.call(request);
        }
        let flags = Arc::clone(&self.flags);
        Box::pin(async move {
            Ok(match watch(&flags, request).await {
                Ok(response) => response,
                Err(status) => status.into_http(),
            })
        })
    }
}

/// Decodes the request as tonic's server-streaming path does (no request compression is
/// accepted, the default 4 MiB limit), opens the stream and answers with its frames.
async fn watch<B>(flags: &Flags, request: http::Request<B>) -> Result<http::Response<Body>, Status>
where
    B: http_body::Body + Send + 'static,
    B::Error: Into<StdError> + Send + 'static,
{
    let (mut parts, body) = request.into_parts();
    // As tonic answers a compressed request to a service that accepts no compression.
    if let Some(encoding) = parts.headers.get("grpc-encoding")
        && encoding.as_bytes() != b"identity"
    {
        let mut status = Status::unimplemented(format!(
            "Content is compressed with `{}` which isn't supported",
            String::from_utf8_lossy(encoding.as_bytes())
        ));
        status.metadata_mut().insert(
            "grpc-accept-encoding",
            tonic::metadata::MetadataValue::from_static("identity"),
        );
        return Err(status);
    }
    let decoder = ProstCodec::<WatchResponse, WatchRequest>::raw_decoder(BufferSettings::default());
    let mut messages = Streaming::new_request(decoder, body, None, None);
    let message = messages
        .message()
        .await?
        .ok_or_else(|| Status::internal("Missing request message."))?;
    // Trailers of the request join its metadata, as tonic merges them.
    if let Some(trailers) = messages.trailers().await? {
        parts.headers.extend(trailers.into_headers());
    }
    let request = Request::from_http(http::Request::from_parts(parts, message));
    let (metadata, stream, extensions) = flags.open_watch(request).await?.into_parts();
    let mut response = http::Response::new(Body::new(WatchBody {
        stream: stream.into_frames(),
        ended: false,
    }));
    *response.version_mut() = http::Version::HTTP_2;
    *response.headers_mut() = metadata.into_headers();
    *response.extensions_mut() = extensions;
    response
        .headers_mut()
        .insert(http::header::CONTENT_TYPE, GRPC_CONTENT_TYPE);
    Ok(response)
}

/// The response body: one DATA frame per message, then the status as trailers.
struct WatchBody {
    stream: WatchFrames,
    ended: bool,
}

impl WatchBody {
    fn trailers(&mut self, status: &Status) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        self.ended = true;
        let mut trailers = http::HeaderMap::new();
        Poll::Ready(Some(
            status
                .add_header(&mut trailers)
                .map(|()| Frame::trailers(trailers)),
        ))
    }
}

impl http_body::Body for WatchBody {
    type Data = Bytes;
    type Error = Status;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Status>>> {
        if self.ended {
            return Poll::Ready(None);
        }
        match ready!(Pin::new(&mut self.stream).poll_next(cx)) {
            Some(Ok(frame)) => match frame.into_frame() {
                Ok(bytes) => Poll::Ready(Some(Ok(Frame::data(bytes)))),
                Err(status) => self.trailers(&status),
            },
            Some(Err(status)) => self.trailers(&status),
            None => self.trailers(&Status::ok("")),
        }
    }

    fn is_end_stream(&self) -> bool {
        self.ended
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hub::Published;
    use crate::service::watch_stream::WatchFrame;
    use flagwire_proto::v1::{
        Change, Flag, Heartbeat, Snapshot, change::Kind, watch_response::Event,
    };
    use http_body_util::BodyExt;
    use tonic::codec::{Codec, EncodeBody, SingleMessageCompressionOverride};

    fn flag(key: &str) -> Flag {
        Flag {
            key: key.into(),
            description: "a flag with a description long enough to matter".into(),
            ..Flag::default()
        }
    }

    fn change(revision: u64) -> Change {
        Change {
            revision,
            commit_time: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            kind: Some(Kind::FlagUpserted(flag("checkout"))),
        }
    }

    /// What tonic's generated Watch writes for `messages`: the body of prost's codec.
    async fn tonic_body(messages: Vec<WatchResponse>) -> Bytes {
        let encoder = ProstCodec::<WatchResponse, WatchRequest>::default().encoder();
        let source = futures::stream::iter(messages.into_iter().map(Ok));
        let body = EncodeBody::new_server(
            encoder,
            source,
            None,
            SingleMessageCompressionOverride::default(),
            None,
        );
        body.collect().await.unwrap().to_bytes()
    }

    #[tokio::test]
    async fn frames_are_the_bytes_prost_encodes() {
        let snapshot = WatchResponse {
            event: Some(Event::Snapshot(Snapshot {
                environment: "production".into(),
                revision: 41,
                flags: (0..300).map(|i| flag(&format!("flag-{i}"))).collect(),
                segments: Vec::new(),
            })),
        };
        let heartbeat = WatchResponse {
            event: Some(Event::Heartbeat(Heartbeat {
                revision: 42,
                server_time: Some(std::time::SystemTime::UNIX_EPOCH.into()),
            })),
        };
        let live = Arc::new(Published::new(Arc::new(change(42))));
        let frames = vec![
            WatchFrame::Message(Box::new(snapshot.clone())),
            WatchFrame::Change(Arc::clone(&live)),
            WatchFrame::Message(Box::new(heartbeat.clone())),
            WatchFrame::Message(Box::default()),
        ];
        let ours: Vec<u8> = frames
            .into_iter()
            .flat_map(|f| f.into_frame().unwrap().to_vec())
            .collect();
        let expected = tonic_body(vec![
            snapshot,
            WatchResponse {
                event: Some(Event::Change(change(42))),
            },
            heartbeat,
            WatchResponse::default(),
        ])
        .await;
        assert!(expected.len() > 300 * 40, "the snapshot was encoded");
        assert_eq!(ours, expected.to_vec());
    }

    #[test]
    fn a_live_change_is_encoded_once_and_shared() {
        let live = Arc::new(Published::new(Arc::new(change(7))));
        let a = WatchFrame::Change(Arc::clone(&live)).into_frame().unwrap();
        let b = WatchFrame::Change(Arc::clone(&live)).into_frame().unwrap();
        // The same allocation, not two equal encodings.
        assert_eq!(a.as_ptr(), b.as_ptr());
        assert_eq!(
            WatchFrame::Change(live).into_message(),
            WatchResponse {
                event: Some(Event::Change(change(7))),
            }
        );
    }
}
