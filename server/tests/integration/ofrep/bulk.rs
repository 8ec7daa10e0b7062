//! `POST /ofrep/v1/evaluate/flags`: every flag with per-flag failures inside a 200, the
//! `eventStreams` entry, request-level 400s, and `ETag` / `If-None-Match` → 304 moving with
//! the revision and the context.

use super::*;

const BULK: &str = "/ofrep/v1/evaluate/flags";

async fn bulk(server: &Ofrep, token: &str, body: &str, etag: Option<&str>) -> Reply {
    let auth = format!("Bearer {token}");
    let mut headers = vec![
        ("authorization", auth.as_str()),
        ("content-type", "application/json"),
    ];
    if let Some(tag) = etag {
        headers.push(("if-none-match", tag));
    }
    call(&server.http, "POST", BULK, &headers, body).await
}

#[tokio::test]
async fn every_flag_with_failures_inside_a_200_and_an_event_stream() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    // No targeting key: the split flag fails alone, the others succeed.
    let r = bulk(&server, &sdk, r#"{"context":{"plan":"pro"}}"#, None).await;
    assert_eq!(r.status, 200, "{}", r.body);
    let body = r.json();
    let revision = server.revision("prod");
    assert_eq!(
        body["flags"],
        serde_json::json!([
            {"key": "banner", "value": true, "reason": "STATIC", "variant": "on", "metadata": {"flagVersion": 1}},
            {"key": "limit", "value": 10, "reason": "DISABLED", "variant": "low", "metadata": {"flagVersion": 1}},
            {"key": "theme", "errorCode": "TARGETING_KEY_MISSING",
             "errorDetails": "flag \"theme\": the split needs a bucketing key", "metadata": {"flagVersion": 1}},
        ])
    );
    assert_eq!(
        body["metadata"],
        serde_json::json!({"environment": "prod", "revision": revision})
    );
    let streams = body["eventStreams"].as_array().unwrap();
    assert_eq!(streams.len(), 1);
    assert_eq!(streams[0]["type"], "sse");
    let uri = streams[0]["endpoint"]["requestUri"].as_str().unwrap();
    assert!(uri.starts_with("/ofrep/v1/events?channel="), "{uri}");
    assert!(uri.ends_with(&format!("&since={revision}")), "{uri}");
    assert!(
        !uri.contains(&sdk),
        "the stream's URL must not carry the secret"
    );
}

#[tokio::test]
async fn request_level_errors_have_no_key_and_attribute_errors_are_per_flag() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    for (body, code) in [
        ("{broken", "PARSE_ERROR"),
        ("[]", "PARSE_ERROR"),
        (r#"{"context":"u1"}"#, "INVALID_CONTEXT"),
        (r#"{"context":{"targetingKey":7}}"#, "INVALID_CONTEXT"),
    ] {
        let r = bulk(&server, &sdk, body, None).await;
        assert_eq!(r.status, 400, "{body}");
        let json = r.json();
        assert_eq!(json["errorCode"], code, "{body}");
        assert!(
            json.get("key").is_none() && json["errorDetails"].is_string(),
            "{json}"
        );
    }
    // Attribute kinds the evaluation refuses fail each flag, as evaluating each flag does.
    let r = bulk(
        &server,
        &sdk,
        r#"{"context":{"targetingKey":"u","tags":[1,2]}}"#,
        None,
    )
    .await;
    assert_eq!(r.status, 200);
    let flags = r.json()["flags"].as_array().unwrap().clone();
    assert_eq!(flags.len(), 3);
    for flag in flags {
        assert_eq!(flag["errorCode"], "INVALID_CONTEXT", "{flag}");
    }
    assert_eq!(bulk(&server, "fw_nope", "{}", None).await.status, 401);
    assert_eq!(bulk(&server, ADMIN, "{}", None).await.status, 403);
}

#[tokio::test]
async fn etag_gives_304_until_the_revision_or_the_context_changes() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let ctx = r#"{"context":{"targetingKey":"u1","plan":"pro"}}"#;
    let first = bulk(&server, &sdk, ctx, None).await;
    let etag = first.header("etag").to_owned();
    assert!(etag.starts_with('"') && etag.len() > 2, "{etag:?}");
    // Same context, keys in another order: the same tag, so 304 with no body.
    let reordered = r#"{"context":{"plan":"pro","targetingKey":"u1"}}"#;
    let r = bulk(&server, &sdk, reordered, Some(&etag)).await;
    assert_eq!(
        (r.status, r.body.as_str(), r.header("etag")),
        (304, "", etag.as_str())
    );
    let r = bulk(&server, &sdk, ctx, Some(&format!("\"other\", W/{etag}"))).await;
    assert_eq!(r.status, 304);
    // Another context: another tag.
    let r = bulk(
        &server,
        &sdk,
        r#"{"context":{"targetingKey":"u2"}}"#,
        Some(&etag),
    )
    .await;
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), etag);
    // A write to the environment moves the revision, so the tag.
    let mut admin = server.admin().await;
    set_enabled(&mut admin, "limit", "prod", true).await;
    let r = bulk(&server, &sdk, ctx, Some(&etag)).await;
    assert_eq!(r.status, 200);
    assert_ne!(r.header("etag"), etag);
    assert_eq!(r.json()["flags"][1]["value"], 1000);
    // ADR-0008's refetch metadata is accepted as query parameters.
    let auth = format!("Bearer {sdk}");
    let new_tag = r.header("etag").to_owned();
    let p = format!("{BULK}?flagConfigEtag=abc&flagConfigLastModified=1771622898");
    let r = call(
        &server.http,
        "POST",
        &p,
        &[("authorization", &auth), ("if-none-match", &new_tag)],
        ctx,
    )
    .await;
    assert_eq!(r.status, 304);
}
