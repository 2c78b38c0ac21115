//! The canonical form of the entity to be signed (RFC 8551 §3.1): 7-bit, CRLF line endings,
//! no line longer than 998 octets, so that no relay on the way can change a byte of it.
//!
//! The MIME tree is parsed with mail-parser and written back part by part:
//! - a part that is already 7-bit clean is copied, only bare LFs becoming CRLF;
//! - a part that is not (8-bit or binary bytes, lines over 998, bare CR, NUL) is re-encoded:
//!   text as quoted-printable, anything else as base64; a dirty base64 or quoted-printable body
//!   is re-wrapped or re-encoded;
//! - header fields of inner parts that carry 8-bit bytes are rewritten with RFC 2047/2231 words;
//! - multipart structure and boundaries are kept (the epilogue and a non-ASCII preamble, which no
//!   reader shows, are dropped); `message/rfc822` parts are canonicalised recursively, since they
//!   may not be base64-encoded;
//! - a `multipart/signed` entity (a clerk's own S/MIME or PGP signature inside the document) is
//!   copied byte for byte, since any change to its first part breaks that signature; when it
//!   is not already 7-bit clean, planning fails with [`CanonError::SignedEntityNot7bit`] and the
//!   signer seals the message opaquely instead (see `sign.rs`). Opaque `application/pkcs7-mime`
//!   parts may be re-encoded: their CMS, once decoded, is unchanged.
//!
//! Where a part has duplicate Content-Type or Content-Transfer-Encoding fields, the last one is
//! kept (it is the one mail-parser, and hence congvan's verifier, uses) and the others dropped,
//! so the signed entity cannot be read two ways.
//!
//! Planning (parsing) and writing are separate steps: the plan holds only byte ranges of the
//! input and small generated pieces, so the parsed tree (with its decoded bodies) is dropped
//! before the output is written, and a 35 MB message needs about one extra copy in memory.

use std::ops::Range;

use base64::Engine as _;
use mail_builder::headers::address::Address as BuilderAddress;
use mail_builder::headers::content_type::ContentType as BuilderContentType;
use mail_builder::headers::text::Text as BuilderText;
use mail_builder::headers::Header as _;
use mail_parser::{Address, ContentType, HeaderName, HeaderValue, Message, PartType};

/// Longest line allowed in the canonical form, without its CRLF (RFC 5322 §2.1.1).
pub const MAX_LINE: usize = 998;

/// Deepest MIME nesting accepted (multiparts and attached messages together): the bound
/// every walker keeps; the configured `max_mime_depth` is checked before a message is queued
/// and again before it is sealed.
const MAX_DEPTH: usize = crate::nesting::MAX_DEPTH_CEILING;

/// Why an entity could not be put in canonical form.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CanonError {
    /// No header section could be parsed.
    #[error("the message has no parsable header section")]
    Unparseable,
    /// Larger than the MIME parser can address (4 GiB).
    #[error("the message is too large to sign ({len} bytes)")]
    TooLarge { len: usize },
    /// MIME parts nested deeper than congvan accepts.
    #[error("MIME parts are nested more than {MAX_DEPTH} levels deep")]
    TooDeep,
    /// An address with non-ASCII (SMTPUTF8) or control characters in a header field that must
    /// be made 7-bit.
    #[error(
        "the {field} header field contains the address {address:?}, which cannot be made 7-bit"
    )]
    UnencodableAddress { field: String, address: String },
    /// The system random generator failed.
    #[error("the system random number generator failed")]
    Randomness,
    /// A header field that had to be rewritten holds a word too long to fold within 998
    /// characters.
    #[error("the {field} header field has a word too long to fold")]
    UnfoldableHeader { field: String },
    /// A part that may not be base64/quoted-printable encoded (multipart, message/rfc822) is
    /// 8-bit and could not be parsed into its components.
    #[error("a {content_type} part has 8-bit content but could not be parsed, so it cannot be made 7-bit")]
    Unencodable { content_type: String },
    /// A `multipart/signed` entity inside the message is not 7-bit clean: making it so would
    /// break the signature it carries.
    #[error("a multipart/signed entity inside the message is not 7-bit clean; re-encoding it would break its signature")]
    SignedEntityNot7bit,
}

