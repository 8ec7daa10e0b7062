//! `flags create` and `flags update`.
//!
//! A flag made from options is configured off in every environment, so creating one never
//! changes what anything is served: booleans get the variants `off=false` and `on=true` (off
//! first, because an environment created later serves the first variant until configured),
//! serve `on` once enabled and `off` while disabled; other types serve their first variant
//! unless `--serve`/`--off-variant` say otherwise.
//!
//! `update` reads the flag, changes it and writes it back with the version it read as
//! `expected_version` (or `--expected-version`, the version a script looked at): a concurrent
//! change makes it fail with FAILED_PRECONDITION instead of being overwritten.

use super::bundle::diff;
use super::client::Connect;
use super::files;
use super::output::{self, type_name};
use super::parse::{self, TypeArg};
use super::{Failure, Outcome};
use crate::protojson;
use flagwire_proto::v1::{
    CreateFlagRequest, Flag, FlagConfig, GetFlagRequest, ListEnvironmentsRequest, Serve, Split,
    SplitEntry, UpdateFlagRequest, ValueType, Variant, serve,
};
use std::path::PathBuf;

/// Options of `flags create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The flag key (with `-f`, optional: the file names it).
    #[arg(required_unless_present = "file")]
    pub key: Option<String>,
    /// One flag in the export format (YAML, or JSON for a `.json` file; `-` reads standard
    /// input), created exactly as written.
    #[arg(short = 'f', long, conflicts_with_all = ["kind", "variants", "description", "tags", "serve", "off_variant"])]
    pub file: Option<PathBuf>,
    /// The type of every variant.
    #[arg(
        long = "type",
        value_name = "TYPE",
        value_enum,
        required_unless_present = "file"
    )]
    pub kind: Option<TypeArg>,
    /// A variant as NAME=VALUE, in order (repeat). Booleans default to off=false and on=true.
    #[arg(long = "variant", value_name = "NAME=VALUE", value_parser = parse::pair)]
    pub variants: Vec<(String, String)>,
    /// Free text for people.
    #[arg(long)]
    pub description: Option<String>,
    /// A tag (repeat for several).
    #[arg(long = "tag", value_name = "TAG")]
    pub tags: Vec<String>,
    /// The variant served once enabled (default: `on` for booleans, else the first).
    #[arg(long)]
    pub serve: Option<String>,
    /// The variant served while disabled (default: `off` for booleans, else the first).
    #[arg(long)]
    pub off_variant: Option<String>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `flags update`.
