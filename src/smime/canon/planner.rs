//! Planning the canonical form: the walk over mail-parser's tree that decides, part by part and
//! field by field, what is copied, re-encoded or generated, and the boundaries it may replace.

use std::ops::Range;

use mail_builder::headers::content_type::ContentType as BuilderContentType;
use mail_builder::headers::Header as _;
use mail_parser::{ContentType, HeaderName, HeaderValue, Message, PartType};

use super::fields::{
    attribute, builder_content_type, checked_field, encode_field, field_name, field_value,
};
use super::{CanonError, Cte, RootHeaders, Scan, Segment, MAX_DEPTH};

/// What the header block of a part must say after canonicalisation.
#[derive(Default)]
struct HeaderChanges {
    /// The Content-Transfer-Encoding to declare, when it differs from the declared one.
    cte: Option<Cte>,
    /// Add `charset=utf-8` to a text part that had 8-bit UTF-8 and no charset.
    add_utf8_charset: bool,
    /// A replacement for a boundary that cannot be used (too long or not printable ASCII).
    new_boundary: Option<String>,
}

pub(super) struct Planner<'r> {
    pub(super) raw: &'r [u8],
    pub(super) segments: Vec<Segment>,
    pub(super) len_hint: usize,
}

impl<'r> Planner<'r> {
    fn literal(&mut self, bytes: impl Into<Vec<u8>>) {
        let bytes = bytes.into();
        self.len_hint += bytes.len();
        if let Some(Segment::Literal(prev)) = self.segments.last_mut() {
            prev.extend_from_slice(&bytes);
        } else {
            self.segments.push(Segment::Literal(bytes));
        }
    }

    fn push(&mut self, segment: Segment, hint: usize) {
        self.len_hint += hint;
        self.segments.push(segment);
    }

    fn range(&self, start: u32, end: u32) -> Range<usize> {
        let len = self.raw.len();
        let start = (start as usize).min(len);
        let end = (end as usize).clamp(start, len);
        start..end
    }

