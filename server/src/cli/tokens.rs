//! `tokens create|list|revoke`: API tokens. The secret is printed once, by `create`; the
//! server keeps only its hash.

use super::Outcome;
use super::client::Connect;
use super::output::{self, Table};
use flagwire_proto::v1::{
    ApiToken, CreateApiTokenRequest, ListApiTokensRequest, RevokeApiTokenRequest, Role,
};

/// `flagwire tokens ...`.
#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Create a token and print its secret (only this once).
    Create(CreateArgs),
    /// List tokens (never their secrets).
    List(ListArgs),
    /// Revoke a token; it stops working at once.
    Revoke(RevokeArgs),
}

/// The roles as written on the command line.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum RoleArg {
    /// Everything.
    Admin,
    /// Get, List and Watch.
    ReadOnly,
    /// Watch, Evaluate and Report in one environment (`--env`).
    Sdk,
}

/// Options of `tokens create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The name, recorded as the actor in the audit log.
    pub name: String,
    /// What the token may do.
    #[arg(long, value_enum)]
    pub role: RoleArg,
    /// The environment an sdk token is bound to.
    #[arg(long, default_value = "")]
    pub env: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `tokens list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Include revoked tokens.
    #[arg(long)]
    pub revoked: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `tokens revoke`.
#[derive(Debug, clap::Args)]
pub struct RevokeArgs {
    /// The token's id (`tokens list` shows it).
    pub id: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `tokens` subcommand.
pub async fn run(command: TokensCommand) -> Outcome {
    match command {
        TokensCommand::Create(a) => create(a).await,
        TokensCommand::List(a) => list(a).await,
        TokensCommand::Revoke(a) => revoke(a).await,
    }
}

fn role_name(t: &ApiToken) -> String {
    let r = Role::try_from(t.role).unwrap_or(Role::Unspecified);
    output::enum_name(r.as_str_name(), "ROLE_")
        .to_lowercase()
        .replace('_', "-")
}

async fn create(a: CreateArgs) -> Outcome {
    let role = match a.role {
        RoleArg::Admin => Role::Admin,
        RoleArg::ReadOnly => Role::ReadOnly,
        RoleArg::Sdk => Role::Sdk,
    };
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .create_api_token(CreateApiTokenRequest {
            name: a.name,
            role: role as i32,
            environment: a.env,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let t = response.token.unwrap_or_default();
    let scope = if t.environment.is_empty() {
        String::new()
    } else {
        format!(" in {}", t.environment)
    };
    output::line(&format!(
        "created token {} ({}), role {}{scope}",
        t.name,
        t.id,
        role_name(&t)
    ));
    // The secret alone on the last line, so `| tail -n 1` captures it.
    output::line("secret (shown only now; send it as `authorization: Bearer <secret>`):");
    output::line(&response.secret);
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .list_api_tokens(ListApiTokensRequest {
            include_revoked: a.revoked,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "ROLE",
        "ENVIRONMENT",
        "PREFIX",
        "CREATED",
        "REVOKED",
    ]);
    for token in &response.tokens {
        t.row(vec![
            token.id.clone(),
            token.name.clone(),
            role_name(token),
            if token.environment.is_empty() {
                "-".into()
            } else {
                token.environment.clone()
            },
            token.prefix.clone(),
            output::time(token.create_time.as_ref()),
            output::time(token.revoke_time.as_ref()),
        ]);
    }
    t.print();
    Ok(())
}

async fn revoke(a: RevokeArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .revoke_api_token(RevokeApiTokenRequest {
            id: a.id,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let t = response.token.unwrap_or_default();
        output::line(&format!("revoked token {} ({})", t.name, t.id));
    }
    Ok(())
}
