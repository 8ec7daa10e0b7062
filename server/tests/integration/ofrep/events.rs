//! The SSE stream of ADR-0008: one `refetchEvaluation` per revision of the token's
//! environment, authenticated by the URL the bulk answer hands out (browsers' `EventSource`
//! cannot send headers) or by the usual headers.

use super::*;

async fn stream_uri(server: &Ofrep, token: &str) -> String {
    let r = post(&server.http, "/ofrep/v1/evaluate/flags", token, "{}").await;
    r.json()["eventStreams"][0]["endpoint"]["requestUri"]
        .as_str()
        .unwrap()
        .to_owned()
}

#[tokio::test]
async fn a_change_to_the_environment_is_announced_and_others_are_not() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let uri = stream_uri(&server, &sdk).await;
    let mut sse = Sse::open(&server.http, &uri, &[]).await;
    assert_eq!(sse.status, 200);
    assert!(
        sse.content_type.starts_with("text/event-stream"),
        "{}",
        sse.content_type
    );
    let mut admin = server.admin().await;
    // A change to another environment says nothing here; the next one to prod does.
    admin
        .create_segment(CreateSegmentRequest {
            segment: Some(Segment {
                environment: "staging".into(),
                key: "beta".into(),
                ..Default::default()
            }),
            reason: String::new(),
        })
        .await
        .unwrap();
    set_enabled(&mut admin, "limit", "prod", true).await;
    let revision = server.revision("prod");
    let event = sse.next().await;
    assert_eq!(
        event,
        Event {
            id: revision.to_string(),
            event: "message".into(),
            data: serde_json::json!({"type": "refetchEvaluation"}),
        }
    );
    set_enabled(&mut admin, "limit", "prod", false).await;
    assert_eq!(sse.next().await.id, (revision + 1).to_string());
}

#[tokio::test]
async fn a_stream_opened_late_announces_what_it_missed() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let uri = stream_uri(&server, &sdk).await;
    let mut admin = server.admin().await;
    set_enabled(&mut admin, "limit", "prod", true).await;
    // Committed between the bulk answer and the stream's start: announced at once.
    let mut sse = Sse::open(&server.http, &uri, &[]).await;
    assert_eq!(sse.next().await.id, server.revision("prod").to_string());
    // With headers instead of the channel, and Last-Event-ID at an older revision.
    let auth = format!("Bearer {sdk}");
    let mut sse = Sse::open(
        &server.http,
        "/ofrep/v1/events",
        &[("authorization", &auth), ("last-event-id", "1")],
    )
    .await;
    assert_eq!(sse.status, 200);
    assert_eq!(sse.next().await.id, server.revision("prod").to_string());
}

#[tokio::test]
async fn revoking_the_token_ends_its_open_streams() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let uri = stream_uri(&server, &sdk).await;
    let mut sse = Sse::open(&server.http, &uri, &[]).await;
    let mut admin = server.admin().await;
    set_enabled(&mut admin, "limit", "prod", true).await;
    assert_eq!(sse.next().await.data["type"], "refetchEvaluation");
    let id = web_token_id(&mut admin).await;
    admin
        .revoke_api_token(RevokeApiTokenRequest {
            id,
            reason: String::new(),
        })
        .await
        .unwrap();
    // The next revision is not announced to a revoked token: its stream ends instead.
    set_enabled(&mut admin, "limit", "prod", false).await;
    sse.ended().await;
}

async fn web_token_id(admin: &mut Admin) -> String {
    admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens
        .into_iter()
        .find(|t| t.name == "web")
        .unwrap()
        .id
}

#[tokio::test]
async fn a_forged_or_revoked_channel_is_refused() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let uri = stream_uri(&server, &sdk).await;
    let forged = uri.replacen("channel=", "channel=0", 1);
    assert_eq!(Sse::open(&server.http, &forged, &[]).await.status, 401);
    let no_auth = Sse::open(&server.http, "/ofrep/v1/events", &[]).await;
    assert_eq!(no_auth.status, 401);
    let mut admin = server.admin().await;
    let id = web_token_id(&mut admin).await;
    admin
        .revoke_api_token(RevokeApiTokenRequest {
            id,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(Sse::open(&server.http, &uri, &[]).await.status, 401);
}
