//! `env create|list|get|delete`: environments.

use super::Outcome;
use super::client::Connect;
use super::output::{self, Table};
use flagwire_proto::v1::{
    CreateEnvironmentRequest, DeleteEnvironmentRequest, Environment, GetEnvironmentRequest,
    ListEnvironmentsRequest,
};

/// `flagwire env ...`.
#[derive(Debug, clap::Subcommand)]
pub enum EnvCommand {
    /// Create an environment.
    Create(CreateArgs),
    /// List environments with their revisions.
    List(ListArgs),
    /// Show one environment.
    Get(GetArgs),
    /// Delete an environment no flag, segment or token refers to.
    Delete(DeleteArgs),
}

/// Options of `env create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The key (lowercase letters, digits, `-`, `_`, `.`).
    pub key: String,
    /// Display name (default: the key).
    #[arg(long, default_value = "")]
    pub name: String,
    /// Free text for people.
    #[arg(long, default_value = "")]
    pub description: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `env list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `env get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The environment's key.
    pub key: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `env delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The environment's key.
    pub key: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs an `env` subcommand.
pub async fn run(command: EnvCommand) -> Outcome {
    match command {
        EnvCommand::Create(a) => create(a).await,
        EnvCommand::List(a) => list(a).await,
        EnvCommand::Get(a) => get(a).await,
        EnvCommand::Delete(a) => delete(a).await,
    }
}

fn table(envs: &[Environment]) -> Table {
    let mut t = Table::new(&["KEY", "NAME", "REVISION", "CREATED", "DESCRIPTION"]);
    for e in envs {
        t.row(vec![
            e.key.clone(),
            e.name.clone(),
            e.revision.to_string(),
            output::time(e.create_time.as_ref()),
            e.description.clone(),
        ]);
    }
    t
}

async fn create(a: CreateArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .create_environment(CreateEnvironmentRequest {
            environment: Some(Environment {
                key: a.key,
                name: a.name,
                description: a.description,
                ..Default::default()
            }),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let e = response.environment.unwrap_or_default();
    output::line(&format!("created environment {} ({})", e.key, e.name));
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .list_environments(ListEnvironmentsRequest {})
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        table(&response.environments).print();
    }
    Ok(())
}

async fn get(a: GetArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .get_environment(GetEnvironmentRequest { key: a.key })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        table(&[response.environment.unwrap_or_default()]).print();
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .delete_environment(DeleteEnvironmentRequest {
            key: a.key.clone(),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::line(&format!("deleted environment {}", a.key));
    }
    Ok(())
}
