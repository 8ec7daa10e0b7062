//! How results look: aligned tables without borders (easy to read, `grep` and `awk`), the
//! protobuf JSON mapping for `--output json` (YAML of the same structure for `--output yaml`),
//! and short renderings of flag parts.

use crate::protojson::{self, Named};
use flagwire_proto::v1::{FlagValue, Serve, ValueType, flag_value, serve};
use prost_types::Timestamp;

/// The `--output` formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// Aligned columns for people.
    Table,
    /// The protobuf JSON mapping, as grpcurl prints it.
    Json,
    /// The same structure as YAML.
    Yaml,
}

/// Prints `message` in `format` and returns true, or returns false for [`Format::Table`] (the
/// caller renders its own table).
pub fn structured<M: Named>(format: Format, message: &M) -> bool {
    match format {
        Format::Table => return false,
        Format::Json => json(message),
        Format::Yaml => emit(&protojson::to_yaml(message)),
    }
    true
}

/// A table: a header row and rows of cells, printed with columns aligned by two spaces.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column names.
    pub fn new(header: &[&str]) -> Self {
        Self {
            header: header.iter().map(|h| h.to_string()).collect(),
            rows: Vec::new(),
        }
    }

    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    /// The rendered table, one line per row, ending in a newline.
    pub fn render(&self) -> String {
        let width = |i: usize| {
            std::iter::once(&self.header)
                .chain(&self.rows)
                .map(|r| r.get(i).map_or(0, |c| c.chars().count()))
                .max()
                .unwrap_or(0)
        };
        let widths: Vec<usize> = (0..self.header.len()).map(width).collect();
        let mut out = String::new();
        for row in std::iter::once(&self.header).chain(&self.rows) {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate() {
                if i + 1 < row.len() {
                    let pad = widths[i] - cell.chars().count();
                    line.push_str(cell);
                    line.push_str(&" ".repeat(pad + 2));
                } else {
                    line.push_str(cell);
                }
            }
            out.push_str(line.trim_end());
            out.push('\n');
        }
        out
    }

    /// Prints it on stdout.
    pub fn print(&self) {
        emit(&self.render());
    }
}

/// Writes `text` to stdout. A closed stdout (`flagwire ... | head`) is not an error worth a
/// panic: the reader has what it wanted.
pub fn emit(text: &str) {
    use std::io::Write;
    let _ = std::io::stdout().lock().write_all(text.as_bytes());
}

/// [`emit`] with a newline.
pub fn line(text: &str) {
    emit(&format!("{text}\n"));
}

/// Prints `message` as pretty protobuf JSON on stdout.
pub fn json<M: Named>(message: &M) {
    line(&protojson::to_json(message));
}

/// A time as RFC 3339 in whole seconds, or `-`.
pub fn time(t: Option<&Timestamp>) -> String {
    t.map_or_else(
        || "-".to_owned(),
        |t| {
            Timestamp {
                seconds: t.seconds,
                nanos: 0,
            }
            .to_string()
        },
    )
}

/// What a rule serves: `on`, or a split such as `on 10% / off 90%`.
pub fn serve(s: Option<&Serve>) -> String {
    match s.and_then(|s| s.kind.as_ref()) {
        Some(serve::Kind::Variant(v)) => v.clone(),
        Some(serve::Kind::Split(split)) => {
            let total: u64 = split.entries.iter().map(|e| u64::from(e.weight)).sum();
            let parts: Vec<String> = split
                .entries
                .iter()
                .map(|e| {
                    let pct = if total == 0 {
                        0.0
                    } else {
                        100.0 * f64::from(e.weight) / total as f64
                    };
                    format!("{} {}%", e.variant, round(pct))
                })
                .collect();
            parts.join(" / ")
        }
        None => "-".to_owned(),
    }
}

/// A percentage with at most two decimals, without trailing zeros.
pub fn round(pct: f64) -> String {
    let text = format!("{pct:.2}");
    text.trim_end_matches('0').trim_end_matches('.').to_owned()
}

/// A variant value in short form.
pub fn value(v: Option<&FlagValue>) -> String {
    match v.and_then(|v| v.kind.as_ref()) {
        Some(flag_value::Kind::BoolValue(b)) => b.to_string(),
        Some(flag_value::Kind::StringValue(s)) => format!("{s:?}"),
        Some(flag_value::Kind::IntValue(i)) => i.to_string(),
        Some(flag_value::Kind::FloatValue(f)) => f.to_string(),
        Some(flag_value::Kind::ObjectValue(_)) => "{…}".to_owned(),
        None => "-".to_owned(),
    }
}

/// A value type's short name: `boolean`, `string`, `integer`, `float`, `object`.
pub fn type_name(t: i32) -> String {
    let name = ValueType::try_from(t).unwrap_or(ValueType::Unspecified);
    name.as_str_name()
        .trim_start_matches("VALUE_TYPE_")
        .to_lowercase()
}

/// `on` or `off`.
pub fn on_off(enabled: bool) -> String {
    if enabled { "on" } else { "off" }.to_owned()
}

/// An enum value's name without its prefix, e.g. `RUNNING` for `ROLLOUT_STATE_RUNNING`.
pub fn enum_name(name: &str, prefix: &str) -> String {
    name.strip_prefix(prefix).unwrap_or(name).to_owned()
}

/// A list for a table cell, or `-` when empty.
pub fn list(items: &[String]) -> String {
    if items.is_empty() {
        "-".to_owned()
    } else {
        items.join(",")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_align_and_lines_do_not_end_in_spaces() {
        let mut t = Table::new(&["KEY", "ON"]);
        t.row(vec!["a-long-key".into(), "yes".into()]);
        t.row(vec!["b".into(), "".into()]);
        assert_eq!(t.render(), "KEY         ON\na-long-key  yes\nb\n");
    }

    #[test]
    fn percentages_drop_trailing_zeros() {
        assert_eq!(round(50.0), "50");
        assert_eq!(round(12.5), "12.5");
        assert_eq!(round(100.0 / 3.0), "33.33");
    }
}