    /// Plans part `id` of `message`. `delimiters` are those of the enclosing multiparts
    /// (`--boundary`), which no copied body may contain; `depth` counts every enclosing
    /// container, attached messages too (they add no delimiter).
    pub(super) fn part(
        &mut self,
        message: &Message<'_>,
        id: usize,
        root: Option<&RootHeaders<'_>>,
        delimiters: &[Vec<u8>],
        depth: usize,
    ) -> Result<(), CanonError> {
        if depth > MAX_DEPTH {
            return Err(CanonError::TooDeep);
        }
        let Some(part) = message.parts.get(id) else {
            return Ok(());
        };
        let content_type = part
            .headers
            .iter()
            .rev()
            .find(|h| h.name == HeaderName::ContentType)
            .and_then(|h| h.value.as_content_type());
        let (ctype, subtype) = match content_type {
            Some(ct) => (
                ct.ctype().to_ascii_lowercase(),
                ct.subtype().unwrap_or("").to_ascii_lowercase(),
            ),
            None => ("text".to_string(), "plain".to_string()),
        };
        let declared = Cte::parse(
            part.headers
                .iter()
                .rev()
                .find(|h| h.name == HeaderName::ContentTransferEncoding)
                .and_then(|h| h.value.as_text()),
        );
        let body = self.range(part.offset_body, part.offset_end);

        match &part.body {
            PartType::Multipart(children) => {
                let original = content_type
                    .and_then(|ct| attribute(ct, "boundary"))
                    .unwrap_or_default();
                // RFC 2046 allows 70 characters; longer ones are kept up to a safe length.
                let usable = (1..=200).contains(&original.len())
                    && original.bytes().all(|b| (32..=126).contains(&b))
                    && !original.ends_with(' ');
                let new_boundary = if usable {
                    None
                } else {
                    Some(fresh_boundary()?)
                };
                if subtype == "signed" {
                    // A signature inside the document: its bytes are kept, or nothing is.
                    let bytes = &self.raw[body.clone()];
                    if new_boundary.is_some()
                        || !Scan::of(bytes).is_clean()
                        || contains_delimiter(bytes, delimiters)
                    {
                        return Err(CanonError::SignedEntityNot7bit);
                    }
                    let changes = HeaderChanges {
                        cte: matches!(declared, Cte::EightBit | Cte::Binary)
                            .then_some(Cte::SevenBit),
                        ..Default::default()
                    };
                    self.header_block(message, id, root, &changes)?;
                    let hint = body.len() + body.len() / 40;
                    self.push(Segment::Copy(body), hint);
                    return Ok(());
                }
                let boundary = new_boundary.clone().unwrap_or_else(|| original.to_string());
                let changes = HeaderChanges {
                    cte: matches!(declared, Cte::EightBit | Cte::Binary).then_some(Cte::SevenBit),
                    new_boundary,
                    ..Default::default()
                };
                self.header_block(message, id, root, &changes)?;
                let mut delimiter = b"--".to_vec();
                delimiter.extend_from_slice(boundary.as_bytes());

                // The preamble, kept when it is clean.
                if let Some(first) = children
                    .first()
                    .and_then(|&c| message.parts.get(c as usize))
                {
                    let glue = self.range(part.offset_body, first.offset_header);
                    let bytes = &self.raw[glue.clone()];
                    if let Some(pos) = rfind(bytes, &delimiter) {
                        let mut end = pos;
                        if end > 0 && bytes[end - 1] == b'\n' {
                            end -= 1;
                            if end > 0 && bytes[end - 1] == b'\r' {
                                end -= 1;
                            }
                        }
                        let preamble = glue.start..glue.start + end;
                        let text = &self.raw[preamble.clone()];
                        if !preamble.is_empty()
                            && Scan::of(text).is_clean()
                            && !contains_delimiter(text, delimiters)
                        {
                            let hint = preamble.len() + 2;
                            self.push(Segment::Copy(preamble), hint);
                            self.literal(&b"\r\n"[..]);
                        }
                    }
                }
                let mut inner = delimiters.to_vec();
                inner.push(delimiter.clone());
                for &child in children.iter() {
                    let mut line = delimiter.clone();
                    line.extend_from_slice(b"\r\n");
                    self.literal(line);
                    self.part(message, child as usize, None, &inner, depth + 1)?;
                    self.literal(&b"\r\n"[..]);
                }
                let mut close = delimiter;
                close.extend_from_slice(b"--");
                if root.is_some() {
                    close.extend_from_slice(b"\r\n");
                }
                self.literal(close);
            }
            PartType::Message(nested)
                if matches!(declared, Cte::SevenBit | Cte::EightBit | Cte::Binary) =>
            {
                let changes = HeaderChanges {
                    cte: matches!(declared, Cte::EightBit | Cte::Binary).then_some(Cte::SevenBit),
                    ..Default::default()
                };
                self.header_block(message, id, root, &changes)?;
                if nested.parts.is_empty() {
                    return Ok(());
                }
                if depth >= MAX_DEPTH {
                    return Err(CanonError::TooDeep);
                }
                self.part(nested, 0, None, delimiters, depth + 1)?;
            }
            _ => {
                let mut scan = Scan::of(&self.raw[body.clone()]);
                // A body that holds an enclosing delimiter (which a lenient parser such as
                // mail-parser matches even mid-line) is re-encoded so that the signed entity
                // has one reading only; quoted-printable and base64 never write "--".
                scan.delimiter = contains_delimiter(&self.raw[body.clone()], delimiters);
                let is_text = ctype == "text";
                let mut changes = HeaderChanges::default();
                let len = body.len();
                let segment = if scan.is_clean() {
                    if matches!(declared, Cte::EightBit | Cte::Binary) {
                        changes.cte = Some(Cte::SevenBit);
                    }
                    (Segment::Copy(body), len + len / 40)
                } else {
                    match declared {
                        Cte::Base64 => (Segment::Rewrap(body), len + len / 38),
                        Cte::QuotedPrintable if is_text => (Segment::Requote(body), len + len / 10),
                        Cte::QuotedPrintable => {
                            changes.cte = Some(Cte::Base64);
                            (
                                Segment::QuotedPrintableToBase64(body),
                                len * 4 / 3 + len / 38,
                            )
                        }
                        // RFC 2046 §5.2: these may only be 7bit, 8bit or binary.
                        _ if ctype == "multipart"
                            || (ctype == "message"
                                && matches!(
                                    subtype.as_str(),
                                    "rfc822" | "partial" | "external-body"
                                )) =>
                        {
                            return Err(CanonError::Unencodable {
                                content_type: format!("{ctype}/{subtype}"),
                            });
                        }
                        _ if is_text => {
                            changes.cte = Some(Cte::QuotedPrintable);
                            changes.add_utf8_charset = scan.eight_bit
                                && content_type
                                    .and_then(|ct| attribute(ct, "charset"))
                                    .is_none()
                                && std::str::from_utf8(&self.raw[body.clone()]).is_ok();
                            (Segment::QuotedPrintable(body), len + len / 4)
                        }
                        _ => {
                            changes.cte = Some(Cte::Base64);
                            (Segment::Base64(body), len * 4 / 3 + len / 38)
                        }
                    }
                };
                self.header_block(message, id, root, &changes)?;
                self.push(segment.0, segment.1);
            }
        }
        Ok(())
    }

