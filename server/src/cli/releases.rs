//! `release ...`: releases of several flags through stages. `create -f FILE` defines one
//! (DRAFT), `start` begins it, `approve` lets a stage that requires it begin, `pause`/`resume`
//! stop and restart the judge's automatic decisions, `promote` and `rollback` (whole, or one flag
//! with `--flag`) decide now; `list` and `status` ([`release_status`](super::release_status))
//! show them.

use super::client::{Connect, Releases};
use super::files;
use super::output::{self, Table};
use super::release_status::{self, StatusArgs, stage, state};
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    ApproveStageRequest, CreateReleaseRequest, GetReleaseResponse, ListReleasesRequest,
    PauseReleaseRequest, PromoteReleaseRequest, Release, ResumeReleaseRequest,
    RollbackReleaseRequest, StartReleaseRequest,
};
use std::path::PathBuf;

/// `flagwire release ...`.
#[derive(Debug, clap::Subcommand)]
pub enum ReleaseCommand {
    /// Define a release from a file (it starts as DRAFT).
    Create(CreateArgs),
    /// Start a draft release: its first stage begins (or awaits approval).
    Start(ActionArgs),
    /// Approve the stage awaiting approval; it begins at once.
    Approve(ApproveArgs),
    /// Pause automatic decisions (the current stage keeps serving).
    Pause(ActionArgs),
    /// Resume automatic decisions.
    Resume(ActionArgs),
    /// Go to the next stage now (approving it if it needs approval; from the last: complete).
    Promote(ActionArgs),
    /// Serve every baseline now, or with --flag return one flag to its baseline.
    Rollback(RollbackArgs),
    /// List releases, newest first.
    List(ListArgs),
    /// Show a release: state, stage, audience, latest decision and its evidence (`--watch`:
    /// until it ends).
    Status(StatusArgs),
}

