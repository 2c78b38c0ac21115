//! Envelope and header addresses: splitting, domain matching, the checks that keep
//! congvan from being an open relay (`%` hacks, bang paths, source routes, quoted local parts),
//! and the reading of an address header field (RFC 5322 §3.4) that both the sealing and the
//! verification of a document rely on: which mailboxes a From or Sender field names, and what
//! else it shows a reader (display names, group names, comments, decoded and NFKC-normalised,
//! see [`addresses_shown`]).

use unicode_normalization::UnicodeNormalization;

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

/// Where a text of an address field is shown to a reader.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The phrase before `<addr>` (or a word list that is not an address).
    DisplayName,
    /// The phrase before `:` of group syntax (`Group: a@b;`).
    GroupName,
    /// A comment, `(...)`, anywhere in the field.
    Comment,
}

impl Shown {
    pub fn describe(self) -> &'static str {
        match self {
            Shown::DisplayName => "display name",
            Shown::GroupName => "group name",
            Shown::Comment => "comment",
        }
    }
}

/// One mailbox of an address field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The addr-spec, lower case; a quoted local part that needs no quotes is unquoted.
    pub address: String,
    /// The display name, RFC 2047-decoded.
    pub name: Option<String>,
}

/// An address field as a reader sees it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AddressField {
    /// The mailboxes, in order, group members included.
    pub mailboxes: Vec<Mailbox>,
    /// Every display name, group name and comment, RFC 2047-decoded (also inside quoted
    /// strings, as some clients do), in order.
    pub shown: Vec<(Shown, String)>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Tok {
    /// An atom (any run of characters that are not specials, white space or controls).
    Atom(String),
    /// A quoted string, unescaped.
    Quoted(String),
    /// A domain literal, with its brackets.
    Literal(String),
    Special(char),
}

/// Splits a field value into tokens; comments go to `comments`. `spaced[i]` says whether white
/// space (or a comment) came before token `i`.
fn tokens(value: &str, comments: &mut Vec<String>) -> (Vec<Tok>, Vec<bool>) {
    let mut out = Vec::new();
    let mut spaced = Vec::new();
    let mut space = false;
    let mut chars = value.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            c if c.is_whitespace() || c.is_control() => space = true,
            '(' => {
                // Nested comments, quoted pairs; an unterminated one runs to the end.
                let mut depth = 1u32;
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                text.push(n);
                            }
                        }
                        '(' => {
                            depth += 1;
                            text.push(c);
                        }
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                            text.push(c);
                        }
                        c => text.push(c),
                    }
                }
                comments.push(text);
                space = true;
            }
            '"' => {
                let mut text = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                text.push(n);
                            }
                        }
                        '"' => break,
                        '\r' | '\n' => {}
                        c => text.push(c),
                    }
                }
                out.push(Tok::Quoted(text));
                spaced.push(std::mem::take(&mut space));
            }
            '[' => {
                let mut text = String::from("[");
                for c in chars.by_ref() {
                    text.push(c);
                    if c == ']' {
                        break;
                    }
                }
                out.push(Tok::Literal(text));
                spaced.push(std::mem::take(&mut space));
            }
            '<' | '>' | '@' | ',' | ';' | ':' | '.' | ']' => {
                out.push(Tok::Special(c));
                spaced.push(std::mem::take(&mut space));
            }
            c => {
                let mut text = String::from(c);
                while let Some(&n) = chars.peek() {
                    if n.is_whitespace() || n.is_control() || "()<>@,;:.[]\"".contains(n) {
                        break;
                    }
                    text.push(n);
                    chars.next();
                }
                out.push(Tok::Atom(text));
                spaced.push(std::mem::take(&mut space));
            }
        }
    }
    (out, spaced)
}

