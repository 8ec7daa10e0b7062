//! Where the server is and who we are: `--endpoint` (or `FLAGWIRE_ENDPOINT`) and the token in
//! `FLAGWIRE_TOKEN`, which is never a command-line argument so it stays out of shell history
//! and `ps`; and how to print (`--output`).
//!
//! An `https://` endpoint is verified against the operating system's root certificates
//! (tonic's `tls-native-roots`: what curl and grpcurl trust on the same machine, including a
//! company CA installed there, and `SSL_CERT_FILE`/`SSL_CERT_DIR` when set) plus the PEM CA
//! named with `--ca-file`. The system store rather than a compiled-in Mozilla list
//! (`tls-webpki-roots`) because operators manage trust there, and a distribution's updates
//! reach it without rebuilding the binary.

use super::Failure;
use super::output::Format;
use crate::protojson::Named;
use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, metrics_service_client::MetricsServiceClient,
    release_service_client::ReleaseServiceClient, rollout_service_client::RolloutServiceClient,
};
use std::time::Duration;
use tonic::metadata::MetadataValue;
use tonic::service::interceptor::InterceptedService;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint};
use tonic::{Request, Status};

/// The environment variable holding the token.
pub const TOKEN_VAR: &str = "FLAGWIRE_TOKEN";

/// Where the server listens.
#[derive(Debug, Clone, clap::Args)]
pub struct Target {
    /// The server's gRPC address.
    #[arg(
        long,
        env = "FLAGWIRE_ENDPOINT",
        default_value = "http://127.0.0.1:7070"
    )]
    pub endpoint: String,
    /// PEM CA certificate(s) to trust for an `https://` endpoint, besides the system's root
    /// certificates (for a server whose certificate comes from a private CA).
    #[arg(long = "ca-file", env = "FLAGWIRE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Where the server listens, and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct Connect {
    /// The server.
    #[command(flatten)]
    pub target: Target,
    /// table for people; json (the protobuf JSON mapping, as grpcurl prints it) or yaml (the
    /// same structure) for scripts.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The same as `--output json` (kept for scripts written before `--output`).
    #[arg(long, hide = true)]
    pub json: bool,
}

/// Adds `authorization: Bearer <token>` to every call.
#[derive(Clone)]
pub struct Bearer(MetadataValue<tonic::metadata::Ascii>);

impl tonic::service::Interceptor for Bearer {
    fn call(&mut self, mut r: Request<()>) -> Result<Request<()>, Status> {
        r.metadata_mut().insert("authorization", self.0.clone());
        Ok(r)
    }
}

/// An authenticated AdminService client.
pub type Admin = AdminServiceClient<InterceptedService<Channel, Bearer>>;
/// An authenticated RolloutService client.
pub type Rollouts = RolloutServiceClient<InterceptedService<Channel, Bearer>>;
/// An authenticated ReleaseService client.
pub type Releases = ReleaseServiceClient<InterceptedService<Channel, Bearer>>;
/// An authenticated MetricsService client.
pub type Metrics = MetricsServiceClient<InterceptedService<Channel, Bearer>>;

/// Clients of one connection.
pub struct Clients {
    /// AdminService.
    pub admin: Admin,
    /// RolloutService.
    pub rollouts: Rollouts,
    /// ReleaseService.
    pub releases: Releases,
    /// MetricsService.
    pub metrics: Metrics,
}

fn token() -> Result<Bearer, Failure> {
    let secret = std::env::var(TOKEN_VAR).unwrap_or_default();
    let secret = secret.trim();
    if secret.is_empty() {
        return Err(Failure::Usage(format!(
            "{TOKEN_VAR} is not set: export {TOKEN_VAR}=<token> (the server prints the admin \
             token on its first start and keeps it in <data-dir>/admin-token)"
        )));
    }
    let value = format!("Bearer {secret}")
        .parse()
        .map_err(|_| Failure::Usage(format!("{TOKEN_VAR} holds characters a token never has")))?;
    Ok(Bearer(value))
}

/// `error: source: source...`, since tonic's transport error alone says only "transport error".
fn chain(e: &dyn std::error::Error) -> String {
    let mut parts = vec![e.to_string()];
    let mut source = e.source();
    while let Some(s) = source {
        // hyper and tonic repeat their wrapper's message; say each thing once.
        let s_text = s.to_string();
        if parts.last() != Some(&s_text) {
            parts.push(s_text);
        }
        source = s.source();
    }
    parts.join(": ")
}

impl Target {
    fn uri(&self) -> String {
        if self.endpoint.contains("://") {
            self.endpoint.clone()
        } else {
            format!("http://{}", self.endpoint)
        }
    }

    /// Connects with the token from the environment (checked before connecting).
    pub async fn connect(&self) -> Result<Clients, Failure> {
        let bearer = token()?;
        let uri = self.uri();
        let mut endpoint = Endpoint::from_shared(uri.clone())
            .map_err(|e| Failure::Usage(format!("--endpoint {uri:?}: {e}")))?
            .connect_timeout(Duration::from_secs(5));
        if uri.starts_with("https://") {
            endpoint = self.tls(endpoint)?;
        }
        let channel = endpoint.connect().await.map_err(|e| {
            let why = chain(&e);
            let hint = if why.contains("certificate") {
                "the server's certificate is not trusted: pass --ca-file (or FLAGWIRE_CA_FILE) \
                 with the CA that signed it"
            } else {
                "is it running? (--endpoint or FLAGWIRE_ENDPOINT names another)"
            };
            Failure::Unreachable(format!("cannot reach the server at {uri} ({why}); {hint}"))
        })?;
        // Backups and big bundles exceed tonic's 4 MiB default.
        let limit = 256 * 1024 * 1024;
        Ok(Clients {
            admin: AdminServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            rollouts: RolloutServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit),
            releases: ReleaseServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit),
            metrics: MetricsServiceClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(limit),
        })
    }

    /// TLS with the system's roots plus `--ca-file`. A machine without a system store (a
    /// minimal container) still connects with `--ca-file` alone.
    fn tls(&self, endpoint: Endpoint) -> Result<Endpoint, Failure> {
        let mut config = ClientTlsConfig::new();
        if let Some(path) = &self.ca_file {
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Local(anyhow::anyhow!("--ca-file {}: {e}", path.display()))
            })?;
            config = config.ca_certificate(Certificate::from_pem(pem));
        }
        let native = endpoint
            .clone()
            .tls_config(config.clone().with_native_roots());
        match (native, &self.ca_file) {
            (Ok(endpoint), _) => Ok(endpoint),
            // tonic refuses native roots when the system has none; the CA may be enough.
            (Err(_), Some(path)) => endpoint.tls_config(config).map_err(|e| {
                Failure::Usage(format!("--ca-file {}: {}", path.display(), chain(&e)))
            }),
            (Err(e), None) => Err(Failure::Usage(format!(
                "{}: no system root certificates ({}): install them (e.g. the ca-certificates \
                 package) or pass --ca-file with the CA that signed the server's certificate",
                self.uri(),
                chain(&e)
            ))),
        }
    }
}

impl Connect {
    /// See [`Target::connect`].
    pub async fn connect(&self) -> Result<Clients, Failure> {
        self.target.connect().await
    }

    /// The output format (`--json` is `--output json`).
    pub fn format(&self) -> Format {
        if self.json { Format::Json } else { self.output }
    }

    /// Prints `message` as JSON or YAML when that is the format and returns true; returns
    /// false for tables, which the caller renders.
    pub fn structured<M: Named>(&self, message: &M) -> bool {
        super::output::structured(self.format(), message)
    }
}
