//! What the gateway reads from a message's header section before it accepts the message:
//! the From addresses (and how many From fields), Subject, and the decoded values of the
//! headers classification looks at. Only the header section is parsed, never the body.
//! From and Sender are read by [`crate::address::parse_address_field`], the reader the
//! signer and the verifier use, so that all three agree on who the author is.

use mail_parser::{HeaderName, HeaderValue, MessageParser};
use unicode_normalization::UnicodeNormalization;

#[derive(Debug, Clone, Default)]
pub struct HeaderInfo {
    /// Addresses of every From field, lower-cased.
    pub from: Vec<String>,
    /// Number of From fields (RFC 5322 allows exactly one).
    pub from_fields: usize,
    pub sender: Option<String>,
    /// RFC 2047-decoded, NFC.
    pub subject: String,
    /// Every header as (name, RFC 2047-decoded NFC value), in order.
    pub fields: Vec<(String, String)>,
}

impl HeaderInfo {
    /// The Message-ID field as a log may show it: control characters escaped, at most 255
    /// characters.
    pub fn message_id(&self) -> Option<String> {
        let (_, v) = self
            .fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("Message-ID"))?;
        let v: String = crate::util::printable(v.trim()).chars().take(255).collect();
        (!v.is_empty()).then_some(v)
    }
}

/// The header section with its final CRLF (without the empty line), or the whole input
/// when there is no body.
pub fn header_section(msg: &[u8]) -> &[u8] {
    if msg.starts_with(b"\r\n") {
        return &msg[..0];
    }
    match msg.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(p) => &msg[..p + 2],
        None => msg,
    }
}

pub fn read_headers(msg: &[u8]) -> HeaderInfo {
    let head = header_section(msg);
    let mut info = HeaderInfo::default();
    if head.is_empty() {
        return info;
    }
    let mut owned = head.to_vec();
    owned.extend_from_slice(b"\r\n");
    let parser = MessageParser::new()
        .with_address_headers()
        .header_text(HeaderName::Subject)
        .default_header_text();
    let Some(parsed) = parser.parse_headers(&owned) else {
        return info;
    };
    for h in parsed.headers() {
        let name = h.name.as_str().to_string();
        let value = owned
            .get(h.offset_start as usize..h.offset_end as usize)
            .unwrap_or_default();
        match &h.name {
            HeaderName::From => {
                info.from_fields += 1;
                info.from.extend(
                    crate::address::parse_address_field(value)
                        .mailboxes
                        .into_iter()
                        .map(|m| m.address),
                );
            }
            HeaderName::Sender => {
                info.sender = crate::address::parse_address_field(value)
                    .mailboxes
                    .into_iter()
                    .next()
                    .map(|m| m.address);
            }
            _ => {}
        }
        let text = match &h.value {
            HeaderValue::Text(t) => t.to_string(),
            HeaderValue::TextList(l) => l.join(", "),
            _ => String::new(),
        };
        let text: String = text.trim().nfc().collect();
        if matches!(h.name, HeaderName::Subject) {
            info.subject = text.clone();
        }
        info.fields.push((name, text));
    }
    info
}

/// RFC 2047 B encoded words for `text`, each at most 75 octets, split on character
/// boundaries (45 octets of UTF-8 become 60 of base64 plus the 12 of `=?UTF-8?B?...?=`).
pub fn encoded_words(text: &str) -> Vec<String> {
    use base64::Engine;
    let mut words = Vec::new();
    let mut chunk = String::new();
    for c in text.chars() {
        if chunk.len() + c.len_utf8() > 45 {
            words.push(std::mem::take(&mut chunk));
        }
        chunk.push(c);
    }
    if !chunk.is_empty() {
        words.push(chunk);
    }
    words
        .iter()
        .map(|w| {
            format!(
                "=?UTF-8?B?{}?=",
                base64::engine::general_purpose::STANDARD.encode(w.as_bytes())
            )
        })
        .collect()
}

/// A header value the gateway writes: as is when ASCII, else encoded words folded onto
/// continuation lines.
pub fn encode_header_value(s: &str) -> String {
    if s.is_ascii() {
        return s.to_string();
    }
    encoded_words(s).join("\r\n ")
}

/// A header field (without its CRLF) as is when it is at most `keep_under` octets, else
/// folded at spaces into lines of about 76 (RFC 5322 allows 998): unfolding gives it back.
pub fn fold_field(s: &str, keep_under: usize) -> String {
    if s.len() <= keep_under {
        return s.to_string();
    }
    let mut out = String::with_capacity(s.len() + 64);
    let mut line = 0usize;
    for (i, word) in s.split(' ').enumerate() {
        if i > 0 {
            if line + 1 + word.len() > 76 {
                out.push_str("\r\n ");
                line = 1;
            } else {
                out.push(' ');
                line += 1;
            }
        }
        out.push_str(word);
        line += word.len();
    }
    out
}

/// `raw` without the byte ranges `cut` (in order, not overlapping): header fields removed.
pub fn without_ranges(raw: &[u8], cut: &[(usize, usize)]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut pos = 0;
    for &(s, e) in cut {
        out.extend_from_slice(&raw[pos..s]);
        pos = e;
    }
    out.extend_from_slice(&raw[pos..]);
    out
}

/// Whether any byte is 8-bit (for BODY=8BITMIME when relaying).
pub fn has_8bit(msg: &[u8]) -> bool {
    msg.iter().any(|b| *b >= 0x80)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_from_subject_and_custom() {
        let msg = b"From: \"Van Thu\" <VanThu@Dev.Gov.Vn>\r\nSubject: =?UTF-8?B?W0jhu44gVOG7kENd?= x\r\nX-Congvan-Urgency: =?UTF-8?Q?h=E1=BB=8Fa_t=E1=BB=91c?=\r\n\r\nbody\r\nFrom: fake@x\r\n";
        let h = read_headers(msg);
        assert_eq!(h.from, vec!["vanthu@dev.gov.vn"]);
        assert_eq!(h.from_fields, 1);
        assert!(h.subject.ends_with(" x"), "{}", h.subject);
        let u = h
            .fields
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("x-congvan-urgency"))
            .map(|(_, v)| v.clone());
        assert_eq!(u.as_deref(), Some("hỏa tốc"));
    }

    #[test]
    fn from_in_group_syntax_and_with_comments() {
        let msg = b"From: Van phong: \"Van thu\" <VanThu@Dev.Gov.Vn> (UBND);\r\nSender: (x) <a@dev.gov.vn>\r\n\r\nx\r\n";
        let h = read_headers(msg);
        assert_eq!(h.from, vec!["vanthu@dev.gov.vn"]);
        assert_eq!(h.sender.as_deref(), Some("a@dev.gov.vn"));
    }

    #[test]
    fn counts_two_from_fields() {
        let msg = b"From: a@dev.gov.vn\r\nFrom: b@evil.com\r\n\r\nx\r\n";
        let h = read_headers(msg);
        assert_eq!(h.from_fields, 2);
        assert_eq!(h.from.len(), 2);
    }
}
