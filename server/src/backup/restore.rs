//! Restoring a backup into a fresh data directory (offline: no server runs on it).

use super::file::Backup;
use crate::catalog::{Catalog, CatalogOptions};
use crate::store::{Batch, Store, sled_store::SledStore};
use anyhow::{Context, bail};
use flagwire_proto::v1::Role;
use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

/// What a restore wrote.
#[derive(Debug, Clone)]
pub struct Summary {
    /// Store entries written.
    pub entries: usize,
    /// Environments and their revisions.
    pub revisions: BTreeMap<String, u64>,
    /// Flags.
    pub flags: usize,
    /// Tokens (live and revoked).
    pub tokens: usize,
    /// Whether `admin-token` was written (see [`restore`]).
    pub admin_token_written: bool,
}

fn refuse_non_empty(dir: &Path) -> anyhow::Result<()> {
    match std::fs::read_dir(dir) {
        Ok(mut entries) => {
            if entries.next().is_some() {
                bail!(
                    "{} is not empty: restore only into a new or empty data directory",
                    dir.display()
                );
            }
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).with_context(|| format!("read {}", dir.display())),
    }
}

/// Writes every entry of `backup` into a new sled store under `data_dir` (which must be empty
/// or missing), then loads it as a server would and checks the environments' revisions against
/// the backup's header.
///
/// The backup holds tokens only as hashes, so it cannot recreate the `admin-token` file of the
/// original data directory. When `admin_secret` (the `FLAGWIRE_TOKEN` the operator uses) is a
/// live admin token of the backup, it is written there instead, so `scripts/run` finds it.
pub fn restore(
    backup: &Backup,
    data_dir: &Path,
    admin_secret: Option<&str>,
) -> anyhow::Result<Summary> {
    refuse_non_empty(data_dir)?;
    std::fs::create_dir_all(data_dir).with_context(|| format!("create {}", data_dir.display()))?;
    let store = Arc::new(SledStore::open(data_dir).context("open the new store")?);
    let mut batch = Batch::default();
    for (k, v) in &backup.entries {
        batch.put(k.clone(), v.clone());
    }
    store.commit(batch).context("write the store")?;
    let catalog = Catalog::open(store, CatalogOptions::default())
        .context("the restored store does not load")?;
    let (revisions, flags, tokens) = {
        let state = catalog.read();
        let revisions: BTreeMap<String, u64> = state
            .envs
            .values()
            .map(|e| (e.key.clone(), e.revision))
            .collect();
        (revisions, state.flags.len(), state.tokens.len())
    };
    let expected: BTreeMap<String, u64> = backup
        .header
        .revisions
        .iter()
        .map(|(k, v)| (k.clone(), *v))
        .collect();
    if revisions != expected {
        bail!("restored revisions {revisions:?} differ from the backup's header {expected:?}");
    }
    let admin = admin_secret
        .and_then(|s| catalog.authenticate(s.trim()))
        .is_some_and(|p| p.role == Role::Admin);
    if admin && let Some(secret) = admin_secret {
        write_secret(&data_dir.join("admin-token"), secret.trim())?;
    }
    catalog.flush()?;
    Ok(Summary {
        entries: backup.entries.len(),
        revisions,
        flags,
        tokens,
        admin_token_written: admin,
    })
}

fn write_secret(path: &Path, secret: &str) -> anyhow::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options
        .open(path)
        .with_context(|| format!("write {}", path.display()))?;
    writeln!(file, "{secret}")?;
    file.sync_all()?;
    Ok(())
}
