//! A strict, bounded MIME reader for verification: header fields as transmitted, the
//! Content-Type with its parameters, and the exact byte ranges of multipart body parts.
//!
//! Verification must know precisely which bytes were signed and which bytes a mail client
//! will display, so this reader refuses what two parsers could read differently (two
//! Content-Type fields, a parameter given twice, a multipart without its closing delimiter)
//! instead of guessing. Line endings may be CRLF or LF (OpenSSL writes LF outside the signed
//! part); nothing here panics on hostile input, and nesting is bounded.

/// The deepest MIME nesting followed: the bound of every MIME walker (the configured
/// `max_mime_depth` is checked before verification and may not exceed it).
pub const MAX_DEPTH: usize = crate::nesting::MAX_DEPTH_CEILING;
/// The most body parts looked at in one message.
pub const MAX_PARTS: usize = 1000;

/// Why a MIME structure could not be read unambiguously.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum MimeError {
    #[error("a header line is not a field: {line:?}")]
    BadHeaderLine { line: String },
    #[error("{count} {name} header fields")]
    DuplicateField { name: &'static str, count: usize },
    #[error("malformed Content-Type: {0}")]
    BadContentType(String),
    #[error("multipart without a boundary parameter")]
    NoBoundary,
    #[error("multipart body without its closing delimiter")]
    Unterminated,
    #[error("MIME nested deeper than {MAX_DEPTH} levels or more than {MAX_PARTS} parts")]
    TooComplex,
}

/// One header field as transmitted.
#[derive(Debug, Clone)]
pub struct Field<'a> {
    /// The field name, as written.
    pub name: &'a str,
    /// The whole field, folded lines included, without its final line ending.
    pub raw: &'a [u8],
    /// The text after the colon, without its final line ending.
    pub value: &'a [u8],
}

impl Field<'_> {
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }

    /// The value unfolded, runs of white space made one space, trimmed.
    pub fn normalized(&self) -> String {
        normalize(self.value)
    }
}

/// Unfolds and collapses white space (for comparing field values).
pub fn normalize(value: &[u8]) -> String {
    let text = String::from_utf8_lossy(value);
    text.split([' ', '\t', '\r', '\n'])
        .filter(|s| !s.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// A MIME entity: its header fields and where its body starts.
#[derive(Debug, Clone)]
pub struct Entity<'a> {
    /// The whole entity.
    pub raw: &'a [u8],
    pub fields: Vec<Field<'a>>,
    /// The body (after the empty line; empty when there is none).
    pub body: &'a [u8],
}

/// A parsed Content-Type (RFC 2045 §5.1): lower-cased type, subtype and parameter names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ContentType {
    pub mime_type: String,
    pub subtype: String,
    pub params: Vec<(String, String)>,
}

impl ContentType {
    pub fn is(&self, mime_type: &str, subtype: &str) -> bool {
        self.mime_type == mime_type && self.subtype == subtype
    }

