//! Policy files: the schema of a profile, loading and checking a policy directory, and the
//! [`Policy`] the daemon holds (and swaps on SIGHUP).
//!
//! A policy directory (`policy_dir`, shipped as `policies/`) holds:
//! * `active.toml`: one setting, `profile = "NAME"`, the profile in force;
//! * `NAME.toml`: one file per profile (`default.toml`, `nd30-2020.toml`, …); every key is
//!   optional and defaults to the district rule (the shipped `default.toml`);
//! * the authorised-signers list a profile's `[pdf] authorised_signers` names (e.g.
//!   `signers.toml`): not a profile;
//! * `calendar/YYYY.toml`: the announced working-day changes per year (see
//!   [`super::calendar`]), shared by every profile.
//!
//! Every file is checked, not only the active profile, so that switching profiles cannot
//! reveal a broken file later. Errors name the file, line, column and key.

use std::path::{Path, PathBuf};
use std::sync::{Arc, PoisonError, RwLock};

use super::calendar::{self, CalendarError, WorkingCalendar};
use super::DomainRules;

mod classification;
mod directory;
mod dispatch;
mod error;
mod incoming;
mod pdf;
mod profile;
mod secrecy;
#[cfg(test)]
mod tests;

pub use classification::{
    ClassificationRules, FieldName, HeaderNames, SecrecyName, SourceKind, SubjectTags, UrgencyName,
};
pub use directory::{check, load, parse_profile, Checked};
pub use dispatch::{DeadlineRule, DispatchRule, DispatchRules, LateAction};
pub use error::{PolicyError, PolicyErrors};
pub use incoming::{IncomingAction, IncomingRules};
pub use pdf::{AuthorisedSigners, PdfRules};
pub(in crate::policy) use profile::valid_domain;
pub use profile::{Escalation, NumberRules, Profile};
pub use secrecy::{ReplyText, SecrecyAction, SecrecyRule, SecrecyRules};

/// The file that selects the profile in force.
pub const ACTIVE_FILE: &str = "active.toml";
/// The per-year calendar files, under the policy directory.
pub const CALENDAR_DIR: &str = "calendar";

// ---------------------------------------------------------------------------------------------
// The policy in force
// ---------------------------------------------------------------------------------------------

/// A loaded, checked profile with its working-day calendar: what the daemon enforces.
#[derive(Debug)]
pub struct Policy {
    /// The profile's name (its file stem), e.g. `default`.
    pub profile: String,
    pub path: PathBuf,
    pub rules: Profile,
    pub calendar: WorkingCalendar,
    /// The list `[pdf] authorised_signers` names, when it names one.
    pub signers: Option<AuthorisedSigners>,
}

impl Policy {
    /// A policy from rules already in memory (tests, `policy explain` on a scratch profile).
    pub fn from_profile(
        name: &str,
        rules: Profile,
        years: impl IntoIterator<Item = calendar::YearOverrides>,
    ) -> Result<Policy, CalendarError> {
        let calendar = WorkingCalendar::new(rules.calendar.clone(), years)?;
        Ok(Policy {
            profile: name.to_string(),
            path: PathBuf::from(format!("{name}.toml")),
            rules,
            calendar,
            signers: None,
        })
    }

    /// The allowed sender and recipient domains.
    pub fn domains(&self) -> &DomainRules {
        &self.rules.domains
    }
}

/// The policy the daemon holds: read by every session, replaced as a whole on reload.
#[derive(Debug)]
pub struct SharedPolicy {
    dir: PathBuf,
    current: RwLock<Arc<Policy>>,
}

impl SharedPolicy {
    /// Loads and checks `dir`; the daemon refuses to start when this fails.
    pub fn load(dir: &Path) -> Result<SharedPolicy, PolicyErrors> {
        Ok(SharedPolicy::new(dir, load(dir)?))
    }

    pub fn new(dir: &Path, policy: Policy) -> SharedPolicy {
        SharedPolicy {
            dir: dir.to_path_buf(),
            current: RwLock::new(Arc::new(policy)),
        }
    }

    /// The policy in force now. A session takes it once per decision, so a reload never
    /// changes the rules halfway through a message.
    pub fn get(&self) -> Arc<Policy> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Reads the directory again; on any error the policy in force stays.
    pub fn reload(&self) -> Result<Arc<Policy>, PolicyErrors> {
        let fresh = Arc::new(load(&self.dir)?);
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = fresh.clone();
        Ok(fresh)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }
}
