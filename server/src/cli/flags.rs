//! `flags ...`: the command list, `flags list` and `flags get`. Writing flags is in
//! [`flag_edit`](super::flag_edit), their life cycle and history in
//! [`flag_versions`](super::flag_versions).

use super::client::Connect;
use super::flag_edit::{CreateArgs, UpdateArgs};
use super::flag_versions::{self, DeleteArgs, HistoryArgs, KeyArgs, RevertArgs};
use super::output::{self, Table, on_off, type_name};
use super::{Outcome, flag_edit};
use flagwire_proto::v1::{
    Flag, GetEnvironmentRequest, GetFlagRequest, GetFlagResponse, ListFlagsRequest,
    ListFlagsResponse,
};

/// `flagwire flags ...`.
#[derive(Debug, clap::Subcommand)]
pub enum FlagsCommand {
    /// List flags: one line each, or their state in one environment with `--env`.
    List(ListArgs),
    /// Show one flag: variants and each environment's configuration.
    Get(GetArgs),
    /// Create a flag, off in every environment (from options, or `-f FILE`).
    Create(CreateArgs),
    /// Change a flag's definition or one environment's configuration (guarded by the version
    /// read, or `--expected-version`).
    Update(UpdateArgs),
    /// Archive a flag: kept for history, no longer evaluated.
    Archive(KeyArgs),
    /// Bring an archived flag back.
    Unarchive(KeyArgs),
    /// Delete a flag no other flag names as a prerequisite and no active release or ramp owns
    /// (its history stays in the audit log).
    Delete(DeleteArgs),
    /// Every stored version of a flag, newest first, with what each changed.
    History(HistoryArgs),
    /// Make an earlier version current again (as a new version).
    Revert(RevertArgs),
}

/// Options of `flags list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Show whether each flag is on and what it serves in this environment.
    #[arg(long)]
    pub env: Option<String>,
    /// Only flags carrying this tag (repeat for several: all must match).
    #[arg(long = "tag")]
    pub tags: Vec<String>,
    /// Only flags whose key starts with this.
    #[arg(long, default_value = "")]
    pub prefix: String,
    /// Include archived flags.
    #[arg(long)]
    pub archived: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `flags get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The flag key.
    pub key: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `flags` subcommand.
pub async fn run(command: FlagsCommand) -> Outcome {
    match command {
        FlagsCommand::List(a) => list(a).await,
        FlagsCommand::Get(a) => get(a).await,
        FlagsCommand::Create(a) => flag_edit::create(a).await,
        FlagsCommand::Update(a) => flag_edit::update(a).await,
        FlagsCommand::Archive(a) => flag_versions::archive(a, true).await,
        FlagsCommand::Unarchive(a) => flag_versions::archive(a, false).await,
        FlagsCommand::Delete(a) => flag_versions::delete(a).await,
        FlagsCommand::History(a) => flag_versions::history(a).await,
        FlagsCommand::Revert(a) => flag_versions::revert(a).await,
    }
}

async fn list(a: ListArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    if let Some(env) = &a.env {
        admin
            .get_environment(GetEnvironmentRequest { key: env.clone() })
            .await?;
    }
    let mut flags = Vec::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_flags(ListFlagsRequest {
                page_size: 1000,
                page_token,
                tags: a.tags.clone(),
                key_prefix: a.prefix.clone(),
                include_archived: a.archived,
            })
            .await?
            .into_inner();
        flags.extend(page.flags);
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let response = ListFlagsResponse {
        flags,
        next_page_token: String::new(),
    };
    if a.connect.structured(&response) {
        return Ok(());
    }
    let flags = response.flags;
    let table = match &a.env {
        Some(env) => in_env_table(&flags, env),
        None => overview_table(&flags),
    };
    table.print();
    Ok(())
}

fn overview_table(flags: &[Flag]) -> Table {
    let mut t = Table::new(&["KEY", "TYPE", "VERSION", "ENVIRONMENTS", "TAGS"]);
    for f in flags {
        let envs: Vec<String> = f
            .environments
            .iter()
            .map(|(e, c)| format!("{e}:{}", on_off(c.enabled)))
            .collect();
        let key = if f.archived {
            format!("{} (archived)", f.key)
        } else {
            f.key.clone()
        };
        t.row(vec![
            key,
            type_name(f.r#type),
            f.version.to_string(),
            output::list(&envs),
            output::list(&f.tags),
        ]);
    }
    t
}

fn in_env_table(flags: &[Flag], env: &str) -> Table {
    let mut t = Table::new(&["KEY", "ENABLED", "SERVES", "OFF", "VERSION", "TAGS"]);
    for f in flags {
        let (enabled, serves, off) = match f.environments.get(env) {
            Some(c) => (
                on_off(c.enabled),
                output::serve(c.default_rule.as_ref()),
                c.off_variant.clone(),
            ),
            None => ("-".into(), "(not configured)".into(), "-".into()),
        };
        t.row(vec![
            f.key.clone(),
            enabled,
            serves,
            off,
            f.version.to_string(),
            output::list(&f.tags),
        ]);
    }
    t
}

async fn get(a: GetArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let flag = admin
        .get_flag(GetFlagRequest { key: a.key })
        .await?
        .into_inner()
        .flag
        .unwrap_or_default();
    let response = GetFlagResponse { flag: Some(flag) };
    if a.connect.structured(&response) {
        return Ok(());
    }
    output::emit(&describe(&response.flag.unwrap_or_default()));
    Ok(())
}

/// A person's view of a flag: its header, variants, and one row per environment.
pub fn describe(f: &Flag) -> String {
    let variants: Vec<String> = f
        .variants
        .iter()
        .map(|v| format!("{}={}", v.key, output::value(v.value.as_ref())))
        .collect();
    let mut text = format!(
        "key:          {}\ntype:         {}\nversion:      {}\nupdated:      {}\n",
        f.key,
        type_name(f.r#type),
        f.version,
        output::time(f.update_time.as_ref()),
    );
    if !f.description.is_empty() {
        text += &format!("description:  {}\n", f.description);
    }
    text += &format!(
        "tags:         {}\narchived:     {}\nvariants:     {}\n\n",
        output::list(&f.tags),
        f.archived,
        variants.join(" "),
    );
    let mut t = Table::new(&[
        "ENVIRONMENT",
        "ENABLED",
        "SERVES",
        "OFF",
        "RULES",
        "TARGETS",
        "PREREQUISITES",
    ]);
    for (env, c) in &f.environments {
        let prerequisites: Vec<String> = c
            .prerequisites
            .iter()
            .map(|p| format!("{}={}", p.flag_key, p.variant))
            .collect();
        t.row(vec![
            env.clone(),
            on_off(c.enabled),
            output::serve(c.default_rule.as_ref()),
            c.off_variant.clone(),
            c.rules.len().to_string(),
            c.targets.len().to_string(),
            output::list(&prerequisites),
        ]);
    }
    text + &t.render()
}
