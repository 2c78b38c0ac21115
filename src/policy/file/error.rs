//! Why a policy directory cannot be used, each error naming the file, line, column and key.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::policy::calendar::{self, CalendarError};

/// Why a policy directory cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    #[error("cannot read policy directory {}: {source}", path.display())]
    ReadDir {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot read policy file {}: {source}", path.display())]
    ReadFile {
        path: PathBuf,
        source: std::io::Error,
    },
    /// Not TOML, or not the profile format (unknown key, wrong type, bad value).
    #[error("{}: {message}", calendar::location(path, *line, *column, key.as_deref()))]
    Parse {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: Option<String>,
        message: String,
    },
    /// Well-formed but unusable (e.g. `active.toml` names a profile that does not exist).
    #[error("{}: {message}", calendar::location(path, *line, *column, Some(key)))]
    Invalid {
        path: PathBuf,
        line: Option<usize>,
        column: Option<usize>,
        key: String,
        message: String,
    },
    #[error("{}: missing; it names the profile in force, e.g. profile = \"default\" (copy the shipped policies/ directory)", path.display())]
    NoActive { path: PathBuf },
    #[error("{}: a profile file name is lower-case letters, digits, `-` and `.` (e.g. nd30-2020.toml)", path.display())]
    ProfileName { path: PathBuf },
    #[error(transparent)]
    Calendar(#[from] CalendarError),
}

/// Every error found in a policy directory, one per line when shown.
#[derive(Debug)]
pub struct PolicyErrors(pub Vec<PolicyError>);

impl fmt::Display for PolicyErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                f.write_str("\n")?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

impl std::error::Error for PolicyErrors {}

impl From<PolicyError> for PolicyErrors {
    fn from(e: PolicyError) -> Self {
        PolicyErrors(vec![e])
    }
}

pub(super) fn parse_error(path: &Path, text: &str, e: &toml::de::Error) -> PolicyError {
    let span = e.span();
    let (line, column) = span
        .as_ref()
        .map(|s| calendar::line_column(text, s.start))
        .unzip();
    PolicyError::Parse {
        path: path.to_path_buf(),
        line,
        column,
        key: span.and_then(|s| calendar::key_at(text, s.start)),
        message: e.message().trim().to_string(),
    }
}
