//! The web console on the HTTP port: the Vite bundle built from `console/` (committed as
//! `console/dist`, so `cargo build` needs no Node) embedded in the binary and served at `/`.
//!
//! The page talks gRPC-web to the gRPC port, the same RPCs as grpcurl and the CLI, with the
//! token the user signs in with. It learns that port from `/console/config.json`; every console
//! response carries a Content-Security-Policy that allows scripts, styles and images from this
//! origin only (the bundle has no inline script or style element) and connections to this
//! origin and to the gRPC port on the host the browser used.

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use include_dir::{Dir, include_dir};

/// The built bundle; `server/build.rs` makes Cargo rebuild when it changes.
static DIST: Dir<'static> = include_dir!("$CARGO_MANIFEST_DIR/../console/dist");

/// What the page needs to know about the server, besides its own origin.
#[derive(Debug, Clone, Copy)]
pub struct ConsoleConfig {
    /// The gRPC (and gRPC-web) port, as bound (tests bind port 0).
    pub grpc_port: u16,
    /// Whether both ports serve TLS: the page then calls `https://`.
    pub tls: bool,
}

/// The console's routes: `/`, the bundle's files and `/console/config.json`.
pub fn router(config: ConsoleConfig) -> Router {
    Router::new()
        .route("/", get(index))
        .route("/console/config.json", get(config_json))
        .route("/{*path}", get(asset))
        .with_state(config)
}

async fn index(State(config): State<ConsoleConfig>, headers: HeaderMap) -> Response {
    serve("index.html", config, &headers)
}

async fn asset(
    State(config): State<ConsoleConfig>,
    Path(path): Path<String>,
    headers: HeaderMap,
) -> Response {
    serve(&path, config, &headers)
}

async fn config_json(State(config): State<ConsoleConfig>) -> Response {
    let body = serde_json::json!({ "grpcPort": config.grpc_port, "tls": config.tls });
    (
        [
            (header::CONTENT_TYPE, "application/json"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        body.to_string(),
    )
        .into_response()
}

fn serve(path: &str, config: ConsoleConfig, headers: &HeaderMap) -> Response {
    let Some(file) = DIST.get_file(path) else {
        return (StatusCode::NOT_FOUND, "not found\n").into_response();
    };
    // Vite names every asset by its content hash, so only index.html can change under a URL.
    let cache = if path.starts_with("assets/") {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    let mut response = (
        [
            (header::CONTENT_TYPE, content_type(path)),
            (header::CACHE_CONTROL, cache),
            (header::X_CONTENT_TYPE_OPTIONS, "nosniff"),
            (header::REFERRER_POLICY, "no-referrer"),
            (header::X_FRAME_OPTIONS, "DENY"),
        ],
        file.contents(),
    )
        .into_response();
    if let Ok(csp) = HeaderValue::from_str(&csp(config, headers)) {
        response
            .headers_mut()
            .insert(header::CONTENT_SECURITY_POLICY, csp);
    }
    response
}

/// The policy: nothing inline, nothing from elsewhere, and gRPC-web to the gRPC port of the
/// host the browser reached us by (taken from `Host` only when it is a plain host name or
/// address, so a forged header cannot widen the policy beyond one host and port).
fn csp(config: ConsoleConfig, headers: &HeaderMap) -> String {
    let scheme = if config.tls { "https" } else { "http" };
    let grpc = headers
        .get(header::HOST)
        .and_then(|h| h.to_str().ok())
        .and_then(host_name)
        .map(|host| format!(" {scheme}://{host}:{}", config.grpc_port))
        .unwrap_or_default();
    format!(
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
         font-src 'self'; connect-src 'self'{grpc}; base-uri 'none'; form-action 'none'; \
         frame-ancestors 'none'"
    )
}

/// The host part of a `Host` header (`example.com:7071`, `[::1]:7071`), if it is well formed.
fn host_name(host: &str) -> Option<&str> {
    let name = if host.starts_with('[') {
        &host[..=host.find(']')?]
    } else {
        host.split(':').next()?
    };
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '[' | ']' | ':'));
    ok.then_some(name)
}

fn content_type(path: &str) -> &'static str {
    // The bundle holds only what Vite emits for this app; anything else is served as bytes.
    match path.rsplit('.').next().unwrap_or("") {
        "html" => "text/html; charset=utf-8",
        "js" | "mjs" => "text/javascript; charset=utf-8",
        "css" => "text/css; charset=utf-8",
        "svg" => "image/svg+xml",
        "png" => "image/png",
        "ico" => "image/x-icon",
        "json" => "application/json",
        "woff2" => "font/woff2",
        _ => "application/octet-stream",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_taken_only_when_plain() {
        assert_eq!(host_name("127.0.0.1:7071"), Some("127.0.0.1"));
        assert_eq!(host_name("flags.example.com"), Some("flags.example.com"));
        assert_eq!(host_name("[::1]:7071"), Some("[::1]"));
        assert_eq!(host_name("evil.com; script-src *"), None);
        assert_eq!(host_name(""), None);
    }

    #[test]
    fn the_policy_allows_the_grpc_port_of_the_host_used() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("localhost:7071"));
        let config = ConsoleConfig {
            grpc_port: 7070,
            tls: false,
        };
        let policy = csp(config, &headers);
        assert!(policy.contains("connect-src 'self' http://localhost:7070;"));
        assert!(policy.contains("script-src 'self';"));
        assert!(!policy.contains("unsafe"));
    }
}
