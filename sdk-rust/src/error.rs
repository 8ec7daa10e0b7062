//! The SDK's error type. Only construction and waiting can fail; evaluation never does.

/// What building, waiting for or closing a client can fail with.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The builder's configuration cannot work (bad endpoint, missing bootstrap file, ...).
    #[error("invalid configuration: {0}")]
    Config(String),
    /// `build()` was called outside a Tokio runtime.
    #[error("no Tokio runtime: build the client inside one")]
    NoRuntime,
    /// `wait_ready` timed out before the first snapshot arrived.
    #[error("not ready after {0:?}")]
    Timeout(std::time::Duration),
    /// The server refused the token (UNAUTHENTICATED / PERMISSION_DENIED).
    #[error("the server refused the token: {0}")]
    Unauthorized(String),
    /// The bootstrap file could not be read or written.
    #[error("bootstrap file: {0}")]
    Bootstrap(String),
}
