//! The server side of `import --from-env`: the typed variables of a `.env` file
//! ([`from_env`](super::from_env)) merged into the stored flags and sent as one bundle.

use super::client::Connect;
use super::from_env::{self, Mapping};
use super::output::{self, type_name};
use super::{Failure, Outcome};
use flagwire_core::validate::validate_key;
use flagwire_proto::v1::{
    Bundle, BundleChangeAction, Flag, FlagConfig, GetEnvironmentRequest, ImportBundleRequest,
    ImportBundleResponse, ListEnvironmentsRequest, ListFlagsRequest, Serve, ValueType, Variant,
    serve,
};
use std::collections::BTreeMap;
use std::path::Path;

/// What `import --from-env` was asked.
pub struct Request<'a> {
    /// The `.env` file.
    pub path: &'a Path,
    /// The environment it configures (default: the only one).
    pub environment: Option<String>,
    /// Only variables starting with this.
    pub prefix: String,
    /// Show, change nothing.
    pub dry_run: bool,
    /// Why (audit log).
    pub reason: String,
    /// Server and output.
    pub connect: &'a Connect,
}

fn refuse(m: &Mapping, why: impl std::fmt::Display) -> Failure {
    Failure::Local(anyhow::anyhow!(
        "line {}: {}: {why}",
        m.entry.line,
        m.entry.name
    ))
}

/// `a boolean`, `an integer`.
fn a(noun: &str) -> String {
    let article = if noun.starts_with(['a', 'e', 'i', 'o', 'u']) {
        "an"
    } else {
        "a"
    };
    format!("{article} {noun}")
}

/// The variant holding the mapping's value, added if none does.
fn variant_for(flag: &mut Flag, m: &Mapping) -> String {
    if let Some(v) = flag
        .variants
        .iter()
        .find(|v| v.value.as_ref() == Some(&m.value))
    {
        return v.key.clone();
    }
    let base = match &m.value.kind {
        Some(flagwire_proto::v1::flag_value::Kind::BoolValue(b)) => {
            if *b { "on" } else { "off" }.to_owned()
        }
        Some(flagwire_proto::v1::flag_value::Kind::StringValue(s))
            if s.len() <= 64 && validate_key("variant", s).is_ok() =>
        {
            s.clone()
        }
        _ => "default".to_owned(),
    };
    let mut name = base.clone();
    let mut n = 2;
    while flag.variants.iter().any(|v| v.key == name) {
        name = format!("{base}-{n}");
        n += 1;
    }
    flag.variants.push(Variant {
        key: name.clone(),
        value: Some(m.value.clone()),
        description: String::new(),
    });
    name
}

