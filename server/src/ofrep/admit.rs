//! Who may call: an sdk token in `Authorization: Bearer <token>` or `X-API-Key: <token>` (the
//! two schemes of the OFREP spec), whose environment is the one evaluated. Admin and
//! read-only tokens are refused with 403: they are bound to no environment, and OFREP
//! requests cannot name one.

use super::{Ofrep, limit, reply};
use crate::catalog::tokens::Principal;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use flagwire_proto::v1::Role;

/// The token a request presents, if any: `Authorization: Bearer` first, then `X-API-Key`.
/// `Err` for an `Authorization` header of another scheme.
pub fn presented(headers: &HeaderMap) -> Result<Option<&str>, &'static str> {
    if let Some(value) = headers.get(header::AUTHORIZATION) {
        let value = value.to_str().map_err(|_| "authorization is not text")?;
        let (scheme, token) = value.trim().split_once(' ').unwrap_or((value, ""));
        if !scheme.eq_ignore_ascii_case("bearer") || token.trim().is_empty() {
            return Err("authorization must be `Bearer <token>`");
        }
        return Ok(Some(token.trim()));
    }
    match headers.get("x-api-key") {
        Some(value) => value
            .to_str()
            .map(|v| Some(v.trim()))
            .map_err(|_| "x-api-key is not text"),
        None => Ok(None),
    }
}

/// A refused request: 401, 403 or 429 (with `Retry-After`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    status: StatusCode,
    details: String,
    retry_after_secs: Option<u64>,
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let body = reply::error(self.status, None, None, &self.details);
        match self.retry_after_secs {
            Some(secs) => ([(header::RETRY_AFTER, secs.to_string())], body).into_response(),
            None => body,
        }
    }
}

/// A 401.
pub fn unauthorized(why: &str) -> Refusal {
    Refusal {
        status: StatusCode::UNAUTHORIZED,
        details: why.to_owned(),
        retry_after_secs: None,
    }
}

impl Ofrep {
    /// The sdk token's principal, its request counted against the rate limit; or the 401,
    /// 403 or 429 refusal.
    pub fn admit(&self, headers: &HeaderMap) -> Result<Principal, Refusal> {
        let token = match presented(headers) {
            Ok(Some(token)) => token,
            Ok(None) => {
                return Err(unauthorized(
                    "missing `Authorization: Bearer <token>` or `X-API-Key: <token>`",
                ));
            }
            Err(why) => return Err(unauthorized(why)),
        };
        let principal = self
            .catalog
            .authenticate(token)
            .ok_or_else(|| unauthorized("unknown or revoked token"))?;
        self.admit_principal(principal)
    }

    /// Checks an authenticated principal's role and rate limit.
    pub fn admit_principal(&self, principal: Principal) -> Result<Principal, Refusal> {
        if principal.role != Role::Sdk {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                details: format!(
                    "token {:?} ({}) is not an sdk token: OFREP evaluates in the environment \
                     an sdk token is bound to",
                    principal.name,
                    principal.role.as_str_name()
                ),
                retry_after_secs: None,
            });
        }
        if let Some(limiter) = &self.limiter
            && let Err(wait) = limiter.check(&principal.id)
        {
            return Err(Refusal {
                status: StatusCode::TOO_MANY_REQUESTS,
                details: format!("rate limit of token {:?} exceeded", principal.name),
                retry_after_secs: Some(limit::retry_after_secs(wait)),
            });
        }
        Ok(principal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, v.parse().unwrap());
        }
        h
    }

    #[test]
    fn both_schemes_and_bad_ones() {
        assert_eq!(
            presented(&headers(&[("authorization", "Bearer abc")])),
            Ok(Some("abc"))
        );
        assert_eq!(
            presented(&headers(&[("authorization", "bearer  abc ")])),
            Ok(Some("abc"))
        );
        assert_eq!(
            presented(&headers(&[("x-api-key", "abc")])),
            Ok(Some("abc"))
        );
        assert_eq!(presented(&headers(&[])), Ok(None));
        assert!(presented(&headers(&[("authorization", "Basic abc")])).is_err());
        assert!(presented(&headers(&[("authorization", "Bearer")])).is_err());
    }
}