    pub fn param(&self, name: &str) -> Option<&str> {
        self.params
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// RFC 2045 §5.2: no Content-Type means text/plain.
    fn default_text() -> ContentType {
        ContentType {
            mime_type: "text".into(),
            subtype: "plain".into(),
            params: Vec::new(),
        }
    }
}

impl<'a> Entity<'a> {
    /// Splits an entity into header fields and body.
    pub fn parse(raw: &'a [u8]) -> Result<Entity<'a>, MimeError> {
        let mut fields: Vec<Field<'a>> = Vec::new();
        let mut pos = 0usize;
        let mut body_start = raw.len();
        while pos < raw.len() {
            let line_end = raw[pos..]
                .iter()
                .position(|&b| b == b'\n')
                .map(|p| pos + p + 1)
                .unwrap_or(raw.len());
            let line = trim_eol(&raw[pos..line_end]);
            if line.is_empty() {
                body_start = line_end;
                break;
            }
            if line[0] == b' ' || line[0] == b'\t' {
                // A continuation line extends the previous field.
                let Some(last) = fields.last_mut() else {
                    return Err(MimeError::BadHeaderLine {
                        line: String::from_utf8_lossy(line).into_owned(),
                    });
                };
                let start = last.raw.as_ptr() as usize - raw.as_ptr() as usize;
                let value_start = last.value.as_ptr() as usize - raw.as_ptr() as usize;
                let end = pos + line.len();
                last.raw = &raw[start..end];
                last.value = &raw[value_start..end];
            } else {
                let colon = line.iter().position(|&b| b == b':');
                let name = colon
                    .map(|c| &line[..c])
                    .filter(|n| !n.is_empty() && n.iter().all(|&b| (33..=126).contains(&b)))
                    .and_then(|n| std::str::from_utf8(n).ok());
                let (Some(colon), Some(name)) = (colon, name) else {
                    return Err(MimeError::BadHeaderLine {
                        line: String::from_utf8_lossy(&line[..line.len().min(80)]).into_owned(),
                    });
                };
                fields.push(Field {
                    name,
                    raw: &raw[pos..pos + line.len()],
                    value: &raw[pos + colon + 1..pos + line.len()],
                });
            }
            pos = line_end;
        }
        Ok(Entity {
            raw,
            fields,
            body: raw.get(body_start..).unwrap_or(&[]),
        })
    }

    /// Every field with this name, in order.
    pub fn all(&self, name: &str) -> Vec<&Field<'a>> {
        self.fields.iter().filter(|f| f.is(name)).collect()
    }

