//! Which environment a flagd call acts on.
//!
//! flagd providers send no environment: the sdk token (`authorization: Bearer`, checked by the
//! auth layer like every Flagwire call) names it. Read-only and admin tokens are bound to no
//! environment, so they name one with flagd's selector: the `flagd-selector` header (or the
//! deprecated `selector` field of the sync requests), holding the environment key or
//! `environment=<key>`. A call without a token is refused with `UNAUTHENTICATED` by the layer.

use crate::auth::principal;
use tonic::{Request, Status};

/// The header flagd providers send their selector in.
pub const SELECTOR_HEADER: &str = "flagd-selector";

/// The environment key a selector names: `production` or `environment=production`; empty when
/// it names none.
pub fn selected_environment(selector: &str) -> &str {
    let selector = selector.trim();
    selector
        .strip_prefix("environment=")
        .unwrap_or(selector)
        .trim()
}

/// The environment `request` acts on; `fallback_selector` is a selector carried in the message
/// (sync requests), used when the header is absent.
pub fn environment<T>(request: &Request<T>, fallback_selector: &str) -> Result<String, Status> {
    let principal = principal(request)?;
    let header = request
        .metadata()
        .get(SELECTOR_HEADER)
        .and_then(|v| v.to_str().ok())
        .unwrap_or(fallback_selector);
    Ok(principal.environment_for(selected_environment(header))?)
}

#[cfg(test)]
mod tests {
    use super::selected_environment;

    #[test]
    fn a_selector_names_an_environment_bare_or_as_a_pair() {
        assert_eq!(selected_environment("production"), "production");
        assert_eq!(selected_environment(" environment=staging "), "staging");
        assert_eq!(selected_environment(""), "");
    }
}
