//! Where sessions connect: the configured endpoints (replicas) in order, each name expanded to
//! every address it resolves to, and the rotation through them (`docs/reference/sync.md`,
//! "Several endpoints"). The sync task asks for the current endpoint before each session and
//! moves to the next after a session that ended or could not start.
//!
//! Explicit rotation rather than `Channel::balance_list`: a balanced channel spreads calls over
//! every endpoint it can reach, while failover needs one session on one replica and, after a
//! disconnect, the *next* one. The expansion is ours for the same reason: a connection to a
//! name with several addresses uses one of them for its whole life.

use crate::builder::Options;
use crate::error::Error;
use std::fmt;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;
use tonic::transport::{Certificate, ClientTlsConfig, Endpoint, Uri};

/// What a resolver returns: every address of a host.
pub type Resolved = Pin<Box<dyn Future<Output = std::io::Result<Vec<IpAddr>>> + Send>>;

/// Resolves a host to its addresses (the system resolver unless the builder was given one).
#[derive(Clone)]
pub(crate) struct Resolver(pub Arc<dyn Fn(String) -> Resolved + Send + Sync>);

impl fmt::Debug for Resolver {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Resolver")
    }
}

/// The endpoints of a builder's `endpoint` argument: one URL, or several separated by commas
/// (the form an environment variable holds).
pub(crate) fn split(endpoint: &str) -> Vec<String> {
    endpoint
        .split(',')
        .map(str::trim)
        .filter(|e| !e.is_empty())
        .map(str::to_owned)
        .collect()
}

