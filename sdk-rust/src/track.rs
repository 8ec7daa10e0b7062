//! The team's own metrics through the client: [`Client::track`], [`Client::track_outcome`],
//! [`Client::observe`], [`Client::timer`], and [`Client::attribute_to`] for code outside any
//! request scope. The names follow OpenFeature's tracking API (`track(event name, …)` with a
//! numeric value), so an OpenFeature provider can map its `track` onto [`Client::track`].
//!
//! None of them fails or panics: an event that cannot be reported (a bad name, a negative or
//! non-finite observation, nothing to attribute it to, no room left) is dropped and counted in
//! the next report's `dropped_series`, so the loss shows on the server rather than in the code.

use crate::client::{Client, Shared};
use crate::context::Context;
use crate::metric_event::{MetricEvent, ScopeMetrics, valid_name};
use crate::metrics::Served;
use crate::scope;
use std::sync::Arc;
use std::time::Duration;
use tokio::time::Instant;

/// Records one event: into the current scope, or (with `served`) attributed to named flags.
fn record(shared: &Shared, served: Option<&[Served]>, name: &str, event: MetricEvent) {
    let Some(recorder) = &shared.recorder else {
        return; // Offline: nobody to report to.
    };
    if !valid_name(name) || !event.is_valid() {
        tracing::debug!(
            name,
            ?event,
            "flagwire: metric event dropped (bad name or value)"
        );
        return recorder.drop_events(1);
    }
    match served {
        Some(served) => recorder.attributed_event(served, name, event),
        None => {
            if let Err(why) = scope::record_metric(name, event) {
                tracing::debug!(name, ?why, "flagwire: metric event dropped");
                recorder.drop_events(1);
            }
        }
    }
}

impl Client {
    /// Tracks an event under `name`, with a value: `1` for a count ("cache hit"), or a
    /// quantity ("satisfaction score"). Inside a request scope it is attributed when the scope
    /// ends to every flag variant the scope served and to each release cohort among them,
    /// which gives per-request counts (hits per query) as well as means; outside any scope use
    /// [`Client::attribute_to`], or the event is dropped (there is nothing to attribute it to).
    ///
    /// Names are lowercase letters, digits, `.`, `_` and `-`, starting with a letter or digit,
    /// at most 64 characters; another name, or a non-finite value, is dropped and counted.
    ///
    /// A scope cancelled before it ends records nothing, its events included (like its
    /// outcome). [`Client::start_measure`] is not a scope: next to one, name the flag with
    /// [`Client::attribute_to`].
    ///
    /// ```no_run
    /// # async fn demo(client: flagwire::Client, ctx: flagwire::Context) -> Result<(), ()> {
    /// client.scope(async {
    ///     if client.bool_value("faq-cache", &ctx, false) { client.track("faq.hits", 1) }
    ///     Ok(())
    /// }).await
    /// # }
    /// ```
    pub fn track(&self, name: &str, value: impl Into<f64>) {
        record(&self.shared, None, name, MetricEvent::Track(value.into()));
    }

    /// Tracks whether a sub-operation succeeded (a write to a store, a call to a model), giving
    /// a success rate per variant and per release cohort: what a gate like "mem0 writes
    /// succeed > 99 %" reads. Attributed like [`Client::track`].
    pub fn track_outcome(&self, name: &str, ok: bool) {
        record(&self.shared, None, name, MetricEvent::Outcome(ok));
    }

    /// Observes a value of a distribution (a latency in milliseconds, a size) whose quantiles
    /// matter, not only its mean: it is also recorded in a histogram, in thousandths of its
    /// unit. A negative or non-finite value is dropped and counted. Attributed like
    /// [`Client::track`]; [`Client::timer`] observes elapsed milliseconds for you.
    pub fn observe(&self, name: &str, value: impl Into<f64>) {
        record(&self.shared, None, name, MetricEvent::Observe(value.into()));
    }

    /// Starts a timer that observes the milliseconds elapsed under `name` when it is stopped
    /// or dropped, wherever that happens: keep it in the task of the scope it belongs to.
    ///
    /// ```no_run
    /// # fn fast_path() {}
    /// # fn demo(client: &flagwire::Client) {
    /// let _t = client.timer("fast_path_ms");
    /// fast_path();
    /// // observed here, as `_t` drops
    /// # }
    /// ```
    pub fn timer(&self, name: &str) -> MetricTimer {
        MetricTimer::new(&self.shared, name, None)
    }

