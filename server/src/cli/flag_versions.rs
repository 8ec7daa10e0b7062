//! A flag's life cycle and history: `flags archive|unarchive|delete|history|revert`.

use super::Outcome;
use super::bundle::diff;
use super::client::Connect;
use super::output::{self, Table};
use crate::bundle::definition;
use crate::protojson;
use flagwire_proto::v1::{
    ArchiveFlagRequest, DeleteFlagRequest, Flag, ListFlagVersionsRequest, RevertFlagRequest,
};

/// Options of `flags archive` and `unarchive`.
#[derive(Debug, clap::Args)]
pub struct KeyArgs {
    /// The flag key.
    pub key: String,
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

/// Options of `flags delete`. No `--force`: the server never deletes a flag an active release
/// or ramp owns (end the owner first).
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The flag key.
    pub key: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `flags history`.
#[derive(Debug, clap::Args)]
pub struct HistoryArgs {
    /// The flag key.
    pub key: String,
    /// At most this many versions (0: all).
    #[arg(long, default_value_t = 20)]
    pub limit: usize,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `flags revert`.
#[derive(Debug, clap::Args)]
pub struct RevertArgs {
    /// The flag key.
    pub key: String,
    /// The version whose content becomes current (`flags history` lists them).
    pub version: u64,
    /// Fail unless the stored version is this one.
    #[arg(long, value_name = "VERSION", default_value_t = 0)]
    pub expected_version: u64,
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

/// `flags archive` (`archived` true) and `flags unarchive`.
pub async fn archive(a: KeyArgs, archived: bool) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .archive_flag(ArchiveFlagRequest {
            force: a.force,
            key: a.key,
            archived,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let f = response.flag.unwrap_or_default();
    let word = if archived { "archived" } else { "unarchived" };
    output::line(&format!("{word} flag {}, version {}", f.key, f.version));
    Ok(())
}

/// `flags delete`.
pub async fn delete(a: DeleteArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .delete_flag(DeleteFlagRequest {
            key: a.key.clone(),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::line(&format!("deleted flag {}", a.key));
    }
    Ok(())
}

/// What changed from `older` to `newer`, one line per changed field.
fn changes(older: Option<&Flag>, newer: &Flag) -> Vec<String> {
    let Some(older) = older else {
        return vec!["created".into()];
    };
    let mut lines = Vec::new();
    diff(
        "",
        &protojson::to_value(&definition::flag(older)),
        &protojson::to_value(&definition::flag(newer)),
        &mut lines,
    );
    if lines.is_empty() {
        lines.push("no change to the definition".into());
    }
    lines
}

/// `flags history`: one row per version, continued on further rows for each changed field.
pub async fn history(a: HistoryArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let mut response = admin
        .list_flag_versions(ListFlagVersionsRequest { key: a.key })
        .await?
        .into_inner();
    let all = response.versions.clone();
    if a.limit > 0 {
        response.versions.truncate(a.limit);
    }
    if a.connect.structured(&response) {
        return Ok(());
    }
    let mut t = Table::new(&["VERSION", "UPDATED", "CHANGES"]);
    for (i, v) in response.versions.iter().enumerate() {
        // Newest first: the previous version is the next entry.
        for (j, change) in changes(all.get(i + 1), v).into_iter().enumerate() {
            let (version, time) = if j == 0 {
                (v.version.to_string(), output::time(v.update_time.as_ref()))
            } else {
                (String::new(), String::new())
            };
            t.row(vec![version, time, change]);
        }
    }
    t.print();
    Ok(())
}

/// `flags revert`.
pub async fn revert(a: RevertArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .revert_flag(RevertFlagRequest {
            force: a.force,
            key: a.key,
            version: a.version,
            expected_version: a.expected_version,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let f = response.flag.unwrap_or_default();
    output::line(&format!(
        "reverted flag {} to the content of version {}: now version {}",
        f.key, a.version, f.version
    ));
    Ok(())
}