/// `url` as a configured tonic endpoint (timeouts, keep-alive, TLS). `pinned`: connect to this
/// address instead, presenting `url`'s authority and verifying its host name.
pub(crate) fn configure(
    url: &str,
    options: &Options,
    pinned: Option<IpAddr>,
) -> Result<Endpoint, Error> {
    let config = |e: tonic::transport::Error| Error::Config(format!("endpoint {url:?}: {e}"));
    let uri: Uri = url
        .parse()
        .map_err(|e| Error::Config(format!("endpoint {url:?}: {e}")))?;
    let target = match pinned {
        None => url.to_owned(),
        Some(ip) => {
            let scheme = uri.scheme_str().unwrap_or("http");
            let port = uri
                .port_u16()
                .unwrap_or(if scheme == "https" { 443 } else { 80 });
            let host = match ip {
                IpAddr::V4(v4) => v4.to_string(),
                IpAddr::V6(v6) => format!("[{v6}]"),
            };
            format!("{scheme}://{host}:{port}")
        }
    };
    let mut endpoint = Endpoint::from_shared(target)
        .map_err(config)?
        .connect_timeout(options.connect_timeout)
        .tcp_nodelay(true)
        .http2_keep_alive_interval(Duration::from_secs(30))
        .keep_alive_timeout(Duration::from_secs(10));
    if pinned.is_some() {
        endpoint = endpoint.origin(uri.clone());
    }
    if url.starts_with("https://") || options.ca_pem.is_some() {
        let mut tls = ClientTlsConfig::new();
        if let Some(pem) = &options.ca_pem {
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        if let (Some(_), Some(host)) = (pinned, uri.host()) {
            tls = tls.domain_name(host.trim_matches(['[', ']']));
        }
        endpoint = endpoint
            .tls_config(tls)
            .map_err(|e| Error::Config(format!("TLS: {e}")))?;
    }
    Ok(endpoint)
}

/// Every address of `host` through the system resolver (getaddrinfo), without duplicates.
pub(crate) fn system_resolve(host: String) -> Resolved {
    Box::pin(async move {
        let mut addresses = Vec::new();
        for address in tokio::net::lookup_host((host.as_str(), 0)).await? {
            if !addresses.contains(&address.ip()) {
                addresses.push(address.ip());
            }
        }
        Ok(addresses)
    })
}

/// A configured endpoint, and where it leads (its URL, and the address it is pinned to): the
/// sync task tells by it whether a session moved to another endpoint.
#[derive(Clone)]
pub(crate) struct Target {
    pub endpoint: Endpoint,
    pub key: String,
}

fn target(url: &str, options: &Options, pinned: Option<IpAddr>) -> Result<Target, Error> {
    Ok(Target {
        endpoint: configure(url, options, pinned)?,
        key: match pinned {
            Some(ip) => format!("{url} at {ip}"),
            None => url.to_owned(),
        },
    })
}

/// The targets of one endpoint: one per address of a name that resolves to several, else the
/// endpoint itself (a literal address, a name with one address, or one that does not resolve:
/// the connection resolves it again and fails or succeeds as it would have).
pub(crate) async fn expand(
    url: &str,
    options: &Options,
    resolve: &Resolver,
) -> Result<Vec<Target>, Error> {
    let single = || target(url, options, None).map(|t| vec![t]);
    let Ok(uri) = url.parse::<Uri>() else {
        return single();
    };
    let Some(host) = uri.host() else {
        return single();
    };
    if host.trim_matches(['[', ']']).parse::<IpAddr>().is_ok() {
        return single();
    }
    let Ok(resolved) = (resolve.0)(host.to_owned()).await else {
        return single();
    };
    let mut addresses = Vec::new();
    for ip in resolved {
        if !addresses.contains(&ip) {
            addresses.push(ip);
        }
    }
    if addresses.len() < 2 {
        return single();
    }
    addresses
        .into_iter()
        .map(|ip| target(url, options, Some(ip)))
        .collect()
}

/// The endpoints in order, expanded, and which one is current. Starts at the first; `advance`
/// moves to the next and wraps around, resolving every name again when it does (a replica
/// added to or removed from a name is seen after one round).
pub(crate) struct Endpoints {
    options: Options,
    resolve: Resolver,
    targets: Option<Vec<Target>>,
    index: usize,
}

impl Endpoints {
    /// Checks every endpoint (a bad URL fails the build, as with one endpoint).
    pub fn new(options: Options) -> Result<Self, Error> {
        if options.endpoints.is_empty() {
            return Err(Error::Config("at least one endpoint is required".into()));
        }
        for url in &options.endpoints {
            configure(url, &options, None)?;
        }
        let resolve = options
            .resolver
            .clone()
            .unwrap_or_else(|| Resolver(Arc::new(system_resolve)));
        Ok(Self {
            options,
            resolve,
            targets: None,
            index: 0,
        })
    }

    /// The endpoint the next session connects to.
    pub async fn current(&mut self) -> Target {
        if self.targets.is_none() {
            let mut targets = Vec::new();
            for url in &self.options.endpoints {
                match expand(url, &self.options, &self.resolve).await {
                    Ok(expanded) => targets.extend(expanded),
                    // Checked by `new`; a pinned address cannot make it invalid.
                    Err(e) => tracing::warn!(error = %e, "flagwire: endpoint skipped"),
                }
            }
            if targets.is_empty() {
                let first = &self.options.endpoints[0];
                targets.push(target(first, &self.options, None).expect("checked by new"));
            }
            self.index %= targets.len();
            self.targets = Some(targets);
        }
        let targets = self.targets.as_ref().expect("expanded above");
        targets[self.index].clone()
    }

    /// Moves to the next endpoint (after a session ended or a connection failed).
    pub fn advance(&mut self) {
        self.index += 1;
        let Some(targets) = &self.targets else {
            return;
        };
        if self.index >= targets.len() {
            self.index = 0;
            if self.options.endpoints.len() > 1 || targets.len() > 1 {
                self.targets = None;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Client;
    use std::sync::Mutex;

    type Table = &'static [(&'static str, &'static [&'static str])];

    /// Options for `endpoints`, resolving names by `table` (any other name fails), and the
    /// names asked.
    fn configured(endpoints: &[&str], table: Table) -> (Options, Arc<Mutex<Vec<String>>>) {
        let asked = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&asked);
        let options = Client::builder("http://unused:1", "t")
            .endpoints(endpoints.iter().copied())
            .resolver(move |host: String| {
                log.lock().unwrap().push(host.clone());
                let found = table.iter().find(|(h, _)| *h == host).map(|(_, a)| *a);
                async move {
                    let found = found.ok_or_else(|| std::io::Error::other("no such name"))?;
                    Ok(found.iter().map(|a| a.parse().unwrap()).collect())
                }
            })
            .into_options();
        (options, asked)
    }

    async fn keys(url: &str, table: Table) -> Vec<String> {
        let (options, _) = configured(&[url], table);
        let resolver = options.resolver.clone().unwrap();
        let targets = expand(url, &options, &resolver).await.unwrap();
        targets.into_iter().map(|t| t.key).collect()
    }

    #[test]
    fn splits_commas() {
        assert_eq!(split("http://a:1"), ["http://a:1"]);
        assert_eq!(
            split(" http://a:1 ,http://b:2,"),
            ["http://a:1", "http://b:2"]
        );
        assert!(split(" , ").is_empty());
    }

    #[tokio::test]
    async fn expands_a_name_with_several_addresses_and_leaves_the_rest() {
        const TABLE: Table = &[
            ("multi", &["10.0.0.1", "fd00::1", "10.0.0.1"]),
            ("single", &["10.0.0.9"]),
        ];
        assert_eq!(
            keys("https://multi:7070", TABLE).await,
            [
                "https://multi:7070 at 10.0.0.1",
                "https://multi:7070 at fd00::1"
            ]
        );
        for url in [
            "http://single:7070",
            "http://unknown:7070",
            "http://127.0.0.1:7070",
            "http://[::1]:7070",
        ] {
            assert_eq!(keys(url, TABLE).await, [url], "{url}");
        }
        // A pinned endpoint connects to the address and keeps the name as its origin.
        let (options, _) = configured(&["https://multi:7070"], TABLE);
        let pinned = configure(
            "https://multi:7070",
            &options,
            Some("fd00::1".parse().unwrap()),
        );
        assert_eq!(pinned.unwrap().uri().to_string(), "https://[fd00::1]:7070/");
    }

    #[tokio::test]
    async fn rotates_through_every_address_in_order_resolving_again_each_round() {
        const TABLE: Table = &[
            ("multi", &["10.0.0.1", "10.0.0.2"]),
            ("other", &["10.0.0.3"]),
        ];
        let (options, asked) = configured(&["http://multi:1", "http://other:2"], TABLE);
        let mut endpoints = Endpoints::new(options).unwrap();
        let mut seen = Vec::new();
        for _ in 0..4 {
            seen.push(endpoints.current().await.key);
            endpoints.advance();
        }
        let expected = [
            "http://multi:1 at 10.0.0.1",
            "http://multi:1 at 10.0.0.2",
            "http://other:2",
            "http://multi:1 at 10.0.0.1",
        ];
        assert_eq!(seen, expected);
        assert_eq!(*asked.lock().unwrap(), ["multi", "other", "multi", "other"]);

        let (options, _) = configured(&["http://h:1"], TABLE);
        let mut single = Endpoints::new(options).unwrap();
        for _ in 0..3 {
            assert_eq!(single.current().await.key, "http://h:1");
            single.advance();
        }
    }

    #[tokio::test]
    async fn the_system_resolver_answers_for_localhost() {
        let addresses = system_resolve("localhost".into()).await.unwrap();
        assert!(
            addresses.contains(&"127.0.0.1".parse().unwrap()),
            "{addresses:?}"
        );
    }
}
