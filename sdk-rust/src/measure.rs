//! Measuring outcomes by hand: [`Client::scope`] (a request that reads any flags),
//! [`Client::measure`] (work that depends on one flag, and whatever else it reads) and
//! [`Client::start_measure`] (one flag, without a closure). Each is a request scope: its
//! outcome goes on every flag served in it and once to each release cohort among them.

use crate::client::{Client, Shared};
use crate::context::Context;
use crate::metrics::Served;
use crate::series::Series;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant};

impl Client {
    /// Runs `work` as one request scope: every flag read while it runs (in this task) is
    /// remembered, and when it ends its duration and whether it returned `Ok` are recorded
    /// once against each flag variant served, and once for each release cohort served, however
    /// many of the release's flags were read. A scope that panics records an error; one
    /// dropped before it ends records nothing.
    ///
    /// ```no_run
    /// # async fn demo(client: flagwire::Client, ctx: flagwire::Context) -> Result<(), std::io::Error> {
    /// client.scope(async {
    ///     let fast = client.bool_value("fast-search", &ctx, false);
    ///     let ranker = client.string_value("ranker", &ctx, "bm25");
    ///     // … the request, using both …
    ///     Ok::<_, std::io::Error>(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn scope<Fut, T, E>(&self, work: Fut) -> Result<T, E>
    where
        Fut: Future<Output = Result<T, E>>,
    {
        crate::scope::run(self, Vec::new(), work, Result::is_ok).await
    }

    /// Evaluates `flag` (any type) and runs `work` with the variant served, as a request scope
    /// ([`Client::scope`]) that has served `flag`: the outcome is recorded against that
    /// variant (and cohort), against every other flag `work` reads, and once for each release
    /// cohort among them.
    ///
    /// ```no_run
    /// # async fn demo(client: flagwire::Client, ctx: flagwire::Context) -> Result<(), std::io::Error> {
    /// client.measure("new-checkout", &ctx, |variant| async move {
    ///     if variant == "on" { /* new checkout */ } else { /* old */ }
    ///     Ok::<_, std::io::Error>(())
    /// }).await?;
    /// # Ok(()) }
    /// ```
    pub async fn measure<F, Fut, T, E>(&self, flag: &str, ctx: &Context, work: F) -> Result<T, E>
    where
        F: FnOnce(String) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let served = self.serve(flag, ctx);
        let variant = served.variant.clone();
        // An error serves no variant, and the server accepts series of known variants only.
        let seed = if variant.is_empty() {
            Vec::new()
        } else {
            vec![served]
        };
        let work = async move { work(variant).await };
        crate::scope::run(self, seed, work, Result::is_ok).await
    }

    /// Starts measuring an outcome under `flag` by hand: read the variant, do the work, then
    /// `finish(ok)`. Its scope is that one flag (flags read meanwhile are not part of it: use
    /// [`Client::scope`] or [`Client::measure`] for that). Dropped unfinished, it records an
    /// error if the thread is panicking and a success otherwise.
    pub fn start_measure(&self, flag: &str, ctx: &Context) -> Measurement {
        let (series, variant) = self.serve_series(flag, ctx);
        Measurement {
            shared: Arc::clone(&self.shared),
            series,
            variant,
            started: Instant::now(),
            finished: false,
        }
    }

    /// Evaluates `flag` as [`Client::record`] counts it, but keeps the series: the outcome
    /// goes on it without a second lookup, and the served strings are the series' (nothing is
    /// copied). Without a series (offline, an error, or the series bound reached), the
    /// variant's name alone.
    fn serve_series(&self, flag: &str, ctx: &Context) -> (Option<Arc<Series>>, String) {
        let guard = self.shared.snapshot.load();
        let Some(snapshot) = guard.as_ref() else {
            return (None, String::new());
        };
        let r = snapshot.evaluate(flag, &ctx.inner, None);
        if r.variant.is_empty() {
            return (None, String::new());
        }
        crate::scope::remember(flag, r.variant, r.cohort, r.rollout_id);
        let series = self.shared.recorder.as_ref().and_then(|recorder| {
            recorder.measured(flag, r.variant, r.cohort, r.rollout_id, r.reason)
        });
        match series {
            Some(s) => (Some(s), String::new()),
            None => (None, r.variant.to_owned()),
        }
    }

    /// Evaluates `flag` without a type check, counting it (and remembering it in the enclosing
    /// scope, if any).
    fn serve(&self, flag: &str, ctx: &Context) -> Served {
        let mut served = Served {
            flag: flag.to_owned(),
            variant: String::new(),
            cohort: String::new(),
            rollout_id: String::new(),
        };
        if let Some(snapshot) = self.shared.snapshot.load().as_ref() {
            let r = snapshot.evaluate(flag, &ctx.inner, None);
            self.record(flag, &r);
            served.variant = r.variant.to_owned();
            served.cohort = r.cohort.to_owned();
            served.rollout_id = r.rollout_id.to_owned();
        }
        served
    }

    /// Records a scope's outcome (see `scope`).
    pub(crate) fn scope_outcome(&self, served: &[Served], ok: bool, elapsed: Duration) {
        if let Some(recorder) = &self.shared.recorder {
            recorder.scope_outcome(served, ok, elapsed);
        }
    }

    /// The recorder's window so far (tests).
    #[cfg(test)]
    pub(crate) fn take_metrics(&self) -> crate::metrics::Taken {
        self.shared.recorder.as_ref().expect("a recorder").take()
    }
}

/// An outcome being measured; see [`Client::start_measure`].
pub struct Measurement {
    // Not a `Client`: an unfinished measurement must not keep the sync task alive.
    shared: Arc<Shared>,
    // The series served (which holds the variant's name), or, without one (offline, or the
    // series bound reached), the variant's name alone.
    series: Option<Arc<Series>>,
    variant: String,
    started: Instant,
    finished: bool,
}

impl Measurement {
    /// The variant served (empty when the flag could not be evaluated).
    pub fn variant(&self) -> &str {
        self.series.as_ref().map_or(&self.variant, |s| &s.variant)
    }

    /// Records the outcome.
    pub fn finish(mut self, ok: bool) {
        self.record(ok);
    }

    fn record(&mut self, ok: bool) {
        if self.finished {
            return;
        }
        self.finished = true;
        if let (Some(recorder), Some(series)) = (&self.shared.recorder, &self.series) {
            recorder.measurement_outcome(series, ok, self.started.elapsed());
        }
    }
}

impl Drop for Measurement {
    fn drop(&mut self) {
        self.record(!std::thread::panicking());
    }
}
