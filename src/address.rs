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

/// Checks a `MAIL FROM` address before it is used: no source route (`raw_path` is the text
/// between `<` and `>` as sent, before a parser dropped the route) and no `%` or `!` in the
/// local part, on every listener.
pub fn check_reverse_path(raw_path: Option<&str>, address: &str) -> Result<(), PathRefusal> {
    if raw_path.is_some_and(|p| p.trim_start().starts_with('@')) {
        return Err(PathRefusal::SourceRoute);
    }
    let local = address.rsplit_once('@').map(|(l, _)| l).unwrap_or(address);
    if local.contains('%') {
        return Err(PathRefusal::PercentHack);
    }
    if local.contains('!') {
        return Err(PathRefusal::BangPath);
    }
    Ok(())
}

/// Why an envelope domain is refused at the command.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum DomainProblem {
    Empty,
    /// `user@domain.`: a root label is not part of RFC 5321's `Domain`.
    TrailingDot,
    /// `a..b` or `.a`.
    EmptyLabel,
    /// Over 63 bytes in a label or 255 in the domain.
    TooLong,
    /// A character outside letters, digits and inner hyphens.
    BadCharacter,
    /// `[...]` that is not an IPv4 or `IPv6:` address.
    BadLiteral,
}

impl DomainProblem {
    pub fn describe(&self) -> &'static str {
        match self {
            DomainProblem::Empty => "the domain is empty",
            DomainProblem::TrailingDot => "the domain ends with a dot",
            DomainProblem::EmptyLabel => "the domain has an empty label",
            DomainProblem::TooLong => "the domain or one of its labels is too long",
            DomainProblem::BadCharacter => "the domain has a character not allowed in a domain",
            DomainProblem::BadLiteral => "the address literal is not an IP address",
        }
    }
}

/// The domain of an envelope address, checked against RFC 5321 4.1.2: dot-separated labels
/// of letters, digits and inner hyphens (non-ASCII letters for SMTPUTF8 U-labels), or an
/// address literal. Nothing is trimmed: `user@domain.` is refused, not read as `domain`.
pub fn check_domain(domain: &str) -> Result<(), DomainProblem> {
    if domain.is_empty() {
        return Err(DomainProblem::Empty);
    }
    if domain.ends_with('.') {
        return Err(DomainProblem::TrailingDot);
    }
    if let Some(inner) = domain.strip_prefix('[') {
        let inner = inner.strip_suffix(']').ok_or(DomainProblem::BadLiteral)?;
        let ok = match inner.get(..5) {
            Some(tag) if tag.eq_ignore_ascii_case("IPv6:") => {
                inner[5..].parse::<std::net::Ipv6Addr>().is_ok()
            }
            _ => inner.parse::<std::net::Ipv4Addr>().is_ok(),
        };
        return if ok {
            Ok(())
        } else {
            Err(DomainProblem::BadLiteral)
        };
    }
    if domain.len() > 255 {
        return Err(DomainProblem::TooLong);
    }
    for label in domain.split('.') {
        if label.is_empty() {
            return Err(DomainProblem::EmptyLabel);
        }
        if label.len() > 63 {
            return Err(DomainProblem::TooLong);
        }
        let allowed = |c: char| {
            c.is_ascii_alphanumeric() || c == '-' || (!c.is_ascii() && c.is_alphanumeric())
        };
        if !label.chars().all(allowed) || label.starts_with('-') || label.ends_with('-') {
            return Err(DomainProblem::BadCharacter);
        }
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
    fn reverse_path_tricks_refused() {
        assert_eq!(
            check_reverse_path(Some("@a.gov.vn,@b.gov.vn:x@dev.gov.vn"), "x@dev.gov.vn"),
            Err(PathRefusal::SourceRoute)
        );
        assert_eq!(
            check_reverse_path(Some(" @a:x@dev.gov.vn"), "x@dev.gov.vn"),
            Err(PathRefusal::SourceRoute)
        );
        assert_eq!(
            check_reverse_path(Some("x%evil.com@dev.gov.vn"), "x%evil.com@dev.gov.vn"),
            Err(PathRefusal::PercentHack)
        );
        assert_eq!(
            check_reverse_path(Some("\"x%y\"@dev.gov.vn"), "x%y@dev.gov.vn"),
            Err(PathRefusal::PercentHack)
        );
        assert_eq!(
            check_reverse_path(Some("evil!x@dev.gov.vn"), "evil!x@dev.gov.vn"),
            Err(PathRefusal::BangPath)
        );
        assert_eq!(check_reverse_path(Some(""), ""), Ok(()));
        assert_eq!(
            check_reverse_path(Some("vanthu@dev.gov.vn"), "vanthu@dev.gov.vn"),
            Ok(())
        );
    }

    #[test]
    fn envelope_domains() {
        for ok in [
            "dev.gov.vn",
            "a",
            "xn--b-x1a.vn",
            "hà-nội.gov.vn",
            "[192.0.2.1]",
            "[IPv6:2001:db8::1]",
            "9.example",
        ] {
            assert_eq!(check_domain(ok), Ok(()), "{ok}");
        }
        for (bad, why) in [
            ("dev.gov.vn.", DomainProblem::TrailingDot),
            ("dev.gov.vn..", DomainProblem::TrailingDot),
            (".", DomainProblem::TrailingDot),
            ("[192.0.2.1].", DomainProblem::TrailingDot),
            ("", DomainProblem::Empty),
            (".dev.gov.vn", DomainProblem::EmptyLabel),
            ("dev..gov.vn", DomainProblem::EmptyLabel),
            ("dev_x.gov.vn", DomainProblem::BadCharacter),
            ("-dev.gov.vn", DomainProblem::BadCharacter),
            ("dev-.gov.vn", DomainProblem::BadCharacter),
            ("dev gov", DomainProblem::BadCharacter),
            ("dev\0.vn", DomainProblem::BadCharacter),
            ("[192.0.2.300]", DomainProblem::BadLiteral),
            ("[IPv6:192.0.2.1]", DomainProblem::BadLiteral),
            ("[192.0.2.1", DomainProblem::BadLiteral),
        ] {
            assert_eq!(check_domain(bad), Err(why), "{bad:?}");
        }
        assert_eq!(
            check_domain(&format!("{}.vn", "a".repeat(64))),
            Err(DomainProblem::TooLong)
        );
        assert_eq!(
            check_domain(&vec!["abc"; 70].join(".")),
            Err(DomainProblem::TooLong)
        );
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
