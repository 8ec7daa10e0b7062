//! Restoring a backup into a fresh data directory or an empty PostgreSQL database (offline: no
//! server runs on it).

use super::file::Backup;
use crate::catalog::{Catalog, CatalogOptions};
use crate::store::{Batch, Store, postgres::PgStore, sled_store::SledStore};
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

/// Where a backup is restored to.
#[derive(Debug, Clone, Copy)]
pub enum Destination<'a> {
    /// A new sled store in this data directory (which must be empty or missing).
    Sled(&'a Path),
    /// A PostgreSQL database (`postgres://...`) whose catalog is empty: migrated first if new.
    Postgres(&'a str),
}

/// Opens `to`, refusing one that holds data already.
fn open_empty(to: Destination<'_>) -> anyhow::Result<Arc<dyn Store>> {
    match to {
        Destination::Sled(data_dir) => {
            refuse_non_empty(data_dir)?;
            std::fs::create_dir_all(data_dir)
                .with_context(|| format!("create {}", data_dir.display()))?;
            Ok(Arc::new(
                SledStore::open(data_dir).context("open the new store")?,
            ))
        }
        Destination::Postgres(url) => {
            let store = PgStore::open(url).context("open the PostgreSQL store")?;
            let any = store.range(b"", &crate::store::keys::prefix_end(b""), 1)?;
            if !any.is_empty() {
                bail!(
                    "{} already holds a catalog: restore only into an empty database",
                    crate::store::postgres::tls::redact(url)
                );
            }
            Ok(store)
        }
    }
}

/// Writes every entry of `backup` into an empty store (one batch: all or nothing), then loads
/// it as a server would and checks the environments' revisions against the backup's header.
///
/// The backup holds tokens only as hashes, so it cannot recreate the `admin-token` file of the
/// original data directory. When restoring into sled and `admin_secret` (the `FLAGWIRE_TOKEN`
/// the operator uses) is a live admin token of the backup, it is written there instead, so
/// `scripts/run` finds it.
pub fn restore(
    backup: &Backup,
    to: Destination<'_>,
    admin_secret: Option<&str>,
) -> anyhow::Result<Summary> {
    let store = open_empty(to)?;
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
    let admin = match (to, admin_secret) {
        (Destination::Sled(data_dir), Some(secret)) if admin => {
            write_secret(&data_dir.join("admin-token"), secret.trim())?;
            true
        }
        _ => false,
    };
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
