//! `segments create|update|list|get|delete`: reusable audiences of one environment. Options
//! edit the included and excluded targeting keys; rules come from a file (`-f`, a segment in
//! the export format).

use super::client::Connect;
use super::files;
use super::output::{self, Table};
use super::{Failure, Outcome};
use flagwire_proto::v1::{
    CreateSegmentRequest, DeleteSegmentRequest, GetSegmentRequest, ListSegmentsRequest, Segment,
    UpdateSegmentRequest,
};
use std::path::PathBuf;

/// `flagwire segments ...`.
#[derive(Debug, clap::Subcommand)]
pub enum SegmentsCommand {
    /// Create a segment (from options, or `-f FILE`).
    Create(EditArgs),
    /// Change a segment (guarded by the version read, or `--expected-version`).
    Update(EditArgs),
    /// List the segments of an environment.
    List(ListArgs),
    /// Show one segment.
    Get(GetArgs),
    /// Delete a segment no flag refers to.
    Delete(DeleteArgs),
}

/// Options of `segments create` and `segments update`.
#[derive(Debug, clap::Args)]
pub struct EditArgs {
    /// The segment key (with `-f`, optional: the file names it).
    #[arg(required_unless_present = "file")]
    pub key: Option<String>,
    /// The environment (with `-f`, optional: the file names it).
    #[arg(long, required_unless_present = "file")]
    pub env: Option<String>,
    /// One segment in the export format (YAML, or JSON for a `.json` file), replacing it whole.
    #[arg(short = 'f', long, conflicts_with_all = ["description", "include", "exclude", "remove"])]
    pub file: Option<PathBuf>,
    /// Free text for people.
    #[arg(long)]
    pub description: Option<String>,
    /// Targeting keys to include (comma-separated or repeated).
    #[arg(long, value_delimiter = ',')]
    pub include: Vec<String>,
    /// Targeting keys to exclude (they win over included keys and rules).
    #[arg(long, value_delimiter = ',')]
    pub exclude: Vec<String>,
    /// Targeting keys to take out of both lists (`update`).
    #[arg(long, value_delimiter = ',')]
    pub remove: Vec<String>,
    /// Fail unless the stored version is this one (`update`).
    #[arg(long, value_name = "VERSION")]
    pub expected_version: Option<u64>,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `segments list`.
#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `segments get`.
#[derive(Debug, clap::Args)]
pub struct GetArgs {
    /// The segment key.
    pub key: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Options of `segments delete`.
#[derive(Debug, clap::Args)]
pub struct DeleteArgs {
    /// The segment key.
    pub key: String,
    /// The environment.
    #[arg(long)]
    pub env: String,
    /// Why (recorded in the audit log).
    #[arg(long, default_value = "")]
    pub reason: String,
    /// Server and output.
    #[command(flatten)]
    pub connect: Connect,
}

/// Runs a `segments` subcommand.
pub async fn run(command: SegmentsCommand) -> Outcome {
    match command {
        SegmentsCommand::Create(a) => create(a).await,
        SegmentsCommand::Update(a) => update(a).await,
        SegmentsCommand::List(a) => list(a).await,
        SegmentsCommand::Get(a) => get(a).await,
        SegmentsCommand::Delete(a) => delete(a).await,
    }
}

fn table(segments: &[Segment]) -> Table {
    let mut t = Table::new(&[
        "KEY",
        "ENVIRONMENT",
        "INCLUDED",
        "EXCLUDED",
        "RULES",
        "VERSION",
        "DESCRIPTION",
    ]);
    for s in segments {
        t.row(vec![
            s.key.clone(),
            s.environment.clone(),
            output::list(&s.included),
            output::list(&s.excluded),
            s.rules.len().to_string(),
            s.version.to_string(),
            s.description.clone(),
        ]);
    }
    t
}

/// The file's segment, its key and environment checked against the arguments.
fn from_file(a: &EditArgs) -> Result<Option<Segment>, Failure> {
    let Some(path) = &a.file else { return Ok(None) };
    let mut s: Segment = files::read(path, "segment")?;
    for (given, field, name) in [
        (&a.key, &mut s.key, "key"),
        (&a.env, &mut s.environment, "environment"),
    ] {
        match given {
            Some(g) if field.is_empty() => *field = g.clone(),
            Some(g) if g != field => {
                return Err(Failure::Usage(format!(
                    "the {name} {g:?} differs from the file's {field:?}"
                )));
            }
            _ => {}
        }
    }
    Ok(Some(s))
}

/// Applies the options: excluded keys leave `included` and the other way round.
fn edit(s: &mut Segment, a: &EditArgs) {
    if let Some(d) = &a.description {
        s.description = d.clone();
    }
    let drop = |list: &mut Vec<String>, keys: &[String]| list.retain(|k| !keys.contains(k));
    drop(&mut s.included, &a.remove);
    drop(&mut s.excluded, &a.remove);
    drop(&mut s.excluded, &a.include);
    drop(&mut s.included, &a.exclude);
    for (list, keys) in [(&mut s.included, &a.include), (&mut s.excluded, &a.exclude)] {
        for k in keys {
            if !list.contains(k) {
                list.push(k.clone());
            }
        }
    }
}

async fn create(a: EditArgs) -> Outcome {
    let segment = match from_file(&a)? {
        Some(s) => s,
        None => {
            let mut s = Segment {
                key: a.key.clone().unwrap_or_default(),
                environment: a.env.clone().unwrap_or_default(),
                ..Default::default()
            };
            edit(&mut s, &a);
            s
        }
    };
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .create_segment(CreateSegmentRequest {
            segment: Some(segment),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let s = response.segment.unwrap_or_default();
        output::line(&format!(
            "created segment {} in {}: {} included, {} excluded",
            s.key,
            s.environment,
            s.included.len(),
            s.excluded.len()
        ));
    }
    Ok(())
}

async fn update(a: EditArgs) -> Outcome {
    let replacement = from_file(&a)?;
    let (key, env) = match &replacement {
        Some(s) => (s.key.clone(), s.environment.clone()),
        None => (
            a.key.clone().unwrap_or_default(),
            a.env.clone().unwrap_or_default(),
        ),
    };
    let mut admin = a.connect.connect().await?.admin;
    let before = admin
        .get_segment(GetSegmentRequest {
            environment: env,
            key,
        })
        .await?
        .into_inner()
        .segment
        .unwrap_or_default();
    let segment = match replacement {
        Some(s) => s,
        None => {
            let mut s = before.clone();
            edit(&mut s, &a);
            s
        }
    };
    let response = admin
        .update_segment(UpdateSegmentRequest {
            segment: Some(segment),
            expected_version: a.expected_version.unwrap_or(before.version),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        let s = response.segment.unwrap_or_default();
        output::line(&format!(
            "updated segment {} in {}, version {} → {}",
            s.key, s.environment, before.version, s.version
        ));
    }
    Ok(())
}

async fn list(a: ListArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .list_segments(ListSegmentsRequest { environment: a.env })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        table(&response.segments).print();
    }
    Ok(())
}

async fn get(a: GetArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .get_segment(GetSegmentRequest {
            environment: a.env,
            key: a.key,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        table(&[response.segment.unwrap_or_default()]).print();
    }
    Ok(())
}

async fn delete(a: DeleteArgs) -> Outcome {
    let mut admin = a.connect.connect().await?.admin;
    let response = admin
        .delete_segment(DeleteSegmentRequest {
            environment: a.env.clone(),
            key: a.key.clone(),
            reason: a.reason,
        })
        .await?
        .into_inner();
    if !a.connect.structured(&response) {
        output::line(&format!("deleted segment {} in {}", a.key, a.env));
    }
    Ok(())
}
