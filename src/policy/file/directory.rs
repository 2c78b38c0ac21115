//! Loading and checking a policy directory as a whole: `active.toml`, every profile, and the
//! calendar year files.

use std::path::{Path, PathBuf};

use serde::Deserialize;
use toml::Spanned;

use super::error::parse_error;
use super::{
    AuthorisedSigners, Policy, PolicyError, PolicyErrors, Profile, ACTIVE_FILE, CALENDAR_DIR,
};
use crate::policy::calendar::{self, CalendarRules, WorkingCalendar};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ActiveFile {
    profile: Spanned<String>,
}

/// What `policy check` reports about a good directory.
#[derive(Debug)]
pub struct Checked {
    pub policy: Policy,
    /// Every profile in the directory, by name.
    pub profiles: Vec<String>,
    /// Years with an announcement file.
    pub years: Vec<i32>,
}

/// Loads the profile in force from `dir`, after checking every file there.
pub fn load(dir: &Path) -> Result<Policy, PolicyErrors> {
    check(dir).map(|c| c.policy)
}

/// Parses one profile file's text (`path` names it in errors).
pub fn parse_profile(path: &Path, text: &str) -> Result<Profile, PolicyError> {
    toml::from_str::<Profile>(text).map_err(|e| parse_error(path, text, &e))
}

/// Checks every file of a policy directory and loads the profile in force.
pub fn check(dir: &Path) -> Result<Checked, PolicyErrors> {
    let read_dir = |source| PolicyError::ReadDir {
        path: dir.to_path_buf(),
        source,
    };
    let paths = crate::util::toml_files(dir).map_err(read_dir)?;

    let mut errors = Vec::new();
    let mut profiles: Vec<(String, PathBuf, Profile)> = Vec::new();
    // Files that are not profiles, with the error they give as one.
    let mut not_profiles: Vec<(PathBuf, String, PolicyError)> = Vec::new();
    let mut names = Vec::new();
    let mut active_path = None;
    for path in paths {
        if path.file_name().and_then(|n| n.to_str()) == Some(ACTIVE_FILE) {
            active_path = Some(path);
            continue;
        }
        let Some(name) = path
            .file_stem()
            .and_then(|s| s.to_str())
            .filter(|s| valid_profile_name(s))
            .map(str::to_string)
        else {
            errors.push(PolicyError::ProfileName { path });
            continue;
        };
        names.push(name.clone());
        let text = match std::fs::read_to_string(&path) {
            Ok(t) => t,
            Err(source) => {
                errors.push(PolicyError::ReadFile { path, source });
                continue;
            }
        };
        match parse_profile(&path, &text) {
            Ok(p) => profiles.push((name, path, p)),
            Err(e) => not_profiles.push((path, name, e)),
        }
    }

    // The authorised-signers lists the profiles name are not profiles themselves.
    let signer_lists = signer_lists(dir, &profiles, &mut errors);
    let is_list = |p: &PathBuf| signer_lists.iter().any(|(l, _)| l == p);
    for (path, name, e) in not_profiles {
        if !is_list(&path) {
            errors.push(e);
        } else {
            names.retain(|n| *n != name);
        }
    }
    profiles.retain(|(name, path, _)| {
        let list = is_list(path);
        if list {
            names.retain(|n| n != name);
        }
        !list
    });

    // The calendar files: checked once, then built with each profile's rules.
    let calendar_dir = dir.join(CALENDAR_DIR);
    let has_calendar_dir = calendar_dir.is_dir();
    let mut years = Vec::new();
    if has_calendar_dir {
        match WorkingCalendar::load(CalendarRules::default(), &calendar_dir) {
            Ok(_) => years = calendar_years(&calendar_dir),
            Err(e) => errors.push(e.into()),
        }
    }
    let calendar_ok = errors
        .iter()
        .all(|e| !matches!(e, PolicyError::Calendar(_)));

    let active = match &active_path {
        None => {
            errors.push(PolicyError::NoActive {
                path: dir.join(ACTIVE_FILE),
            });
            None
        }
        Some(path) => match read_active(path) {
            Ok((name, span, text)) => {
                if names.contains(&name) {
                    Some(name)
                } else {
                    let (line, column) = calendar::line_column(&text, span.start);
                    errors.push(PolicyError::Invalid {
                        path: path.clone(),
                        line: Some(line),
                        column: Some(column),
                        key: "profile".into(),
                        message: format!(
                            "there is no profile {name:?} in {} (profiles: {})",
                            dir.display(),
                            if names.is_empty() {
                                "none".to_string()
                            } else {
                                names.join(", ")
                            }
                        ),
                    });
                    None
                }
            }
            Err(e) => {
                errors.push(e);
                None
            }
        },
    };

    let mut chosen = None;
    if calendar_ok {
        for (name, path, profile) in profiles {
            let calendar = if has_calendar_dir {
                WorkingCalendar::load(profile.calendar.clone(), &calendar_dir)
            } else {
                WorkingCalendar::new(profile.calendar.clone(), [])
            };
            match calendar {
                Ok(calendar) => {
                    if active.as_deref() == Some(name.as_str()) {
                        let signers = profile.pdf.authorised_signers.as_ref().and_then(|f| {
                            let p = dir.join(f);
                            signer_lists
                                .iter()
                                .find(|(l, _)| *l == p)
                                .map(|(_, s)| s.clone())
                        });
                        chosen = Some(Policy {
                            profile: name,
                            path,
                            rules: profile,
                            calendar,
                            signers,
                        });
                    }
                }
                Err(e) => errors.push(e.into()),
            }
        }
    }
    match chosen {
        Some(policy) if errors.is_empty() => Ok(Checked {
            policy,
            profiles: names,
            years,
        }),
        _ => {
            if errors.is_empty() {
                // Unreachable in practice: no active profile always leaves an error.
                errors.push(PolicyError::NoActive {
                    path: dir.join(ACTIVE_FILE),
                });
            }
            Err(PolicyErrors(errors))
        }
    }
}