/// A phrase (display or group name) as shown: words separated by single spaces, encoded
/// words decoded. `None` when empty.
fn phrase(toks: &[Tok], spaced: &[bool]) -> Option<String> {
    let mut s = String::new();
    for (i, t) in toks.iter().enumerate() {
        if i > 0 && spaced.get(i).copied().unwrap_or(false) {
            s.push(' ');
        }
        match t {
            Tok::Atom(a) | Tok::Literal(a) => s.push_str(a),
            Tok::Quoted(q) => s.push_str(q),
            Tok::Special(c) => s.push(*c),
        }
    }
    let s = decode_encoded_words(s.trim());
    (!s.is_empty()).then_some(s)
}

/// An addr-spec from its tokens: `None` unless it is `local@domain` with both parts present
/// and no words side by side (which is a phrase, not an address).
fn addr_spec(toks: &[Tok]) -> Option<String> {
    let at = toks.iter().rposition(|t| *t == Tok::Special('@'))?;
    let (local, domain) = (&toks[..at], &toks[at + 1..]);
    let word = |t: &Tok| !matches!(t, Tok::Special(_));
    // Words must be separated by dots: `a b@c` is not an address.
    let joined = |part: &[Tok]| -> Option<String> {
        let mut s = String::new();
        for (i, t) in part.iter().enumerate() {
            if i > 0 && word(t) && word(&part[i - 1]) {
                return None;
            }
            match t {
                Tok::Atom(a) | Tok::Literal(a) => s.push_str(a),
                Tok::Quoted(q) => {
                    let plain = !q.is_empty()
                        && q.split('.').all(|w| {
                            !w.is_empty()
                                && w.chars().all(|c| {
                                    c.is_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c)
                                })
                        });
                    if plain {
                        s.push_str(q);
                    } else {
                        s.push('"');
                        for c in q.chars() {
                            if c == '"' || c == '\\' {
                                s.push('\\');
                            }
                            s.push(c);
                        }
                        s.push('"');
                    }
                }
                Tok::Special(c) => s.push(*c),
            }
        }
        Some(s)
    };
    let l = joined(local)?;
    let d = joined(domain)?;
    if l.is_empty()
        || d.is_empty()
        || d.starts_with('.')
        || (l.contains('@') && !l.starts_with('"'))
    {
        return None;
    }
    Some(format!("{l}@{d}").to_lowercase())
}

/// Reads an address field value (From, Sender, Reply-To...), whatever its syntax: name-addr,
/// bare addr-spec, group syntax, quoted local parts, comments anywhere, encoded words in
/// phrases. Entries that are not addresses are kept as shown text; nothing here fails.
pub fn parse_address_field(value: &[u8]) -> AddressField {
    let text = String::from_utf8_lossy(value);
    let mut comments = Vec::new();
    let (toks, spaced) = tokens(&text, &mut comments);
    let mut field = AddressField::default();
    let mut in_group = false;
    // Tokens of the current entry before any `<`.
    let mut start = 0usize;
    let mut i = 0usize;
    let flush = |field: &mut AddressField, from: usize, to: usize| {
        if from >= to {
            return;
        }
        let (t, s) = (&toks[from..to], &spaced[from..to]);
        match addr_spec(t) {
            Some(address) => field.mailboxes.push(Mailbox {
                address,
                name: None,
            }),
            None => {
                if let Some(p) = phrase(t, s) {
                    field.shown.push((Shown::DisplayName, p));
                }
            }
        }
    };
    while i < toks.len() {
        match &toks[i] {
            Tok::Special('<') => {
                let name = phrase(&toks[start..i], &spaced[start..i]);
                let close = toks[i + 1..]
                    .iter()
                    .position(|t| *t == Tok::Special('>'))
                    .map(|p| i + 1 + p)
                    .unwrap_or(toks.len());
                // A source route (`<@a,@b:x@y>`) is obsolete syntax: the address follows the
                // last `:`.
                let inner_start = toks[i + 1..close]
                    .iter()
                    .rposition(|t| *t == Tok::Special(':'))
                    .map(|p| i + 2 + p)
                    .unwrap_or(i + 1);
                if let Some(n) = &name {
                    field.shown.push((Shown::DisplayName, n.clone()));
                }
                match addr_spec(&toks[inner_start..close]) {
                    Some(address) => field.mailboxes.push(Mailbox { address, name }),
                    None => {
                        if let Some(p) = phrase(&toks[i + 1..close], &spaced[i + 1..close]) {
                            field.shown.push((Shown::DisplayName, p));
                        }
                    }
                }
                i = close + 1;
                start = i;
                continue;
            }
            Tok::Special(':') if !in_group => {
                if let Some(p) = phrase(&toks[start..i], &spaced[start..i]) {
                    field.shown.push((Shown::GroupName, p));
                }
                in_group = true;
                start = i + 1;
            }
            Tok::Special(',') => {
                flush(&mut field, start, i);
                start = i + 1;
            }
            Tok::Special(';') if in_group => {
                flush(&mut field, start, i);
                in_group = false;
                start = i + 1;
            }
            _ => {}
        }
        i += 1;
    }
    flush(&mut field, start, toks.len());
    for c in comments {
        let c = decode_encoded_words(c.trim());
        if !c.is_empty() {
            field.shown.push((Shown::Comment, c));
        }
    }
    field
}

