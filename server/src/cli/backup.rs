//! `backup` (from a running server) and `restore` (offline, into an empty data directory).

use super::client::{TOKEN_VAR, Target};
use super::output::Format;
use super::{Failure, Outcome, output};
use crate::backup::file::{self, Writer};
use crate::backup::restore::{Destination, restore as restore_into};
use crate::store::postgres::tls;
use flagwire_proto::v1::{BackupRequest, backup_response};
use std::path::PathBuf;

/// Options of `backup`.
#[derive(Debug, clap::Args)]
pub struct BackupArgs {
    /// The backup file to write (replaced only once the backup is complete and checked).
    #[arg(long, short)]
    pub out: PathBuf,
    /// How to print the summary (no `-o`: that is `--out` here).
    #[arg(long, value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The same as `--output json`.
    #[arg(long, hide = true)]
    pub json: bool,
    /// The server.
    #[command(flatten)]
    pub target: Target,
}

/// Options of `restore`.
#[derive(Debug, clap::Args)]
pub struct RestoreArgs {
    /// The backup file.
    #[arg(long = "in", short = 'i', value_name = "FILE")]
    pub input: PathBuf,
    /// The data directory to create; it must not exist or be empty. Start `flagwire serve
    /// --data-dir` on it afterwards.
    #[arg(long, env = "FLAGWIRE_DATA_DIR", required_unless_present = "store")]
    pub data_dir: Option<PathBuf>,
    /// Restore into this PostgreSQL database (the URL `serve --store` takes, TLS included)
    /// instead: it must hold no catalog yet. Start `flagwire serve --store` on it afterwards.
    #[arg(long, value_name = "URL")]
    pub store: Option<String>,
    /// How to print the summary.
    #[arg(long, short = 'o', value_enum, default_value_t = Format::Table)]
    pub output: Format,
    /// The same as `--output json`.
    #[arg(long, hide = true)]
    pub json: bool,
}

/// Prints a summary as JSON or YAML and returns true, or returns false for a table.
fn print_summary(format: Format, json: bool, pairs: serde_json::Value) -> bool {
    match if json { Format::Json } else { format } {
        Format::Table => return false,
        Format::Json => output::line(&serde_json::to_string_pretty(&pairs).unwrap_or_default()),
        Format::Yaml => output::emit(&serde_norway::to_string(&pairs).unwrap_or_default()),
    }
    true
}

/// `backup`: streams the snapshot into `<out>.partial`, checks its trailer, then renames it.
pub async fn backup(a: BackupArgs) -> Outcome {
    let mut admin = a.target.connect().await?.admin;
    let mut stream = admin
        .backup(BackupRequest { batch_size: 0 })
        .await?
        .into_inner();
    let mut partial = a.out.clone().into_os_string();
    partial.push(".partial");
    let partial = PathBuf::from(partial);
    let out = std::fs::File::create(&partial)
        .map_err(|e| anyhow::anyhow!("create {}: {e}", partial.display()))?;
    let mut writer = Writer::new(out)?;
    let mut header = None;
    let mut entries = 0usize;
    let result: Result<(), Failure> = async {
        while let Some(m) = stream.message().await? {
            match &m.kind {
                Some(backup_response::Kind::Header(h)) => header = Some(h.clone()),
                Some(backup_response::Kind::Entries(e)) => entries += e.entries.len(),
                _ => {}
            }
            writer.push(&m)?;
        }
        let file = writer.finish()?;
        file.sync_all()?;
        std::fs::rename(&partial, &a.out)?;
        Ok(())
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result?;
    let revisions: std::collections::BTreeMap<String, u64> = header
        .map(|h| h.revisions.into_iter().collect())
        .unwrap_or_default();
    let pairs = serde_json::json!({
        "file": a.out.display().to_string(),
        "entries": entries,
        "revisions": revisions,
    });
    if print_summary(a.output, a.json, pairs) {
        return Ok(());
    }
    let revisions: Vec<String> = revisions.iter().map(|(e, r)| format!("{e}={r}")).collect();
    output::line(&format!(
        "backup of {entries} entries written to {} (revisions {})",
        a.out.display(),
        output::list(&revisions)
    ));
    Ok(())
}

/// `restore`.
pub fn restore(a: RestoreArgs) -> Outcome {
    let backup = file::read(&a.input)?;
    let secret = std::env::var(TOKEN_VAR).ok();
    let (to, place) = match (&a.store, &a.data_dir) {
        (Some(url), _) => (Destination::Postgres(url), tls::redact(url)),
        (None, Some(dir)) => (Destination::Sled(dir), dir.display().to_string()),
        (None, None) => return Err(anyhow::anyhow!("--data-dir or --store is required").into()),
    };
    let summary = restore_into(&backup, to, secret.as_deref())?;
    let revisions: Vec<String> = summary
        .revisions
        .iter()
        .map(|(e, r)| format!("{e}={r}"))
        .collect();
    if print_summary(
        a.output,
        a.json,
        serde_json::json!({
            "dataDir": a.data_dir.as_ref().map(|d| d.display().to_string()),
            "store": a.store.as_deref().map(tls::redact),
            "entries": summary.entries,
            "flags": summary.flags,
            "tokens": summary.tokens,
            "revisions": summary.revisions,
            "adminTokenWritten": summary.admin_token_written,
        }),
    ) {
        return Ok(());
    }
    output::line(&format!(
        "restored {} entries into {}: flags {}, tokens {}, revisions {}",
        summary.entries,
        place,
        summary.flags,
        summary.tokens,
        output::list(&revisions)
    ));
    if let Some(url) = &a.store {
        output::line(&format!(
            "tokens are restored as hashes: the old secrets work; start `flagwire serve --store \
             {}`",
            tls::redact(url)
        ));
    } else if summary.admin_token_written {
        output::line(&format!(
            "admin token from {TOKEN_VAR} written to {}/admin-token",
            place
        ));
    } else {
        output::line(&format!(
            "tokens are restored as hashes: the old secrets work; {}/admin-token is not \
             recreated (set {TOKEN_VAR} to a live admin token to have it written)",
            place
        ));
    }
    Ok(())
}
