//! Driver errors as [`StoreError`]s: which of them mean "the database is not there, retry"
//! (`UNAVAILABLE` to callers, and the health probe's signal) and which are the database's
//! answer to a statement.

use crate::store::StoreError;
use deadpool_postgres::PoolError;
use tokio_postgres::error::SqlState;

/// Classifies a driver error: a lost or refused connection (and a busy writer lock) is
/// [`StoreError::Unavailable`]; anything else the database said is [`StoreError::Postgres`].
pub(crate) fn pg_error(e: tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        return StoreError::Unavailable(with_causes(&e));
    };
    let code = db.code();
    let unavailable = code.code().starts_with("08")
        || [
            SqlState::ADMIN_SHUTDOWN,
            SqlState::CRASH_SHUTDOWN,
            SqlState::CANNOT_CONNECT_NOW,
            SqlState::TOO_MANY_CONNECTIONS,
            SqlState::LOCK_NOT_AVAILABLE,
            SqlState::READ_ONLY_SQL_TRANSACTION,
        ]
        .contains(code);
    if unavailable {
        StoreError::Unavailable(db.to_string())
    } else {
        StoreError::Postgres(db.to_string())
    }
}

/// The driver's message followed by its causes: tokio-postgres prints only "error performing TLS
/// handshake" and keeps the reason (an unknown issuer, a name the certificate does not cover)
/// in `source()`, which is the part an operator needs.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut message = e.to_string();
    let mut cause = std::error::Error::source(e);
    while let Some(c) = cause {
        let text = c.to_string();
        if !message.ends_with(&text) {
            message = format!("{message}: {text}");
        }
        cause = c.source();
    }
    message
}

/// A pool checkout's failure: the driver's own errors are classified as above; the pool's
/// (timeouts, a closed pool) mean no connection could be had.
pub(crate) fn pool_error(e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => pg_error(e),
        other => StoreError::Unavailable(format!("no database connection: {other}")),
    }
}
