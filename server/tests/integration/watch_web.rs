//! Watch over gRPC-web on HTTP/1.1 (what fetch-only runtimes send): the Watch body is written
//! from pre-encoded frames (`service/watch_route.rs`) and must still pass through the
//! gRPC-web layer as length-prefixed messages, with the refusal's status in the headers.

use crate::support::*;
use flagwire_proto::v1::watch_response::Event;
use flagwire_proto::v1::*;
use http_body_util::BodyExt;
use hyper_util::rt::TokioIo;
use prost::Message;

type Sender = hyper::client::conn::http1::SendRequest<http_body_util::Full<hyper::body::Bytes>>;

async fn http1(addr: &str) -> Sender {
    let stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(stream))
        .await
        .unwrap();
    tokio::spawn(conn);
    sender
}

fn watch_request(
    addr: &str,
    token: Option<&str>,
) -> ::http::Request<http_body_util::Full<hyper::body::Bytes>> {
    let message = WatchRequest::default().encode_to_vec();
    let mut frame = vec![0u8];
    frame.extend_from_slice(&(message.len() as u32).to_be_bytes());
    frame.extend_from_slice(&message);
    let mut request = ::http::Request::post("/flagwire.v1.FlagService/Watch")
        .header(::http::header::HOST, addr)
        .header(::http::header::CONTENT_TYPE, "application/grpc-web+proto")
        .header("x-grpc-web", "1");
    if let Some(token) = token {
        request = request.header(::http::header::AUTHORIZATION, format!("Bearer {token}"));
    }
    request
        .body(http_body_util::Full::new(hyper::body::Bytes::from(frame)))
        .unwrap()
}

/// Reads data until one whole length-prefixed message is buffered, and decodes it.
async fn next_message(body: &mut hyper::body::Incoming, buf: &mut Vec<u8>) -> WatchResponse {
    loop {
        if buf.len() >= 5 {
            assert_eq!(buf[0], 0, "a data frame, not trailers: {buf:?}");
            let len = u32::from_be_bytes(buf[1..5].try_into().unwrap()) as usize;
            if buf.len() >= 5 + len {
                let message = WatchResponse::decode(&buf[5..5 + len]).unwrap();
                buf.drain(..5 + len);
                return message;
            }
        }
        let frame = body.frame().await.expect("the stream ended").unwrap();
        if let Ok(data) = frame.into_data() {
            buf.extend_from_slice(&data);
        }
    }
}

#[tokio::test]
async fn watch_over_grpc_web_gets_the_snapshot_then_a_live_change() {
    let dir = tempdir();
    let server = Server::start(dir.path(), &["--heartbeat-secs", "300"]);
    let mut admin = server.admin().await;
    create_env(&mut admin, "production").await;
    create_flag(&mut admin, bool_flag("a", &["production"])).await;
    let sdk = create_token(&mut admin, "web", Role::Sdk, "production").await;

    // Refused without a token: the status is in the headers, and there is no message.
    let refused = http1(&server.grpc)
        .await
        .send_request(watch_request(&server.grpc, None))
        .await
        .unwrap();
    assert_eq!(refused.status(), 200);
    assert_eq!(
        refused.headers()["grpc-status"],
        "16",
        "{:?}",
        refused.headers()
    );

    let response = http1(&server.grpc)
        .await
        .send_request(watch_request(&server.grpc, Some(&sdk)))
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.headers()[::http::header::CONTENT_TYPE],
        "application/grpc-web+proto"
    );
    let mut body = response.into_body();
    let mut buf = Vec::new();
    let Some(Event::Snapshot(snapshot)) = next_message(&mut body, &mut buf).await.event else {
        panic!("the first message is the snapshot");
    };
    assert_eq!(snapshot.flags.len(), 1);
    // A live change: the hub's shared frame, through the gRPC-web layer.
    set_enabled(&mut admin, "a", "production", true).await;
    let Some(Event::Change(change)) = next_message(&mut body, &mut buf).await.event else {
        panic!("then the change");
    };
    assert_eq!(change.revision, snapshot.revision + 1);
    assert!(matches!(
        change.kind,
        Some(change::Kind::FlagUpserted(f)) if f.key == "a" && f.environments["production"].enabled
    ));
}