/// Reads the authorised-signers lists the profiles name (`[pdf] authorised_signers`), each
/// once; a list that cannot be read or parsed leaves its error and an empty list.
fn signer_lists(
    dir: &Path,
    profiles: &[(String, PathBuf, Profile)],
    errors: &mut Vec<PolicyError>,
) -> Vec<(PathBuf, AuthorisedSigners)> {
    let mut signer_lists: Vec<(PathBuf, AuthorisedSigners)> = Vec::new();
    for (_, path, profile) in profiles {
        let Some(file) = &profile.pdf.authorised_signers else {
            continue;
        };
        if file.is_empty() || file.contains(['/', '\\']) || !file.ends_with(".toml") {
            errors.push(PolicyError::Invalid {
                path: path.clone(),
                line: None,
                column: None,
                key: "pdf.authorised_signers".into(),
                message: format!(
                    "{file:?} must be the name of a .toml file in the policy directory"
                ),
            });
            continue;
        }
        let list_path = dir.join(file);
        if signer_lists.iter().any(|(p, _)| *p == list_path) {
            continue;
        }
        match std::fs::read_to_string(&list_path) {
            Ok(text) => match AuthorisedSigners::parse(&list_path, &text) {
                Ok(list) => signer_lists.push((list_path, list)),
                Err(e) => {
                    errors.push(e);
                    signer_lists.push((list_path, AuthorisedSigners::default()));
                }
            },
            Err(source) => errors.push(PolicyError::ReadFile {
                path: list_path,
                source,
            }),
        }
    }
    signer_lists
}

fn valid_profile_name(s: &str) -> bool {
    s.bytes()
        .next()
        .is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && s.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'.')
}

fn read_active(path: &Path) -> Result<(String, std::ops::Range<usize>, String), PolicyError> {
    let text = std::fs::read_to_string(path).map_err(|source| PolicyError::ReadFile {
        path: path.to_path_buf(),
        source,
    })?;
    let active: ActiveFile = toml::from_str(&text).map_err(|e| parse_error(path, &text, &e))?;
    let span = active.profile.span();
    Ok((active.profile.into_inner().trim().to_string(), span, text))
}

fn calendar_years(dir: &Path) -> Vec<i32> {
    let mut years: Vec<i32> = std::fs::read_dir(dir)
        .map(|r| {
            r.flatten()
                .filter_map(|e| {
                    let p = e.path();
                    (p.extension().and_then(|x| x.to_str()) == Some("toml"))
                        .then(|| p.file_stem()?.to_str()?.parse().ok())
                        .flatten()
                })
                .collect()
        })
        .unwrap_or_default();
    years.sort();
    years
}