    /// Writes the header block of part `id` (with the blank line that ends it).
    fn header_block(
        &mut self,
        message: &Message<'_>,
        id: usize,
        root: Option<&RootHeaders<'_>>,
        changes: &HeaderChanges,
    ) -> Result<(), CanonError> {
        let Some(part) = message.parts.get(id) else {
            return Ok(());
        };
        let root = root.copied();
        if let Some(root) = root {
            self.literal(root.prepend);
        }
        let mut params: Vec<(&str, &str)> = root
            .and_then(|r| r.content_type_param)
            .into_iter()
            .collect();
        if let Some(b) = &changes.new_boundary {
            params.push(("boundary", b.as_str()));
        }
        let last_ct = part
            .headers
            .iter()
            .rposition(|h| h.name == HeaderName::ContentType);
        let last_cte = part
            .headers
            .iter()
            .rposition(|h| h.name == HeaderName::ContentTransferEncoding);

        for (i, header) in part.headers.iter().enumerate() {
            let field = self.range(header.offset_field, header.offset_end);
            let Some(name) = field_name(&self.raw[field.clone()]) else {
                continue;
            };
            let is_content = name.len() >= 8 && name[..8].eq_ignore_ascii_case("content-");
            if root.is_some_and(|r| r.content_fields_only) && !is_content {
                continue;
            }
            if header.name == HeaderName::ContentType {
                if Some(i) != last_ct {
                    continue;
                }
                if !params.is_empty() || changes.add_utf8_charset {
                    let ct = header.value.as_content_type();
                    self.content_type_field(name, field, ct, &params, changes.add_utf8_charset)?;
                    continue;
                }
            }
            if header.name == HeaderName::ContentTransferEncoding {
                if Some(i) != last_cte {
                    continue;
                }
                if let Some(cte) = changes.cte {
                    self.literal(format!("{name}: {}\r\n", cte.name()));
                    continue;
                }
            }
            self.field(name, field, &header.name, &header.value)?;
        }

        if last_ct.is_none() && (!params.is_empty() || changes.add_utf8_charset) {
            let charset = if changes.add_utf8_charset {
                "utf-8"
            } else {
                "us-ascii"
            };
            let mut ct = BuilderContentType::new("text/plain").attribute("charset", charset);
            for &(k, v) in &params {
                ct = ct.attribute(k, v);
            }
            let mut line = b"Content-Type: ".to_vec();
            ct.write_header(&mut line, "Content-Type: ".len());
            self.literal(line);
        }
        if last_cte.is_none() {
            if let Some(cte) = changes.cte.filter(|c| *c != Cte::SevenBit) {
                self.literal(format!("Content-Transfer-Encoding: {}\r\n", cte.name()));
            }
        }
        self.literal(&b"\r\n"[..]);
        Ok(())
    }