/// Decodes every RFC 2047 encoded word in `text`, wherever it stands (readers decode them in
/// phrases, comments, and some even in quoted strings); white space between two encoded words
/// is dropped (RFC 2047 §6.2). Undecodable words are left as written.
pub fn decode_encoded_words(text: &str) -> String {
    if !text.contains("=?") {
        return text.to_string();
    }
    let bytes = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    // Where the text not yet copied starts, and whether an encoded word ends there.
    let mut plain_start = 0usize;
    let mut after_word = false;
    let mut pos = 0usize;
    while pos < bytes.len() {
        if bytes[pos] == b'=' && bytes.get(pos + 1) == Some(&b'?') {
            let mut stream = mail_parser::parsers::MessageStream::new(&bytes[pos + 1..]);
            if let Some(decoded) = stream.decode_rfc2047() {
                let gap = text.get(plain_start..pos).unwrap_or("");
                if !(after_word && gap.chars().all(char::is_whitespace)) {
                    out.push_str(gap);
                }
                out.push_str(&decoded);
                after_word = true;
                pos += 1 + stream.offset();
                plain_start = pos;
                continue;
            }
        }
        pos += 1;
    }
    out.push_str(text.get(plain_start..).unwrap_or(""));
    out
}

/// The e-mail addresses a text shows a reader once NFKC-normalised (full-width `＠` U+FF20
/// and small `﹫` are `@`, full-width dots are dots), lower case.
pub fn addresses_shown(text: &str) -> Vec<String> {
    let norm: String = text.nfkc().collect::<String>().to_lowercase();
    norm.split(|c: char| c.is_whitespace() || "<>\"'()[],;:".contains(c))
        .map(|t| t.trim_matches('.'))
        .filter(|t| looks_like_address(t))
        .map(str::to_string)
        .collect()
}

