//! Waiting for something the server does asynchronously (a stream message, a driver tick, a
//! process exiting) without guessing how long it takes: poll with a deadline and fail with a
//! message naming what never happened.

use std::time::Duration;

/// How long [`eventually`] waits by default: generous, because a loaded CI machine is slow,
/// and never the premise of a test (a test about time advances the manual clock instead).
pub const DEADLINE: Duration = Duration::from_secs(10);

/// Polls `probe` every few milliseconds until it returns `Some`, and returns that value; panics
/// naming `what` if `deadline` passes first.
pub async fn eventually<T>(
    deadline: Duration,
    what: &str,
    mut probe: impl AsyncFnMut() -> Option<T>,
) -> T {
    let until = tokio::time::Instant::now() + deadline;
    let mut poll = tokio::time::interval(Duration::from_millis(5));
    loop {
        poll.tick().await;
        if let Some(value) = probe().await {
            return value;
        }
        assert!(
            tokio::time::Instant::now() < until,
            "timed out after {deadline:?} waiting for {what}"
        );
    }
}
