//! The time the server goes by: commit times, report watermarks, rollout windows, scheduled
//! changes, ramps and plan waits all read one injectable [`Clock`], so tests can run hours of
//! schedule on a [`ManualClock`] by advancing it, instead of sleeping on the wall clock.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, SystemTime};

/// A future a clock resolves when its time has come.
pub type Alarm<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    /// Now.
    fn now(&self) -> SystemTime;

    /// Resolves once [`Clock::now`] has reached `deadline` (at once if it has already).
    fn sleep_until(&self, deadline: SystemTime) -> Alarm<'_>;
}

/// The system's wall clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> SystemTime {
        SystemTime::now()
    }

    fn sleep_until(&self, deadline: SystemTime) -> Alarm<'_> {
        let wait = deadline
            .duration_since(SystemTime::now())
            .unwrap_or(Duration::ZERO);
        Box::pin(tokio::time::sleep(wait))
    }
}

/// A clock that moves only when told to (tests). Sleepers wake when an [`advance`] passes
/// their deadline; a `watch` channel carries the time so that no wake-up can be missed
/// between reading it and waiting for the next change.
///
/// [`advance`]: ManualClock::advance
#[derive(Debug)]
pub struct ManualClock(tokio::sync::watch::Sender<SystemTime>);

impl ManualClock {
    /// A clock stopped at `start`.
    pub fn new(start: SystemTime) -> Self {
        Self(tokio::sync::watch::Sender::new(start))
    }

    /// A clock stopped at the current wall-clock time, truncated to whole milliseconds (the
    /// resolution of the times the server records), so tests can compare recorded times.
    pub fn at_now() -> Self {
        let since = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default();
        Self::new(SystemTime::UNIX_EPOCH + Duration::from_millis(since.as_millis() as u64))
    }

    /// Moves the clock forward by `by`, waking the sleepers it passes.
    pub fn advance(&self, by: Duration) {
        self.0.send_modify(|t| *t += by);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> SystemTime {
        *self.0.borrow()
    }

    fn sleep_until(&self, deadline: SystemTime) -> Alarm<'_> {
        let mut rx = self.0.subscribe();
        Box::pin(async move {
            // The sender lives as long as the clock, which outlives this borrow.
            let _ = rx.wait_for(|t| *t >= deadline).await;
        })
    }
}

/// When a timer loop last finished a pass, by the server's clock: `/metrics` exports it so a
/// stalled timer shows, and tests that advance a manual clock wait on it to know that a whole
/// pass over the new time has run before they assert that something did *not* happen.
#[derive(Debug, Default)]
pub struct Pulse(AtomicU64);

impl Pulse {
    /// Records a pass that started at `at` and has now finished.
    pub fn beat(&self, at: SystemTime) {
        let ms = at
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap_or_default()
            .as_millis() as u64;
        self.0.fetch_max(ms, Ordering::Release);
    }

    /// The start time of the last finished pass; `None` before the first.
    pub fn last(&self) -> Option<SystemTime> {
        match self.0.load(Ordering::Acquire) {
            0 => None,
            ms => Some(SystemTime::UNIX_EPOCH + Duration::from_millis(ms)),
        }
    }
}

/// The pulses of the server's two timer loops.
#[derive(Debug, Default)]
pub struct Timers {
    /// The rollback manager's timer (scheduled changes, executions, ramps).
    pub manager: Pulse,
    /// The rollout driver (window closes and the judge).
    pub rollouts: Pulse,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_manual_sleeper_wakes_only_when_the_clock_passes_its_deadline() {
        let clock = ManualClock::new(SystemTime::UNIX_EPOCH);
        let deadline = SystemTime::UNIX_EPOCH + Duration::from_secs(60);
        let mut sleeper = clock.sleep_until(deadline);
        let pending = futures::poll!(&mut sleeper);
        assert!(pending.is_pending(), "woke before the clock moved");
        clock.advance(Duration::from_secs(59));
        assert!(
            futures::poll!(&mut sleeper).is_pending(),
            "woke a second early"
        );
        clock.advance(Duration::from_secs(1));
        assert!(
            futures::poll!(&mut sleeper).is_ready(),
            "did not wake at its deadline"
        );
        assert!(
            futures::poll!(clock.sleep_until(deadline)).is_ready(),
            "a past deadline waits"
        );
    }
}
