//! The PDF parts of a message: every `application/pdf` part, and `application/octet-stream`
//! parts whose file name ends in `.pdf`, decoded from their transfer encoding; and the
//! message rewritten with new bytes for some of them (the sealed files), base64-encoded.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One PDF part, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfPart {
    /// The part's file name (Content-Disposition or Content-Type `name`), or `document-N.pdf`
    /// (N counting PDF parts from 1) when it has none.
    pub name: String,
    pub bytes: Vec<u8>,
    /// Where the part's header section and body are in the message.
    pub header_at: usize,
    pub body_at: usize,
    pub end: usize,
    /// The part is already base64 (its header section can stay as it is).
    pub base64: bool,
}

/// The PDF parts of `raw`, in the order they appear. Attached messages are not entered:
/// their documents are theirs, not this message's.
pub fn pdf_parts(raw: &[u8]) -> Vec<PdfPart> {
    let Some(message) = MessageParser::new().parse(raw) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    for part in &message.parts {
        let bytes = match &part.body {
            PartType::Binary(b) | PartType::InlineBinary(b) => b.as_ref(),
            PartType::Text(t) | PartType::Html(t) => t.as_bytes(),
            _ => continue,
        };
        let name = part.attachment_name().map(str::to_owned);
        let is_pdf = part.content_type().is_some_and(|ct| {
            let ctype = ct.ctype().to_ascii_lowercase();
            let sub = ct.subtype().map(str::to_ascii_lowercase);
            match (ctype.as_str(), sub.as_deref()) {
                ("application", Some("pdf")) => true,
                ("application", Some("octet-stream")) => name
                    .as_deref()
                    .is_some_and(|n| n.to_ascii_lowercase().ends_with(".pdf")),
                _ => false,
            }
        });
        if is_pdf {
            let name = name.unwrap_or_else(|| format!("document-{}.pdf", out.len() + 1));
            let base64 = part
                .content_transfer_encoding()
                .is_some_and(|c| c.eq_ignore_ascii_case("base64"));
            out.push(PdfPart {
                name,
                bytes: bytes.to_vec(),
                header_at: part.offset_header as usize,
                body_at: part.offset_body as usize,
                end: part.offset_end as usize,
                base64,
            });
        }
    }
    out
}

/// `raw` with the body of each `(part, bytes)` replaced by `bytes` in base64 (lines of 76);
/// a part that was not base64 gets `Content-Transfer-Encoding: base64` instead of its own.
/// The parts must come from [`pdf_parts`] on the same `raw`.
pub fn replace_parts(raw: &[u8], replacements: &[(&PdfPart, &[u8])]) -> Vec<u8> {
    use base64::Engine;
    let mut sorted: Vec<&(&PdfPart, &[u8])> = replacements.iter().collect();
    sorted.sort_by_key(|(p, _)| p.header_at);
    let mut out = Vec::with_capacity(
        raw.len()
            + replacements
                .iter()
                .map(|r| r.1.len() * 4 / 3)
                .sum::<usize>(),
    );
    let mut at = 0;
    for (part, bytes) in sorted {
        if part.header_at < at || part.end > raw.len() || part.body_at > part.end {
            continue;
        }
        if part.base64 {
            out.extend_from_slice(&raw[at..part.body_at]);
        } else {
            out.extend_from_slice(&raw[at..part.header_at]);
            out.extend_from_slice(&headers_with_base64(&raw[part.header_at..part.body_at]));
        }
        let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
        for (i, line) in encoded.as_bytes().chunks(76).enumerate() {
            if i > 0 {
                out.extend_from_slice(b"\r\n");
            }
            out.extend_from_slice(line);
        }
        // The line break that ended the old body (before the next boundary) stays in `raw`.
        let old = &raw[part.body_at..part.end];
        if old.ends_with(b"\n") {
            out.extend_from_slice(b"\r\n");
        }
        at = part.end;
    }
    out.extend_from_slice(&raw[at..]);
    out
}

/// A part's header section (ending with its blank line) with its Content-Transfer-Encoding
/// field(s) replaced by `base64`.
fn headers_with_base64(section: &[u8]) -> Vec<u8> {
    let mut fields: Vec<&[u8]> = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < section.len() {
        if section[i] == b'\n' {
            let next = section.get(i + 1).copied();
            if !matches!(next, Some(b' ') | Some(b'\t')) {
                fields.push(&section[start..=i]);
                start = i + 1;
            }
        }
        i += 1;
    }
    if start < section.len() {
        fields.push(&section[start..]);
    }
    let mut out = Vec::with_capacity(section.len() + 40);
    let mut wrote = false;
    for f in fields {
        let blank = f == b"\r\n" || f == b"\n";
        let is_cte = f
            .get(..26)
            .is_some_and(|n| n.eq_ignore_ascii_case(b"content-transfer-encoding:"));
        if blank && !wrote {
            out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
            wrote = true;
        }
        if !is_cte {
            out.extend_from_slice(f);
        }
    }
    if !wrote {
        out.extend_from_slice(b"Content-Transfer-Encoding: base64\r\n");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const MSG: &[u8] = b"From: a@dev.gov.vn\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhello\r\n--b\r\nContent-Type: application/pdf; name=\"a.pdf\"\r\nContent-Transfer-Encoding: base64\r\n\r\nJVBERi0xLjQK\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=\"B.PDF\"\r\ncontent-transfer-encoding: 8bit\r\n\r\n%PDF-1.7 b\r\n--b\r\nContent-Type: application/octet-stream; name=\"c.bin\"\r\n\r\nxx\r\n--b--\r\n";

    #[test]
    fn finds_pdf_parts_and_replaces_their_bodies() {
        let parts = pdf_parts(MSG);
        let names: Vec<&str> = parts.iter().map(|p| p.name.as_str()).collect();
        assert_eq!(names, ["a.pdf", "B.PDF"]);
        assert_eq!(parts[0].bytes, b"%PDF-1.4\n");
        assert!(parts[0].base64 && !parts[1].base64);

        let big = vec![7u8; 200];
        let out = replace_parts(MSG, &[(&parts[0], b"%PDF-new"), (&parts[1], &big)]);
        let again = pdf_parts(&out);
        assert_eq!(again.len(), 2);
        assert_eq!(again[0].bytes, b"%PDF-new");
        assert_eq!(again[1].bytes, big);
        assert!(again[1].base64);
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("\r\n\r\nhello\r\n--b\r\n"), "{text}");
        assert!(
            text.ends_with("name=\"c.bin\"\r\n\r\nxx\r\n--b--\r\n"),
            "{text}"
        );
        assert_eq!(text.matches("ransfer-Encoding").count(), 2, "{text}");
        assert!(!text.contains("8bit"), "{text}");
    }
}