    /// The only field with this name; several are an error (two readers could pick different
    /// ones).
    pub fn single(&self, name: &'static str) -> Result<Option<&Field<'a>>, MimeError> {
        let all = self.all(name);
        match all.len() {
            0 => Ok(None),
            1 => Ok(Some(all[0])),
            count => Err(MimeError::DuplicateField { name, count }),
        }
    }

    pub fn content_type(&self) -> Result<ContentType, MimeError> {
        match self.single("Content-Type")? {
            None => Ok(ContentType::default_text()),
            Some(f) => parse_content_type(&f.normalized()),
        }
    }

    /// The Content-Transfer-Encoding, lower case (`7bit` when absent).
    pub fn transfer_encoding(&self) -> Result<String, MimeError> {
        Ok(self
            .single("Content-Transfer-Encoding")?
            .map(|f| strip_comments(&f.normalized()).trim().to_ascii_lowercase())
            .unwrap_or_else(|| "7bit".into()))
    }

    /// The body with its transfer encoding undone (base64 and quoted-printable are the
    /// ones a signature part or opaque signed-data arrives in).
    pub fn decoded_body(&self) -> Result<Vec<u8>, MimeError> {
        match self.transfer_encoding()?.as_str() {
            "base64" => {
                use base64::Engine;
                let clean: Vec<u8> = self
                    .body
                    .iter()
                    .copied()
                    .filter(|b| !b.is_ascii_whitespace())
                    .collect();
                let engine = base64::engine::GeneralPurpose::new(
                    &base64::alphabet::STANDARD,
                    base64::engine::GeneralPurposeConfig::new()
                        .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
                );
                engine
                    .decode(clean)
                    .map_err(|e| MimeError::BadContentType(format!("bad base64 body: {e}")))
            }
            "7bit" | "8bit" | "binary" => Ok(self.body.to_vec()),
            other => Err(MimeError::BadContentType(format!(
                "unsupported transfer encoding {other:?} for signature data"
            ))),
        }
    }
}

fn trim_eol(line: &[u8]) -> &[u8] {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    line.strip_suffix(b"\r").unwrap_or(line)
}

/// Removes RFC 5322 comments (nesting bounded), leaving quoted strings alone.
fn strip_comments(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut depth = 0u32;
    let mut quoted = false;
    let mut escaped = false;
    for c in s.chars() {
        if escaped {
            if depth == 0 {
                out.push(c);
            }
            escaped = false;
            continue;
        }
        match c {
            '\\' if quoted || depth > 0 => {
                escaped = true;
                if depth == 0 {
                    out.push(c);
                }
            }
            '"' if depth == 0 => {
                quoted = !quoted;
                out.push(c);
            }
            '(' if !quoted => depth = depth.saturating_add(1),
            ')' if !quoted && depth > 0 => depth -= 1,
            c if depth == 0 => out.push(c),
            _ => {}
        }
    }
    out
}

/// Parses a Content-Type value (already unfolded).
pub fn parse_content_type(value: &str) -> Result<ContentType, MimeError> {
    let bad = |why: &str| MimeError::BadContentType(format!("{why} in {value:?}"));
    let text = strip_comments(value);
    let mut rest = text.as_str();
    let semi = split_unquoted(rest);
    let media = &rest[..semi];
    rest = &rest[semi..];
    let (t, s) = media
        .trim()
        .split_once('/')
        .ok_or_else(|| bad("no type/subtype"))?;
    let token = |x: &str| {
        !x.is_empty()
            && x.bytes()
                .all(|b| b.is_ascii_graphic() && !b"()<>@,;:\\\"/[]?=".contains(&b))
    };
    let (t, s) = (t.trim(), s.trim());
    if !token(t) || !token(s) {
        return Err(bad("bad type/subtype"));
    }
    let mut params: Vec<(String, String)> = Vec::new();
    while let Some(after) = rest.strip_prefix(';') {
        let end = split_unquoted(after);
        let item = after[..end].trim();
        rest = &after[end..];
        if item.is_empty() {
            continue;
        }
        let (name, val) = item
            .split_once('=')
            .ok_or_else(|| bad("parameter without '='"))?;
        let name = name.trim().to_ascii_lowercase();
        let val = val.trim();
        let val = if let Some(inner) = val.strip_prefix('"') {
            let inner = inner
                .strip_suffix('"')
                .ok_or_else(|| bad("unterminated quoted string"))?;
            let mut out = String::with_capacity(inner.len());
            let mut esc = false;
            for c in inner.chars() {
                if esc {
                    out.push(c);
                    esc = false;
                } else if c == '\\' {
                    esc = true;
                } else {
                    out.push(c);
                }
            }
            out
        } else {
            val.to_string()
        };
        if params.iter().any(|(n, _)| *n == name) {
            return Err(bad(&format!("parameter {name} given twice")));
        }
        params.push((name, val));
    }
    Ok(ContentType {
        mime_type: t.to_ascii_lowercase(),
        subtype: s.to_ascii_lowercase(),
        params,
    })
}

/// The index of the first `;` outside a quoted string (or the length).
fn split_unquoted(s: &str) -> usize {
    let mut quoted = false;
    let mut esc = false;
    for (i, c) in s.char_indices() {
        if esc {
            esc = false;
            continue;
        }
        match c {
            '\\' if quoted => esc = true,
            '"' => quoted = !quoted,
            ';' if !quoted => return i,
            _ => {}
        }
    }
    s.len()
}

/// The body parts of a multipart body: each part's exact bytes, without the line ending
/// that belongs to the next delimiter (RFC 2046 §5.1.1).
pub fn split_multipart<'a>(body: &'a [u8], boundary: &str) -> Result<Vec<&'a [u8]>, MimeError> {
    if boundary.is_empty() || boundary.len() > 200 {
        return Err(MimeError::NoBoundary);
    }
    let delim: Vec<u8> = [b"--", boundary.as_bytes()].concat();
    let mut parts = Vec::new();
    // Start of the current part's content, once the first delimiter was seen.
    let mut current: Option<usize> = None;
    let mut pos = 0usize;
    while pos < body.len() {
        let line_end = body[pos..]
            .iter()
            .position(|&b| b == b'\n')
            .map(|p| pos + p + 1)
            .unwrap_or(body.len());
        let line = trim_eol(&body[pos..line_end]);
        if let Some(after) = line.strip_prefix(delim.as_slice()) {
            let closing = after.starts_with(b"--");
            let tail = if closing { &after[2..] } else { after };
            if tail.iter().all(|&b| b == b' ' || b == b'\t') {
                if let Some(start) = current {
                    // The line ending before the delimiter belongs to the delimiter.
                    let mut end = pos;
                    if end > start && body[end - 1] == b'\n' {
                        end -= 1;
                        if end > start && body[end - 1] == b'\r' {
                            end -= 1;
                        }
                    }
                    parts.push(&body[start..end.max(start)]);
                    if parts.len() > MAX_PARTS {
                        return Err(MimeError::TooComplex);
                    }
                }
                if closing {
                    return Ok(parts);
                }
                current = Some(line_end);
            }
        }
        pos = line_end;
    }
    Err(MimeError::Unterminated)
}