/// How the root part's header block is written. The default keeps every field of the entity.
#[derive(Debug, Default, Clone, Copy)]
pub struct RootHeaders<'a> {
    /// Header fields (7-bit, each ending in CRLF) written first in the root's header block.
    pub prepend: &'a [u8],
    /// Keep only the root's `Content-*` fields: for a whole message, whose root part also holds
    /// From, Subject, Received and the rest.
    pub content_fields_only: bool,
    /// A parameter to set on the root's Content-Type (replacing one of the same name).
    pub content_type_param: Option<(&'a str, &'a str)>,
}

/// The canonical form of an entity, as a plan over the input bytes. Write it with
/// [`Canonical::write`], passing the same input.
#[derive(Debug)]
pub struct Canonical {
    segments: Vec<Segment>,
    len_hint: usize,
}

#[derive(Debug)]
enum Segment {
    /// Generated bytes, already canonical.
    Literal(Vec<u8>),
    /// 7-bit clean input; bare LF becomes CRLF.
    Copy(Range<usize>),
    /// Text to encode as quoted-printable; LF and CRLF are line breaks.
    QuotedPrintable(Range<usize>),
    /// Quoted-printable text to decode and encode again (it was 8-bit or had long lines).
    Requote(Range<usize>),
    /// Bytes to encode as base64.
    Base64(Range<usize>),
    /// Quoted-printable data to decode and encode as base64.
    QuotedPrintableToBase64(Range<usize>),
    /// Base64 text to re-wrap at 76 columns (stray bytes dropped, as decoders do).
    Rewrap(Range<usize>),
}

impl Canonical {
    /// Roughly how many bytes [`Canonical::write`] will append.
    pub fn len_hint(&self) -> usize {
        self.len_hint
    }

    /// Appends the canonical entity to `out`. `raw` must be the input the plan was made from.
    pub fn write(&self, raw: &[u8], out: &mut Vec<u8>) {
        out.reserve(self.len_hint);
        for segment in &self.segments {
            match segment {
                Segment::Literal(bytes) => out.extend_from_slice(bytes),
                Segment::Copy(r) => write_crlf(slice(raw, r), out),
                Segment::QuotedPrintable(r) => write_quoted_printable(slice(raw, r), out),
                Segment::Requote(r) => {
                    write_quoted_printable(&decode_quoted_printable(slice(raw, r)), out)
                }
                Segment::Base64(r) => write_base64(slice(raw, r), out),
                Segment::QuotedPrintableToBase64(r) => {
                    write_base64(&decode_quoted_printable(slice(raw, r)), out)
                }
                Segment::Rewrap(r) => write_rewrapped_base64(slice(raw, r), out),
            }
        }
    }
}

fn slice<'r>(raw: &'r [u8], range: &Range<usize>) -> &'r [u8] {
    raw.get(range.clone()).unwrap_or_default()
}

/// Canonicalises a MIME entity (its content header fields and body), keeping all its fields.
pub fn canonicalize(entity: &[u8]) -> Result<Vec<u8>, CanonError> {
    let canonical = plan(entity, &RootHeaders::default())?;
    let mut out = Vec::new();
    canonical.write(entity, &mut out);
    Ok(out)
}

/// Plans the canonical form of `raw` (a whole message or an entity), with the root part's
/// header block shaped by `root`.
pub fn plan(raw: &[u8], root: &RootHeaders<'_>) -> Result<Canonical, CanonError> {
    if raw.len() > u32::MAX as usize {
        return Err(CanonError::TooLarge { len: raw.len() });
    }
    // The nesting is measured before mail-parser builds (and later drops) its tree.
    let message = crate::nesting::parse(raw, MAX_DEPTH)
        .map_err(|_| CanonError::TooDeep)?
        .ok_or(CanonError::Unparseable)?;
    let mut planner = Planner {
        raw,
        segments: Vec::new(),
        len_hint: 0,
    };
    planner.part(&message, 0, Some(root), &[], 0)?;
    Ok(Canonical {
        segments: planner.segments,
        len_hint: planner.len_hint,
    })
}

/// Whether `bytes` is 7-bit, without NUL, with only CRLF line endings and lines of at most
/// 998 octets: the property the canonical form guarantees.
pub fn is_canonical(bytes: &[u8]) -> bool {
    let scan = Scan::of(bytes);
    scan.is_clean() && !scan.bare_lf
}

