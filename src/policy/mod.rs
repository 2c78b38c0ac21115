//! Dispatch policy: the document levels (urgency, secrecy), classification of a message from
//! its headers, and the domain rules. The calendar and the full policy files build on these.

pub mod calendar;
pub mod levels;
pub mod lunar;

pub use levels::{Secrecy, Urgency};

/// What classification found in a message's headers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Classification {
    pub urgency: Urgency,
    pub secrecy: Secrecy,
}

/// Domain rules: which sender and recipient domains may use the gateway (suffixes).
#[derive(Debug, Clone)]
pub struct DomainRules {
    pub allowed_sender_domains: Vec<String>,
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

/// Classifies from the `X-Congvan-Urgency` / `X-Congvan-Secrecy` headers (values already
/// RFC 2047-decoded). The stricter level wins when a header repeats.
pub fn classify_headers<'a>(headers: impl Iterator<Item = (&'a str, &'a str)>) -> Classification {
    let mut c = Classification::default();
    for (name, value) in headers {
        if name.eq_ignore_ascii_case("X-Congvan-Urgency") {
            if let Some(u) = Urgency::parse(value) {
                c.urgency = c.urgency.max(u);
            }
        } else if name.eq_ignore_ascii_case("X-Congvan-Secrecy") {
            if let Some(s) = Secrecy::parse(value) {
                c.secrecy = c.secrecy.max(s);
            }
        }
    }
    c
}
