//! Authentication and role checks, in one tower layer in front of every gRPC service.
//!
//! The layer reads `authorization: Bearer <token>`, resolves it to a [`Principal`] (inserted as a
//! request extension for handlers) and checks the role against [`access`], the single table of
//! what each RPC needs. Health and reflection need no token, so probes and grpcurl discovery
//! work. Environment binding of sdk tokens needs the request body and is checked by handlers
//! through [`Principal::environment_for`].

use crate::catalog::{Catalog, tokens::Principal};
use crate::error::Error;
use flagwire_proto::v1::Role;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use tonic::Status;

/// What an RPC needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Nothing (health, reflection, CORS preflight).
    Public,
    /// Reads of flags for one environment: sdk, read-only and admin tokens.
    Flags,
    /// Sending metrics: sdk and admin tokens.
    Report,
    /// Reading administration data: read-only and admin tokens.
    Read,
    /// Everything else: admin tokens.
    Admin,
}

/// The access an RPC path requires.
pub fn access(path: &str) -> Access {
    let Some(rest) = path.strip_prefix('/') else {
        return Access::Admin;
    };
    let (service, method) = rest.split_once('/').unwrap_or((rest, ""));
    let read = method.starts_with("Get") || method.starts_with("List");
    match service {
        "grpc.health.v1.Health"
        | "grpc.reflection.v1.ServerReflection"
        | "grpc.reflection.v1alpha.ServerReflection" => Access::Public,
        "flagwire.v1.FlagService"
        | "flagd.evaluation.v1.Service"
        | "flagd.evaluation.v2.Service"
        | "flagd.sync.v1.FlagSyncService" => Access::Flags,
        "flagwire.v1.MetricsService" if method == "Report" || method == "ReportBatch" => {
            Access::Report
        }
        "flagwire.v1.MetricsService" => Access::Read,
        "flagwire.v1.AdminService" if method == "ListApiTokens" => Access::Admin,
        "flagwire.v1.AdminService"
        | "flagwire.v1.RolloutService"
        | "flagwire.v1.ReleaseService"
            if read =>
        {
            Access::Read
        }
        _ => Access::Admin,
    }
}

fn allowed(role: Role, access: Access) -> bool {
    matches!(
        (role, access),
        (_, Access::Public)
            | (Role::Admin, _)
            | (Role::Sdk, Access::Flags | Access::Report)
            | (Role::ReadOnly, Access::Flags | Access::Read)
    )
}

impl Principal {
    /// The environment a request acts on: sdk tokens use their own (and reject any other);
    /// other roles must name one.
    pub fn environment_for(&self, requested: &str) -> Result<String, Error> {
        match self.role {
            Role::Sdk if requested.is_empty() || requested == self.environment => {
                Ok(self.environment.clone())
            }
            Role::Sdk => Err(Error::PermissionDenied(format!(
                "token {:?} is bound to environment {:?}, not {requested:?}",
                self.name, self.environment
            ))),
            _ if requested.is_empty() => Err(Error::invalid("environment", "must be set")),
            _ => Ok(requested.to_owned()),
        }
    }
}

/// The principal a handler runs as; the layer guarantees one for non-public RPCs.
pub fn principal<T>(request: &tonic::Request<T>) -> Result<Principal, Status> {
    request
        .extensions()
        .get::<Principal>()
        .cloned()
        .ok_or_else(|| Status::unauthenticated("missing credentials"))
}

/// The tower layer.
#[derive(Clone)]
pub struct AuthLayer {
    catalog: Arc<Catalog>,
    flagd_environment: Option<Arc<str>>,
}

impl AuthLayer {
    /// A layer authenticating against `catalog`'s tokens.
    pub fn new(catalog: Arc<Catalog>) -> Self {
        Self {
            catalog,
            flagd_environment: None,
        }
    }

    /// flagd calls without a token act as an sdk token of `env` (`--flagd-environment`).
    pub fn with_flagd_environment(mut self, env: Option<String>) -> Self {
        self.flagd_environment = env.map(Arc::from);
        self
    }
}