/// The flag after the mapping is applied in `env` (a new one when `stored` is none).
fn merge(stored: Option<&Flag>, m: &Mapping, env: &str, file: &str) -> Result<Flag, Failure> {
    let mut flag = match stored {
        Some(f) if f.archived => {
            return Err(refuse(
                m,
                format!("the flag {} is archived (unarchive it first)", m.key),
            ));
        }
        Some(f) if f.r#type != m.value_type as i32 => {
            return Err(refuse(
                m,
                format!(
                    "the flag {} exists as {} flag; the file's value is {}",
                    m.key,
                    a(&type_name(f.r#type)),
                    a(&type_name(m.value_type as i32))
                ),
            ));
        }
        Some(f) => crate::bundle::definition::flag(f),
        None => Flag {
            key: m.key.clone(),
            description: format!("Imported from {} in {file}", m.entry.name),
            r#type: m.value_type as i32,
            ..Default::default()
        },
    };
    if m.value_type == ValueType::Boolean && stored.is_none() {
        // Both switch positions exist from the start, off first (see `flags create`).
        for b in [false, true] {
            let on_off = Mapping {
                value: flagwire_proto::v1::FlagValue {
                    kind: Some(flagwire_proto::v1::flag_value::Kind::BoolValue(b)),
                },
                ..m.clone()
            };
            variant_for(&mut flag, &on_off);
        }
    }
    let served = variant_for(&mut flag, m);
    let off = if m.value_type == ValueType::Boolean {
        "off".to_owned()
    } else {
        served.clone()
    };
    let config = flag
        .environments
        .entry(env.to_owned())
        .or_insert(FlagConfig {
            off_variant: off,
            ..Default::default()
        });
    config.enabled = true;
    config.default_rule = Some(Serve {
        kind: Some(serve::Kind::Variant(served)),
    });
    Ok(flag)
}

async fn environment(r: &Request<'_>, admin: &mut super::client::Admin) -> Result<String, Failure> {
    if let Some(env) = &r.environment {
        admin
            .get_environment(GetEnvironmentRequest { key: env.clone() })
            .await?;
        return Ok(env.clone());
    }
    let envs = admin
        .list_environments(ListEnvironmentsRequest {})
        .await?
        .into_inner()
        .environments;
    match envs.as_slice() {
        [only] => Ok(only.key.clone()),
        _ => Err(Failure::Usage(format!(
            "name the environment the file configures with --environment (the server has {})",
            output::list(&envs.iter().map(|e| e.key.clone()).collect::<Vec<_>>())
        ))),
    }
}

async fn stored_flags(admin: &mut super::client::Admin) -> Result<BTreeMap<String, Flag>, Failure> {
    let mut flags = BTreeMap::new();
    let mut page_token = String::new();
    loop {
        let page = admin
            .list_flags(ListFlagsRequest {
                page_size: 1000,
                page_token,
                include_archived: true,
                ..Default::default()
            })
            .await?
            .into_inner();
        flags.extend(page.flags.into_iter().map(|f| (f.key.clone(), f)));
        if page.next_page_token.is_empty() {
            return Ok(flags);
        }
        page_token = page.next_page_token;
    }
}

/// `import --from-env`.
pub async fn run(r: Request<'_>) -> Outcome {
    let mappings = from_env::read(r.path, &r.prefix)?;
    from_env::check_nonempty(&mappings, &r.prefix)?;
    let mut admin = r.connect.connect().await?.admin;
    let env = environment(&r, &mut admin).await?;
    let stored = stored_flags(&mut admin).await?;
    let file = r.path.file_name().map_or_else(
        || r.path.display().to_string(),
        |f| f.to_string_lossy().into_owned(),
    );
    let flags = mappings
        .iter()
        .map(|m| merge(stored.get(&m.key), m, &env, &file))
        .collect::<Result<Vec<_>, _>>()?;
    let reason = if r.reason.is_empty() {
        format!("flagwire import --from-env {file}")
    } else {
        r.reason.clone()
    };
    let response = admin
        .import_bundle(ImportBundleRequest {
            bundle: Some(Bundle {
                version: crate::bundle::VERSION,
                flags,
                ..Default::default()
            }),
            dry_run: r.dry_run,
            prune: false,
            force: false,
            reason,
        })
        .await?
        .into_inner();
    if !r.connect.structured(&response) {
        print(&mappings, &response, &env, r.dry_run);
    }
    Ok(())
}

fn print(mappings: &[Mapping], response: &ImportBundleResponse, env: &str, dry_run: bool) {
    let action = |key: &str| {
        let change = response
            .changes
            .iter()
            .find(|c| c.resource_type == "flag" && c.resource_key == key);
        match change.map(|c| BundleChangeAction::try_from(c.action)) {
            Some(Ok(BundleChangeAction::Create)) => "create",
            Some(Ok(BundleChangeAction::Update)) => "update",
            Some(_) => "?",
            None => "unchanged",
        }
        .to_owned()
    };
    from_env::table(mappings, action).print();
    let count = |a: &str| mappings.iter().filter(|m| action(&m.key) == a).count();
    let (created, updated, same) = (count("create"), count("update"), count("unchanged"));
    output::line(&if dry_run {
        format!(
            "dry run for {env}: {created} to create, {updated} to update, {same} unchanged; \
             nothing was changed"
        )
    } else {
        format!("imported into {env}: {created} created, {updated} updated, {same} unchanged")
    });
}
