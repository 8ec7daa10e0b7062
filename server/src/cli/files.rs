//! Definition files given with `-f FILE`: one message (a flag, a segment, a rollout, a plan, a
//! scheduled change) in the protobuf JSON mapping, as YAML or, for a `.json` file, JSON: the
//! same layout as the entries of an exported bundle.

use super::Failure;
use crate::bundle::file::Format;
use crate::protojson::{self, Named};
use std::path::Path;

/// The file's text (`-` reads standard input).
pub fn text(path: &Path) -> Result<String, Failure> {
    let read = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin())
    } else {
        std::fs::read_to_string(path)
    };
    read.map_err(|e| Failure::Local(anyhow::anyhow!("read {}: {e}", path.display())))
}

/// Parses `text`, read from `path`, as a `what`.
pub fn parse<M: Named>(path: &Path, text: &str, what: &str) -> Result<M, Failure> {
    let parsed = match Format::of(path) {
        Format::Json => protojson::from_json::<M>(text),
        Format::Yaml => protojson::from_yaml::<M>(text),
    };
    parsed.map_err(|e| {
        Failure::Local(anyhow::anyhow!(
            "{}: not a valid {what}: {e}",
            path.display()
        ))
    })
}

/// Reads one `what` from `path`.
pub fn read<M: Named>(path: &Path, what: &str) -> Result<M, Failure> {
    parse(path, &text(path)?, what)
}
