//! `flags list`, `flags get`, `set-variant`, `enable`, `disable`.

use super::client::Connect;
use super::output::{self, Table};
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    Flag, GetEnvironmentRequest, GetFlagRequest, GetFlagResponse, ListFlagsRequest,
    ListFlagsResponse, Serve, SetFlagEnabledRequest, UpdateFlagRequest, ValueType, serve,
};

/// `flagwire flags ...`.
#[derive(Debug, clap::Subcommand)]
pub enum FlagsCommand {
    /// List flags: one line each, or their state in one environment with `--env`.
    List(ListArgs),
    /// Show one flag: variants and each environment's configuration.
    Get(GetArgs),
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

/// Options of `set-variant`.
#[derive(Debug, clap::Args)]
pub struct SetVariantArgs {
    /// The flag key.
    pub key: String,
    /// The variant the default rule serves from now on.
    pub variant: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `enable` and `disable`.
#[derive(Debug, clap::Args)]
pub struct ToggleArgs {
    /// The flag key.
    pub key: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs `flags list` or `flags get`.
pub async fn run(command: FlagsCommand) -> Outcome {
    match command {
        FlagsCommand::List(a) => list(a).await,
        FlagsCommand::Get(a) => get(a).await,
    }
}

fn type_name(t: i32) -> String {
    let name = ValueType::try_from(t).unwrap_or(ValueType::Unspecified);
    name.as_str_name()
        .trim_start_matches("VALUE_TYPE_")
        .to_lowercase()
}

fn on_off(enabled: bool) -> String {
    if enabled { "on" } else { "off" }.to_owned()
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
    if a.connect.json {
        output::json(&ListFlagsResponse {
            flags,
            next_page_token: String::new(),
        });
        return Ok(());
    }
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
    if a.connect.json {
        output::json(&GetFlagResponse { flag: Some(flag) });
        return Ok(());
    }
    output::emit(&describe(&flag));
    Ok(())
}

/// A person's view of a flag: its header, variants, and one row per environment.
fn describe(f: &Flag) -> String {
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

/// `set-variant`: rewrites the default rule with the version just read, so a concurrent change
/// fails with FAILED_PRECONDITION instead of being overwritten.
pub async fn set_variant(a: SetVariantArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let mut flag = admin
        .get_flag(GetFlagRequest { key: a.key.clone() })
        .await?
        .into_inner()
        .flag
        .unwrap_or_default();
    let version = flag.version;
    let defaults = flagwire_core::project::default_config(&flag);
    let config = flag.environments.entry(a.env.clone()).or_insert(defaults);
    config.default_rule = Some(Serve {
        kind: Some(serve::Kind::Variant(a.variant.clone())),
    });
    let flag = admin
        .update_flag(UpdateFlagRequest {
            force: false,
            flag: Some(flag),
            expected_version: version,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.json {
        output::json(&flag);
        return Ok(());
    }
    let flag = flag.flag.unwrap_or_default();
    let enabled = flag.environments.get(&a.env).is_some_and(|c| c.enabled);
    let note = if enabled {
        ""
    } else {
        " (the flag is off there: it serves its off variant until enabled)"
    };
    output::line(&format!(
        "{}: {} serves {} by default, version {}{note}",
        flag.key, a.env, a.variant, flag.version
    ));
    Ok(())
}

/// `enable` / `disable`.
pub async fn toggle(a: ToggleArgs, enabled: bool) -> Outcome {
    if a.env.is_empty() {
        return Err(Failure::Usage("--env must name an environment".into()));
    }
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .set_flag_enabled(SetFlagEnabledRequest {
            force: false,
            key: a.key,
            environment: a.env.clone(),
            enabled,
            expected_version: 0,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.json {
        output::json(&response);
        return Ok(());
    }
    let flag = response.flag.unwrap_or_default();
    let word = if enabled { "enabled" } else { "disabled" };
    output::line(&format!(
        "{}: {word} in {}, version {}",
        flag.key, a.env, flag.version
    ));
    Ok(())
}
