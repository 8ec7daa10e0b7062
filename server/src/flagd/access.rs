//! Which environment a flagd call acts on.
//!
//! flagd providers send no environment: the sdk token (`authorization: Bearer`, checked by the
//! auth layer like every Flagwire call) names it. Read-only and admin tokens are bound to no
//! environment, so they name one with flagd's selector: the `flagd-selector` header (or the
//! deprecated `selector` field of the sync requests), holding the environment key or
//! `environment=<key>`, and optionally `fractional=utf8` (comma-separated). A call without a token is refused with `UNAUTHENTICATED` by the layer.

use crate::auth::principal;
use tonic::{Request, Status};

/// The header flagd providers send their selector in.
pub const SELECTOR_HEADER: &str = "flagd-selector";

/// What a selector asks for: comma-separated items, the environment key (bare or as
/// `environment=<key>`) and `fractional=utf8` (see [`super::export::Options`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Selector<'a> {
    /// The environment named; empty when none.
    pub environment: &'a str,
    /// `fractional=utf8`: export splits with flagd's pre-CBOR `fractional`.
    pub fractional_utf8: bool,
}

/// Parses a selector.
pub fn parse(selector: &str) -> Selector<'_> {
    let mut out = Selector::default();
    for item in selector.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        match item.split_once('=') {
            Some(("fractional", "utf8")) => out.fractional_utf8 = true,
            Some(("environment", env)) => out.environment = env.trim(),
            Some(_) => {}
            None => out.environment = item,
        }
    }
    out
}

/// The environment key a selector names: `production` or `environment=production`; empty when
/// it names none.
pub fn selected_environment(selector: &str) -> &str {
    parse(selector).environment
}

/// The selector of `request`: the header, else `fallback` (a sync request's field).
pub fn selector<'r, T>(request: &'r Request<T>, fallback: &'r str) -> &'r str {
    request
        .metadata()
        .get(SELECTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(fallback)
}

/// The environment `request` acts on; `fallback_selector` is a selector carried in the message
/// (sync requests), used when the header is absent.
pub fn environment<T>(request: &Request<T>, fallback_selector: &str) -> Result<String, Status> {
    let principal = principal(request)?;
    let selector = selector(request, fallback_selector);
    Ok(principal.environment_for(selected_environment(selector))?)
}

#[cfg(test)]
mod tests {
    use super::selected_environment;

    #[test]
    fn a_selector_names_an_environment_bare_or_as_a_pair() {
        assert_eq!(selected_environment("production"), "production");
        assert_eq!(selected_environment(" environment=staging "), "staging");
        assert_eq!(selected_environment(""), "");
        assert_eq!(
            selected_environment("fractional=utf8, environment=dev"),
            "dev"
        );
        assert!(super::parse("prod,fractional=utf8").fractional_utf8);
        assert!(!super::parse("prod").fractional_utf8);
    }
}
