//! The `Authentication-Results` field (RFC 7281, RFC 8601): writing ours for a verdict, and
//! removing any that claim our host name before a message is verified.

use super::{SmimeResult, Verdict};
use crate::smime::mime_walk::Entity;

/// Removes every `Authentication-Results` field of the top-level header section whose
/// authserv-id is `hostname` (RFC 8601 §5), leaving every other byte as it was.
pub fn strip_own_results(raw: &[u8], hostname: &str) -> Vec<u8> {
    let Ok(entity) = Entity::parse(raw) else {
        // Not a readable header section: remove nothing (verification reports the error).
        return raw.to_vec();
    };
    let base = raw.as_ptr() as usize;
    let mut cut: Vec<(usize, usize)> = Vec::new();
    for f in entity
        .fields
        .iter()
        .filter(|f| f.is("Authentication-Results"))
    {
        let value = String::from_utf8_lossy(f.value);
        let id = strip_cfws_start(&value);
        let id: String = id
            .chars()
            .take_while(|c| !c.is_whitespace() && *c != ';' && *c != '(')
            .collect();
        if id.eq_ignore_ascii_case(hostname) {
            let start = f.raw.as_ptr() as usize - base;
            let mut end = start + f.raw.len();
            if raw.get(end) == Some(&b'\r') {
                end += 1;
            }
            if raw.get(end) == Some(&b'\n') {
                end += 1;
            }
            cut.push((start, end));
        }
    }
    if cut.is_empty() {
        return raw.to_vec();
    }
    crate::mime::without_ranges(raw, &cut)
}

fn strip_cfws_start(s: &str) -> &str {
    let mut s = s.trim_start();
    while let Some(rest) = s.strip_prefix('(') {
        let mut depth = 1u32;
        let mut end = rest.len();
        let mut esc = false;
        for (i, c) in rest.char_indices() {
            if esc {
                esc = false;
                continue;
            }
            match c {
                '\\' => esc = true,
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = i + 1;
                        break;
                    }
                }
                _ => {}
            }
        }
        s = rest.get(end..).unwrap_or("").trim_start();
    }
    s
}

/// The `Authentication-Results` field (with its CRLF) for a verdict, in the form SPEC.md
/// gives. Reasons are a comment: the English text, then the Vietnamese as RFC 2047 encoded
/// words (allowed in comments, RFC 2047 §5(2)). One line unless it would pass 900 octets.
pub fn authentication_results_header(hostname: &str, v: &Verdict) -> String {
    let mut s = format!("Authentication-Results: {hostname}; smime={}", v.result);
    if v.result == SmimeResult::Pass {
        if let Some(a) = &v.signer {
            s.push_str(&format!(" body.smime-identifier={}", ascii_token(a)));
        }
        if let Some(serial) = &v.serial {
            s.push_str(&format!(" body.smime-serial={serial}"));
        }
        if let Some(issuer) = &v.issuer {
            s.push_str(&format!(" body.smime-issuer=\"{}\"", quoted_safe(issuer)));
        }
    }
    let en = v.reason_en();
    if !en.is_empty() {
        s.push_str(" (");
        s.push_str(&comment_safe(&en));
        let vi = v.reason_vi();
        if !vi.is_empty() {
            s.push_str(" / ");
            s.push_str(&crate::mime::encoded_words(&vi).join(" "));
        }
        s.push(')');
    }
    crate::mime::fold_field(&s, 900) + "\r\n"
}

fn ascii_token(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_graphic() && !"()<>,;:\\\"[]".contains(*c))
        .collect()
}

/// What may stand between the quotes of a quoted-string (RFC 4514 escapes are kept).
fn quoted_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' => {
                // An RFC 4514 escape: keep it as a quoted-pair.
                out.push('\\');
                match chars.next() {
                    Some(n) if n.is_ascii_graphic() || n == ' ' => out.push(n),
                    _ => out.push('\\'),
                }
            }
            '"' => out.push_str("\\\""),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

/// Printable ASCII for a comment: parentheses become brackets (easier to read than
/// quoted-pairs), a backslash (an RFC 4514 escape) becomes a quoted-pair.
fn comment_safe(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '(' => out.push('['),
            ')' => out.push(']'),
            '\\' => out.push_str("\\\\"),
            c if c.is_ascii_graphic() || c == ' ' => out.push(c),
            _ => out.push('?'),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strips_only_our_results() {
        let raw = b"Authentication-Results: GW.test.gov.vn; smime=pass\r\n\tbody.smime-identifier=x@y\r\nAuthentication-Results: other.example; dkim=pass\r\nAuthentication-Results: (c) gw.test.gov.vn; smime=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: gw.test.gov.vn; in the body\r\n";
        let out = strip_own_results(raw, "gw.test.gov.vn");
        assert_eq!(
            out,
            b"Authentication-Results: other.example; dkim=pass\r\nFrom: a@b\r\n\r\nAuthentication-Results: gw.test.gov.vn; in the body\r\n"
        );
    }
}