#[derive(Debug, clap::Args)]
#[command(group(clap::ArgGroup::new("rule").args(["serve", "split"])))]
pub struct UpdateArgs {
    /// The flag key.
    pub key: String,
    /// Replace the whole flag with this one (export format; `-` reads standard input).
    #[arg(short = 'f', long, conflicts_with_all = ["description", "add_tags", "remove_tags", "variants", "remove_variants", "env"])]
    pub file: Option<PathBuf>,
    /// New description.
    #[arg(long)]
    pub description: Option<String>,
    /// Add a tag (repeat for several).
    #[arg(long = "add-tag", value_name = "TAG")]
    pub add_tags: Vec<String>,
    /// Remove a tag (repeat for several).
    #[arg(long = "remove-tag", value_name = "TAG")]
    pub remove_tags: Vec<String>,
    /// Add a variant, or change its value, as NAME=VALUE (repeat).
    #[arg(long = "variant", value_name = "NAME=VALUE", value_parser = parse::pair)]
    pub variants: Vec<(String, String)>,
    /// Remove a variant (repeat).
    #[arg(long = "remove-variant", value_name = "NAME")]
    pub remove_variants: Vec<String>,
    /// The environment whose configuration `--serve`, `--split` and `--off-variant` change.
    #[arg(long)]
    pub env: Option<String>,
    /// Serve this variant by default (when no target or rule matches).
    #[arg(long, requires = "env", value_name = "VARIANT")]
    pub serve: Option<String>,
    /// Serve a weighted split by default, as VARIANT=WEIGHT,... (e.g. `blue=30,green=70`).
    #[arg(long, requires = "env", value_name = "VARIANT=WEIGHT", value_parser = parse::weight, value_delimiter = ',')]
    pub split: Vec<(String, u32)>,
    /// The variant served while disabled.
    #[arg(long, requires = "env", value_name = "VARIANT")]
    pub off_variant: Option<String>,
    /// Fail unless the stored version is this one (default: the version just read).
    #[arg(long, value_name = "VERSION")]
    pub expected_version: Option<u64>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Write even if an active release or ramp owns the flag there (audited; the release then
    /// pauses until someone resumes it).
    #[arg(long)]
    pub force: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

fn variants(t: ValueType, given: &[(String, String)]) -> Result<Vec<Variant>, Failure> {
    let defaults = [("off", "false"), ("on", "true")].map(|(k, v)| (k.into(), v.into()));
    let given = if given.is_empty() && t == ValueType::Boolean {
        &defaults[..]
    } else {
        given
    };
    if given.is_empty() {
        return Err(Failure::Usage(
            "flags create: name at least one --variant NAME=VALUE".into(),
        ));
    }
    given
        .iter()
        .map(|(name, raw)| {
            let value = parse::value(t, raw)
                .map_err(|e| Failure::Usage(format!("--variant {name}={raw}: {e}")))?;
            Ok(Variant {
                key: name.clone(),
                value: Some(value),
                description: String::new(),
            })
        })
        .collect()
}

fn variant_serve(variant: &str) -> Option<Serve> {
    Some(Serve {
        kind: Some(serve::Kind::Variant(variant.to_owned())),
    })
}

fn from_options(a: &CreateArgs, environments: Vec<String>) -> Result<Flag, Failure> {
    let t = a.kind.map_or(ValueType::Unspecified, TypeArg::value_type);
    let variants = variants(t, &a.variants)?;
    let first = variants[0].key.clone();
    let pick = |given: &Option<String>, boolean: &str| match given {
        Some(v) => v.clone(),
        None if t == ValueType::Boolean && variants.iter().any(|v| v.key == boolean) => {
            boolean.to_owned()
        }
        None => first.clone(),
    };
    let config = FlagConfig {
        enabled: false,
        off_variant: pick(&a.off_variant, "off"),
        default_rule: variant_serve(&pick(&a.serve, "on")),
        ..Default::default()
    };
    Ok(Flag {
        key: a.key.clone().unwrap_or_default(),
        description: a.description.clone().unwrap_or_default(),
        tags: a.tags.clone(),
        r#type: t as i32,
        variants,
        environments: environments
            .into_iter()
            .map(|e| (e, config.clone()))
            .collect(),
        ..Default::default()
    })
}

/// `flags create`.
pub async fn create(a: CreateArgs) -> Outcome {
    let file_flag = match &a.file {
        Some(path) => {
            let mut flag: Flag = files::read(path, "flag")?;
            match (&a.key, flag.key.is_empty()) {
                (Some(key), true) => flag.key = key.clone(),
                (Some(key), false) if *key != flag.key => {
                    return Err(Failure::Usage(format!(
                        "the key {key:?} differs from the file's {:?}",
                        flag.key
                    )));
                }
                _ => {}
            }
            Some(flag)
        }
        None => None,
    };
    let mut admin = a.connect.connect().await?.admin;
    let flag = match file_flag {
        Some(flag) => flag,
        None => {
            let envs = admin
                .list_environments(ListEnvironmentsRequest {})
                .await?
                .into_inner()
                .environments;
            from_options(&a, envs.into_iter().map(|e| e.key).collect())?
        }
    };
    let response = admin
        .create_flag(CreateFlagRequest {
            flag: Some(flag),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let f = response.flag.unwrap_or_default();
    let envs: Vec<String> = f.environments.keys().cloned().collect();
    output::line(&format!(
        "created flag {} ({}), version {}; environments: {}",
        f.key,
        type_name(f.r#type),
        f.version,
        output::list(&envs)
    ));
    Ok(())
}

fn nothing_to_change(a: &UpdateArgs) -> bool {
    a.file.is_none()
        && a.description.is_none()
        && a.add_tags.is_empty()
        && a.remove_tags.is_empty()
        && a.variants.is_empty()
        && a.remove_variants.is_empty()
        && a.serve.is_none()
        && a.split.is_empty()
        && a.off_variant.is_none()
}

/// Applies the options of `update` to `flag`.
fn edit(flag: &mut Flag, a: &UpdateArgs) -> Result<(), Failure> {
    if let Some(d) = &a.description {
        flag.description = d.clone();
    }
    flag.tags.retain(|t| !a.remove_tags.contains(t));
    for t in &a.add_tags {
        if !flag.tags.contains(t) {
            flag.tags.push(t.clone());
        }
    }
    flag.variants
        .retain(|v| !a.remove_variants.contains(&v.key));
    let t = ValueType::try_from(flag.r#type).unwrap_or(ValueType::Unspecified);
    for (name, raw) in &a.variants {
        let value = parse::value(t, raw)
            .map_err(|e| Failure::Usage(format!("--variant {name}={raw}: {e}")))?;
        match flag.variants.iter_mut().find(|v| &v.key == name) {
            Some(v) => v.value = Some(value),
            None => flag.variants.push(Variant {
                key: name.clone(),
                value: Some(value),
                description: String::new(),
            }),
        }
    }
    let Some(env) = &a.env else { return Ok(()) };
    let defaults = flagwire_core::project::default_config(flag);
    let config = flag.environments.entry(env.clone()).or_insert(defaults);
    if let Some(v) = &a.off_variant {
        config.off_variant = v.clone();
    }
    if let Some(v) = &a.serve {
        config.default_rule = variant_serve(v);
    }
    if !a.split.is_empty() {
        let entries = a.split.iter().map(|(variant, weight)| SplitEntry {
            variant: variant.clone(),
            weight: *weight,
            label: String::new(),
        });
        config.default_rule = Some(Serve {
            kind: Some(serve::Kind::Split(Split {
                entries: entries.collect(),
                ..Default::default()
            })),
        });
    }
    Ok(())
}

/// `flags update`.
pub async fn update(a: UpdateArgs) -> Outcome {
    if nothing_to_change(&a) {
        return Err(Failure::Usage(
            "flags update: nothing to change (see flagwire flags update --help)".into(),
        ));
    }
    let replacement: Option<Flag> = match &a.file {
        Some(path) => Some(files::read(path, "flag")?),
        None => None,
    };
    let mut admin = a.connect.connect().await?.admin;
    let before = admin
        .get_flag(GetFlagRequest { key: a.key.clone() })
        .await?
        .into_inner()
        .flag
        .unwrap_or_default();
    let mut flag = match replacement {
        Some(f) if !f.key.is_empty() && f.key != a.key => {
            return Err(Failure::Usage(format!(
                "the key {:?} differs from the file's {:?}",
                a.key, f.key
            )));
        }
        Some(f) => Flag {
            key: a.key.clone(),
            ..f
        },
        None => before.clone(),
    };
    edit(&mut flag, &a)?;
    let response = admin
        .update_flag(UpdateFlagRequest {
            force: a.force,
            flag: Some(flag),
            expected_version: a.expected_version.unwrap_or(before.version),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let after = response.flag.unwrap_or_default();
    let definition = crate::bundle::definition::flag;
    let mut changes = Vec::new();
    diff(
        "",
        &protojson::to_value(&definition(&before)),
        &protojson::to_value(&definition(&after)),
        &mut changes,
    );
    output::line(&format!(
        "updated flag {}, version {} → {}",
        after.key, before.version, after.version
    ));
    for c in changes {
        output::line(&format!("    {c}"));
    }
    Ok(())
}