impl<S> tower::Layer<S> for AuthLayer {
    type Service = Auth<S>;
    fn layer(&self, inner: S) -> Auth<S> {
        Auth {
            inner,
            catalog: Arc::clone(&self.catalog),
            flagd_environment: self.flagd_environment.clone(),
        }
    }
}

/// The service [`AuthLayer`] produces.
#[derive(Clone)]
pub struct Auth<S> {
    inner: S,
    catalog: Arc<Catalog>,
    flagd_environment: Option<Arc<str>>,
}

fn check(
    catalog: &Catalog,
    flagd_environment: Option<&str>,
    req: &http::Request<impl Sized>,
) -> Result<Option<Principal>, Status> {
    let access = access(req.uri().path());
    if access == Access::Public || req.method() == http::Method::OPTIONS {
        return Ok(None);
    }
    if let Some(env) = flagd_environment
        && req.uri().path().starts_with("/flagd.")
        && !req.headers().contains_key(http::header::AUTHORIZATION)
    {
        return Ok(Some(Principal {
            id: String::new(),
            name: "flagd (no token)".into(),
            role: Role::Sdk,
            environment: env.to_owned(),
        }));
    }
    let header = req
        .headers()
        .get(http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Status::unauthenticated("missing `authorization: Bearer <token>`"))?;
    let token = header
        .strip_prefix("Bearer ")
        .or_else(|| header.strip_prefix("bearer "))
        .ok_or_else(|| Status::unauthenticated("authorization must be `Bearer <token>`"))?;
    let principal = catalog
        .authenticate(token.trim())
        .ok_or_else(|| Status::unauthenticated("unknown or revoked token"))?;
    if !allowed(principal.role, access) {
        return Err(Status::permission_denied(format!(
            "token {:?} ({}) may not call {}",
            principal.name,
            principal.role.as_str_name(),
            req.uri().path()
        )));
    }
    Ok(Some(principal))
}

impl<S, B, R> tower::Service<http::Request<B>> for Auth<S>
where
    S: tower::Service<http::Request<B>, Response = http::Response<R>> + Clone + Send + 'static,
    S::Future: Send + 'static,
    B: Send + 'static,
    R: Default + Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: http::Request<B>) -> Self::Future {
        match check(&self.catalog, self.flagd_environment.as_deref(), &req) {
            Ok(principal) => {
                if let Some(p) = principal {
                    req.extensions_mut().insert(p);
                }
                // The clone was readied by nobody: swap so the readied one handles this call.
                let clone = self.inner.clone();
                let mut inner = std::mem::replace(&mut self.inner, clone);
                Box::pin(inner.call(req))
            }
            Err(status) => Box::pin(async move { Ok(status.into_http()) }),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_access_table() {
        assert_eq!(access("/grpc.health.v1.Health/Check"), Access::Public);
        assert_eq!(access("/flagwire.v1.FlagService/Watch"), Access::Flags);
        assert_eq!(access("/flagwire.v1.MetricsService/Report"), Access::Report);
        assert_eq!(
            access("/flagwire.v1.MetricsService/ReportBatch"),
            Access::Report
        );
        for query in ["ListInstances", "GetUsage", "CountAppliedInstances"] {
            let path = format!("/flagwire.v1.MetricsService/{query}");
            assert_eq!(access(&path), Access::Read, "{path}");
        }
        assert!(allowed(Role::Sdk, Access::Report));
        assert!(allowed(Role::Admin, Access::Report));
        assert_eq!(access("/flagwire.v1.AdminService/GetFlag"), Access::Read);
        assert_eq!(
            access("/flagwire.v1.AdminService/ListApiTokens"),
            Access::Admin
        );
        assert_eq!(
            access("/flagwire.v1.AdminService/CreateFlag"),
            Access::Admin
        );
        assert_eq!(access("/flagwire.v1.RolloutService/Kill"), Access::Admin);
        assert!(!allowed(Role::Sdk, Access::Read));
        assert!(!allowed(Role::ReadOnly, Access::Report));
        assert!(allowed(Role::ReadOnly, Access::Flags));
    }
}
