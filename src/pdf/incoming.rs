//! The PDF parts of an incoming document (SPEC "Documents", incoming): every part's
//! signatures verified as for an outgoing document, one `X-Congvan-PDF-Signatures` field per
//! part for the office mail system (any such field that arrived with the message is removed
//! first), and what the incoming register keeps.

use super::check::{check_pdf, CheckContext};
use super::parts::pdf_parts;
use crate::model::pdf::{PartSealed, SignatureSummary};

/// The field's name.
pub const FIELD: &str = "X-Congvan-PDF-Signatures";

/// What the PDF parts of an incoming message showed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct IncomingPdfs {
    /// One field per PDF part, each ending with CRLF, for the top of the message.
    pub fields: String,
    pub parts: Vec<PartSealed>,
    /// The first part without a valid signature, and why (English): what a quarantine names.
    pub first_unsigned: Option<(String, String)>,
}

/// Checks every PDF part of `raw`.
pub fn examine(raw: &[u8], ctx: &CheckContext<'_>) -> IncomingPdfs {
    let mut out = IncomingPdfs::default();
    for part in pdf_parts(raw) {
        let finding = check_pdf(&part.name, &part.bytes, ctx);
        let mut segments = vec![quoted(&part.name)];
        let signatures: Vec<SignatureSummary> = match &finding.outcome {
            Ok(checks) => {
                segments.push(format!("signatures={}", checks.len()));
                for (i, c) in checks.iter().enumerate() {
                    let s = SignatureSummary::of(c);
                    segments.push(match &c.problem {
                        None => format!(
                            "{}=pass signer={} serial={}",
                            i + 1,
                            quoted(&s.signer),
                            if s.serial.is_empty() { "-" } else { &s.serial }
                        ),
                        Some(p) => format!("{}=fail reason={}", i + 1, quoted(&p.to_string())),
                    });
                }
                checks.iter().map(SignatureSummary::of).collect()
            }
            Err(e) => {
                segments.push("signatures=0".into());
                segments.push(format!("error={}", quoted(&e.to_string())));
                Vec::new()
            }
        };
        out.fields.push_str(&fold(FIELD, &segments));
        if out.first_unsigned.is_none() {
            if let Some((en, _)) = finding.refusal() {
                out.first_unsigned = Some((part.name.clone(), en));
            }
        }
        out.parts.push(PartSealed {
            name: part.name,
            sha256_before: finding.sha256,
            sha256_after: None,
            signatures,
            note: None,
        });
    }
    out
}

/// `raw` without the `X-Congvan-PDF-Signatures` fields of its header section (only ours
/// may reach the office mail system); `None` when it has none.
pub fn strip_fields(raw: &[u8]) -> Option<Vec<u8>> {
    let section = crate::mime::header_section(raw);
    let mut cut: Vec<(usize, usize)> = Vec::new();
    let mut at = 0;
    while at < section.len() {
        let line_end = section[at..]
            .iter()
            .position(|b| *b == b'\n')
            .map_or(section.len(), |p| at + p + 1);
        // The field runs on over continuation lines.
        let mut end = line_end;
        while end < section.len() && matches!(section[end], b' ' | b'\t') {
            end = section[end..]
                .iter()
                .position(|b| *b == b'\n')
                .map_or(section.len(), |p| end + p + 1);
        }
        let line = &section[at..line_end];
        let named = line.iter().position(|b| *b == b':').is_some_and(|c| {
            line[..c]
                .trim_ascii()
                .eq_ignore_ascii_case(FIELD.as_bytes())
        });
        if named {
            cut.push((at, end));
        }
        at = end;
    }
    if cut.is_empty() {
        return None;
    }
    Some(crate::mime::without_ranges(raw, &cut))
}

/// A quoted value: ASCII with `"` and `\` escaped and control characters dropped, or an
/// RFC 2047 encoded word inside the quotes when it is not ASCII.
fn quoted(value: &str) -> String {
    let clean: String = value.chars().filter(|c| !c.is_control()).collect();
    if clean.is_ascii() {
        format!("\"{}\"", clean.replace('\\', "\\\\").replace('"', "\\\""))
    } else {
        format!("\"{}\"", crate::mime::encoded_words(&clean).join(" "))
    }
}

/// `name: seg1; seg2; ...`, folded at spaces when longer than 78 characters.
fn fold(name: &str, segments: &[String]) -> String {
    crate::mime::fold_field(&format!("{name}: {}", segments.join("; ")), 78) + "\r\n"
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_are_folded_and_quoted() {
        let f = fold(
            FIELD,
            &[
                quoted("Quyết định.pdf"),
                "signatures=1".into(),
                format!("1=pass signer={} serial=0a1b", quoted("Say \"hi\"")),
            ],
        );
        assert!(
            f.starts_with("X-Congvan-PDF-Signatures: \"=?UTF-8?B?"),
            "{f}"
        );
        assert!(
            f.contains("1=pass signer=\"Say \\\"hi\\\"\" serial=0a1b\r\n"),
            "{f}"
        );
        assert!(f.lines().all(|l| l.len() <= 998 && l.is_ascii()), "{f}");
    }

    #[test]
    fn arriving_fields_are_removed_with_their_continuations() {
        let raw = b"From: a@b.vn\r\nx-congvan-pdf-signatures: \"a.pdf\"; signatures=1;\r\n 1=pass\r\nSubject: s\r\n\r\nX-Congvan-PDF-Signatures: body\r\n";
        let out = strip_fields(raw).unwrap();
        assert_eq!(
            out,
            b"From: a@b.vn\r\nSubject: s\r\n\r\nX-Congvan-PDF-Signatures: body\r\n"
        );
        assert_eq!(strip_fields(b"From: a\r\n\r\nb"), None);
    }
}
