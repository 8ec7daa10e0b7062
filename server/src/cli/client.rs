//! Where the server is and who we are: `--endpoint` (or `FLAGWIRE_ENDPOINT`) and the token in
//! `FLAGWIRE_TOKEN`, which is never a command-line argument so it stays out of shell history
//! and `ps`.

use super::Failure;
use flagwire_proto::grpc::{
    admin_service_client::AdminServiceClient, release_service_client::ReleaseServiceClient,
    rollout_service_client::RolloutServiceClient,
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
    /// PEM CA certificate(s) to trust for an `https://` endpoint (a server started with
    /// `--tls-cert`/`--tls-key`).
    #[arg(long = "ca-file", env = "FLAGWIRE_CA_FILE")]
    pub ca_file: Option<std::path::PathBuf>,
}

/// Where the server listens, and how to print.
#[derive(Debug, Clone, clap::Args)]
pub struct Connect {
    /// The server.
    #[command(flatten)]
    pub target: Target,
    /// Print the protobuf JSON mapping (as grpcurl does) instead of a table.
    #[arg(long)]
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

/// Clients of one connection.
pub struct Clients {
    /// AdminService.
    pub admin: Admin,
    /// RolloutService.
    pub rollouts: Rollouts,
    /// ReleaseService.
    pub releases: Releases,
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
            // No public roots are compiled in: a Flagwire server's certificate usually comes
            // from a private CA, which the operator names.
            let Some(path) = &self.ca_file else {
                return Err(Failure::Usage(format!(
                    "{uri} is https: pass --ca-file (or FLAGWIRE_CA_FILE) with the CA that \
                     signed the server's certificate"
                )));
            };
            let pem = std::fs::read(path).map_err(|e| {
                Failure::Local(anyhow::anyhow!("--ca-file {}: {e}", path.display()))
            })?;
            let tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(pem));
            endpoint = endpoint.tls_config(tls).map_err(|e| {
                Failure::Usage(format!("--ca-file {}: {}", path.display(), chain(&e)))
            })?;
        }
        let channel = endpoint.connect().await.map_err(|e| {
            Failure::Unreachable(format!(
                "cannot reach the server at {uri} ({}); is it running? (--endpoint or \
                 FLAGWIRE_ENDPOINT names another)",
                chain(&e)
            ))
        })?;
        // Backups and big bundles exceed tonic's 4 MiB default.
        let limit = 256 * 1024 * 1024;
        Ok(Clients {
            admin: AdminServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit)
                .max_encoding_message_size(limit),
            rollouts: RolloutServiceClient::with_interceptor(channel.clone(), bearer.clone())
                .max_decoding_message_size(limit),
            releases: ReleaseServiceClient::with_interceptor(channel, bearer)
                .max_decoding_message_size(limit),
        })
    }
}

impl Connect {
    /// See [`Target::connect`].
    pub async fn connect(&self) -> Result<Clients, Failure> {
        self.target.connect().await
    }
}