    /// Copies a header field when it is clean, or rewrites it with encoded words.
    fn field(
        &mut self,
        name: &str,
        field: Range<usize>,
        header_name: &HeaderName<'_>,
        value: &HeaderValue<'_>,
    ) -> Result<(), CanonError> {
        let bytes = &self.raw[field.clone()];
        if Scan::of(bytes).is_clean() {
            let ends_with_newline = bytes.last() == Some(&b'\n');
            let hint = field.len() + 2;
            self.push(Segment::Copy(field), hint);
            if !ends_with_newline {
                self.literal(&b"\r\n"[..]);
            }
            return Ok(());
        }
        let raw_value = field_value(bytes);
        let line = encode_field(name, header_name, value, &raw_value)?;
        self.literal(line);
        Ok(())
    }

    /// Writes a Content-Type field with `params` set and/or `charset=utf-8` added.
    fn content_type_field(
        &mut self,
        name: &str,
        field: Range<usize>,
        ct: Option<&ContentType<'_>>,
        params: &[(&str, &str)],
        add_charset: bool,
    ) -> Result<(), CanonError> {
        let bytes = &self.raw[field.clone()];
        let has_param = params
            .iter()
            .any(|(k, _)| ct.is_some_and(|ct| attribute(ct, k).is_some()));
        if Scan::of(bytes).is_clean() && !has_param && !add_charset {
            // Keep the field as written and append the parameter.
            let mut end = bytes.len();
            while end > 0 && matches!(bytes[end - 1], b'\r' | b'\n' | b' ' | b'\t') {
                end -= 1;
            }
            let kept = field.start..field.start + end;
            let hint = kept.len();
            self.push(Segment::Copy(kept), hint);
            let mut sep = if end > 0 && bytes[end - 1] == b';' {
                ""
            } else {
                ";"
            };
            for (k, v) in params {
                self.literal(format!("{sep}\r\n {k}=\"{v}\""));
                sep = ";";
            }
            self.literal(&b"\r\n"[..]);
            return Ok(());
        }
        let mut builder = match ct {
            Some(ct) => builder_content_type(ct, params),
            None => BuilderContentType::new("text/plain"),
        };
        if add_charset {
            builder = builder.attribute("charset", "utf-8");
        }
        for (k, v) in params {
            builder = builder.attribute(k.to_string(), v.to_string());
        }
        let mut line = format!("{name}: ").into_bytes();
        builder.write_header(&mut line, name.len() + 2);
        let line = checked_field(name, line)?;
        self.literal(line);
        Ok(())
    }
}

/// A new random boundary; `=_` cannot occur in quoted-printable or base64 text.
fn fresh_boundary() -> Result<String, CanonError> {
    use ring::rand::SecureRandom as _;
    let mut random = [0u8; 12];
    ring::rand::SystemRandom::new()
        .fill(&mut random)
        .map_err(|_| CanonError::Randomness)?;
    Ok(format!("=_cv_{}", hex::encode(random)))
}

/// Whether any of `delimiters` (each `--boundary`) occurs anywhere in `bytes`.
pub(super) fn contains_delimiter(bytes: &[u8], delimiters: &[Vec<u8>]) -> bool {
    if delimiters.is_empty() {
        return false;
    }
    let mut i = 0;
    while let Some(p) = bytes[i..].iter().position(|&b| b == b'-') {
        let at = i + p;
        if bytes.get(at + 1) == Some(&b'-') && delimiters.iter().any(|d| bytes[at..].starts_with(d))
        {
            return true;
        }
        i = at + 1;
    }
    false
}

fn rfind(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() || needle.len() > haystack.len() {
        return None;
    }
    (0..=haystack.len() - needle.len())
        .rev()
        .find(|&i| &haystack[i..i + needle.len()] == needle)
}
