//! `POST /ofrep/v1/evaluate/flags/{key}`: the success shape, every error status with its body,
//! authentication, the rate limit, CORS, and that refused requests change nothing.

use super::*;
use std::num::NonZeroU32;

const ONE: &str = "/ofrep/v1/evaluate/flags";

fn path(key: &str) -> String {
    format!("{ONE}/{key}")
}

#[tokio::test]
async fn success_shapes_carry_value_variant_reason_and_metadata() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let r = post(
        &server.http,
        &path("banner"),
        &sdk,
        r#"{"context":{"targetingKey":"u1"}}"#,
    )
    .await;
    assert_eq!(r.status, 200, "{}", r.body);
    assert!(r.header("content-type").starts_with("application/json"));
    assert_eq!(
        r.json(),
        serde_json::json!({"key": "banner", "value": true, "reason": "STATIC", "variant": "on",
                           "metadata": {"flagVersion": 1}})
    );
    // A split: the reason, and the cohort of the entry served in the metadata.
    let r = post(
        &server.http,
        &path("theme"),
        &sdk,
        r#"{"context":{"targetingKey":"u1"}}"#,
    )
    .await;
    let body = r.json();
    assert_eq!((r.status, &body["reason"]), (200, &Json::from("SPLIT")));
    let variant = body["variant"].as_str().unwrap();
    assert_eq!(body["value"], Json::from(variant));
    let cohort = if variant == "blue" { "a" } else { "b" };
    assert_eq!(body["metadata"]["cohort"], Json::from(cohort));
    // A disabled integer flag: its off variant, as a JSON integer.
    let r = post(&server.http, &path("limit"), &sdk, "{}").await;
    assert_eq!(
        r.body,
        r#"{"key":"limit","metadata":{"flagVersion":1},"reason":"DISABLED","value":10,"variant":"low"}"#
    );
    // X-API-Key works as Authorization does.
    let r = call(
        &server.http,
        "POST",
        &path("banner"),
        &[("x-api-key", &sdk)],
        "{}",
    )
    .await;
    assert_eq!(
        (r.status, r.json()["value"].clone()),
        (200, Json::Bool(true))
    );
}

