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
    /// An RFC 3161 time-stamping service for the organisation's signature (PAdES B-T): an
    /// `http://` or `https://` URL with a host.
    #[serde(deserialize_with = "deserialize_tsa_url")]
    pub tsa_url: Option<String>,
}

/// `tsa_url`: refused at load time rather than at the first delivery, which would defer
/// every document on a typo.
fn deserialize_tsa_url<'de, D: serde::Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    let url = String::deserialize(d)?;
    check_tsa_url(&url).map_err(serde::de::Error::custom)?;
    Ok(Some(url))
}

/// An `http://` or `https://` URL with a host (a name, an IPv4 address or a bracketed IPv6
/// address, an optional port), no spaces or control characters.
fn check_tsa_url(url: &str) -> Result<(), String> {
    let bad = |why: &str| Err(format!("{url:?} is not a time-stamping service URL: {why}"));
    let lower = url.to_ascii_lowercase();
    let Some(rest) = lower
        .strip_prefix("https://")
        .or_else(|| lower.strip_prefix("http://"))
    else {
        return bad("it must begin with http:// or https://");
    };
    if url.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return bad("it contains spaces or control characters");
    }
    let authority = rest.split(['/', '?', '#']).next().unwrap_or_default();
    if authority.contains('@') {
        return bad("user names and passwords do not belong in it");
    }
    let (host, port) = if let Some(v6) = authority.strip_prefix('[') {
        match v6.split_once(']') {
            Some((h, p)) if h.parse::<std::net::Ipv6Addr>().is_ok() => (h, p.strip_prefix(':')),
            _ => return bad("the IPv6 address is malformed"),
        }
    } else {
        match authority.rsplit_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (authority, None),
        }
    };
    if host.is_empty() {
        return bad("it has no host");
    }
    if !authority.starts_with('[') && !valid_domain(host) {
        return bad("the host is not a domain name or address");
    }
    if let Some(p) = port {
        if p.parse::<u16>().map_or(true, |p| p == 0) {
            return bad("the port is not a number from 1 to 65535");
        }
    }
    Ok(())
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
    fn tsa_urls() {
        for good in [
            "http://tsa.example.vn",
            "https://tsa.ca.gov.vn:8443/tsa?x=1",
            "http://127.0.0.1:8080/",
            "http://[::1]:318/tsa",
        ] {
            assert_eq!(check_tsa_url(good), Ok(()), "{good}");
        }
        for bad in [
            "tsa.example.vn",
            "ftp://tsa.example.vn",
            "http://",
            "http:///tsa",
            "https://user:pw@tsa.example.vn/",
            "http://tsa.example.vn:0/",
            "http://tsa.example.vn:99999/",
            "http://tsa example.vn/",
            "http://[::1/",
        ] {
            assert!(check_tsa_url(bad).is_err(), "{bad}");
        }
        let text = "[pdf]\nseal_pdf = true\ntsa_url = \"tsa.example.vn\"\n";
        let e = crate::policy::file::parse_profile(Path::new("default.toml"), text)
            .unwrap_err()
            .to_string();
        assert!(e.starts_with("default.toml:3:"), "{e}");
        assert!(
            e.contains("pdf.tsa_url") && e.contains("http:// or https://"),
            "{e}"
        );
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
