//! `export` and `import`: flags as code (and `import --from-env`, see
//! [`env_import`](super::env_import)).
//!
//! Export reads through the ordinary List RPCs (so a read-only token is enough); it is not one
//! snapshot, so a write landing while it runs may be half in it. Import sends the whole file in
//! one `ImportBundle` call, which the server validates and applies in one write.

use super::client::{Connect, Target};
use super::output;
use super::{Failure, Outcome};
use crate::bundle::definition;
use crate::bundle::file::{self, Format};
use crate::protojson;
use flagwire_proto::v1::{
    Bundle, BundleChange, BundleChangeAction, ImportBundleRequest, ImportBundleResponse,
    ListEnvironmentsRequest, ListFlagsRequest, ListMetricsRequest, ListReleasesRequest,
    ListRollbackPlansRequest, ListSegmentsRequest, bundle_object,
};
use serde_norway::Value;
use std::path::PathBuf;

/// Options of `export`.
#[derive(Debug, clap::Args)]
pub struct ExportArgs {
    /// Write to this file instead of standard output.
    #[arg(long, short)]
    pub out: Option<PathBuf>,
    /// yaml or json (default: json for a `.json` file, yaml otherwise).
    #[arg(long, value_enum)]
    pub format: Option<Format>,
    /// The server.
    #[command(flatten)]
    pub target: Target,
}

/// Options of `import`.
#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The bundle file (YAML, or JSON when it ends in `.json`; `-` reads YAML from stdin).
    #[arg(required_unless_present = "from_env", conflicts_with = "from_env")]
    pub file: Option<PathBuf>,
    /// Instead of a bundle, make flags of the variables of a `.env` file, each serving the
    /// file's value (types inferred; `--dry-run` shows the mapping).
    #[arg(long, value_name = "FILE.env")]
    pub from_env: Option<PathBuf>,
    /// The environment the `.env` file configures (default: the server's only environment).
    #[arg(long, requires = "from_env")]
    pub environment: Option<String>,
    /// Only the variables whose name starts with this (e.g. FEATURE_), so that secrets and
    /// other settings in the same file stay out.
    #[arg(long, requires = "from_env", default_value = "")]
    pub prefix: String,
    /// Print what would change and change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Also delete flags and segments the file does not name.
    #[arg(long, conflicts_with = "from_env")]
    pub prune: bool,
    /// Why (recorded in the audit log of every change).
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

/// Reads every definition from the server.
async fn fetch(target: &Target) -> Result<Bundle, Failure> {
    let clients = target.connect().await?;
    let (mut admin, mut client, mut releases) = (clients.admin, clients.rollouts, clients.releases);
    let environments = admin
        .list_environments(ListEnvironmentsRequest {})
        .await?
        .into_inner()
        .environments;
    let mut flags = Vec::new();
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
        flags.extend(page.flags.iter().map(definition::flag));
        if page.next_page_token.is_empty() {
            break;
        }
        page_token = page.next_page_token;
    }
    let mut segments = Vec::new();
    for e in &environments {
        let list = admin
            .list_segments(ListSegmentsRequest {
                environment: e.key.clone(),
            })
            .await?
            .into_inner();
        segments.extend(list.segments.iter().map(definition::segment));
    }
    // Releases a rollout can express are written as rollouts (as older exports did), the
    // others as releases; by id, not by creation time: releases imported together share one,
    // so creation order would not survive a round trip.
    let mut stored = releases
        .list_releases(ListReleasesRequest::default())
        .await?
        .into_inner()
        .releases;
    stored.sort_by(|a, b| a.id.cmp(&b.id));
    let (mut rollouts, mut release_defs) = (Vec::new(), Vec::new());
    for r in &stored {
        let (rollout, release) = crate::bundle::releases::export(r);
        rollouts.extend(rollout);
        release_defs.extend(release);
    }
    let mut rollback_plans = client
        .list_rollback_plans(ListRollbackPlansRequest {})
        .await?
        .into_inner()
        .plans;
    rollback_plans.sort_by(|a, b| a.id.cmp(&b.id));
    let metrics = admin
        .list_metrics(ListMetricsRequest::default())
        .await?
        .into_inner()
        .metrics;
    Ok(Bundle {
        version: crate::bundle::VERSION,
        environments: environments.iter().map(definition::environment).collect(),
        flags,
        segments,
        rollouts,
        rollback_plans,
        releases: release_defs,
        metrics: metrics
            .iter()
            .map(crate::bundle::metrics::definition)
            .collect(),
    })
}

/// `export`.
pub async fn export(a: ExportArgs) -> Outcome {
    let bundle = fetch(&a.target).await?;
    let format = a
        .format
        .or_else(|| a.out.as_deref().map(Format::of))
        .unwrap_or(Format::Yaml);
    let text = file::render(&bundle, format);
    match &a.out {
        None => output::emit(&text),
        Some(path) => {
            std::fs::write(path, text)
                .map_err(|e| anyhow::anyhow!("write {}: {e}", path.display()))?;
            eprintln!(
                "exported to {}: environments {}, flags {}, segments {}, rollouts {}, \
                 rollback plans {}",
                path.display(),
                bundle.environments.len(),
                bundle.flags.len(),
                bundle.segments.len(),
                bundle.rollouts.len(),
                bundle.rollback_plans.len(),
            );
        }
    }
    Ok(())
}