/// What is wrong, if anything, with a run of bytes that should be 7-bit clean.
#[derive(Debug, Default, Clone, Copy)]
struct Scan {
    eight_bit: bool,
    nul: bool,
    bare_cr: bool,
    bare_lf: bool,
    long_line: bool,
    /// Holds the delimiter of an enclosing multipart.
    delimiter: bool,
}

impl Scan {
    fn of(bytes: &[u8]) -> Scan {
        let mut scan = Scan::default();
        let mut line_len = 0usize;
        let mut prev = 0u8;
        for (i, &b) in bytes.iter().enumerate() {
            match b {
                b'\n' => {
                    if prev != b'\r' {
                        scan.bare_lf = true;
                    }
                    line_len = 0;
                }
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => scan.bare_cr = true,
                0 => scan.nul = true,
                0x80..=0xff => scan.eight_bit = true,
                _ => {}
            }
            if b != b'\n' && b != b'\r' {
                line_len += 1;
                if line_len > MAX_LINE {
                    scan.long_line = true;
                }
            }
            prev = b;
        }
        scan
    }

    /// Clean enough to copy (bare LFs are fixed while copying).
    fn is_clean(&self) -> bool {
        !(self.eight_bit || self.nul || self.bare_cr || self.long_line || self.delimiter)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Cte {
    SevenBit,
    EightBit,
    Binary,
    QuotedPrintable,
    Base64,
    Other,
}

impl Cte {
    fn parse(value: Option<&str>) -> Cte {
        match value.map(|v| v.trim().to_ascii_lowercase()).as_deref() {
            None | Some("7bit") | Some("") => Cte::SevenBit,
            Some("8bit") => Cte::EightBit,
            Some("binary") => Cte::Binary,
            Some("quoted-printable") => Cte::QuotedPrintable,
            Some("base64") => Cte::Base64,
            Some(_) => Cte::Other,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Cte::SevenBit => "7bit",
            Cte::EightBit => "8bit",
            Cte::Binary => "binary",
            Cte::QuotedPrintable => "quoted-printable",
            Cte::Base64 => "base64",
            Cte::Other => "x-unknown",
        }
    }
}

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

struct Planner<'r> {
    raw: &'r [u8],
    segments: Vec<Segment>,
    len_hint: usize,
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
    fn part(
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

/// Encodes one header field as 7-bit: RFC 2231 parameters for Content-Type and
/// Content-Disposition, RFC 2047 phrases for addresses, RFC 2047 text otherwise.
pub fn encode_field(
    name: &str,
    header_name: &HeaderName<'_>,
    value: &HeaderValue<'_>,
    raw_value: &str,
) -> Result<Vec<u8>, CanonError> {
    let mut line = format!("{name}: ").into_bytes();
    let column = line.len();
    match (header_name, value) {
        (
            HeaderName::ContentType | HeaderName::ContentDisposition,
            HeaderValue::ContentType(ct),
        ) => {
            builder_content_type(ct, &[]).write_header(&mut line, column);
        }
        (_, HeaderValue::Address(address)) => {
            builder_address(name, address)?.write_header(&mut line, column);
        }
        (_, HeaderValue::Text(text)) => {
            BuilderText::new(text.as_ref()).write_header(&mut line, column)
        }
        _ => BuilderText::new(raw_value).write_header(&mut line, column),
    }
    checked_field(name, line)
}

/// A rewritten field must be canonical; one that is not (a word of over 998 characters that
/// cannot be folded) is refused rather than sent damaged.
fn checked_field(name: &str, line: Vec<u8>) -> Result<Vec<u8>, CanonError> {
    if is_canonical(&line) {
        Ok(line)
    } else {
        Err(CanonError::UnfoldableHeader {
            field: name.to_string(),
        })
    }
}

/// Rebuilds a parsed Content-Type/Disposition for mail-builder, which writes parameter values
/// with RFC 2231 when needed. The type and parameter names keep only RFC 2045 token
/// characters; the parameters named in `replaced` are left out (the caller sets them).
fn builder_content_type(
    ct: &ContentType<'_>,
    replaced: &[(&str, &str)],
) -> BuilderContentType<'static> {
    /// An RFC 2045 token, or `None`: a damaged name is dropped, never repaired into another.
    fn token(s: &str) -> Option<&str> {
        let ok = !s.is_empty()
            && s.chars()
                .all(|c| c.is_ascii_graphic() && !"()<>@,;:\\\"/[]?=".contains(c));
        ok.then_some(s)
    }
    let full = match (token(ct.ctype()), ct.subtype().map(token)) {
        (Some(t), Some(Some(sub))) => format!("{t}/{sub}"),
        (Some(t), None) => t.to_string(),
        _ => "application/octet-stream".to_string(),
    };
    let mut b = BuilderContentType::new(full);
    for a in ct.attributes().unwrap_or_default() {
        let Some(name) = token(&a.name) else { continue };
        if replaced.iter().any(|(k, _)| name.eq_ignore_ascii_case(k)) {
            continue;
        }
        b = b.attribute(name.to_string(), a.value.to_string());
    }
    b
}

/// Converts a parsed address list for mail-builder, refusing addr-specs that are not printable
/// ASCII (SMTPUTF8 addresses cannot be written in a 7-bit header).
fn builder_address<'a>(
    field: &str,
    address: &'a Address<'_>,
) -> Result<BuilderAddress<'a>, CanonError> {
    let one = |name: Option<&'a str>, email: &'a str| {
        if !email.bytes().all(|b| (33..=126).contains(&b)) {
            return Err(CanonError::UnencodableAddress {
                field: field.to_string(),
                address: email.to_string(),
            });
        }
        Ok(BuilderAddress::new_address(name, email))
    };
    let list = match address {
        Address::List(list) => list
            .iter()
            .map(|a| one(a.name.as_deref(), a.address.as_deref().unwrap_or("")))
            .collect::<Result<Vec<_>, _>>()?,
        Address::Group(groups) => groups
            .iter()
            .map(|g| {
                let members = g
                    .addresses
                    .iter()
                    .map(|a| one(a.name.as_deref(), a.address.as_deref().unwrap_or("")))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(BuilderAddress::new_group(g.name.as_deref(), members))
            })
            .collect::<Result<Vec<_>, CanonError>>()?,
    };
    Ok(if list.len() == 1 {
        list.into_iter()
            .next()
            .unwrap_or(BuilderAddress::List(Vec::new()))
    } else {
        BuilderAddress::new_list(list)
    })
}

