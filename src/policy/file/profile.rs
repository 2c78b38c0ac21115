//! One profile file: its sections, and the small ones kept here (`[number]`, `[escalation]`)
//! with the domain syntax its lists use.

use serde::de::{self, Deserializer};
use serde::Deserialize;

use super::{ClassificationRules, DispatchRules, IncomingRules, SecrecyRules};
use crate::policy::calendar::CalendarRules;
use crate::policy::DomainRules;

/// One profile file. Every key is optional; the defaults are the district rule (3 working
/// days), which the shipped `default.toml` spells out with comments.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Profile {
    /// Shown by `policy check` and `policy explain`.
    pub description: String,
    /// A numbered document must carry at least one attachment (the signed PDF).
    pub require_attachment: bool,
    pub classification: ClassificationRules,
    pub dispatch: DispatchRules,
    pub secrecy: SecrecyRules,
    pub domains: DomainRules,
    pub number: NumberRules,
    pub escalation: Escalation,
    pub calendar: CalendarRules,
    pub incoming: IncomingRules,
    pub pdf: super::PdfRules,
}

/// `[number]`: the document number's form and uniqueness.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct NumberRules {
    /// Refuse numbers not of the form `05/QĐ-UBND`.
    pub check_form: bool,
    /// Accept a year segment, as in `30/2020/NĐ-CP` (normative documents).
    pub allow_year: bool,
    /// Refuse a number already issued by the same office in the same year, unless the
    /// message says it is a resend (`X-Congvan-Resend: yes`).
    pub unique_per_year: bool,
}

impl Default for NumberRules {
    fn default() -> Self {
        NumberRules {
            check_form: true,
            allow_year: true,
            unique_per_year: true,
        }
    }
}

/// `[escalation]`: whom to tell, how long before a deadline, when a document has not left.
/// Checked here; acted on by the queue's deadline monitor.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Escalation {
    #[serde(deserialize_with = "deserialize_addresses")]
    pub notify: Vec<String>,
    pub before_hours: u32,
}

impl Default for Escalation {
    fn default() -> Self {
        Escalation {
            notify: Vec::new(),
            before_hours: 2,
        }
    }
}

fn deserialize_addresses<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    for a in &list {
        let ok = a
            .rsplit_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && valid_domain(d));
        if !ok {
            return Err(de::Error::custom(format!("{a:?} is not an e-mail address")));
        }
    }
    Ok(list)
}

/// A domain or domain suffix: dot-separated labels of letters, digits and `-`.
/// The value for `domain` in a map keyed by domain suffix (lower case, no trailing dot): the
/// longest key that is the domain itself or a parent of it.
pub(in crate::policy) fn by_longest_suffix<'a, V>(
    map: &'a std::collections::BTreeMap<String, V>,
    domain: &str,
) -> Option<&'a V> {
    let domain = domain.trim_end_matches('.').to_ascii_lowercase();
    map.iter()
        .filter(|(suffix, _)| {
            domain == **suffix
                || domain
                    .strip_suffix(suffix.as_str())
                    .is_some_and(|p| p.ends_with('.'))
        })
        .max_by_key(|(suffix, _)| suffix.len())
        .map(|(_, v)| v)
}

pub(in crate::policy) fn valid_domain(d: &str) -> bool {
    let d = d.trim_end_matches('.');
    !d.is_empty()
        && d.len() <= 253
        && d.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}