/// `import`.
pub async fn import(a: ImportArgs) -> Outcome {
    if let Some(path) = &a.from_env {
        return super::env_import::run(super::env_import::Request {
            path,
            environment: a.environment.clone(),
            prefix: a.prefix.clone(),
            dry_run: a.dry_run,
            reason: a.reason.clone(),
            connect: &a.connect,
        })
        .await;
    }
    let path = a.file.clone().unwrap_or_default();
    let bundle = file::read(&path)?;
    let mut admin = a.connect.connect().await?.admin;
    let reason = if a.reason.is_empty() {
        format!("flagwire import {}", path.display())
    } else {
        a.reason
    };
    let response = admin
        .import_bundle(ImportBundleRequest {
            bundle: Some(bundle),
            dry_run: a.dry_run,
            prune: a.prune,
            reason,
            force: a.force,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::emit(&render(&response, a.dry_run));
    }
    Ok(())
}

fn object_value(o: Option<&flagwire_proto::v1::BundleObject>) -> Value {
    use bundle_object::Kind;
    match o.and_then(|o| o.kind.as_ref()) {
        Some(Kind::Environment(e)) => protojson::to_value(e),
        Some(Kind::Flag(f)) => protojson::to_value(f),
        Some(Kind::Segment(s)) => protojson::to_value(s),
        Some(Kind::Rollout(r)) => protojson::to_value(r),
        Some(Kind::Release(r)) => protojson::to_value(r),
        Some(Kind::RollbackPlan(p)) => protojson::to_value(p),
        Some(Kind::Metric(m)) => protojson::to_value(m),
        None => Value::Null,
    }
}

fn inline(v: &Value) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// One line per differing leaf: `path: old → new`.
pub fn diff(path: &str, a: &Value, b: &Value, out: &mut Vec<String>) {
    let join = |k: &str| {
        if path.is_empty() {
            k.to_owned()
        } else {
            format!("{path}.{k}")
        }
    };
    match (a, b) {
        (Value::Mapping(x), Value::Mapping(y)) => {
            let keys = x.keys().chain(y.keys().filter(|k| !x.contains_key(*k)));
            for k in keys {
                let name = join(k.as_str().unwrap_or_default());
                match (x.get(k), y.get(k)) {
                    (Some(p), Some(q)) => diff(&name, p, q, out),
                    (Some(p), None) => out.push(format!("{name}: {} → (unset)", inline(p))),
                    (None, Some(q)) => out.push(format!("{name}: (unset) → {}", inline(q))),
                    (None, None) => {}
                }
            }
        }
        (Value::Sequence(x), Value::Sequence(y)) => {
            for i in 0..x.len().max(y.len()) {
                let name = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(p), Some(q)) => diff(&name, p, q, out),
                    (Some(p), None) => out.push(format!("{name}: {} → (removed)", inline(p))),
                    (None, Some(q)) => out.push(format!("{name}: (added) → {}", inline(q))),
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(format!("{path}: {} → {}", inline(a), inline(b))),
        _ => {}
    }
}

fn describe(c: &BundleChange) -> String {
    let action = BundleChangeAction::try_from(c.action).unwrap_or(BundleChangeAction::Unspecified);
    let sign = match action {
        BundleChangeAction::Create => '+',
        BundleChangeAction::Update => '~',
        BundleChangeAction::Delete => '-',
        BundleChangeAction::Unspecified => '?',
    };
    let mut text = format!("{sign} {} {}", c.resource_type, c.resource_key);
    if !c.environment.is_empty() {
        text += &format!(" ({})", c.environment);
    }
    text.push('\n');
    if action == BundleChangeAction::Update {
        let mut lines = Vec::new();
        let (before, after) = (
            object_value(c.before.as_ref()),
            object_value(c.after.as_ref()),
        );
        diff("", &before, &after, &mut lines);
        for line in lines {
            text += &format!("    {line}\n");
        }
    }
    text
}

/// The person's view of an import: one block per change, then a summary line.
pub fn render(r: &ImportBundleResponse, dry_run: bool) -> String {
    let mut text: String = r.changes.iter().map(describe).collect();
    let count = |a: BundleChangeAction| r.changes.iter().filter(|c| c.action == a as i32).count();
    let (created, updated, deleted) = (
        count(BundleChangeAction::Create),
        count(BundleChangeAction::Update),
        count(BundleChangeAction::Delete),
    );
    text += &if r.changes.is_empty() {
        format!(
            "nothing to change: {} objects already as the file says\n",
            r.unchanged
        )
    } else if dry_run {
        format!(
            "dry run: {created} to create, {updated} to update, {deleted} to delete, {} \
             unchanged; nothing was applied\n",
            r.unchanged
        )
    } else {
        let revisions: Vec<String> = r
            .revisions
            .iter()
            .map(|(e, rev)| format!("{e}={rev}"))
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        format!(
            "applied: {created} created, {updated} updated, {deleted} deleted, {} unchanged; \
             revisions {}\n",
            r.unchanged,
            output::list(&revisions)
        )
    };
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn diff_names_each_changed_leaf() {
        let a: Value = serde_norway::from_str("x: 1\nm: {a: true, b: [1, 2]}\n").unwrap();
        let b: Value = serde_norway::from_str("x: 1\nm: {a: false, b: [1]}\nn: s\n").unwrap();
        let mut lines = Vec::new();
        diff("", &a, &b, &mut lines);
        assert_eq!(
            lines,
            [
                "m.a: true → false",
                "m.b[1]: 2 → (removed)",
                "n: (unset) → \"s\"",
            ]
        );
    }
}