/// Options of `release create`.
#[derive(Debug, clap::Args)]
pub struct CreateArgs {
    /// The release definition: a release as in an exported bundle (`name`, `environment`,
    /// `flags`, `stages`, `guardrails`, `policy`), or a whole CreateReleaseRequest
    /// (`release: {...}`); YAML, or JSON for a `.json` file; `-` reads standard input.
    #[arg(short = 'f', long)]
    pub file: PathBuf,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `release start|pause|resume|promote`.
#[derive(Debug, clap::Args)]
pub struct ActionArgs {
    /// The release id.
    pub id: String,
    /// Why (recorded in the decision log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `release approve`.
#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The release id.
    pub id: String,
    /// The stage awaiting approval, counted from 0 (as `status` shows it on `awaiting:`).
    #[arg(long)]
    pub stage: u32,
    /// Why (required; recorded with the approval).
    #[arg(long)]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `release rollback`.
#[derive(Debug, clap::Args)]
pub struct RollbackArgs {
    /// The release id.
    pub id: String,
    /// Only this flag goes back to its baseline; the rest of the release goes on.
    #[arg(long)]
    pub flag: Option<String>,
    /// With --flag: pause the release after the partial rollback.
    #[arg(long, requires = "flag")]
    pub hold: bool,
    /// With --flag: a rollback plan (id) to execute after the partial rollback; a full
    /// rollback runs the policy's rollbackPlanId instead.
    #[arg(long, requires = "flag")]
    pub plan: Option<String>,
    /// Why (required; recorded in the decision log).
    #[arg(long)]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `release list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// Only this environment.
    #[arg(long, default_value = "")]
    pub env: String,
    /// Only releases moving this flag.
    #[arg(long, default_value = "")]
    pub flag: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `release` subcommand.
pub async fn run(command: ReleaseCommand) -> Outcome {
    match command {
        ReleaseCommand::Create(a) => create(a).await,
        ReleaseCommand::List(a) => list(a).await,
        ReleaseCommand::Status(a) => release_status::status(a).await,
        ReleaseCommand::Approve(a) => {
            let request = ApproveStageRequest {
                id: a.id,
                stage: a.stage,
                reason: a.reason,
            };
            let mut client = a.connect.connect().await?.releases;
            let r = client.approve_stage(request).await?.into_inner().release;
            show(&a.connect, r)
        }
        ReleaseCommand::Rollback(a) => {
            let request = RollbackReleaseRequest {
                id: a.id,
                reason: a.reason,
                flag_key: a.flag.unwrap_or_default(),
                hold: a.hold,
                plan_id: a.plan.unwrap_or_default(),
            };
            let mut client = a.connect.connect().await?.releases;
            let r = client.rollback_release(request).await?.into_inner().release;
            show(&a.connect, r)
        }
        ReleaseCommand::Start(a) => act(a, Action::Start).await,
        ReleaseCommand::Pause(a) => act(a, Action::Pause).await,
        ReleaseCommand::Resume(a) => act(a, Action::Resume).await,
        ReleaseCommand::Promote(a) => act(a, Action::Promote).await,
    }
}

/// The file's release, bare or wrapped in a CreateReleaseRequest.
fn definition(path: &std::path::Path) -> Result<Release, Failure> {
    let text = files::text(path)?;
    match files::parse::<Release>(path, &text, "release") {
        Ok(r) => Ok(r),
        Err(bare) => match files::parse::<CreateReleaseRequest>(path, &text, "release") {
            Ok(request) => Ok(request.release.unwrap_or_default()),
            Err(_) => Err(bare),
        },
    }
}

async fn create(a: CreateArgs) -> Outcome {
    let release = definition(&a.file)?;
    let mut client = a.connect.connect().await?.releases;
    let response = client
        .create_release(CreateReleaseRequest {
            release: Some(release),
        })
        .await?
        .into_inner();
    if a.connect.structured(&response) {
        return Ok(());
    }
    let r = response.release.unwrap_or_default();
    let flags: Vec<&str> = r.flags.iter().map(|f| f.flag_key.as_str()).collect();
    output::line(&format!(
        "created release {} ({}): {} in {}, {} stages; start it with: flagwire release start {}",
        r.id,
        state(&r),
        flags.join(", "),
        r.environment,
        r.stages.len(),
        r.id
    ));
    Ok(())
}

#[derive(Clone, Copy)]
enum Action {
    Start,
    Pause,
    Resume,
    Promote,
}

async fn call(client: &mut Releases, a: &ActionArgs, action: Action) -> Result<Release, Failure> {
    let (id, reason) = (a.id.clone(), a.reason.clone());
    let release = match action {
        Action::Start => {
            let request = StartReleaseRequest { id, reason };
            client.start_release(request).await?.into_inner().release
        }
        Action::Pause => {
            let request = PauseReleaseRequest { id, reason };
            client.pause_release(request).await?.into_inner().release
        }
        Action::Resume => {
            let request = ResumeReleaseRequest { id, reason };
            client.resume_release(request).await?.into_inner().release
        }
        Action::Promote => {
            let request = PromoteReleaseRequest { id, reason };
            client.promote_release(request).await?.into_inner().release
        }
    };
    Ok(release.unwrap_or_default())
}

async fn act(a: ActionArgs, action: Action) -> Outcome {
    let mut client = a.connect.connect().await?.releases;
    let r = call(&mut client, &a, action).await?;
    show(&a.connect, Some(r))
}

/// One line per action (or the release as JSON/YAML: GetReleaseResponse's shape).
fn show(connect: &Connect, r: Option<Release>) -> Outcome {
    let r = r.unwrap_or_default();
    let response = GetReleaseResponse {
        release: Some(r.clone()),
    };
    if !connect.structured(&response) {
        output::line(&format!(
            "release {} ({}): {}, stage {}",
            r.id,
            r.environment,
            state(&r),
            stage(&r)
        ));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut client = a.connect.connect().await?.releases;
    let releases = client
        .list_releases(ListReleasesRequest {
            environment: a.env,
            flag_key: a.flag,
        })
        .await?
        .into_inner();
    if a.connect.structured(&releases) {
        return Ok(());
    }
    let mut t = Table::new(&[
        "ID",
        "NAME",
        "ENVIRONMENT",
        "FLAGS",
        "STATE",
        "STAGE",
        "CREATED",
    ]);
    for r in &releases.releases {
        t.row(vec![
            r.id.clone(),
            r.name.clone(),
            r.environment.clone(),
            r.flags.len().to_string(),
            state(r),
            stage(r),
            output::time(r.create_time.as_ref()),
        ]);
    }
    t.print();
    Ok(())
}