/// `local@domain.tld`-shaped, as a reader would take it for an address.
pub fn looks_like_address(t: &str) -> bool {
    t.rsplit_once('@').is_some_and(|(l, d)| {
        !l.is_empty() && d.contains('.') && !d.starts_with('.') && !d.ends_with('.')
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

    fn field(v: &str) -> AddressField {
        parse_address_field(v.as_bytes())
    }

    fn addrs(v: &str) -> Vec<String> {
        field(v).mailboxes.into_iter().map(|m| m.address).collect()
    }

    #[test]
    fn the_mailboxes_of_every_syntax() {
        assert_eq!(addrs(" VanThu@Hanoi.Gov.Vn"), vec!["vanthu@hanoi.gov.vn"]);
        assert_eq!(
            addrs(" \"Van thu\" <vanthu@hanoi.gov.vn>"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        assert_eq!(
            addrs(" Van thu <vanthu@hanoi.gov.vn>"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        // Group syntax, with and without a final `;`, and an empty group.
        assert_eq!(
            addrs(" Van phong: vanthu@hanoi.gov.vn;"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        assert_eq!(
            addrs(" Van phong: Van thu <vanthu@hanoi.gov.vn>, b@x.vn"),
            vec!["vanthu@hanoi.gov.vn", "b@x.vn"]
        );
        assert!(addrs(" undisclosed-recipients:;").is_empty());
        // Quoted local parts: unquoted when the quotes change nothing.
        assert_eq!(
            addrs(" \"vanthu\"@hanoi.gov.vn"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        assert_eq!(
            addrs(" <\"van thu\"@hanoi.gov.vn>"),
            vec!["\"van thu\"@hanoi.gov.vn"]
        );
        assert_eq!(
            addrs(" \"boss@other.gov.vn\"@hanoi.gov.vn"),
            vec!["\"boss@other.gov.vn\"@hanoi.gov.vn"]
        );
        // Comments anywhere, folding, a source route.
        assert_eq!(
            addrs(" (Van thu)\r\n vanthu(x)@(y)hanoi.gov.vn (UBND)"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        assert_eq!(
            addrs(" <@relay.vn:vanthu@hanoi.gov.vn>"),
            vec!["vanthu@hanoi.gov.vn"]
        );
        // Not addresses: words side by side, no domain.
        assert!(addrs(" Van thu vanthu@hanoi.gov.vn").is_empty());
        assert!(addrs(" vanthu@").is_empty());
        assert!(addrs(" <a@b@c.vn>").is_empty());
    }

    #[test]
    fn what_a_reader_is_shown() {
        let f = field(" Ban (phong =?UTF-8?B?4bqhaQ==?=): \"Giam doc\" <gd@hanoi.gov.vn>;");
        assert_eq!(
            f.shown,
            vec![
                (Shown::GroupName, "Ban".to_string()),
                (Shown::DisplayName, "Giam doc".to_string()),
                (Shown::Comment, "phong ại".to_string()),
            ]
        );
        assert_eq!(f.mailboxes[0].name.as_deref(), Some("Giam doc"));
        // Encoded words: adjacent ones joined, also inside a quoted string.
        assert_eq!(
            decode_encoded_words("=?UTF-8?Q?boss?= =?UTF-8?Q?=40other.gov.vn?= x"),
            "boss@other.gov.vn x"
        );
        let f = field(" \"=?UTF-8?B?Ym9zc++8oG90aGVyLmdvdi52bg==?=\" <clerk@ok.gov.vn>");
        assert_eq!(
            f.shown,
            vec![(Shown::DisplayName, "boss＠other.gov.vn".to_string())]
        );
        assert_eq!(decode_encoded_words("=?bad?X?zz?= a"), "=?bad?X?zz?= a");
    }

    #[test]
    fn addresses_after_nfkc() {
        assert_eq!(
            addresses_shown("boss＠other.gov.vn"),
            vec!["boss@other.gov.vn"]
        );
        assert_eq!(
            addresses_shown("Boss﹫Other．gov．vn."),
            vec!["boss@other.gov.vn"]
        );
        assert_eq!(
            addresses_shown("Nguyen Van A (so TN&MT) <x@y.vn>"),
            vec!["x@y.vn"]
        );
        assert!(addresses_shown("Phong A@B, hop @ 9h").is_empty());
    }

    #[test]
    fn never_panics_on_junk() {
        for v in [
            "",
            "<",
            ">",
            "<<>>",
            "\"",
            "(",
            "((a)",
            ":",
            ";",
            ":;:;",
            "@",
            "a@",
            "@b",
            "=?",
            "=?a?b?",
            "\u{ff20}",
            "[",
            "[a@b",
            "a:<b@c.vn",
            "é=?UTF-8?Q?=C3?=é",
        ] {
            let _ = parse_address_field(v.as_bytes());
            let _ = decode_encoded_words(v);
        }
        let _ = parse_address_field(&[0xff, b'<', 0x80, b'@', b'>']);
    }
}
