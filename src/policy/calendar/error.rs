//! Why a calendar could not be built, and where in a TOML file a problem is (line, column,
//! dotted key): the locations policy-file errors use too.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// 1-based line and column (in characters) of byte `offset` in `text`.
pub(in crate::policy) fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(text.len());
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    let column = before.get(line_start..).map_or(0, |s| s.chars().count()) + 1;
    (line, column)
}

/// The dotted key of the line holding byte `offset` (e.g. `day_off[1].date`), when the line is
/// a `key = value` line or a table header. Good enough for error messages in our flat format.
pub(in crate::policy) fn key_at(text: &str, offset: usize) -> Option<String> {
    let (target, _) = line_column(text, offset);
    let mut table: Option<String> = None;
    let mut array_counts: HashMap<String, usize> = HashMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if let Some(name) = line.strip_prefix("[[").and_then(|l| l.split("]]").next()) {
            let name = name.trim().to_string();
            let count = array_counts.entry(name.clone()).or_insert(0);
            table = Some(format!("{name}[{count}]"));
            *count += 1;
        } else if let Some(name) = line.strip_prefix('[').and_then(|l| l.split(']').next()) {
            table = Some(name.trim().to_string());
        }
        if n + 1 == target {
            let key = line
                .split_once('=')
                .map(|(k, _)| k.trim())
                .filter(|k| !k.is_empty() && !k.starts_with('#') && !k.starts_with('['));
            return match (table, key) {
                (Some(t), Some(k)) => Some(format!("{t}.{k}")),
                (None, Some(k)) => Some(k.to_string()),
                (t, None) => t,
            };
        }
    }
    None
}

/// Why the calendar could not be built.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CalendarError {
    #[error("cannot read calendar directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read calendar file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{}: calendar files must be named YYYY.toml", path.display())]
    FileName { path: PathBuf },
    /// Not valid TOML, or not the year-file format.
    #[error("{}: {message}", location(path, *line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// Well-formed but wrong: a date outside the year, a Tết span without Tết, a duplicate.
    #[error("{}: {message}", location(path, *line, *column, Some(key)))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        message: String,
    },
    #[error("announcements for {year} given twice")]
    DuplicateYear { year: i32 },
    #[error("calendar rules: {0}")]
    Rules(String),
}

pub(in crate::policy) fn location(
    path: &Path,
    line: Option<usize>,
    column: Option<usize>,
    key: Option<&str>,
) -> String {
    let mut s = path.display().to_string();
    if let Some(line) = line {
        s.push_str(&format!(":{line}"));
        if let Some(column) = column {
            s.push_str(&format!(":{column}"));
        }
    }
    if let Some(key) = key {
        s.push_str(&format!(" (key `{key}`)"));
    }
    s
}
