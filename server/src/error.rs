//! The server's error type and its one mapping onto gRPC status codes.

use crate::store::StoreError;
use flagwire_core::validate::FieldError;
use tonic::{Code, Status};

/// Everything a request can fail with. Handlers return it; [`From<Error> for Status`] is the only
/// place that decides which gRPC code a failure becomes.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The request is malformed; nothing was changed.
    #[error("invalid argument: {0}")]
    Invalid(#[from] FieldError),
    /// The named object does not exist.
    #[error("{0} not found")]
    NotFound(String),
    /// An object with that key exists already.
    #[error("{0} already exists")]
    AlreadyExists(String),
    /// Optimistic concurrency: the caller read an older version.
    #[error("{what} is at version {current}, the request expected {expected}")]
    VersionConflict {
        /// The object.
        what: String,
        /// The version the caller sent.
        expected: u64,
        /// The version stored.
        current: u64,
    },
    /// The object is in a state that forbids the operation (e.g. still referenced).
    #[error("{0}")]
    FailedPrecondition(String),
    /// No or unknown credentials.
    #[error("{0}")]
    Unauthenticated(String),
    /// Valid credentials without the right to do this.
    #[error("{0}")]
    PermissionDenied(String),
    /// The server is shutting down.
    #[error("{0}")]
    Unavailable(String),
    /// Storage failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl Error {
    /// An [`Error::Invalid`] for `field`.
    pub fn invalid(field: impl Into<String>, reason: impl Into<String>) -> Self {
        Self::Invalid(FieldError {
            field: field.into(),
            reason: reason.into(),
        })
    }
}

impl From<Error> for Status {
    fn from(e: Error) -> Self {
        let code = match &e {
            Error::Invalid(_) => Code::InvalidArgument,
            Error::NotFound(_) => Code::NotFound,
            Error::AlreadyExists(_) => Code::AlreadyExists,
            Error::VersionConflict { .. } | Error::FailedPrecondition(_) => {
                Code::FailedPrecondition
            }
            Error::Unauthenticated(_) => Code::Unauthenticated,
            Error::PermissionDenied(_) => Code::PermissionDenied,
            Error::Unavailable(_) => Code::Unavailable,
            Error::Store(StoreError::Unavailable(_) | StoreError::Behind { .. }) => {
                Code::Unavailable
            }
            Error::Store(StoreError::Fenced(_)) => Code::FailedPrecondition,
            Error::Store(err) => {
                tracing::error!(error = %err, "storage failure");
                Code::Internal
            }
        };
        Status::new(code, e.to_string())
    }
}

/// The result type of everything below the service layer.
pub type Result<T, E = Error> = std::result::Result<T, E>;
