//! `set-variant`, `enable`, `disable`: the everyday changes to a flag in one environment.

use super::client::Connect;
use super::output;
use super::{Failure, Outcome};
use flagwire_proto::v1::{GetFlagRequest, Serve, SetFlagEnabledRequest, UpdateFlagRequest, serve};

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
    /// Write even if an active release or ramp owns the flag there (audited; the release then
    /// pauses until someone resumes it).
    #[arg(long)]
    pub force: bool,
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
    /// Write even if an active release or ramp owns the flag there (audited; the release then
    /// pauses until someone resumes it).
    #[arg(long)]
    pub force: bool,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
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
            force: a.force,
            flag: Some(flag),
            expected_version: version,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&flag) {
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
            force: a.force,
            key: a.key,
            environment: a.env.clone(),
            enabled,
            expected_version: 0,
            reason: a.reason,
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
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
