//! Reading `.env` files (`NAME=value` lines, as python-dotenv, pydantic settings and
//! docker compose read them), keeping each entry's line number.
//!
//! Hand-written rather than dotenvy because an import must name the line of every value it
//! cannot type, and dotenvy reports line numbers for neither its entries nor its parse errors;
//! and because dotenvy expands `$NAME` from the importing process's environment, which would
//! copy the operator's shell variables into flags. Here a `$` reference is refused instead
//! (single quotes keep a literal `$`).
//!
//! Accepted: blank lines and `#` comments; an optional `export ` prefix; unquoted values (a
//! `#` after whitespace starts a comment, surrounding whitespace is dropped); double-quoted
//! values with `\n`, `\t`, `\r`, `\"`, `\\` and `\$` escapes; single-quoted values taken
//! literally. Quoted values spanning several lines are refused.

/// One `NAME=value` line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    /// 1-based line number.
    pub line: usize,
    /// The variable name.
    pub name: String,
    /// The value, unquoted and unescaped.
    pub value: String,
    /// How the value was written.
    pub quote: Quote,
}

/// How a value was written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Quote {
    /// Bare.
    None,
    /// In double quotes.
    Double,
    /// In single quotes (always a string).
    Single,
}

/// A line that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    /// 1-based line number.
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '.')
}

/// After a closing quote only a comment may follow.
fn rest_is_comment(rest: &str) -> bool {
    let rest = rest.trim_start();
    rest.is_empty() || rest.starts_with('#')
}

const NO_SUBSTITUTION: &str = "variable references ($NAME) are not expanded by an import: \
                               write the value itself, or single-quote it to keep a literal $";

fn double_quoted(body: &str) -> Result<(String, &str), String> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Ok((value, &body[i + 1..])),
            '$' => return Err(NO_SUBSTITUTION.into()),
            '\\' => match chars.next().map(|(_, e)| e) {
                Some('n') => value.push('\n'),
                Some('t') => value.push('\t'),
                Some('r') => value.push('\r'),
                Some(e @ ('"' | '\\' | '$')) => value.push(e),
                Some(e) => {
                    value.push('\\');
                    value.push(e);
                }
                None => break,
            },
            c => value.push(c),
        }
    }
    Err("unterminated double quote (values spanning lines are not supported)".into())
}

fn value(raw: &str) -> Result<(String, Quote), String> {
    let raw = raw.trim_start();
    let (value, rest, quote) = if let Some(body) = raw.strip_prefix('"') {
        let (v, rest) = double_quoted(body)?;
        (v, rest, Quote::Double)
    } else if let Some(body) = raw.strip_prefix('\'') {
        let end = body
            .find('\'')
            .ok_or("unterminated single quote (values spanning lines are not supported)")?;
        (body[..end].to_owned(), &body[end + 1..], Quote::Single)
    } else {
        // A comment starts at a `#` that follows whitespace.
        let end = raw
            .char_indices()
            .find(|&(i, c)| c == '#' && raw[..i].ends_with(char::is_whitespace))
            .map_or(raw.len(), |(i, _)| i);
        let v = raw[..end].trim_end();
        if v.contains('$') {
            return Err(NO_SUBSTITUTION.into());
        }
        return Ok((v.to_owned(), Quote::None));
    };
    if !rest_is_comment(rest) {
        return Err(format!(
            "unexpected text after the closing quote: {:?}",
            rest.trim()
        ));
    }
    Ok((value, quote))
}

fn entry(line: usize, text: &str) -> Result<Option<Entry>, String> {
    let trimmed = text.trim();
    if trimmed.is_empty() || trimmed.starts_with('#') {
        return Ok(None);
    }
    let statement = trimmed
        .strip_prefix("export")
        .filter(|r| r.starts_with(char::is_whitespace))
        .map_or(trimmed, str::trim_start);
    let Some((name, raw)) = statement.split_once('=') else {
        return Err("expected NAME=VALUE".into());
    };
    let name = name.trim_end();
    if !valid_name(name) {
        return Err(format!(
            "{name:?} is not a variable name (letters, digits, _ and ., not starting with a digit)"
        ));
    }
    let (value, quote) = value(raw)?;
    Ok(Some(Entry {
        line,
        name: name.to_owned(),
        value,
        quote,
    }))
}

/// Every entry of `text`, in order; the first unreadable line or repeated name is an error.
pub fn parse(text: &str) -> Result<Vec<Entry>, LineError> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<Entry> = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let parsed = entry(number, line).map_err(|message| LineError {
            line: number,
            message,
        })?;
        let Some(e) = parsed else { continue };
        if let Some(first) = entries.iter().find(|o| o.name == e.name) {
            return Err(LineError {
                line: number,
                message: format!("{} is already set on line {}", e.name, first.line),
            });
        }
        entries.push(e);
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(line: &str) -> Result<(String, String, Quote), String> {
        let entries = parse(line).map_err(|e| e.message)?;
        let e = entries.into_iter().next().expect("one entry");
        Ok((e.name, e.value, e.quote))
    }

    #[test]
    fn lines_as_dotenv_files_write_them() {
        let cases: &[(&str, &str, &str, Quote)] = &[
            ("A=1", "A", "1", Quote::None),
            (
                "export A = hello world  # note",
                "A",
                "hello world",
                Quote::None,
            ),
            ("A=a#b", "A", "a#b", Quote::None),
            ("A=\"x # y\" # note", "A", "x # y", Quote::Double),
            (
                r#"A="line\nnext \"q\" \$5""#,
                "A",
                "line\nnext \"q\" $5",
                Quote::Double,
            ),
            ("A='$HOME \\n'", "A", "$HOME \\n", Quote::Single),
            ("A=", "A", "", Quote::None),
            ("A=\"\"", "A", "", Quote::Double),
            ("feature.x_1=on", "feature.x_1", "on", Quote::None),
        ];
        for (line, name, value, quote) in cases {
            assert_eq!(
                one(line),
                Ok((name.to_string(), value.to_string(), *quote)),
                "{line}"
            );
        }
    }

    #[test]
    fn unreadable_lines_are_named() {
        let text = "# settings\n\nA=1\nB\n";
        assert_eq!(
            parse(text),
            Err(LineError {
                line: 4,
                message: "expected NAME=VALUE".into()
            })
        );
        for (line, fragment) in [
            ("A=$HOME", "not expanded"),
            ("A=\"${X}\"", "not expanded"),
            ("A=\"open", "unterminated double quote"),
            ("A='open", "unterminated single quote"),
            ("A=\"x\" y", "after the closing quote"),
            ("1A=x", "not a variable name"),
            ("A B=x", "not a variable name"),
        ] {
            let err = parse(line).unwrap_err();
            assert_eq!(err.line, 1);
            assert!(err.message.contains(fragment), "{line}: {}", err.message);
        }
        let err = parse("A=1\nB=2\nA=3\n").unwrap_err();
        assert_eq!(
            (err.line, err.message.as_str()),
            (3, "A is already set on line 1")
        );
    }
}
