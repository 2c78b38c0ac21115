//! Envelope and header addresses: splitting, domain matching, and the checks that keep
//! congvan from being an open relay (`%` hacks, bang paths, source routes, quoted local parts).

/// The domain of `local@domain`, lower-cased; None for the null address or no `@`.
pub fn domain_of(addr: &str) -> Option<String> {
    let (_, d) = addr.rsplit_once('@')?;
    if d.is_empty() {
        return None;
    }
    Some(d.trim_end_matches('.').to_ascii_lowercase())
}

/// `suffix` matches the domain itself and every subdomain: `gov.vn` matches `gov.vn`
/// and `hanoi.gov.vn`, not `notgov.vn`.
pub fn domain_matches_suffix(domain: &str, suffix: &str) -> bool {
    let d = domain.trim_end_matches('.').to_ascii_lowercase();
    let s = suffix
        .trim_start_matches('.')
        .trim_end_matches('.')
        .to_ascii_lowercase();
    if s.is_empty() {
        return false;
    }
    d == s || d.ends_with(&format!(".{s}"))
}

/// Why a forward-path may not be relayed, when it may not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathRefusal {
    SourceRoute,
    PercentHack,
    BangPath,
    QuotedLocalPart,
}

impl PathRefusal {
    pub fn describe(&self) -> &'static str {
        match self {
            PathRefusal::SourceRoute => "source routes are not accepted",
            PathRefusal::PercentHack => "'%' relaying is not accepted",
            PathRefusal::BangPath => "'!' (UUCP) paths are not accepted",
            PathRefusal::QuotedLocalPart => "quoted local parts are not accepted",
        }
    }
}

/// Checks the raw text of a `RCPT TO:<...>` path before any parser normalises it away.
pub fn check_forward_path(raw_path: &str) -> Result<(), PathRefusal> {
    let p = raw_path.trim();
    let p = p.strip_prefix('<').unwrap_or(p);
    if p.starts_with('@') {
        return Err(PathRefusal::SourceRoute);
    }
    let addr = p.split('>').next().unwrap_or(p);
    if addr.contains('"') {
        return Err(PathRefusal::QuotedLocalPart);
    }
    let local = addr.rsplit_once('@').map(|(l, _)| l).unwrap_or(addr);
    if local.contains('%') {
        return Err(PathRefusal::PercentHack);
    }
    if local.contains('!') {
        return Err(PathRefusal::BangPath);
    }
    Ok(())
}

/// Extracts the text between `<` and `>` of a MAIL/RCPT line, as sent.
pub fn raw_path_of(line: &str) -> Option<&str> {
    let start = line.find('<')?;
    let end = line[start..].find('>')? + start;
    Some(&line[start + 1..end])
}

/// Whether an account's allow-list (`a@d` exact, `@d` whole domain) covers `addr`.
pub fn allowed_by(list: &[String], addr: &str) -> bool {
    let addr_l = addr.to_ascii_lowercase();
    let dom = domain_of(&addr_l);
    list.iter().any(|entry| {
        let e = entry.trim().to_ascii_lowercase();
        match e.strip_prefix('@') {
            Some(d) => dom.as_deref() == Some(d),
            None => e == addr_l,
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suffix_matching() {
        assert!(domain_matches_suffix("gov.vn", "gov.vn"));
        assert!(domain_matches_suffix("Hanoi.GOV.vn", "gov.vn"));
        assert!(!domain_matches_suffix("notgov.vn", "gov.vn"));
        assert!(!domain_matches_suffix("gov.vn.evil.com", "gov.vn"));
    }

    #[test]
    fn relay_tricks_refused() {
        assert_eq!(
            check_forward_path("<@a.gov.vn:x@evil.com>"),
            Err(PathRefusal::SourceRoute)
        );
        assert_eq!(
            check_forward_path("<x%evil.com@dev.gov.vn>"),
            Err(PathRefusal::PercentHack)
        );
        assert_eq!(
            check_forward_path("<evil.com!x@dev.gov.vn>"),
            Err(PathRefusal::BangPath)
        );
        assert_eq!(
            check_forward_path("<\"x@evil.com\"@dev.gov.vn>"),
            Err(PathRefusal::QuotedLocalPart)
        );
        assert_eq!(check_forward_path("<vanthu@dev.gov.vn>"), Ok(()));
    }

    #[test]
    fn allow_lists() {
        let l = vec!["vanthu@dev.gov.vn".to_string(), "@so.gov.vn".to_string()];
        assert!(allowed_by(&l, "VanThu@dev.gov.vn"));
        assert!(allowed_by(&l, "any@so.gov.vn"));
        assert!(!allowed_by(&l, "other@dev.gov.vn"));
        assert!(!allowed_by(&l, "x@sub.so.gov.vn"));
    }
}