/// Canonical form for hashing (RFC 8551 §3.1.1): every bare LF becomes CRLF.
pub fn to_crlf(bytes: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    let bare = bytes
        .iter()
        .enumerate()
        .any(|(i, &b)| b == b'\n' && (i == 0 || bytes[i - 1] != b'\r'));
    if !bare {
        return std::borrow::Cow::Borrowed(bytes);
    }
    let mut out = Vec::with_capacity(bytes.len() + bytes.len() / 40);
    for (i, &b) in bytes.iter().enumerate() {
        if b == b'\n' && (i == 0 || bytes[i - 1] != b'\r') {
            out.push(b'\r');
        }
        out.push(b);
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_type_any_case_with_comments() {
        let ct = parse_content_type(
            "Multipart/Signed (x); Protocol=\"application/x-pkcs7-signature\"; micalg=SHA-256; boundary=\"a;b\"",
        )
        .unwrap();
        assert!(ct.is("multipart", "signed"));
        assert_eq!(ct.param("protocol"), Some("application/x-pkcs7-signature"));
        assert_eq!(ct.param("boundary"), Some("a;b"));
        assert!(parse_content_type("text/plain; a=1; A=2").is_err());
    }

    #[test]
    fn multipart_parts_exclude_the_delimiter_line_ending() {
        let body = b"preamble\r\n--b\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b\r\nX\r\n--b--\r\nepilogue";
        let parts = split_multipart(body, "b").unwrap();
        assert_eq!(
            parts,
            vec![&b"Content-Type: text/plain\r\n\r\nhi"[..], &b"X"[..]]
        );
        assert_eq!(
            split_multipart(b"--b\r\nx\r\n", "b"),
            Err(MimeError::Unterminated)
        );
    }

    #[test]
    fn headers_folded_and_lf() {
        let e = Entity::parse(b"From: a@b\nSubject: x\n y\n\nbody\n").unwrap();
        assert_eq!(e.fields.len(), 2);
        assert_eq!(e.fields[1].normalized(), "x y");
        assert_eq!(e.body, b"body\n");
        assert!(Entity::parse(b"no colon here\r\n\r\n").is_err());
    }

    /// The verifier's search for a signature below the top (multipart, message/rfc822,
    /// message/global) stops at [`MAX_DEPTH`]: at 10 and 1,000 times the default limit the
    /// message is simply not signed, and the walk ends.
    #[test]
    fn verifier_walk_is_bounded() {
        use crate::nesting::attack::*;
        use crate::smime::verify::{verify_message, Failure, TrustStore, VerifyOptions};
        let anchors = TrustStore::from_pems(std::iter::empty());
        let now = time::OffsetDateTime::now_utc();
        let signed_inside = |mut raw: Vec<u8>| {
            // The innermost entity claims to be signed.
            let at = raw
                .windows(18)
                .rposition(|w| w == b"Subject: innermost")
                .unwrap();
            raw.splice(
                at..at,
                b"Content-Type: multipart/signed; protocol=\"application/pkcs7-signature\"; boundary=s\r\n"
                    .iter()
                    .copied(),
            );
            raw
        };
        let shallow = signed_inside(nested_message("rfc822", 3, "a@x.vn", "b@y.vn"));
        let v = verify_message(&shallow, &anchors, &[], now, VerifyOptions::default());
        assert_eq!(v.failure, Some(Failure::OnlyAttachedMessageSigned));
        for n in [500, 50_000] {
            for raw in [
                signed_inside(nested_message("rfc822", n, "a@x.vn", "b@y.vn")),
                signed_inside(nested_message("global", n, "a@x.vn", "b@y.vn")),
                nested_multipart(n, "a@x.vn", "b@y.vn"),
                nested_mixed(n, "a@x.vn", "b@y.vn"),
            ] {
                let v = verify_message(&raw, &anchors, &[], now, VerifyOptions::default());
                assert_eq!(v.failure, Some(Failure::NotSigned), "{n}");
            }
        }
    }
}