fn attribute<'c>(ct: &'c ContentType<'_>, name: &str) -> Option<&'c str> {
    ct.attributes()?
        .iter()
        .find(|a| a.name.eq_ignore_ascii_case(name))
        .map(|a| a.value.as_ref())
}

/// The field name as written (before the colon, white space trimmed), or `None` when it is not
/// a valid name (RFC 5322 ftext: printable ASCII except colon); such a field is dropped.
pub fn field_name(field: &[u8]) -> Option<&str> {
    let end = field.iter().position(|&b| b == b':')?;
    let name = std::str::from_utf8(&field[..end])
        .ok()?
        .trim_end_matches([' ', '\t']);
    (!name.is_empty() && name.bytes().all(|b| (33..=126).contains(&b))).then_some(name)
}

/// The unfolded field value (after the colon), lossily decoded as UTF-8.
pub fn field_value(field: &[u8]) -> String {
    let start = field
        .iter()
        .position(|&b| b == b':')
        .map(|p| p + 1)
        .unwrap_or(0);
    let unfolded: Vec<u8> = field[start..]
        .iter()
        .copied()
        .filter(|&b| b != b'\r' && b != b'\n')
        .collect();
    String::from_utf8_lossy(&unfolded).trim().to_string()
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
fn contains_delimiter(bytes: &[u8], delimiters: &[Vec<u8>]) -> bool {
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

/// Copies `src`, turning bare LF into CRLF.
fn write_crlf(src: &[u8], out: &mut Vec<u8>) {
    let mut start = 0;
    while let Some(pos) = src[start..].iter().position(|&b| b == b'\n') {
        let line = &src[start..start + pos];
        out.extend_from_slice(line);
        if line.last() != Some(&b'\r') {
            out.push(b'\r');
        }
        out.push(b'\n');
        start += pos + 1;
    }
    out.extend_from_slice(&src[start..]);
}

const HEX: &[u8; 16] = b"0123456789ABCDEF";

/// Quoted-printable (RFC 2045 §6.7) for text: LF and CRLF are hard line breaks written as
/// CRLF; a lone CR is encoded; lines are soft-broken at 76 columns; trailing white space and a
/// leading `From ` or `.` are encoded so that no transport alters them.
fn write_quoted_printable(src: &[u8], out: &mut Vec<u8>) {
    let mut i = 0;
    while i < src.len() {
        // One input line, without its line break.
        let end = src[i..]
            .iter()
            .position(|&b| b == b'\n')
            .map_or(src.len(), |p| i + p);
        let has_break = end < src.len();
        let mut line = &src[i..end];
        if has_break && line.last() == Some(&b'\r') {
            line = &line[..line.len() - 1];
        }
        let mut column = 0;
        for (j, &b) in line.iter().enumerate() {
            let last = j + 1 == line.len();
            let literal = match b {
                b'=' => false,
                b' ' | b'\t' => !last,
                b'.' if j == 0 => false,
                b'F' if j == 0 && line.starts_with(b"From ") => false,
                // "--" never appears literally, so no boundary can be read in the text.
                b'-' if line.get(j + 1) == Some(&b'-') => false,
                33..=126 => true,
                _ => false,
            };
            let width = if literal { 1 } else { 3 };
            // Leave room for the soft break's "=" (76 columns in all).
            if column + width > 75 {
                out.extend_from_slice(b"=\r\n");
                column = 0;
            }
            if literal {
                out.push(b);
            } else {
                out.extend_from_slice(&[b'=', HEX[(b >> 4) as usize], HEX[(b & 15) as usize]]);
            }
            column += width;
        }
        if has_break {
            out.extend_from_slice(b"\r\n");
        }
        i = end + 1;
    }
}

/// Lenient quoted-printable decoding: invalid escapes are kept as written.
fn decode_quoted_printable(src: &[u8]) -> Vec<u8> {
    fn hex(b: u8) -> Option<u8> {
        match b {
            b'0'..=b'9' => Some(b - b'0'),
            b'A'..=b'F' => Some(b - b'A' + 10),
            b'a'..=b'f' => Some(b - b'a' + 10),
            _ => None,
        }
    }
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let b = src[i];
        if b == b'=' {
            // Soft line break: "=" then optional white space then CRLF or LF.
            let mut j = i + 1;
            while j < src.len() && (src[j] == b' ' || src[j] == b'\t') {
                j += 1;
            }
            if src.get(j) == Some(&b'\n') {
                i = j + 1;
                continue;
            }
            if src.get(j) == Some(&b'\r') && src.get(j + 1) == Some(&b'\n') {
                i = j + 2;
                continue;
            }
            if let (Some(h), Some(l)) = (
                src.get(i + 1).and_then(|&c| hex(c)),
                src.get(i + 2).and_then(|&c| hex(c)),
            ) {
                out.push((h << 4) | l);
                i += 3;
                continue;
            }
        }
        out.push(b);
        i += 1;
    }
    out
}

/// Base64 in 76-column lines, each ending in CRLF.
pub fn write_base64(src: &[u8], out: &mut Vec<u8>) {
    let engine = &base64::engine::general_purpose::STANDARD;
    let mut buf = [0u8; 76];
    for chunk in src.chunks(57) {
        let n = engine.encode_slice(chunk, &mut buf).unwrap_or(0);
        out.extend_from_slice(&buf[..n]);
        out.extend_from_slice(b"\r\n");
    }
}

fn write_rewrapped_base64(src: &[u8], out: &mut Vec<u8>) {
    let mut column = 0;
    for &b in src {
        if b.is_ascii_alphanumeric() || b == b'+' || b == b'/' || b == b'=' {
            out.push(b);
            column += 1;
            if column == 76 {
                out.extend_from_slice(b"\r\n");
                column = 0;
            }
        }
    }
    if column > 0 {
        out.extend_from_slice(b"\r\n");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mail_parser::{MessageParser, MimeHeaders};

    fn canon(s: &[u8]) -> String {
        let out = canonicalize(s).unwrap();
        assert!(
            is_canonical(&out),
            "not canonical: {:?}",
            String::from_utf8_lossy(&out)
        );
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn clean_entity_is_unchanged() {
        let e = b"Content-Type: text/plain; charset=us-ascii\r\n\r\nHello\r\nworld\r\n";
        assert_eq!(canon(e).as_bytes(), e);
    }

    #[test]
    fn bare_lf_becomes_crlf() {
        let e = b"Content-Type: text/plain\n\nHello\nworld\n";
        assert_eq!(
            canon(e),
            "Content-Type: text/plain\r\n\r\nHello\r\nworld\r\n"
        );
    }

    #[test]
    fn eight_bit_text_becomes_quoted_printable() {
        let e = "Content-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nCông văn số 26\nKính gửi: UBND\n";
        let out = canon(e.as_bytes());
        assert!(
            out.contains("Content-Transfer-Encoding: quoted-printable\r\n"),
            "{out}"
        );
        assert!(!out.contains("8bit"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        let decoded = decode_quoted_printable(body.as_bytes());
        assert_eq!(decoded, "Công văn số 26\r\nKính gửi: UBND\r\n".as_bytes());
    }

    #[test]
    fn eight_bit_text_without_charset_gets_utf8() {
        let e = "Content-Type: text/plain\n\nĐây là thư\n";
        let out = canon(e.as_bytes());
        assert!(out.contains("charset=\"utf-8\""), "{out}");
        let e = "Subject: x\n\nĐây là thư\n";
        let out = canon(e.as_bytes());
        assert!(
            out.contains("Content-Type: text/plain; charset=\"utf-8\""),
            "{out}"
        );
    }

    #[test]
    fn binary_attachment_becomes_base64() {
        let mut e = b"Content-Type: multipart/mixed; boundary=\"b1\"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\nContent-Type: application/pdf\r\nContent-Transfer-Encoding: binary\r\n\r\n".to_vec();
        let payload: Vec<u8> = (0..=255u8)
            .cycle()
            .take(3000)
            .filter(|&b| b != b'-')
            .collect();
        e.extend_from_slice(&payload);
        e.extend_from_slice(b"\r\n--b1--\r\n");
        let out = canon(&e);
        assert!(out.contains("Content-Transfer-Encoding: base64\r\n"));
        let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
        assert_eq!(parsed.attachment(0).unwrap().contents(), &payload[..]);
        assert!(out.contains("--b1\r\nContent-Type: text/plain\r\n\r\nhi\r\n--b1\r\n"));
        assert!(out.ends_with("\r\n--b1--\r\n"));
    }

    #[test]
    fn long_lines_are_encoded() {
        let line = "a".repeat(1500);
        let e = format!("Content-Type: text/html\r\n\r\n{line}\r\n");
        let out = canon(e.as_bytes());
        assert!(out.contains("quoted-printable"));
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            decode_quoted_printable(body.as_bytes()),
            format!("{line}\r\n").as_bytes()
        );
    }

    #[test]
    fn long_base64_lines_are_rewrapped() {
        let data: Vec<u8> = (0..3000u32).map(|i| (i * 7) as u8).collect();
        let b64 = base64::engine::general_purpose::STANDARD.encode(&data);
        let e = format!("Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\n{b64}\r\n");
        let out = canon(e.as_bytes());
        let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
        assert_eq!(parsed.parts[0].contents(), &data[..]);
    }

    #[test]
    fn quoted_printable_with_raw_8bit_is_requoted() {
        let e = "Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nC=C3=B4ng v\u{103}n\r\n";
        let out = canon(e.as_bytes());
        let body = out.split("\r\n\r\n").nth(1).unwrap();
        assert_eq!(
            decode_quoted_printable(body.as_bytes()),
            "Công văn\r\n".as_bytes()
        );
    }

    #[test]
    fn nested_structure_and_boundaries_are_kept() {
        let e = "Content-Type: multipart/mixed; boundary=outer\n\nThis is a multi-part message in MIME format.\n--outer\nContent-Type: multipart/alternative; boundary=\"inner\"\n\n--inner\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: 8bit\n\nXin chào\n--inner\nContent-Type: text/html; charset=utf-8\n\n<p>Xin chào</p>\n--inner--\n\n--outer\nContent-Type: application/octet-stream; name=\"Công văn.pdf\"\nContent-Disposition: attachment; filename=\"Công văn.pdf\"\nContent-Transfer-Encoding: base64\n\nJVBERi0xLjQK\n--outer--\nepilogue\n";
        let out = canon(e.as_bytes());
        assert!(out.starts_with("Content-Type: multipart/mixed; boundary=outer\r\n\r\nThis is a multi-part message in MIME format.\r\n--outer\r\n"), "{out}");
        assert!(out.contains("--inner\r\n"));
        assert!(out.contains("--inner--\r\n--outer\r\n"));
        assert!(
            out.contains("filename*=UTF-8''C%C3%B4ng%20v%C4%83n.pdf"),
            "{out}"
        );
        assert!(!out.contains("epilogue"));
        let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
        assert_eq!(parsed.body_text(0).unwrap(), "Xin chào");
        assert_eq!(parsed.body_html(0).unwrap(), "<p>Xin chào</p>");
        assert_eq!(
            parsed.attachment(0).unwrap().attachment_name(),
            Some("Công văn.pdf")
        );
        assert_eq!(parsed.attachment(0).unwrap().contents(), b"%PDF-1.4\n");
    }

    #[test]
    fn message_rfc822_is_canonicalised_inside() {
        let e = "Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Type: text/plain\n\nsee attached\n--b\nContent-Type: message/rfc822\nContent-Transfer-Encoding: 8bit\n\nFrom: Văn thư <vanthu@a.gov.vn>\nSubject: Công văn\nContent-Type: text/plain; charset=utf-8\n\nNội dung\n--b--\n";
        let out = canon(e.as_bytes());
        assert!(
            out.contains(
                "Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 7bit\r\n\r\nFrom: "
            ),
            "{out}"
        );
        let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
        let inner = parsed.attachment(0).unwrap().message().unwrap();
        assert_eq!(inner.subject(), Some("Công văn"));
        assert_eq!(
            inner.from().unwrap().first().unwrap().name(),
            Some("Văn thư")
        );
        assert_eq!(inner.body_text(0).unwrap(), "Nội dung");
    }

    #[test]
    fn root_headers_options() {
        let m = b"From: a@b.vn\r\nSubject: s\r\nMIME-Version: 1.0\r\nContent-Type: text/plain;\r\n charset=us-ascii\r\n\r\nhi\r\n";
        let root = RootHeaders {
            prepend: b"Subject: s\r\n",
            content_fields_only: true,
            content_type_param: Some(("hp", "clear")),
        };
        let c = plan(m, &root).unwrap();
        let mut out = Vec::new();
        c.write(m, &mut out);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Subject: s\r\nContent-Type: text/plain;\r\n charset=us-ascii;\r\n hp=\"clear\"\r\n\r\nhi\r\n"
        );
    }

    #[test]
    fn duplicate_content_type_keeps_the_last() {
        let e = b"Content-Type: text/html\r\nContent-Type: text/plain\r\n\r\nhi\r\n";
        assert_eq!(canon(e), "Content-Type: text/plain\r\n\r\nhi\r\n");
    }

    /// Mutated inputs never panic and whatever is accepted comes out canonical (also when fed
    /// back in, if accepted again). The canonical form of a well-formed entity is a fixed point; damaged ones may
    /// be read differently the second time (mail-parser is lenient), which is harmless since
    /// the signature covers the bytes as written.
    #[test]
    fn mutated_inputs_are_canonical_and_idempotent() {
        let samples: [&[u8]; 3] = [
            b"Content-Type: multipart/mixed; boundary=\"b\"\r\n\r\npre\r\n--b\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nline one\r\nline two\r\n--b\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b\r\nContent-Type: message/rfc822\r\n\r\nSubject: x\r\n\r\ninner\r\n--b--\r\n",
            b"Content-Type: text/plain\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\nabc=3D=\r\ndef\r\n",
            b"Content-Type: multipart/alternative; boundary=a\n\n--a\nContent-Type: text/html\n\n<p>x</p>\n--a--\n",
        ];
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        let mut next = move || {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            seed
        };
        for round in 0..600 {
            let mut input = samples[round % samples.len()].to_vec();
            let mutations = next() % 6;
            for _ in 0..mutations {
                let pos = (next() as usize) % (input.len() + 1);
                match next() % 5 {
                    0 => input.insert(pos, 0xc3),
                    1 => input.insert(pos, b'\n'),
                    2 => input.insert(pos, b'\r'),
                    3 if pos < input.len() => {
                        input.remove(pos);
                    }
                    _ => input
                        .splice(pos..pos, std::iter::repeat_n(b'z', 1000))
                        .for_each(drop),
                }
            }
            if let Ok(out) = canonicalize(&input) {
                assert!(
                    is_canonical(&out),
                    "round {round}: {:?}",
                    String::from_utf8_lossy(&out)
                );
                let Ok(again) = canonicalize(&out) else {
                    assert!(mutations > 0, "round {round}: second pass refused");
                    continue;
                };
                assert!(is_canonical(&again), "round {round}: second pass");
                assert!(
                    mutations > 0 || again == out,
                    "round {round}: not a fixed point\ninput: {:?}\nfirst: {:?}\nsecond: {:?}",
                    String::from_utf8_lossy(&input),
                    String::from_utf8_lossy(&out),
                    String::from_utf8_lossy(&again)
                );
            }
        }
    }

    #[test]
    fn no_delimiter_survives_re_encoding() {
        let mut out = Vec::new();
        write_quoted_printable(b"--b--\nsee x--b and ---\n", &mut out);
        assert!(
            !out.windows(2).any(|w| w == b"--"),
            "{:?}",
            String::from_utf8_lossy(&out)
        );
        assert_eq!(
            decode_quoted_printable(&out),
            b"--b--\r\nsee x--b and ---\r\n"
        );
        let delimiters = [b"--b".to_vec()];
        assert!(contains_delimiter(b"x\r\n--b\r\n", &delimiters));
        assert!(contains_delimiter(b"mid--b-line", &delimiters));
        assert!(!contains_delimiter(b"-b -- b", &delimiters));
    }

    #[test]
    fn unusable_boundary_is_replaced() {
        let long = "x".repeat(300);
        let e = format!("Content-Type: multipart/mixed; boundary=\"{long}\"\r\n\r\n--{long}\r\nContent-Type: text/plain\r\n\r\none\r\n--{long}\r\nContent-Type: text/plain\r\n\r\ntwo\r\n--{long}--\r\n");
        let out = canon(e.as_bytes());
        assert!(!out.contains(&long));
        let parsed = MessageParser::new().parse(out.as_bytes()).unwrap();
        let boundary = parsed
            .content_type()
            .unwrap()
            .attribute("boundary")
            .unwrap();
        assert!(boundary.starts_with("=_cv_"), "{boundary}");
        assert_eq!(parsed.body_text(0).unwrap(), "one");
        assert_eq!(parsed.body_text(1).unwrap(), "two");
    }

    #[test]
    fn quoted_printable_encoder_limits() {
        let mut out = Vec::new();
        let text = format!("{}é \nFrom here\n.\nend ", "x".repeat(200));
        write_quoted_printable(text.as_bytes(), &mut out);
        for line in out.split(|&b| b == b'\n') {
            assert!(line.len() <= 77, "{:?}", String::from_utf8_lossy(line));
        }
        let s = String::from_utf8(out.clone()).unwrap();
        assert!(
            s.contains("=C3=A9=20\r\n=46rom here\r\n=2E\r\nend=20"),
            "{s}"
        );
        assert_eq!(
            decode_quoted_printable(&out),
            text.replace('\n', "\r\n").as_bytes()
        );
    }

    /// The walk counts attached messages as well as multiparts (it used to count only
    /// delimiters, so `message/rfc822` inside itself recursed without bound and a 4,000-deep
    /// message took the daemon down when it was sealed).
    #[test]
    fn nesting_is_bounded_for_every_kind() {
        use crate::nesting::attack::*;
        let (from, to) = ("a@dev.gov.vn", "b@other.gov.vn");
        // The deepest accepted nesting is canonicalised on an ordinary test thread.
        for raw in [
            nested_message("rfc822", MAX_DEPTH, from, to),
            nested_multipart(MAX_DEPTH, from, to),
            nested_mixed(MAX_DEPTH, from, to),
        ] {
            canon(&raw);
        }
        // 10 and 1,000 times the default limit: an error, not a crash.
        for n in [500, 50_000] {
            for raw in [
                nested_message("rfc822", n, from, to),
                nested_message("global", n, from, to),
                nested_multipart(n, from, to),
                nested_mixed(n, from, to),
                encoded_nested_message(n, from, to),
            ] {
                assert!(
                    matches!(canonicalize(&raw), Err(CanonError::TooDeep)),
                    "{n}"
                );
            }
        }
    }
}
