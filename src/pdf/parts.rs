//! The PDF parts of a message: every `application/pdf` part, and `application/octet-stream`
//! parts whose file name ends in `.pdf`, decoded from their transfer encoding.

use mail_parser::{MessageParser, MimeHeaders, PartType};

/// One PDF part, decoded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdfPart {
    /// The part's file name (Content-Disposition or Content-Type `name`), or `document-N.pdf`
    /// (N counting PDF parts from 1) when it has none.
    pub name: String,
    pub bytes: Vec<u8>,
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
            out.push(PdfPart {
                name,
                bytes: bytes.to_vec(),
            });
        }
    }
    out
}
