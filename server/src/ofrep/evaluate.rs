//! The two evaluation endpoints. Both evaluate with the environment's `flagwire-core`
//! snapshot ([`Catalog::engine`](crate::catalog::Catalog::engine)), the same path as
//! `FlagService.Evaluate`, without an expected type: OFREP requests carry none (its ADR-0003),
//! so a type mismatch is the provider's to detect.

use super::{Ofrep, context, events, reply};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::sync::Arc;

/// `POST /ofrep/v1/evaluate/flags/{key}`.
pub async fn one(
    State(ofrep): State<Arc<Ofrep>>,
    Path(key): Path<String>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let principal = match ofrep.admit(&headers) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let context = match context::parse_context(&body) {
        Ok(c) => c,
        Err(refused) => return refusal(Some(&key), refused),
    };
    match ofrep.catalog.engine(&principal.environment) {
        Ok(engine) => reply::single(&key, &engine.evaluate(&key, &context, None)),
        Err(e) => internal(&e),
    }
}

/// `POST /ofrep/v1/evaluate/flags/` (a client asked for the empty key).
pub async fn empty_key(state: State<Arc<Ofrep>>, headers: HeaderMap, body: Bytes) -> Response {
    one(state, Path(String::new()), headers, body).await
}

/// `POST /ofrep/v1/evaluate/flags`: every flag of the environment, with an `ETag` over the
/// environment's revision and the request's context, so `If-None-Match` answers 304 until
/// either changes. The `flagConfigEtag` / `flagConfigLastModified` query parameters of
/// ADR-0008 are accepted and ignored: the revision already says whether anything changed.
///
/// A context of attribute kinds the evaluation refuses (an object, a list of numbers) gives
/// each flag its `INVALID_CONTEXT` failure inside a 200, exactly as evaluating each flag does,
/// rather than a 400: a browser provider keeps serving its previous context's cache after a
/// 400, which would show one user another's flags. A body that is not JSON (`PARSE_ERROR`) or
/// whose context is not an object or has a non-string `targetingKey` (`INVALID_CONTEXT`) is
/// refused with 400.
pub async fn bulk(State(ofrep): State<Arc<Ofrep>>, headers: HeaderMap, body: Bytes) -> Response {
    let principal = match ofrep.admit(&headers) {
        Ok(p) => p,
        Err(refused) => return refused.into_response(),
    };
    let parsed = match context::parse(&body) {
        Ok(p) => p,
        Err(refused) => return refusal(None, refused),
    };
    let env = &principal.environment;
    let engine = match ofrep.catalog.engine(env) {
        Ok(engine) => engine,
        Err(e) => return internal(&e),
    };
    let etag = etag(env, engine.revision(), &parsed.canonical);
    let etag_header = [(header::ETAG, etag.clone())];
    if headers
        .get(header::IF_NONE_MATCH)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| none_match(v, &etag))
    {
        return (StatusCode::NOT_MODIFIED, etag_header).into_response();
    }
    let flags: Vec<Value> = engine
        .flag_keys()
        .into_iter()
        .map(|key| {
            let e = engine.evaluate(key, &parsed.context, None);
            reply::result(key, &e).unwrap_or_else(|(_, failure)| failure)
        })
        .collect();
    let body = json!({
        "flags": flags,
        "metadata": {"environment": env, "revision": engine.revision()},
        "eventStreams": [{
            "type": "sse",
            "endpoint": {"requestUri": events::request_uri(&ofrep.catalog, &principal.id, engine.revision())},
        }],
    });
    (StatusCode::OK, etag_header, Json(body)).into_response()
}

/// The bulk ETag: a strong validator over (environment, revision, canonical context).
pub fn etag(env: &str, revision: u64, canonical_context: &str) -> String {
    let mut h = Sha256::new();
    for part in [
        env.as_bytes(),
        &revision.to_be_bytes(),
        canonical_context.as_bytes(),
    ] {
        h.update((part.len() as u64).to_be_bytes());
        h.update(part);
    }
    format!("\"{}\"", hex::encode(&h.finalize()[..16]))
}

/// Whether an `If-None-Match` value matches `etag` (`*`, a list, weak forms included).
pub fn none_match(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

fn refusal(key: Option<&str>, refused: context::Refused) -> Response {
    let (code, details) = match refused {
        context::Refused::Parse(d) => ("PARSE_ERROR", d),
        context::Refused::Invalid(d) => ("INVALID_CONTEXT", d),
    };
    reply::error(StatusCode::BAD_REQUEST, key, Some(code), &details)
}

fn internal(e: &crate::error::Error) -> Response {
    tracing::error!(error = %e, "OFREP evaluation failed");
    reply::error(
        StatusCode::INTERNAL_SERVER_ERROR,
        None,
        None,
        &format!("evaluation failed: {e}"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn etags_move_with_revision_and_context() {
        let a = etag("prod", 3, "{}");
        assert!(a.starts_with('"') && a.ends_with('"'));
        assert_eq!(a, etag("prod", 3, "{}"));
        assert_ne!(a, etag("prod", 4, "{}"));
        assert_ne!(a, etag("prod", 3, r#"{"targetingKey":"u"}"#));
        assert_ne!(a, etag("test", 3, "{}"));
    }

    #[test]
    fn if_none_match_forms() {
        let tag = "\"abc\"";
        assert!(none_match("\"abc\"", tag));
        assert!(none_match("W/\"abc\"", tag));
        assert!(none_match("\"x\", \"abc\"", tag));
        assert!(none_match("*", tag));
        assert!(!none_match("\"abd\"", tag));
        assert!(!none_match("abc", tag));
    }
}
