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
//!   signer seals the message opaquely instead (see `sign`). Opaque `application/pkcs7-mime`
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

use self::encoding::{
    decode_quoted_printable, write_crlf, write_quoted_printable, write_rewrapped_base64,
};
use self::planner::Planner;

mod encoding;
mod fields;
mod planner;
#[cfg(test)]
mod tests;

pub use encoding::write_base64;
pub use fields::{encode_field, field_name, field_value};

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
    plan_parsed(raw, &parse(raw)?, root)
}

/// Parses `raw` as [`plan`] does: within the size mail-parser can address and the nesting
/// congvan accepts. The signer reads the root's header fields from this same parse.
pub fn parse(raw: &[u8]) -> Result<mail_parser::Message<'_>, CanonError> {
    if raw.len() > u32::MAX as usize {
        return Err(CanonError::TooLarge { len: raw.len() });
    }
    // The nesting is measured before mail-parser builds (and later drops) its tree.
    crate::nesting::parse(raw, MAX_DEPTH)
        .map_err(|_| CanonError::TooDeep)?
        .ok_or(CanonError::Unparseable)
}

/// Plans the canonical form of `raw` from `message`, its [`parse`]. Drop the message before
/// writing the plan: it holds the decoded bodies.
pub fn plan_parsed(
    raw: &[u8],
    message: &mail_parser::Message<'_>,
    root: &RootHeaders<'_>,
) -> Result<Canonical, CanonError> {
    let mut planner = Planner {
        raw,
        segments: Vec::new(),
        len_hint: 0,
    };
    planner.part(message, 0, Some(root), &[], 0)?;
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
