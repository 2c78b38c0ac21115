//! `[pdf]`: the competent signer's signature that an outgoing document's PDF parts must
//! carry, the organisation's signature the gateway adds, and the authorised-signers list
//! (`signers.toml`, a file of its own beside the profiles).

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::error::parse_error;
use super::{calendar, valid_domain, IncomingAction, PolicyError};
use crate::pdf::Authorised;

/// `[pdf]` of a profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PdfRules {
    /// Every PDF part of an outgoing document must carry a valid signature of a competent
    /// signer, over the file as received (rule `pdf.signer`).
    pub require_signer_signature: bool,
    /// Add the organisation's signature to each PDF part at delivery.
    pub seal_pdf: bool,
    /// A file in the policy directory listing, per From domain suffix, whose signature counts
    /// as the competent signer's. Without it, any valid signature with a path to a trust
    /// anchor does.
    pub authorised_signers: Option<String>,
    /// What happens to an incoming document with a PDF part that carries no valid signature
    /// (`deliver`, the default, or `quarantine`).
    pub incoming_action: IncomingAction,
    /// An RFC 3161 time-stamping service for the organisation's signature (PAdES B-T).
    pub tsa_url: Option<String>,
}

/// The authorised-signers list: per From domain suffix, certificate fingerprints and e-mail
/// addresses.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuthorisedSigners {
    by_suffix: BTreeMap<String, Authorised>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    #[serde(default)]
    fingerprints: Vec<String>,
    #[serde(default)]
    emails: Vec<String>,
}

impl AuthorisedSigners {
    /// The signers for mail from `domain`: the longest matching suffix's entry; an empty
    /// list (nobody) when no entry matches, since an office with a list names its signers.
    pub fn for_domain(&self, domain: &str) -> Authorised {
        super::profile::by_longest_suffix(&self.by_suffix, domain)
            .cloned()
            .unwrap_or_default()
    }

    /// Reads and checks a list: domain suffixes as tables, fingerprints of 64 hex digits
    /// (colons allowed), addresses with one `@`.
    pub fn parse(path: &Path, text: &str) -> Result<AuthorisedSigners, PolicyError> {
        let raw: BTreeMap<String, Entry> =
            toml::from_str(text).map_err(|e| parse_error(path, text, &e))?;
        let invalid = |key: String, needle: &str, message: String| {
            let at = text.find(needle).unwrap_or(0);
            let (line, column) = calendar::line_column(text, at);
            PolicyError::Invalid {
                path: path.to_path_buf(),
                line: Some(line),
                column: Some(column),
                key,
                message,
            }
        };
        let mut by_suffix = BTreeMap::new();
        for (suffix, entry) in raw {
            if !valid_domain(&suffix) {
                return Err(invalid(
                    suffix.clone(),
                    &suffix,
                    format!("{suffix:?} is not a domain suffix"),
                ));
            }
            let mut fingerprints = Vec::new();
            for f in &entry.fingerprints {
                let hex: String = f.chars().filter(|c| *c != ':').collect();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(
                        format!("{suffix}.fingerprints"),
                        f,
                        format!("{f:?} is not a SHA-256 fingerprint (64 hex digits)"),
                    ));
                }
                fingerprints.push(hex.to_ascii_lowercase());
            }
            for e in &entry.emails {
                if e.matches('@').count() != 1 || e.starts_with('@') || e.ends_with('@') {
                    return Err(invalid(
                        format!("{suffix}.emails"),
                        e,
                        format!("{e:?} is not an e-mail address"),
                    ));
                }
            }
            by_suffix.insert(
                suffix.trim_end_matches('.').to_ascii_lowercase(),
                Authorised {
                    fingerprints,
                    emails: entry.emails,
                },
            );
        }
        Ok(AuthorisedSigners { by_suffix })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn longest_suffix_wins_and_no_entry_is_nobody() {
        let text = "[\"gov.vn\"]\nemails = [\"a@gov.vn\"]\n[\"hadong.hanoi.gov.vn\"]\nfingerprints = [\"AB:CD:ef0123456789abcdef0123456789abcdef0123456789abcdef0123456789\"]\nemails = [\"chutich@hadong.hanoi.gov.vn\"]\n";
        let s = AuthorisedSigners::parse(Path::new("signers.toml"), text).unwrap();
        let a = s.for_domain("HaDong.Hanoi.gov.vn.");
        assert_eq!(a.emails, ["chutich@hadong.hanoi.gov.vn"]);
        assert_eq!(
            a.fingerprints,
            ["abcdef0123456789abcdef0123456789abcdef0123456789abcdef0123456789"]
        );
        assert_eq!(s.for_domain("hue.gov.vn").emails, ["a@gov.vn"]);
        assert_eq!(s.for_domain("example.com"), Authorised::default());
    }

    #[test]
    fn errors_name_the_line_and_key() {
        let text = "[\"hadong.gov.vn\"]\nfingerprints = [\"12ab\"]\n";
        let e = AuthorisedSigners::parse(Path::new("signers.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("signers.toml:2:"), "{e}");
        assert!(e.contains("hadong.gov.vn.fingerprints"), "{e}");
        let e = AuthorisedSigners::parse(Path::new("s.toml"), "[\"x.vn\"]\nname = 1\n")
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("s.toml:2:"), "{e}");
    }
}