    /// Metrics recorded outside any request scope (a background job, a webhook), attributed to
    /// `flags` as they serve `ctx` now. The flags are evaluated once, here, without counting an
    /// evaluation (nobody read them); an unknown flag, or one that serves nothing, is left out,
    /// and with none left the events are dropped and counted. Events go to these flags only,
    /// even inside a scope, and count no request.
    ///
    /// ```no_run
    /// # fn demo(client: &flagwire::Client) {
    /// let ctx = flagwire::Context::new("user-42");
    /// client.attribute_to(&ctx, &["new-onboarding"]).track("signup", 1);
    /// # }
    /// ```
    pub fn attribute_to(&self, ctx: &Context, flags: &[&str]) -> Attribution {
        let mut served: Vec<Served> = Vec::with_capacity(flags.len());
        if let Some(snapshot) = self.shared.snapshot.load().as_ref() {
            for flag in flags {
                let r = snapshot.evaluate(flag, &ctx.inner, None);
                if r.variant.is_empty() || served.iter().any(|s| s.flag == *flag) {
                    continue;
                }
                served.push(Served {
                    flag: (*flag).to_owned(),
                    variant: r.variant.to_owned(),
                    cohort: r.cohort.to_owned(),
                    rollout_id: r.rollout_id.to_owned(),
                });
            }
        }
        Attribution {
            shared: Arc::clone(&self.shared),
            served,
        }
    }

    /// Attributes a scope's metric events when it ends (see `scope`).
    pub(crate) fn scope_metrics(&self, served: &[Served], metrics: ScopeMetrics) {
        if let Some(recorder) = &self.shared.recorder {
            recorder.scope_metrics(served, metrics);
        }
    }

    /// Counts metric events dropped by a scope.
    pub(crate) fn drop_metric_events(&self, n: u64) {
        if let Some(recorder) = &self.shared.recorder {
            recorder.drop_events(n);
        }
    }
}

/// Metrics attributed to flags named explicitly, for code outside any request scope; see
/// [`Client::attribute_to`]. Holds what the flags served when it was made: keep it for one
/// unit of work, not across flag changes.
#[derive(Clone)]
pub struct Attribution {
    // Not a `Client`: a kept attribution must not keep the sync task alive.
    shared: Arc<Shared>,
    served: Vec<Served>,
}

impl std::fmt::Debug for Attribution {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Attribution")
            .field("served", &self.served)
            .finish()
    }
}

impl Attribution {
    /// An attribution to what a test says was served.
    #[cfg(test)]
    pub(crate) fn of(client: &Client, served: Vec<Served>) -> Self {
        Self {
            shared: Arc::clone(&client.shared),
            served,
        }
    }

    /// The flag variants the events go to (empty: they will be dropped).
    pub fn served(&self) -> &[Served] {
        &self.served
    }

    /// [`Client::track`], attributed to these flags.
    pub fn track(&self, name: &str, value: impl Into<f64>) {
        let event = MetricEvent::Track(value.into());
        record(&self.shared, Some(&self.served), name, event);
    }

    /// [`Client::track_outcome`], attributed to these flags.
    pub fn track_outcome(&self, name: &str, ok: bool) {
        record(
            &self.shared,
            Some(&self.served),
            name,
            MetricEvent::Outcome(ok),
        );
    }

    /// [`Client::observe`], attributed to these flags.
    pub fn observe(&self, name: &str, value: impl Into<f64>) {
        let event = MetricEvent::Observe(value.into());
        record(&self.shared, Some(&self.served), name, event);
    }

    /// [`Client::timer`], attributed to these flags.
    pub fn timer(&self, name: &str) -> MetricTimer {
        MetricTimer::new(&self.shared, name, Some(self.served.clone()))
    }
}

/// A running timer; see [`Client::timer`]. It measures on Tokio's clock, so tests that pause
/// time (`tokio::time::pause`) get exact durations.
#[must_use = "a timer observes when it is stopped or dropped: dropped at once, it observes ~0 ms"]
pub struct MetricTimer {
    // Not a `Client`: a forgotten timer must not keep the sync task alive.
    shared: Arc<Shared>,
    name: String,
    // `None`: the scope current when it stops; `Some`: flags named by an `Attribution`.
    served: Option<Vec<Served>>,
    started: Instant,
    stopped: bool,
}

impl std::fmt::Debug for MetricTimer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricTimer")
            .field("name", &self.name)
            .field("elapsed", &self.started.elapsed())
            .finish()
    }
}

impl MetricTimer {
    fn new(shared: &Arc<Shared>, name: &str, served: Option<Vec<Served>>) -> Self {
        Self {
            shared: Arc::clone(shared),
            name: name.to_owned(),
            served,
            started: Instant::now(),
            stopped: false,
        }
    }

    /// Observes the elapsed time now rather than at the end of the block, and returns it.
    pub fn stop(mut self) -> Duration {
        self.observe()
    }

    fn observe(&mut self) -> Duration {
        let elapsed = self.started.elapsed();
        if !std::mem::replace(&mut self.stopped, true) {
            // From whole nanoseconds, so a representable number of milliseconds is exact.
            let ms = MetricEvent::Observe(elapsed.as_nanos() as f64 / 1e6);
            record(&self.shared, self.served.as_deref(), &self.name, ms);
        }
        elapsed
    }
}

impl Drop for MetricTimer {
    fn drop(&mut self) {
        self.observe();
    }
}