#[tokio::test]
async fn errors_have_the_specs_status_and_shape() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let h = &server.http;
    let r = post(
        h,
        &path("nope"),
        &sdk,
        r#"{"context":{"targetingKey":"u1"}}"#,
    )
    .await;
    assert_eq!(r.status, 404);
    assert_eq!(
        r.json(),
        serde_json::json!({"key": "nope", "errorCode": "FLAG_NOT_FOUND",
                           "errorDetails": "flag \"nope\": flag not found", "metadata": {}})
    );
    let r = post(h, &path("banner"), &sdk, "{not json").await;
    assert_eq!(r.status, 400);
    let body = r.json();
    assert_eq!(
        (&body["key"], &body["errorCode"]),
        (&Json::from("banner"), &Json::from("PARSE_ERROR"))
    );
    assert!(
        body["errorDetails"].as_str().unwrap().starts_with("body: "),
        "{body}"
    );
    for bad in [
        r#"{"context":5}"#,
        r#"{"context":{"targetingKey":42}}"#,
        r#"{"context":{"targetingKey":"u","meta":{"a":1}}}"#,
    ] {
        let r = post(h, &path("banner"), &sdk, bad).await;
        assert_eq!(
            (r.status, r.json()["errorCode"].clone()),
            (400, Json::from("INVALID_CONTEXT")),
            "{bad}: {}",
            r.body
        );
    }
    // A split with no targeting key to bucket by.
    let r = post(h, &path("theme"), &sdk, r#"{"context":{"plan":"pro"}}"#).await;
    assert_eq!(r.status, 400);
    assert_eq!(r.json()["errorCode"], "TARGETING_KEY_MISSING");
    assert_eq!(r.json()["metadata"]["flagVersion"], 1);
    // A token whose environment is gone: the server cannot evaluate.
    let r = post(h, &path("banner"), ORPHAN, "{}").await;
    assert_eq!(r.status, 500);
    assert!(
        r.json()["errorDetails"].as_str().unwrap().contains("gone"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn only_live_sdk_tokens_may_call() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let h = &server.http;
    let mut admin = server.admin().await;
    let reader = create_token(&mut admin, "reader", Role::ReadOnly, "").await;
    let p = path("banner");
    for headers in [
        &[][..],
        &[("authorization", "Basic dXNlcjpwYXNz")][..],
        &[("authorization", "Bearer fw_not_a_token")][..],
        &[("x-api-key", "fw_not_a_token")][..],
    ] {
        let r = call(h, "POST", &p, headers, "{}").await;
        assert_eq!(r.status, 401, "{headers:?}");
        assert!(r.json()["errorDetails"].is_string());
    }
    for token in [ADMIN, reader.as_str()] {
        let r = post(h, &p, token, "{}").await;
        assert_eq!(r.status, 403, "{}", r.body);
        assert!(
            r.json()["errorDetails"]
                .as_str()
                .unwrap()
                .contains("not an sdk token")
        );
    }
    // Revocation takes effect on the next request.
    let tokens = admin
        .list_api_tokens(ListApiTokensRequest::default())
        .await
        .unwrap()
        .into_inner()
        .tokens;
    let id = tokens.iter().find(|t| t.name == "web").unwrap().id.clone();
    assert_eq!(post(h, &p, &sdk, "{}").await.status, 200);
    admin
        .revoke_api_token(RevokeApiTokenRequest {
            id,
            reason: String::new(),
        })
        .await
        .unwrap();
    assert_eq!(post(h, &p, &sdk, "{}").await.status, 401);
}

#[tokio::test]
async fn a_token_past_its_rate_limit_gets_429_with_retry_after() {
    let options = OfrepOptions {
        rate_limit: Some(governor::Quota::per_hour(NonZeroU32::new(2).unwrap())),
    };
    let (server, sdk) = Ofrep::start(options).await;
    let mut admin = server.admin().await;
    let other = create_token(&mut admin, "other", Role::Sdk, "prod").await;
    let p = path("banner");
    assert_eq!(post(&server.http, &p, &sdk, "{}").await.status, 200);
    assert_eq!(post(&server.http, ONE, &sdk, "{}").await.status, 200);
    for target in [p.as_str(), ONE] {
        let r = post(&server.http, target, &sdk, "{}").await;
        assert_eq!(r.status, 429, "{}", r.body);
        let secs: u64 = r.header("retry-after").parse().unwrap();
        assert!((1..=1800).contains(&secs), "Retry-After {secs}");
    }
    // Per token: another token still has its allowance; refused requests spend none.
    assert_eq!(post(&server.http, &p, &other, "{}").await.status, 200);
    assert_eq!(post(&server.http, &p, "fw_unknown", "{}").await.status, 401);
}

#[tokio::test]
async fn browsers_get_cors_preflight_and_headers() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let origin = "https://app.example";
    let r = call(
        &server.http,
        "OPTIONS",
        ONE,
        &[
            ("origin", origin),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization,content-type,if-none-match,x-api-key",
            ),
        ],
        "",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), origin);
    let allowed = r
        .header("access-control-allow-headers")
        .to_ascii_lowercase();
    for h in [
        "authorization",
        "content-type",
        "if-none-match",
        "x-api-key",
    ] {
        assert!(allowed.contains(h), "{h} not in {allowed}");
    }
    assert!(r.header("access-control-allow-methods").contains("POST"));
    let auth = format!("Bearer {sdk}");
    let r = call(
        &server.http,
        "POST",
        ONE,
        &[("origin", origin), ("authorization", &auth)],
        "{}",
    )
    .await;
    assert_eq!(r.status, 200);
    assert_eq!(r.header("access-control-allow-origin"), origin);
    let exposed = r
        .header("access-control-expose-headers")
        .to_ascii_lowercase();
    assert!(
        exposed.contains("etag") && exposed.contains("retry-after"),
        "{exposed}"
    );
}

#[tokio::test]
async fn refused_and_bad_requests_change_nothing() {
    let (server, sdk) = Ofrep::start(OfrepOptions::default()).await;
    let before = server.revision("prod");
    let first = post(&server.http, ONE, &sdk, "{}").await;
    let bad = [
        (path("banner"), "{oops", sdk.as_str()),
        (path("banner"), r#"{"context":[1]}"#, sdk.as_str()),
        (
            ONE.to_owned(),
            r#"{"context":{"targetingKey":1}}"#,
            sdk.as_str(),
        ),
        (path("nope"), "{}", sdk.as_str()),
        (path("banner"), "{}", ADMIN),
        (path("banner"), "{}", "fw_nope"),
    ];
    for (p, body, token) in &bad {
        assert!(post(&server.http, p, token, body).await.status >= 400);
    }
    assert_eq!(server.revision("prod"), before);
    let again = post(&server.http, ONE, &sdk, "{}").await;
    assert_eq!(
        (again.header("etag"), again.body.as_str()),
        (first.header("etag"), first.body.as_str())
    );
}
