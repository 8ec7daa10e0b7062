//! Configuring and starting a [`Client`].

use crate::client::{Client, Shared, State};
use crate::endpoints::{self, Endpoints, Resolved, Resolver};
use crate::error::Error;
use crate::{bootstrap, report, sync};
use std::future::Future;
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::Channel;

/// Options of a client; see the setters of [`ClientBuilder`] for each one's meaning.
#[derive(Debug, Clone)]
pub(crate) struct Options {
    /// The servers, in order (the builder's endpoint split at commas, or `endpoints`).
    pub endpoints: Vec<String>,
    pub token: String,
    pub environment: String,
    pub connect_timeout: Duration,
    pub initial_ready_timeout: Duration,
    pub heartbeat_timeout: Duration,
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    pub metrics_flush_interval: Duration,
    pub bootstrap_file: Option<PathBuf>,
    pub offline: bool,
    pub ca_pem: Option<Vec<u8>>,
    /// Resolves names to addresses instead of the system resolver.
    pub resolver: Option<Resolver>,
}

/// Builds a [`Client`]: `Client::builder(endpoint, sdk_token)...build()`.
#[derive(Debug, Clone)]
pub struct ClientBuilder {
    options: Options,
}

impl ClientBuilder {
    pub(crate) fn new(endpoint: String, token: String) -> Self {
        Self {
            options: Options {
                endpoints: endpoints::split(&endpoint),
                token,
                environment: String::new(),
                connect_timeout: Duration::from_secs(5),
                initial_ready_timeout: Duration::from_secs(10),
                heartbeat_timeout: Duration::from_secs(45),
                min_backoff: Duration::from_millis(100),
                max_backoff: Duration::from_secs(30),
                metrics_flush_interval: Duration::from_secs(10),
                bootstrap_file: None,
                offline: false,
                ca_pem: None,
                resolver: None,
            },
        }
    }

    /// The servers to connect to (replicas), in order, instead of the builder's endpoint: the
    /// client connects to the first and, after a session ends or cannot start, to the next,
    /// round again, resuming from the revision it holds, with the same backoff. A name that
    /// resolves to several addresses counts once per address. (The builder's endpoint may also
    /// list several, separated by commas, as an environment variable holds them.)
    pub fn endpoints<I, S>(mut self, endpoints: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.options.endpoints = endpoints.into_iter().map(Into::into).collect();
        self
    }

    /// Resolves names to their addresses with `resolve` instead of the system resolver (service
    /// discovery of your own; tests). A name with several addresses is one endpoint per address.
    pub fn resolver<F, Fut>(mut self, resolve: F) -> Self
    where
        F: Fn(String) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = std::io::Result<Vec<IpAddr>>> + Send + 'static,
    {
        self.options.resolver = Some(Resolver(Arc::new(move |host| -> Resolved {
            Box::pin(resolve(host))
        })));
        self
    }

    /// How long one connection attempt may take (default 5 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.options.connect_timeout = timeout;
        self
    }

    /// How long [`Client::ready`] waits for the first snapshot (default 10 s).
    pub fn initial_ready_timeout(mut self, timeout: Duration) -> Self {
        self.options.initial_ready_timeout = timeout;
        self
    }

    /// A stream silent for this long is treated as dead and reconnected (default 45 s, three
    /// times the server's default heartbeat interval).
    pub fn heartbeat_timeout(mut self, timeout: Duration) -> Self {
        self.options.heartbeat_timeout = timeout;
        self
    }

    /// Reconnection backoff: starts at `min`, doubles per failure up to `max`, with jitter,
    /// and starts over once a session is `Ready` (defaults 100 ms and 30 s). A refused token
    /// waits `max` between attempts. The rules: `docs/reference/sync.md`.
    pub fn backoff(mut self, min: Duration, max: Duration) -> Self {
        self.options.min_backoff = min;
        self.options.max_backoff = max.max(min);
        self
    }

    /// How often usage and outcome metrics are sent (default 10 s).
    pub fn metrics_flush_interval(mut self, interval: Duration) -> Self {
        self.options.metrics_flush_interval = interval;
        self
    }

    /// The environment to watch, for admin or read-only tokens; sdk tokens need none.
    pub fn environment(mut self, environment: impl Into<String>) -> Self {
        self.options.environment = environment.into();
        self
    }

    /// Persist every applied snapshot to `path`, and start from it when present, so the
    /// service evaluates last known values while the server is unreachable at start-up.
    pub fn bootstrap_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.options.bootstrap_file = Some(path.into());
        self
    }

    /// Evaluate from the bootstrap file only; never connect.
    pub fn offline(mut self, offline: bool) -> Self {
        self.options.offline = offline;
        self
    }

    /// Trust this PEM-encoded CA for `https://` endpoints (besides nothing else).
    pub fn tls_ca_pem(mut self, pem: impl Into<Vec<u8>>) -> Self {
        self.options.ca_pem = Some(pem.into());
        self
    }

    /// The options as set (tests that make a client without its tasks).
    #[cfg(test)]
    pub(crate) fn into_options(self) -> Options {
        self.options
    }

    /// Starts the client (and its background sync task, unless offline). Must be called inside
    /// a Tokio runtime.
    pub fn build(self) -> Result<Client, Error> {
        let transport = if self.options.offline {
            None
        } else {
            let endpoints = Endpoints::new(self.options.clone())?;
            // Until the first session picks its endpoint (names are resolved then), reports go
            // to the first one as configured.
            let first = endpoints::configure(&self.options.endpoints[0], &self.options, None)?;
            Some((
                sync::Dial::Endpoints(Box::new(endpoints)),
                first.connect_lazy(),
            ))
        };
        self.start(transport)
    }

    /// Starts the client over `transport`: how Watch sessions connect, and the (lazy) channel
    /// reports go through; `None` offline.
    pub(crate) fn start(self, transport: Option<(sync::Dial, Channel)>) -> Result<Client, Error> {
        let options = self.options;
        let handle = tokio::runtime::Handle::try_current().map_err(|_| Error::NoRuntime)?;
        let initial = match &options.bootstrap_file {
            Some(path) if path.exists() => Some(bootstrap::load(path)?),
            Some(_) if options.offline => {
                return Err(Error::Config(
                    "offline mode needs an existing bootstrap file".into(),
                ));
            }
            None if options.offline => {
                return Err(Error::Config("offline mode needs a bootstrap file".into()));
            }
            _ => None,
        };
        let state = match (&initial, options.offline) {
            (Some(_), true) => State::Ready,
            (Some(_), false) => State::Stale,
            (None, _) => State::Connecting,
        };
        let (dial, reports) = transport.unzip();
        let shared = Arc::new(Shared::new(options, initial, state, reports.clone()));
        let task = dial.map(|d| handle.spawn(sync::run(Arc::clone(&shared), d)));
        if reports.is_some() {
            handle.spawn(report::flush_loop(Arc::clone(&shared)));
        }
        Ok(Client::new(shared, task))
    }
}
