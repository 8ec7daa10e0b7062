//! Bundle files: YAML (the default) or JSON, both the protobuf JSON mapping of
//! [`Bundle`](flagwire_proto::v1::Bundle), so a file reads like grpcurl's output.

use crate::protojson;
use anyhow::Context;
use flagwire_proto::v1::Bundle;
use std::path::Path;

/// The syntax of a bundle file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// YAML.
    Yaml,
    /// JSON.
    Json,
}

impl Format {
    /// JSON for a `.json` file, YAML otherwise.
    pub fn of(path: &Path) -> Format {
        match path.extension().and_then(|e| e.to_str()) {
            Some(ext) if ext.eq_ignore_ascii_case("json") => Format::Json,
            _ => Format::Yaml,
        }
    }
}

/// Parses a bundle; the error says where (line and column) and what is wrong.
pub fn parse(text: &str, format: Format) -> Result<Bundle, String> {
    match format {
        Format::Yaml => protojson::from_yaml(text),
        Format::Json => protojson::from_json(text),
    }
}

/// Renders a bundle; the same bundle always renders to the same text.
pub fn render(bundle: &Bundle, format: Format) -> String {
    match format {
        Format::Yaml => protojson::to_yaml(bundle),
        Format::Json => protojson::to_json(bundle) + "\n",
    }
}

/// Reads and parses the bundle file at `path` (`-` reads standard input, as YAML).
pub fn read(path: &Path) -> anyhow::Result<Bundle> {
    let text = if path == Path::new("-") {
        std::io::read_to_string(std::io::stdin()).context("read standard input")?
    } else {
        std::fs::read_to_string(path).with_context(|| format!("read {}", path.display()))?
    };
    parse(&text, Format::of(path))
        .map_err(|e| anyhow::anyhow!("{}: not a valid bundle: {e}", path.display()))
}
