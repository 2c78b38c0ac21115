//! Dispatch policy: the document levels (urgency, secrecy), the policy files and their
//! profiles, classification of a message (headers, subject tags, edXML), the decision at end
//! of DATA (refusals, lane, deadline), the working-day calendar, and the records the policy
//! keeps in the database (refusals, issued document numbers).
//!
//! ```text
//! policy_dir/*.toml ──load──> Policy ──┐
//! message bytes ──classify──> Classification ──decide──> Decision { lane, deadline, action }
//! ```

pub mod calendar;
pub mod classify;
pub mod deadline;
pub mod edxml;
pub mod file;
pub mod levels;
pub mod lunar;
pub mod number;
pub mod rule_text;
pub mod subject_number;

use serde::de::{self, Deserializer};
use serde::Deserialize;

pub use classify::{classify_message, classify_read_message, Classification};
pub use deadline::{deadline_for, decide, Action, Decision, Flow, Refusal};
pub use file::{Policy, PolicyError, PolicyErrors, SharedPolicy};
pub use levels::{Secrecy, Urgency};

/// Domain rules: which sender and recipient domains may use the gateway (suffixes). The
/// `[domains]` table of a profile.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct DomainRules {
    #[serde(deserialize_with = "deserialize_suffixes")]
    pub allowed_sender_domains: Vec<String>,
    #[serde(deserialize_with = "deserialize_suffixes")]
    pub allowed_recipient_domains: Vec<String>,
}

impl Default for DomainRules {
    fn default() -> Self {
        DomainRules {
            allowed_sender_domains: vec!["gov.vn".into()],
            allowed_recipient_domains: vec!["gov.vn".into()],
        }
    }
}

impl DomainRules {
    pub fn sender_allowed(&self, domain: &str) -> bool {
        self.allowed_sender_domains
            .iter()
            .any(|s| crate::address::domain_matches_suffix(domain, s))
    }
    pub fn recipient_allowed(&self, domain: &str) -> bool {
        self.allowed_recipient_domains
            .iter()
            .any(|s| crate::address::domain_matches_suffix(domain, s))
    }
}

/// Domain suffixes, lower-cased; an empty list would refuse every message and is an error.
fn deserialize_suffixes<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    let list = Vec::<String>::deserialize(d)?;
    if list.is_empty() {
        return Err(de::Error::custom(
            "an empty list would refuse every message; list at least one domain suffix",
        ));
    }
    list.into_iter()
        .map(|s| {
            let s = s.trim().trim_start_matches('.').to_ascii_lowercase();
            if file::valid_domain(&s) {
                Ok(s)
            } else {
                Err(de::Error::custom(format!("{s:?} is not a domain suffix")))
            }
        })
        .collect()
}
