//! Flags as code: the [`Bundle`](flagwire_proto::v1::Bundle) of environments, flags, segments,
//! metric definitions, release and rollout definitions and rollback plans that `flagwire export` writes and `flagwire import`
//! (or `serve --bootstrap`) applies.
//!
//! - [`definition`]: an object without the fields the server manages, which is what a bundle
//!   carries and what an import compares.
//! - [`import`]: checks a whole bundle against the catalog and applies it in one write;
//!   [`releases`]: its release (and rollout) definitions; [`metrics`]: its metric definitions.
//! - [`file`]: bundle files (YAML or JSON in the protobuf JSON mapping).
//!
//! An import upserts: objects of the bundle are created or updated, everything else is left
//! alone unless `prune` asks to delete flags and segments the bundle does not name.
//! Environments, metric definitions, releases (rollouts) and plans are never deleted by an
//! import, and an existing
//! release or plan cannot be changed by one (there is no UpdateRelease or UpdateRollbackPlan
//! either): a differing definition under an existing id is refused.

pub mod definition;
pub mod file;
pub mod import;
pub mod metrics;
mod plan;
pub mod releases;

/// The bundle format this server reads and writes.
pub const VERSION: u32 = 1;

/// `serve --bootstrap FILE`: at first start applies the file (refusing to start when it is
/// invalid, so a broken file is noticed at once); afterwards logs that it is ignored, without
/// reading it.
pub async fn bootstrap_file(
    catalog: &crate::catalog::Catalog,
    path: &std::path::Path,
) -> anyhow::Result<()> {
    let state_empty = {
        let state = catalog.read();
        state.envs.is_empty()
            && state.flags.is_empty()
            && state.segments.is_empty()
            && state.releases.is_empty()
    };
    if !state_empty {
        tracing::info!(file = %path.display(), "--bootstrap ignored: the store is not empty");
        return Ok(());
    }
    let bundle = file::read(path)?;
    let source = path.display().to_string();
    match import::bootstrap(catalog, &bundle, &source).await {
        Ok(Some(outcome)) => {
            tracing::info!(
                file = %source,
                changes = outcome.changes.len(),
                "bootstrapped the store"
            );
            Ok(())
        }
        Ok(None) => Ok(()),
        Err(e) => Err(anyhow::anyhow!("--bootstrap {source}: {e}")),
    }
}
